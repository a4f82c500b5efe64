//! Kubernetes' protobuf wire format for the built-in types: the
//! `application/vnd.kubernetes.protobuf` bodies client-go and kubectl (1.32+)
//! send and ask for.
//!
//! An object on the wire is the magic `k8s\0` followed by a `runtime.Unknown`
//! envelope: `{typeMeta: {apiVersion, kind}, raw: <the message>,
//! contentEncoding: "", contentType: ""}`. Watch streams frame each
//! `metav1.WatchEvent` (whose `object.raw` is such an envelope) with a 4-byte
//! big-endian length. The messages themselves are those of the `k8s-pb` crate,
//! walked through a table ([`schema`]) so that kube-sim can translate them
//! to and from the JSON objects it stores ([`codec`]).
//!
//! Custom resources and `metrics.k8s.io` have no protobuf form: as upstream,
//! a request whose body is protobuf gets 415 and one that accepts only
//! protobuf gets 406, which makes client-go fall back to JSON.

pub mod codec;
pub mod schema;

use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult};
use crate::resources::{ResourceInfo, split_api_version};
use schema::Schema;

/// The prefix of every protobuf-encoded object.
pub const MAGIC: [u8; 4] = *b"k8s\0";
/// The media type of protobuf bodies.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";
/// The media type of protobuf watch streams.
pub const WATCH_MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf;stream=watch";

/// The message of `kind` in `api_version`; meta types (Status, DeleteOptions,
/// WatchEvent, ...) are found whatever group they are sent under, as Go
/// registers them in every group version.
fn message_for(api_version: &str, kind: &str) -> Option<usize> {
    let s = Schema::get();
    let (group, version) = split_api_version(api_version);
    s.for_kind(group, version, kind).or_else(|| s.for_kind("meta.k8s.io", "v1", kind))
}

/// Whether objects of `res` have a protobuf form (built-in, not metrics).
pub fn supports(res: &ResourceInfo) -> bool {
    !res.custom && !res.read_only && Schema::get().for_kind(&res.group, &res.version, &res.kind).is_some()
}

/// Whether a URL path names a group whose types have a protobuf form.
pub fn path_supports(path: &str) -> bool {
    let mut segs = path.trim_matches('/').split('/');
    match (segs.next(), segs.next(), segs.next()) {
        (Some("api"), Some(_), _) => true,
        (Some("apis"), Some(g), Some(v)) => g != "meta.k8s.io" && schema::is_builtin_group(g, v),
        _ => false,
    }
}

fn push_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn push_bytes(out: &mut Vec<u8>, tag: u8, b: &[u8]) {
    out.push((tag << 3) | 2);
    push_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Wrap an encoded message in the `k8s\0` + `runtime.Unknown` envelope.
pub fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    envelope_at(api_version, kind, raw).0
}

/// [`envelope`], and where in it `raw` lies: a stored object keeps its
/// enveloped form only, serving a GET without a copy and a list item as a slice.
pub fn envelope_at(api_version: &str, kind: &str, raw: &[u8]) -> (Vec<u8>, std::ops::Range<usize>) {
    let mut type_meta = Vec::with_capacity(api_version.len() + kind.len() + 4);
    push_bytes(&mut type_meta, 1, api_version.as_bytes());
    push_bytes(&mut type_meta, 2, kind.as_bytes());
    let mut out = Vec::with_capacity(raw.len() + type_meta.len() + 16);
    out.extend_from_slice(&MAGIC);
    push_bytes(&mut out, 1, &type_meta);
    push_bytes(&mut out, 2, raw);
    let at = out.len() - raw.len()..out.len();
    // Go writes the empty contentEncoding and contentType too.
    out.extend_from_slice(&[0x1a, 0x00, 0x22, 0x00]);
    (out, at)
}

/// The message of an object (no envelope), or None when `kind` has none.
pub fn encode_raw(api_version: &str, kind: &str, v: &Value) -> Option<Vec<u8>> {
    let msg = message_for(api_version, kind)?;
    let mut out = Vec::with_capacity(256);
    codec::encode_message(Schema::get(), msg, v, &mut out);
    Some(out)
}

/// An object in the wire format, typed by its own `apiVersion`/`kind` (or the
/// given defaults when it has none).
pub fn encode_object(v: &Value, api_version: &str, kind: &str) -> Option<Vec<u8>> {
    let av = v.get("apiVersion").and_then(Value::as_str).filter(|s| !s.is_empty()).unwrap_or(api_version);
    let k = v.get("kind").and_then(Value::as_str).filter(|s| !s.is_empty()).unwrap_or(kind);
    Some(envelope(av, k, &encode_raw(av, k, v)?))
}

