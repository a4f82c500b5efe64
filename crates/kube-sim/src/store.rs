//! The object store: etcd's role in a real cluster.
//!
//! One global `resourceVersion` sequence orders every write, as etcd's revision
//! does. Each resource's objects sit in a persistent ordered map keyed like etcd
//! keys (`namespace/name`), so a snapshot is an O(1) clone. A bounded per-resource
//! event history (like etcd's retained revisions) serves watches from a
//! resourceVersion, consistent paginated lists, and exact-resourceVersion reads;
//! anything older than the history answers `410 Expired`, as a compacted etcd does.
//!
//! Objects are kept serialized (without `kind`/`apiVersion`, which the serving
//! layer prepends) plus the few parsed fields selectors need: a GET or a LIST
//! copies bytes and never re-encodes, which keeps the simulator far from being the
//! bottleneck of the benchmarks that run against it.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use imbl::OrdMap;
use parking_lot::RwLock;
use serde_json::Value;
use tokio::sync::watch;

use crate::error::{ApiError, ApiResult};
use crate::resources::GroupResource;

/// Events kept per resource for watch resumption and consistent reads.
pub const DEFAULT_HISTORY: usize = 20_000;

/// One stored version of an object.
#[derive(Debug)]
pub struct Stored {
    /// etcd-style key: `namespace/name`, or `name` for cluster-scoped objects.
    pub key: Arc<str>,
    pub namespace: Option<String>,
    pub name: String,
    pub uid: String,
    pub rv: u64,
    pub labels: Labels,
    /// Values of the resource's selectable fields (field selectors).
    pub fields: Fields,
    /// The object as JSON without `kind` and `apiVersion` (see [`Stored::body`]).
    body: Body,
    /// Its protobuf form in its envelope, and where the bare message lies in
    /// it, encoded the first time a client asks for it (objects are immutable
    /// once stored, so it never goes stale).
    pub proto: std::sync::OnceLock<(Bytes, std::ops::Range<usize>)>,
}

/// A stored object's JSON, compressed (LZ4) against a recent object of its
/// resource when that saves room. Objects of one resource are mostly alike
/// (a pod of 4.7 KiB, a third of it field ownership, differs from another in
/// its names, uids, times and addresses): against one of its kind a pod keeps
/// about 300 bytes. Compressing takes about 2 µs and reading back a third of
/// that, while every version the store and its history hold is kept small.
#[derive(Debug, Clone)]
enum Body {
    Plain(Bytes),
    /// The plain length (little-endian u32), then the LZ4 block against `dict`.
    Packed {
        data: Box<[u8]>,
        dict: Dict,
    },
}

/// What bodies are compressed against: a plain body of the same resource.
pub type Dict = Arc<[u8]>;

/// Bodies smaller than this are kept as they are.
const PACK_MIN: usize = 256;

impl Body {
    fn new(plain: Vec<u8>, dict: Option<&Dict>) -> Body {
        if let Some(dict) = dict.filter(|_| plain.len() >= PACK_MIN) {
            let data = lz4_flex::block::compress_prepend_size_with_dict(&plain, dict);
            if data.len() < plain.len() / 2 {
                return Body::Packed { data: data.into_boxed_slice(), dict: dict.clone() };
            }
        }
        // A serializer's buffer grows by doubling: a stored body kept in it would
        // carry up to as much unused room as it has content, in every version
        // the store and its history hold.
        if plain.capacity() - plain.len() > plain.len() / 8 {
            Body::Plain(Bytes::copy_from_slice(&plain))
        } else {
            Body::Plain(Bytes::from(plain))
        }
    }

    fn len(&self) -> usize {
        match self {
            Body::Plain(b) => b.len(),
            Body::Packed { data, .. } => data.first_chunk::<4>().map_or(0, |n| u32::from_le_bytes(*n) as usize),
        }
    }

    /// Append the plain JSON to `out`.
    fn write_to(&self, out: &mut Vec<u8>) {
        match self {
            Body::Plain(b) => out.extend_from_slice(b),
            Body::Packed { data, dict } => {
                let start = out.len();
                out.resize(start + self.len(), 0);
                let written =
                    lz4_flex::block::decompress_into_with_dict(&data[4..], &mut out[start..], dict).unwrap_or(0);
                // Compressed here from valid JSON: a shortfall would be a bug;
                // the JSON then fails to parse rather than reading zeros.
                out.truncate(start + written);
            }
        }
    }
}

/// Strings one after another in one exact-size allocation, each prefixed
/// with its length (a `String` each would cost 24 bytes plus an allocation,
/// in every stored version of every object).
fn pack<S: AsRef<str>>(strings: impl IntoIterator<Item = S>) -> Box<[u8]> {
    let mut out = Vec::new();
    for s in strings {
        let s = s.as_ref().as_bytes();
        let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&s[..len as usize]);
    }
    out.into_boxed_slice()
}

