//! The HTTP face of the API server: Kubernetes URL grammar, query parameters,
//! content negotiation (JSON, server-side `Table` for kubectl, and
//! `PartialObjectMetadata`), discovery documents, streaming watches, fault
//! injection and the `/_sim` control endpoints. All semantics live in
//! `crate::apiserver`; this module only translates.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{Value, json};

use crate::apiserver::{
    ApiServer, DeleteOptions, FieldValidation, Filter, ListOptions, PatchType, ScaleChange, WriteOptions,
    parse_dry_run, parse_propagation,
};
use crate::error::{ApiError, ApiResult};
use crate::faults::FaultConfig;
use crate::protobuf;
use crate::resources::ResourceInfo;
use crate::table::{self, IncludeObject};
use crate::watch::{self, Start, WatchItem, WatchRequest};

/// The group version of `PartialObjectMetadata`.
const META_V1: &str = "meta.k8s.io/v1";

/// Upstream's request body limit (3 MiB).
const MAX_BODY: usize = 3 * 1024 * 1024;

pub fn router(server: Arc<ApiServer>) -> Router {
    // Authentication, authorization and the request log: `crate::auth::filter`.
    let auth = axum::middleware::from_fn_with_state(server.clone(), crate::auth::filter::filter);
    Router::new().fallback(handle).layer(auth).layer(DefaultBodyLimit::max(MAX_BODY)).with_state(server)
}

async fn handle(
    State(server): State<Arc<ApiServer>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query = Query::parse(uri.query().unwrap_or_default());
    let resp = match dispatch(&server, &method, uri.path(), &query, &headers, body).await {
        Ok(r) => r,
        // Errors come in protobuf when the client prefers it and the group has it.
        Err(e) => error_response_in(&e, prefers_protobuf(&headers) && protobuf::path_supports(uri.path())),
    };
    tracing::debug!(target: "kube_sim::http", %method, %uri, status = resp.status().as_u16(), "request");
    resp
}

/// Query parameters, repeated keys kept (dryRun may repeat).
#[derive(Debug, Default)]
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(q: &str) -> Self {
        Query(form_urlencoded::parse(q.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
    }
    fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(kk, _)| kk == k).map(|(_, v)| v.as_str())
    }
    fn all(&self, k: &str) -> impl Iterator<Item = &str> {
        self.0.iter().filter(move |(kk, _)| kk == k).map(|(_, v)| v.as_str())
    }
    fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("true" | "1"))
    }
    fn int(&self, k: &str) -> ApiResult<Option<i64>> {
        match self.get(k).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| ApiError::bad_request(format!("{k}: Invalid value: \"{v}\": must be an integer"))),
        }
    }
}

/// A request for a resource, parsed from the URL.
#[derive(Debug)]
struct Target {
    res: Arc<ResourceInfo>,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
    /// Path below a `proxy` subresource.
    rest: String,
    watch_path: bool,
}

async fn dispatch(
    server: &Arc<ApiServer>,
    method: &Method,
    path: &str,
    query: &Query,
    headers: &HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    match segs.as_slice() {
        ["version"] => return Ok(json_ok(&version(server))),
        ["healthz" | "livez" | "readyz", ..] => return Ok(text(StatusCode::OK, "ok")),
        ["api" | "apis"] => {
            let core = segs[0] == "api";
            let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or_default();
            if let Some(v) = crate::discovery::negotiate(accept) {
                let doc = crate::discovery::document(&server.registry, core, v);
                let mut r = json_ok(&doc);
                let ct = format!("application/json;g={};v={v};as={}", crate::discovery::GROUP, crate::discovery::AS);
                if let Ok(h) = HeaderValue::from_str(&ct) {
                    r.headers_mut().insert(header::CONTENT_TYPE, h);
                }
                return Ok(r);
            }
            return Ok(json_ok(&if core { api_versions(server) } else { group_list(server) }));
        }
        ["api", v] => return resource_list(server, "", v),
        ["apis", g] => return group(server, g),
        ["apis", g, v] => return resource_list(server, g, v),
        ["_sim", rest @ ..] => return sim_control(server, method, rest, body),
        ["openapi", "v3"] => return Ok(json_ok(&crate::openapi::index(&server.registry, &crds(server)))),
        ["openapi", "v2"] | ["swagger.json"] => return openapi_v2(headers),
        ["openapi", "v3", "api", v] => return openapi_v3_group_version(server, "", v),
        ["openapi", "v3", "apis", g, v] => return openapi_v3_group_version(server, g, v),
        ["openapi", ..] => return Err(ApiError::no_route()),
        _ => {}
    }
    let target = parse_target(server, &segs)?;
    let verb = verb_of(method, &target, query);
    let decision = server.faults.decide(verb, &target.res.plural, target.subresource.as_deref());
    if let Some(d) = decision.delay {
        tokio::time::sleep(d).await;
    }
    if let Some(e) = decision.error {
        return Err(e);
    }
    if let Some(sub @ ("log" | "exec" | "attach" | "portforward")) = target.subresource.as_deref() {
        return Err(no_containers(sub, &target));
    }
    if !target.res.allows(verb) && target.subresource.is_none() && !(verb == "watch" && target.res.allows("list")) {
        return Err(ApiError::method_not_allowed(verb, &target.res.kind));
    }
    let format = Format::negotiate(headers, protobuf::supports(&target.res))?;
    match verb {
        "get" => get(server, &target, format),
        "list" => list(server, &target, query, format).await,
        "watch" => watch_response(server, &target, query, format).await,
        "create" => create(server, &target, query, headers, body, format),
        "update" => update(server, &target, query, headers, body, format),
        "patch" => patch(server, &target, query, headers, body, format),
        "delete" => delete(server, &target, query, headers, body, format),
        "deletecollection" => delete_collection(server, &target, query, headers, body, format),
        other => Err(ApiError::method_not_allowed(other, &target.res.kind)),
    }
}

