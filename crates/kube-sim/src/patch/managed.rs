//! Field ownership for `metadata.managedFields` and server-side apply.
//!
//! Mirrors sigs.k8s.io/structured-merge-diff: a [`FieldSet`] is a trie of
//! path elements whose marked nodes ("members") are the owned fields, encoded
//! in `fieldsV1` as `{"f:spec": {"f:replicas": {}}}` with `".": {}` marking an
//! inner node that is itself owned. List semantics come from
//! [`super::schema`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};

use serde_json::{Map, Value};

use super::schema::{self, ListType};

/// One step of a field path.
///
/// `Key` and `Value` hold canonical JSON text (sorted object keys, integral
/// floats written as integers, Go-style escaping), so equal JSON gives equal
/// elements; build them with [`PathElement::key`] and [`PathElement::value`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathElement {
    /// A field of an object: `f:name`, `.name`.
    Field(String),
    /// An element of a keyed list, by its key fields sorted by name:
    /// `k:{"name":"c"}`, `[name="c"]`.
    Key(Vec<(String, String)>),
    /// An element of a set list: `v:"x"`, `[="x"]`.
    Value(String),
    /// An element of a list by position: `i:0`, `[0]`.
    Index(usize),
}

impl PathElement {
    /// A field element.
    pub fn field(name: &str) -> Self {
        Self::Field(name.to_owned())
    }

    /// A keyed-list element from its key fields.
    pub fn key<'a>(fields: impl IntoIterator<Item = (&'a str, &'a Value)>) -> Self {
        let mut pairs: Vec<(String, String)> =
            fields.into_iter().map(|(name, value)| (name.to_owned(), canonical(value))).collect();
        pairs.sort();
        pairs.dedup_by(|a, b| a.0 == b.0);
        Self::Key(pairs)
    }

    /// A set-list element.
    pub fn value(value: &Value) -> Self {
        Self::Value(canonical(value))
    }

    /// The `fieldsV1` spelling, e.g. `f:spec` or `k:{"name":"c"}`.
    pub fn to_fields_v1_key(&self) -> String {
        match self {
            Self::Field(name) => format!("f:{name}"),
            Self::Key(pairs) => {
                let mut out = String::from("k:{");
                for (i, (name, value)) in pairs.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_string(name, &mut out);
                    out.push(':');
                    out.push_str(value);
                }
                out.push('}');
                out
            }
            Self::Value(value) => format!("v:{value}"),
            Self::Index(i) => format!("i:{i}"),
        }
    }

    /// Parses the `fieldsV1` spelling.
    pub fn from_fields_v1_key(s: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("invalid fieldsV1 path element {s:?}: {why}");
        let Some((kind, rest)) = s.split_once(':') else {
            return Err(bad("missing ':'"));
        };
        match kind {
            "f" => Ok(Self::Field(rest.to_owned())),
            "k" => match serde_json::from_str::<Value>(rest) {
                Ok(Value::Object(fields)) => Ok(Self::key(fields.iter().map(|(k, v)| (k.as_str(), v)))),
                Ok(_) => Err(bad("key is not a JSON object")),
                Err(e) => Err(bad(&e.to_string())),
            },
            "v" => serde_json::from_str::<Value>(rest).map(|v| Self::value(&v)).map_err(|e| bad(&e.to_string())),
            "i" => rest.parse().map(Self::Index).map_err(|_| bad("bad index")),
            _ => Err(bad("unknown element type")),
        }
    }
}

/// The human form used in conflict messages, as structured-merge-diff prints it.
impl fmt::Display for PathElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Field(name) => write!(f, ".{name}"),
            Self::Key(pairs) => {
                f.write_char('[')?;
                for (i, (name, value)) in pairs.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    write!(f, "{name}={value}")?;
                }
                f.write_char(']')
            }
            Self::Value(value) => write!(f, "[={value}]"),
            Self::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// A set of field paths in the structured-merge-diff sense.
///
/// Stored as a trie; the invariant "no empty children" keeps the derived
/// equality structural.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSet {
    members: BTreeSet<PathElement>,
    children: BTreeMap<PathElement, FieldSet>,
}