/// The strings [`pack`] packed, in order.
fn unpack(mut rest: &[u8]) -> impl Iterator<Item = &str> {
    std::iter::from_fn(move || {
        let (len, tail) = rest.split_first_chunk::<4>()?;
        let (s, tail) = tail.split_at_checked(u32::from_le_bytes(*len) as usize)?;
        rest = tail;
        Some(std::str::from_utf8(s).unwrap_or_default())
    })
}

/// An object's labels as the store keeps them for selectors: sorted pairs
/// [`pack`]ed (a `BTreeMap` node holds room for eleven, and a pair of boxed
/// strings costs two allocations).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Labels(Box<[u8]>);

impl Labels {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut strings = unpack(&self.0);
        std::iter::from_fn(move || Some((strings.next()?, strings.next()?)))
    }
}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for Labels {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> Self {
        let mut v: Vec<(K, V)> = pairs.into_iter().collect();
        v.sort_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
        v.dedup_by(|a, b| a.0.as_ref() == b.0.as_ref());
        Labels(pack(v.iter().flat_map(|(k, v)| [k.as_ref(), v.as_ref()])))
    }
}

/// An object's selectable field values as the store keeps them: [`pack`]ed
/// in the order of their labels. (A pod has eight; as a list of `String`s
/// they took about 490 bytes in every stored version of every pod.)
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Fields {
    labels: &'static [&'static str],
    values: Box<[u8]>,
}

impl Fields {
    /// The values of `labels`, in their order.
    pub fn new<S: AsRef<str>>(labels: &'static [&'static str], values: impl IntoIterator<Item = S>) -> Fields {
        Fields { labels, values: pack(values.into_iter().take(labels.len())) }
    }

    /// Every (label, value), in the labels' order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> + '_ {
        self.labels.iter().copied().zip(unpack(&self.values))
    }

    pub fn get(&self, label: &str) -> Option<&str> {
        self.iter().find(|(l, _)| *l == label).map(|(_, v)| v)
    }
}

impl Stored {
    /// The object as JSON without `kind` and `apiVersion`.
    pub fn body(&self) -> Bytes {
        match &self.body {
            Body::Plain(b) => b.clone(),
            packed => {
                let mut out = Vec::with_capacity(packed.len());
                packed.write_to(&mut out);
                Bytes::from(out)
            }
        }
    }

    /// The length of [`Stored::body`].
    pub fn body_len(&self) -> usize {
        self.body.len()
    }

    /// The bytes the body takes in the store (less than its length when compressed).
    pub fn body_footprint(&self) -> usize {
        match &self.body {
            Body::Plain(b) => b.len(),
            Body::Packed { data, .. } => data.len(),
        }
    }

    /// Append [`Stored::body`] to `out`, without an intermediate copy.
    pub fn write_body(&self, out: &mut Vec<u8>) {
        self.body.write_to(out);
    }

    /// Parse the stored body back into a full object.
    pub fn to_value(&self, api_version: &str, kind: &str) -> Value {
        let mut v: Value = serde_json::from_slice(&self.body()).unwrap_or(Value::Null);
        if let Some(o) = v.as_object_mut() {
            o.insert("apiVersion".into(), Value::String(api_version.into()));
            o.insert("kind".into(), Value::String(kind.into()));
        }
        v
    }

    /// The full object's JSON with `kind` and `apiVersion` first, as upstream
    /// orders them, without re-encoding the body.
    pub fn json_with_type(&self, api_version: &str, kind: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len() + 48);
        out.extend_from_slice(b"{\"kind\":");
        push_json_str(&mut out, kind);
        out.extend_from_slice(b",\"apiVersion\":");
        push_json_str(&mut out, api_version);
        if self.body.len() > 2 {
            // The body's opening brace becomes the comma after apiVersion.
            let brace = out.len();
            self.body.write_to(&mut out);
            out[brace] = b',';
        } else {
            out.push(b'}');
        }
        out
    }

    pub fn field(&self, label: &str) -> Option<String> {
        match label {
            "metadata.name" => Some(self.name.clone()),
            "metadata.namespace" => Some(self.namespace.clone().unwrap_or_default()),
            _ => self.fields.get(label).map(str::to_string),
        }
    }
}

fn push_json_str(out: &mut Vec<u8>, s: &str) {
    // Kinds and apiVersions are plain ASCII identifiers; serde handles anything else.
    match serde_json::to_vec(s) {
        Ok(b) => out.extend_from_slice(&b),
        Err(_) => out.extend_from_slice(b"\"\""),
    }
}

/// Key of an object in its table.
pub fn object_key(namespace: Option<&str>, name: &str) -> Arc<str> {
    match namespace {
        Some(ns) if !ns.is_empty() => Arc::from(format!("{ns}/{name}")),
        _ => Arc::from(name),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Added,
    Modified,
    Deleted,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Added => "ADDED",
            EventKind::Modified => "MODIFIED",
            EventKind::Deleted => "DELETED",
        }
    }
}

