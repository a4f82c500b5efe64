//! A [`Snapshot`] maintained from watch events, so a planning cycle reads the
//! cluster as it is without rebuilding it: at 150,000 pods a rebuild costs far
//! more than the plan itself.
//!
//! The shell feeds it pods, nodes and disruption budgets as they change; the
//! index keeps each node's `requested`, and each pod's node index, Ready
//! siblings and budget allowance, current. Work per event is proportional to
//! what the event touches; the derived per-pod fields that depend on other
//! objects (a sibling turning Ready, a budget's allowance) are marked dirty and
//! settled by [`Index::settle`], once per cycle, however many events came.
//!
//! Pods keep their slot in [`Snapshot::pods`] for their lifetime; a deleted
//! pod's slot is vacant (no node, empty name) until a new pod reuses it. The
//! planner only looks at pods bound to nodes, so vacancies cost nothing but room.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use crate::fit::Requirement;
use crate::snapshot::{NodeView, PodView, Snapshot, Usage};

pub type Labels = BTreeMap<String, String>;

/// What the shell knows about a pod besides its [`PodView`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodMeta {
    /// `spec.nodeName`, resolved to [`PodView::node`] once the node is known.
    pub node_name: Option<Arc<str>>,
    /// The controller's uid (siblings share it).
    pub owner_uid: Option<Arc<str>>,
    /// Interned by the shell: an unchanged pod keeps the same `Arc`.
    pub labels: Arc<Labels>,
    pub containers: Arc<[Box<str>]>,
    /// The Ready condition is True.
    pub ready: bool,
    /// `metadata.uid`, as the 128-bit number a UUID is (a pod replaced under
    /// the same name has another one).
    pub uid: u128,
    /// Why the pod failed (`status.reason` and `status.message`), once its phase is Failed.
    pub failure: Option<Arc<str>>,
}

/// A label selector (`matchLabels` and `matchExpressions`), as a budget has it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    pub match_labels: Labels,
    pub match_expressions: Vec<Requirement>,
}

impl Selector {
    pub fn matches(&self, labels: &Labels) -> bool {
        self.match_labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|e| {
                let have = labels.get(&e.key);
                match e.operator.as_str() {
                    "In" => have.is_some_and(|h| e.values.contains(h)),
                    "NotIn" => have.is_none_or(|h| !e.values.contains(h)),
                    "Exists" => have.is_some(),
                    "DoesNotExist" => have.is_none(),
                    _ => false,
                }
            })
    }
}

/// A PodDisruptionBudget: which pods it covers and how many may go now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    /// `None` covers no pod (upstream's null selector); an empty selector covers the namespace.
    pub selector: Option<Selector>,
    /// `status.disruptionsAllowed`.
    pub allowed: u32,
}

#[derive(Debug, Default)]
struct Group {
    /// Members that are Ready and not terminating.
    ready: u16,
    pods: Vec<u32>,
}

#[derive(Debug)]
struct BudgetEntry {
    namespace: Arc<str>,
    budget: Budget,
    pods: Vec<u32>,
}

#[derive(Debug, Default, Clone)]
struct Slot {
    meta: PodMeta,
    /// Budgets (ids) covering the pod.
    budgets: Vec<u32>,
}

/// The maintained snapshot and the indexes that keep it current.
#[derive(Debug, Default)]
pub struct Index {
    snap: Snapshot,
    slots: Vec<Slot>,
    by_key: HashMap<Box<str>, u32>,
    vacant: Vec<u32>,
    node_by_name: HashMap<Box<str>, u32>,
    /// Pods bound to a node the index does not know (yet): by node name.
    unresolved: HashMap<Arc<str>, Vec<u32>>,
    groups: HashMap<Arc<str>, Group>,
    budgets: Vec<Option<BudgetEntry>>,
    budget_ids: HashMap<(Box<str>, Box<str>), u32>,
    dirty_groups: HashSet<Arc<str>>,
    dirty_pods: Vec<u32>,
}

