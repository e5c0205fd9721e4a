//! Why not this node: what the scheduler made of one node, told stage by
//! stage as `place` decides (feasibility → room → sampling → score →
//! select), for `orch job plan --why-not` and `orch alloc status
//! --why-not`.
//!
//! Nothing here runs while placing. A decision record keeps every
//! candidate's score but no reason per node passed over (keeping one would
//! cost every placement), so that reason is found again afterwards by
//! [`explain`]: one node, one group, one state, examined with the very
//! checks sampling applies ([`sample::examine`]). For a plan, the state
//! each placement saw is rebuilt from the plan itself ([`At`]): the
//! snapshot, less what the plan stops, plus what it placed before.

use super::feasible::Feasibility;
use super::sample::{self, JobAllocs, Overlay, PassedOver};
use super::{DryRun, SchedError};
use crate::State;
use orch_model::{
    Allocation, Decision, Eligibility, Job, JobType, Node, NodeStatus, Resources, TaskGroup,
};
use orch_wire::{
    AllocWhyNot, CandidateScore, GroupWhyNot, NodeVerdict, PlacementFunnel, PlacementWhyNot,
    PlanWhyNot, WhyNotBasis,
};
use std::collections::{HashMap, HashSet};

impl DryRun {
    /// What became of `node` in this dry run of `job` on `state`: for each
    /// group of the job, a verdict per allocation placed (in the order they
    /// were placed), one for those that could not be placed, or, when the
    /// group places nothing, the node against its checks.
    pub fn why_not(&self, state: &State, job: &Job, node: &Node) -> Result<PlanWhyNot, SchedError> {
        let plan = &self.plan;
        let placed: HashMap<&str, &Allocation> = plan
            .placements
            .values()
            .flatten()
            .map(|a| (a.id.as_str(), a))
            .collect();
        // A stop is a replacement's when a placed allocation names it as
        // the one it replaces: `place` frees its room from that placement
        // on. The plan's other stops are free from the start.
        let stops: HashSet<&str> = plan.stops.iter().map(|s| s.alloc_id.as_str()).collect();
        let mut taken_over: HashMap<&str, &Allocation> = HashMap::new();
        for d in &plan.decisions {
            if let Some(previous) = placed
                .get(d.alloc_id.as_str())
                .and_then(|a| a.previous_allocation.as_deref())
                && stops.contains(previous)
                && let Some(old) = state.alloc(previous)
            {
                taken_over.insert(d.alloc_id.as_str(), old);
            }
        }
        let later: HashSet<&str> = taken_over.values().map(|a| a.id.as_str()).collect();
        let from_start = stops
            .iter()
            .filter(|id| !later.contains(*id))
            .map(|id| (*id).to_owned())
            .collect();
        let mut at = At::new(state, &job.id, from_start);

        let mut decisions = plan.decisions.iter().peekable();
        let mut by_group: HashMap<&str, Vec<PlacementWhyNot>> = HashMap::new();
        // `place` takes the groups by name.
        let mut groups: Vec<&TaskGroup> = job.groups.iter().collect();
        groups.sort_by(|a, b| a.name.cmp(&b.name));
        for group in groups {
            let feasibility = compiled(job, group)?;
            at.enter(&group.name);
            let mut entries = Vec::new();
            while let Some(d) = decisions.next_if(|d| d.group == group.name) {
                if let Some(old) = taken_over.get(d.alloc_id.as_str()) {
                    at.free(old);
                }
                let verdict = match scored(state, d, &node.id) {
                    Some(verdict) => Some(verdict),
                    // Each placement of a system group is another node's.
                    None if job.job_type == JobType::System => None,
                    None => Some(match explain(node, &feasibility, d.ask, &at) {
                        NodeVerdict::Fits => NodeVerdict::NotSampled {
                            sampled: d.candidates.len() as u64,
                            feasible: feasible(state, &feasibility, d.ask, &at),
                        },
                        passed_over => passed_over,
                    }),
                };
                if let Some(verdict) = verdict {
                    entries.push(PlacementWhyNot {
                        allocation: placed.get(d.alloc_id.as_str()).map(|a| a.name.clone()),
                        unplaced: 0,
                        verdict,
                    });
                }
                if let Some(picked) = d.picked_node() {
                    at.place(picked, d.ask);
                }
            }
            let failed = self
                .failed_tg_allocs
                .get(&group.name)
                .map_or(0, |m| m.coalesced_failures.saturating_add(1));
            if entries.is_empty() || (failed > 0 && job.job_type != JobType::System) {
                let verdict = explain(node, &feasibility, group.resources(), &at);
                // A system group fails node by node: only this node's
                // failure is this node's.
                let unplaced = if job.job_type == JobType::System {
                    u64::from(matches!(verdict, NodeVerdict::Exhausted { .. }))
                } else {
                    failed
                };
                entries.push(PlacementWhyNot {
                    allocation: None,
                    unplaced,
                    verdict,
                });
            }
            by_group.insert(group.name.as_str(), entries);
        }
        Ok(PlanWhyNot {
            node_id: node.id.clone(),
            node_name: node.name.clone(),
            groups: job
                .groups
                .iter()
                .map(|g| GroupWhyNot {
                    group: g.name.clone(),
                    placements: by_group.remove(g.name.as_str()).unwrap_or_default(),
                })
                .collect(),
        })
    }
}