impl FieldSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `path`; the empty path (the object itself) is never a member.
    pub fn insert(&mut self, path: &[PathElement]) {
        match path {
            [] => {}
            [last] => {
                self.members.insert(last.clone());
            }
            [first, rest @ ..] => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    /// Whether `path` is a member.
    pub fn contains(&self, path: &[PathElement]) -> bool {
        match path {
            [] => false,
            [last] => self.members.contains(last),
            [first, rest @ ..] => self.children.get(first).is_some_and(|c| c.contains(rest)),
        }
    }

    pub fn union(&self, other: &Self) -> Self {
        let mut out = self.clone();
        out.members.extend(other.members.iter().cloned());
        for (pe, child) in &other.children {
            let merged = match out.children.get(pe) {
                Some(mine) => mine.union(child),
                None => child.clone(),
            };
            out.children.insert(pe.clone(), merged);
        }
        out
    }

    pub fn difference(&self, other: &Self) -> Self {
        let members = self.members.difference(&other.members).cloned().collect();
        let children = self
            .children
            .iter()
            .filter_map(|(pe, child)| {
                let rest = match other.children.get(pe) {
                    Some(theirs) => child.difference(theirs),
                    None => child.clone(),
                };
                (!rest.is_empty()).then(|| (pe.clone(), rest))
            })
            .collect();
        Self { members, children }
    }

    /// Adds every member of `other` in place (the union without copying `self`).
    pub fn extend(&mut self, other: &Self) {
        self.members.extend(other.members.iter().cloned());
        for (pe, child) in &other.children {
            match self.children.get_mut(pe) {
                Some(mine) => mine.extend(child),
                None => {
                    self.children.insert(pe.clone(), child.clone());
                }
            }
        }
    }

    /// Removes every member of `other` in place; returns whether anything went.
    pub fn remove_all(&mut self, other: &Self) -> bool {
        let before = self.members.len();
        self.members.retain(|m| !other.members.contains(m));
        let mut removed = self.members.len() != before;
        self.children.retain(|pe, child| {
            if let Some(theirs) = other.children.get(pe) {
                removed |= child.remove_all(theirs);
            }
            !child.is_empty()
        });
        removed
    }

    /// Whether a `fieldsV1` object (as stored, not decoded) shares a member
    /// with this set: lets a write skip decoding the entries of managers it
    /// cannot touch.
    pub fn meets_fields_v1(&self, v: &Value) -> bool {
        let Some(map) = v.as_object() else { return false };
        let owned_itself = |node: &Value| node.as_object().is_some_and(|m| m.is_empty() || m.contains_key("."));
        self.members.iter().any(|pe| map.get(&pe.to_fields_v1_key()).is_some_and(owned_itself))
            || self
                .children
                .iter()
                .any(|(pe, child)| map.get(&pe.to_fields_v1_key()).is_some_and(|node| child.meets_fields_v1(node)))
    }

    pub fn intersection(&self, other: &Self) -> Self {
        let members = self.members.intersection(&other.members).cloned().collect();
        let children = self
            .children
            .iter()
            .filter_map(|(pe, child)| {
                let both = child.intersection(other.children.get(pe)?);
                (!both.is_empty()).then(|| (pe.clone(), both))
            })
            .collect();
        Self { members, children }
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.is_empty()
    }

    /// Every member path, in set order.
    pub fn paths(&self) -> Vec<Vec<PathElement>> {
        let mut out = Vec::new();
        self.collect_paths(&mut Vec::new(), &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Vec<PathElement>, out: &mut Vec<Vec<PathElement>>) {
        let elements: BTreeSet<&PathElement> = self.members.iter().chain(self.children.keys()).collect();
        for pe in elements {
            prefix.push(pe.clone());
            if self.members.contains(pe) {
                out.push(prefix.clone());
            }
            if let Some(child) = self.children.get(pe) {
                child.collect_paths(prefix, out);
            }
            prefix.pop();
        }
    }

    /// Every member path in human form, e.g. `.spec.containers[name="c"].image`.
    pub fn leaf_paths(&self) -> Vec<String> {
        self.paths().iter().map(|path| path.iter().map(ToString::to_string).collect()).collect()
    }
}

/// Encodes a set as a managedFields `fieldsV1` object.
pub fn to_fields_v1(set: &FieldSet) -> Value {
    Value::Object(node_to_json(set))
}

fn node_to_json(set: &FieldSet) -> Map<String, Value> {
    let mut out = Map::new();
    // Members and children are both in element order: walk them side by side.
    let members = set.members.iter().map(|pe| (pe, ()));
    for (pe, member, child) in side_by_side(members, set.children.iter()) {
        let mut inner = Map::new();
        if let Some(child) = child {
            if member.is_some() {
                inner.insert(".".into(), Value::Object(Map::new()));
            }
            inner.extend(node_to_json(child));
        }
        out.insert(pe.to_fields_v1_key(), Value::Object(inner));
    }
    out
}

/// Two sequences sorted by key, walked together: each key once, with the
/// value of each side that has it.
fn side_by_side<K: Ord, A, B>(
    left: impl Iterator<Item = (K, A)>,
    right: impl Iterator<Item = (K, B)>,
) -> impl Iterator<Item = (K, Option<A>, Option<B>)> {
    let (mut left, mut right) = (left.peekable(), right.peekable());
    std::iter::from_fn(move || {
        let order = match (left.peek(), right.peek()) {
            (None, None) => return None,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some((l, _)), Some((r, _))) => l.cmp(r),
        };
        Some(match order {
            std::cmp::Ordering::Less => left.next().map(|(k, a)| (k, Some(a), None))?,
            std::cmp::Ordering::Greater => right.next().map(|(k, b)| (k, None, Some(b)))?,
            std::cmp::Ordering::Equal => {
                let (k, a) = left.next()?;
                (k, Some(a), right.next().map(|(_, b)| b))
            }
        })
    })
}

/// Decodes a managedFields `fieldsV1` object (`null` is the empty set).
pub fn from_fields_v1(v: &Value) -> Result<FieldSet, String> {
    match v {
        Value::Null => Ok(FieldSet::new()),
        Value::Object(map) => node_from_json(map),
        other => Err(format!("fieldsV1 must be an object, got {other}")),
    }
}

fn node_from_json(map: &Map<String, Value>) -> Result<FieldSet, String> {
    let mut set = FieldSet::new();
    for (key, value) in map {
        if key == "." {
            continue; // read by the parent
        }
        let pe = PathElement::from_fields_v1_key(key)?;
        let Value::Object(inner) = value else {
            return Err(format!("fieldsV1 entry {key:?} must be an object"));
        };
        if inner.is_empty() || inner.contains_key(".") {
            set.members.insert(pe.clone());
        }
        let child = node_from_json(inner)?;
        if !child.is_empty() {
            set.children.insert(pe, child);
        }
    }
    Ok(set)
}

/// Fields the API server never records as owned (its stripMeta manager):
/// type meta, and the metadata the server itself controls.
const STRIPPED_META: [&str; 9] = [
    "name",
    "namespace",
    "creationTimestamp",
    "selfLink",
    "uid",
    "clusterName",
    "generation",
    "managedFields",
    "resourceVersion",
];

fn strip_meta(mut set: FieldSet) -> FieldSet {
    for root in ["apiVersion", "kind", "metadata"] {
        set.members.remove(&PathElement::field(root));
    }
    let meta = PathElement::field("metadata");
    if let Some(child) = set.children.get_mut(&meta) {
        for name in STRIPPED_META {
            child.members.remove(&PathElement::field(name));
        }
        if child.is_empty() {
            set.children.remove(&meta);
        }
    }
    set
}

/// Fields an applied configuration sets, i.e. what its manager owns after an
/// Apply. As upstream, `apiVersion`, `kind`, `metadata.name`/`namespace` and
/// the server-controlled metadata are never owned; inner objects are not
/// members themselves, keyed-list elements are (`k:...` with `"."`), set
/// elements are `v:` members, atomic lists/maps and empty objects/lists are
/// single leaves. Keyed elements lacking a key field are skipped (apply
/// rejects them).
pub fn fields_of(kind: &str, obj: &Value) -> FieldSet {
    let mut walker = Walker::new(kind);
    if let Value::Object(map) = obj {
        for (k, v) in map {
            walker.enter_field(k);
            walker.collect(v);
            walker.leave();
        }
    }
    strip_meta(walker.out)
}

/// What an update changed, in structured-merge-diff terms. `added` also holds
/// objects and list elements that did not exist before (the `"."` entries of
/// an Update's managedFields); `modified` and `removed` hold leaves (and
/// removed elements).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Comparison {
    pub added: FieldSet,
    pub modified: FieldSet,
    pub removed: FieldSet,
}

