//! Label and field selectors, in both the query-string syntax (`app=web,tier!=db,
//! env in (a,b),!legacy`) and the `LabelSelector` object form (matchLabels /
//! matchExpressions). Semantics follow `k8s.io/apimachinery/pkg/labels` and
//! `pkg/fields`: a `!=` or `notin` requirement matches objects that lack the key.

use std::collections::BTreeMap;

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Eq,
    NotEq,
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    DoesNotExist,
    /// `gt`/`lt` exist upstream for integer values (used by node affinity).
    Gt(i64),
    Lt(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub op: Op,
    /// The value for Eq/NotEq.
    pub value: String,
}

impl Requirement {
    pub fn matches(&self, get: impl Fn(&str) -> Option<String>) -> bool {
        self.holds(get(&self.key).as_deref())
    }

    /// Whether the requirement holds for the key's value `v` (absent: `None`).
    /// Borrowing: matching a cached object's labels copies nothing.
    pub fn holds(&self, v: Option<&str>) -> bool {
        match &self.op {
            Op::Eq => v == Some(self.value.as_str()),
            Op::NotEq => v != Some(self.value.as_str()),
            Op::In(vals) => v.is_some_and(|v| vals.iter().any(|x| x == v)),
            Op::NotIn(vals) => v.is_none_or(|v| !vals.iter().any(|x| x == v)),
            Op::Exists => v.is_some(),
            Op::DoesNotExist => v.is_none(),
            Op::Gt(n) => v.and_then(|v| v.parse::<i64>().ok()).is_some_and(|x| x > *n),
            Op::Lt(n) => v.and_then(|v| v.parse::<i64>().ok()).is_some_and(|x| x < *n),
        }
    }
}

/// A conjunction of requirements; empty matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    pub reqs: Vec<Requirement>,
    /// A `LabelSelector` object that selects nothing (upstream: a nil selector in
    /// some APIs); never produced by parsing.
    pub nothing: bool,
}

impl LabelSelector {
    pub fn everything() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty() && !self.nothing
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_by(|k| labels.get(k).map(String::as_str))
    }

    /// [`LabelSelector::matches`] for labels kept in any form: `get` reads one.
    pub fn matches_by<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        !self.nothing && self.reqs.iter().all(|r| r.holds(get(&r.key)))
    }

    /// [`LabelSelector::matches`] for an object's optional labels (absent: none).
    pub fn matches_opt(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        match labels {
            Some(l) => self.matches(l),
            None => self.matches(&BTreeMap::new()),
        }
    }

    /// Parse the query-string syntax. Errors read like upstream's.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        for term in split_terms(s)? {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            reqs.push(parse_label_term(term)?);
        }
        Ok(LabelSelector { reqs, nothing: false })
    }

    /// Convert a `metav1.LabelSelector` object. `null`/absent selects nothing in
    /// the places upstream treats it so (callers decide); `{}` selects everything.
    pub fn from_object(sel: &Value) -> Result<Self, String> {
        let mut reqs = Vec::new();
        if let Some(ml) = sel.get("matchLabels").and_then(Value::as_object) {
            for (k, v) in ml {
                let value = v.as_str().ok_or_else(|| format!("matchLabels[{k}]: must be a string"))?;
                validate_key(k)?;
                reqs.push(Requirement { key: k.clone(), op: Op::Eq, value: value.to_string() });
            }
        }
        if let Some(exprs) = sel.get("matchExpressions").and_then(Value::as_array) {
            for e in exprs {
                let key = e.get("key").and_then(Value::as_str).ok_or("matchExpressions[].key: Required value")?;
                validate_key(key)?;
                let values: Vec<String> = e
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                    .unwrap_or_default();
                let op = match e.get("operator").and_then(Value::as_str) {
                    Some("In") if !values.is_empty() => Op::In(values),
                    Some("NotIn") if !values.is_empty() => Op::NotIn(values),
                    Some("In" | "NotIn") => {
                        return Err(format!("{key}: for 'in', 'notin' operators, values set can't be empty"));
                    }
                    Some("Exists") => Op::Exists,
                    Some("DoesNotExist") => Op::DoesNotExist,
                    other => return Err(format!("{other:?} is not a valid label selector operator")),
                };
                reqs.push(Requirement { key: key.into(), op, value: String::new() });
            }
        }
        Ok(LabelSelector { reqs, nothing: false })
    }

    /// A selector that matches nothing.
    pub fn nothing() -> Self {
        LabelSelector { reqs: Vec::new(), nothing: true }
    }
}