/// Why `alloc`, of `job` (the version it runs), is not on `node`: the
/// scores its decision record keeps when the node was a candidate;
/// otherwise the group's checks against the node and its allocations as
/// they are now in `state`, since the record keeps no reason per node
/// passed over.
pub fn alloc_why_not(
    state: &State,
    job: &Job,
    alloc: &Allocation,
    decision: Option<&Decision>,
    node: &Node,
) -> Result<AllocWhyNot, SchedError> {
    let (basis, verdict) = match decision.and_then(|d| scored(state, d, &node.id)) {
        Some(verdict) => (WhyNotBasis::Decision, verdict),
        None => {
            let group = job.group(&alloc.group).ok_or_else(|| SchedError::Job {
                job: job.id.clone(),
                detail: format!(
                    "version {} has no group {:?}, which allocation {} runs",
                    job.version, alloc.group, alloc.id
                ),
            })?;
            let feasibility = compiled(job, group)?;
            let mut at = At::new(state, &job.id, HashSet::new());
            at.enter(&group.name);
            (
                WhyNotBasis::Now,
                explain(node, &feasibility, alloc.resources, &at),
            )
        }
    };
    Ok(AllocWhyNot {
        alloc_id: alloc.id.clone(),
        alloc_name: alloc.name.clone(),
        alloc_node_id: alloc.node_id.clone(),
        node_id: node.id.clone(),
        node_name: node.name.clone(),
        basis,
        verdict,
        funnel: decision.map(funnel),
    })
}

/// What the scheduler makes of `node` for an allocation of a group asking
/// `ask`, against one state: not evaluated (it takes nothing new), filtered
/// (the first check it fails), without room (the first dimension short),
/// or [`NodeVerdict::Fits`]: a node sampling makes a candidate when it
/// reaches it.
fn explain(node: &Node, feasibility: &Feasibility, ask: Resources, at: &At<'_>) -> NodeVerdict {
    if let Some(reason) = unschedulable(node) {
        return NodeVerdict::NotEvaluated { reason };
    }
    match sample::examine(node, |id| at.usage(id), feasibility, ask, at, &at.overlay) {
        Ok(_) => NodeVerdict::Fits,
        Err(PassedOver::Filtered(reason)) => NodeVerdict::Filtered {
            reason: reason.to_owned(),
        },
        Err(PassedOver::Exhausted {
            dimension,
            used,
            capacity,
        }) => NodeVerdict::Exhausted {
            dimension: dimension.as_str().to_owned(),
            ask,
            free: capacity.saturating_sub(used),
        },
    }
}

/// Why `node` is not among the nodes sampling walks at all, if it is not
/// ([`Node::schedulable`], said). A placement's metrics count only the
/// nodes it walks (`nodes_evaluated`), so no reason of these is counted.
fn unschedulable(node: &Node) -> Option<String> {
    if node.status != NodeStatus::Ready {
        Some(format!("the node is {}", node.status.as_str()))
    } else if node.drain {
        Some("the node is draining".to_owned())
    } else if node.eligibility == Eligibility::Ineligible {
        Some("the node is ineligible".to_owned())
    } else {
        None
    }
}

