//! Candidate sampling: walk the schedulable nodes from a rotating start,
//! keep the ones that are feasible and have room, stop once there are
//! enough (Kubernetes' percentageOfNodesToScore, Nomad's limit iterator).
//! Every node passed over for a reason is counted in the metric.

use super::feasible::{DistinctHosts, Feasibility};
pub use orch_model::Sampling;
use orch_model::{AllocMetric, Dimension, Node, Resources};
use orch_plugin_runtime::{Node as ScorerNode, NodeColumns, Resources as ScorerResources};
use std::collections::HashMap;
use std::sync::Arc;

/// What this plan has already put on each node, on top of the snapshot.
#[derive(Debug, Default, Clone)]
pub struct Overlay {
    nodes: HashMap<String, Added>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Added {
    resources: Resources,
    allocs: u32,
    job_allocs: u32,
}

impl Overlay {
    pub fn place(&mut self, node: &str, resources: Resources) {
        let added = self.nodes.entry(node.to_owned()).or_default();
        added.resources = added.resources.saturating_add(resources);
        added.allocs += 1;
        added.job_allocs += 1;
    }

    /// Takes back a placement made with [`Self::place`].
    pub fn remove(&mut self, node: &str, resources: Resources) {
        if let Some(added) = self.nodes.get_mut(node) {
            added.resources = added.resources.saturating_sub(resources);
            added.allocs = added.allocs.saturating_sub(1);
            added.job_allocs = added.job_allocs.saturating_sub(1);
        }
    }

    /// What this plan has put on `node` so far.
    pub fn added(&self, node: &str) -> Resources {
        self.get(node).resources
    }

    fn get(&self, node: &str) -> Added {
        self.nodes.get(node).copied().unwrap_or_default()
    }
}

/// The nodes a placement will be scored over, as the scorer sees them.
pub struct Candidates {
    pub nodes: Vec<Arc<Node>>,
    pub columns: NodeColumns,
    /// Nodes not examined once enough candidates were found.
    pub skipped: u64,
}

/// What a placement needs to know about the job's own allocations.
pub trait JobAllocs {
    /// Live allocations of the job being placed on `node`, in the snapshot.
    fn on_node(&self, node: &str) -> u32;

    /// Live allocations of the group being placed on `node`, in the
    /// snapshot and already in this plan: what a group's `distinct_hosts`
    /// counts.
    fn group_on_node(&self, node: &str) -> u32 {
        self.on_node(node)
    }
}

impl<F: Fn(&str) -> u32> JobAllocs for F {
    fn on_node(&self, node: &str) -> u32 {
        self(node)
    }
}

/// The nodes one group's placements are sampled from, with what sampling
/// reads of each kept by position: the group's requirements are checked
/// once per node, not once per placement, and usage, the job's and the
/// group's allocations and this plan's additions are read from arrays, not
/// looked up by node id — with every node of a large cluster a candidate,
/// that lookup was most of a placement. The caller says when a node's
/// figures change ([`Pool::refresh`]). The checks are [`examine`]'s, in
/// its order, so `why_not` (which examines one node) agrees.
pub struct Pool<'a> {
    nodes: &'a [Arc<Node>],
    feasibility: &'a Feasibility,
    position: HashMap<&'a str, usize>,
    /// Per node: the requirement it does not meet, if any.
    filtered: Vec<Option<&'a str>>,
    figures: Vec<Figures>,
}

/// What sampling reads of one node that meets the requirements.
#[derive(Debug, Default, Clone, Copy)]
struct Figures {
    capacity: Resources,
    /// What the snapshot's allocations hold (less the plan's stops).
    held: Resources,
    allocs: u32,
    /// The job's and the group's allocations there, in the snapshot.
    job: u32,
    group: u32,
    /// What this plan put there so far.
    added: Added,
}

impl<'a> Pool<'a> {
    /// `usage(node)` is what the snapshot's allocations hold on a node; it
    /// is only asked of nodes that meet the requirements.
    pub fn new(
        nodes: &'a [Arc<Node>],
        feasibility: &'a Feasibility,
        usage: impl Fn(&str) -> (Resources, u32),
        job_allocs: &dyn JobAllocs,
        overlay: &Overlay,
    ) -> Self {
        let filtered: Vec<Option<&'a str>> = nodes
            .iter()
            .map(|node| feasibility.check(node).err())
            .collect();
        let mut pool = Self {
            nodes,
            feasibility,
            position: nodes
                .iter()
                .enumerate()
                .map(|(i, n)| (n.id.as_str(), i))
                .collect(),
            filtered,
            figures: vec![Figures::default(); nodes.len()],
        };
        for i in 0..nodes.len() {
            pool.read(i, &usage, job_allocs, overlay);
        }
        pool
    }

    fn read(
        &mut self,
        i: usize,
        usage: impl Fn(&str) -> (Resources, u32),
        job_allocs: &dyn JobAllocs,
        overlay: &Overlay,
    ) {
        if self.filtered[i].is_some() {
            return;
        }
        self.figures[i] = Figures::of(&self.nodes[i], usage, job_allocs, overlay);
    }