impl std::fmt::Display for LabelSelector {
    /// The canonical string form (what a Scale's `status.selector` carries).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut reqs = self.reqs.clone();
        reqs.sort_by(|a, b| a.key.cmp(&b.key));
        let parts: Vec<String> = reqs
            .iter()
            .map(|r| match &r.op {
                Op::Eq => format!("{}={}", r.key, r.value),
                Op::NotEq => format!("{}!={}", r.key, r.value),
                Op::In(v) => format!("{} in ({})", r.key, sorted(v).join(",")),
                Op::NotIn(v) => format!("{} notin ({})", r.key, sorted(v).join(",")),
                Op::Exists => r.key.clone(),
                Op::DoesNotExist => format!("!{}", r.key),
                Op::Gt(n) => format!("{}>{n}", r.key),
                Op::Lt(n) => format!("{}<{n}", r.key),
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v
}

/// Split on commas that are not inside `( … )`.
fn split_terms(s: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err(format!("unable to parse requirement: unexpected ')' in {s:?}"));
                }
            }
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(format!("unable to parse requirement: unclosed '(' in {s:?}"));
    }
    out.push(&s[start..]);
    Ok(out)
}

fn parse_label_term(term: &str) -> Result<Requirement, String> {
    if let Some(key) = term.strip_prefix('!') {
        let key = key.trim();
        validate_key(key)?;
        return Ok(Requirement { key: key.into(), op: Op::DoesNotExist, value: String::new() });
    }
    for (tok, set_op) in [(" notin ", true), (" in ", false)] {
        if let Some(pos) = term.find(tok) {
            let key = term[..pos].trim();
            validate_key(key)?;
            let rest = term[pos + tok.len()..].trim();
            let inner = rest
                .strip_prefix('(')
                .and_then(|r| r.strip_suffix(')'))
                .ok_or_else(|| format!("unable to parse requirement: found '{rest}', expected: '('"))?;
            let values: Vec<String> =
                inner.split(',').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect();
            for v in &values {
                validate_value(v)?;
            }
            if values.is_empty() {
                return Err(format!("{key}: for 'in', 'notin' operators, values set can't be empty"));
            }
            let op = if set_op { Op::NotIn(values) } else { Op::In(values) };
            return Ok(Requirement { key: key.into(), op, value: String::new() });
        }
    }
    for (tok, op) in [("!=", Op::NotEq), ("==", Op::Eq), ("=", Op::Eq)] {
        if let Some((k, v)) = term.split_once(tok) {
            let (k, v) = (k.trim(), v.trim());
            validate_key(k)?;
            validate_value(v)?;
            return Ok(Requirement { key: k.into(), op, value: v.into() });
        }
    }
    for (tok, gt) in [(">", true), ("<", false)] {
        if let Some((k, v)) = term.split_once(tok) {
            let k = k.trim();
            validate_key(k)?;
            let n: i64 = v.trim().parse().map_err(|_| {
                format!("unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer: {v:?}")
            })?;
            let op = if gt { Op::Gt(n) } else { Op::Lt(n) };
            return Ok(Requirement { key: k.into(), op, value: String::new() });
        }
    }
    validate_key(term)?;
    Ok(Requirement { key: term.into(), op: Op::Exists, value: String::new() })
}

/// A label key: optional DNS-subdomain prefix and `/`, then a name of at most 63
/// characters of `[A-Za-z0-9_.-]`, starting and ending alphanumeric.
pub fn validate_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let bad = |why: &str| Err(format!("unable to parse requirement: invalid label key {key:?}: {why}"));
    if let Some(p) = prefix
        && (p.is_empty()
            || p.len() > 253
            || !p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.'))
    {
        return bad("prefix part must be a lowercase RFC 1123 subdomain");
    }
    if name.is_empty() || name.len() > 63 {
        return bad("name part must be non-empty and no more than 63 characters");
    }
    if !is_label_name(name) {
        return bad(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
        );
    }
    Ok(())
}

fn validate_value(v: &str) -> Result<(), String> {
    if v.is_empty() || (v.len() <= 63 && is_label_name(v)) {
        Ok(())
    } else {
        Err(format!(
            "unable to parse requirement: invalid label value: {v:?}: at key: must be no more than 63 characters and consist of alphanumeric characters, '-', '_' or '.', starting and ending with an alphanumeric character"
        ))
    }
}

fn is_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// A field selector: `field=value`, `field==value`, `field!=value`, comma-joined.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    pub reqs: Vec<(String, bool, String)>,
}