/// How many schedulable nodes sampling would make candidates against `at`.
fn feasible(state: &State, feasibility: &Feasibility, ask: Resources, at: &At<'_>) -> u64 {
    state
        .schedulable_nodes()
        .iter()
        .filter(|n| {
            sample::examine(n, |id| at.usage(id), feasibility, ask, at, &at.overlay).is_ok()
        })
        .count() as u64
}

fn compiled(job: &Job, group: &TaskGroup) -> Result<Feasibility, SchedError> {
    Feasibility::new(job, group).map_err(|detail| SchedError::Job {
        job: job.id.clone(),
        detail,
    })
}

/// The verdict of `d` on `node` when it was one of its candidates.
fn scored(state: &State, d: &Decision, node: &str) -> Option<NodeVerdict> {
    let i = d.candidates.iter().position(|c| c == node)?;
    let pick = d.pick as usize;
    let part_names = d.part_names.clone();
    let node = candidate(state, d, i);
    if i == pick {
        return Some(NodeVerdict::Picked { part_names, node });
    }
    let winner = candidate(state, d, pick);
    // `select` keeps the first of equal final scores, comparing these very
    // sums exactly: a candidate with the winner's score lost only by
    // coming later in the walk.
    Some(if node.score == winner.score {
        NodeVerdict::Tied {
            part_names,
            node,
            winner,
        }
    } else {
        NodeVerdict::Outscored {
            part_names,
            node,
            winner,
        }
    })
}

/// Candidate `i`'s row of `d`.
fn candidate(state: &State, d: &Decision, i: usize) -> CandidateScore {
    let node_id = d.candidates.get(i).cloned().unwrap_or_default();
    let per = d.part_names.len();
    CandidateScore {
        node_name: state
            .node(&node_id)
            .map(|n| n.name.clone())
            .unwrap_or_default(),
        node_id,
        // The applier refuses a decision without a finite score for each
        // candidate; a zero stands in should a record lack one.
        score: d.final_score(i).unwrap_or(0.0),
        scorer_score: d.scores.get(i).copied().unwrap_or(0.0),
        host_adjustment: d.host_adjustments.get(i).copied().unwrap_or(0.0),
        parts: i
            .checked_mul(per)
            .and_then(|start| d.parts.get(start..start.checked_add(per)?))
            .map(<[f64]>::to_vec)
            .unwrap_or_default(),
    }
}

fn funnel(d: &Decision) -> PlacementFunnel {
    let filtered: u64 = d.nodes_filtered.values().sum();
    let candidates = d.candidates.len() as u64;
    PlacementFunnel {
        nodes_evaluated: d.nodes_evaluated,
        nodes_filtered: filtered,
        nodes_exhausted: d
            .nodes_evaluated
            .saturating_sub(filtered)
            .saturating_sub(d.nodes_skipped)
            .saturating_sub(candidates),
        nodes_skipped: d.nodes_skipped,
        candidates,
    }
}

/// One state a placement is made against, kept as `place` keeps it: what
/// the snapshot's allocations hold on each node, less what the plan stops,
/// plus what the plan placed before (the overlay); and the job's and the
/// group's allocations per node, which `distinct_hosts` counts.
struct At<'a> {
    state: &'a State,
    job_id: &'a str,
    /// Per node: what the plan's stops give back, and how many.
    freed: HashMap<String, (Resources, u32)>,
    /// The job's live allocations per node, less the stopped ones.
    job_on_node: HashMap<String, u32>,
    /// The allocations the plan stops from the start.
    stopping: HashSet<String>,
    /// The current group's live allocations per node, less the stopping
    /// ones, plus those placed so far.
    group_on_node: HashMap<String, u32>,
    overlay: Overlay,
}