/// The answer to `kubectl logs|exec|attach|port-forward|cp`: there are no
/// containers behind a simulated pod.
fn no_containers(sub: &str, t: &Target) -> ApiError {
    let what = match sub {
        "log" => "container logs",
        "exec" => "exec into containers (kubectl exec and kubectl cp)",
        "attach" => "attach to containers",
        _ => "port forwarding",
    };
    ApiError::bad_request(format!(
        "kube-sim simulates pod {}/{}: its containers do not run anywhere, so {what} cannot work in this simulated cluster",
        t.namespace.as_deref().unwrap_or_default(),
        t.name.as_deref().unwrap_or_default()
    ))
}

fn parse_target(server: &ApiServer, segs: &[&str]) -> ApiResult<Target> {
    let (group, version, mut rest) = match segs {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(ApiError::no_route()),
    };
    let watch_path = rest.first() == Some(&"watch");
    if watch_path {
        rest = &rest[1..];
    }
    let (namespace, rest) = match rest {
        ["namespaces", ns, r, more @ ..]
            if !(group.is_empty() && more.is_empty() && matches!(*r, "status" | "finalize")) =>
        {
            (Some(ns.to_string()), &rest[2..])
        }
        _ => (None, rest),
    };
    let (plural, name, sub, tail) = match rest {
        [p] => (*p, None, None, &[][..]),
        [p, n] => (*p, Some(*n), None, &[][..]),
        [p, n, s, tail @ ..] => (*p, Some(*n), Some(*s), tail),
        _ => return Err(ApiError::no_route()),
    };
    let res = server.registry.get(group, version, plural).ok_or_else(ApiError::no_route)?;
    if namespace.is_some() && !res.namespaced {
        return Err(ApiError::no_route());
    }
    if let Some(s) = sub
        && !res.has_subresource(s)
    {
        return Err(ApiError::no_route());
    }
    Ok(Target {
        res,
        namespace,
        name: name.map(str::to_string),
        subresource: sub.map(str::to_string),
        rest: tail.join("/"),
        watch_path,
    })
}

fn verb_of(method: &Method, t: &Target, q: &Query) -> &'static str {
    match *method {
        Method::GET | Method::HEAD => {
            if t.watch_path || q.flag("watch") {
                "watch"
            } else if t.name.is_some() {
                "get"
            } else {
                "list"
            }
        }
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => {
            if t.name.is_some() {
                "delete"
            } else {
                "deletecollection"
            }
        }
        _ => "unknown",
    }
}

// ----- content negotiation ------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq)]
enum Format {
    Json,
    /// `application/vnd.kubernetes.protobuf` (built-in types only).
    Protobuf,
    Table(IncludeObject),
    Metadata,
    /// `PartialObjectMetadata` in protobuf.
    MetadataProtobuf,
}

const ACCEPTED_JSON: &str = "application/json, application/yaml";
const ACCEPTED_ALL: &str = "application/json, application/yaml, application/vnd.kubernetes.protobuf";

impl Format {
    /// Pick the first representation of the Accept header we can produce;
    /// protobuf only where the resource has a protobuf form (`proto_ok`).
    fn negotiate(headers: &HeaderMap, proto_ok: bool) -> ApiResult<Format> {
        let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
        if accept.trim().is_empty() {
            return Ok(Format::Json);
        }
        for part in accept.split(',') {
            let mut params = part.split(';').map(str::trim);
            let media = params.next().unwrap_or_default();
            let params: Vec<&str> = params.collect();
            let as_ = params.iter().find_map(|p| p.strip_prefix("as="));
            let json = matches!(media, "application/json" | "*/*" | "application/*" | "application/yaml");
            let proto = media == protobuf::MEDIA_TYPE && proto_ok;
            match (json, proto, as_) {
                (true, _, Some("Table")) => return Ok(Format::Table(IncludeObject::Metadata)),
                (true, _, Some("PartialObjectMetadata" | "PartialObjectMetadataList")) => return Ok(Format::Metadata),
                (_, true, Some("PartialObjectMetadata" | "PartialObjectMetadataList")) => {
                    return Ok(Format::MetadataProtobuf);
                }
                (true, _, None) => return Ok(Format::Json),
                (_, true, None) => return Ok(Format::Protobuf),
                _ => continue,
            }
        }
        let accepted = if proto_ok { ACCEPTED_ALL } else { ACCEPTED_JSON };
        Err(ApiError::not_acceptable(format!("only the following media types are accepted: {accepted}")))
    }

