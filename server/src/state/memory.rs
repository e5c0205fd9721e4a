//! The state every reader sees: an immutable snapshot, cheap to clone
//! (persistent maps share structure), replaced whole after each commit.

use imbl::{HashMap, OrdMap, OrdSet};
use orch_model::{
    Allocation, ClientStatus, EvalStatus, Evaluation, Job, Node, NodeStatus, Resources,
    SchedulerOverrides,
};
use std::sync::Arc;

/// What the allocations on a node hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub resources: Resources,
    pub allocs: u32,
}

/// A consistent view of the cluster at one index.
#[derive(Clone, Default)]
pub struct State {
    pub(super) index: u64,
    pub(super) nodes: OrdMap<String, Arc<Node>>,
    pub(super) jobs: OrdMap<String, Arc<Job>>,
    pub(super) allocs: HashMap<String, Arc<Allocation>>,
    pub(super) allocs_by_job: HashMap<String, OrdSet<String>>,
    pub(super) allocs_by_node: HashMap<String, OrdSet<String>>,
    pub(super) usage: HashMap<String, Usage>,
    pub(super) evals: HashMap<String, Arc<Evaluation>>,
    pub(super) evals_by_job: HashMap<String, OrdSet<String>>,
    /// Schedulable nodes in id order, rebuilt when a node changes: the
    /// scheduler walks it for every evaluation.
    pub(super) ready: Arc<Vec<Arc<Node>>>,
    /// The scheduler settings changed at run time.
    pub(super) scheduler: Arc<SchedulerOverrides>,
    /// Kept as things are put, so a scrape of `/v1/metrics` does not walk
    /// every evaluation and allocation. Nothing is removed from the state
    /// yet; whatever removes a node, an allocation or an evaluation must
    /// take it off these counts too.
    pub(super) by_status: ByStatus,
}

/// How many evaluations, nodes and allocations the state holds in each
/// status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ByStatus {
    evals: [usize; 5],
    nodes: [usize; 3],
    allocs: [usize; 5],
}

impl ByStatus {
    pub fn evals(&self, status: EvalStatus) -> usize {
        self.evals.get(eval_slot(status)).copied().unwrap_or(0)
    }

    pub fn nodes(&self, status: NodeStatus) -> usize {
        self.nodes.get(node_slot(status)).copied().unwrap_or(0)
    }

    /// Allocations by what their node's agent reported.
    pub fn allocs(&self, status: ClientStatus) -> usize {
        self.allocs.get(client_slot(status)).copied().unwrap_or(0)
    }
}

/// One thing of status slot `new` put in place of one of `old`, if any.
fn shift(counts: &mut [usize], old: Option<usize>, new: usize) {
    if let Some(c) = old.and_then(|i| counts.get_mut(i)) {
        *c = c.saturating_sub(1);
    }
    if let Some(c) = counts.get_mut(new) {
        *c += 1;
    }
}

// Exhaustive: a new status fails to compile here until it has a slot (and
// the arrays above a place for it, and `/v1/metrics` its series).
fn eval_slot(s: EvalStatus) -> usize {
    match s {
        EvalStatus::Pending => 0,
        EvalStatus::Blocked => 1,
        EvalStatus::Complete => 2,
        EvalStatus::Failed => 3,
        EvalStatus::Canceled => 4,
    }
}

fn node_slot(s: NodeStatus) -> usize {
    match s {
        NodeStatus::Initializing => 0,
        NodeStatus::Ready => 1,
        NodeStatus::Down => 2,
    }
}

fn client_slot(s: ClientStatus) -> usize {
    match s {
        ClientStatus::Pending => 0,
        ClientStatus::Running => 1,
        ClientStatus::Complete => 2,
        ClientStatus::Failed => 3,
        ClientStatus::Lost => 4,
    }
}

impl State {
    /// The index of the last commit this state includes.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// The scheduler settings changed at run time (`orch scheduler …`).
    pub fn scheduler_overrides(&self) -> &Arc<SchedulerOverrides> {
        &self.scheduler
    }

    pub fn node(&self, id: &str) -> Option<&Arc<Node>> {
        self.nodes.get(id)
    }

