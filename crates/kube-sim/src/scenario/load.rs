//! Parsing and validating scenario files, with errors that say where.
//!
//! A scenario is hand-written, so every error names the file, the line and
//! the field path (`scenario.yaml:14: nodes[1].capacity.cpu: invalid quantity
//! "lots": ...`) and all problems are reported at once:
//!
//! 1. YAML syntax errors come from libyaml with their line (parsing stops there).
//! 2. Type errors and unknown fields come from serde. serde stops at the
//!    first, so each top-level list item is decoded again on its own (walking
//!    the same text, so lines and paths stay exact) to find one per item.
//! 3. Semantic errors (bad quantities, profiles and times, unknown nodes,
//!    duplicates, a PDB selecting nothing, ...) are collected with their field
//!    path; the line is found by walking the YAML text to that path and letting
//!    serde_yaml_ng report the position of the value it finds there.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{DeserializeOwned, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::model::{
    Action, BUILTIN_NAMESPACES, CONTROL_PLANE_KEY, Defaults, NodeSpec, PriorityClassSpec, Scenario, ScenarioFile, Text,
    TimelineEntry, Workload, WorkloadKind, build_objects, create_objects, expand_names, pod_label_map,
};
use super::profile::{Profile, parse_quantity_milli, parse_seconds};

/// One problem in a scenario file.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioError {
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Field path such as `nodes[1].capacity.cpu`; empty for the document itself.
    pub path: String,
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ScenarioError {}

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// A field path, built while validating and printed like serde_yaml_ng's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct FieldPath(Vec<Seg>);

impl FieldPath {
    fn key(&self, k: &str) -> FieldPath {
        let mut p = self.clone();
        p.0.push(Seg::Key(k.to_string()));
        p
    }

    fn idx(&self, i: usize) -> FieldPath {
        let mut p = self.clone();
        p.0.push(Seg::Index(i));
        p
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Index(i) => write!(f, "[{i}]")?,
                // Label keys such as `male.keti.dev/accuracy` would read as nested fields.
                Seg::Key(k) if !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') => {
                    write!(f, "[{k:?}]")?
                }
                Seg::Key(k) if n == 0 => f.write_str(k)?,
                Seg::Key(k) => write!(f, ".{k}")?,
            }
        }
        Ok(())
    }
}

/// Marker in the `expecting` text of a walker that did not find its path.
const NOT_FOUND: &str = "__kube_sim_path_not_found__";

/// What to do with the value at the end of a walked path.
trait Leaf {
    fn leaf<'de, D: Deserializer<'de>>(d: D) -> Result<(), D::Error>;
}

/// Fails on purpose, so serde_yaml_ng reports the value's position.
struct Here;

impl Leaf for Here {
    fn leaf<'de, D: Deserializer<'de>>(d: D) -> Result<(), D::Error> {
        struct Fail;
        impl Visitor<'_> for Fail {
            type Value = ();
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("__kube_sim_path_found__")
            }
        }
        d.deserialize_any(Fail)
    }
}

/// Decodes the value as `T`, reporting its type errors with exact positions.
struct Check<T>(PhantomData<T>);

impl<T: DeserializeOwned> Leaf for Check<T> {
    fn leaf<'de, D: Deserializer<'de>>(d: D) -> Result<(), D::Error> {
        T::deserialize(d).map(|_| ())
    }
}

/// Walks a YAML document down a field path, skipping everything else.
struct Walk<'a, L>(&'a [Seg], PhantomData<L>);

impl<'de, L: Leaf> DeserializeSeed<'de> for Walk<'_, L> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        match self.0.split_first() {
            None => L::leaf(d),
            Some((seg, rest)) => d.deserialize_any(Step::<L> { seg, rest, leaf: PhantomData }),
        }
    }
}

struct Step<'a, L> {
    seg: &'a Seg,
    rest: &'a [Seg],
    leaf: PhantomData<L>,
}

impl<'de, L: Leaf> Visitor<'de> for Step<'_, L> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(NOT_FOUND)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Seg::Key(want) = self.seg else { return Err(serde::de::Error::custom(NOT_FOUND)) };
        while let Some(key) = map.next_key::<serde_yaml_ng::Value>()? {
            if key.as_str() == Some(want.as_str()) {
                map.next_value_seed(Walk::<L>(self.rest, PhantomData))?;
                // Consume the rest, or serde_yaml_ng reports a length mismatch.
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                return Ok(());
            }
            map.next_value::<IgnoredAny>()?;
        }
        Err(serde::de::Error::custom(NOT_FOUND))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Seg::Index(want) = self.seg else { return Err(serde::de::Error::custom(NOT_FOUND)) };
        let mut i = 0;
        while i < *want {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Err(serde::de::Error::custom(NOT_FOUND));
            }
            i += 1;
        }
        if seq.next_element_seed(Walk::<L>(self.rest, PhantomData))?.is_none() {
            return Err(serde::de::Error::custom(NOT_FOUND));
        }
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }
}

/// Walks `text` to `path` and applies `L` there; `None` when the path is absent.
fn walk<L: Leaf>(text: &str, path: &[Seg]) -> Option<serde_yaml_ng::Error> {
    let d = serde_yaml_ng::Deserializer::from_str(text);
    match Walk::<L>(path, PhantomData).deserialize(d) {
        Ok(()) => None,
        Err(e) if e.to_string().contains(NOT_FOUND) => None,
        Err(e) => Some(e),
    }
}

/// The line of the value at `path`, or of its nearest ancestor present in the text.
fn locate(text: &str, path: &FieldPath) -> Option<usize> {
    (0..=path.0.len()).rev().find_map(|n| walk::<Here>(text, &path.0[..n]).and_then(|e| e.location()).map(|l| l.line()))
}

/// Turns a serde_yaml_ng error (`path: message at line L column C`) into a
/// `ScenarioError`; for unknown and missing fields the path names the field.
fn yaml_error(file: &str, e: &serde_yaml_ng::Error) -> ScenarioError {
    let mut text = e.to_string();
    let line = e.location().map(|l| l.line());
    if let Some(l) = e.location() {
        text = text.replacen(&format!(" at line {} column {}", l.line(), l.column()), "", 1);
    }
    let looks_like_path = |p: &str| !p.is_empty() && !p.contains(' ') && !p.contains('`');
    let (mut path, message) = match text.split_once(": ") {
        Some((p, m)) if looks_like_path(p) => (p.to_string(), m.to_string()),
        _ => (String::new(), text.clone()),
    };
    for prefix in ["unknown field `", "missing field `"] {
        if let Some((field, _)) = message.strip_prefix(prefix).and_then(|rest| rest.split_once('`')) {
            path = if path.is_empty() { field.to_string() } else { format!("{path}.{field}") };
        }
    }
    let mut message = message;
    let looks_like_value =
        |f: &str| f.ends_with(')') || f.ends_with('%') || f.starts_with(|c: char| c.is_ascii_digit());
    let split_value = message
        .strip_prefix("unknown field `")
        .and_then(|r| r.split_once('`'))
        .is_some_and(|(f, _)| looks_like_value(f));
    if split_value || message.contains("while parsing a flow") {
        message.push_str(
            " (inside { } and [ ], quote values that contain ',', '{' or '}', such as profiles and {i} names)",
        );
    }
    ScenarioError { file: file.to_string(), line, path, message }
}

/// serde_yaml_ng reports a duplicate key at the start of its mapping; point
/// at the second occurrence instead (same indentation as the first).
fn duplicate_key_line(text: &str, message: &str, map_line: usize) -> usize {
    let Some(key) =
        message.strip_prefix("duplicate entry with key ").and_then(|k| k.strip_prefix('"')?.strip_suffix('"'))
    else {
        return map_line;
    };
    let mut first_indent = None;
    for (n, line) in text.lines().enumerate().skip(map_line.saturating_sub(1)) {
        let body = line.trim_start().trim_start_matches("- ");
        if body.starts_with(&format!("{key}:")) || body.starts_with(&format!("\"{key}\":")) {
            let indent = line.len() - body.len();
            match first_indent {
                None => first_indent = Some(indent),
                Some(i) if i == indent => return n + 1,
                Some(_) => {}
            }
        }
    }
    map_line
}

/// The few errors without a position are about the document as a whole
/// ("more than one document"); point at the second document's marker.
fn second_document_line(text: &str) -> usize {
    let mut content = false;
    for (n, line) in text.lines().enumerate() {
        let t = line.trim_start();
        if (t.starts_with("---") || t.starts_with("...")) && content {
            return n + 1;
        }
        content |= !t.is_empty() && !t.starts_with('#') && !t.starts_with("---") && !t.starts_with('%');
    }
    1
}

/// The top level with the lists left undecoded: finds top-level type errors
/// and unknown keys without stopping at the first bad list item.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct TopLevel {
    name: String,
    description: Option<String>,
    seed: Option<u64>,
    defaults: Option<Defaults>,
    nodes: Option<Vec<IgnoredAny>>,
    namespaces: Option<Vec<IgnoredAny>>,
    priority_classes: Option<Vec<IgnoredAny>>,
    workloads: Option<Vec<IgnoredAny>>,
    timeline: Option<Vec<IgnoredAny>>,
}

/// At most this many errors are reported; past it, fixing the first ones is the better next step.
const MAX_ERRORS: usize = 100;