    fn is_protobuf(self) -> bool {
        matches!(self, Format::Protobuf | Format::MetadataProtobuf)
    }
}

/// Whether the first media type of the Accept header is protobuf.
fn prefers_protobuf(headers: &HeaderMap) -> bool {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    accept.split(',').next().and_then(|p| p.split(';').next()).map(str::trim) == Some(protobuf::MEDIA_TYPE)
}

fn include_object(q: &Query) -> IncludeObject {
    match q.get("includeObject") {
        Some("None") => IncludeObject::None,
        Some("Object") => IncludeObject::Object,
        _ => IncludeObject::Metadata,
    }
}

fn partial_metadata(obj: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata").cloned().unwrap_or_default()})
}

// ----- verbs ----------------------------------------------------------------------

fn get(server: &ApiServer, t: &Target, format: Format) -> ApiResult<Response> {
    let name = t.name.as_deref().unwrap_or_default();
    match t.subresource.as_deref() {
        None | Some("status") => {
            let o = server.get(&t.res, t.namespace.as_deref(), name)?;
            match format {
                Format::Json => Ok(json_bytes(StatusCode::OK, server.render_json(&t.res, &o))),
                Format::Protobuf => Ok(proto_bytes(StatusCode::OK, server.render_protobuf(&t.res, &o), &[])),
                Format::Metadata | Format::MetadataProtobuf => {
                    Ok(reply(format, StatusCode::OK, &partial_metadata(&server.render(&t.res, &o)), &[], &t.res))
                }
                Format::Table(inc) => {
                    let v = server.render(&t.res, &o);
                    let rv = o.rv.to_string();
                    Ok(json_ok(&table::table(
                        &t.res.kind,
                        &[v],
                        t.res.printer_columns.as_ref(),
                        inc,
                        server.clock.now(),
                        &rv,
                        None,
                    )))
                }
            }
        }
        Some("scale") => {
            Ok(reply(format, StatusCode::OK, &server.get_scale(&t.res, t.namespace.as_deref(), name)?, &[], &t.res))
        }
        Some("proxy") => server.node_proxy(&Method::GET, name, &t.rest, Bytes::new()).map(proxy_response),
        Some(_) => Err(ApiError::method_not_allowed("get", &t.res.kind)),
    }
}

fn list_options(q: &Query) -> ApiResult<ListOptions> {
    let limit = q.int("limit")?.filter(|l| *l > 0).map(|l| l as usize);
    Ok(ListOptions {
        label_selector: q.get("labelSelector").unwrap_or_default().to_string(),
        field_selector: q.get("fieldSelector").unwrap_or_default().to_string(),
        limit,
        continue_token: q.get("continue").filter(|c| !c.is_empty()).map(str::to_string),
        resource_version: q.get("resourceVersion").map(str::to_string),
        resource_version_match: q.get("resourceVersionMatch").filter(|m| !m.is_empty()).map(str::to_string),
    })
}

async fn list(server: &ApiServer, t: &Target, q: &Query, format: Format) -> ApiResult<Response> {
    let opts = list_options(q)?;
    if let (Some(rv), None | Some("NotOlderThan")) =
        (opts.resource_version.as_deref(), opts.resource_version_match.as_deref())
        && let Ok(rv) = rv.parse::<u64>()
        && rv > 0
    {
        server.wait_for_rv(rv).await?;
    }
    let page = server.list(&t.res, t.namespace.as_deref(), &opts)?;
    let mut meta = json!({"resourceVersion": page.rv.to_string()});
    if let Some(c) = &page.continue_token {
        meta["continue"] = json!(c);
    }
    if let Some(r) = page.remaining {
        meta["remainingItemCount"] = json!(r);
    }
    match format {
        Format::Protobuf => {
            let items: Vec<Bytes> = page.items.iter().map(|o| server.render_protobuf_item(&t.res, o)).collect();
            let body = protobuf::encode_list(
                &t.res.api_version(),
                &t.res.list_kind(),
                &meta,
                items.iter().map(|b| b.as_ref()),
            )
            .ok_or_else(|| ApiError::internal(format!("{} has no protobuf form", t.res.list_kind())))?;
            Ok(proto_bytes(StatusCode::OK, body, &[]))
        }
        Format::MetadataProtobuf => {
            let items: Vec<Vec<u8>> = page
                .items
                .iter()
                .filter_map(|o| {
                    let v = partial_metadata(&server.render(&t.res, o));
                    protobuf::encode_raw(META_V1, "PartialObjectMetadata", &v)
                })
                .collect();
            let body =
                protobuf::encode_list(META_V1, "PartialObjectMetadataList", &meta, items.iter().map(Vec::as_slice))
                    .ok_or_else(|| ApiError::internal("PartialObjectMetadataList has no protobuf form"))?;
            Ok(proto_bytes(StatusCode::OK, body, &[]))
        }
        Format::Json => {
            let mut out = Vec::with_capacity(64 + page.items.iter().map(|o| o.body_len() + 1).sum::<usize>());
            out.extend_from_slice(b"{\"kind\":");
            out.extend_from_slice(&serde_json::to_vec(&t.res.list_kind()).unwrap_or_default());
            out.extend_from_slice(b",\"apiVersion\":");
            out.extend_from_slice(&serde_json::to_vec(&t.res.api_version()).unwrap_or_default());
            out.extend_from_slice(b",\"metadata\":");
            out.extend_from_slice(&serde_json::to_vec(&meta).unwrap_or_default());
            out.extend_from_slice(b",\"items\":[");
            for (i, o) in page.items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                server.write_item(&t.res, o, &mut out);
            }
            out.extend_from_slice(b"]}");
            Ok(json_bytes(StatusCode::OK, out))
        }
        Format::Metadata => {
            let items: Vec<Value> = page
                .items
                .iter()
                .map(|o| {
                    let v = server.render(&t.res, o);
                    json!({"metadata": v.get("metadata").cloned().unwrap_or_default()})
                })
                .collect();
            Ok(json_ok(
                &json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "items": items}),
            ))
        }
        Format::Table(_) => {
            let objs: Vec<Value> = page.items.iter().map(|o| server.render(&t.res, o)).collect();
            let rv = page.rv.to_string();
            let mut tbl = table::table(
                &t.res.kind,
                &objs,
                t.res.printer_columns.as_ref(),
                include_object(q),
                server.clock.now(),
                &rv,
                page.continue_token.as_deref(),
            );
            if let Some(r) = page.remaining {
                tbl["metadata"]["remainingItemCount"] = json!(r);
            }
            Ok(json_ok(&tbl))
        }
    }
}

