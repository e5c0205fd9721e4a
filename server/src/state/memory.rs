//! The state every reader sees: an immutable snapshot, cheap to clone
//! (persistent maps share structure), replaced whole after each commit.

use imbl::{HashMap, OrdMap, OrdSet};
use orch_model::{Allocation, Evaluation, Job, Node, Resources, SchedulerOverrides};
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
        self.nodes.insert(node.id.clone(), Arc::new(node));
        self.rebuild_ready();
    }

    /// Several nodes at once: the ready list is rebuilt once.
    pub(super) fn put_nodes(&mut self, nodes: impl IntoIterator<Item = Node>) {
        for node in nodes {
            self.nodes.insert(node.id.clone(), Arc::new(node));
        }
        self.rebuild_ready();
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
        self.allocs.insert(alloc.id.clone(), Arc::new(alloc));
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
        self.evals.insert(eval.id.clone(), Arc::new(eval));
    }
}