/// Type errors, one per top-level item at most (serde stops at the first
/// error of a decode, so each item is decoded on its own).
fn type_errors(file: &str, text: &str, doc: &serde_yaml_ng::Value) -> Vec<ScenarioError> {
    let mut errors = Vec::new();
    if let Err(e) = serde_yaml_ng::from_str::<TopLevel>(text) {
        errors.push(yaml_error(file, &e));
    }
    let len = |k: &str| doc.get(k).and_then(serde_yaml_ng::Value::as_sequence).map_or(0, Vec::len);
    type Probe = fn(&str, &[Seg]) -> Option<serde_yaml_ng::Error>;
    let sections: [(&str, Probe); 5] = [
        ("nodes", walk::<Check<NodeSpec>>),
        ("namespaces", walk::<Check<String>>),
        ("priorityClasses", walk::<Check<PriorityClassSpec>>),
        ("workloads", walk::<Check<Workload>>),
        ("timeline", walk::<Check<TimelineEntry>>),
    ];
    for (section, check) in sections {
        for i in 0..len(section) {
            if errors.len() >= MAX_ERRORS {
                return errors;
            }
            if let Some(e) = check(text, &[Seg::Key(section.to_string()), Seg::Index(i)]) {
                errors.push(yaml_error(file, &e));
            }
        }
    }
    errors
}

/// Parses and validates a scenario. `file_name` is only used in messages.
/// Returns every error found (up to a hundred), each with its line and field path.
pub fn parse(file_name: &str, text: &str) -> Result<Scenario, Vec<ScenarioError>> {
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).map_err(|e| {
        let mut error = yaml_error(file_name, &e);
        error.line = Some(match error.line {
            Some(line) => duplicate_key_line(text, &error.message, line),
            None => second_document_line(text),
        });
        vec![error]
    })?;
    if !doc.is_mapping() {
        return Err(vec![ScenarioError {
            file: file_name.to_string(),
            line: Some(1),
            path: String::new(),
            message: "a scenario is a mapping with at least `name` (see docs/scenarios.md)".to_string(),
        }]);
    }
    let file: ScenarioFile = match serde_yaml_ng::from_str(text) {
        Ok(file) => file,
        Err(e) => {
            let mut errors = type_errors(file_name, text, &doc);
            if errors.is_empty() {
                errors.push(yaml_error(file_name, &e));
            }
            errors.sort_by_key(|e| e.line);
            errors.dedup();
            return Err(errors);
        }
    };
    let mut checker = Checker::new(&file);
    checker.check_all();
    if !checker.errors.is_empty() {
        let mut errors: Vec<ScenarioError> = checker
            .errors
            .into_iter()
            .take(MAX_ERRORS)
            .map(|(path, message)| ScenarioError {
                file: file_name.to_string(),
                line: locate(text, &path),
                path: path.to_string(),
                message,
            })
            .collect();
        // In file order, as an editor would list them.
        errors.sort_by_key(|e| e.line);
        return Err(errors);
    }
    let mut timeline = checker.actions;
    timeline.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(Scenario {
        name: file.name.clone(),
        description: file.description.clone(),
        seed: file.seed,
        defaults: file.defaults.clone(),
        objects: build_objects(&file),
        timeline,
        spec: file,
    })
}

// ---- value checks (pure) ----

fn is_alnum_lower(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// DNS-1123 subdomain: what most object names must be.
fn dns_subdomain(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.starts_with(is_alnum_lower)
        && name.ends_with(is_alnum_lower)
        && name.chars().all(|c| is_alnum_lower(c) || c == '-' || c == '.');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid name {name:?}: must be lowercase letters, digits, '-' and '.', start and end with a letter \
             or digit, at most 253 characters"
        ))
    }
}

/// DNS-1123 label: namespace and container names.
fn dns_label(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(is_alnum_lower)
        && name.ends_with(is_alnum_lower)
        && name.chars().all(|c| is_alnum_lower(c) || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid name {name:?}: must be lowercase letters, digits and '-', start and end with a letter or \
             digit, at most 63 characters"
        ))
    }
}

/// The name part of a label key, and label values (which may be empty).
fn label_name_ok(s: &str) -> bool {
    let alnum = |c: char| c.is_ascii_alphanumeric();
    s.len() <= 63
        && (s.is_empty()
            || (s.starts_with(alnum)
                && s.ends_with(alnum)
                && s.chars().all(|c| alnum(c) || c == '-' || c == '_' || c == '.')))
}

/// A label or annotation key: `[prefix/]name`.
fn label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = key.rsplit_once('/').map_or((None, key), |(p, n)| (Some(p), n));
    let ok = !name.is_empty() && label_name_ok(name) && prefix.is_none_or(|p| dns_subdomain(p).is_ok());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid key {key:?}: must be [prefix/]name, the name at most 63 letters, digits, '-', '_' or '.', \
             the prefix a DNS subdomain"
        ))
    }
}

fn label_value(value: &str) -> Result<(), String> {
    if label_name_ok(value) {
        Ok(())
    } else {
        Err(format!(
            "invalid label value {value:?}: at most 63 letters, digits, '-', '_' or '.', starting and ending \
             with a letter or digit (quote numbers, e.g. \"0.9\")"
        ))
    }
}

/// A quantity Kubernetes itself accepts (so no `K`), in milli-units.
fn k8s_quantity(text: &str) -> Result<i128, String> {
    if text.ends_with('K') {
        return Err(format!("invalid quantity {text:?}: Kubernetes has no `K` suffix; use `k` (1000) or `Ki` (1024)"));
    }
    parse_quantity_milli(text)
}

const BEHAVIOURS: &str = "run, complete, crash, fail:<exit code 1-255> or wait";

fn behaviour(b: &str) -> Result<(), String> {
    match b.trim() {
        "run" | "complete" | "crash" | "wait" => Ok(()),
        other => match other.strip_prefix("fail:").map(|c| c.trim().parse::<u8>()) {
            Some(Ok(code)) if code > 0 => Ok(()),
            Some(Ok(_)) => Err("fail:0 is a success; use `complete`".to_string()),
            _ => Err(format!("invalid behaviour {other:?}: expected {BEHAVIOURS}")),
        },
    }
}

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq)]
enum Req {
    Eq(String, String),
    Ne(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    Absent(String),
}

impl Req {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Req::Eq(k, v) => labels.get(k) == Some(v),
            Req::Ne(k, v) => labels.get(k) != Some(v),
            Req::In(k, vs) => labels.get(k).is_some_and(|l| vs.contains(l)),
            Req::NotIn(k, vs) => labels.get(k).is_none_or(|l| !vs.contains(l)),
            Req::Exists(k) => labels.contains_key(k),
            Req::Absent(k) => !labels.contains_key(k),
        }
    }
}

/// Parses a label selector string as `kubectl -l` takes it: comma-separated
/// `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`.
fn label_selector(s: &str) -> Result<Vec<Req>, String> {
    let bad = |why: String| {
        format!("invalid selector {s:?}: {why}; expected comma-separated k=v, k!=v, k in (a,b), k notin (a,b), k or !k")
    };
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        if !(0..=1).contains(&depth) {
            return Err(bad("unbalanced parentheses".to_string()));
        }
    }
    if depth != 0 {
        return Err(bad("unbalanced parentheses".to_string()));
    }
    parts.push(&s[start..]);
    if s.trim().is_empty() {
        return Ok(Vec::new());
    }
    let key = |k: &str| label_key(k.trim()).map(|()| k.trim().to_string());
    let value = |v: &str| label_value(v.trim()).map(|()| v.trim().to_string());
    let values = |part: &str, rest: &str| match rest.trim().strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
        Some(vs) => vs.split(',').map(value).collect::<Result<Vec<_>, _>>(),
        None => Err(format!("{part:?}: the values must be in parentheses")),
    };
    let mut reqs = Vec::new();
    for part in parts.iter().map(|p| p.trim()) {
        let req = if let Some(k) = part.strip_prefix('!') {
            key(k).map(Req::Absent)
        } else if let Some((k, v)) = part.split_once("!=") {
            key(k).and_then(|k| Ok(Req::Ne(k, value(v)?)))
        } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
            key(k).and_then(|k| Ok(Req::Eq(k, value(v)?)))
        } else if let Some((k, rest)) = part.split_once(" notin ") {
            key(k).and_then(|k| Ok(Req::NotIn(k, values(part, rest)?)))
        } else if let Some((k, rest)) = part.split_once(" in ") {
            key(k).and_then(|k| Ok(Req::In(k, values(part, rest)?)))
        } else if part.is_empty() {
            Err("empty requirement".to_string())
        } else {
            key(part).map(Req::Exists)
        };
        reqs.push(req.map_err(bad)?);
    }
    Ok(reqs)
}

// ---- the checker ----

/// Kinds `delete` and `scale` may name, with whether they live in a namespace.
const DELETABLE_KINDS: [(&str, bool); 9] = [
    ("Deployment", true),
    ("StatefulSet", true),
    ("DaemonSet", true),
    ("Pod", true),
    ("PodDisruptionBudget", true),
    ("PersistentVolumeClaim", true),
    ("Node", false),
    ("Namespace", false),
    ("PriorityClass", false),
];

/// Nodes can have at most this many copies per entry: a typo such as
/// `count: 5000000` should fail clearly, not exhaust memory.
const MAX_COUNT: i64 = 100_000;

/// Collects every semantic error of a parsed file, with its field path, and
/// the timeline's actions.
struct Checker<'a> {
    file: &'a ScenarioFile,
    errors: Vec<(FieldPath, String)>,
    actions: Vec<(f64, Action)>,
    /// Node name → index of the `nodes` entry that made it.
    nodes: BTreeMap<String, usize>,
    namespaces: BTreeSet<String>,
    priority_classes: BTreeSet<String>,
    /// (kind, namespace, name) → where it is defined; initial and timeline-created objects.
    objects: BTreeMap<(String, String, String), FieldPath>,
    /// Namespace and pod labels of every pod-running workload.
    pod_sets: Vec<(String, BTreeMap<String, String>)>,
}