/// Compares two versions of an object. For an Update by manager M, upstream
/// gives M `added ∪ modified` and takes `modified ∪ removed` away from every
/// other manager. A field that is `null` counts as present, which is why an
/// object created from a zero value (`"containers": null`) does not own the
/// list itself.
pub fn compare(kind: &str, old: &Value, new: &Value) -> Comparison {
    let mut walker = Walker::new(kind);
    let mut cmp = Comparison::default();
    walker.compare_object_fields(old.as_object(), new.as_object(), &mut cmp);
    Comparison { added: strip_meta(cmp.added), modified: strip_meta(cmp.modified), removed: strip_meta(cmp.removed) }
}

/// [`compare`] of one top-level field (a status write diffs only `status`),
/// without copying it into objects of its own.
pub fn compare_field(kind: &str, field: &str, old: Option<&Value>, new: Option<&Value>) -> Comparison {
    let mut walker = Walker::new(kind);
    let mut cmp = Comparison::default();
    walker.enter_field(field);
    walker.compare(old, new, &mut cmp);
    walker.leave();
    Comparison { added: strip_meta(cmp.added), modified: strip_meta(cmp.modified), removed: strip_meta(cmp.removed) }
}

/// Leaf fields whose value differs between `old` and `new` (added, changed or
/// removed), plus objects and elements that were added or removed.
pub fn changed_fields(kind: &str, old: &Value, new: &Value) -> FieldSet {
    let c = compare(kind, old, new);
    c.added.union(&c.modified).union(&c.removed)
}

/// Server-side apply: merges `config` into `live` (objects recursively, keyed
/// lists by key, sets as a union keeping live order, atomic values replaced,
/// `null` removes) and then drops every field the applier owned before
/// (`prev_owned`) that neither the new configuration nor another manager
/// (`others_owned`) owns. Objects emptied by that pruning are dropped too.
pub fn apply(
    kind: &str,
    live: &Value,
    config: &Value,
    prev_owned: &FieldSet,
    others_owned: &FieldSet,
) -> Result<Value, String> {
    if !live.is_object() {
        return Err("live object is not a JSON object".into());
    }
    if !config.is_object() {
        return Err("applied configuration must be a JSON object".into());
    }
    let mut walker = Walker::new(kind);
    let mut merged = walker.merge(Some(live), config)?;
    let doomed = prev_owned.difference(&fields_of(kind, config)).difference(others_owned);
    walker.prune(&mut merged, &doomed);
    Ok(merged)
}

/// Conflicts of a non-forced apply: fields owned by another manager whose
/// value the apply would change. Returns (manager, human path) pairs; an
/// unmergeable configuration has none (apply reports the error). After a
/// forced apply, upstream removes `changed_fields(live, result)` from the
/// other managers.
pub fn conflicts(kind: &str, live: &Value, config: &Value, others: &[(String, FieldSet)]) -> Vec<(String, String)> {
    let Ok(merged) = Walker::new(kind).merge(Some(live), config) else {
        return Vec::new();
    };
    let c = compare(kind, live, &merged);
    let changed = c.added.union(&c.modified);
    others
        .iter()
        .flat_map(|(manager, owned)| {
            owned.intersection(&changed).leaf_paths().into_iter().map(move |path| (manager.clone(), path))
        })
        .collect()
}

/// Shared state of the tree walks: the current path, both as path elements
/// and as the index-free field names the schema is keyed by.
struct Walker<'a> {
    kind: &'a str,
    path: Vec<PathElement>,
    names: Vec<String>,
    out: FieldSet,
}

impl<'a> Walker<'a> {
    fn new(kind: &'a str) -> Self {
        Self { kind, path: Vec::new(), names: Vec::new(), out: FieldSet::new() }
    }

    fn enter_field(&mut self, name: &str) {
        self.path.push(PathElement::field(name));
        self.names.push(name.to_owned());
    }

    fn leave(&mut self) {
        self.path.pop();
        self.names.pop();
    }

    fn schema_path(&self) -> Vec<&str> {
        self.names.iter().map(String::as_str).collect()
    }

    fn list_type(&self) -> ListType {
        schema::list_type(self.kind, &self.schema_path())
    }

    fn atomic_map(&self) -> bool {
        schema::map_is_atomic(self.kind, &self.schema_path())
    }

    /// The path element of a list element at the current (list) path.
    fn element(&self, list: ListType, item: &Value) -> Option<PathElement> {
        match list {
            ListType::Atomic => None,
            ListType::Set => Some(PathElement::value(item)),
            ListType::Map { keys } => {
                let map = item.as_object()?;
                let path = self.schema_path();
                let mut fields = Vec::with_capacity(keys.len());
                for key in keys {
                    let value = match map.get(*key) {
                        Some(v) => v.clone(),
                        None => schema::key_default(self.kind, &path, key)?,
                    };
                    fields.push((*key, value));
                }
                Some(PathElement::key(fields.iter().map(|(k, v)| (*k, v))))
            }
        }
    }