impl FieldSelector {
    /// Parse; `supported` says which field labels the resource allows (upstream
    /// answers 400 `field label not supported: x` for others).
    pub fn parse(s: &str, supported: impl Fn(&str) -> bool) -> Result<Self, String> {
        let mut reqs = Vec::new();
        for term in s.split(',') {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            let (field, eq, value) = if let Some((f, v)) = term.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = term.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = term.split_once('=') {
                (f, true, v)
            } else {
                return Err(format!("invalid selector: '{term}'; can't understand '{term}'"));
            };
            let field = field.trim();
            if !supported(field) {
                return Err(format!("field label not supported: {field}"));
            }
            reqs.push((field.to_string(), eq, value.trim().to_string()));
        }
        Ok(FieldSelector { reqs })
    }

    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    pub fn matches(&self, get: impl Fn(&str) -> Option<String>) -> bool {
        self.reqs.iter().all(|(f, eq, v)| {
            let actual = get(f).unwrap_or_default();
            (actual == *v) == *eq
        })
    }

    /// The single `metadata.name=x` value, when that is all the selector asks
    /// (lets a list or watch of one object skip the scan).
    pub fn exact_name(&self) -> Option<&str> {
        match self.reqs.as_slice() {
            [(f, true, v)] if f == "metadata.name" => Some(v),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn every_operator_of_the_string_syntax() {
        let l = labels(&[("app", "web"), ("tier", "fe"), ("env", "prod")]);
        let yes = [
            "app=web",
            "app==web",
            "tier!=db",
            "env in (prod,stage)",
            "env notin (dev)",
            "app",
            "!legacy",
            "missing!=x",
            "missing notin (a)",
            "app=web,tier=fe",
        ];
        for s in yes {
            assert!(LabelSelector::parse(s).unwrap().matches(&l), "{s} should match");
        }
        let no = [
            "app=db",
            "tier!=fe",
            "env in (dev)",
            "env notin (prod)",
            "legacy",
            "!app",
            "app=web,tier=db",
            "missing in (a)",
        ];
        for s in no {
            assert!(!LabelSelector::parse(s).unwrap().matches(&l), "{s} should not match");
        }
    }

    #[test]
    fn bad_selectors_are_rejected_with_a_reason() {
        for s in ["a in b", "a in ()", "(a", "Bad Key=x", "a=b c", "a>x"] {
            let err = LabelSelector::parse(s).unwrap_err();
            assert!(!err.is_empty(), "{s}");
        }
    }

    #[test]
    fn object_form_matches_like_upstream() {
        let sel = LabelSelector::from_object(&serde_json::json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe", "be"]},
                                 {"key": "canary", "operator": "DoesNotExist"}]
        }))
        .unwrap();
        assert!(sel.matches(&labels(&[("app", "web"), ("tier", "be")])));
        assert!(!sel.matches(&labels(&[("app", "web"), ("tier", "be"), ("canary", "1")])));
        assert!(!sel.matches(&labels(&[("app", "web")])));
        assert!(LabelSelector::from_object(&serde_json::json!({})).unwrap().matches(&labels(&[])));
        assert_eq!(sel.to_string(), "app=web,!canary,tier in (be,fe)", "sorted by key, as upstream prints selectors");
        assert!(
            LabelSelector::from_object(&serde_json::json!({"matchExpressions": [{"key": "a", "operator": "Nope"}]}))
                .is_err()
        );
    }

    #[test]
    fn field_selectors_check_support_and_match() {
        let ok = |f: &str| matches!(f, "metadata.name" | "spec.nodeName" | "status.phase");
        let fs = FieldSelector::parse("spec.nodeName=n1,status.phase!=Failed", ok).unwrap();
        let get = |phase: &'static str| {
            move |f: &str| match f {
                "spec.nodeName" => Some("n1".to_string()),
                "status.phase" => Some(phase.to_string()),
                _ => None,
            }
        };
        assert!(fs.matches(get("Running")));
        assert!(!fs.matches(get("Failed")));
        assert_eq!(FieldSelector::parse("spec.foo=1", ok).unwrap_err(), "field label not supported: spec.foo");
        assert!(FieldSelector::parse("nonsense", ok).is_err());
        // An empty value selects objects where the field is unset.
        assert!(FieldSelector::parse("spec.nodeName=", ok).unwrap().matches(|_| None));
        assert_eq!(FieldSelector::parse("metadata.name=x", ok).unwrap().exact_name(), Some("x"));
    }
}