impl<'a> Checker<'a> {
    fn new(file: &'a ScenarioFile) -> Checker<'a> {
        Checker {
            file,
            errors: Vec::new(),
            actions: Vec::new(),
            nodes: BTreeMap::new(),
            namespaces: BUILTIN_NAMESPACES.iter().map(|s| s.to_string()).collect(),
            priority_classes: ["system-cluster-critical", "system-node-critical"].map(String::from).into(),
            objects: BTreeMap::new(),
            pod_sets: Vec::new(),
        }
    }

    fn err(&mut self, path: &FieldPath, message: impl Into<String>) {
        self.errors.push((path.clone(), message.into()));
    }

    /// Records `result`'s error, if any, at `path`.
    fn check<T>(&mut self, path: &FieldPath, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.err(path, e);
                None
            }
        }
    }

    fn check_all(&mut self) {
        let root = FieldPath::default();
        let file = self.file;
        if file.name.trim().is_empty() {
            self.err(&root.key("name"), "must not be empty");
        }
        let d = &file.defaults;
        for (field, v) in [("startupSeconds", d.startup_seconds), ("shutdownSeconds", d.shutdown_seconds)] {
            self.seconds_field(&root.key("defaults").key(field), v);
        }
        if !(d.heartbeat_seconds.is_finite() && d.heartbeat_seconds > 0.0) {
            self.err(&root.key("defaults").key("heartbeatSeconds"), "must be a number of seconds greater than zero");
        }
        for (i, spec) in file.nodes.iter().enumerate() {
            self.node(&root.key("nodes").idx(i), i, spec);
        }
        for (i, ns) in file.namespaces.iter().enumerate() {
            let path = root.key("namespaces").idx(i);
            if self.check(&path, dns_label(ns)).is_some()
                && !self.namespaces.insert(ns.clone())
                && !BUILTIN_NAMESPACES.contains(&ns.as_str())
            {
                self.err(&path, format!("duplicate namespace {ns:?}"));
            }
        }
        self.priority_classes_section(&root);
        // Register every object first, so references may point forwards
        // (a PDB listed before its Deployment, a scale of a workload created later).
        for (i, w) in file.workloads.iter().enumerate() {
            self.register(&root.key("workloads").idx(i), w);
        }
        for (i, entry) in file.timeline.iter().enumerate() {
            for (j, w) in entry.create.iter().flatten().enumerate() {
                self.register(&root.key("timeline").idx(i).key("create").idx(j), w);
            }
        }
        for (i, w) in file.workloads.iter().enumerate() {
            self.workload(&root.key("workloads").idx(i), w);
        }
        for (i, entry) in file.timeline.iter().enumerate() {
            self.timeline_entry(&root.key("timeline").idx(i), entry);
        }
    }

    fn seconds_field(&mut self, path: &FieldPath, v: f64) {
        if !(v.is_finite() && v >= 0.0) {
            self.err(path, format!("must be a non-negative number of seconds, got {v}"));
        }
    }

    fn count_field(&mut self, path: &FieldPath, v: i64, max: i64) -> bool {
        if v < 0 {
            self.err(path, format!("must not be negative, got {v}"));
            false
        } else if v > max {
            self.err(path, format!("at most {max}, got {v}"));
            false
        } else {
            true
        }
    }

    /// Checks a `name` + optional `count` pair: a count needs a `{i}` pattern and vice versa.
    fn name_pattern(&mut self, path: &FieldPath, name: &str, count: Option<i64>) -> bool {
        let has_placeholder = name.contains("{i}");
        match count {
            Some(n) => {
                if !self.count_field(&path.key("count"), n, MAX_COUNT) {
                    return false;
                }
                if !has_placeholder {
                    self.err(
                        &path.key("name"),
                        format!("with `count`, the name must contain {{i}}, e.g. \"{name}-{{i}}\""),
                    );
                    return false;
                }
            }
            None if has_placeholder => {
                self.err(&path.key("name"), "the {i} placeholder needs `count`");
                return false;
            }
            None => {}
        }
        self.check(&path.key("name"), dns_subdomain(&name.replace("{i}", "1"))).is_some()
    }

    fn labels(&mut self, path: &FieldPath, labels: &BTreeMap<String, Text>, values_too: bool) {
        for (k, v) in labels {
            let p = path.key(k);
            if self.check(&p, label_key(k)).is_some() && values_too {
                self.check(&p, label_value(v.as_str()));
            }
        }
    }

    fn profile_field(&mut self, path: &FieldPath, text: Option<&Text>) -> Option<Profile> {
        let text = text?;
        self.check(path, text.as_str().parse::<Profile>())
    }

    fn node(&mut self, path: &FieldPath, index: usize, spec: &NodeSpec) {
        if self.name_pattern(path, &spec.name, spec.count) {
            for name in expand_names(&spec.name, spec.count) {
                if let Some(other) = self.nodes.insert(name.clone(), index) {
                    self.nodes.insert(name.clone(), other);
                    self.err(&path.key("name"), format!("duplicate node name {name:?} (also nodes[{other}])"));
                    break;
                }
            }
        }
        let cap = path.key("capacity");
        let cpu = self.check(&cap.key("cpu"), k8s_quantity(spec.capacity.cpu.as_str()));
        let memory = self.check(&cap.key("memory"), k8s_quantity(spec.capacity.memory.as_str()));
        for (field, v) in [("cpu", cpu), ("memory", memory)] {
            if v == Some(0) {
                self.err(&cap.key(field), "must be greater than zero");
            }
        }
        let pods = spec.capacity.pods.unwrap_or(110);
        self.count_field(&cap.key("pods"), pods, 1_000_000);
        if let Some(alloc) = &spec.allocatable {
            let ap = path.key("allocatable");
            for (field, text, capacity) in [("cpu", &alloc.cpu, cpu), ("memory", &alloc.memory, memory)] {
                let Some(text) = text else { continue };
                let v = self.check(&ap.key(field), k8s_quantity(text.as_str()));
                if let (Some(v), Some(c)) = (v, capacity)
                    && v > c
                {
                    self.err(&ap.key(field), format!("{text} is more than the capacity"));
                }
            }
            if let Some(p) = alloc.pods
                && self.count_field(&ap.key("pods"), p, 1_000_000)
                && p > pods
            {
                self.err(&ap.key("pods"), format!("{p} is more than the capacity ({pods})"));
            }
        }
        self.labels(&path.key("labels"), &spec.labels, true);
        self.labels(&path.key("annotations"), &spec.annotations, false);
        for (i, t) in spec.taints.iter().enumerate() {
            let tp = path.key("taints").idx(i);
            self.check(&tp.key("key"), label_key(&t.key));
            if let Some(v) = &t.value {
                self.check(&tp.key("value"), label_value(v.as_str()));
            }
            if !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&t.effect.as_str()) {
                self.err(
                    &tp.key("effect"),
                    format!("invalid effect {:?}: expected NoSchedule, PreferNoSchedule or NoExecute", t.effect),
                );
            }
        }
        if let Some(u) = &spec.system_usage {
            self.profile_field(&path.key("systemUsage").key("cpu"), u.cpu.as_ref());
            self.profile_field(&path.key("systemUsage").key("memory"), u.memory.as_ref());
        }
    }

    fn priority_classes_section(&mut self, root: &FieldPath) {
        let mut default_seen: Option<usize> = None;
        for (i, pc) in self.file.priority_classes.iter().enumerate() {
            let path = root.key("priorityClasses").idx(i);
            if self.check(&path.key("name"), dns_subdomain(&pc.name)).is_some() {
                if pc.name.starts_with("system-") {
                    self.err(&path.key("name"), "names starting with \"system-\" are reserved");
                } else if !self.priority_classes.insert(pc.name.clone()) {
                    self.err(&path.key("name"), format!("duplicate priority class {:?}", pc.name));
                }
            }
            if !(-2_147_483_648..=1_000_000_000).contains(&pc.value) {
                self.err(
                    &path.key("value"),
                    format!("must be at most 1000000000 (higher is reserved), got {}", pc.value),
                );
            }
            if pc.global_default {
                if let Some(other) = default_seen {
                    self.err(
                        &path.key("globalDefault"),
                        format!("priorityClasses[{other}] is already the global default"),
                    );
                }
                default_seen = Some(i);
            }
            if let Some(p) = &pc.preemption_policy
                && p != "PreemptLowerPriority"
                && p != "Never"
            {
                self.err(
                    &path.key("preemptionPolicy"),
                    format!("invalid {p:?}: expected PreemptLowerPriority or Never"),
                );
            }
        }
    }
}