    // ---- fields_of ----

    fn collect(&mut self, value: &Value) {
        match value {
            Value::Object(map) if !map.is_empty() && !self.atomic_map() => {
                for (k, v) in map {
                    self.enter_field(k);
                    self.collect(v);
                    self.leave();
                }
            }
            Value::Array(items) if !items.is_empty() => match self.list_type() {
                ListType::Atomic => self.out.insert(&self.path),
                list => {
                    for item in items {
                        let Some(pe) = self.element(list, item) else { continue };
                        self.path.push(pe);
                        if !matches!(list, ListType::Set) {
                            self.collect(item);
                        }
                        self.out.insert(&self.path);
                        self.path.pop();
                    }
                }
            },
            _ => self.out.insert(&self.path),
        }
    }

    // ---- compare ----

    fn compare_object_fields(
        &mut self,
        old: Option<&Map<String, Value>>,
        new: Option<&Map<String, Value>>,
        cmp: &mut Comparison,
    ) {
        // Both maps iterate in key order: walk them side by side.
        let (left, right) = (old.into_iter().flatten(), new.into_iter().flatten());
        for (key, a, b) in side_by_side(left, right) {
            self.enter_field(key);
            self.compare(a, b, cmp);
            self.leave();
        }
    }

    fn leaf(&self, old: Option<&Value>, new: Option<&Value>, cmp: &mut Comparison) {
        match (old, new) {
            (None, Some(_)) => cmp.added.insert(&self.path),
            (Some(_), None) => cmp.removed.insert(&self.path),
            (Some(a), Some(b)) if !json_eq(a, b) => cmp.modified.insert(&self.path),
            _ => {}
        }
    }

    /// `None` means absent; `null` counts as present but empty, so only truly
    /// new or vanished containers are recorded themselves.
    fn compare(&mut self, old: Option<&Value>, new: Option<&Value>, cmp: &mut Comparison) {
        // Equal values differ nowhere inside: skip the walk (most of a
        // status write's fields are written again unchanged).
        if let (Some(a), Some(b)) = (old, new)
            && json_eq(a, b)
        {
            return;
        }
        let shape = |v: Option<&Value>| match v {
            None | Some(Value::Null) => Shape::Empty,
            Some(Value::Object(_)) => Shape::Map,
            Some(Value::Array(_)) => Shape::List,
            Some(_) => Shape::Scalar,
        };
        let (sl, sr) = (shape(old), shape(new));
        let empty = |v: Option<&Value>| match v {
            Some(Value::Object(m)) => m.is_empty(),
            Some(Value::Array(a)) => a.is_empty(),
            _ => true,
        };
        let container = match (sl, sr) {
            (Shape::Map, Shape::Map | Shape::Empty) | (Shape::Empty, Shape::Map) => Shape::Map,
            (Shape::List, Shape::List | Shape::Empty) | (Shape::Empty, Shape::List) => Shape::List,
            (Shape::Empty | Shape::Scalar, Shape::Empty | Shape::Scalar) => {
                return self.leaf(old, new, cmp);
            }
            _ => {
                // A container turned into something else (or back): the
                // field changed and everything inside it came or went.
                self.leaf(old, new, cmp);
                self.compare_inside(sl, old, None, cmp);
                self.compare_inside(sr, None, new, cmp);
                return;
            }
        };
        let atomic = match container {
            Shape::Map => self.atomic_map(),
            _ => matches!(self.list_type(), ListType::Atomic),
        };
        if atomic || (empty(old) && empty(new)) {
            return self.leaf(old, new, cmp);
        }
        self.compare_inside(container, old, new, cmp);
        match (old, new) {
            (None, Some(_)) => cmp.added.insert(&self.path),
            (Some(_), None) => cmp.removed.insert(&self.path),
            _ => {}
        }
    }

    fn compare_inside(&mut self, shape: Shape, old: Option<&Value>, new: Option<&Value>, cmp: &mut Comparison) {
        match shape {
            Shape::Map => {
                self.compare_object_fields(old.and_then(Value::as_object), new.and_then(Value::as_object), cmp)
            }
            Shape::List => {
                let list = self.list_type();
                if matches!(list, ListType::Atomic) {
                    return self.leaf(old, new, cmp);
                }
                let old_items = self.index(list, old.and_then(Value::as_array));
                let new_items = self.index(list, new.and_then(Value::as_array));
                let mut seen = BTreeSet::new();
                for (pe, _) in old_items.iter().chain(&new_items) {
                    if !seen.insert(pe.clone()) {
                        continue;
                    }
                    let before = lookup(&old_items, pe);
                    let after = lookup(&new_items, pe);
                    self.path.push(pe.clone());
                    if matches!(list, ListType::Set) {
                        self.leaf(before, after, cmp);
                    } else {
                        self.compare(before, after, cmp);
                    }
                    self.path.pop();
                }
            }
            Shape::Empty | Shape::Scalar => {}
        }
    }