/// One change, as a watch sees it. `prev` is the version before the change (for
/// MODIFIED and DELETED), which lets a selector-filtered watch turn "stopped
/// matching" into DELETED and lets history be rolled back for exact reads.
#[derive(Debug, Clone)]
pub struct Event {
    pub rv: u64,
    pub kind: EventKind,
    pub obj: Arc<Stored>,
    pub prev: Option<Arc<Stored>>,
}

type Objects = OrdMap<Arc<str>, Arc<Stored>>;

#[derive(Debug)]
struct Table {
    objects: Objects,
    log: VecDeque<Event>,
    /// Every event with `rv <= compacted` has been dropped from `log`.
    compacted: u64,
    /// The resourceVersion of the table's last write (0: never written).
    written: u64,
    notify: watch::Sender<u64>,
    /// What new bodies are compressed against ([`Body`]), and how many writes ago it was chosen.
    dict: Option<Dict>,
    dict_age: u32,
}

/// Writes after which a resource's dictionary is replaced by the body just
/// written, so it follows what the resource's objects look like now (a pod
/// created, then bound and running). Bodies keep the dictionary they were
/// compressed against alive: at most one per this many writes.
const DICT_REFRESH: u32 = 4096;

impl Table {
    fn new() -> Self {
        Table {
            objects: OrdMap::new(),
            log: VecDeque::new(),
            compacted: 0,
            written: 0,
            notify: watch::channel(0).0,
            dict: None,
            dict_age: 0,
        }
    }

    /// After a write of `obj`: choose a new dictionary when due.
    fn age_dict(&mut self, obj: &Stored) {
        self.dict_age = self.dict_age.saturating_add(1);
        if (self.dict.is_none() || self.dict_age >= DICT_REFRESH) && obj.body_len() >= PACK_MIN {
            self.dict = Some(Dict::from(&obj.body()[..]));
            self.dict_age = 0;
        }
    }
}

/// Reads of committed state, inside a transaction or outside one.
pub trait Reader {
    fn get(&self, gr: &GroupResource, key: &str) -> Option<Arc<Stored>>;
    fn snapshot(&self, gr: &GroupResource) -> Snapshot;
}

/// Reads outside the store's lock that remember which resources they read
/// and as of which write, so that a decision made from them can be committed
/// later only if none of those resources changed meanwhile
/// ([`Txn::unchanged`]).
#[derive(Debug)]
pub struct RecordedReads<'a> {
    store: &'a Store,
    read: parking_lot::Mutex<Vec<(GroupResource, u64)>>,
}

impl<'a> RecordedReads<'a> {
    pub fn new(store: &'a Store) -> Self {
        RecordedReads { store, read: parking_lot::Mutex::new(Vec::new()) }
    }

    fn note(&self, gr: &GroupResource, written: u64) {
        let mut read = self.read.lock();
        if !read.iter().any(|(g, _)| g == gr) {
            read.push((gr.clone(), written));
        }
    }

    /// The resources read, each with the version of its last write when first read.
    pub fn reads(self) -> Vec<(GroupResource, u64)> {
        self.read.into_inner()
    }
}

impl Reader for RecordedReads<'_> {
    fn get(&self, gr: &GroupResource, key: &str) -> Option<Arc<Stored>> {
        let inner = self.store.inner.read();
        let t = inner.tables.get(gr);
        self.note(gr, t.map_or(0, |t| t.written));
        t.and_then(|t| t.objects.get(key).cloned())
    }

    fn snapshot(&self, gr: &GroupResource) -> Snapshot {
        let inner = self.store.inner.read();
        let t = inner.tables.get(gr);
        self.note(gr, t.map_or(0, |t| t.written));
        Snapshot { rv: inner.rv, objects: t.map(|t| t.objects.clone()).unwrap_or_default() }
    }
}

#[derive(Debug)]
struct Inner {
    rv: u64,
    tables: HashMap<GroupResource, Table>,
    history: usize,
}

impl Inner {
    fn table(&mut self, gr: &GroupResource) -> &mut Table {
        self.tables.entry(gr.clone()).or_insert_with(Table::new)
    }
}

/// Computes what a table indexes about an object (its selectable fields).
pub type FieldIndexer = fn(&GroupResource, &Value) -> Fields;

#[derive(Debug)]
pub struct Store {
    inner: RwLock<Inner>,
    indexer: FieldIndexer,
}

/// A consistent view of one resource at one resourceVersion.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub rv: u64,
    objects: Objects,
}

