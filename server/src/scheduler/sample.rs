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

/// Collects up to `limit` candidates for an allocation asking for `ask`,
/// starting at `start` (mod the node count) and wrapping around.
/// `usage(node)` is what the snapshot's allocations hold on a node.
#[allow(
    clippy::too_many_arguments,
    reason = "each is one input of the sampling stage; a struct would only rename them"
)]
pub fn collect(
    nodes: &[Arc<Node>],
    usage: impl Fn(&str) -> (Resources, u32),
    feasibility: &Feasibility,
    ask: Resources,
    job_allocs: &dyn JobAllocs,
    overlay: &Overlay,
    limit: usize,
    start: usize,
    metric: &mut AllocMetric,
) -> Candidates {
    let n = nodes.len();
    metric.nodes_evaluated = n as u64;
    let mut picked = Vec::with_capacity(limit.min(n));
    let mut scorer_nodes = Vec::with_capacity(limit.min(n));
    let mut examined = 0usize;
    for i in 0..n {
        if picked.len() >= limit {
            break;
        }
        examined += 1;
        let node = &nodes[(start + i) % n];
        match examine(node, &usage, feasibility, ask, job_allocs, overlay) {
            Ok(scorer_node) => {
                scorer_nodes.push(scorer_node);
                picked.push(node.clone());
            }
            Err(PassedOver::Filtered(reason)) => metric.filter(reason),
            Err(PassedOver::Exhausted { dimension, .. }) => metric.exhaust(dimension.as_str()),
        }
    }
    Candidates {
        nodes: picked,
        columns: NodeColumns::from_nodes(&scorer_nodes),
        skipped: (n - examined) as u64,
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
/// that meets the requirements. [`collect`] walks the nodes with it, and
/// `why_not` explains one node with it, so the two cannot disagree.
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
    let added = overlay.get(&node.id);
    let job_here = job_allocs.on_node(&node.id) + added.job_allocs;
    let apart = match feasibility.distinct_hosts {
        None => false,
        Some(DistinctHosts::Job) => job_here > 0,
        Some(DistinctHosts::Group) => job_allocs.group_on_node(&node.id) > 0,
    };
    if apart {
        return Err(PassedOver::Filtered(DISTINCT_HOSTS));
    }
    let (held, allocs) = usage(&node.id);
    let used = held.saturating_add(added.resources);
    let capacity = node.allocatable();
    if let Some(dimension) = capacity.exhausted(used, ask) {
        return Err(PassedOver::Exhausted {
            dimension,
            used,
            capacity,
        });
    }
    Ok(ScorerNode {
        capacity: scorer_resources(capacity),
        allocated: scorer_resources(used),
        job_allocs: job_here,
        total_allocs: allocs + added.allocs,
    })
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
        let c = collect(
            &nodes,
            |_| (Resources::ZERO, 0),
            &f,
            Resources::new(500, 100, 0),
            &none,
            &Overlay::default(),
            2,
            0,
            &mut metric,
        );
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

        // Starting elsewhere wraps around; the plan's own placements count.
        let mut overlay = Overlay::default();
        overlay.place("e", Resources::new(600, 0, 0));
        let mut metric = AllocMetric::default();
        let c = collect(
            &nodes,
            |_| (Resources::ZERO, 0),
            &f,
            Resources::new(500, 100, 0),
            &none,
            &overlay,
            5,
            3,
            &mut metric,
        );
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
        let c = collect(
            &nodes,
            |_| (Resources::ZERO, 0),
            &f,
            Resources::new(1, 1, 0),
            &on_a,
            &Overlay::default(),
            5,
            0,
            &mut metric,
        );
        assert_eq!(c.nodes.len(), 1);
        assert_eq!(metric.nodes_filtered.get("distinct_hosts"), Some(&1));
    }
}