    /// Addressable elements of a non-atomic list; the first of duplicates wins.
    fn index<'v>(&self, list: ListType, items: Option<&'v Vec<Value>>) -> Vec<(PathElement, &'v Value)> {
        let mut out: Vec<(PathElement, &Value)> = Vec::new();
        for item in items.into_iter().flatten() {
            if let Some(pe) = self.element(list, item)
                && lookup(&out, &pe).is_none()
            {
                out.push((pe, item));
            }
        }
        out
    }

    // ---- apply: merge ----

    fn merge(&mut self, live: Option<&Value>, config: &Value) -> Result<Value, String> {
        match config {
            Value::Object(fields) if !self.atomic_map() => {
                let mut out = match live {
                    Some(Value::Object(m)) => m.clone(),
                    _ => Map::new(),
                };
                for (key, value) in fields {
                    if value.is_null() {
                        out.retain(|k, _| k != key);
                        continue;
                    }
                    self.enter_field(key);
                    let merged = match out.get_mut(key) {
                        Some(slot) => {
                            let old = std::mem::take(slot);
                            self.merge(Some(&old), value)
                        }
                        None => self.merge(None, value),
                    };
                    self.leave();
                    out.insert(key.clone(), merged?);
                }
                Ok(Value::Object(out))
            }
            Value::Array(items) => match self.list_type() {
                ListType::Atomic => Ok(without_nulls(config)),
                list => self.merge_list(list, live.and_then(Value::as_array), items),
            },
            _ => Ok(without_nulls(config)),
        }
    }

    /// Merges an associative list the way structured-merge-diff orders it:
    /// live-only elements keep their place, shared and new elements follow
    /// the configuration's order.
    fn merge_list(&mut self, list: ListType, live: Option<&Vec<Value>>, config: &[Value]) -> Result<Value, String> {
        let mut rhs: Vec<(PathElement, &Value)> = Vec::with_capacity(config.len());
        for item in config {
            let Some(pe) = self.element(list, item) else {
                return Err(format!("{}: element {item} is missing a key field of the list", self.human_path()));
            };
            if lookup(&rhs, &pe).is_some() {
                return Err(format!("{}: duplicate entries for key {pe}", self.human_path()));
            }
            rhs.push((pe, item));
        }
        let live = live.map(Vec::as_slice).unwrap_or_default();
        let lhs: Vec<(Option<PathElement>, &Value)> =
            live.iter().map(|item| (self.element(list, item), item)).collect();
        let in_rhs = |pe: &Option<PathElement>| pe.as_ref().is_some_and(|pe| lookup(&rhs, pe).is_some());
        let live_item = |pe: &PathElement| lhs.iter().find(|(p, _)| p.as_ref() == Some(pe)).map(|(_, item)| *item);
        let shared: Vec<&PathElement> = rhs.iter().map(|(pe, _)| pe).filter(|pe| live_item(pe).is_some()).collect();

        let mut out = Vec::with_capacity(lhs.len() + rhs.len());
        let (mut l, mut r, mut next_shared) = (0, 0, 0);
        while l < lhs.len() || r < rhs.len() {
            if let (Some((lpe, _)), Some((rpe, ritem))) = (lhs.get(l), rhs.get(r))
                && lpe.as_ref() == Some(rpe)
            {
                out.push(self.merge_element(rpe, live_item(rpe), ritem)?);
                l += 1;
                r += 1;
                next_shared += 1;
                continue;
            }
            if let Some((lpe, litem)) = lhs.get(l) {
                if !in_rhs(lpe) {
                    out.push((*litem).clone());
                    l += 1;
                    continue;
                }
                // Shared, but its turn comes with the configuration's order.
                if shared.get(next_shared).copied() != lpe.as_ref() || r >= rhs.len() {
                    l += 1;
                    continue;
                }
            }
            if let Some((rpe, ritem)) = rhs.get(r) {
                let live_match = live_item(rpe);
                if live_match.is_some() {
                    next_shared += 1;
                }
                out.push(self.merge_element(rpe, live_match, ritem)?);
                r += 1;
            }
        }
        Ok(Value::Array(out))
    }

    fn merge_element(&mut self, pe: &PathElement, live: Option<&Value>, config: &Value) -> Result<Value, String> {
        if matches!(pe, PathElement::Value(_)) {
            return Ok(config.clone());
        }
        self.path.push(pe.clone());
        let merged = self.merge(live, config);
        self.path.pop();
        merged
    }

    fn human_path(&self) -> String {
        self.path.iter().map(ToString::to_string).collect()
    }

    // ---- apply: prune ----

    /// Removes the members of `doomed` from `value`; a container left empty
    /// by the removal goes too.
    fn prune(&mut self, value: &mut Value, doomed: &FieldSet) {
        match value {
            Value::Object(map) => {
                for pe in &doomed.members {
                    if let PathElement::Field(name) = pe {
                        map.retain(|k, _| k != name);
                    }
                }
                for (pe, child) in &doomed.children {
                    let PathElement::Field(name) = pe else { continue };
                    let Some(inner) = map.get_mut(name) else { continue };
                    let was_empty = is_empty_container(inner);
                    self.enter_field(name);
                    self.prune(inner, child);
                    self.leave();
                    if !was_empty && is_empty_container(inner) {
                        map.retain(|k, _| k != name);
                    }
                }
            }
            Value::Array(items) => {
                let list = self.list_type();
                let mut keep = vec![true; items.len()];
                for (i, item) in items.iter_mut().enumerate() {
                    let pe = match self.element(list, item) {
                        Some(pe) => pe,
                        None => PathElement::Index(i),
                    };
                    if doomed.members.contains(&pe) || doomed.members.contains(&PathElement::Index(i)) {
                        keep[i] = false;
                        continue;
                    }
                    if let Some(child) = doomed.children.get(&pe) {
                        let was_empty = is_empty_container(item);
                        self.path.push(pe);
                        self.prune(item, child);
                        self.path.pop();
                        keep[i] = was_empty || !is_empty_container(item);
                    }
                }
                let mut flags = keep.into_iter();
                items.retain(|_| flags.next().unwrap_or(true));
            }
            _ => {}
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Empty,
    Scalar,
    Map,
    List,
}

fn lookup<'v>(items: &[(PathElement, &'v Value)], pe: &PathElement) -> Option<&'v Value> {
    items.iter().find(|(p, _)| p == pe).map(|(_, v)| *v)
}

fn is_empty_container(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// An applied value taken verbatim: `null` fields inside it mean "unset".
fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), without_nulls(v))).collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

fn json_eq(a: &Value, b: &Value) -> bool {
    super::strategic::json_eq(a, b)
}

