//! What a request asks to do, read from its method and URL alone (upstream's
//! `RequestInfoFactory`): a resource request (verb, API group, version,
//! namespace, resource, subresource, name) or a non-resource one (path and
//! lower-case HTTP method). Authorization and the request log both use it.

/// The attributes authorization decides on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestInfo {
    pub resource_request: bool,
    pub path: String,
    pub verb: String,
    pub api_group: String,
    pub api_version: String,
    pub namespace: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
}

impl RequestInfo {
    /// A resource request's attributes (for SubjectAccessReviews and tests).
    pub fn resource(verb: &str, group: &str, resource: &str, namespace: &str, name: &str) -> Self {
        let (resource, subresource) = match resource.split_once('/') {
            Some((r, s)) => (r, s),
            None => (resource, ""),
        };
        RequestInfo {
            resource_request: true,
            verb: verb.into(),
            api_group: group.into(),
            resource: resource.into(),
            subresource: subresource.into(),
            namespace: namespace.into(),
            name: name.into(),
            ..Default::default()
        }
    }

    /// A non-resource request's attributes.
    pub fn non_resource(verb: &str, path: &str) -> Self {
        RequestInfo { verb: verb.into(), path: path.into(), ..Default::default() }
    }

    /// `pods` or `pods/eviction`.
    pub fn full_resource(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }

    /// Parse a request. `query` is the raw query string.
    pub fn parse(method: &str, path: &str, query: &str) -> RequestInfo {
        let mut info = RequestInfo { path: path.to_string(), verb: method.to_ascii_lowercase(), ..Default::default() };
        let parts: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
        if parts.len() < 3 {
            return info;
        }
        let mut rest: &[&str] = match parts[0] {
            "api" => &parts[1..],
            "apis" if parts.len() >= 4 => {
                info.api_group = parts[1].to_string();
                &parts[2..]
            }
            _ => return info,
        };
        info.resource_request = true;
        info.api_version = rest[0].to_string();
        rest = &rest[1..];
        let mut special = false;
        if matches!(rest.first(), Some(&("watch" | "proxy"))) {
            if rest.len() < 2 {
                return info;
            }
            info.verb = rest[0].to_string();
            special = rest[0] == "proxy";
            rest = &rest[1..];
        } else {
            info.verb = match method {
                "POST" => "create",
                "GET" | "HEAD" => "get",
                "PUT" => "update",
                "PATCH" => "patch",
                "DELETE" => "delete",
                _ => "",
            }
            .to_string();
        }
        if rest.first() == Some(&"namespaces") && rest.len() > 1 {
            info.namespace = rest[1].to_string();
            if rest.len() > 2 && !matches!(rest[2], "status" | "finalize") {
                rest = &rest[2..];
            }
        }
        if rest.len() >= 3 && !special {
            info.subresource = rest[2].to_string();
        }
        if rest.len() >= 2 {
            info.name = rest[1].to_string();
        }
        if let Some(r) = rest.first() {
            info.resource = r.to_string();
        }
        if info.name.is_empty() && info.verb == "get" {
            let mut watch = false;
            for (k, v) in form_urlencoded::parse(query.as_bytes()) {
                match k.as_ref() {
                    "watch" => watch = !matches!(v.to_ascii_lowercase().as_str(), "false" | "0" | ""),
                    // A list or watch of one object by name can be allowed by resourceNames.
                    "fieldSelector" => {
                        if let Some(name) = exact_name(&v) {
                            info.name = name;
                        }
                    }
                    _ => {}
                }
            }
            info.verb = if watch { "watch" } else { "list" }.to_string();
        }
        if info.name.is_empty() && info.verb == "delete" {
            info.verb = "deletecollection".into();
        }
        info
    }
}

/// The name a field selector requires exactly (`metadata.name=x` or `==`),
/// when it is a valid path segment and the only requirement on the name.
fn exact_name(selector: &str) -> Option<String> {
    let mut found = None;
    for req in selector.split(',') {
        let req = req.trim();
        let value = req.strip_prefix("metadata.name==").or_else(|| req.strip_prefix("metadata.name="));
        if let Some(v) = value {
            if found.is_some() {
                return None;
            }
            found = Some(v.to_string());
        }
    }
    found.filter(|n| !n.is_empty() && n != "." && n != ".." && !n.contains('/') && !n.contains('%'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(method: &str, path: &str, query: &str) -> RequestInfo {
        RequestInfo::parse(method, path, query)
    }

    #[test]
    fn resource_requests() {
        let i = p("GET", "/api/v1/namespaces/ns/pods", "");
        assert!(i.resource_request);
        assert_eq!((i.verb.as_str(), i.namespace.as_str(), i.resource.as_str()), ("list", "ns", "pods"));
        let i = p("GET", "/api/v1/namespaces/ns/pods", "watch=true&resourceVersion=1");
        assert_eq!(i.verb, "watch");
        let i = p("GET", "/api/v1/watch/namespaces/ns/pods", "");
        assert_eq!((i.verb.as_str(), i.resource.as_str()), ("watch", "pods"));
        let i = p("POST", "/api/v1/namespaces/ns/pods/p/eviction", "");
        assert_eq!((i.verb.as_str(), i.full_resource().as_str(), i.name.as_str()), ("create", "pods/eviction", "p"));
        let i = p("DELETE", "/apis/apps/v1/namespaces/ns/deployments", "");
        assert_eq!((i.verb.as_str(), i.api_group.as_str()), ("deletecollection", "apps"));
        let i = p("GET", "/api/v1/nodes/n1/proxy/checkpoint/x", "");
        assert_eq!((i.verb.as_str(), i.full_resource().as_str(), i.name.as_str()), ("get", "nodes/proxy", "n1"));
        let i = p("PUT", "/apis/apps/v1/namespaces/ns/deployments/d/status", "");
        assert_eq!((i.verb.as_str(), i.full_resource().as_str()), ("update", "deployments/status"));
    }

    #[test]
    fn namespaces_are_their_own_namespace() {
        let i = p("GET", "/api/v1/namespaces/team-a", "");
        assert_eq!((i.resource.as_str(), i.name.as_str(), i.namespace.as_str()), ("namespaces", "team-a", "team-a"));
        let i = p("PUT", "/api/v1/namespaces/team-a/finalize", "");
        assert_eq!((i.full_resource().as_str(), i.namespace.as_str()), ("namespaces/finalize", "team-a"));
        let i = p("GET", "/api/v1/namespaces", "");
        assert_eq!((i.verb.as_str(), i.namespace.as_str()), ("list", ""));
    }

    #[test]
    fn non_resource_requests() {
        for (path, method) in
            [("/api", "GET"), ("/apis", "GET"), ("/api/v1", "GET"), ("/apis/apps/v1", "GET"), ("/metrics", "POST")]
        {
            let i = p(method, path, "");
            assert!(!i.resource_request, "{path}");
            assert_eq!(i.verb, method.to_ascii_lowercase());
        }
        assert!(!p("GET", "/openapi/v3/apis/apps/v1", "").resource_request);
    }

    #[test]
    fn a_list_by_name_names_the_object() {
        let i = p("GET", "/api/v1/namespaces/ns/configmaps", "fieldSelector=metadata.name%3Dcm1&watch=1");
        assert_eq!((i.verb.as_str(), i.name.as_str()), ("watch", "cm1"));
        let i = p("GET", "/api/v1/namespaces/ns/configmaps", "fieldSelector=metadata.name%3Da,metadata.name%3Db");
        assert_eq!(i.name, "");
    }
}