async fn watch_response(server: &Arc<ApiServer>, t: &Target, q: &Query, format: Format) -> ApiResult<Response> {
    let opts = list_options(q)?;
    let mut field = opts.field_selector.clone();
    if let Some(name) = &t.name {
        // A watch on one object (`/watch/.../name`) is a watch filtered by name.
        field =
            if field.is_empty() { format!("metadata.name={name}") } else { format!("{field},metadata.name={name}") };
    }
    let filter = Filter::new(&t.res, t.namespace.as_deref(), &opts.label_selector, &field)?;
    let bookmarks = q.flag("allowWatchBookmarks");
    let send_initial = q.flag("sendInitialEvents");
    let start = match opts.resource_version.as_deref() {
        _ if send_initial => Start::WithInitialState,
        None | Some("" | "0") => Start::WithInitialState,
        Some(rv) => {
            let rv: u64 = rv.parse().map_err(|_| {
                ApiError::bad_request(format!("resourceVersion: Invalid value: \"{rv}\": must be an integer"))
            })?;
            server.wait_for_rv(rv).await?;
            Start::After(rv)
        }
    };
    let timeout = match q.int("timeoutSeconds")? {
        Some(s) if s > 0 => Duration::from_secs(s as u64),
        _ => server.config.default_watch_timeout,
    };
    let req = WatchRequest {
        filter,
        start,
        bookmarks,
        initial_events_end: send_initial && bookmarks,
        timeout,
        internal: false,
    };
    let stream = watch::watch(server, t.res.clone(), req);
    let server = server.clone();
    let res = t.res.clone();
    let include = include_object(q);
    let mut first = true;
    let proto = format.is_protobuf();
    let body = stream.map(move |item| {
        let line = if proto {
            protobuf_watch_frame(&server, &res, format, &item)
        } else {
            render_watch_item(&server, &res, format, include, &item, first)
        };
        first = false;
        Ok::<_, Infallible>(Bytes::from(line))
    });
    let mut resp = Response::new(Body::from_stream(body));
    let ct = if proto { protobuf::WATCH_MEDIA_TYPE } else { "application/json" };
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, private"));
    Ok(resp)
}

/// One watch event in protobuf framing.
fn protobuf_watch_frame(server: &ApiServer, res: &ResourceInfo, format: Format, item: &WatchItem) -> Vec<u8> {
    let (ty, obj) = match item {
        WatchItem::Event(kind, obj) => {
            let body = match format {
                Format::MetadataProtobuf => {
                    let v = partial_metadata(&server.render(res, obj));
                    Bytes::from(protobuf::encode_object(&v, META_V1, "PartialObjectMetadata").unwrap_or_default())
                }
                _ => server.render_protobuf(res, obj),
            };
            (kind.as_str(), body)
        }
        WatchItem::Bookmark { rv, initial_events_end } => {
            let mut meta = json!({"resourceVersion": rv.to_string()});
            if *initial_events_end {
                meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
            }
            let (av, kind) = match format {
                Format::MetadataProtobuf => (META_V1.to_string(), "PartialObjectMetadata".to_string()),
                _ => (res.api_version(), res.kind.clone()),
            };
            let obj = json!({"kind": kind, "apiVersion": av, "metadata": meta});
            ("BOOKMARK", Bytes::from(protobuf::encode_object(&obj, &av, &kind).unwrap_or_default()))
        }
        WatchItem::Error(e) => ("ERROR", Bytes::from(protobuf::encode_status(&e.to_status()))),
    };
    protobuf::watch_frame(ty, &obj)
}