fn key(namespace: &str, name: &str) -> Box<str> {
    let mut k = String::with_capacity(namespace.len() + 1 + name.len());
    k.push_str(namespace);
    k.push('/');
    k.push_str(name);
    k.into_boxed_str()
}

fn counts_ready(view: &PodView, meta: &PodMeta) -> bool {
    meta.ready && !view.terminating
}

fn remove_from(list: &mut Vec<u32>, slot: u32) {
    if let Some(i) = list.iter().position(|&s| s == slot) {
        list.swap_remove(i);
    }
}

impl Index {
    pub fn new() -> Index {
        Index::default()
    }

    /// Pods indexed (not counting vacant slots).
    pub fn pods(&self) -> usize {
        self.by_key.len()
    }

    pub fn nodes(&self) -> usize {
        self.snap.nodes.len()
    }

    /// The pod `namespace/name`: its view (derived fields as of the last
    /// [`Index::settle`]) and what else is known of it.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<(&PodView, &PodMeta)> {
        let s = *self.by_key.get(&*key(namespace, name))? as usize;
        Some((&self.snap.pods[s], &self.slots[s].meta))
    }

    /// Every indexed pod as (`namespace/name`, what is known of it), in no particular order.
    pub fn metas(&self) -> impl Iterator<Item = (&str, &PodMeta)> + '_ {
        self.by_key.iter().map(|(k, &s)| (&**k, &self.slots[s as usize].meta))
    }

    /// The pod's slot in [`Index::snapshot`]'s pods.
    pub fn slot(&self, namespace: &str, name: &str) -> Option<u32> {
        self.by_key.get(&*key(namespace, name)).copied()
    }

    /// The pods of the controller with this uid, as (view, meta).
    pub fn owned_by<'a>(&'a self, owner_uid: &str) -> impl Iterator<Item = (&'a PodView, &'a PodMeta)> + 'a {
        self.groups
            .get(owner_uid)
            .into_iter()
            .flat_map(|g| g.pods.iter())
            .map(|&s| (&self.snap.pods[s as usize], &self.slots[s as usize].meta))
    }

    /// Ready siblings of the pod (other Ready, not terminating pods of its
    /// controller), counted now.
    pub fn ready_siblings(&self, namespace: &str, name: &str) -> u16 {
        let Some(&s) = self.by_key.get(&*key(namespace, name)) else { return 0 };
        self.siblings_of(s)
    }

    fn siblings_of(&self, s: u32) -> u16 {
        let slot = &self.slots[s as usize];
        let Some(g) = slot.meta.owner_uid.as_ref().and_then(|o| self.groups.get(o)) else { return 0 };
        g.ready.saturating_sub(u16::from(counts_ready(&self.snap.pods[s as usize], &slot.meta)))
    }

    pub fn set_metrics_available(&mut self, available: bool) {
        self.snap.metrics_available = available;
    }

    /// The snapshot, with derived fields as of the last [`Index::settle`].
    pub fn snapshot(&self) -> &Snapshot {
        &self.snap
    }

    /// Bring every derived field up to date. Cost: the events since the last
    /// call, not the size of the cluster.
    pub fn settle(&mut self) {
        for owner in std::mem::take(&mut self.dirty_groups) {
            if let Some(g) = self.groups.get(&owner) {
                self.dirty_pods.extend_from_slice(&g.pods);
            }
        }
        let mut dirty = std::mem::take(&mut self.dirty_pods);
        dirty.sort_unstable();
        dirty.dedup();
        for s in dirty {
            let i = s as usize;
            if self.snap.pods[i].name.is_empty() {
                continue;
            }
            let siblings = self.siblings_of(s);
            let allowed = self.slots[i]
                .budgets
                .iter()
                .filter_map(|&b| self.budgets[b as usize].as_ref())
                .map(|b| b.budget.allowed)
                .min();
            let v = &mut self.snap.pods[i];
            v.ready_siblings = siblings;
            v.disruptions_allowed = allowed;
        }
    }

    fn add_requested(&mut self, s: u32) {
        let v = &self.snap.pods[s as usize];
        if let (Some(n), true) = (v.node, v.holds_requests()) {
            let r = v.requests;
            let facts = &mut self.snap.nodes[n as usize].facts;
            facts.requested = facts.requested + r;
        }
    }

    fn sub_requested(&mut self, s: u32) {
        let v = &self.snap.pods[s as usize];
        if let (Some(n), true) = (v.node, v.holds_requests()) {
            let r = v.requests;
            let q = &mut self.snap.nodes[n as usize].facts.requested;
            q.cpu_m = q.cpu_m.saturating_sub(r.cpu_m);
            q.mem_b = q.mem_b.saturating_sub(r.mem_b);
            q.pods = q.pods.saturating_sub(r.pods);
        }
    }

    /// Budgets of `namespace` whose selector matches `labels`.
    fn matching_budgets(&self, namespace: &str, labels: &Labels) -> Vec<u32> {
        self.budgets
            .iter()
            .enumerate()
            .filter_map(|(i, b)| b.as_ref().map(|b| (i, b)))
            .filter(|(_, b)| {
                &*b.namespace == namespace && b.budget.selector.as_ref().is_some_and(|s| s.matches(labels))
            })
            .map(|(i, _)| i as u32)
            .collect()
    }

    /// Add or replace a pod. `view.node`, `ready_siblings`, `disruptions_allowed`
    /// and (for a pod already indexed) `usage` are the index's to fill.
    pub fn upsert_pod(&mut self, mut view: PodView, meta: PodMeta) {
        let k = key(&view.namespace, &view.name);
        view.node = meta.node_name.as_deref().and_then(|n| self.node_by_name.get(n).copied());
        match self.by_key.get(&k).copied() {
            Some(s) => self.replace(s, view, meta),
            None => {
                let s = match self.vacant.pop() {
                    Some(s) => s,
                    None => {
                        self.snap.pods.push(PodView::default());
                        self.slots.push(Slot::default());
                        (self.snap.pods.len() - 1) as u32
                    }
                };
                self.by_key.insert(k, s);
                let budgets = self.matching_budgets(&view.namespace, &meta.labels);
                self.attach(s, view, meta, budgets);
            }
        }
    }

    /// Write a pod into slot `s` and add everything it contributes.
    fn attach(&mut self, s: u32, view: PodView, meta: PodMeta, budgets: Vec<u32>) {
        if let (None, Some(n)) = (view.node, meta.node_name.clone()) {
            self.unresolved.entry(n).or_default().push(s);
        }
        if let Some(o) = meta.owner_uid.clone() {
            let g = self.groups.entry(o.clone()).or_default();
            g.pods.push(s);
            if counts_ready(&view, &meta) {
                g.ready = g.ready.saturating_add(1);
            }
            self.dirty_groups.insert(o);
        }
        for &b in &budgets {
            if let Some(e) = self.budgets[b as usize].as_mut() {
                e.pods.push(s);
            }
        }
        self.snap.pods[s as usize] = view;
        self.slots[s as usize] = Slot { meta, budgets };
        self.add_requested(s);
        self.dirty_pods.push(s);
    }

    /// Remove everything slot `s` contributes; leaves it vacant.
    fn detach(&mut self, s: u32) -> (PodView, Slot) {
        self.sub_requested(s);
        let view = std::mem::take(&mut self.snap.pods[s as usize]);
        let slot = std::mem::take(&mut self.slots[s as usize]);
        if let (None, Some(n)) = (view.node, slot.meta.node_name.as_ref())
            && let Some(list) = self.unresolved.get_mut(n)
        {
            remove_from(list, s);
            if list.is_empty() {
                self.unresolved.remove(n);
            }
        }
        if let Some(o) = slot.meta.owner_uid.as_ref()
            && let Some(g) = self.groups.get_mut(o)
        {
            remove_from(&mut g.pods, s);
            if counts_ready(&view, &slot.meta) {
                g.ready = g.ready.saturating_sub(1);
            }
            if g.pods.is_empty() {
                self.groups.remove(o);
            } else {
                self.dirty_groups.insert(o.clone());
            }
        }
        for &b in &slot.budgets {
            if let Some(e) = self.budgets[b as usize].as_mut() {
                remove_from(&mut e.pods, s);
            }
        }
        (view, slot)
    }

    /// Replace the pod in slot `s`. The common case — a status change — touches
    /// only the node's requests and the owner's Ready count.
    fn replace(&mut self, s: u32, mut view: PodView, meta: PodMeta) {
        let i = s as usize;
        let old = &self.snap.pods[i];
        let old_meta = &self.slots[i].meta;
        view.usage = old.usage;
        let same_place = old.node == view.node && old_meta.node_name == meta.node_name;
        let same_owner = old_meta.owner_uid == meta.owner_uid;
        let same_labels = Arc::ptr_eq(&old_meta.labels, &meta.labels) || old_meta.labels == meta.labels;
        let was_ready = counts_ready(old, old_meta);
        if !(same_place && same_owner && same_labels) {
            let (_, slot) = self.detach(s);
            let budgets = if same_labels { slot.budgets } else { self.matching_budgets(&view.namespace, &meta.labels) };
            self.attach(s, view, meta, budgets);
            return;
        }
        self.sub_requested(s);
        let now_ready = counts_ready(&view, &meta);
        if was_ready != now_ready
            && let Some(o) = meta.owner_uid.as_ref()
            && let Some(g) = self.groups.get_mut(o)
        {
            g.ready = if now_ready { g.ready.saturating_add(1) } else { g.ready.saturating_sub(1) };
            self.dirty_groups.insert(o.clone());
        }
        self.snap.pods[i] = view;
        self.slots[i].meta = meta;
        self.add_requested(s);
        self.dirty_pods.push(s);
    }

    pub fn remove_pod(&mut self, namespace: &str, name: &str) {
        if let Some(s) = self.by_key.remove(&*key(namespace, name)) {
            self.detach(s);
            self.vacant.push(s);
        }
    }

    /// Add or replace a node. Its `requested` (from the pods bound to it) and
    /// its measured usage are kept: they are the index's and the metrics poll's.
    pub fn upsert_node(&mut self, mut node: NodeView) {
        if let Some(&i) = self.node_by_name.get(node.facts.name.as_str()) {
            let old = &self.snap.nodes[i as usize];
            node.facts.requested = old.facts.requested;
            node.usage = old.usage;
            self.snap.nodes[i as usize] = node;
            return;
        }
        node.facts.requested = Default::default();
        let i = self.snap.nodes.len() as u32;
        let name: Arc<str> = Arc::from(node.facts.name.as_str());
        self.node_by_name.insert(Box::from(&*name), i);
        self.snap.nodes.push(node);
        for s in self.unresolved.remove(&name).unwrap_or_default() {
            self.snap.pods[s as usize].node = Some(i);
            self.add_requested(s);
        }
    }

    /// Remove a node; its pods wait, unresolved, for a node of that name.
    pub fn remove_node(&mut self, name: &str) {
        let Some(i) = self.node_by_name.remove(name) else { return };
        let last = (self.snap.nodes.len() - 1) as u32;
        self.snap.nodes.swap_remove(i as usize);
        if i != last {
            let moved = self.snap.nodes[i as usize].facts.name.as_str();
            self.node_by_name.insert(Box::from(moved), i);
        }
        // Rare: one pass over the pods re-points them.
        for (s, v) in self.snap.pods.iter_mut().enumerate() {
            if v.node == Some(i) {
                v.node = None;
                if let Some(n) = self.slots[s].meta.node_name.clone() {
                    self.unresolved.entry(n).or_default().push(s as u32);
                }
            } else if v.node == Some(last) {
                v.node = Some(i);
            }
        }
    }

    /// Measured usage of a node (`None`: the metrics API has none for it).
    pub fn set_node_usage(&mut self, name: &str, usage: Option<Usage>) {
        if let Some(&i) = self.node_by_name.get(name) {
            self.snap.nodes[i as usize].usage = usage;
        }
    }

    pub fn node(&self, name: &str) -> Option<&NodeView> {
        self.node_by_name.get(name).map(|&i| &self.snap.nodes[i as usize])
    }

    /// Replace every pod's measured usage with `usage` (by `namespace/name`; absent = unknown).
    pub fn set_pod_usage(&mut self, usage: &HashMap<String, Usage>) {
        for (k, &s) in &self.by_key {
            self.snap.pods[s as usize].usage = usage.get(&**k).copied();
        }
    }

    /// Add or replace a budget.
    pub fn upsert_budget(&mut self, namespace: &str, name: &str, budget: Budget) {
        let id_key = (Box::from(namespace), Box::from(name));
        if let Some(&b) = self.budget_ids.get(&id_key)
            && let Some(e) = self.budgets[b as usize].as_mut()
        {
            if e.budget.selector == budget.selector {
                if e.budget.allowed != budget.allowed {
                    e.budget.allowed = budget.allowed;
                    self.dirty_pods.extend_from_slice(&e.pods);
                }
                return;
            }
            self.remove_budget(namespace, name);
        }
        let b = match self.budgets.iter().position(Option::is_none) {
            Some(b) => b,
            None => {
                self.budgets.push(None);
                self.budgets.len() - 1
            }
        } as u32;
        // Rare (a new budget or a new selector): one pass over the pods.
        let pods: Vec<u32> = match &budget.selector {
            None => Vec::new(),
            Some(sel) => self
                .by_key
                .values()
                .copied()
                .filter(|&s| {
                    &*self.snap.pods[s as usize].namespace == namespace
                        && sel.matches(&self.slots[s as usize].meta.labels)
                })
                .collect(),
        };
        for &s in &pods {
            self.slots[s as usize].budgets.push(b);
        }
        self.dirty_pods.extend_from_slice(&pods);
        self.budgets[b as usize] = Some(BudgetEntry { namespace: Arc::from(namespace), budget, pods });
        self.budget_ids.insert(id_key, b);
    }

    pub fn remove_budget(&mut self, namespace: &str, name: &str) {
        let Some(b) = self.budget_ids.remove(&(Box::from(namespace), Box::from(name))) else { return };
        if let Some(e) = self.budgets[b as usize].take() {
            for &s in &e.pods {
                remove_from(&mut self.slots[s as usize].budgets, b);
            }
            self.dirty_pods.extend_from_slice(&e.pods);
        }
    }

    /// Keys of every indexed pod (for a re-list: what the new list lacks is gone).
    pub fn pod_keys(&self) -> Vec<(Arc<str>, Box<str>)> {
        self.by_key
            .values()
            .map(|&s| {
                let v = &self.snap.pods[s as usize];
                (v.namespace.clone(), v.name.clone())
            })
            .collect()
    }

    pub fn node_names(&self) -> Vec<String> {
        self.snap.nodes.iter().map(|n| n.facts.name.clone()).collect()
    }

    pub fn budget_keys(&self) -> Vec<(String, String)> {
        self.budget_ids.keys().map(|(ns, n)| (ns.to_string(), n.to_string())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fit::{NodeFacts, Resources};
    use crate::snapshot::Phase;

    fn node(name: &str) -> NodeView {
        NodeView {
            facts: NodeFacts {
                name: name.into(),
                ready: true,
                allocatable: Resources { cpu_m: 4000, mem_b: 8 << 30, pods: 110 },
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn pod(name: &str, node: &str, owner: Option<&str>, ready: bool, labels: &Arc<Labels>) -> (PodView, PodMeta) {
        (
            PodView {
                namespace: "default".into(),
                name: name.into(),
                phase: Phase::Running,
                requests: Resources { cpu_m: 100, mem_b: 1 << 20, pods: 1 },
                ..Default::default()
            },
            PodMeta {
                node_name: Some(node.into()),
                owner_uid: owner.map(Arc::from),
                labels: labels.clone(),
                ready,
                ..Default::default()
            },
        )
    }

    #[test]
    fn requests_siblings_and_budgets_follow_events() {
        let mut ix = Index::new();
        let web: Arc<Labels> = Arc::new([("app".to_string(), "web".to_string())].into());
        // A pod arrives before its node.
        let (v, m) = pod("a", "w1", Some("rs"), true, &web);
        ix.upsert_pod(v, m);
        ix.upsert_node(node("w1"));
        let (v, m) = pod("b", "w1", Some("rs"), true, &web);
        ix.upsert_pod(v, m);
        let s = {
            ix.settle();
            ix.snapshot()
        };
        assert_eq!(s.nodes[0].facts.requested, Resources { cpu_m: 200, mem_b: 2 << 20, pods: 2 });
        assert!(s.pods.iter().all(|p| p.node == Some(0) && p.ready_siblings == 1 && p.disruptions_allowed.is_none()));

        ix.upsert_budget(
            "default",
            "web",
            Budget { selector: Some(Selector { match_labels: (*web).clone(), ..Default::default() }), allowed: 1 },
        );
        assert!(
            {
                ix.settle();
                ix.snapshot()
            }
            .pods
            .iter()
            .all(|p| p.disruptions_allowed == Some(1))
        );
        ix.upsert_budget(
            "default",
            "web",
            Budget { selector: Some(Selector { match_labels: (*web).clone(), ..Default::default() }), allowed: 0 },
        );
        assert!(
            {
                ix.settle();
                ix.snapshot()
            }
            .pods
            .iter()
            .all(|p| p.disruptions_allowed == Some(0))
        );

        // b stops being Ready: a has no Ready sibling any more.
        let (v, m) = pod("b", "w1", Some("rs"), false, &web);
        ix.upsert_pod(v, m);
        ix.settle();
        assert_eq!(ix.pod("default", "a").unwrap().0.ready_siblings, 0);
        // b finishes: its requests leave the node.
        let (mut v, m) = pod("b", "w1", Some("rs"), false, &web);
        v.phase = Phase::Succeeded;
        ix.upsert_pod(v, m);
        assert_eq!(
            {
                ix.settle();
                ix.snapshot()
            }
            .nodes[0]
                .facts
                .requested
                .cpu_m,
            100
        );
        ix.remove_pod("default", "b");
        ix.remove_budget("default", "web");
        let s = {
            ix.settle();
            ix.snapshot()
        };
        assert_eq!(s.pods.iter().filter(|p| !p.name.is_empty()).count(), 1);
        assert_eq!(ix.pod("default", "a").unwrap().0.disruptions_allowed, None);
        // The vacant slot is reused.
        let (v, m) = pod("c", "w1", None, true, &web);
        ix.upsert_pod(v, m);
        assert_eq!(
            {
                ix.settle();
                ix.snapshot()
            }
            .pods
            .len(),
            2
        );
        ix.remove_node("w1");
        assert!(
            {
                ix.settle();
                ix.snapshot()
            }
            .pods
            .iter()
            .all(|p| p.node.is_none())
        );
        ix.upsert_node(node("w1"));
        assert_eq!(
            {
                ix.settle();
                ix.snapshot()
            }
            .nodes[0]
                .facts
                .requested
                .cpu_m,
            200
        );
    }
}