impl<'a> At<'a> {
    /// `state`, with the allocations in `stopping` stopped.
    fn new(state: &'a State, job_id: &'a str, stopping: HashSet<String>) -> Self {
        let mut at = At {
            state,
            job_id,
            freed: HashMap::new(),
            job_on_node: HashMap::new(),
            stopping: HashSet::new(),
            group_on_node: HashMap::new(),
            overlay: Overlay::default(),
        };
        for alloc in state.allocs_of_job(job_id) {
            if alloc.holds_resources() {
                *at.job_on_node.entry(alloc.node_id.clone()).or_default() += 1;
            }
        }
        for id in &stopping {
            if let Some(alloc) = state.alloc(id) {
                at.free(alloc);
            }
        }
        at.stopping = stopping;
        at
    }

    /// What `alloc` holds is free from here on.
    fn free(&mut self, alloc: &Allocation) {
        if !alloc.holds_resources() {
            return;
        }
        let entry = self.freed.entry(alloc.node_id.clone()).or_default();
        entry.0 = entry.0.saturating_add(alloc.resources);
        entry.1 += 1;
        if let Some(n) = self.job_on_node.get_mut(&alloc.node_id) {
            *n = n.saturating_sub(1);
        }
    }

    /// Starts on `group`'s placements.
    fn enter(&mut self, group: &str) {
        self.group_on_node.clear();
        for alloc in self.state.allocs_of_job(self.job_id) {
            if alloc.group == group && alloc.holds_resources() && !self.stopping.contains(&alloc.id)
            {
                *self.group_on_node.entry(alloc.node_id.clone()).or_default() += 1;
            }
        }
    }

    /// A placement of `ask` on `node`, which later ones see.
    fn place(&mut self, node: &str, ask: Resources) {
        self.overlay.place(node, ask);
        *self.group_on_node.entry(node.to_owned()).or_default() += 1;
    }

    fn usage(&self, node: &str) -> (Resources, u32) {
        let usage = self.state.usage(node);
        match self.freed.get(node) {
            Some((res, n)) => (
                usage.resources.saturating_sub(*res),
                usage.allocs.saturating_sub(*n),
            ),
            None => (usage.resources, usage.allocs),
        }
    }
}