fn render_watch_item(
    server: &ApiServer,
    res: &ResourceInfo,
    format: Format,
    include: IncludeObject,
    item: &WatchItem,
    first: bool,
) -> Vec<u8> {
    let mut out = Vec::new();
    match item {
        WatchItem::Event(kind, obj) => {
            out.extend_from_slice(b"{\"type\":\"");
            out.extend_from_slice(kind.as_str().as_bytes());
            out.extend_from_slice(b"\",\"object\":");
            match format {
                Format::Json | Format::Protobuf => out.extend_from_slice(&server.render_json(res, obj)),
                Format::Metadata | Format::MetadataProtobuf => out.extend_from_slice(
                    &serde_json::to_vec(&partial_metadata(&server.render(res, obj))).unwrap_or_default(),
                ),
                Format::Table(_) => {
                    let v = server.render(res, obj);
                    let mut tbl = table::table(
                        &res.kind,
                        &[v],
                        res.printer_columns.as_ref(),
                        include,
                        server.clock.now(),
                        &obj.rv.to_string(),
                        None,
                    );
                    if !first && let Some(o) = tbl.as_object_mut() {
                        o.insert("columnDefinitions".into(), Value::Array(vec![]));
                    }
                    out.extend_from_slice(&serde_json::to_vec(&tbl).unwrap_or_default());
                }
            }
            out.push(b'}');
        }
        WatchItem::Bookmark { rv, initial_events_end } => {
            let mut meta = json!({"resourceVersion": rv.to_string(), "creationTimestamp": null});
            if *initial_events_end {
                meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
            }
            let obj = json!({"kind": res.kind, "apiVersion": res.api_version(), "metadata": meta});
            out.extend_from_slice(&serde_json::to_vec(&json!({"type": "BOOKMARK", "object": obj})).unwrap_or_default());
        }
        WatchItem::Error(e) => {
            out.extend_from_slice(
                &serde_json::to_vec(&json!({"type": "ERROR", "object": e.to_status()})).unwrap_or_default(),
            );
        }
    }
    out.push(b'\n');
    out
}

fn write_options(q: &Query, headers: &HeaderMap) -> ApiResult<WriteOptions> {
    let field_manager = match q.get("fieldManager").filter(|m| !m.is_empty()) {
        Some(m) => m.to_string(),
        None => headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.split('/').next().unwrap_or_default().chars().take(128).collect())
            .unwrap_or_default(),
    };
    Ok(WriteOptions {
        field_manager,
        dry_run: parse_dry_run(q.all("dryRun"))?,
        validation: FieldValidation::parse(q.get("fieldValidation").unwrap_or_default())?,
        force: q.flag("force"),
        trusted: false,
    })
}

/// Decode a create/update body: JSON, YAML (as upstream also accepts) or,
/// for the built-in types, protobuf.
fn decode_body(res: &ResourceInfo, headers: &HeaderMap, body: &[u8]) -> ApiResult<Value> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/json");
    let media = ct.split(';').next().unwrap_or_default().trim();
    let unrecognized = |e: String| {
        ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {}): couldn't get version/kind; json parse error: {e}",
            res.kind
        ))
    };
    let proto_ok = protobuf::supports(res);
    match media {
        "application/json" | "" | "*/*" => serde_json::from_slice(body).map_err(|e| unrecognized(e.to_string())),
        "application/yaml" | "application/x-yaml" | "text/yaml" => {
            let text = std::str::from_utf8(body).map_err(|e| unrecognized(e.to_string()))?;
            serde_yaml_ng::from_str(text).map_err(|e| unrecognized(e.to_string()))
        }
        protobuf::MEDIA_TYPE if proto_ok => protobuf::decode_body(res, body),
        _ => Err(ApiError::unknown_body_format(if proto_ok { ACCEPTED_ALL } else { ACCEPTED_JSON })),
    }
}

fn create(
    server: &ApiServer,
    t: &Target,
    q: &Query,
    headers: &HeaderMap,
    body: Bytes,
    format: Format,
) -> ApiResult<Response> {
    let opts = write_options(q, headers)?;
    let ns = t.namespace.as_deref();
    match (t.name.as_deref(), t.subresource.as_deref()) {
        (Some(name), Some("eviction")) => {
            let ev = decode_body(&t.res, headers, &body)?;
            let mut ev = ev;
            if opts.dry_run {
                ev["deleteOptions"]["dryRun"] = json!(["All"]);
            }
            let status = server.evict(ns.unwrap_or_default(), name, &ev)?;
            Ok(reply(format, StatusCode::CREATED, &status, &[], &t.res))
        }
        (Some(name), Some("binding")) => {
            let b = decode_body(&t.res, headers, &body)?;
            let status = server.bind(ns.unwrap_or_default(), name, &b, &opts)?;
            Ok(reply(format, StatusCode::CREATED, &status, &[], &t.res))
        }
        (Some(name), Some("proxy")) => server.node_proxy(&Method::POST, name, &t.rest, body).map(proxy_response),
        (Some(_), _) => Err(ApiError::method_not_allowed("create", &t.res.kind)),
        (None, _) if t.res.plural == "bindings" && t.res.group.is_empty() => {
            let b = decode_body(&t.res, headers, &body)?;
            let pod = crate::meta::name(&b).to_string();
            let status = server.bind(ns.unwrap_or_default(), &pod, &b, &opts)?;
            Ok(reply(format, StatusCode::CREATED, &status, &[], &t.res))
        }
        (None, _) => {
            let obj = decode_body(&t.res, headers, &body)?;
            let w = server.create(&t.res, ns, obj, &opts)?;
            Ok(reply(format, StatusCode::CREATED, &w.object, &w.warnings, &t.res))
        }
    }
}