impl Snapshot {
    /// Objects in key order, starting after `start` (exclusive) if given.
    pub fn iter_from<'a>(&'a self, start: Option<&str>) -> Box<dyn Iterator<Item = &'a Arc<Stored>> + 'a> {
        match start {
            Some(s) => {
                let from: Arc<str> = Arc::from(s);
                Box::new(
                    self.objects
                        .range(from.clone()..)
                        .filter(move |(k, _)| k.as_ref() != from.as_ref())
                        .map(|(_, v)| v),
                )
            }
            None => Box::new(self.objects.values()),
        }
    }

    /// Objects whose key starts with `prefix` (a namespace's objects), from `start`.
    pub fn iter_prefix<'a>(
        &'a self,
        prefix: &'a str,
        start: Option<&str>,
    ) -> Box<dyn Iterator<Item = &'a Arc<Stored>> + 'a> {
        let from: Arc<str> = match start {
            Some(s) if s > prefix => Arc::from(s),
            _ => Arc::from(prefix),
        };
        let exclusive = start.is_some();
        let first = from.clone();
        Box::new(
            self.objects
                .range(from..)
                .take_while(move |(k, _)| k.starts_with(prefix))
                .filter(move |(k, _)| !(exclusive && k.as_ref() == first.as_ref()))
                .map(|(_, v)| v),
        )
    }

    pub fn get(&self, key: &str) -> Option<&Arc<Stored>> {
        self.objects.get(key)
    }

    /// A snapshot of objects that are computed rather than stored (the metrics
    /// API), so they are listed, selected and paginated like stored ones.
    pub fn computed(rv: u64, gr: &GroupResource, indexer: FieldIndexer, objects: Vec<Value>) -> Snapshot {
        let mut map = OrdMap::new();
        for mut obj in objects {
            let Ok((ns, name)) = ns_name(&obj) else { continue };
            let key = object_key(ns.as_deref(), &name);
            if let Ok(stored) = encode(gr, indexer, rv, key.clone(), ns, name, &mut obj, None) {
                map.insert(key, Arc::new(stored));
            }
        }
        Snapshot { rv, objects: map }
    }

    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }
}

/// What a watcher gets when it asks for the changes after its cursor.
#[derive(Debug)]
pub enum Since {
    /// The events after the cursor, and the global resourceVersion they bring the
    /// watcher up to (usable as a bookmark).
    Events(Vec<Event>, u64),
    /// The cursor is older than the retained history: `oldest` is the first
    /// resourceVersion still available (upstream's "too old resource version").
    TooOld { oldest: u64 },
}

impl Store {
    pub fn new(indexer: FieldIndexer) -> Self {
        Self::with_history(indexer, DEFAULT_HISTORY)
    }

    pub fn with_history(indexer: FieldIndexer, history: usize) -> Self {
        Store { inner: RwLock::new(Inner { rv: 0, tables: HashMap::new(), history: history.max(1) }), indexer }
    }

    /// The latest resourceVersion of the whole store.
    pub fn current_rv(&self) -> u64 {
        self.inner.read().rv
    }

    pub fn get(&self, gr: &GroupResource, key: &str) -> Option<Arc<Stored>> {
        self.inner.read().tables.get(gr).and_then(|t| t.objects.get(key).cloned())
    }

    /// The current state of a resource.
    pub fn snapshot(&self, gr: &GroupResource) -> Snapshot {
        let inner = self.inner.read();
        let objects = inner.tables.get(gr).map(|t| t.objects.clone()).unwrap_or_default();
        Snapshot { rv: inner.rv, objects }
    }

    /// The state of a resource as of `rv`, rebuilt from the retained history.
    pub fn snapshot_at(&self, gr: &GroupResource, rv: u64) -> ApiResult<Snapshot> {
        let inner = self.inner.read();
        let Some(t) = inner.tables.get(gr) else {
            return Ok(Snapshot { rv, objects: OrdMap::new() });
        };
        if rv >= inner.rv {
            return Ok(Snapshot { rv: inner.rv, objects: t.objects.clone() });
        }
        if rv < t.compacted {
            return Err(ApiError::expired("The resourceVersion for the provided list is too old."));
        }
        let mut objects = t.objects.clone();
        for ev in t.log.iter().rev().take_while(|e| e.rv > rv) {
            match (&ev.kind, &ev.prev) {
                (EventKind::Added, _) => {
                    objects.remove(&ev.obj.key);
                }
                (_, Some(prev)) => {
                    objects.insert(prev.key.clone(), prev.clone());
                }
                (_, None) => {}
            }
        }
        Ok(Snapshot { rv, objects })
    }

    /// A receiver that changes whenever the resource gets a new event.
    pub fn subscribe(&self, gr: &GroupResource) -> watch::Receiver<u64> {
        self.inner.write().table(gr).notify.subscribe()
    }

    /// Events of `gr` with resourceVersion greater than `cursor`.
    pub fn since(&self, gr: &GroupResource, cursor: u64) -> Since {
        let inner = self.inner.read();
        let Some(t) = inner.tables.get(gr) else {
            return Since::Events(Vec::new(), inner.rv);
        };
        if cursor < t.compacted {
            return Since::TooOld { oldest: t.compacted + 1 };
        }
        let start = t.log.partition_point(|e| e.rv <= cursor);
        Since::Events(t.log.range(start..).cloned().collect(), inner.rv)
    }