    pub fn nodes(&self) -> impl Iterator<Item = &Arc<Node>> {
        self.nodes.values()
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// How many evaluations, nodes and allocations are in each status.
    pub fn by_status(&self) -> &ByStatus {
        &self.by_status
    }

    /// Nodes that take new allocations (ready, eligible, not draining), in
    /// id order.
    pub fn schedulable_nodes(&self) -> &Arc<Vec<Arc<Node>>> {
        &self.ready
    }

    /// What the allocations on `node` hold now.
    pub fn usage(&self, node: &str) -> Usage {
        self.usage.get(node).copied().unwrap_or_default()
    }

    pub fn job(&self, id: &str) -> Option<&Arc<Job>> {
        self.jobs.get(id)
    }

    pub fn jobs(&self) -> impl Iterator<Item = &Arc<Job>> {
        self.jobs.values()
    }

    pub fn alloc(&self, id: &str) -> Option<&Arc<Allocation>> {
        self.allocs.get(id)
    }

    pub fn alloc_count(&self) -> usize {
        self.allocs.len()
    }

    /// Every allocation of `job`, live or not, in id order.
    pub fn allocs_of_job<'a>(&'a self, job: &str) -> impl Iterator<Item = &'a Arc<Allocation>> {
        self.allocs_by_job
            .get(job)
            .into_iter()
            .flat_map(|ids| ids.iter())
            .filter_map(|id| self.allocs.get(id))
    }

    pub fn allocs_on_node<'a>(&'a self, node: &str) -> impl Iterator<Item = &'a Arc<Allocation>> {
        self.allocs_by_node
            .get(node)
            .into_iter()
            .flat_map(|ids| ids.iter())
            .filter_map(|id| self.allocs.get(id))
    }

    pub fn allocs(&self) -> impl Iterator<Item = &Arc<Allocation>> {
        self.allocs.values()
    }

    pub fn eval(&self, id: &str) -> Option<&Arc<Evaluation>> {
        self.evals.get(id)
    }

    pub fn evals(&self) -> impl Iterator<Item = &Arc<Evaluation>> {
        self.evals.values()
    }

    pub fn evals_of_job<'a>(&'a self, job: &str) -> impl Iterator<Item = &'a Arc<Evaluation>> {
        self.evals_by_job
            .get(job)
            .into_iter()
            .flat_map(|ids| ids.iter())
            .filter_map(|id| self.evals.get(id))
    }

    /// This state with `job` registered in place of the current version:
    /// what `orch job plan` schedules against. Nothing is written.
    pub fn with_job(&self, job: Job) -> State {
        let mut state = self.clone();
        state.put_job(job);
        state
    }

    // Mutations, used by the writer on its working copy only.

    pub(super) fn put_node(&mut self, node: Node) {
        self.insert_node(node);
        self.rebuild_ready();
    }

    /// Several nodes at once: the ready list is rebuilt once.
    pub(super) fn put_nodes(&mut self, nodes: impl IntoIterator<Item = Node>) {
        for node in nodes {
            self.insert_node(node);
        }
        self.rebuild_ready();
    }

    fn insert_node(&mut self, node: Node) {
        let status = node_slot(node.status);
        let old = self.nodes.insert(node.id.clone(), Arc::new(node));
        shift(
            &mut self.by_status.nodes,
            old.map(|n| node_slot(n.status)),
            status,
        );
    }

    fn rebuild_ready(&mut self) {
        self.ready = Arc::new(
            self.nodes
                .values()
                .filter(|n| n.schedulable())
                .cloned()
                .collect(),
        );
    }

    pub(super) fn put_job(&mut self, job: Job) {
        self.jobs.insert(job.id.clone(), Arc::new(job));
    }

    pub(super) fn put_alloc(&mut self, alloc: Allocation) {
        if let Some(old) = self.allocs.get(&alloc.id).cloned() {
            self.release(&old);
            if old.node_id != alloc.node_id
                && let Some(ids) = self.allocs_by_node.get_mut(&old.node_id)
            {
                ids.remove(&old.id);
            }
        }
        if alloc.holds_resources() {
            let usage = self.usage.entry(alloc.node_id.clone()).or_default();
            usage.resources = usage.resources.saturating_add(alloc.resources);
            usage.allocs += 1;
        }
        self.allocs_by_job
            .entry(alloc.job_id.clone())
            .or_default()
            .insert(alloc.id.clone());
        self.allocs_by_node
            .entry(alloc.node_id.clone())
            .or_default()
            .insert(alloc.id.clone());
        let status = client_slot(alloc.client_status);
        let old = self.allocs.insert(alloc.id.clone(), Arc::new(alloc));
        shift(
            &mut self.by_status.allocs,
            old.map(|a| client_slot(a.client_status)),
            status,
        );
    }

    fn release(&mut self, old: &Allocation) {
        if old.holds_resources()
            && let Some(usage) = self.usage.get_mut(&old.node_id)
        {
            usage.resources = usage.resources.saturating_sub(old.resources);
            usage.allocs = usage.allocs.saturating_sub(1);
        }
    }

    pub(super) fn put_eval(&mut self, eval: Evaluation) {
        self.evals_by_job
            .entry(eval.job_id.clone())
            .or_default()
            .insert(eval.id.clone());
        let status = eval_slot(eval.status);
        let old = self.evals.insert(eval.id.clone(), Arc::new(eval));
        shift(
            &mut self.by_status.evals,
            old.map(|e| eval_slot(e.status)),
            status,
        );
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests may")]
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// What the writer does to its working copy: one thing put, new or in
    /// place of the one with its id (ids from a small pool, so most puts
    /// replace).
    #[derive(Debug, Clone)]
    enum Put {
        Node(u8, NodeStatus),
        Nodes(Vec<(u8, NodeStatus)>),
        Alloc(u8, ClientStatus),
        Eval(u8, EvalStatus),
    }

    fn node(id: u8, status: NodeStatus) -> Node {
        serde_json::from_value(json!({
            "id": format!("n{id}"), "name": format!("n{id}"),
            "resources": {"cpu": 1000, "memory": 1024}, "status": status,
        }))
        .unwrap()
    }

    fn alloc(id: u8, status: ClientStatus) -> Allocation {
        serde_json::from_value(json!({
            "id": format!("a{id}"), "name": "web.g[0]", "job_id": "web", "job_version": 0,
            "group": "g", "index": 0, "node_id": format!("n{}", id % 3), "eval_id": "e1",
            "resources": {"cpu": 100, "memory": 64, "disk": 0}, "client_status": status,
        }))
        .unwrap()
    }

    fn eval(id: u8, status: EvalStatus) -> Evaluation {
        serde_json::from_value(json!({
            "id": format!("e{id}"), "job_id": "web", "priority": 50,
            "triggered_by": "job-register", "status": status,
        }))
        .unwrap()
    }

    fn put() -> impl Strategy<Value = Put> {
        let node_status = prop_oneof![
            Just(NodeStatus::Initializing),
            Just(NodeStatus::Ready),
            Just(NodeStatus::Down),
        ];
        let client_status = prop_oneof![
            Just(ClientStatus::Pending),
            Just(ClientStatus::Running),
            Just(ClientStatus::Complete),
            Just(ClientStatus::Failed),
            Just(ClientStatus::Lost),
        ];
        let eval_status = prop_oneof![
            Just(EvalStatus::Pending),
            Just(EvalStatus::Blocked),
            Just(EvalStatus::Complete),
            Just(EvalStatus::Failed),
            Just(EvalStatus::Canceled),
        ];
        prop_oneof![
            (0..6u8, node_status.clone()).prop_map(|(id, s)| Put::Node(id, s)),
            prop::collection::vec((0..6u8, node_status), 0..4).prop_map(Put::Nodes),
            (0..8u8, client_status).prop_map(|(id, s)| Put::Alloc(id, s)),
            (0..8u8, eval_status).prop_map(|(id, s)| Put::Eval(id, s)),
        ]
    }

    /// The counts found by walking everything.
    fn walked(state: &State) -> ByStatus {
        let mut counts = ByStatus::default();
        for n in state.nodes() {
            counts.nodes[node_slot(n.status)] += 1;
        }
        for a in state.allocs() {
            counts.allocs[client_slot(a.client_status)] += 1;
        }
        for e in state.evals() {
            counts.evals[eval_slot(e.status)] += 1;
        }
        counts
    }

    proptest! {
        #[test]
        fn counts_by_status_are_what_a_walk_finds(puts in prop::collection::vec(put(), 0..40)) {
            let mut state = State::default();
            for p in puts {
                match p {
                    Put::Node(id, s) => state.put_node(node(id, s)),
                    Put::Nodes(nodes) => {
                        state.put_nodes(nodes.into_iter().map(|(id, s)| node(id, s)));
                    }
                    Put::Alloc(id, s) => state.put_alloc(alloc(id, s)),
                    Put::Eval(id, s) => state.put_eval(eval(id, s)),
                }
                prop_assert_eq!(*state.by_status(), walked(&state));
            }
        }
    }

    #[test]
    fn a_replaced_thing_moves_from_its_old_status_to_its_new() {
        let mut state = State::default();
        state.put_eval(eval(1, EvalStatus::Pending));
        state.put_eval(eval(2, EvalStatus::Pending));
        state.put_eval(eval(1, EvalStatus::Complete));
        state.put_node(node(1, NodeStatus::Ready));
        state.put_nodes([node(1, NodeStatus::Down), node(1, NodeStatus::Ready)]);
        state.put_alloc(alloc(1, ClientStatus::Running));
        state.put_alloc(alloc(1, ClientStatus::Lost));
        let c = state.by_status();
        assert_eq!(
            (c.evals(EvalStatus::Pending), c.evals(EvalStatus::Complete)),
            (1, 1)
        );
        assert_eq!(
            (c.nodes(NodeStatus::Ready), c.nodes(NodeStatus::Down)),
            (1, 0)
        );
        assert_eq!(
            (
                c.allocs(ClientStatus::Running),
                c.allocs(ClientStatus::Lost)
            ),
            (0, 1)
        );
    }
}
