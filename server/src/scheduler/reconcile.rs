//! Reconcile: what the job wants against what exists. The answer is a list
//! of slots to fill (with the allocation each one replaces, if any), the
//! allocations to stop, and the ones to update in place; placing happens
//! after, in [`super::place`].
//!
//! A service or batch group has `count` slots, numbered by the allocation's
//! `index`. A slot is filled by a live allocation (the server wants it
//! running and it has not ended). A slot with none is placed again, except:
//! a batch allocation that completed the same spec is done, and a failed
//! one whose reschedule policy is used up stays failed. A system group has
//! one slot per schedulable node that meets its constraints.

use super::feasible::Feasibility;
use crate::AllocStop;
use orch_model::{
    Allocation, ClientStatus, DesiredStatus, Job, JobType, Node, ReschedulePolicy, TaskGroup,
};
use orch_wire::GroupPlan;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// One allocation to place.
#[derive(Debug, Clone)]
pub struct Slot {
    pub group: String,
    pub index: u32,
    /// The allocation this one replaces (failed, lost, or of an older spec).
    pub previous: Option<Arc<Allocation>>,
    /// Reschedule times the new allocation carries forward.
    pub reschedule_times_ms: Vec<u64>,
    /// For system jobs: the node the allocation belongs on.
    pub node: Option<Arc<Node>>,
    /// The stop of the allocation this one replaces while it still runs (a
    /// new spec, a draining node). It is part of the plan only if the
    /// replacement is placed: a replacement that finds no room leaves the
    /// old allocation running (Nomad's rule), rather than an outage.
    pub replaces: Option<AllocStop>,
}

/// What reconciling one job came to.
#[derive(Debug, Default)]
pub struct Reconciled {
    pub place: Vec<Slot>,
    pub stop: Vec<AllocStop>,
    /// Allocations updated in place to the job's current version.
    pub update: Vec<Allocation>,
    pub groups: BTreeMap<String, GroupPlan>,
    /// The earliest time (ms since the epoch) a failed allocation whose
    /// reschedule delay has not passed may be replaced: the job needs
    /// another evaluation then.
    pub followup_at: Option<u64>,
}

/// Reconciles `job` (`None` when it no longer exists) against `allocs`,
/// every allocation of the job. `nodes` is the state's schedulable nodes,
/// which system jobs need; `node_of` looks up any node by id.
pub fn reconcile<'a>(
    job: Option<&Job>,
    allocs: impl Iterator<Item = &'a Arc<Allocation>>,
    nodes: &[Arc<Node>],
    node_of: &dyn Fn(&str) -> Option<Arc<Node>>,
    now_ms: u64,
) -> Result<Reconciled, String> {
    let mut out = Reconciled::default();
    let mut by_group: BTreeMap<&str, Vec<&Arc<Allocation>>> = BTreeMap::new();
    for alloc in allocs {
        by_group
            .entry(alloc.group.as_str())
            .or_default()
            .push(alloc);
    }
    let Some(job) = job.filter(|j| !j.stop) else {
        for (group, allocs) in by_group {
            let plan = out.groups.entry(group.to_owned()).or_default();
            plan.name = group.to_owned();
            for alloc in allocs.into_iter().filter(|a| a.holds_resources()) {
                out.stop
                    .push(stop(alloc, DesiredStatus::Stop, "job stopped"));
                plan.stop += 1;
            }
        }
        return Ok(out);
    };
    // Groups the job no longer has.
    for (group, allocs) in &by_group {
        if job.group(group).is_none() {
            let plan = out.groups.entry((*group).to_owned()).or_default();
            plan.name = (*group).to_owned();
            for alloc in allocs.iter().filter(|a| a.holds_resources()) {
                out.stop.push(stop(
                    alloc,
                    DesiredStatus::Stop,
                    "group removed from the job",
                ));
                plan.stop += 1;
            }
        }
    }
    for group in &job.groups {
        let allocs = by_group.remove(group.name.as_str()).unwrap_or_default();
        let mut plan = GroupPlan {
            name: group.name.clone(),
            ..GroupPlan::default()
        };
        let hash = job.group_spec_hash(group);
        let mut ctx = GroupCtx {
            job,
            group,
            hash: &hash,
            plan: &mut plan,
            out: &mut out,
            node_of,
            now_ms,
        };
        if job.job_type == JobType::System {
            let feasibility = Feasibility::new(job, group)?;
            ctx.system(&allocs, nodes, &feasibility);
        } else {
            ctx.counted(&allocs);
        }
        out.groups.insert(group.name.clone(), plan);
    }
    Ok(out)
}