    /// Run `f` with exclusive access; its writes commit together, or not at all
    /// when it fails. Watchers are woken after the commit.
    pub fn transact<T>(&self, f: impl FnOnce(&mut Txn<'_>) -> ApiResult<T>) -> ApiResult<T> {
        let mut inner = self.inner.write();
        let base_rv = inner.rv;
        let (out, writes) = {
            let mut txn = Txn { inner: &inner, indexer: self.indexer, next_rv: base_rv, writes: Vec::new() };
            let out = f(&mut txn)?;
            (out, txn.writes)
        };
        let history = inner.history;
        let mut touched: Vec<GroupResource> = Vec::new();
        for w in writes {
            let t = inner.table(&w.gr);
            let prev = match w.kind {
                EventKind::Deleted => t.objects.remove(&w.obj.key),
                _ => t.objects.insert(w.obj.key.clone(), w.obj.clone()),
            };
            t.log.push_back(Event { rv: w.obj.rv, kind: w.kind, obj: w.obj.clone(), prev });
            while t.log.len() > history {
                if let Some(old) = t.log.pop_front() {
                    t.compacted = old.rv;
                }
            }
            t.written = w.obj.rv;
            t.age_dict(&w.obj);
            inner.rv = w.obj.rv;
            if !touched.contains(&w.gr) {
                touched.push(w.gr);
            }
        }
        let rv = inner.rv;
        for gr in touched {
            inner.table(&gr).notify.send_replace(rv);
        }
        Ok(out)
    }

    /// Forget all retained history, as an etcd compaction would: every watch or
    /// exact read from an earlier resourceVersion now gets `410 Expired`.
    pub fn compact(&self) {
        let mut inner = self.inner.write();
        let rv = inner.rv;
        for t in inner.tables.values_mut() {
            t.log.clear();
            t.compacted = rv;
        }
    }

    /// Wake every watcher of `gr` (used when a watch must re-check something
    /// other than new events, e.g. a forced disconnect).
    pub fn poke(&self, gr: &GroupResource) {
        let mut inner = self.inner.write();
        let rv = inner.rv;
        inner.table(gr).notify.send_replace(rv);
    }

    /// Number of objects per resource (for benchmarks and debugging).
    pub fn counts(&self) -> Vec<(GroupResource, usize)> {
        let inner = self.inner.read();
        let mut v: Vec<_> = inner.tables.iter().map(|(g, t)| (g.clone(), t.objects.len())).collect();
        v.sort();
        v
    }
}

#[derive(Debug)]
struct Write {
    gr: GroupResource,
    kind: EventKind,
    obj: Arc<Stored>,
}

/// Exclusive access to the store for one logical operation. Reads see the
/// transaction's own earlier writes.
pub struct Txn<'a> {
    inner: &'a Inner,
    indexer: FieldIndexer,
    next_rv: u64,
    writes: Vec<Write>,
}

impl Reader for Txn<'_> {
    fn get(&self, gr: &GroupResource, key: &str) -> Option<Arc<Stored>> {
        Txn::get(self, gr, key)
    }

    fn snapshot(&self, gr: &GroupResource) -> Snapshot {
        Txn::snapshot(self, gr)
    }
}

impl Txn<'_> {
    /// The resourceVersion of the last write so far (including this transaction's).
    pub fn rv(&self) -> u64 {
        self.next_rv
    }

    /// Whether none of `reads` (see [`RecordedReads`]) has been written since
    /// it was read, this transaction's own writes included.
    pub fn unchanged(&self, reads: &[(GroupResource, u64)]) -> bool {
        reads.iter().all(|(gr, written)| {
            !self.writes.iter().any(|w| &w.gr == gr) && self.inner.tables.get(gr).map_or(0, |t| t.written) == *written
        })
    }

    pub fn get(&self, gr: &GroupResource, key: &str) -> Option<Arc<Stored>> {
        if let Some(w) = self.writes.iter().rev().find(|w| &w.gr == gr && &*w.obj.key == key) {
            return (w.kind != EventKind::Deleted).then(|| w.obj.clone());
        }
        self.inner.tables.get(gr).and_then(|t| t.objects.get(key).cloned())
    }

    /// Committed objects of a resource (this transaction's own writes are not
    /// reflected; no operation needs both).
    pub fn snapshot(&self, gr: &GroupResource) -> Snapshot {
        let objects = self.inner.tables.get(gr).map(|t| t.objects.clone()).unwrap_or_default();
        Snapshot { rv: self.inner.rv, objects }
    }

    /// Create or replace the object at its key. Sets `metadata.resourceVersion`.
    pub fn put(&mut self, gr: &GroupResource, obj: Value) -> ApiResult<Arc<Stored>> {
        Ok(self.put_value(gr, obj)?.0)
    }

    /// Like [`Txn::put`], also handing back the object as written (with its new
    /// resourceVersion), which saves callers parsing it back.
    pub fn put_value(&mut self, gr: &GroupResource, mut obj: Value) -> ApiResult<(Arc<Stored>, Value)> {
        let (ns, name) = ns_name(&obj)?;
        let key = object_key(ns.as_deref(), &name);
        let exists = self.get(gr, &key).is_some();
        self.next_rv += 1;
        let stored = Arc::new(self.encode(gr, key, ns, name, &mut obj)?);
        let kind = if exists { EventKind::Modified } else { EventKind::Added };
        self.writes.push(Write { gr: gr.clone(), kind, obj: stored.clone() });
        Ok((stored, obj))
    }

    /// Remove the object at `key`; the DELETED event carries its last state at a
    /// new resourceVersion, as upstream's does.
    pub fn remove(&mut self, gr: &GroupResource, key: &str) -> ApiResult<Option<Arc<Stored>>> {
        let Some(cur) = self.get(gr, key) else { return Ok(None) };
        let mut obj: Value = serde_json::from_slice(&cur.body())
            .map_err(|e| ApiError::internal(format!("stored object {key} is corrupt: {e}")))?;
        self.next_rv += 1;
        let stored = Arc::new(self.encode(gr, cur.key.clone(), cur.namespace.clone(), cur.name.clone(), &mut obj)?);
        self.writes.push(Write { gr: gr.clone(), kind: EventKind::Deleted, obj: stored.clone() });
        Ok(Some(stored))
    }

    fn encode(
        &self,
        gr: &GroupResource,
        key: Arc<str>,
        namespace: Option<String>,
        name: String,
        obj: &mut Value,
    ) -> ApiResult<Stored> {
        let dict = self.inner.tables.get(gr).and_then(|t| t.dict.as_ref());
        encode(gr, self.indexer, self.next_rv, key, namespace, name, obj, dict)
    }
}