    /// Reads `node`'s figures again after they changed (a placement there,
    /// a replacement taking over the room of an allocation there).
    pub fn refresh(
        &mut self,
        node: &str,
        usage: impl Fn(&str) -> (Resources, u32),
        job_allocs: &dyn JobAllocs,
        overlay: &Overlay,
    ) {
        if let Some(&i) = self.position.get(node) {
            self.read(i, usage, job_allocs, overlay);
        }
    }

    /// Up to `limit` candidates for an allocation asking for `ask`, walking
    /// from `start` (mod the node count) and wrapping around; every node
    /// passed over is counted in `metric`.
    pub fn collect(
        &self,
        ask: Resources,
        limit: usize,
        start: usize,
        metric: &mut AllocMetric,
    ) -> Candidates {
        let n = self.nodes.len();
        metric.nodes_evaluated = n as u64;
        let room = limit.min(n);
        let mut picked = Vec::with_capacity(room);
        let mut columns = NodeColumns::with_capacity(room);
        // Counted here and added to the metric once: a node passed over
        // costs no map update.
        let mut filtered: Vec<(&str, u64)> = Vec::new();
        let mut exhausted = [0u64; 3];
        let mut examined = 0usize;
        let order = (start.min(n)..n).chain(0..start.min(n));
        for i in order {
            if picked.len() >= limit {
                break;
            }
            examined += 1;
            let verdict = match self.filtered[i] {
                Some(reason) => Err(PassedOver::Filtered(reason)),
                None => self.figures[i].examine(self.feasibility.distinct_hosts, ask),
            };
            match verdict {
                Ok(node) => columns.push(node),
                Err(PassedOver::Filtered(reason)) => {
                    match filtered.iter_mut().find(|(r, _)| *r == reason) {
                        Some((_, count)) => *count += 1,
                        None => filtered.push((reason, 1)),
                    }
                    continue;
                }
                Err(PassedOver::Exhausted { dimension, .. }) => {
                    exhausted[dimension as usize] += 1;
                    continue;
                }
            }
            picked.push(self.nodes[i].clone());
        }
        for (reason, count) in filtered {
            *metric.nodes_filtered.entry(reason.to_owned()).or_default() += count;
        }
        for dimension in [Dimension::Cpu, Dimension::Memory, Dimension::Disk] {
            let count = exhausted[dimension as usize];
            if count > 0 {
                metric.nodes_exhausted += count;
                *metric
                    .dimension_exhausted
                    .entry(dimension.as_str().to_owned())
                    .or_default() += count;
            }
        }
        Candidates {
            nodes: picked,
            columns,
            skipped: (n - examined) as u64,
        }
    }
}

/// Why sampling passes over a node, as its metric counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassedOver<'f> {
    /// A requirement of the group (datacenter, driver, constraint) or its
    /// `distinct_hosts` is not met: the reason it is counted under.
    Filtered(&'f str),
    /// The node meets the requirements but the ask does not fit: the first
    /// dimension short, and what is held there (by the snapshot's
    /// allocations and this plan's) of what it can give.
    Exhausted {
        dimension: Dimension,
        used: Resources,
        capacity: Resources,
    },
}

/// Sampling's checks of one node, in the order it makes them: the group's
/// requirements, `distinct_hosts`, then room for `ask`. What the scorer is
/// told of the node when it passes. `usage(node)` is only asked of a node
/// that meets the requirements. [`Pool::collect`] walks the nodes with the
/// same checks, and `why_not` explains one node with it, so the two cannot
/// disagree.
#[inline]
pub fn examine<'f>(
    node: &Node,
    usage: impl Fn(&str) -> (Resources, u32),
    feasibility: &'f Feasibility,
    ask: Resources,
    job_allocs: &dyn JobAllocs,
    overlay: &Overlay,
) -> Result<ScorerNode, PassedOver<'f>> {
    feasibility.check(node).map_err(PassedOver::Filtered)?;
    Figures::of(node, usage, job_allocs, overlay).examine(feasibility.distinct_hosts, ask)
}

impl Figures {
    fn of(
        node: &Node,
        usage: impl Fn(&str) -> (Resources, u32),
        job_allocs: &dyn JobAllocs,
        overlay: &Overlay,
    ) -> Self {
        let (held, allocs) = usage(&node.id);
        Self {
            capacity: node.allocatable(),
            held,
            allocs,
            job: job_allocs.on_node(&node.id),
            group: job_allocs.group_on_node(&node.id),
            added: overlay.get(&node.id),
        }
    }