/// Canonical JSON text of a key or set value, as Go's encoder writes it:
/// object keys sorted, integral numbers without a fraction, `<`, `>`, `&`,
/// U+2028 and U+2029 escaped.
fn canonical(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => out.push_str(&i.to_string()),
            (_, Some(u), _) => out.push_str(&u.to_string()),
            (_, _, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
                out.push_str(&format!("{f:.0}"));
            }
            _ => out.push_str(&n.to_string()),
        },
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let sorted: BTreeMap<&String, &Value> = map.iter().collect();
            out.push('{');
            for (i, (k, v)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(k, out);
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
    }
}

fn write_string(s: &str, out: &mut String) {
    let quoted = Value::String(s.to_owned()).to_string();
    for c in quoted.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// `pod-sent.json` from the v1.32 reference capture.
    fn pod_sent() -> Value {
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "bare", "namespace": "ref", "labels": {"app": "bare"}},
            "spec": {"containers": [{"name": "main", "image": "nginx:1.27",
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}})
    }

    /// The managedFields entry (operation Update) of `pod-created-response.json`.
    fn reference_fields_v1() -> Value {
        json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {
                "f:containers": {"k:{\"name\":\"main\"}": {
                    ".": {}, "f:image": {}, "f:imagePullPolicy": {}, "f:name": {},
                    "f:resources": {".": {}, "f:requests": {".": {}, "f:cpu": {}, "f:memory": {}}},
                    "f:terminationMessagePath": {}, "f:terminationMessagePolicy": {}
                }},
                "f:dnsPolicy": {}, "f:enableServiceLinks": {}, "f:restartPolicy": {},
                "f:schedulerName": {}, "f:securityContext": {},
                "f:terminationGracePeriodSeconds": {}
            }
        })
    }

    /// The sent pod after decoding defaults, as the field manager sees it on
    /// create (before admission adds volumes, tolerations, ...).
    fn pod_defaulted() -> Value {
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "bare", "namespace": "ref", "creationTimestamp": null,
                         "labels": {"app": "bare"}},
            "spec": {
                "containers": [{"name": "main", "image": "nginx:1.27",
                    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent"}],
                "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
                "dnsPolicy": "ClusterFirst", "securityContext": {},
                "schedulerName": "default-scheduler", "enableServiceLinks": true},
            "status": {}})
    }

    /// What a zero-valued Pod serializes to: the "live" side of a create.
    fn pod_zero() -> Value {
        json!({"metadata": {"creationTimestamp": null}, "spec": {"containers": null}, "status": {}})
    }

    #[test]
    fn update_on_create_matches_reference_managed_fields() {
        let owned = changed_fields("Pod", &pod_zero(), &pod_defaulted());
        assert_eq!(to_fields_v1(&owned), reference_fields_v1());
        let c = compare("Pod", &pod_zero(), &pod_defaulted());
        assert!(c.removed.is_empty() && c.modified.is_empty(), "{c:?}");
    }

    #[test]
    fn apply_fields_of_sent_pod() {
        let owned = fields_of("Pod", &pod_sent());
        assert_eq!(
            to_fields_v1(&owned),
            json!({
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {"f:containers": {"k:{\"name\":\"main\"}": {
                    ".": {}, "f:image": {}, "f:name": {},
                    "f:resources": {"f:requests": {"f:cpu": {}, "f:memory": {}}}
                }}}
            })
        );
        // Everything applied is also owned by the create in the reference.
        let reference = from_fields_v1(&reference_fields_v1()).unwrap();
        assert!(owned.difference(&reference).is_empty());
    }

    #[test]
    fn fields_v1_roundtrip_of_reference() {
        let set = from_fields_v1(&reference_fields_v1()).unwrap();
        assert_eq!(to_fields_v1(&set), reference_fields_v1());
        assert!(set.contains(&[PathElement::field("metadata"), PathElement::field("labels")]));
        assert!(!set.contains(&[PathElement::field("metadata")]));
        assert!(set.leaf_paths().contains(&".spec.containers[name=\"main\"].image".to_owned()));
    }

    #[test]
    fn fields_v1_rejects_garbage() {
        for bad in [
            json!([]),
            json!({"x:y": {}}),
            json!({"f:a": 1}),
            json!({"k:[1]": {}}),
            json!({"k:{": {}}),
            json!({"i:-1": {}}),
            json!({"nocolon": {}}),
            json!({"f:a": {"v:{": {}}}),
        ] {
            assert!(from_fields_v1(&bad).is_err(), "{bad}");
        }
        assert_eq!(from_fields_v1(&Value::Null).unwrap(), FieldSet::new());
    }

    #[test]
    fn keys_sets_and_atomics() {
        let dep = json!({"metadata": {"finalizers": ["a/b"]}, "spec": {
            "selector": {"matchLabels": {"app": "x"}},
            "template": {"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80}],
                "args": ["--x"]}], "tolerations": [{"key": "k"}]}}}});
        let v1 = to_fields_v1(&fields_of("Deployment", &dep));
        assert_eq!(v1["f:metadata"]["f:finalizers"], json!({"v:\"a/b\"": {}}));
        assert_eq!(v1["f:spec"]["f:selector"], json!({}));
        let pod_spec = &v1["f:spec"]["f:template"]["f:spec"];
        assert_eq!(pod_spec["f:tolerations"], json!({}));
        let c = &pod_spec["f:containers"]["k:{\"name\":\"c\"}"];
        assert_eq!(c["f:args"], json!({}));
        // The protocol key defaults to TCP, as the schema says.
        assert_eq!(
            c["f:ports"],
            json!({"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}})
        );
        let set = fields_of("Deployment", &dep);
        assert!(set.leaf_paths().contains(
            &".spec.template.spec.containers[name=\"c\"].ports[containerPort=80,protocol=\"TCP\"]".to_owned()
        ));
        assert!(set.leaf_paths().contains(&".metadata.finalizers[=\"a/b\"]".to_owned()));
    }

    #[test]
    fn type_meta_and_server_metadata_are_not_owned() {
        let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
            "name": "x", "namespace": "y", "uid": "u", "resourceVersion": "1",
            "generation": 2, "managedFields": [{}], "annotations": {"a": "b"}},
            "data": {"k": "v"}});
        let set = fields_of("ConfigMap", &obj);
        assert_eq!(set.leaf_paths(), [".data.k", ".metadata.annotations.a"]);
    }

    #[test]
    fn compare_tracks_added_modified_removed() {
        let old = json!({"spec": {"replicas": 1, "template": {"spec": {"containers": [
            {"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]}}}});
        let new = json!({"spec": {"replicas": 2, "paused": true, "template": {"spec": {"containers": [
            {"name": "a", "image": "a:1"}, {"name": "c", "image": "c:1"}]}}}});
        let c = compare("Deployment", &old, &new);
        assert_eq!(c.modified.leaf_paths(), [".spec.replicas"]);
        assert_eq!(
            c.added.leaf_paths(),
            [
                ".spec.paused",
                ".spec.template.spec.containers[name=\"c\"]",
                ".spec.template.spec.containers[name=\"c\"].image",
                ".spec.template.spec.containers[name=\"c\"].name",
            ]
        );
        assert_eq!(c.removed.leaf_paths().len(), 3);
        assert!(changed_fields("Deployment", &old, &old).is_empty());
        // Numbers compare by value.
        assert!(changed_fields("Pod", &json!({"a": 1}), &json!({"a": 1.0})).is_empty());
    }

    /// A status write's diff: keys present on one side only, interleaved
    /// with shared ones, and unchanged subtrees (skipped whole) report nothing.
    #[test]
    fn compare_field_walks_both_sides_in_key_order() {
        let old = json!({"hostIP": "10.0.0.1", "phase": "Pending", "qosClass": "Burstable",
            "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "False"}],
            "containerStatuses": [{"name": "c", "ready": false, "state": {"waiting": {"reason": "ContainerCreating"}}}]});
        let new = json!({"hostIP": "10.0.0.1", "phase": "Running", "podIP": "10.244.0.2",
            "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": "c", "ready": true, "state": {"running": {"startedAt": "t"}}}]});
        let c = compare_field("Pod", "status", Some(&old), Some(&new));
        // containerStatuses is an atomic list: it changes as a whole.
        assert_eq!(
            c.modified.leaf_paths(),
            [".status.conditions[type=\"Ready\"].status", ".status.containerStatuses", ".status.phase"]
        );
        assert_eq!(c.added.leaf_paths(), [".status.podIP"]);
        assert_eq!(c.removed.leaf_paths(), [".status.qosClass"]);
        let same = compare_field("Pod", "status", Some(&old), Some(&old.clone()));
        assert!(same.added.is_empty() && same.modified.is_empty() && same.removed.is_empty());
        // fieldsV1 keeps an element that is both a member and a parent ("."),
        // and reads back as the same set.
        let set =
            fields_of("Pod", &json!({"spec": {"containers": [{"name": "c", "image": "i"}]}, "status": {"phase": "x"}}));
        let v1 = to_fields_v1(&set);
        assert_eq!(v1["f:spec"]["f:containers"]["k:{\"name\":\"c\"}"]["."], json!({}));
        assert_eq!(from_fields_v1(&v1).unwrap(), set);
    }

    #[test]
    fn apply_merges_and_prunes() {
        let live = json!({"metadata": {"name": "d", "labels": {"app": "x", "team": "t"}},
            "spec": {"replicas": 3, "template": {"spec": {"containers": [
                {"name": "a", "image": "a:1"}, {"name": "side", "image": "s:1"}]}}}});
        let prev = fields_of(
            "Deployment",
            &json!({"metadata": {"labels": {"app": "x", "team": "t"}},
            "spec": {"replicas": 3, "template": {"spec": {"containers": [
                {"name": "a", "image": "a:1"}]}}}}),
        );
        // Another manager owns the sidecar.
        let others = fields_of(
            "Deployment",
            &json!({"spec": {"template": {"spec": {
            "containers": [{"name": "side", "image": "s:1"}]}}}}),
        );
        let config = json!({"metadata": {"name": "d", "labels": {"app": "y"}},
            "spec": {"template": {"spec": {"containers": [
                {"name": "b", "image": "b:1"}, {"name": "a", "image": "a:2"}]}}}});
        let out = apply("Deployment", &live, &config, &prev, &others).unwrap();
        assert_eq!(
            out,
            json!({"metadata": {"name": "d", "labels": {"app": "y"}},
                "spec": {"template": {"spec": {"containers": [
                    {"name": "b", "image": "b:1"}, {"name": "a", "image": "a:2"},
                    {"name": "side", "image": "s:1"}]}}}})
        );
        // Fields no one owned before (e.g. defaults) survive.
        let live = json!({"spec": {"replicas": 1, "paused": false}});
        let prev = fields_of("Deployment", &json!({"spec": {"replicas": 1}}));
        let out = apply("Deployment", &live, &json!({"spec": {}}), &prev, &FieldSet::new()).unwrap();
        assert_eq!(out, json!({"spec": {"paused": false}}));
    }

    #[test]
    fn apply_list_order_follows_structured_merge_diff() {
        let live = json!({"spec": {"containers": [{"name": "x"}, {"name": "a"}, {"name": "b"}]}});
        let config = json!({"spec": {"containers": [{"name": "b"}, {"name": "n"}, {"name": "a"}]}});
        let out = apply("Pod", &live, &config, &FieldSet::new(), &FieldSet::new()).unwrap();
        let names: Vec<&str> =
            out["spec"]["containers"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["x", "b", "n", "a"]);
        // Sets are unions; atomic lists are replaced.
        let live = json!({"metadata": {"finalizers": ["a", "b"]}, "spec": {"tolerations": [{"key": "1"}]}});
        let config = json!({"metadata": {"finalizers": ["c", "a"]}, "spec": {"tolerations": [{"key": "2"}]}});
        let out = apply("Pod", &live, &config, &FieldSet::new(), &FieldSet::new()).unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["c", "a", "b"]));
        assert_eq!(out["spec"]["tolerations"], json!([{"key": "2"}]));
    }

    #[test]
    fn apply_replaces_atomic_maps_and_honours_null() {
        let live = json!({"metadata": {"labels": {"a": "1", "b": "2"}},
            "spec": {"selector": {"matchLabels": {"a": "1", "b": "2"}}}});
        let config = json!({"metadata": {"labels": {"b": null, "c": "3"}},
            "spec": {"selector": {"matchLabels": {"c": "3"}}}});
        let out = apply("Deployment", &live, &config, &FieldSet::new(), &FieldSet::new()).unwrap();
        assert_eq!(
            out,
            json!({"metadata": {"labels": {"a": "1", "c": "3"}},
                "spec": {"selector": {"matchLabels": {"c": "3"}}}})
        );
    }

    #[test]
    fn apply_rejects_bad_configs() {
        let live = json!({});
        for config in [
            json!("x"),
            json!({"spec": {"containers": [{"image": "no-name"}]}}),
            json!({"spec": {"containers": [{"name": "a"}, {"name": "a"}]}}),
            json!({"metadata": {"finalizers": ["a", "a"]}}),
        ] {
            assert!(apply("Pod", &live, &config, &FieldSet::new(), &FieldSet::new()).is_err(), "{config}");
        }
        assert!(apply("Pod", &json!(1), &json!({}), &FieldSet::new(), &FieldSet::new()).is_err());
    }

    #[test]
    fn conflicts_only_for_changed_values() {
        let live = json!({"spec": {"replicas": 3, "template": {"spec": {"containers": [
            {"name": "c", "image": "v1"}]}}}});
        let hpa = fields_of("Deployment", &json!({"spec": {"replicas": 3}}));
        let kubectl = fields_of(
            "Deployment",
            &json!({"spec": {"template": {"spec": {
            "containers": [{"name": "c", "image": "v1"}]}}}}),
        );
        let others = vec![("hpa".to_owned(), hpa), ("kubectl".to_owned(), kubectl)];
        let config = json!({"spec": {"replicas": 5, "template": {"spec": {"containers": [
            {"name": "c", "image": "v1"}]}}}});
        assert_eq!(conflicts("Deployment", &live, &config, &others), [("hpa".to_owned(), ".spec.replicas".to_owned())]);
        let same = json!({"spec": {"replicas": 3}});
        assert!(conflicts("Deployment", &live, &same, &others).is_empty());
    }

    fn arb_element() -> impl Strategy<Value = PathElement> {
        prop_oneof![
            "[a-c]{1,2}".prop_map(|s| PathElement::field(&s)),
            ("[a-b]", 0..3i64).prop_map(|(k, v)| PathElement::key([("name", &json!(k)), ("port", &json!(v))])),
            "[x-z<&]{0,2}".prop_map(|s| PathElement::value(&json!(s))),
            (0..3usize).prop_map(PathElement::Index),
        ]
    }

    fn arb_set() -> impl Strategy<Value = FieldSet> {
        prop::collection::vec(prop::collection::vec(arb_element(), 1..4), 0..8).prop_map(|paths| {
            let mut set = FieldSet::new();
            for p in paths {
                set.insert(&p);
            }
            set
        })
    }

    fn path_set(s: &FieldSet) -> BTreeSet<Vec<PathElement>> {
        s.paths().into_iter().collect()
    }

    proptest! {
        #[test]
        fn fields_v1_roundtrip(set in arb_set()) {
            let encoded = to_fields_v1(&set);
            prop_assert_eq!(from_fields_v1(&encoded).unwrap(), set.clone());
            let text = serde_json::to_string(&encoded).unwrap();
            let reparsed: Value = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(from_fields_v1(&reparsed).unwrap(), set);
        }

        #[test]
        fn set_operations_are_path_set_operations(a in arb_set(), b in arb_set()) {
            let (pa, pb) = (path_set(&a), path_set(&b));
            prop_assert_eq!(path_set(&a.union(&b)), pa.union(&pb).cloned().collect());
            prop_assert_eq!(path_set(&a.intersection(&b)), pa.intersection(&pb).cloned().collect());
            prop_assert_eq!(path_set(&a.difference(&b)), pa.difference(&pb).cloned().collect());
            prop_assert_eq!(a.union(&b), b.union(&a));
            prop_assert!(a.difference(&a).is_empty());
            prop_assert_eq!(a.intersection(&a), a.clone());
            prop_assert_eq!(a.difference(&b).union(&a.intersection(&b)), a.clone());
        }

        #[test]
        fn in_place_operations_match_the_copying_ones(a in arb_set(), b in arb_set()) {
            let mut grown = a.clone();
            grown.extend(&b);
            prop_assert_eq!(&grown, &a.union(&b));
            let mut shrunk = a.clone();
            let removed = shrunk.remove_all(&b);
            prop_assert_eq!(&shrunk, &a.difference(&b));
            prop_assert_eq!(removed, shrunk != a);
            // Asking the stored form gives the decoded answer.
            prop_assert_eq!(b.meets_fields_v1(&to_fields_v1(&a)), !a.intersection(&b).is_empty());
        }

        #[test]
        fn apply_to_empty_owns_what_it_sets(labels in prop::collection::btree_map("[a-z]{1,3}", "[a-z]{0,3}", 0..4)) {
            let config = json!({"metadata": {"labels": labels}});
            let out = apply("Pod", &json!({}), &config, &FieldSet::new(), &FieldSet::new()).unwrap();
            // Applying onto nothing changes exactly the applied fields.
            let changed = changed_fields("Pod", &json!({}), &out);
            let owned = fields_of("Pod", &config);
            prop_assert!(owned.difference(&changed).is_empty());
        }
    }
}