/// Serialize an object for storage at `rv` (its kind/apiVersion are left out of
/// the body but kept on `obj`), compressed against `dict` when that saves room.
#[allow(clippy::too_many_arguments)]
fn encode(
    gr: &GroupResource,
    indexer: FieldIndexer,
    rv: u64,
    key: Arc<str>,
    namespace: Option<String>,
    name: String,
    obj: &mut Value,
    dict: Option<&Dict>,
) -> ApiResult<Stored> {
    let fields = indexer(gr, obj);
    let o = obj.as_object_mut().ok_or_else(|| ApiError::internal("object is not a JSON object"))?;
    let type_meta = (o.remove("kind"), o.remove("apiVersion"));
    let meta = o
        .entry("metadata")
        .or_insert_with(|| Value::Object(Default::default()))
        .as_object_mut()
        .ok_or_else(|| ApiError::internal("metadata is not an object"))?;
    meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
    let uid = meta.get("uid").and_then(Value::as_str).unwrap_or_default().to_string();
    let labels = meta
        .get("labels")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.as_str(), v.as_str().unwrap_or_default())).collect())
        .unwrap_or_default();
    let body = serde_json::to_vec(obj).map_err(|e| ApiError::internal(e.to_string()))?;
    if let Some(o) = obj.as_object_mut() {
        if let Some(k) = type_meta.0 {
            o.insert("kind".into(), k);
        }
        if let Some(a) = type_meta.1 {
            o.insert("apiVersion".into(), a);
        }
    }
    let body = Body::new(body, dict);
    Ok(Stored { key, namespace, name, uid, rv, labels, fields, body, proto: Default::default() })
}