    /// The checks after the group's requirements: `distinct_hosts`, then
    /// room for `ask`. Both [`examine`] and [`Pool::collect`] end here.
    #[inline]
    fn examine(
        &self,
        distinct: Option<DistinctHosts>,
        ask: Resources,
    ) -> Result<ScorerNode, PassedOver<'static>> {
        let job_here = self.job + self.added.job_allocs;
        let apart = match distinct {
            None => false,
            Some(DistinctHosts::Job) => job_here > 0,
            Some(DistinctHosts::Group) => self.group > 0,
        };
        if apart {
            return Err(PassedOver::Filtered(DISTINCT_HOSTS));
        }
        let used = self.held.saturating_add(self.added.resources);
        if let Some(dimension) = self.capacity.exhausted(used, ask) {
            return Err(PassedOver::Exhausted {
                dimension,
                used,
                capacity: self.capacity,
            });
        }
        Ok(ScorerNode {
            capacity: scorer_resources(self.capacity),
            allocated: scorer_resources(used),
            job_allocs: job_here,
            total_allocs: self.allocs + self.added.allocs,
        })
    }
}

/// What a node `distinct_hosts` keeps the allocation off is filtered under.
const DISTINCT_HOSTS: &str = "distinct_hosts";

pub fn scorer_resources(r: Resources) -> ScorerResources {
    ScorerResources {
        cpu_mhz: r.cpu,
        memory_mib: r.memory,
        disk_mib: r.disk,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests may")]
    use super::*;
    use orch_model::Job;

    fn node(id: &str, cpu: u32, os: &str) -> Arc<Node> {
        Arc::new(
            serde_json::from_value(serde_json::json!({
                "id": id, "name": id, "resources": {"cpu": cpu, "memory": 4096},
                "attributes": {"os.name": os},
                "drivers": {"exec": {"detected": true, "healthy": true}}, "status": "ready",
            }))
            .unwrap(),
        )
    }

    fn job(distinct: bool) -> Job {
        let mut constraints =
            vec![serde_json::json!({"attribute": "${attr.os.name}", "value": "linux"})];
        if distinct {
            constraints.push(serde_json::json!({"operator": "distinct_hosts"}));
        }
        serde_json::from_value(serde_json::json!({
            "id": "j", "constraint": constraints,
            "group": [{"name": "g", "task": [{"name": "t", "driver": "exec"}]}],
        }))
        .unwrap()
    }

    #[test]
    fn limit_is_a_count_or_a_percentage_capped_at_the_cluster() {
        let s = Sampling {
            candidates: 64,
            percent: 10,
        };
        assert_eq!(s.limit(10), 10);
        assert_eq!(s.limit(100), 64);
        assert_eq!(s.limit(5000), 500);
        assert_eq!(
            Sampling {
                candidates: 0,
                percent: 0
            }
            .limit(5),
            1
        );
    }

    #[test]
    fn counts_every_node_passed_over_and_stops_at_the_limit() {
        let nodes = vec![
            node("a", 1000, "linux"),
            node("b", 1000, "darwin"),
            node("c", 100, "linux"),
            node("d", 1000, "linux"),
            node("e", 1000, "linux"),
        ];
        let j = job(false);
        let f = Feasibility::new(&j, &j.groups[0]).unwrap();
        let mut metric = AllocMetric::default();
        let none = |_: &str| 0u32;
        let mut overlay = Overlay::default();
        let mut pool = Pool::new(&nodes, &f, |_| (Resources::ZERO, 0), &none, &overlay);
        let c = pool.collect(Resources::new(500, 100, 0), 2, 0, &mut metric);
        let ids: Vec<&str> = c.nodes.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, ["a", "d"]);
        assert_eq!(c.skipped, 1);
        assert_eq!(
            metric
                .nodes_filtered
                .get("constraint ${attr.os.name} = linux"),
            Some(&1)
        );
        assert_eq!(metric.dimension_exhausted.get("cpu"), Some(&1));
        assert_eq!(c.columns.len(), Some(2));

        // Starting elsewhere wraps around; the plan's own placements count
        // once the pool is told of them.
        overlay.place("e", Resources::new(600, 0, 0));
        pool.refresh("e", |_| (Resources::ZERO, 0), &none, &overlay);
        let mut metric = AllocMetric::default();
        let c = pool.collect(Resources::new(500, 100, 0), 5, 3, &mut metric);
        let ids: Vec<&str> = c.nodes.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, ["d", "a"]);
        assert_eq!(
            metric.nodes_exhausted, 2,
            "c is too small, e is full from this plan"
        );
    }

    #[test]
    fn distinct_hosts_skips_nodes_with_the_job() {
        let nodes = vec![node("a", 1000, "linux"), node("d", 1000, "linux")];
        let j = job(true);
        let f = Feasibility::new(&j, &j.groups[0]).unwrap();
        let on_a = |n: &str| u32::from(n == "a");
        let mut metric = AllocMetric::default();
        let pool = Pool::new(
            &nodes,
            &f,
            |_| (Resources::ZERO, 0),
            &on_a,
            &Overlay::default(),
        );
        let c = pool.collect(Resources::new(1, 1, 0), 5, 0, &mut metric);
        assert_eq!(c.nodes.len(), 1);
        assert_eq!(metric.nodes_filtered.get("distinct_hosts"), Some(&1));
    }
}
