//! The plan applier (Nomad's `plan_apply.go`): a plan was made on a
//! snapshot that may be old by now, so each node of it is checked again
//! against the latest state ([`evaluate`]), and each accepted stop and
//! placement becomes the record to write ([`stopped`], [`placed`]). It only
//! reads and decides; the store's writer commits the result in the same
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

use super::{AllocStop, Plan};
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

/// What a stop writes at commit `index`: the allocation with its new
/// desired status (and client status, when the server knows it), or `None`
/// when the stop was applied already (plans are idempotent).
pub(crate) fn stopped(old: &Allocation, stop: &AllocStop, index: u64) -> Option<Allocation> {
    if old.desired_status == stop.desired
        && stop.client_status.is_none_or(|s| s == old.client_status)
    {
        return None;
    }
    let mut alloc = old.clone();
    alloc.desired_status = stop.desired;
    alloc.desired_description = stop.description.clone();
    if let Some(status) = stop.client_status {
        alloc.client_status = status;
    }
    alloc.modify_index = index;
    Some(alloc)
}

/// What an accepted placement writes at commit `index`: a new allocation,
/// or an in-place update that moves only the job version (and spec hash)
/// of the latest record of `old`, so what the agent or the server wrote
/// since the plan's snapshot stays. `None` for the same plan applied again,
/// and for an allocation that has ended or moved since the snapshot.
pub(crate) fn placed(
    old: Option<&Allocation>,
    planned: &Allocation,
    index: u64,
) -> Option<Allocation> {
    let mut alloc = match old {
        Some(old)
            if old.job_version == planned.job_version
                || old.is_terminal()
                || old.node_id != planned.node_id =>
        {
            return None;
        }
        Some(old) => {
            let mut updated = old.clone();
            updated.job_version = planned.job_version;
            updated.spec_hash = planned.spec_hash.clone();
            updated
        }
        None => {
            let mut new = planned.clone();
            new.create_index = index;
            new
        }
    };
    alloc.modify_index = index;
    Some(alloc)
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests may")]
    use super::*;
    use orch_model::{ClientStatus, DesiredStatus};

    fn alloc(version: u64, node: &str) -> Allocation {
        serde_json::from_value(serde_json::json!({
            "id": "a1", "name": "web.g[0]", "job_id": "web", "job_version": version,
            "group": "g", "index": 0, "node_id": node, "eval_id": "e1",
            "resources": {"cpu": 100, "memory": 64, "disk": 0},
            "client_status": "running", "client_description": "reported since",
            "create_index": 3, "modify_index": 4
        }))
        .unwrap()
    }

    #[test]
    fn a_placement_is_new_or_an_in_place_update_onto_the_latest_record() {
        let planned = alloc(2, "n1");
        let new = placed(None, &planned, 9).unwrap();
        assert_eq!((new.create_index, new.modify_index), (9, 9));
        // In place: only the version and the hash move; what the agent
        // reported since the snapshot stays.
        let mut latest = alloc(1, "n1");
        latest.client_description = "still running".into();
        let mut planned = alloc(2, "n1");
        planned.spec_hash = "h2".into();
        planned.client_description = String::new();
        let updated = placed(Some(&latest), &planned, 9).unwrap();
        assert_eq!((updated.job_version, updated.spec_hash.as_str()), (2, "h2"));
        assert_eq!(updated.client_description, "still running");
        assert_eq!((updated.create_index, updated.modify_index), (3, 9));
        // Applied again, ended since, or moved since: nothing to write.
        assert!(placed(Some(&alloc(2, "n1")), &planned, 9).is_none());
        let mut ended = alloc(1, "n1");
        ended.client_status = ClientStatus::Failed;
        assert!(placed(Some(&ended), &planned, 9).is_none());
        assert!(placed(Some(&alloc(1, "n2")), &planned, 9).is_none());
    }

    #[test]
    fn a_stop_is_written_once() {
        let stop = AllocStop {
            alloc_id: "a1".into(),
            desired: DesiredStatus::Stop,
            description: "node down".into(),
            client_status: Some(ClientStatus::Lost),
        };
        let old = alloc(1, "n1");
        let stopped_once = stopped(&old, &stop, 7).unwrap();
        assert_eq!(stopped_once.desired_status, DesiredStatus::Stop);
        assert_eq!(stopped_once.client_status, ClientStatus::Lost);
        assert_eq!(stopped_once.modify_index, 7);
        assert!(stopped(&stopped_once, &stop, 8).is_none());
    }
}