impl Checker<'_> {
    /// Records the objects a workload entry creates (for duplicate and reference checks).
    fn register(&mut self, path: &FieldPath, w: &Workload) {
        let ns = w.namespace.clone().unwrap_or_else(|| "default".to_string());
        let add = |this: &mut Self, kind: &str, ns: &str, name: String, at: FieldPath| {
            let key = (kind.to_string(), ns.to_string(), name);
            if let Some(other) = this.objects.get(&key) {
                let msg = format!("duplicate {kind} {:?} in namespace {ns:?} (also {other})", key.2);
                this.err(&at, msg);
            } else {
                this.objects.insert(key, path.clone());
            }
        };
        if w.kind == WorkloadKind::Raw {
            let Some(obj) = &w.object else { return };
            let get = |p: &str| obj.pointer(p).and_then(serde_json::Value::as_str).map(str::to_string);
            if let (Some(kind), Some(name)) = (get("/kind"), get("/metadata/name")) {
                if kind == "Namespace" {
                    self.namespaces.insert(name.clone());
                }
                let ns = get("/metadata/namespace").unwrap_or_default();
                add(self, &kind, &ns, name, path.key("object"));
            }
            return;
        }
        let Some(name) = &w.name else { return };
        let count = if w.kind == WorkloadKind::Pod { w.count.filter(|n| (0..=MAX_COUNT).contains(n)) } else { None };
        if w.kind == WorkloadKind::Pod && count.is_some() {
            for pod in expand_names(name, count) {
                add(self, "Pod", &ns, pod, path.key("name"));
            }
        } else {
            add(self, w.kind.as_str(), &ns, name.clone(), path.key("name"));
        }
        if let Some(vc) = &w.volume_claim {
            let claim = vc.name.clone().unwrap_or_else(|| format!("{name}-data"));
            let per_pod = count.is_some() && claim.contains("{i}");
            let claims = if per_pod { expand_names(&claim, count) } else { vec![claim] };
            for c in claims {
                add(self, "PersistentVolumeClaim", &ns, c, path.key("volumeClaim"));
            }
        }
        if w.kind.runs_pods() {
            let labels = pod_label_map(w);
            if w.kind != WorkloadKind::Pod {
                let app = labels.get("app").cloned().unwrap_or_default();
                let key = ("__app__".to_string(), ns.clone(), app.clone());
                if let Some(other) = self.objects.get(&key) {
                    let msg = format!(
                        "selects the same pods (app={app}) as {other}; give one of them a different `app` label"
                    );
                    self.err(&path.key("name"), msg);
                } else {
                    self.objects.insert(key, path.clone());
                }
            }
            self.pod_sets.push((ns, labels));
        }
    }

    fn namespace_ref(&mut self, path: &FieldPath, ns: &str) -> bool {
        if self.namespaces.contains(ns) {
            return true;
        }
        let declared: Vec<&str> = self.file.namespaces.iter().map(String::as_str).collect();
        self.err(
            path,
            format!("namespace {ns:?} is not declared; add it to `namespaces` (declared: {})", declared.join(", ")),
        );
        false
    }

    fn node_ref(&mut self, path: &FieldPath, name: &str) -> Option<String> {
        if self.nodes.contains_key(name) {
            return Some(name.to_string());
        }
        let mut known: Vec<&str> = self.nodes.keys().take(8).map(String::as_str).collect();
        if self.nodes.len() > 8 {
            known.push("...");
        }
        self.err(path, format!("unknown node {name:?} (nodes: {})", known.join(", ")));
        None
    }

    /// True when some node has all the selector's labels (including the
    /// automatic hostname, os, arch and control-plane labels).
    fn selector_matches_a_node(&self, selector: &BTreeMap<String, Text>) -> bool {
        self.file.nodes.iter().enumerate().any(|(i, spec)| {
            selector.iter().all(|(k, v)| match k.as_str() {
                "kubernetes.io/hostname" => self.nodes.get(v.as_str()) == Some(&i),
                "kubernetes.io/os" => v.as_str() == "linux",
                "kubernetes.io/arch" => v.as_str() == "amd64",
                CONTROL_PLANE_KEY if spec.control_plane => v.as_str().is_empty(),
                _ => spec.labels.get(k) == Some(v),
            })
        })
    }

    /// Reports fields set on a kind they mean nothing for.
    fn fields_for_kind(&mut self, path: &FieldPath, w: &Workload) {
        use WorkloadKind::*;
        let k = w.kind;
        let pods = "Deployment, StatefulSet, DaemonSet and Pod";
        let fields: [(&str, bool, bool, &str); 22] = [
            ("name", w.name.is_some(), k != Raw, "every kind but Raw (use object.metadata.name)"),
            ("namespace", w.namespace.is_some(), k != Raw, "every kind but Raw (use object.metadata.namespace)"),
            ("labels", !w.labels.is_empty(), k != Raw, "every kind but Raw"),
            ("annotations", !w.annotations.is_empty(), k != Raw, "every kind but Raw"),
            ("count", w.count.is_some(), k == Pod, "Pod"),
            ("replicas", w.replicas.is_some(), matches!(k, Deployment | StatefulSet), "Deployment and StatefulSet"),
            ("priorityClassName", w.priority_class_name.is_some(), k.runs_pods(), pods),
            ("nodeSelector", !w.node_selector.is_empty(), k.runs_pods(), pods),
            ("tolerations", !w.tolerations.is_empty(), k.runs_pods(), pods),
            ("affinity", w.affinity.is_some(), k.runs_pods(), pods),
            ("startupSeconds", w.startup_seconds.is_some(), k.runs_pods(), pods),
            ("shutdownSeconds", w.shutdown_seconds.is_some(), k.runs_pods(), pods),
            ("terminationGracePeriodSeconds", w.termination_grace_period_seconds.is_some(), k.runs_pods(), pods),
            ("volumeClaim", w.volume_claim.is_some(), k.runs_pods(), pods),
            ("containers", !w.containers.is_empty(), k.runs_pods(), pods),
            ("usage", w.usage.is_some(), k.runs_pods(), pods),
            ("nodeName", w.node_name.is_some(), k == Pod, "Pod"),
            ("restartPolicy", w.restart_policy.is_some(), k == Pod, "Pod"),
            ("minAvailable", w.min_available.is_some(), k == PodDisruptionBudget, "PodDisruptionBudget"),
            ("maxUnavailable", w.max_unavailable.is_some(), k == PodDisruptionBudget, "PodDisruptionBudget"),
            ("selector", w.selector.is_some(), k == PodDisruptionBudget, "PodDisruptionBudget"),
            ("object", w.object.is_some(), k == Raw, "Raw"),
        ];
        let pvc = [
            ("size", w.size.is_some()),
            ("accessModes", !w.access_modes.is_empty()),
            ("storageClassName", w.storage_class_name.is_some()),
        ];
        let pvc_fields = pvc.map(|(f, set)| (f, set, k == PersistentVolumeClaim, "PersistentVolumeClaim"));
        for (field, set, allowed, kinds) in fields.into_iter().chain(pvc_fields) {
            if set && !allowed {
                self.err(&path.key(field), format!("`{field}` does not apply to kind {k}; it is for {kinds}"));
            }
        }
    }
}

const ACCESS_MODES: [&str; 4] = ["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"];