struct GroupCtx<'a> {
    job: &'a Job,
    group: &'a TaskGroup,
    hash: &'a str,
    plan: &'a mut GroupPlan,
    out: &'a mut Reconciled,
    node_of: &'a dyn Fn(&str) -> Option<Arc<Node>>,
    now_ms: u64,
}

impl GroupCtx<'_> {
    /// Service and batch groups: `count` slots.
    fn counted(&mut self, allocs: &[&Arc<Allocation>]) {
        let count = self.group.count;
        let mut live: BTreeMap<u32, Vec<&Arc<Allocation>>> = BTreeMap::new();
        let mut ended: HashMap<u32, &Arc<Allocation>> = HashMap::new();
        for &alloc in allocs {
            if alloc.holds_resources() {
                live.entry(alloc.index).or_default().push(alloc);
            } else {
                // The newest ended allocation of each slot decides what
                // the slot needs.
                let newest = ended.entry(alloc.index).or_insert(alloc);
                if alloc.create_index > newest.create_index {
                    *newest = alloc;
                }
            }
        }
        for (index, mut allocs) in live {
            // Newest first: it is kept if a slot somehow has two.
            allocs.sort_by_key(|a| std::cmp::Reverse(a.create_index));
            let mut allocs = allocs.into_iter();
            let Some(keep) = allocs.next() else { continue };
            for extra in allocs {
                self.stop_one(extra, "duplicate allocation of its slot");
            }
            if index >= count {
                self.stop_one(keep, "scaled down");
                continue;
            }
            self.keep_or_replace(keep, None);
        }
        let filled: HashSet<u32> = self
            .out
            .place
            .iter()
            .filter(|s| s.group == self.group.name)
            .map(|s| s.index)
            .chain(
                allocs
                    .iter()
                    .filter(|a| a.holds_resources())
                    .map(|a| a.index),
            )
            .collect();
        for index in 0..count {
            if filled.contains(&index) {
                continue;
            }
            match ended.get(&index) {
                None => self.place(index, None, Vec::new(), None),
                Some(prev) => self.refill(prev),
            }
        }
    }

    /// A slot whose last allocation ended: run it again, or not.
    fn refill(&mut self, prev: &Arc<Allocation>) {
        let stopped_by_server =
            prev.desired_status != DesiredStatus::Run && prev.client_status != ClientStatus::Lost;
        // A batch allocation is done when it completed what the job still
        // asks for, and completed it on its own (not stopped or evicted by
        // the server first).
        let done = self.job.job_type == JobType::Batch
            && prev.client_status == ClientStatus::Complete
            && prev.desired_status == DesiredStatus::Run
            && prev.spec_hash == self.hash;
        if done {
            self.plan.ignore += 1;
            return;
        }
        // A new spec starts the slot afresh: the reschedule policy counts
        // failures of what the job asks for now.
        if prev.spec_hash != self.hash {
            self.place(prev.index, Some(prev.clone()), Vec::new(), None);
            return;
        }
        if prev.client_status == ClientStatus::Failed && !stopped_by_server {
            let policy = &self.group.reschedule;
            let recent = recent_reschedules(prev, policy, self.now_ms);
            if !policy.unlimited && recent.len() >= policy.attempts as usize {
                // Used up: the slot stays failed until the job changes.
                self.plan.ignore += 1;
                return;
            }
            // The delay doubles with each reschedule in the window, up to
            // `max_delay` (Nomad's exponential delay), counted from the
            // failure.
            let doubling = 1u32 << recent.len().min(20);
            let delay = policy
                .delay
                .0
                .saturating_mul(doubling)
                .min(policy.max_delay.0);
            let delay = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
            let eligible = prev.client_time_ms.saturating_add(delay);
            if eligible > self.now_ms {
                self.plan.ignore += 1;
                let at = self.out.followup_at.get_or_insert(eligible);
                *at = (*at).min(eligible);
                return;
            }
            let mut times = recent;
            times.push(self.now_ms);
            self.place(prev.index, Some(prev.clone()), times, None);
            return;
        }
        // Lost with its node, stopped, evicted, or a service task that
        // exited: run it again; only failures count against the policy.
        self.place(prev.index, Some(prev.clone()), Vec::new(), None);
    }

    /// A live allocation of a slot the job still wants: keep it, update it
    /// in place, or replace it.
    fn keep_or_replace(&mut self, alloc: &Arc<Allocation>, system_node: Option<Arc<Node>>) {
        let node = (self.node_of)(&alloc.node_id);
        if node.as_ref().is_some_and(|n| n.drain) {
            let evict = stop(
                alloc,
                DesiredStatus::Evict,
                "node is draining: moved elsewhere",
            );
            self.plan.stop += 1;
            // A system job does not follow its allocation off the node.
            if system_node.is_none() {
                self.replace(alloc, None, evict);
            } else {
                self.out.stop.push(evict);
            }
            return;
        }
        if alloc.spec_hash != self.hash {
            let old = stop(
                alloc,
                DesiredStatus::Stop,
                "replaced by a new version of the job",
            );
            self.plan.replace += 1;
            self.replace(alloc, system_node, old);
            return;
        }
        if alloc.job_version != self.job.version {
            let mut updated = (**alloc).clone();
            updated.job_version = self.job.version;
            self.out.update.push(updated);
            self.plan.in_place += 1;
            return;
        }
        self.plan.ignore += 1;
    }

    /// System groups: one allocation per schedulable node that meets the
    /// group's constraints.
    fn system(&mut self, allocs: &[&Arc<Allocation>], nodes: &[Arc<Node>], f: &Feasibility) {
        let mut on_node: HashMap<&str, &Arc<Allocation>> = HashMap::new();
        for &alloc in allocs.iter().filter(|a| a.holds_resources()) {
            if let Some(first) = on_node.insert(alloc.node_id.as_str(), alloc) {
                let (keep, extra) = if first.create_index > alloc.create_index {
                    (first, alloc)
                } else {
                    (alloc, first)
                };
                on_node.insert(keep.node_id.as_str(), keep);
                self.stop_one(extra, "duplicate allocation on its node");
            }
        }
        // A system allocation that failed stays failed on its node until
        // the job changes: the agent's restart policy is its retry, and
        // placing it again at once would crash-loop.
        let failed_here: HashSet<&str> = allocs
            .iter()
            .filter(|a| {
                a.client_status == ClientStatus::Failed
                    && a.desired_status == DesiredStatus::Run
                    && a.spec_hash == self.hash
            })
            .map(|a| a.node_id.as_str())
            .collect();
        let mut kept: Vec<(&str, &Arc<Allocation>)> = on_node.into_iter().collect();
        kept.sort_by(|a, b| a.0.cmp(b.0));
        let kept_nodes: HashSet<&str> = kept.iter().map(|(id, _)| *id).collect();
        for (node_id, alloc) in &kept {
            let node = (self.node_of)(node_id);
            match node {
                Some(node) if f.check(&node).is_ok() => {
                    self.keep_or_replace(alloc, Some(node));
                }
                Some(_) => self.stop_one(alloc, "node no longer meets the job's constraints"),
                None => self.stop_one(alloc, "node no longer exists"),
            }
        }
        for node in nodes {
            if kept_nodes.contains(node.id.as_str())
                || failed_here.contains(node.id.as_str())
                || f.check(node).is_err()
            {
                if failed_here.contains(node.id.as_str()) {
                    self.plan.ignore += 1;
                }
                continue;
            }
            self.place(0, None, Vec::new(), Some(node.clone()));
        }
    }

    fn stop_one(&mut self, alloc: &Arc<Allocation>, why: &str) {
        self.out.stop.push(stop(alloc, DesiredStatus::Stop, why));
        self.plan.stop += 1;
    }

    fn place(
        &mut self,
        index: u32,
        previous: Option<Arc<Allocation>>,
        reschedule_times_ms: Vec<u64>,
        node: Option<Arc<Node>>,
    ) {
        self.plan.place += 1;
        self.out.place.push(Slot {
            group: self.group.name.clone(),
            index,
            previous,
            reschedule_times_ms,
            node,
            replaces: None,
        });
    }

    /// A replacement of a running allocation (counted by the caller as a
    /// replace or a stop); the old one stops only if this one is placed.
    fn replace(&mut self, old: &Arc<Allocation>, node: Option<Arc<Node>>, stop: AllocStop) {
        self.out.place.push(Slot {
            group: self.group.name.clone(),
            index: old.index,
            previous: Some(old.clone()),
            reschedule_times_ms: Vec::new(),
            node,
            replaces: Some(stop),
        });
    }
}

/// Reschedules of the slot inside the policy's interval.
fn recent_reschedules(prev: &Allocation, policy: &ReschedulePolicy, now_ms: u64) -> Vec<u64> {
    let window = u64::try_from(policy.interval.0.as_millis()).unwrap_or(u64::MAX);
    prev.reschedule_times_ms
        .iter()
        .copied()
        .filter(|&t| now_ms.saturating_sub(t) < window)
        .collect()
}

fn stop(alloc: &Allocation, desired: DesiredStatus, why: &str) -> AllocStop {
    AllocStop {
        alloc_id: alloc.id.clone(),
        desired,
        description: why.to_owned(),
        client_status: None,
    }
}