/// A list in the wire format from already encoded items: `{metadata: ListMeta
/// (1), items (2)}`, written straight into its envelope (one copy of each item).
pub fn encode_list<'a>(
    api_version: &str,
    list_kind: &str,
    list_meta: &Value,
    items: impl Iterator<Item = &'a [u8]> + Clone,
) -> Option<Vec<u8>> {
    let meta_msg = Schema::get().by_name("apimachinery/pkg/apis/meta/v1.ListMeta")?;
    let mut meta = Vec::new();
    codec::encode_message(Schema::get(), meta_msg, list_meta, &mut meta);
    let field_len = |n: usize| 1 + varint_len(n as u64) + n;
    let raw_len = field_len(meta.len()) + items.clone().map(|i| field_len(i.len())).sum::<usize>();
    let mut type_meta = Vec::with_capacity(api_version.len() + list_kind.len() + 4);
    push_bytes(&mut type_meta, 1, api_version.as_bytes());
    push_bytes(&mut type_meta, 2, list_kind.as_bytes());
    let mut out = Vec::with_capacity(raw_len + type_meta.len() + 24);
    out.extend_from_slice(&MAGIC);
    push_bytes(&mut out, 1, &type_meta);
    out.push((2 << 3) | 2);
    push_varint(&mut out, raw_len as u64);
    push_bytes(&mut out, 1, &meta);
    for item in items {
        push_bytes(&mut out, 2, item);
    }
    out.extend_from_slice(&[0x1a, 0x00, 0x22, 0x00]);
    Some(out)
}

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// A watch event frame: 4-byte big-endian length, then `WatchEvent{type,
/// object: {raw: <object in the wire format>}}`.
pub fn watch_frame(event_type: &str, object: &[u8]) -> Vec<u8> {
    let mut raw_ext = Vec::with_capacity(object.len() + 6);
    push_bytes(&mut raw_ext, 1, object);
    let mut ev = Vec::with_capacity(raw_ext.len() + event_type.len() + 8);
    push_bytes(&mut ev, 1, event_type.as_bytes());
    push_bytes(&mut ev, 2, &raw_ext);
    let mut out = Vec::with_capacity(ev.len() + 4);
    out.extend_from_slice(&(ev.len() as u32).to_be_bytes());
    out.extend_from_slice(&ev);
    out
}

/// Split the envelope: (apiVersion, kind, raw message).
pub fn unwrap_envelope(body: &[u8]) -> Result<(String, String, &[u8]), String> {
    let Some(rest) = body.strip_prefix(&MAGIC) else {
        return Err(format!(
            "provided data does not appear to be a protobuf message, expected prefix [{}]",
            MAGIC.iter().map(u8::to_string).collect::<Vec<_>>().join(" ")
        ));
    };
    let mut r = rest;
    let (mut api_version, mut kind, mut raw): (String, String, &[u8]) = (String::new(), String::new(), &[]);
    while !r.is_empty() {
        let (tag, wire, next) = read_key(r)?;
        r = next;
        let (field, next) = match wire {
            2 => read_len(r)?,
            0 => (&[][..], skip_varint(r)?),
            w => return Err(format!("proto: illegal wireType {w}")),
        };
        r = next;
        match tag {
            1 => {
                let mut t = field;
                while !t.is_empty() {
                    let (tag, wire, next) = read_key(t)?;
                    if wire != 2 {
                        return Err(format!("proto: wrong wireType = {wire} for field TypeMeta"));
                    }
                    let (s, next) = read_len(next)?;
                    t = next;
                    match tag {
                        1 => api_version = String::from_utf8_lossy(s).into_owned(),
                        2 => kind = String::from_utf8_lossy(s).into_owned(),
                        _ => {}
                    }
                }
            }
            2 => raw = field,
            _ => {}
        }
    }
    Ok((api_version, kind, raw))
}

fn read_varint(b: &[u8]) -> Result<(u64, &[u8]), String> {
    let mut v = 0u64;
    for (i, byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if *byte < 0x80 {
            return Ok((v, &b[i + 1..]));
        }
    }
    Err("unexpected EOF".into())
}

fn skip_varint(b: &[u8]) -> Result<&[u8], String> {
    read_varint(b).map(|(_, r)| r)
}

fn read_key(b: &[u8]) -> Result<(u64, u8, &[u8]), String> {
    let (k, r) = read_varint(b)?;
    if k >> 3 == 0 {
        return Err("proto: illegal tag 0".into());
    }
    Ok((k >> 3, (k & 7) as u8, r))
}

fn read_len(b: &[u8]) -> Result<(&[u8], &[u8]), String> {
    let (n, r) = read_varint(b)?;
    let n = usize::try_from(n).map_err(|_| "unexpected EOF".to_string())?;
    if n > r.len() {
        return Err("unexpected EOF".into());
    }
    Ok((&r[..n], &r[n..]))
}

/// Decode any enveloped object: (apiVersion, kind, its JSON form with
/// `apiVersion` and `kind` set).
pub fn decode_any(body: &[u8]) -> ApiResult<(String, String, Value)> {
    let (api_version, kind, raw) = unwrap_envelope(body).map_err(ApiError::bad_request)?;
    let msg = message_for(&api_version, &kind).ok_or_else(|| {
        ApiError::bad_request(format!("no kind \"{kind}\" is registered for version \"{api_version}\""))
    })?;
    let mut v = codec::decode_message(Schema::get(), msg, raw).map_err(|e| ApiError::bad_request(e.0))?;
    if let Some(o) = v.as_object_mut() {
        let mut typed = Map::new();
        typed.insert("apiVersion".into(), Value::String(api_version.clone()));
        typed.insert("kind".into(), Value::String(kind.clone()));
        typed.append(o);
        *o = typed;
    }
    Ok((api_version, kind, v))
}

/// Decode a request body sent to `res` in protobuf. Errors are upstream's 400.
pub fn decode_body(res: &ResourceInfo, body: &[u8]) -> ApiResult<Value> {
    decode_any(body).map(|(_, _, v)| v).map_err(|e| {
        let shown = &body[..body.len().min(80)];
        let hex: String = shown.iter().map(|b| format!("{b:02x}")).collect();
        ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {}): {} ({hex})",
            res.kind, e.message
        ))
    })
}

/// The `Status` of an error, in the wire format.
pub fn encode_status(status: &Value) -> Vec<u8> {
    encode_object(status, "v1", "Status").unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_is_found_where_the_envelope_says() {
        // Long enough for a two-byte length varint.
        let raw: Vec<u8> = (0..300u16).map(|i| (i % 251) as u8).collect();
        let (env, at) = envelope_at("apps/v1", "Deployment", &raw);
        assert_eq!(&env[at], &raw[..]);
        assert_eq!(env, envelope("apps/v1", "Deployment", &raw));
        assert!(env.starts_with(&MAGIC));
    }
}