fn update(
    server: &ApiServer,
    t: &Target,
    q: &Query,
    headers: &HeaderMap,
    body: Bytes,
    format: Format,
) -> ApiResult<Response> {
    let opts = write_options(q, headers)?;
    let name = t.name.as_deref().ok_or_else(|| ApiError::method_not_allowed("update", &t.res.kind))?;
    let ns = t.namespace.as_deref();
    if t.subresource.as_deref() == Some("proxy") {
        return server.node_proxy(&Method::PUT, name, &t.rest, body).map(proxy_response);
    }
    let obj = decode_body(&t.res, headers, &body)?;
    match t.subresource.as_deref() {
        None | Some("status") => {
            let w = server.update(&t.res, ns, name, t.subresource.as_deref(), obj, &opts)?;
            Ok(reply(format, StatusCode::OK, &w.object, &w.warnings, &t.res))
        }
        Some("scale") => {
            let scale = server.update_scale(&t.res, ns, name, ScaleChange::Replace(&obj), &opts)?;
            Ok(reply(format, StatusCode::OK, &scale, &[], &t.res))
        }
        Some("finalize") => {
            let w = server.finalize_namespace(name, &obj, &opts)?;
            Ok(reply(format, StatusCode::OK, &w.object, &w.warnings, &t.res))
        }
        Some(_) => Err(ApiError::method_not_allowed("update", &t.res.kind)),
    }
}

fn patch(
    server: &ApiServer,
    t: &Target,
    q: &Query,
    headers: &HeaderMap,
    body: Bytes,
    format: Format,
) -> ApiResult<Response> {
    let opts = write_options(q, headers)?;
    let name = t.name.as_deref().ok_or_else(|| ApiError::method_not_allowed("patch", &t.res.kind))?;
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let ty = PatchType::from_content_type(ct).ok_or_else(|| ApiError::unsupported_media_type(""))?;
    let ns = t.namespace.as_deref();
    match t.subresource.as_deref() {
        None | Some("status") => {
            let w = server.patch(&t.res, ns, name, t.subresource.as_deref(), ty, &body, &opts)?;
            let code = if w.created { StatusCode::CREATED } else { StatusCode::OK };
            Ok(reply(format, code, &w.object, &w.warnings, &t.res))
        }
        Some("scale") => {
            let scale = server.update_scale(&t.res, ns, name, ScaleChange::Patch(ty, &body), &opts)?;
            Ok(reply(format, StatusCode::OK, &scale, &[], &t.res))
        }
        Some("proxy") => server.node_proxy(&Method::PATCH, name, &t.rest, body).map(proxy_response),
        Some(_) => Err(ApiError::method_not_allowed("patch", &t.res.kind)),
    }
}

fn delete_options(q: &Query, headers: &HeaderMap, body: &[u8]) -> ApiResult<DeleteOptions> {
    let mut o = DeleteOptions {
        grace_period: q.int("gracePeriodSeconds")?,
        propagation: q.get("propagationPolicy").filter(|p| !p.is_empty()).map(parse_propagation).transpose()?,
        dry_run: parse_dry_run(q.all("dryRun"))?,
        ..Default::default()
    };
    if let Some(orphan) = q.get("orphanDependents") {
        o.propagation = Some(if orphan == "true" {
            crate::apiserver::Propagation::Orphan
        } else {
            crate::apiserver::Propagation::Foreground
        });
    }
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if ct.split(';').next().map(str::trim) == Some(protobuf::MEDIA_TYPE) && !body.is_empty() {
        let (_, _, v) = protobuf::decode_any(body)
            .map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {}", e.message)))?;
        o.merge_body(&v)?;
    } else if !body.iter().all(u8::is_ascii_whitespace) {
        let v: Value =
            serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?;
        o.merge_body(&v)?;
    }
    Ok(o)
}

fn delete(
    server: &ApiServer,
    t: &Target,
    q: &Query,
    headers: &HeaderMap,
    body: Bytes,
    format: Format,
) -> ApiResult<Response> {
    let name = t.name.as_deref().unwrap_or_default();
    if t.subresource.as_deref() == Some("proxy") {
        return server.node_proxy(&Method::DELETE, name, &t.rest, body).map(proxy_response);
    }
    if t.subresource.is_some() {
        return Err(ApiError::method_not_allowed("delete", &t.res.kind));
    }
    let opts = delete_options(q, headers, &body)?;
    let d = server.delete(&t.res, t.namespace.as_deref(), name, &opts)?;
    if !d.gone || t.res.return_deleted {
        return Ok(reply(format, StatusCode::OK, &d.object, &[], &t.res));
    }
    let details = json!({"name": name, "group": t.res.group, "kind": t.res.plural,
        "uid": d.object.pointer("/metadata/uid").cloned().unwrap_or_default()});
    Ok(reply(format, StatusCode::OK, &crate::error::success_status(200, Some(details)), &[], &t.res))
}