impl Checker<'_> {
    fn workload(&mut self, path: &FieldPath, w: &Workload) {
        self.fields_for_kind(path, w);
        let ns = w.namespace.as_deref().unwrap_or("default");
        if w.kind != WorkloadKind::Raw {
            match &w.name {
                Some(name) => {
                    let count = if w.kind == WorkloadKind::Pod { w.count } else { None };
                    self.name_pattern(path, name, count);
                }
                None => self.err(&path.key("name"), format!("a {} needs a name", w.kind)),
            }
            self.namespace_ref(&path.key("namespace"), ns);
            self.labels(&path.key("labels"), &w.labels, true);
            self.labels(&path.key("annotations"), &w.annotations, false);
        }
        if let Some(r) = w.replicas {
            self.count_field(&path.key("replicas"), r, i64::from(i32::MAX));
        }
        if let Some(pc) = &w.priority_class_name
            && !self.priority_classes.contains(pc)
        {
            let declared: Vec<&str> = self.priority_classes.iter().map(String::as_str).collect();
            let msg = format!("unknown priority class {pc:?} (known: {})", declared.join(", "));
            self.err(&path.key("priorityClassName"), msg);
        }
        let sel_path = path.key("nodeSelector");
        self.labels(&sel_path, &w.node_selector, true);
        if let Some(host) = w.node_selector.get("kubernetes.io/hostname") {
            self.node_ref(&sel_path.key("kubernetes.io/hostname"), host.as_str());
        } else if !w.node_selector.is_empty() && !self.selector_matches_a_node(&w.node_selector) {
            let wanted: Vec<String> = w.node_selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
            self.err(&sel_path, format!("no node has the labels {}", wanted.join(",")));
        }
        if let Some(node) = &w.node_name {
            self.node_ref(&path.key("nodeName"), node);
        }
        for (i, t) in w.tolerations.iter().enumerate() {
            let tp = path.key("tolerations").idx(i);
            let op = t.operator.as_deref().unwrap_or("Equal");
            if op != "Equal" && op != "Exists" {
                self.err(&tp.key("operator"), format!("invalid operator {op:?}: expected Equal or Exists"));
            }
            if op == "Exists" && t.value.as_ref().is_some_and(|v| !v.as_str().is_empty()) {
                self.err(&tp.key("value"), "must be empty when the operator is Exists");
            }
            if t.key.is_none() && op != "Exists" {
                self.err(&tp.key("key"), "an empty key needs operator Exists (tolerate everything)");
            }
            if let Some(e) = &t.effect
                && !["", "NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&e.as_str())
            {
                let msg = format!("invalid effect {e:?}: expected NoSchedule, PreferNoSchedule or NoExecute");
                self.err(&tp.key("effect"), msg);
            }
        }
        if w.affinity.as_ref().is_some_and(|a| !a.is_object()) {
            self.err(&path.key("affinity"), "must be a Kubernetes affinity object (nodeAffinity, podAffinity, ...)");
        }
        for (field, v) in [("startupSeconds", w.startup_seconds), ("shutdownSeconds", w.shutdown_seconds)] {
            if let Some(v) = v {
                self.seconds_field(&path.key(field), v);
            }
        }
        if let Some(g) = w.termination_grace_period_seconds {
            self.count_field(&path.key("terminationGracePeriodSeconds"), g, i64::MAX);
        }
        if let Some(r) = &w.restart_policy
            && !["Always", "OnFailure", "Never"].contains(&r.as_str())
        {
            let msg = format!("invalid restart policy {r:?}: expected Always, OnFailure or Never");
            self.err(&path.key("restartPolicy"), msg);
        }
        if let Some(vc) = &w.volume_claim {
            let vp = path.key("volumeClaim");
            self.storage(&vp.key("size"), Some(&vc.size));
            self.access_modes(&vp.key("accessModes"), &vc.access_modes);
            if let Some(name) = &vc.name {
                let per_pod = w.kind == WorkloadKind::Pod && w.count.is_some();
                if name.contains("{i}") && !per_pod {
                    self.err(&vp.key("name"), "{i} in a claim name needs a Pod entry with `count`");
                } else {
                    self.check(&vp.key("name"), dns_subdomain(&name.replace("{i}", "1")));
                }
            }
            if vc.mount_path.as_ref().is_some_and(|m| !m.starts_with('/')) {
                self.err(&vp.key("mountPath"), "must be an absolute path");
            }
        }
        self.containers(path, w);
        match w.kind {
            WorkloadKind::PodDisruptionBudget => self.budget(path, w, ns),
            WorkloadKind::PersistentVolumeClaim => {
                self.storage(&path.key("size"), w.size.as_ref());
                self.access_modes(&path.key("accessModes"), &w.access_modes);
            }
            WorkloadKind::Raw => self.raw(path, w),
            _ => {}
        }
    }

    fn storage(&mut self, path: &FieldPath, size: Option<&Text>) {
        match size {
            None => self.err(path, "a claim needs a size, e.g. 1Gi"),
            Some(size) => {
                if self.check(path, k8s_quantity(size.as_str())) == Some(0) {
                    self.err(path, "must be greater than zero");
                }
            }
        }
    }

    fn access_modes(&mut self, path: &FieldPath, modes: &[String]) {
        for (i, m) in modes.iter().enumerate() {
            if !ACCESS_MODES.contains(&m.as_str()) {
                self.err(
                    &path.idx(i),
                    format!("invalid access mode {m:?}: expected one of {}", ACCESS_MODES.join(", ")),
                );
            }
        }
    }

    fn containers(&mut self, path: &FieldPath, w: &Workload) {
        let mut names = BTreeSet::new();
        let mut own_usage = (false, false);
        for (i, c) in w.containers.iter().enumerate() {
            let cp = path.key("containers").idx(i);
            if self.check(&cp.key("name"), dns_label(&c.name)).is_some() && !names.insert(c.name.as_str()) {
                self.err(&cp.key("name"), format!("duplicate container name {:?}", c.name));
            }
            if c.image.as_ref().is_some_and(|i| i.trim().is_empty()) {
                self.err(&cp.key("image"), "must not be empty (omit it for the pause image)");
            }
            let mut requested = BTreeMap::new();
            for (field, list) in [("requests", &c.requests), ("limits", &c.limits)] {
                for (res, q) in list {
                    let rp = cp.key(field).key(res);
                    if !matches!(res.as_str(), "cpu" | "memory" | "ephemeral-storage") && !res.contains('/') {
                        let msg = format!(
                            "unknown resource {res:?}: expected cpu, memory, ephemeral-storage or a domain/name \
                             extended resource"
                        );
                        self.err(&rp, msg);
                        continue;
                    }
                    let Some(v) = self.check(&rp, k8s_quantity(q.as_str())) else { continue };
                    if field == "requests" {
                        requested.insert(res.as_str(), v);
                    } else if requested.get(res.as_str()).is_some_and(|r| *r > v) {
                        self.err(&rp, format!("limit {q} is below the request"));
                    }
                }
            }
            if let Some(u) = &c.usage {
                own_usage.0 |= u.cpu.is_some();
                own_usage.1 |= u.memory.is_some();
                self.profile_field(&cp.key("usage").key("cpu"), u.cpu.as_ref());
                self.profile_field(&cp.key("usage").key("memory"), u.memory.as_ref());
            }
            if let Some(b) = &c.behaviour {
                self.check(&cp.key("behaviour"), behaviour(b));
            }
        }
        if let Some(u) = &w.usage {
            let up = path.key("usage");
            self.profile_field(&up.key("cpu"), u.cpu.as_ref());
            self.profile_field(&up.key("memory"), u.memory.as_ref());
            for (res, pod_level, own) in
                [("cpu", u.cpu.is_some(), own_usage.0), ("memory", u.memory.is_some(), own_usage.1)]
            {
                if pod_level && own {
                    let msg = "set either pod-level usage or per-container usage for a resource, not both";
                    self.err(&up.key(res), msg);
                }
            }
        }
    }
}

impl Checker<'_> {
    fn budget(&mut self, path: &FieldPath, w: &Workload, ns: &str) {
        match (&w.min_available, &w.max_unavailable) {
            (None, None) => self.err(&path.key("minAvailable"), "set minAvailable or maxUnavailable"),
            (Some(_), Some(_)) => self.err(&path.key("maxUnavailable"), "set minAvailable or maxUnavailable, not both"),
            _ => {}
        }
        for (field, v) in [("minAvailable", &w.min_available), ("maxUnavailable", &w.max_unavailable)] {
            let Some(v) = v else { continue };
            let t = v.as_str().trim();
            let ok = match t.strip_suffix('%') {
                Some(pct) => pct.parse::<u32>().is_ok_and(|p| p <= 100),
                None => t.parse::<u32>().is_ok_and(|n| i32::try_from(n).is_ok()),
            };
            if !ok {
                self.err(&path.key(field), format!("invalid {t:?}: expected a count (2) or a percentage (50%)"));
            }
        }
        let sp = path.key("selector");
        let Some(selector) = &w.selector else {
            self.err(&sp, "a PodDisruptionBudget needs selector.matchLabels");
            return;
        };
        if selector.match_labels.is_empty() {
            self.err(&sp.key("matchLabels"), "must not be empty (an empty selector would cover every pod)");
            return;
        }
        self.labels(&sp.key("matchLabels"), &selector.match_labels, true);
        let covers = |labels: &BTreeMap<String, String>| {
            selector.match_labels.iter().all(|(k, v)| labels.get(k).map(String::as_str) == Some(v.as_str()))
        };
        if !self.pod_sets.iter().any(|(pod_ns, labels)| pod_ns == ns && covers(labels)) {
            let wanted: Vec<String> = selector.match_labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let msg = format!("selects no pod: no workload in namespace {ns:?} has the labels {}", wanted.join(","));
            self.err(&sp.key("matchLabels"), msg);
        }
    }

    fn raw(&mut self, path: &FieldPath, w: &Workload) {
        let op = path.key("object");
        let Some(obj) = &w.object else {
            self.err(&op, "a Raw entry needs `object`: a Kubernetes object with apiVersion, kind and metadata.name");
            return;
        };
        if !obj.is_object() {
            self.err(&op, "must be a Kubernetes object (a mapping)");
            return;
        }
        for (field, pointer) in [("apiVersion", "/apiVersion"), ("kind", "/kind"), ("metadata.name", "/metadata/name")]
        {
            if obj.pointer(pointer).is_none_or(|v| v.as_str().is_none_or(|s| s.is_empty())) {
                self.err(&op, format!("needs a non-empty string `{field}`"));
            }
        }
        if let Some(ns) = obj.pointer("/metadata/namespace").and_then(serde_json::Value::as_str) {
            self.namespace_ref(&op.key("metadata").key("namespace"), ns);
        }
    }

    fn timeline_entry(&mut self, path: &FieldPath, e: &TimelineEntry) {
        let at = self.check(&path.key("at"), parse_seconds(e.at.as_str()));
        let present = [
            ("setUsage", e.set_usage.is_some()),
            ("nodeFailure", e.node_failure.is_some()),
            ("nodeRecovery", e.node_recovery.is_some()),
            ("faults", e.faults.is_some()),
            ("clearFaults", e.clear_faults.is_some()),
            ("scale", e.scale.is_some()),
            ("create", e.create.is_some()),
            ("delete", e.delete.is_some()),
            ("cordon", e.cordon.is_some()),
            ("uncordon", e.uncordon.is_some()),
        ];
        let set: Vec<&str> = present.iter().filter(|(_, p)| *p).map(|(n, _)| *n).collect();
        match set.as_slice() {
            [] => {
                let all: Vec<&str> = present.iter().map(|(n, _)| *n).collect();
                self.err(path, format!("no action: set one of {}", all.join(", ")));
            }
            [_] => {}
            [first, second, ..] => {
                let msg = format!("more than one action ({first} and {second}); use one timeline entry per action");
                self.err(&path.key(second), msg);
            }
        }
        let errors_before = self.errors.len();
        let mut actions = Vec::new();
        if let Some(u) = &e.set_usage {
            actions.push(self.set_usage(&path.key("setUsage"), u));
        }
        for (field, node, make) in [
            ("nodeFailure", &e.node_failure, Action::NodeFailure as fn(String) -> Action),
            ("nodeRecovery", &e.node_recovery, Action::NodeRecovery),
            ("cordon", &e.cordon, Action::Cordon),
            ("uncordon", &e.uncordon, Action::Uncordon),
        ] {
            if let Some(node) = node {
                actions.push(self.node_ref(&path.key(field), node).map(make));
            }
        }
        if let Some(f) = &e.faults {
            if f.is_object() {
                actions.push(Some(Action::Faults(f.clone())));
            } else {
                self.err(&path.key("faults"), "must be a fault configuration object (as PUT /_sim/faults takes)");
            }
        }
        match e.clear_faults {
            Some(true) => actions.push(Some(Action::ClearFaults)),
            Some(false) => self.err(&path.key("clearFaults"), "`clearFaults: false` does nothing; remove the entry"),
            None => {}
        }
        if let Some(s) = &e.scale {
            actions.push(self.scale(&path.key("scale"), s));
        }
        if let Some(ws) = &e.create {
            if ws.is_empty() {
                self.err(&path.key("create"), "must list at least one workload entry");
            }
            for (j, w) in ws.iter().enumerate() {
                self.workload(&path.key("create").idx(j), w);
            }
            actions.push(Some(Action::Create(create_objects(ws, &self.file.defaults))));
        }
        if let Some(d) = &e.delete {
            actions.push(self.delete(&path.key("delete"), d));
        }
        if let (Some(at), [Some(action)], true) = (at, actions.as_slice(), self.errors.len() == errors_before) {
            self.actions.push((at, action.clone()));
        }
    }
}