impl JobAllocs for At<'_> {
    fn on_node(&self, node: &str) -> u32 {
        self.job_on_node.get(node).copied().unwrap_or(0)
    }

    fn group_on_node(&self, node: &str) -> u32 {
        self.group_on_node.get(node).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, reason = "tests may")]
    use super::*;
    use crate::scheduler::{Native, Sampling, Scheduler};
    use crate::testing::{Harness, count, job, node};
    use serde_json::json;
    use std::sync::Arc;

    fn harness() -> Harness {
        Harness::new(Arc::new(Native::new(orch_scorer_binpack::Binpack)))
    }

    /// The dry run of `job` on the harness's state, and what became of
    /// `node` in it.
    fn plan_why_not(h: &Harness, job: &Job, node: &str) -> (DryRun, PlanWhyNot) {
        let state = h.state();
        let dry = h.scheduler.dry_run(&state, job, h.now()).unwrap();
        let node = state.node(node).unwrap().clone();
        let why = dry.why_not(&state, job, &node).unwrap();
        (dry, why)
    }

    /// The verdicts of the one group `g`.
    fn verdicts(why: &PlanWhyNot) -> Vec<(Option<&str>, &NodeVerdict)> {
        assert_eq!(why.groups.len(), 1, "{why:?}");
        why.groups[0]
            .placements
            .iter()
            .map(|p| (p.allocation.as_deref(), &p.verdict))
            .collect()
    }

    fn filtered(reason: &str) -> NodeVerdict {
        NodeVerdict::Filtered {
            reason: reason.to_owned(),
        }
    }

    #[test]
    fn filtered_by_each_check_with_the_reason_the_metrics_count() {
        let h = harness();
        let mut other_dc = node("other-dc", 4000, 8192, &[("kernel.name", "linux")]);
        other_dc.datacenter = "dc2".into();
        let mut no_exec = node("no-exec", 4000, 8192, &[("kernel.name", "linux")]);
        no_exec.drivers.clear();
        h.nodes(vec![
            node("ok", 4000, 8192, &[("kernel.name", "linux")]),
            node("mac", 4000, 8192, &[("kernel.name", "darwin")]),
            other_dc,
            no_exec,
        ]);
        let j = job(json!({
            "datacenters": ["dc1"],
            "constraint": [{"attribute": "${attr.kernel.name}", "value": "linux"}],
        }));
        for (name, reason) in [
            ("mac", "constraint ${attr.kernel.name} = linux"),
            ("other-dc", "datacenter not in the job's datacenters"),
            ("no-exec", "missing driver exec"),
        ] {
            let (dry, why) = plan_why_not(&h, &j, name);
            assert_eq!(
                verdicts(&why),
                [(Some("web.g[0]"), &filtered(reason))],
                "{name}"
            );
            assert_eq!(why.node_name, name);
            // The reason is the one the decision's metrics count.
            assert_eq!(dry.plan.decisions[0].nodes_filtered.get(reason), Some(&1));
        }
        let (_, why) = plan_why_not(&h, &j, "ok");
        assert!(
            matches!(verdicts(&why)[0].1, NodeVerdict::Picked { .. }),
            "{why:?}"
        );
    }

    #[test]
    fn a_node_that_takes_nothing_new_is_not_evaluated_as_the_metrics_say() {
        let h = harness();
        let mut drained = node("drained", 4000, 8192, &[]);
        drained.drain = true;
        let mut ineligible = node("ineligible", 4000, 8192, &[]);
        ineligible.eligibility = Eligibility::Ineligible;
        let mut down = node("down", 4000, 8192, &[]);
        down.status = NodeStatus::Down;
        h.nodes(vec![node("ok", 4000, 8192, &[]), drained, ineligible, down]);
        // One fits, one does not: a decision, and a failure with metrics.
        let j = job(json!({"group": [{"count": 2, "task": [{"resources": {"cpu": 3000}}]}]}));
        for (name, reason) in [
            ("drained", "the node is draining"),
            ("ineligible", "the node is ineligible"),
            ("down", "the node is down"),
        ] {
            let (dry, why) = plan_why_not(&h, &j, name);
            let not_evaluated = NodeVerdict::NotEvaluated {
                reason: reason.to_owned(),
            };
            assert_eq!(
                why.groups[0].placements,
                [
                    PlacementWhyNot {
                        allocation: Some("web.g[0]".into()),
                        unplaced: 0,
                        verdict: not_evaluated.clone(),
                    },
                    PlacementWhyNot {
                        allocation: None,
                        unplaced: 1,
                        verdict: not_evaluated,
                    }
                ],
                "{name}"
            );
            // Neither the decision nor the failure counts the node: they
            // evaluated the one node that takes allocations, and filtered
            // none.
            let d = &dry.plan.decisions[0];
            assert_eq!((d.nodes_evaluated, d.nodes_filtered.len()), (1, 0));
            let failed = &dry.failed_tg_allocs["g"];
            assert_eq!(failed.nodes_evaluated, 1);
            assert!(failed.nodes_filtered.is_empty(), "{failed:?}");
        }
    }

    #[test]
    fn a_candidate_with_the_winners_score_tied_and_lost_on_walk_order() {
        let h = harness();
        h.nodes(vec![node("a", 4000, 8192, &[]), node("b", 4000, 8192, &[])]);
        let j = job(json!({}));
        let state = h.state();
        let dry = h.scheduler.dry_run(&state, &j, h.now()).unwrap();
        let d = &dry.plan.decisions[0];
        assert_eq!(d.scores[0], d.scores[1], "two nodes alike score alike");
        assert_eq!(d.pick, 0, "the first of equals wins");
        let why = dry
            .why_not(&state, &j, state.node(&d.candidates[1]).unwrap())
            .unwrap();
        let v = verdicts(&why);
        let NodeVerdict::Tied { node, winner, .. } = v[0].1 else {
            panic!("{v:?}");
        };
        assert_eq!(
            (node.node_id.as_str(), winner.node_id.as_str()),
            (d.candidates[1].as_str(), d.candidates[0].as_str())
        );
        assert_eq!(node.score, winner.score);
    }

    #[test]
    fn distinct_hosts_filters_the_node_the_job_already_runs_on() {
        let h = harness();
        h.nodes(vec![node("a", 4000, 8192, &[]), node("b", 4000, 8192, &[])]);
        h.register(job(json!({"constraint": [{"operator": "distinct_hosts"}]})));
        h.run();
        let on = h.live("web")[0].node_id.clone();
        let two = job(json!({
            "constraint": [{"operator": "distinct_hosts"}],
            "group": [{"count": 2}],
        }));
        let (_, why) = plan_why_not(&h, &two, &on);
        assert_eq!(
            verdicts(&why),
            [(Some("web.g[1]"), &filtered("distinct_hosts"))]
        );
    }

    #[test]
    fn exhausted_says_the_dimension_the_ask_and_what_is_free() {
        let h = harness();
        h.nodes(vec![
            node("small", 4000, 200, &[]),
            node("big", 4000, 8192, &[]),
        ]);
        let (_, why) = plan_why_not(&h, &job(json!({})), "small");
        assert_eq!(
            verdicts(&why),
            [(
                Some("web.g[0]"),
                &NodeVerdict::Exhausted {
                    dimension: "memory".into(),
                    ask: Resources::new(500, 256, 0),
                    free: Resources::new(4000, 200, 10_000),
                }
            )]
        );
    }

    #[test]
    fn a_node_picked_once_is_full_for_the_next_placement_of_the_plan() {
        let h = harness();
        // Binpack prefers the fuller node: `tight` takes one allocation.
        h.nodes(vec![
            node("tight", 600, 8192, &[]),
            node("roomy", 4000, 8192, &[]),
        ]);
        let j = job(count(2));
        let (_, why) = plan_why_not(&h, &j, "tight");
        let v = verdicts(&why);
        assert!(
            matches!(v[0], (Some("web.g[0]"), NodeVerdict::Picked { .. })),
            "{v:?}"
        );
        assert_eq!(
            v[1],
            (
                Some("web.g[1]"),
                &NodeVerdict::Exhausted {
                    dimension: "cpu".into(),
                    ask: Resources::new(500, 256, 0),
                    free: Resources::new(100, 8192 - 256, 10_000),
                }
            )
        );
        let (_, why) = plan_why_not(&h, &j, "roomy");
        let v = verdicts(&why);
        let NodeVerdict::Outscored {
            part_names,
            node,
            winner,
        } = v[0].1
        else {
            panic!("{v:?}");
        };
        assert_eq!(node.node_id, "roomy");
        assert_eq!(winner.node_id, "tight");
        assert!(winner.score > node.score, "{winner:?} {node:?}");
        assert_eq!(node.parts.len(), part_names.len());
        assert_eq!(winner.parts.len(), part_names.len());
        assert!(matches!(
            v[1],
            (Some("web.g[1]"), NodeVerdict::Picked { .. })
        ));
    }

    #[test]
    fn a_replacement_takes_over_the_room_of_what_it_replaces() {
        let h = harness();
        h.nodes(vec![
            node("tight", 600, 8192, &[]),
            node("roomy", 4000, 8192, &[]),
        ]);
        h.register(job(json!({})));
        h.run();
        assert_eq!(h.live("web")[0].node_id, "tight");
        // A new task spec replaces it, and one more is wanted: the
        // replacement gets the old one's room on `tight`, which then has
        // room for nothing more.
        let j = job(json!({"group": [{"count": 2, "task": [{"env": {"MODE": "fast"}}]}]}));
        let (dry, why) = plan_why_not(&h, &j, "tight");
        assert_eq!(dry.plan.stops.len(), 1, "{:?}", dry.plan.stops);
        let v = verdicts(&why);
        assert!(
            matches!(v[0], (Some("web.g[0]"), NodeVerdict::Picked { .. })),
            "{v:?}"
        );
        assert_eq!(
            v[1],
            (
                Some("web.g[1]"),
                &NodeVerdict::Exhausted {
                    dimension: "cpu".into(),
                    ask: Resources::new(500, 256, 0),
                    free: Resources::new(100, 8192 - 256, 10_000),
                }
            )
        );
    }

    #[test]
    fn not_sampled_says_how_many_were_sampled_of_how_many_feasible() {
        let mut h = harness();
        h.scheduler = Scheduler::new(
            Arc::new(Native::new(orch_scorer_binpack::Binpack)),
            Sampling {
                candidates: 1,
                percent: 0,
            },
        );
        h.nodes(vec![
            node("a", 4000, 8192, &[]),
            node("b", 4000, 8192, &[]),
            node("c", 4000, 8192, &[]),
        ]);
        let j = job(json!({}));
        let state = h.state();
        let dry = h.scheduler.dry_run(&state, &j, h.now()).unwrap();
        let candidate = dry.plan.decisions[0].candidates[0].clone();
        let other = ["a", "b", "c"]
            .into_iter()
            .find(|n| *n != candidate)
            .unwrap();
        let why = dry.why_not(&state, &j, state.node(other).unwrap()).unwrap();
        assert_eq!(
            verdicts(&why),
            [(
                Some("web.g[0]"),
                &NodeVerdict::NotSampled {
                    sampled: 1,
                    feasible: 3
                }
            )]
        );
    }

    #[test]
    fn unplaced_and_nothing_to_place_are_explained_against_the_checks() {
        let h = harness();
        h.nodes(vec![node("a", 4000, 8192, &[("kernel.name", "linux")])]);
        let windows = job(json!({
            "constraint": [{"attribute": "${attr.kernel.name}", "value": "windows"}],
            "group": [{"count": 2}],
        }));
        let (dry, why) = plan_why_not(&h, &windows, "a");
        assert!(dry.plan.decisions.is_empty());
        assert_eq!(
            why.groups[0].placements,
            [PlacementWhyNot {
                allocation: None,
                unplaced: 2,
                verdict: filtered("constraint ${attr.kernel.name} = windows"),
            }]
        );

        // Run as planned: the plan places nothing, and the node passes.
        let j = job(json!({}));
        h.register(j.clone());
        h.run();
        let (_, why) = plan_why_not(&h, &j, "a");
        assert_eq!(
            why.groups[0].placements,
            [PlacementWhyNot {
                allocation: None,
                unplaced: 0,
                verdict: NodeVerdict::Fits,
            }]
        );
    }

    #[test]
    fn an_allocation_answers_from_its_record_or_from_the_node_as_it_is_now() {
        let h = harness();
        h.nodes(vec![
            node("tight", 600, 8192, &[("kernel.name", "linux")]),
            node("roomy", 4000, 8192, &[("kernel.name", "linux")]),
            node("mac", 4000, 8192, &[("kernel.name", "darwin")]),
        ]);
        let j = job(json!({
            "constraint": [{"attribute": "${attr.kernel.name}", "value": "linux"}],
        }));
        h.register(j.clone());
        h.run();
        let state = h.state();
        let alloc = h.live("web")[0].clone();
        assert_eq!(alloc.node_id, "tight");
        let decision = h.store.decision(&alloc.id).unwrap().unwrap();
        let job = state.job("web").unwrap().clone();
        let ask = |n: &str| {
            alloc_why_not(
                &state,
                &job,
                &alloc,
                Some(&decision),
                state.node(n).unwrap(),
            )
            .unwrap()
        };

        let roomy = ask("roomy");
        assert_eq!(roomy.basis, WhyNotBasis::Decision);
        assert!(
            matches!(&roomy.verdict, NodeVerdict::Outscored { winner, .. } if winner.node_id == "tight"),
            "{roomy:?}"
        );
        assert_eq!(
            roomy.funnel,
            Some(PlacementFunnel {
                nodes_evaluated: 3,
                nodes_filtered: 1,
                nodes_exhausted: 0,
                nodes_skipped: 0,
                candidates: 2,
            })
        );
        assert!(matches!(ask("tight").verdict, NodeVerdict::Picked { .. }));

        // Not a candidate: the checks, against the node as it is now.
        let mac = ask("mac");
        assert_eq!(mac.basis, WhyNotBasis::Now);
        assert_eq!(
            mac.verdict,
            filtered("constraint ${attr.kernel.name} = linux")
        );
        // Without a record, even a node that was a candidate is judged as
        // it is now: it would pass.
        let now = alloc_why_not(&state, &job, &alloc, None, state.node("roomy").unwrap()).unwrap();
        assert_eq!(
            (now.basis, now.verdict),
            (WhyNotBasis::Now, NodeVerdict::Fits)
        );
        assert_eq!(now.funnel, None);
    }
}