fn ns_name(obj: &Value) -> ApiResult<(Option<String>, String)> {
    let meta = &obj["metadata"];
    let name =
        meta["name"].as_str().filter(|n| !n.is_empty()).ok_or_else(|| ApiError::internal("object without a name"))?;
    let ns = meta["namespace"].as_str().filter(|n| !n.is_empty()).map(str::to_string);
    Ok((ns, name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn no_fields(_: &GroupResource, _: &Value) -> Fields {
        Fields::default()
    }

    #[test]
    fn field_values_read_back_in_one_allocation() {
        const LABELS: &[&str] = &["spec.nodeName", "status.phase", "status.podIP", "reason"];
        let f = Fields::new(LABELS, ["n1", "", "10.0.0.1", "a\0b ü"]);
        assert_eq!(f.get("spec.nodeName"), Some("n1"));
        assert_eq!(f.get("status.phase"), Some(""), "an empty value is a value");
        assert_eq!(f.get("reason"), Some("a\0b ü"));
        assert_eq!(f.get("spec.other"), None);
        let all: Vec<(&str, &str)> = f.iter().collect();
        assert_eq!(all.len(), 4);
        assert_eq!(f.values.len(), 4 * 4 + 2 + 8 + 6, "length prefixes and bytes, nothing else");
        assert_eq!(Fields::new(LABELS, ["only-one"]).get("status.phase"), None, "fewer values than labels");
    }

    #[test]
    fn labels_are_sorted_deduplicated_pairs() {
        let l: Labels = [("tier", "web"), ("app", "a"), ("app", "b"), ("empty", "")].into_iter().collect();
        assert_eq!(l.iter().collect::<Vec<_>>(), [("app", "a"), ("empty", ""), ("tier", "web")]);
        assert_eq!(l.get("app"), Some("a"));
        assert_eq!(l.get("empty"), Some(""));
        assert_eq!(l.get("missing"), None);
        assert_eq!(Labels::default().iter().count(), 0);
    }

    #[test]
    fn stored_labels_answer_selectors_like_the_map_they_came_from() {
        let store = Store::new(no_fields);
        let gr = GroupResource::new("", "pods");
        let obj = json!({"metadata": {"name": "p", "namespace": "n",
            "labels": {"tier": "web", "app": "shop", "a.b/c": "", "zone": "z1"}}});
        let stored = store.transact(|txn| txn.put(&gr, obj.clone())).unwrap();
        let map: std::collections::BTreeMap<String, String> =
            serde_json::from_value(obj["metadata"]["labels"].clone()).unwrap();
        for k in ["tier", "app", "a.b/c", "zone", "missing", "", "ap", "zzz"] {
            assert_eq!(stored.labels.get(k), map.get(k).map(String::as_str), "{k}");
        }
        let pairs: Vec<(&str, &str)> = stored.labels.iter().collect();
        assert_eq!(pairs, map.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect::<Vec<_>>(), "sorted by key");
        for sel in ["app=shop", "app!=shop,tier", "tier in (web, db),!missing", "zone notin (z1)", "a.b/c="] {
            let s = crate::selector::LabelSelector::parse(sel).unwrap();
            assert_eq!(s.matches_by(|k| stored.labels.get(k)), s.matches(&map), "{sel}");
        }
        let bare = store.transact(|txn| txn.put(&gr, json!({"metadata": {"name": "q", "namespace": "n"}}))).unwrap();
        assert_eq!(bare.labels.iter().count(), 0);
    }

    fn cm(name: &str, v: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "d"}, "data": {"v": v}})
    }

    fn gr() -> GroupResource {
        GroupResource::new("", "configmaps")
    }

    fn put(s: &Store, v: Value) -> Arc<Stored> {
        s.transact(|t| t.put(&gr(), v)).unwrap()
    }

    fn data(st: &Stored) -> String {
        st.to_value("v1", "ConfigMap")["data"]["v"].as_str().unwrap().to_string()
    }

    /// A config map of `n` bytes of text that differs from its siblings in name and a number.
    fn big_cm(name: &str, n: usize, i: usize) -> Value {
        let text: String = (0..n).map(|k| char::from(b'a' + (k % 26) as u8)).collect();
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "d",
            "labels": {"app": "x"}}, "data": {"text": text, "i": i.to_string()}})
    }

    /// Objects like the ones before them are kept compressed and read back
    /// exactly, in every form a reader asks for; small ones stay as they are.
    #[test]
    fn bodies_are_kept_compressed_against_one_of_their_kind_and_read_back_exactly() {
        let s = Store::new(no_fields);
        let first = put(&s, big_cm("first", 2000, 0));
        assert_eq!(first.body_footprint(), first.body_len(), "the first is the dictionary, kept as it is");
        for i in 1..50 {
            let name = format!("cm-{i}");
            let written = put(&s, big_cm(&name, 2000, i));
            assert!(
                written.body_footprint() < written.body_len() / 4,
                "{} of {}",
                written.body_footprint(),
                written.body_len()
            );
            let mut expected = big_cm(&name, 2000, i);
            expected["metadata"]["resourceVersion"] = json!(written.rv.to_string());
            assert_eq!(written.to_value("v1", "ConfigMap"), expected);
            let plain: Value = serde_json::from_slice(&written.body()).unwrap();
            assert_eq!(plain["data"]["i"], i.to_string());
            let typed: Value = serde_json::from_slice(&written.json_with_type("v1", "ConfigMap")).unwrap();
            assert_eq!(typed, expected);
            let mut appended = b"[".to_vec();
            written.write_body(&mut appended);
            assert_eq!(&appended[1..], &written.body()[..]);
            assert_eq!(written.body_len(), written.body().len());
        }
        // A change compresses too, and so does the version a delete leaves.
        let changed = put(&s, big_cm("cm-7", 2100, 700));
        assert!(changed.body_footprint() < changed.body_len() / 4);
        assert_eq!(changed.to_value("v1", "ConfigMap")["data"]["i"], "700");
        let gone = s.transact(|t| t.remove(&gr(), "d/cm-7")).unwrap().unwrap();
        assert_eq!(gone.to_value("v1", "ConfigMap")["data"]["i"], "700");
        let small = put(&s, cm("small", "v"));
        assert_eq!(small.body_footprint(), small.body_len(), "too small to be worth it");
        assert_eq!(data(&small), "v");
    }

    /// The dictionary follows what the resource's objects look like now.
    #[test]
    fn the_dictionary_is_renewed_from_recent_writes() {
        let s = Store::new(no_fields);
        put(&s, big_cm("old", 300, 0));
        // The same text that does not repeat within itself, unlike the first object's.
        let mut seed = 7u64;
        let text: String = (0..3000)
            .map(|_| {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                char::from(b'A' + (seed >> 59) as u8 % 26)
            })
            .collect();
        let unlike = |name: &str| {
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "d"},
                "data": {"other": text}})
        };
        let before = put(&s, unlike("before"));
        for i in 0..DICT_REFRESH {
            put(&s, unlike(&format!("u-{i}")));
        }
        let after = put(&s, unlike("after"));
        assert_eq!(before.body_footprint(), before.body_len(), "nothing like it yet: kept as it is");
        assert!(
            after.body_footprint() < before.body_footprint() / 4,
            "{} vs {}",
            after.body_footprint(),
            before.body_footprint()
        );
        assert_eq!(after.to_value("v1", "ConfigMap")["metadata"]["name"], "after");
        assert_eq!(before.to_value("v1", "ConfigMap")["metadata"]["name"], "before", "older bodies keep theirs");
    }

    #[test]
    fn one_global_sequence_orders_all_writes() {
        let s = Store::new(no_fields);
        let a = put(&s, cm("a", "1"));
        let other = s
            .transact(|t| {
                t.put(&GroupResource::new("", "secrets"), json!({"metadata": {"name": "x", "namespace": "d"}}))
            })
            .unwrap();
        let b = put(&s, cm("b", "1"));
        assert_eq!((a.rv, other.rv, b.rv), (1, 2, 3));
        assert_eq!(s.current_rv(), 3);
        assert!(a.json_with_type("v1", "ConfigMap").starts_with(br#"{"kind":"ConfigMap","apiVersion":"v1","data""#));
    }

    #[test]
    fn failed_transactions_leave_no_trace() {
        let s = Store::new(no_fields);
        put(&s, cm("a", "1"));
        let r: ApiResult<()> = s.transact(|t| {
            t.put(&gr(), cm("b", "1"))?;
            Err(ApiError::bad_request("no"))
        });
        assert!(r.is_err());
        assert_eq!(s.current_rv(), 1);
        assert!(s.get(&gr(), "d/b").is_none());
    }

    #[test]
    fn snapshots_at_past_versions_are_rebuilt_from_history() {
        let s = Store::new(no_fields);
        put(&s, cm("a", "1")); // rv 1
        put(&s, cm("b", "1")); // rv 2
        put(&s, cm("a", "2")); // rv 3
        s.transact(|t| t.remove(&gr(), "d/b")).unwrap(); // rv 4
        let at2 = s.snapshot_at(&gr(), 2).unwrap();
        assert_eq!(at2.len(), 2);
        assert_eq!(data(at2.get("d/a").unwrap()), "1");
        let at3 = s.snapshot_at(&gr(), 3).unwrap();
        assert_eq!(data(at3.get("d/a").unwrap()), "2");
        assert!(at3.get("d/b").is_some());
        assert_eq!(s.snapshot_at(&gr(), 4).unwrap().len(), 1);
        s.compact();
        assert_eq!(s.snapshot_at(&gr(), 2).unwrap_err().code, 410);
    }

    #[test]
    fn history_is_bounded_and_old_cursors_are_too_old() {
        let s = Store::with_history(no_fields, 3);
        for i in 0..5 {
            put(&s, cm("a", &i.to_string())); // rv 1..=5
        }
        match s.since(&gr(), 1) {
            Since::TooOld { oldest } => assert_eq!(oldest, 3),
            other => panic!("{other:?}"),
        }
        match s.since(&gr(), 3) {
            Since::Events(evs, rv) => {
                assert_eq!(evs.iter().map(|e| e.rv).collect::<Vec<_>>(), vec![4, 5]);
                assert_eq!(rv, 5);
                assert_eq!(evs[0].kind, EventKind::Modified);
                assert_eq!(data(evs[0].prev.as_ref().unwrap()), "2");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn deleted_event_carries_a_new_resource_version() {
        let s = Store::new(no_fields);
        put(&s, cm("a", "1"));
        let gone = s.transact(|t| t.remove(&gr(), "d/a")).unwrap().unwrap();
        assert_eq!(gone.rv, 2);
        assert_eq!(gone.to_value("v1", "ConfigMap")["metadata"]["resourceVersion"], "2");
        match s.since(&gr(), 1) {
            Since::Events(evs, _) => assert_eq!(evs[0].kind, EventKind::Deleted),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn prefix_iteration_stays_inside_the_namespace() {
        let s = Store::new(no_fields);
        for (ns, n) in [("a", "x"), ("a-b", "y"), ("a", "z"), ("b", "w")] {
            s.transact(|t| t.put(&gr(), json!({"metadata": {"name": n, "namespace": ns}}))).unwrap();
        }
        let snap = s.snapshot(&gr());
        let names: Vec<_> = snap.iter_prefix("a/", None).map(|o| o.name.clone()).collect();
        assert_eq!(names, vec!["x", "z"]);
        let after: Vec<_> = snap.iter_prefix("a/", Some("a/x")).map(|o| o.name.clone()).collect();
        assert_eq!(after, vec!["z"]);
        let all: Vec<_> = snap.iter_from(Some("a/z")).map(|o| o.name.clone()).collect();
        assert_eq!(all, vec!["w"]);
    }
}