fn delete_collection(
    server: &ApiServer,
    t: &Target,
    q: &Query,
    headers: &HeaderMap,
    body: Bytes,
    format: Format,
) -> ApiResult<Response> {
    let opts = delete_options(q, headers, &body)?;
    let list = list_options(q)?;
    let items = server.delete_collection(&t.res, t.namespace.as_deref(), &list, &opts)?;
    let rv = server.store.current_rv().to_string();
    if format == Format::Protobuf {
        let (av, kind) = (t.res.api_version(), t.res.kind.clone());
        let encoded: Vec<Vec<u8>> = items.iter().filter_map(|v| protobuf::encode_raw(&av, &kind, v)).collect();
        let body = protobuf::encode_list(
            &av,
            &t.res.list_kind(),
            &json!({"resourceVersion": rv}),
            encoded.iter().map(Vec::as_slice),
        )
        .ok_or_else(|| ApiError::internal(format!("{} has no protobuf form", t.res.list_kind())))?;
        return Ok(proto_bytes(StatusCode::OK, body, &[]));
    }
    let items: Vec<Value> = items
        .into_iter()
        .map(|mut v| {
            if let Some(o) = v.as_object_mut() {
                o.remove("kind");
                o.remove("apiVersion");
            }
            v
        })
        .collect();
    Ok(json_ok(&json!({"kind": t.res.list_kind(), "apiVersion": t.res.api_version(),
        "metadata": {"resourceVersion": rv}, "items": items})))
}

// ----- discovery ------------------------------------------------------------------

fn version(server: &ApiServer) -> Value {
    let git = &server.config.version;
    let minor = git.trim_start_matches('v').split('.').nth(1).unwrap_or("32");
    json!({
        "major": "1",
        "minor": minor,
        "gitVersion": git,
        "gitCommit": "kube-sim",
        "gitTreeState": "clean",
        "buildDate": "2026-11-21T00:00:00Z",
        "goVersion": "kube-sim (rust)",
        "compiler": "rustc",
        "platform": "linux/amd64",
    })
}

fn api_versions(server: &ApiServer) -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server.advertise.read().clone()}]})
}

fn group_json(name: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> =
        versions.iter().map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v})).collect();
    json!({"name": name, "versions": vs, "preferredVersion": vs.first().cloned().unwrap_or_default()})
}