impl Checker<'_> {
    fn set_usage(&mut self, path: &FieldPath, u: &super::model::SetUsageSpec) -> Option<Action> {
        let ns_ok = u.namespace.as_deref().is_none_or(|ns| self.namespace_ref(&path.key("namespace"), ns));
        let reqs = self.check(&path.key("selector"), label_selector(&u.selector));
        if u.cpu.is_none() && u.memory.is_none() {
            self.err(path, "set cpu, memory or both");
        }
        let cpu = self.profile_field(&path.key("cpu"), u.cpu.as_ref());
        let memory = self.profile_field(&path.key("memory"), u.memory.as_ref());
        let reqs = reqs?;
        let selects = self.pod_sets.iter().any(|(pod_ns, labels)| {
            u.namespace.as_deref().is_none_or(|ns| ns == pod_ns) && reqs.iter().all(|r| r.matches(labels))
        });
        if ns_ok && !selects {
            let scope = u.namespace.as_deref().map_or("any namespace".to_string(), |ns| format!("namespace {ns:?}"));
            self.err(&path.key("selector"), format!("selects no pod of the scenario in {scope}"));
        }
        if u.cpu.is_some() != cpu.is_some() || u.memory.is_some() != memory.is_some() {
            return None;
        }
        Some(Action::SetUsage { namespace: u.namespace.clone(), selector: u.selector.trim().to_string(), cpu, memory })
    }

    fn scale(&mut self, path: &FieldPath, s: &super::model::ScaleSpec) -> Option<Action> {
        let kind = s.kind.as_deref().unwrap_or("Deployment");
        let ns = s.namespace.as_deref().unwrap_or("default");
        if kind != "Deployment" && kind != "StatefulSet" {
            self.err(&path.key("kind"), format!("cannot scale a {kind:?}: expected Deployment or StatefulSet"));
            return None;
        }
        let key = (kind.to_string(), ns.to_string(), s.name.clone());
        if !self.objects.contains_key(&key) {
            self.err(&path.key("name"), format!("no {kind} {:?} in namespace {ns:?} in this scenario", s.name));
        }
        if !self.count_field(&path.key("replicas"), s.replicas, i64::from(i32::MAX)) {
            return None;
        }
        let replicas = i32::try_from(s.replicas).ok()?;
        Some(Action::Scale { kind: kind.to_string(), namespace: ns.to_string(), name: s.name.clone(), replicas })
    }

    fn delete(&mut self, path: &FieldPath, d: &super::model::DeleteSpec) -> Option<Action> {
        let Some(&(kind, namespaced)) = DELETABLE_KINDS.iter().find(|(k, _)| *k == d.kind) else {
            let kinds: Vec<&str> = DELETABLE_KINDS.iter().map(|(k, _)| *k).collect();
            self.err(&path.key("kind"), format!("cannot delete a {:?}: expected one of {}", d.kind, kinds.join(", ")));
            return None;
        };
        if !namespaced {
            if d.namespace.is_some() {
                self.err(&path.key("namespace"), format!("a {kind} is not namespaced"));
            }
            let known = match kind {
                "Node" => self.nodes.contains_key(&d.name),
                "Namespace" => self.namespaces.contains(&d.name),
                _ => self.priority_classes.contains(&d.name),
            };
            if !known {
                self.err(&path.key("name"), format!("no {kind} {:?} in this scenario", d.name));
            }
            return Some(Action::Delete { kind: kind.to_string(), namespace: None, name: d.name.clone() });
        }
        let ns = d.namespace.as_deref().unwrap_or("default");
        if !self.objects.contains_key(&(kind.to_string(), ns.to_string(), d.name.clone())) {
            let msg = format!("no {kind} {:?} in namespace {ns:?} in this scenario", d.name);
            self.err(&path.key("name"), msg);
        }
        Some(Action::Delete { kind: kind.to_string(), namespace: Some(ns.to_string()), name: d.name.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// Where the shipped scenario files live (adjust when the files move).
    const SCENARIO_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scenarios");

    fn read(name: &str) -> String {
        std::fs::read_to_string(format!("{SCENARIO_DIR}/{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn load(name: &str) -> Scenario {
        parse(name, &read(name)).unwrap_or_else(|errors| {
            let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
            panic!("{}", lines.join("\n"))
        })
    }

    fn errors(text: &str) -> Vec<ScenarioError> {
        match parse("scenario.yaml", text) {
            Ok(_) => panic!("expected errors in:\n{text}"),
            Err(e) => e,
        }
    }

    fn kinds(s: &Scenario) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for o in s.objects() {
            *counts.entry(o["kind"].as_str().unwrap_or("?").to_string()).or_insert(0) += 1;
        }
        counts
    }

    fn count(s: &Scenario, kind: &str) -> usize {
        kinds(s).get(kind).copied().unwrap_or(0)
    }

    fn find(s: &Scenario, kind: &str, name: &str) -> Value {
        s.objects()
            .into_iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name}"))
    }

    #[test]
    fn sdi_edge_parses_with_expected_objects() {
        let s = load("sdi-edge.yaml");
        assert_eq!((s.name.as_str(), s.seed), ("sdi-edge", 20240611));
        assert_eq!(s.defaults.startup_seconds, 3.0);
        let expected = [
            ("Namespace", 3),
            ("PriorityClass", 3),
            ("Node", 6),
            ("PersistentVolumeClaim", 1),
            ("DaemonSet", 3),
            ("Deployment", 5),
            ("Pod", 2),
            ("PodDisruptionBudget", 2),
        ];
        let expected: BTreeMap<String, usize> = expected.iter().map(|(k, n)| (k.to_string(), *n)).collect();
        assert_eq!(kinds(&s), expected);
        // Creation order: namespaces, priority classes, nodes, PVCs, workloads, PDBs.
        let order: Vec<String> = s.objects().iter().map(|o| o["kind"].as_str().unwrap_or("").to_string()).collect();
        let rank =
            |k: &str| ["Namespace", "PriorityClass", "Node", "PersistentVolumeClaim"].iter().position(|x| *x == k);
        let ranks: Vec<usize> =
            order.iter().map(|k| rank(k).unwrap_or(if k == "PodDisruptionBudget" { 6 } else { 5 })).collect();
        assert!(ranks.windows(2).all(|w| w[0] <= w[1]), "{order:?}");

        let master = find(&s, "Node", "sdi-master");
        assert_eq!(master["metadata"]["labels"]["node-role.kubernetes.io/control-plane"], "");
        assert_eq!(master["spec"]["taints"][0]["key"], "node-role.kubernetes.io/control-plane");
        assert_eq!(master["spec"]["taints"][0]["effect"], "NoSchedule");
        let robot = find(&s, "Node", "turtlebot-3");
        let labels = &robot["metadata"]["labels"];
        assert_eq!(labels["kubernetes.io/hostname"], "turtlebot-3");
        assert_eq!(
            (labels["kubernetes.io/os"].as_str(), labels["kubernetes.io/arch"].as_str()),
            (Some("linux"), Some("amd64"))
        );
        let ann = &robot["metadata"]["annotations"];
        assert_eq!(ann["sim.kube-sim.io/checkpoint"], "true");
        assert_eq!(ann["sim.kube-sim.io/ready"], "true");
        assert_eq!(ann["sim.kube-sim.io/system-cpu"], "300m ~10%");
        assert_eq!(robot["status"]["capacity"]["cpu"], "4");
        assert_eq!(robot["status"]["allocatable"]["memory"], "7Gi");
        assert_eq!(robot["status"]["allocatable"]["pods"], "32");
        assert!(
            robot["status"]["conditions"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
        );

        let server = find(&s, "Deployment", "model-server");
        let template = &server["spec"]["template"];
        assert_eq!(template["metadata"]["annotations"]["sim.kube-sim.io/startup-seconds"], "15");
        assert_eq!(template["metadata"]["annotations"]["sim.kube-sim.io/shutdown-seconds"], "2");
        assert_eq!(template["metadata"]["annotations"]["sim.kube-sim.io/cpu.triton"], "sine(2, 500m, 5m) ~5%");
        assert_eq!(template["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"], "model-store");
        assert_eq!(template["spec"]["containers"][0]["volumeMounts"][0]["mountPath"], "/models");
        assert_eq!(server["spec"]["selector"]["matchLabels"]["app"], "model-server");
        assert_eq!(template["metadata"]["labels"]["male.keti.dev/latency"], "0.2");

        let timeline = s.timeline();
        assert_eq!(timeline.len(), 3);
        assert!(timeline.windows(2).all(|w| w[0].0 <= w[1].0));
        let Action::SetUsage { namespace, selector, cpu: Some(cpu), memory: None } = &timeline[0].1 else {
            panic!("{:?}", timeline[0])
        };
        assert_eq!((namespace.as_deref(), selector.as_str()), (Some("robots"), "component=slam,robot=turtlebot-1"));
        // The ramp ends above the level that puts turtlebot-1 over 85%.
        assert_eq!(timeline[0].0, 60.0);
        assert!(cpu.value_milli(660.0, s.seed, "robots/slam") >= 1995);
    }

    #[test]
    fn pressure_and_oscillating_parse() {
        let p = load("pressure.yaml");
        assert_eq!((count(&p, "Node"), count(&p, "Pod"), count(&p, "Deployment")), (6, 9, 2));
        assert_eq!((count(&p, "PodDisruptionBudget"), count(&p, "PersistentVolumeClaim")), (2, 1));
        let session = find(&p, "Pod", "session-store");
        assert_eq!(session["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"], "session-store-data");
        assert_eq!(find(&p, "Pod", "batch-cpu-4")["spec"]["nodeName"], "worker-1");
        let actions: Vec<&Action> = p.timeline.iter().map(|(_, a)| a).collect();
        assert!(matches!(actions[0], Action::NodeFailure(n) if n == "worker-3"));
        assert!(matches!(actions[1], Action::Faults(f) if f["rules"][0]["rate"] == 0.5));
        assert_eq!(actions[2], &Action::ClearFaults);
        assert!(matches!(actions[3], Action::NodeRecovery(n) if n == "worker-3"));

        let o = load("oscillating.yaml");
        assert_eq!((count(&o, "Node"), count(&o, "Pod")), (3, 8));
        let a = find(&o, "Pod", "wave-a-1");
        let b = find(&o, "Pod", "wave-b-4");
        let profile = |pod: &Value| -> Profile {
            pod["metadata"]["annotations"]["sim.kube-sim.io/cpu.worker"]
                .as_str()
                .and_then(|p| p.parse().ok())
                .unwrap_or_else(|| panic!("{pod}"))
        };
        let (pa, pb) = (profile(&a), profile(&b));
        // Opposite phase: one node peaks while the other is at its trough.
        let node = |p: &Profile, t: f64| (200 + 4 * p.value_milli(t, 0, "")) as f64 / 4000.0;
        assert!(node(&pa, 150.0) > 0.95 && node(&pb, 150.0) < 0.45);
        assert!(node(&pa, 450.0) < 0.45 && node(&pb, 450.0) > 0.95);
        assert_eq!(o.timeline().len(), 1);
    }

    #[test]
    fn bad_quantity_reports_its_line_and_path() {
        let text = "\
name: lines
# a comment
nodes:
  - name: good
    capacity:
      cpu: 4
      memory: 8Gi

  - name: bad
    labels:
      zone: a
    capacity:
      memory: 8Gi
      cpu: lots
";
        assert_eq!(text.lines().nth(13), Some("      cpu: lots"));
        let errs = errors(text);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].line, Some(14));
        assert_eq!(errs[0].path, "nodes[1].capacity.cpu");
        assert!(
            errs[0].to_string().starts_with("scenario.yaml:14: nodes[1].capacity.cpu: invalid quantity \"lots\""),
            "{}",
            errs[0]
        );
        assert!(errs[0].message.contains("512Mi"), "shows the accepted forms: {}", errs[0]);
    }

    #[test]
    fn unknown_fields_are_named_with_the_known_ones() {
        let text = "\
name: x
nodes:
  - name: a
    capacity: {cpu: 1, memory: 1Gi}
    lables: {x: y}
workloads:
  - kind: Deployment
    name: w
    containers:
      - name: c
        requets: {cpu: 1}
timeline:
  - at: 1m
    cordon: a
    extra: true
surprise: 1
";
        let errs = errors(text);
        let got: Vec<(Option<usize>, &str)> = errs.iter().map(|e| (e.line, e.path.as_str())).collect();
        assert_eq!(
            got,
            [
                (Some(5), "nodes[0].lables"),
                (Some(11), "workloads[0].containers[0].requets"),
                (Some(15), "timeline[0].extra"),
                (Some(16), "surprise"),
            ]
        );
        assert!(errs[0].message.contains("unknown field `lables`, expected one of `name`, `count`"), "{}", errs[0]);
        assert!(errs[0].message.contains("`labels`"));
        assert!(errs[1].message.contains("`requests`"));
    }

    #[test]
    fn type_and_syntax_errors_have_lines() {
        let errs = errors("name: x\nseed: many\n");
        assert_eq!((errs[0].line, errs[0].path.as_str()), (Some(2), "seed"));
        assert!(errs[0].message.contains("invalid type"), "{}", errs[0]);
        let errs = errors("name: x\nnodes:\n  - name: a\n    capacity: [1, 2]\n");
        assert_eq!((errs[0].line, errs[0].path.as_str()), (Some(4), "nodes[0].capacity"));
        let errs = errors("name: x\nnodes:\n  - name: a\n");
        assert_eq!((errs[0].line, errs[0].path.as_str()), (Some(3), "nodes[0].capacity"), "{errs:?}");
        assert!(errs[0].message.contains("missing field `capacity`"));
        let errs = errors("name: x\nworkloads:\n  - kind: Deploymnet\n");
        assert!(errs[0].message.contains("unknown variant `Deploymnet`, expected one of `Deployment`"), "{}", errs[0]);
        let errs = errors("name: x\nnodes:\n  - {name: a-{i}, count: 2, capacity: {cpu: 1, memory: 1Gi}}\n");
        assert!(errs[0].message.contains("quote values"), "{}", errs[0]);
        let errs = errors(
            "name: x\nnodes:\n  - {name: a, capacity: {cpu: 1, memory: 1Gi}, systemUsage: {cpu: ramp(1, 2, 3, 4)}}\n",
        );
        assert!(
            errs[0].message.contains("unknown field `2`") && errs[0].message.contains("quote values"),
            "{}",
            errs[0]
        );
        let errs = errors("name: x\nnodes: [\n  {name: a\n");
        assert_eq!(errs.len(), 1);
        assert!(errs[0].line.is_some(), "{}", errs[0]);
        assert_eq!(errors("")[0].line, Some(1));
        assert_eq!(errors("- just\n- a list\n")[0].line, Some(1));
        let errs = errors("name: x\nname: y\n");
        assert_eq!(errs[0].line, Some(2), "{}", errs[0]);
        let errs = errors("name: x\nnodes:\n  - name: a\n    labels:\n      a: b\n      c: d\n      a: e\n");
        assert_eq!((errs[0].line, errs[0].path.as_str()), (Some(7), "nodes[0].labels"), "{}", errs[0]);
    }

    /// (line, path, message fragment) of every expected error, in order.
    fn assert_errors(text: &str, expected: &[(usize, &str, &str)]) {
        let errs = errors(text);
        let shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(errs.len(), expected.len(), "{}", shown.join("\n"));
        for (e, (line, path, fragment)) in errs.iter().zip(expected) {
            assert_eq!((e.line, e.path.as_str()), (Some(*line), *path), "{e}");
            assert!(e.message.contains(fragment), "{e}\n  expected: {fragment}");
        }
    }

    #[test]
    fn semantic_errors_are_all_reported_with_lines() {
        let text = "\
name: many
nodes:
  - name: a
    capacity: {cpu: lots, memory: 1Gi}
  - name: a
    capacity: {cpu: 1, memory: 1Gi}
workloads:
  - kind: Deployment
    name: y
    nodeSelector: {kubernetes.io/hostname: zz}
    containers:
      - name: c
        usage:
          cpu: ramp(1, 2)
  - kind: PodDisruptionBudget
    name: p
    minAvailable: 1
    selector:
      matchLabels:
        app: nope
timeline:
  - at: 5x
    cordon: q
  - at: 1m
    cordon: a
    uncordon: a
";
        assert_errors(
            text,
            &[
                (4, "nodes[0].capacity.cpu", "invalid quantity \"lots\""),
                (5, "nodes[1].name", "duplicate node name \"a\" (also nodes[0])"),
                (10, "workloads[0].nodeSelector[\"kubernetes.io/hostname\"]", "unknown node \"zz\" (nodes: a)"),
                (14, "workloads[0].containers[0].usage.cpu", "ramp takes (FROM, TO, START, END), got 2"),
                (20, "workloads[1].selector.matchLabels", "selects no pod"),
                (22, "timeline[0].at", "invalid time \"5x\""),
                (23, "timeline[0].cordon", "unknown node \"q\""),
                (26, "timeline[1].uncordon", "more than one action (cordon and uncordon)"),
            ],
        );
    }

    #[test]
    fn names_counts_and_kinds() {
        let text = "\
name: x
namespaces: [apps, Bad_NS, apps]
nodes:
  - name: robot
    count: 3
    capacity: {cpu: 1, memory: 1Gi}
  - name: edge-{i}
    capacity: {cpu: 1, memory: 64K}
  - name: big-{i}
    count: -2
    capacity: {cpu: 0, memory: 1Gi, pods: -1}
workloads:
  - kind: Deployment
    name: web
    namespace: shop
    replicas: -1
    size: 1Gi
  - kind: Pod
    name: p-{i}
    count: 2
    nodeName: robot
    usage: {cpu: 1}
    containers:
      - {name: c, usage: {cpu: 2}, behaviour: explode}
      - {name: c, requests: {cpu: 1, gpu: 1}, limits: {cpu: 500m}}
";
        assert_errors(
            text,
            &[
                (2, "namespaces[1]", "invalid name \"Bad_NS\""),
                (2, "namespaces[2]", "duplicate namespace \"apps\""),
                (4, "nodes[0].name", "with `count`, the name must contain {i}"),
                (7, "nodes[1].name", "the {i} placeholder needs `count`"),
                (8, "nodes[1].capacity.memory", "no `K` suffix"),
                (10, "nodes[2].count", "must not be negative"),
                (11, "nodes[2].capacity.cpu", "must be greater than zero"),
                (11, "nodes[2].capacity.pods", "must not be negative"),
                (
                    15,
                    "workloads[0].namespace",
                    "namespace \"shop\" is not declared; add it to `namespaces` (declared: apps, Bad_NS, apps)",
                ),
                (16, "workloads[0].replicas", "must not be negative"),
                (17, "workloads[0].size", "`size` does not apply to kind Deployment; it is for PersistentVolumeClaim"),
                (21, "workloads[1].nodeName", "unknown node \"robot\""),
                (22, "workloads[1].usage.cpu", "either pod-level usage or per-container usage"),
                (24, "workloads[1].containers[0].behaviour", "invalid behaviour \"explode\""),
                (25, "workloads[1].containers[1].name", "duplicate container name \"c\""),
                (25, "workloads[1].containers[1].requests.gpu", "unknown resource \"gpu\""),
                (25, "workloads[1].containers[1].limits.cpu", "limit 500m is below the request"),
            ],
        );
    }

    #[test]
    fn timeline_actions_and_references() {
        let text = "\
name: t
nodes:
  - {name: \"n-{i}\", count: 2, capacity: {cpu: 4, memory: 8Gi}}
namespaces: [apps]
workloads:
  - kind: PodDisruptionBudget
    name: later
    namespace: apps
    maxUnavailable: 50%
    selector: {matchLabels: {app: later}}
timeline:
  - at: 10m
    scale: {namespace: apps, name: later, replicas: 0}
  - at: 1m
    create:
      - kind: Deployment
        name: later
        namespace: apps
        replicas: 2
        volumeClaim: {size: 1Gi}
  - at: 2m
    delete: {kind: Deployment, namespace: apps, name: later}
  - at: 3m
    delete: {kind: Node, name: n-2}
  - at: 90
    setUsage: {selector: app=later, memory: 1Gi}
  - at: 1h
    clearFaults: true
  - at: 1m
    cordon: n-1
";
        let s = parse("t.yaml", text).unwrap_or_else(|e| panic!("{e:?}"));
        let t = s.timeline();
        let times: Vec<f64> = t.iter().map(|(at, _)| *at).collect();
        assert_eq!(times, [60.0, 60.0, 90.0, 120.0, 180.0, 600.0, 3600.0]);
        let Action::Create(objects) = &t[0].1 else { panic!("{:?}", t[0]) };
        let kinds: Vec<&str> = objects.iter().filter_map(|o| o["kind"].as_str()).collect();
        assert_eq!(kinds, ["PersistentVolumeClaim", "Deployment"]);
        assert_eq!(objects[0]["metadata"]["name"], "later-data");
        assert_eq!(t[1].1, Action::Cordon("n-1".to_string()), "ties keep file order");
        assert!(matches!(&t[2].1, Action::SetUsage { namespace: None, memory: Some(_), cpu: None, .. }));
        assert_eq!(
            t[3].1,
            Action::Delete { kind: "Deployment".into(), namespace: Some("apps".into()), name: "later".into() }
        );
        assert_eq!(t[4].1, Action::Delete { kind: "Node".into(), namespace: None, name: "n-2".into() });
        assert_eq!(
            t[5].1,
            Action::Scale { kind: "Deployment".into(), namespace: "apps".into(), name: "later".into(), replicas: 0 }
        );
        assert_eq!(t[6].1, Action::ClearFaults);
        let pdb = find(&s, "PodDisruptionBudget", "later");
        assert_eq!(pdb["spec"]["maxUnavailable"], "50%");

        let bad = "\
name: t
nodes: [{name: n, capacity: {cpu: 4, memory: 8Gi}}]
timeline:
  - at: 1m
  - at: 2m
    clearFaults: false
  - at: 3m
    scale: {name: ghost, replicas: 3}
  - at: 4m
    delete: {kind: Secret, name: s}
  - at: 5m
    setUsage: {selector: \"app in (a\", cpu: 1}
  - at: 6m
    faults: [1]
  - at: 7m
    setUsage: {selector: app=ghost}
";
        assert_errors(
            bad,
            &[
                (4, "timeline[0]", "no action: set one of setUsage, nodeFailure"),
                (6, "timeline[1].clearFaults", "does nothing"),
                (8, "timeline[2].scale.name", "no Deployment \"ghost\" in namespace \"default\""),
                (10, "timeline[3].delete.kind", "cannot delete a \"Secret\""),
                (12, "timeline[4].setUsage.selector", "unbalanced parentheses"),
                (14, "timeline[5].faults", "must be a fault configuration object"),
                (16, "timeline[6].setUsage", "set cpu, memory or both"),
                (16, "timeline[6].setUsage.selector", "selects no pod of the scenario in any namespace"),
            ],
        );
    }

    #[test]
    fn pods_nodes_and_annotations() {
        let text = "\
name: p
defaults: {startupSeconds: 4}
nodes:
  - name: down
    ready: false
    checkpoint: false
    capacity: {cpu: 2, memory: 4Gi}
    systemUsage: {memory: \"ramp(1Gi,2Gi,0,1h)\"}
    taints: [{key: gpu, value: \"yes\", effect: NoExecute}]
workloads:
  - kind: Pod
    name: job-{i}
    count: 2
    restartPolicy: Never
    usage: {cpu: 250m ~5%}
    volumeClaim: {name: \"scratch-{i}\", size: 1Gi}
    containers:
      - {name: main, behaviour: \"fail:3\", requests: {cpu: 100m}}
      - {name: side, behavior: complete}
  - kind: Raw
    object: {apiVersion: v1, kind: ConfigMap, metadata: {name: cm, namespace: default}, data: {a: b}}
  - kind: PersistentVolumeClaim
    name: shared
    size: 10Gi
    accessModes: [ReadWriteMany]
    storageClassName: fast
";
        let s = parse("p.yaml", text).unwrap_or_else(|e| panic!("{e:?}"));
        let node = find(&s, "Node", "down");
        let ann = &node["metadata"]["annotations"];
        assert_eq!(
            (ann["sim.kube-sim.io/ready"].as_str(), ann["sim.kube-sim.io/checkpoint"].as_str()),
            (Some("false"), Some("false"))
        );
        assert_eq!(ann["sim.kube-sim.io/system-cpu"], "100m");
        assert_eq!(ann["sim.kube-sim.io/system-memory"], "ramp(1Gi, 2Gi, 0, 1h)");
        assert_eq!(node["spec"]["taints"], serde_json::json!([{"key": "gpu", "value": "yes", "effect": "NoExecute"}]));
        let ready =
            node["status"]["conditions"].as_array().and_then(|c| c.iter().find(|c| c["type"] == "Ready")).cloned();
        assert_eq!(ready.map(|r| r["status"].clone()), Some(Value::from("False")));
        let pod = find(&s, "Pod", "job-2");
        let ann = &pod["metadata"]["annotations"];
        assert_eq!(ann["sim.kube-sim.io/startup-seconds"], "4");
        assert_eq!(ann["sim.kube-sim.io/shutdown-seconds"], "1");
        assert_eq!(ann["sim.kube-sim.io/cpu"], "250m ~5%");
        assert_eq!(ann["sim.kube-sim.io/behaviour.main"], "fail:3");
        assert_eq!(ann["sim.kube-sim.io/behaviour.side"], "complete");
        assert_eq!(pod["metadata"]["labels"]["app"], "job");
        assert_eq!(pod["spec"]["restartPolicy"], "Never");
        assert_eq!(pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"], "scratch-2");
        assert_eq!(count(&s, "PersistentVolumeClaim"), 3);
        assert_eq!(find(&s, "ConfigMap", "cm")["data"]["a"], "b");
        let shared = find(&s, "PersistentVolumeClaim", "shared");
        assert_eq!(shared["spec"]["storageClassName"], "fast");
        assert_eq!(shared["spec"]["resources"]["requests"]["storage"], "10Gi");
    }

    #[test]
    fn error_display() {
        let e = ScenarioError { file: "f.yaml".into(), line: Some(3), path: "a.b".into(), message: "bad".into() };
        assert_eq!(e.to_string(), "f.yaml:3: a.b: bad");
        let e = ScenarioError { file: "f.yaml".into(), line: None, path: String::new(), message: "bad".into() };
        assert_eq!(e.to_string(), "f.yaml: bad");
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_arbitrary_text(text in "\\PC{0,200}") {
            let _ = parse("fuzz.yaml", &text);
        }

        #[test]
        fn never_panics_on_damaged_scenarios(
            cut in 0usize..12_000, len in 0usize..40, insert in "[ :\\-{}\\[\\]a-z0-9~%()\n]{0,6}",
        ) {
            let text = read("sdi-edge.yaml");
            let mut start = cut.min(text.len());
            while !text.is_char_boundary(start) { start -= 1; }
            let mut end = (start + len).min(text.len());
            while !text.is_char_boundary(end) { end -= 1; }
            let damaged = format!("{}{}{}", &text[..start], insert, &text[end..]);
            if let Err(errors) = parse("damaged.yaml", &damaged) {
                proptest::prop_assert!(!errors.is_empty());
                proptest::prop_assert!(errors.iter().all(|e| e.line.is_some()), "{:?}", errors);
            }
        }
    }

    /// Every complete scenario (a YAML block starting with `name:` or a comment) in the format
    /// reference parses, so the documentation cannot drift from the parser.
    #[test]
    fn documentation_examples_parse() {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/scenarios.md"))
            .unwrap_or_else(|e| panic!("docs/scenarios.md: {e}"));
        let mut checked = 0;
        for block in doc.split("```yaml\n").skip(1) {
            let block = block.split("```").next().unwrap_or_default();
            if (block.starts_with("name:") || block.starts_with('#')) && !block.contains("...") {
                let s = parse("scenarios.md", block).unwrap_or_else(|e| panic!("{e:?}\n{block}"));
                assert!(count(&s, "Node") > 0);
                checked += 1;
            }
        }
        assert!(checked >= 1);
    }
}
