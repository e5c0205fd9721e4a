//! The plan applier's judgement (Nomad's `plan_apply.go`): a plan was made
//! on a snapshot that may be old by now, so each node of it is checked
//! again against the latest state before anything is written. It only
//! reads; the store's writer commits what it accepts in the same
//! transaction as the check, so nothing can slip in between.
//!
//! - A plan for an evaluation that is already finished is refused: a
//!   worker whose lease ran out may still be planning it.
//! - New allocations need a schedulable node, room, and a slot (job,
//!   group, index) no other live allocation fills.
//! - An existing allocation in a plan is an in-place update: only its job
//!   version moves, onto the latest record, so what the agent or the
//!   server wrote since the plan's snapshot stays; one that has ended since
//!   is left alone.
//! - The stop of an allocation whose replacement was refused is not
//!   applied: the old one keeps running.

use super::Plan;
use crate::{Refusal, State};
use orch_model::{Allocation, Job, JobType, Resources};
use std::collections::{BTreeMap, BTreeSet};

/// What the applier makes of a plan.
#[derive(Debug, Default)]
pub(crate) struct Verdict<'p> {
    /// The plan's allocations on the nodes where they fit, in plan order.
    pub accepted: Vec<&'p Allocation>,
    /// Nodes whose placements did not fit the latest state, with why.
    pub rejected: BTreeMap<String, String>,
    /// Stops held back because the allocation replacing them was refused.
    pub kept: BTreeSet<String>,
}

/// Checks `plan` against `state`, the latest committed state.
pub(crate) fn evaluate<'p>(state: &State, plan: &'p Plan) -> Result<Verdict<'p>, Refusal> {
    if let Some(eval) = state.eval(&plan.eval_id)
        && eval.status.is_terminal()
    {
        return Err(Refusal::Conflict(format!(
            "evaluation {} is already {}: its plan is stale",
            plan.eval_id,
            eval.status.as_str()
        )));
    }
    let job = state.job(&plan.job_id).map(|j| j.as_ref());
    let stop_ids: BTreeSet<&str> = plan.stops.iter().map(|s| s.alloc_id.as_str()).collect();
    let mut verdict = Verdict::default();
    // Stops whose replacement was refused; grows until the checks agree.
    loop {
        // Stops first: they make room that placements on the same node
        // count on.
        let mut stopping: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for stop in &plan.stops {
            if verdict.kept.contains(&stop.alloc_id) {
                continue;
            }
            if let Some(alloc) = state.alloc(&stop.alloc_id) {
                stopping
                    .entry(alloc.node_id.clone())
                    .or_default()
                    .push(alloc.id.clone());
            }
        }
        let slots = slots_taken(state, &plan.job_id, &stop_ids, &verdict.kept);
        let mut claimed = BTreeSet::new();
        verdict.accepted.clear();
        verdict.rejected.clear();
        for (node_id, allocs) in &plan.placements {
            let checked = check_slots(state, allocs, job, &slots, &mut claimed)
                .and_then(|()| check_node(state, node_id, allocs, stopping.get(node_id), job));
            match checked {
                Ok(()) => verdict.accepted.extend(allocs),
                Err(why) => {
                    verdict.rejected.insert(node_id.clone(), why);
                }
            }
        }
        let refused_replacements: BTreeSet<String> = plan
            .placements
            .iter()
            .filter(|(node, _)| verdict.rejected.contains_key(*node))
            .flat_map(|(_, allocs)| allocs)
            .filter_map(|a| a.previous_allocation.clone())
            .filter(|prev| stop_ids.contains(prev.as_str()) && !verdict.kept.contains(prev))
            .collect();
        if refused_replacements.is_empty() {
            return Ok(verdict);
        }
        verdict.kept.extend(refused_replacements);
    }
}

/// The slots (group, index) of the job that live allocations fill, not
/// counting those the plan stops (unless their stop is kept back).
fn slots_taken(
    state: &State,
    job_id: &str,
    stopping: &BTreeSet<&str>,
    kept: &BTreeSet<String>,
) -> BTreeMap<(String, u32), String> {
    state
        .allocs_of_job(job_id)
        .filter(|a| a.holds_resources())
        .filter(|a| !stopping.contains(a.id.as_str()) || kept.contains(&a.id))
        .map(|a| ((a.group.clone(), a.index), a.id.clone()))
        .collect()
}

/// New allocations of a service or batch job must fill a free slot; system
/// jobs have one slot per node, which [`check_node`]'s room check and the
/// scheduler keep.
fn check_slots(
    state: &State,
    allocs: &[Allocation],
    job: Option<&Job>,
    taken: &BTreeMap<(String, u32), String>,
    claimed: &mut BTreeSet<(String, u32)>,
) -> Result<(), String> {
    if job.is_none_or(|j| j.job_type == JobType::System) {
        return Ok(());
    }
    for alloc in allocs {
        if state.alloc(&alloc.id).is_some() {
            continue;
        }
        let slot = (alloc.group.clone(), alloc.index);
        if let Some(other) = taken.get(&slot) {
            return Err(format!(
                "{} is already filled by allocation {other}",
                alloc.name
            ));
        }
        if !claimed.insert(slot) {
            return Err(format!("{} is placed twice in the plan", alloc.name));
        }
    }
    Ok(())
}

/// Whether `allocs` fit on `node_id` now, counting the room the plan's own
/// stops there make. New allocations need a schedulable node; an in-place
/// update of an allocation already there does not, nor room when it asks
/// for no more than it holds (a node that shrank keeps what runs there).
fn check_node(
    state: &State,
    node_id: &str,
    allocs: &[Allocation],
    stopping: Option<&Vec<String>>,
    job: Option<&Job>,
) -> Result<(), String> {
    let Some(node) = state.node(node_id) else {
        return Err("node no longer exists".into());
    };
    let mut used = state.usage(node_id).resources;
    let mut release = |id: &str| {
        if let Some(a) = state.alloc(id)
            && a.holds_resources()
            && a.node_id == node_id
        {
            used = used.saturating_sub(a.resources);
        }
    };
    for id in stopping.into_iter().flatten() {
        release(id);
    }
    let mut ask = Resources::ZERO;
    let mut new_here = false;
    let mut grows = false;
    for alloc in allocs {
        if alloc.node_id != node_id {
            return Err(format!("allocation {} names another node", alloc.id));
        }
        match state.alloc(&alloc.id) {
            Some(old) if old.node_id == node_id => {
                if old.is_terminal() {
                    continue; // ended since the snapshot: left alone
                }
                grows |= alloc.resources != old.resources;
                release(&old.id);
            }
            Some(_) => return Err(format!("allocation {} already exists elsewhere", alloc.id)),
            None => new_here = true,
        }
        if alloc.holds_resources() {
            ask = ask.saturating_add(alloc.resources);
        }
    }
    if new_here {
        if !node.schedulable() {
            return Err(format!(
                "node is {}{}",
                node.status.as_str(),
                if node.drain { " and draining" } else { "" }
            ));
        }
        match job {
            None => return Err("job no longer exists".into()),
            Some(job) if job.stop => return Err("job was stopped".into()),
            Some(_) => {}
        }
    } else if !grows {
        return Ok(());
    }
    match node.allocatable().exhausted(used, ask) {
        None => Ok(()),
        Some(dim) => Err(format!("{dim} exhausted")),
    }
}