fn group_list(server: &ApiServer) -> Value {
    let groups: Vec<Value> = server.registry.groups().iter().map(|g| group_json(&g.name, &g.versions)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

fn group(server: &ApiServer, name: &str) -> ApiResult<Response> {
    let g = server.registry.groups().into_iter().find(|g| g.name == name).ok_or_else(ApiError::no_route)?;
    let mut v = group_json(&g.name, &g.versions);
    v["kind"] = json!("APIGroup");
    v["apiVersion"] = json!("v1");
    Ok(json_ok(&v))
}

fn resource_list(server: &ApiServer, group: &str, version: &str) -> ApiResult<Response> {
    let rs = server.registry.resources_of(group, version);
    if rs.is_empty() {
        return Err(ApiError::no_route());
    }
    let resources: Vec<Value> = rs.iter().flat_map(|r| r.discovery_entries()).collect();
    let mut v = json!({"kind": "APIResourceList", "groupVersion": rs[0].api_version(), "resources": resources});
    if !group.is_empty() {
        v["apiVersion"] = json!("v1");
    }
    Ok(json_ok(&v))
}

// ----- OpenAPI ----------------------------------------------------------------------

/// The stored CRDs (their schemas make the custom resources' documents).
fn crds(server: &ApiServer) -> Vec<Value> {
    let res = server.res("apiextensions.k8s.io", "customresourcedefinitions");
    let snap = server.store.snapshot(&res.storage);
    snap.iter_from(None).map(|o| server.render(&res, o)).collect()
}

fn openapi_response(body: &[u8], content_type: &'static str) -> Response {
    let mut r = Response::new(Body::from(body.to_vec()));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn openapi_v3_group_version(server: &ApiServer, group: &str, version: &str) -> ApiResult<Response> {
    let doc =
        crate::openapi::document(&server.registry, group, version, &crds(server)).ok_or_else(ApiError::no_route)?;
    Ok(openapi_response(&doc.body, "application/json"))
}

/// `/openapi/v2` in JSON, or in gnostic's protobuf (which kubectl 1.27 and
/// 1.28 ask for).
fn openapi_v2(headers: &HeaderMap) -> ApiResult<Response> {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if accept.split(',').next().and_then(|p| p.split(';').next()).map(str::trim) == Some(crate::openapi_v2::MEDIA_TYPE)
    {
        let doc = crate::openapi::v2_protobuf()
            .ok_or_else(|| ApiError::internal("the OpenAPI v2 document does not decompress"))?;
        return Ok(openapi_response(&doc.body, crate::openapi_v2::CONTENT_TYPE));
    }
    let json_ok = accept.trim().is_empty()
        || accept.split(',').any(|p| {
            let m = p.split(';').next().unwrap_or_default().trim();
            matches!(m, "application/json" | "*/*" | "application/*")
        });
    if !json_ok {
        return Err(ApiError::not_acceptable(format!(
            "only the following media types are accepted: application/json, {}",
            crate::openapi_v2::MEDIA_TYPE
        )));
    }
    let doc = crate::openapi::v2().ok_or_else(|| ApiError::internal("the OpenAPI v2 document does not decompress"))?;
    Ok(openapi_response(&doc.body, "application/json"))
}

// ----- simulator control -------------------------------------------------------

fn sim_control(server: &ApiServer, method: &Method, rest: &[&str], body: Bytes) -> ApiResult<Response> {
    match (method, rest) {
        (&Method::GET, ["faults"]) => Ok(json_ok(&serde_json::to_value(server.faults.get()).unwrap_or_default())),
        (&Method::PUT | &Method::POST, ["faults"]) => {
            let cfg: FaultConfig = serde_json::from_slice(&body)
                .map_err(|e| ApiError::bad_request(format!("fault configuration: {e}")))?;
            server.faults.set(cfg).map_err(ApiError::bad_request)?;
            Ok(json_ok(&serde_json::to_value(server.faults.get()).unwrap_or_default()))
        }
        (&Method::DELETE, ["faults"]) => {
            server.faults.clear();
            Ok(json_ok(&json!({})))
        }
        (&Method::POST, ["disconnect-watches"]) => {
            server.disconnect_watches();
            Ok(json_ok(&json!({"disconnected": true})))
        }
        (&Method::GET, ["requests"]) => {
            let counts: Vec<Value> = server
                .requests
                .counts()
                .into_iter()
                .map(|(k, n)| json!({"agent": k.agent, "user": k.user, "verb": k.verb, "group": k.group, "resource": k.resource, "count": n}))
                .collect();
            let denied: Vec<Value> = server
                .requests
                .denied()
                .into_iter()
                .map(|(k, n)| json!({"agent": k.agent, "user": k.user, "verb": k.verb, "group": k.group, "resource": k.resource, "count": n}))
                .collect();
            Ok(json_ok(&json!({"enabled": server.requests.enabled(), "requests": counts, "denied": denied})))
        }
        (&Method::PUT | &Method::POST, ["requests"]) => {
            server.requests.enable();
            Ok(json_ok(&json!({"enabled": true})))
        }
        (&Method::DELETE, ["requests"]) => {
            server.requests.reset();
            Ok(json_ok(&json!({"enabled": server.requests.enabled()})))
        }
        (&Method::POST, ["compact"]) => {
            server.store.compact();
            Ok(json_ok(&json!({"compactedAt": server.store.current_rv().to_string()})))
        }
        _ => Err(ApiError::no_route()),
    }
}

// ----- responses ------------------------------------------------------------------

fn json_bytes(code: StatusCode, body: Vec<u8>) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = code;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// The answer of a write or a subresource read, in the negotiated format.
fn reply(format: Format, code: StatusCode, v: &Value, warnings: &[String], res: &ResourceInfo) -> Response {
    if format.is_protobuf()
        && let Some(body) = protobuf::encode_object(v, &res.api_version(), &res.kind)
    {
        return proto_bytes(code, body, warnings);
    }
    json_with(code, v, warnings)
}

fn proto_bytes(code: StatusCode, body: impl Into<Bytes>, warnings: &[String]) -> Response {
    let mut r = Response::new(Body::from(body.into()));
    *r.status_mut() = code;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(protobuf::MEDIA_TYPE));
    add_warnings(&mut r, warnings);
    r
}

fn add_warnings(r: &mut Response, warnings: &[String]) {
    for w in warnings {
        let escaped = w.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(h) = HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
            r.headers_mut().append(header::WARNING, h);
        }
    }
}

fn json_ok(v: &Value) -> Response {
    json_with(StatusCode::OK, v, &[])
}

fn json_with(code: StatusCode, v: &Value, warnings: &[String]) -> Response {
    let mut r = json_bytes(code, serde_json::to_vec(v).unwrap_or_default());
    add_warnings(&mut r, warnings);
    r
}

fn text(code: StatusCode, s: &'static str) -> Response {
    (code, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], s).into_response()
}

/// A kubelet's answer: JSON, or plain text for its errors (as the kubelet writes them).
fn proxy_response((code, body): (u16, Value)) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    match body {
        Value::String(text) => (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response(),
        other => json_bytes(status, serde_json::to_vec(&other).unwrap_or_default()),
    }
}

pub fn error_response(e: &ApiError) -> Response {
    error_response_in(e, false)
}

/// An error's `Status`, in protobuf when `proto`.
pub fn error_response_in(e: &ApiError, proto: bool) -> Response {
    let code = StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = if proto {
        proto_bytes(code, protobuf::encode_status(&e.to_status()), &[])
    } else {
        json_bytes(code, serde_json::to_vec(&e.to_status()).unwrap_or_default())
    };
    if let Some(s) = e.retry_after
        && let Ok(h) = HeaderValue::from_str(&s.to_string())
    {
        r.headers_mut().insert(header::RETRY_AFTER, h);
    }
    r
}
