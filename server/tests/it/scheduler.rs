//! The scheduler against a real store: a harness that registers nodes and
//! jobs, runs every pending evaluation through the same code the workers
//! run (compute → plan → applier → evaluation outcome), and checks what
//! landed. Property tests at the end hold the invariants: never over-commit
//! a node, never place on an infeasible node, never exceed `count`.

use orch_model::{
    Allocation, ClientStatus, DesiredStatus, EvalStatus, Evaluation, Job, NodeStatus,
};
use orch_server::testing::{Harness, count, job, node};
use orch_server::{
    Feasibility, NativeScorer as Native, NodeChange, Op, Outcome, Sampling, Scheduler, ScoreError,
    Scorer, State, process_eval,
};
use proptest::prelude::*;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The harness every scheduler test here uses: binpack compiled natively.
fn harness() -> Harness {
    Harness::new(Arc::new(Native::new(orch_scorer_binpack::Binpack)))
}

#[test]
fn binpack_fills_one_node_before_the_next_and_records_decisions() {
    let h = harness();
    h.nodes(vec![
        node("a", 4000, 8192, &[]),
        node("b", 4000, 8192, &[]),
        node("c", 4000, 8192, &[]),
    ]);
    h.register(job(count(3)));
    let evals = h.run();
    assert_eq!(evals.len(), 1);
    assert_eq!(evals[0].status, EvalStatus::Complete);
    assert!(evals[0].failed_tg_allocs.is_empty());
    let live = h.live("web");
    assert_eq!(live.len(), 3);
    let nodes: std::collections::BTreeSet<&str> = live.iter().map(|a| a.node_id.as_str()).collect();
    assert_eq!(
        nodes.len(),
        1,
        "binpack puts all three on one node: {nodes:?}"
    );
    let mut indexes: Vec<u32> = live.iter().map(|a| a.index).collect();
    indexes.sort();
    assert_eq!(indexes, [0, 1, 2]);
    for alloc in &live {
        let d = h
            .store
            .decision(&alloc.id)
            .unwrap()
            .expect("a decision record");
        assert_eq!(d.picked_node(), Some(alloc.node_id.as_str()));
        assert_eq!(d.scorer_digest, "native:binpack");
        assert_eq!(d.candidates.len(), 3);
        assert_eq!(d.scores.len(), 3);
        assert_eq!(d.parts.len(), 3 * d.part_names.len());
        assert_eq!(d.nodes_evaluated, 3);
        assert!(d.host_adjustments.is_empty());
    }
    // Nothing changed: running again places nothing.
    assert_eq!(h.register(job(count(3))), None);
}

#[test]
fn a_decision_replays_to_the_same_scores_and_against_another_scorer() {
    let h = harness();
    h.nodes(vec![
        node("a", 4000, 8192, &[("rack", "r1")]),
        node("b", 8000, 8192, &[("rack", "r2")]),
    ]);
    h.register(job(json!({
        "affinity": [{"attribute": "${attr.rack}", "value": "r1"}],
        "group": [{"count": 2}],
    })));
    h.run();
    for alloc in h.live("web") {
        let d = h.store.decision(&alloc.id).unwrap().unwrap();
        assert_eq!(d.ask.cpu, 500);
        assert_eq!(d.job_priority, 50);
        assert!(d.snapshot_index > 0);
        assert_eq!(d.inputs.cpu_capacity.len(), d.candidates.len());
        assert_eq!(d.inputs.attribute_names, ["attr.rack"]);
        let request = orch_server::request_of(&d);
        let again = h.scheduler.scorer().score(&request).unwrap();
        assert_eq!(again.scores, d.scores, "a replay gives the same scores");
        // The same candidates through spread rank the emptier node first.
        let spread = Native::new(orch_scorer_spread::Spread);
        let other = spread.score(&request).unwrap();
        assert_eq!(other.scores.len(), d.candidates.len());
        let best = |s: &[f64]| (0..s.len()).max_by(|&x, &y| s[x].total_cmp(&s[y])).unwrap();
        let emptiest = (0..d.candidates.len())
            .max_by_key(|&i| d.inputs.cpu_capacity[i] - d.inputs.cpu_allocated[i])
            .unwrap();
        assert_eq!(best(&other.scores), emptiest);
    }
}

#[test]
fn distinct_hosts_keeps_a_group_apart_or_the_whole_job() {
    let h = harness();
    h.nodes(vec![node("a", 8000, 8192, &[]), node("b", 8000, 8192, &[])]);
    let group = |name: &str| {
        json!({"name": name, "count": 2,
               "constraint": [{"operator": "distinct_hosts"}],
               "task": [{"name": "t", "driver": "exec", "resources": {"cpu": 100, "memory": 64}}]})
    };
    // On each group: a group's two allocations on two nodes; the groups
    // may share them.
    let by_group: Job = serde_json::from_value(json!({
        "id": "groups", "group": [group("g1"), group("g2")],
    }))
    .unwrap();
    h.register(by_group);
    h.run();
    let live = h.live("groups");
    assert_eq!(live.len(), 4);
    for g in ["g1", "g2"] {
        let nodes: std::collections::BTreeSet<&str> = live
            .iter()
            .filter(|a| a.group == g)
            .map(|a| a.node_id.as_str())
            .collect();
        assert_eq!(nodes.len(), 2, "{g} is kept apart");
    }
    // On the job: four allocations need four nodes; two fit.
    let mut whole: Job = serde_json::from_value(json!({
        "id": "whole", "constraint": [{"operator": "distinct_hosts"}],
        "group": [group("g1"), group("g2")],
    }))
    .unwrap();
    for g in &mut whole.groups {
        g.constraints.clear();
    }
    h.register(whole);
    let evals = h.run();
    assert_eq!(h.live("whole").len(), 2);
    let failed = &evals.last().unwrap().failed_tg_allocs;
    let filtered: u64 = failed
        .values()
        .map(|m| m.nodes_filtered.get("distinct_hosts").copied().unwrap_or(0))
        .sum();
    assert!(filtered > 0, "{failed:?}");
}

/// A scorer that always fails, as a trapping or overrunning plugin does.
struct Broken;

impl Scorer for Broken {
    fn label(&self) -> &str {
        "broken 0.0.1"
    }
    fn digest(&self) -> &str {
        "sha256:0000"
    }
    fn score(
        &self,
        _: &orch_plugin_runtime::ScoreRequest,
    ) -> Result<orch_plugin_runtime::ScoreResponse, ScoreError> {
        Err(ScoreError::Refused("trapped: unreachable executed".into()))
    }
}

#[test]
fn a_failing_scorer_fails_closed_or_falls_back_to_a_builtin() {
    // Without a fallback the evaluation fails and is retried; nothing is
    // placed by guesswork.
    let h = Harness::new(Arc::new(Broken));
    h.nodes(vec![node("a", 4000, 8192, &[])]);
    let eval = h.register(job(count(1))).unwrap();
    let state = h.state();
    let err = process_eval(
        &h.store,
        &h.scheduler,
        state.eval(&eval).unwrap(),
        &[],
        1,
        h.now(),
        5,
    )
    .unwrap_err();
    assert!(err.to_string().contains("broken 0.0.1"), "{err}");
    assert!(err.to_string().contains("trapped"), "{err}");
    assert!(h.live("web").is_empty());

    // With binpack as the fallback, binpack places and the record says why.
    let mut h = Harness::new(Arc::new(Broken));
    h.scheduler = Scheduler::new(Arc::new(Broken), Sampling::default())
        .with_fallback(Arc::new(Native::new(orch_scorer_binpack::Binpack)));
    h.nodes(vec![node("a", 4000, 8192, &[])]);
    h.register(job(count(1)));
    h.run();
    let live = h.live("web");
    assert_eq!(live.len(), 1);
    let d = h.store.decision(&live[0].id).unwrap().unwrap();
    assert_eq!(d.scorer_digest, "native:binpack");
    // The record keeps the scorer's own words, named by label and digest.
    assert_eq!(
        d.scorer_failure.as_deref(),
        Some("scorer broken 0.0.1 (sha256:0000): trapped: unreachable executed"),
        "{d:?}"
    );
}

#[test]
fn scale_down_stops_the_highest_slots_and_scale_up_fills_them_again() {
    let h = harness();
    h.nodes(vec![node("a", 8000, 8192, &[])]);
    h.register(job(count(4)));
    h.run();
    h.register(job(count(2)));
    let evals = h.run();
    assert_eq!(evals[0].status, EvalStatus::Complete);
    let mut live: Vec<u32> = h.live("web").iter().map(|a| a.index).collect();
    live.sort();
    assert_eq!(live, [0, 1]);
    let stopped: Vec<Arc<Allocation>> = h
        .state()
        .allocs_of_job("web")
        .filter(|a| a.desired_status == DesiredStatus::Stop)
        .cloned()
        .collect();
    assert_eq!(stopped.len(), 2);
    assert!(
        stopped
            .iter()
            .all(|a| a.desired_description == "scaled down")
    );
    // Kept allocations were updated in place to the new version.
    assert!(h.live("web").iter().all(|a| a.job_version == 1));
    h.register(job(count(3)));
    h.run();
    let mut live: Vec<u32> = h.live("web").iter().map(|a| a.index).collect();
    live.sort();
    assert_eq!(live, [0, 1, 2]);
}

#[test]
fn a_changed_task_replaces_allocations_a_changed_restart_policy_does_not() {
    let h = harness();
    h.nodes(vec![node("a", 8000, 8192, &[])]);
    h.register(job(count(2)));
    h.run();
    let before: Vec<String> = h.live("web").iter().map(|a| a.id.clone()).collect();
    h.register(job(
        json!({"group": [{"count": 2, "restart": {"attempts": 5}}]}),
    ));
    h.run();
    let after: Vec<String> = h.live("web").iter().map(|a| a.id.clone()).collect();
    assert_eq!(before, after, "a restart policy change is in place");
    h.register(job(
        json!({"group": [{"count": 2, "task": [{"env": {"MODE": "fast"}}]}]}),
    ));
    h.run();
    let live = h.live("web");
    assert_eq!(live.len(), 2);
    for alloc in &live {
        assert!(!before.contains(&alloc.id), "replaced");
        let prev = alloc
            .previous_allocation
            .as_ref()
            .expect("names the one it replaces");
        assert!(before.contains(prev));
        assert_eq!(alloc.job_version, 2);
    }
}

#[test]
fn placement_failure_names_the_reasons_and_blocks_until_capacity_appears() {
    let h = harness();
    h.nodes(vec![
        node("small", 400, 8192, &[("os.name", "linux")]),
        node("mac", 8000, 8192, &[("os.name", "darwin")]),
    ]);
    h.register(job(json!({
        "constraint": [{"attribute": "${attr.os.name}", "value": "linux"}],
        "group": [{"count": 2}],
    })));
    let evals = h.run();
    let eval = &evals[0];
    assert_eq!(eval.status, EvalStatus::Complete);
    let metric = &eval.failed_tg_allocs["g"];
    assert_eq!(metric.nodes_evaluated, 2);
    assert_eq!(
        metric
            .nodes_filtered
            .get("constraint ${attr.os.name} = linux"),
        Some(&1)
    );
    assert_eq!(metric.dimension_exhausted.get("cpu"), Some(&1));
    assert_eq!(
        metric.coalesced_failures, 1,
        "the second slot failed the same way"
    );
    assert_eq!(eval.queued_allocations.get("g"), Some(&2));
    let blocked = eval.blocked_eval.clone().expect("a blocked evaluation");
    assert_eq!(
        h.state().eval(&blocked).unwrap().status,
        EvalStatus::Blocked
    );
    assert!(h.live("web").is_empty());

    // A node that does not help joins: the blocked evaluation looks again
    // and goes back to waiting, leaving no new evaluation behind.
    let evals_before = h.state().evals().count();
    h.nodes(vec![node("mac2", 8000, 8192, &[("os.name", "darwin")])]);
    h.unblock();
    assert_eq!(h.state().evals().count(), evals_before);
    let still = h.state().eval(&blocked).unwrap().clone();
    assert_eq!(still.status, EvalStatus::Blocked);
    assert_eq!(still.failed_tg_allocs["g"].nodes_evaluated, 3);

    // A big linux node joins: the blocked evaluation places both.
    h.nodes(vec![node("big", 8000, 8192, &[("os.name", "linux")])]);
    let evals = h.unblock();
    assert!(
        evals
            .iter()
            .any(|e| e.id == blocked && e.status == EvalStatus::Complete)
    );
    let live = h.live("web");
    assert_eq!(live.len(), 2);
    assert!(live.iter().all(|a| a.node_id == "big"));
    assert!(h.state().evals().all(|e| e.status != EvalStatus::Blocked));
}

#[test]
fn lost_allocations_are_replaced_on_another_node() {
    let h = harness();
    h.nodes(vec![node("a", 4000, 8192, &[]), node("b", 4000, 8192, &[])]);
    h.register(job(count(2)));
    h.run();
    let first = h.live("web")[0].node_id.clone();
    h.store
        .apply(Op::UpdateNode {
            node_id: first.clone(),
            change: NodeChange::Status {
                status: NodeStatus::Down,
                description: "missed heartbeats".into(),
            },
        })
        .unwrap();
    h.run();
    let live = h.live("web");
    assert_eq!(live.len(), 2);
    assert!(live.iter().all(|a| a.node_id != first));
    assert!(live.iter().all(|a| a.previous_allocation.is_some()));
    let lost = h
        .state()
        .allocs_of_job("web")
        .filter(|a| a.client_status == ClientStatus::Lost)
        .count();
    assert_eq!(lost, 2);
}

#[test]
fn batch_allocations_that_completed_are_not_run_again_failed_ones_are_within_policy() {
    let h = harness();
    h.nodes(vec![node("a", 8000, 8192, &[])]);
    h.register(job(json!({
        "type": "batch",
        "group": [{"count": 2, "reschedule": {"attempts": 1, "interval": "1h", "delay": "0s"}}],
    })));
    h.run();
    let live = h.live("web");
    let (done, failing) = (&live[0], &live[1]);
    h.report(&done.id, ClientStatus::Complete);
    h.report(&failing.id, ClientStatus::Failed);
    h.run();
    let live = h.live("web");
    assert_eq!(live.len(), 1, "only the failed one is rescheduled");
    assert_eq!(live[0].index, failing.index);
    assert_eq!(live[0].reschedule_times_ms, [h.now()]);
    // It fails again: the policy (one attempt an hour) is used up.
    h.report(&live[0].id, ClientStatus::Failed);
    h.run();
    assert!(h.live("web").is_empty());
}

#[test]
fn a_failed_allocation_is_replaced_after_its_reschedule_delay_which_doubles() {
    let h = harness();
    h.nodes(vec![node("a", 8000, 8192, &[])]);
    h.register(job(json!({
        "group": [{"reschedule": {"attempts": 5, "interval": "1h", "delay": "10s", "max_delay": "15s"}}],
    })));
    h.run();
    let first = h.live("web")[0].clone();
    h.report(&first.id, ClientStatus::Failed);
    h.run();
    assert!(h.live("web").is_empty(), "not before the delay");
    let waiting: Vec<Arc<Evaluation>> = h
        .state()
        .evals()
        .filter(|e| e.status == EvalStatus::Pending)
        .cloned()
        .collect();
    assert_eq!(waiting.len(), 1, "one follow-up evaluation");
    assert_eq!(waiting[0].wait_until_ms, Some(h.now() + 10_000));
    h.advance(10_000);
    h.run();
    let second = h.live("web")[0].clone();
    assert_eq!(
        second.previous_allocation.as_deref(),
        Some(first.id.as_str())
    );
    // The second failure waits twice as long, capped at max_delay (15 s).
    h.report(&second.id, ClientStatus::Failed);
    h.run();
    h.advance(14_999);
    h.run();
    assert!(h.live("web").is_empty());
    h.advance(1);
    h.run();
    assert_eq!(h.live("web")[0].reschedule_times_ms.len(), 2);
}

#[test]
fn system_jobs_run_one_allocation_per_eligible_node_including_new_ones() {
    let h = harness();
    h.nodes(vec![
        node("a", 4000, 8192, &[("os.name", "linux")]),
        node("b", 4000, 8192, &[("os.name", "linux")]),
        node("m", 4000, 8192, &[("os.name", "darwin")]),
    ]);
    h.register(job(json!({
        "type": "system",
        "constraint": [{"attribute": "${attr.os.name}", "value": "linux"}],
    })));
    let evals = h.run();
    assert!(evals[0].failed_tg_allocs.is_empty(), "{:?}", evals[0]);
    let mut on: Vec<String> = h.live("web").iter().map(|a| a.node_id.clone()).collect();
    on.sort();
    assert_eq!(on, ["a", "b"]);
    h.nodes(vec![node("c", 4000, 8192, &[("os.name", "linux")])]);
    h.run();
    let mut on: Vec<String> = h.live("web").iter().map(|a| a.node_id.clone()).collect();
    on.sort();
    assert_eq!(on, ["a", "b", "c"]);
    for alloc in h.live("web") {
        let d = h.store.decision(&alloc.id).unwrap().unwrap();
        assert_eq!(d.candidates, std::slice::from_ref(&alloc.node_id));
        assert_eq!(d.scores.len(), 1);
        assert_eq!(
            d.inputs.cpu_capacity,
            [4000],
            "its own node's row of the request"
        );
    }
}

#[test]
fn evaluations_folded_into_one_are_canceled_with_its_result() {
    let h = harness();
    h.nodes(vec![node("a", 8000, 8192, &[]), node("b", 8000, 8192, &[])]);
    h.register(job(json!({
        "constraint": [{"operator": "distinct_hosts"}],
        "group": [{"count": 2}],
    })));
    h.run();
    // Both nodes flap: an evaluation each; the broker folds the first into
    // the second.
    for n in ["a", "b"] {
        h.store
            .apply(Op::UpdateNode {
                node_id: n.into(),
                change: NodeChange::Drain(true),
            })
            .unwrap();
    }
    let state = h.state();
    let mut pending: Vec<Arc<Evaluation>> = state
        .evals()
        .filter(|e| e.status == EvalStatus::Pending)
        .cloned()
        .collect();
    pending.sort_by_key(|e| e.create_index);
    assert_eq!(pending.len(), 2);
    let newest = pending.pop().unwrap();
    process_eval(&h.store, &h.scheduler, &newest, &pending, 1, h.now(), 5).unwrap();
    let state = h.state();
    let older = state.eval(&pending[0].id).unwrap();
    assert_eq!(older.status, EvalStatus::Canceled);
    assert!(older.status_description.contains(&newest.id));
    assert_eq!(state.eval(&newest.id).unwrap().status, EvalStatus::Complete);
}

#[test]
fn stopping_a_job_stops_its_allocations() {
    let h = harness();
    h.nodes(vec![node("a", 8000, 8192, &[])]);
    h.register(job(count(3)));
    h.run();
    h.store
        .apply(Op::StopJob {
            job_id: "web".into(),
            now_ms: h.now(),
        })
        .unwrap();
    h.run();
    assert!(h.live("web").is_empty());
    assert_eq!(h.state().usage("a").allocs, 0);
}

#[test]
fn affinity_and_spread_move_placements_and_show_in_the_decision() {
    let h = harness();
    h.nodes(vec![
        node("a", 8000, 8192, &[("rack", "r1")]),
        node("b", 8000, 8192, &[("rack", "r2")]),
    ]);
    h.register(job(json!({
        "id": "web",
        "affinity": [{"attribute": "${attr.rack}", "value": "r2", "weight": 100}],
    })));
    h.run();
    let live = h.live("web");
    assert_eq!(live[0].node_id, "b", "the affinity wins over binpack's tie");
    let d = h.store.decision(&live[0].id).unwrap().unwrap();
    assert_eq!(d.host_adjustments.len(), 2);
    let spread = json!({
        "id": "api",
        "spread": [{"attribute": "${attr.rack}"}],
        "group": [{"count": 4}],
    });
    h.register(job(spread));
    h.run();
    let mut per: BTreeMap<String, u32> = BTreeMap::new();
    for a in h.live("api") {
        *per.entry(a.node_id.clone()).or_default() += 1;
    }
    assert_eq!(per.get("a"), Some(&2), "{per:?}");
    assert_eq!(per.get("b"), Some(&2), "{per:?}");
}

#[test]
fn two_plans_racing_for_the_last_capacity_never_both_win() {
    let h = harness();
    h.nodes(vec![node("only", 1000, 8192, &[])]);
    let e1 = h.register(job(json!({"id": "one"}))).unwrap();
    let e2 = h
        .register(job(
            json!({"id": "two", "group": [{"task": [{"resources": {"cpu": 600}}]}]}),
        ))
        .unwrap();
    let state = h.state();
    // Both plans are made on the same snapshot; each alone fits.
    let plan_one = h
        .scheduler
        .compute(&state, state.eval(&e1).unwrap(), h.now())
        .unwrap()
        .plan;
    let plan_two = h
        .scheduler
        .compute(&state, state.eval(&e2).unwrap(), h.now())
        .unwrap()
        .plan;
    assert_eq!(plan_one.placement_count(), 1);
    assert_eq!(plan_two.placement_count(), 1);
    let r1 = h.store.submit(Op::ApplyPlan(plan_one.clone()));
    let r2 = h.store.submit(Op::ApplyPlan(plan_two));
    let (Outcome::Plan(r1), Outcome::Plan(r2)) = (
        r1.blocking_recv().unwrap().unwrap(),
        r2.blocking_recv().unwrap().unwrap(),
    ) else {
        panic!("plan outcomes")
    };
    assert!(r1.placed.len() == 1 && !r1.is_partial());
    assert!(r2.placed.is_empty() && r2.is_partial(), "{r2:?}");
    assert_eq!(
        r2.rejected.get("only").map(String::as_str),
        Some("cpu exhausted")
    );
    assert_eq!(h.state().usage("only").resources.cpu, 500);
    // Applying the winning plan again changes nothing: plans are idempotent.
    let again = h.store.apply(Op::ApplyPlan(plan_one)).unwrap();
    let Outcome::Plan(again) = again else {
        panic!()
    };
    assert!(again.placed.is_empty() && again.index == 0, "{again:?}");
    assert_eq!(h.state().usage("only").allocs, 1);
    // The loser's evaluation, run the way a worker runs it, ends blocked.
    let evals = h.run();
    let two = evals.iter().find(|e| e.job_id == "two").unwrap();
    assert!(two.blocked_eval.is_some());
}

#[test]
fn dry_run_says_what_would_happen_and_writes_nothing() {
    let h = harness();
    h.nodes(vec![node("a", 4000, 8192, &[])]);
    h.register(job(count(1)));
    h.run();
    let index = h.store.index();
    let plan = h
        .scheduler
        .dry_run(&h.state(), &job(count(3)), h.now())
        .unwrap();
    assert_eq!(plan.groups[0].place, 2);
    assert_eq!(plan.groups[0].in_place, 1);
    assert_eq!(plan.placements.len(), 2);
    assert!(plan.placements.iter().all(|p| p.node_id == "a"));
    assert_eq!(h.store.index(), index, "nothing written");
    let plan = h
        .scheduler
        .dry_run(&h.state(), &job(json!({"group": [{"count": 20}]})), h.now())
        .unwrap();
    assert_eq!(
        plan.failed_tg_allocs["g"].dimension_exhausted.get("cpu"),
        Some(&1)
    );
}

// Races and partial outcomes: what a plan made on an old snapshot may and
// may not do once the state moved on.

#[test]
fn an_in_place_update_does_not_revive_an_allocation_lost_since_the_snapshot() {
    let h = harness();
    h.nodes(vec![node("a", 8000, 8192, &[]), node("b", 8000, 8192, &[])]);
    h.register(job(count(1)));
    h.run();
    let first = h.live("web")[0].clone();
    // A version bump that is in place (restart policy).
    let e = h
        .register(job(json!({"group": [{"restart": {"attempts": 5}}]})))
        .unwrap();
    let state = h.state();
    let plan = h
        .scheduler
        .compute(&state, state.eval(&e).unwrap(), h.now())
        .unwrap()
        .plan;
    // Meanwhile the node goes down (not serialized by the broker).
    h.store
        .apply(Op::UpdateNode {
            node_id: first.node_id.clone(),
            change: NodeChange::Status {
                status: NodeStatus::Down,
                description: "x".into(),
            },
        })
        .unwrap();
    h.store.apply(Op::ApplyPlan(plan)).unwrap();
    h.run();
    let live = h.live("web");
    assert!(
        live.iter().all(|a| a.node_id != first.node_id),
        "a live alloc stays on the down node"
    );
}

#[test]
fn two_plans_for_one_evaluation_never_fill_a_slot_twice() {
    let h = harness();
    h.nodes(vec![node("a", 8000, 8192, &[])]);
    let e = h.register(job(count(1))).unwrap();
    let state = h.state();
    let eval = state.eval(&e).unwrap().clone();
    // Lease ran out: a second worker runs the same evaluation on the same snapshot.
    let p1 = h.scheduler.compute(&state, &eval, h.now()).unwrap().plan;
    let p2 = h.scheduler.compute(&state, &eval, h.now()).unwrap().plan;
    h.store.apply(Op::ApplyPlan(p1)).unwrap();
    h.store.apply(Op::ApplyPlan(p2)).unwrap();
    assert_eq!(h.live("web").len(), 1, "slot 0 placed twice");
}

#[test]
fn a_replacement_that_finds_no_room_leaves_the_old_allocation_running() {
    let h = harness();
    h.nodes(vec![node("a", 1000, 8192, &[])]);
    h.register(job(count(1)));
    h.run();
    h.register(job(
        json!({"group": [{"task": [{"resources": {"cpu": 2000}}]}]}),
    ));
    h.run();
    assert_eq!(
        h.live("web").len(),
        1,
        "the old allocation was stopped with no replacement"
    );
}

#[test]
fn a_system_job_places_the_groups_that_fit_a_node_and_reports_the_rest() {
    let h = harness();
    h.nodes(vec![node("a", 1000, 8192, &[])]);
    let j: Job = serde_json::from_value(json!({
        "id": "sys", "type": "system",
        "group": [
            {"name": "g1", "task": [{"name": "t", "driver": "exec", "resources": {"cpu": 600, "memory": 64}}]},
            {"name": "g2", "task": [{"name": "t", "driver": "exec", "resources": {"cpu": 600, "memory": 64}}]}
        ]})).unwrap();
    let e = h.register(j).unwrap();
    let state = h.state();
    let r = process_eval(
        &h.store,
        &h.scheduler,
        state.eval(&e).unwrap(),
        &[],
        1,
        h.now(),
        5,
    );
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(h.live("sys").len(), 1);
}

#[test]
fn a_changed_job_runs_a_slot_whose_reschedules_were_used_up() {
    let h = harness();
    h.nodes(vec![node("a", 8000, 8192, &[])]);
    h.register(job(json!({"group": [{"reschedule": {"attempts": 0}}]})));
    h.run();
    let a = h.live("web")[0].clone();
    h.report(&a.id, ClientStatus::Failed);
    h.run();
    assert!(h.live("web").is_empty());
    // The user fixes the task and runs the job again.
    h.register(job(
        json!({"group": [{"reschedule": {"attempts": 0}, "task": [{"env": {"FIX": "1"}}]}]}),
    ));
    h.run();
    assert_eq!(h.live("web").len(), 1, "the fixed job is not placed");
}

#[test]
fn an_in_place_update_keeps_a_failure_reported_since_the_snapshot() {
    let h = harness();
    h.nodes(vec![node("a", 8000, 8192, &[])]);
    h.register(job(json!({"group": [{"reschedule": {"delay": "0s"}}]})));
    h.run();
    let a = h.live("web")[0].clone();
    let e = h
        .register(job(
            json!({"group": [{"reschedule": {"delay": "0s"}, "restart": {"attempts": 5}}]}),
        ))
        .unwrap();
    let state = h.state();
    let plan = h
        .scheduler
        .compute(&state, state.eval(&e).unwrap(), h.now())
        .unwrap()
        .plan;
    h.report(&a.id, ClientStatus::Failed);
    h.store.apply(Op::ApplyPlan(plan)).unwrap();
    assert_eq!(
        h.state().alloc(&a.id).unwrap().client_status,
        ClientStatus::Failed
    );
}

// Property tests: random clusters, jobs and events; the invariants hold
// after every step.

#[derive(Debug, Clone)]
enum Step {
    Register {
        job: usize,
        count: u32,
        cpu: u32,
        linux_only: bool,
        batch: bool,
    },
    Stop {
        job: usize,
    },
    NodeDown {
        node: usize,
    },
    Fail {
        job: usize,
    },
    Complete {
        job: usize,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..4usize, 0..6u32, 100..3000u32, any::<bool>(), any::<bool>()).prop_map(
            |(job, count, cpu, linux_only, batch)| Step::Register { job, count, cpu, linux_only, batch }
        ),
        1 => (0..4usize).prop_map(|job| Step::Stop { job }),
        1 => (0..6usize).prop_map(|node| Step::NodeDown { node }),
        1 => (0..4usize).prop_map(|job| Step::Fail { job }),
        1 => (0..4usize).prop_map(|job| Step::Complete { job }),
    ]
}

fn check_invariants(state: &State) -> Result<(), TestCaseError> {
    for node in state.nodes() {
        let mut used = orch_model::Resources::ZERO;
        for alloc in state
            .allocs_on_node(&node.id)
            .filter(|a| a.holds_resources())
        {
            used = used.saturating_add(alloc.resources);
            let job = state.job(&alloc.job_id).unwrap();
            let group = job.group(&alloc.group).unwrap();
            let f = Feasibility::new(job, group).unwrap();
            // An allocation of the current spec was placed on a node that
            // met its constraints (nodes here never change attributes). One
            // of an older spec may run on until its replacement finds room.
            if alloc.spec_hash == job.group_spec_hash(group) {
                prop_assert!(
                    f.check(node).is_ok(),
                    "{} on infeasible node {}",
                    alloc.name,
                    node.id
                );
            }
        }
        prop_assert!(
            node.allocatable()
                .exhausted(used, orch_model::Resources::ZERO)
                .is_none(),
            "node {} over-committed: {used:?} of {:?}",
            node.id,
            node.allocatable()
        );
    }
    for job in state.jobs() {
        if job.job_type != orch_model::JobType::System {
            let mut slots = std::collections::BTreeSet::new();
            for alloc in state.allocs_of_job(&job.id).filter(|a| a.holds_resources()) {
                prop_assert!(
                    slots.insert((alloc.group.clone(), alloc.index)),
                    "{} twice",
                    alloc.name
                );
            }
        }
        for group in &job.groups {
            let live = state
                .allocs_of_job(&job.id)
                .filter(|a| a.group == group.name && a.holds_resources())
                .count();
            prop_assert!(
                live as u32 <= group.count,
                "{} has {live} > {}",
                job.id,
                group.count
            );
            if job.stop {
                prop_assert_eq!(live, 0);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_through_random_histories(
        nodes in prop::collection::vec((500..4000u32, any::<bool>()), 1..6),
        steps in prop::collection::vec(step(), 1..12),
    ) {
        let h = harness();
        h.nodes(nodes.iter().enumerate().map(|(i, (cpu, linux))| {
            node(&format!("n{i}"), *cpu, 4096, &[("os.name", if *linux { "linux" } else { "darwin" })])
        }).collect());
        for step in steps {
            match step {
                Step::Register { job: j, count, cpu, linux_only, batch } => {
                    let mut v = json!({
                        "id": format!("j{j}"),
                        "type": if batch { "batch" } else { "service" },
                        "group": [{"count": count, "task": [{"resources": {"cpu": cpu, "memory": 128}}]}],
                    });
                    if linux_only {
                        v["constraint"] = json!([{"attribute": "${attr.os.name}", "value": "linux"}]);
                    }
                    h.register(job(v));
                }
                Step::Stop { job } => {
                    let _ = h.store.apply(Op::StopJob { job_id: format!("j{job}"), now_ms: h.now() });
                }
                Step::NodeDown { node } => {
                    let _ = h.store.apply(Op::UpdateNode {
                        node_id: format!("n{node}"),
                        change: NodeChange::Status { status: NodeStatus::Down, description: String::new() },
                    });
                }
                Step::Fail { job } | Step::Complete { job } => {
                    let status = if matches!(step, Step::Fail { .. }) { ClientStatus::Failed } else { ClientStatus::Complete };
                    if let Some(a) = h.live(&format!("j{job}")).first() {
                        h.report(&a.id, status);
                    }
                }
            }
            h.run();
            h.unblock();
            check_invariants(&h.state())?;
        }
    }

    #[test]
    fn applying_a_plan_twice_changes_nothing_the_second_time(
        nodes in prop::collection::vec(500..4000u32, 1..6),
        count in 0..8u32,
        cpu in 100..2000u32,
        rescale in 0..8u32,
    ) {
        let h = harness();
        h.nodes(nodes.iter().enumerate().map(|(i, cpu)| node(&format!("n{i}"), *cpu, 4096, &[])).collect());
        h.register(job(json!({"group": [{"count": count, "task": [{"resources": {"cpu": cpu}}]}]})));
        h.run();
        // A second version that places, stops or updates in place.
        let eval = h.register(job(json!({"group": [{"count": rescale, "restart": {"attempts": 9},
                                                     "task": [{"resources": {"cpu": cpu}}]}]})));
        let Some(eval) = eval else { return Ok(()) };
        let state = h.state();
        let plan = h.scheduler.compute(&state, state.eval(&eval).unwrap(), h.now()).unwrap().plan;
        let Outcome::Plan(first) = h.store.apply(Op::ApplyPlan(plan.clone())).unwrap() else { panic!() };
        let index = h.store.index();
        let allocs: Vec<Allocation> = h.state().allocs().map(|a| (**a).clone()).collect();
        let Outcome::Plan(again) = h.store.apply(Op::ApplyPlan(plan)).unwrap() else { panic!() };
        prop_assert!(again.placed.is_empty() && again.stopped == 0, "{again:?} after {first:?}");
        prop_assert_eq!(h.store.index(), index);
        let mut after: Vec<Allocation> = h.state().allocs().map(|a| (**a).clone()).collect();
        let mut before = allocs;
        before.sort_by(|a, b| a.id.cmp(&b.id));
        after.sort_by(|a, b| a.id.cmp(&b.id));
        prop_assert_eq!(before, after);
        check_invariants(&h.state())?;
    }
}

/// Spread, 300 ms late: a shadow lane that is busy when asked to stop.
struct Slow;

impl Scorer for Slow {
    fn label(&self) -> &str {
        "slow spread"
    }

    fn digest(&self) -> &str {
        "native:slow-spread"
    }

    fn score(
        &self,
        request: &orch_plugin_runtime::ScoreRequest,
    ) -> Result<orch_plugin_runtime::ScoreResponse, ScoreError> {
        std::thread::sleep(std::time::Duration::from_millis(300));
        Native::new(orch_scorer_spread::Spread).score(request)
    }
}

fn shadow(name: &str, scorer: Arc<dyn Scorer>) -> orch_server::ShadowSpec {
    orch_server::ShadowSpec {
        name: name.into(),
        scorer,
        candidate: orch_model::Candidate {
            mode: orch_model::CandidateMode::Shadow,
            weight: None,
            jobs: Vec::new(),
        },
    }
}

#[test]
fn shadow_answers_are_written_by_shutdown_and_what_was_left_is_counted_as_dropped() {
    let mut h = harness();
    let metrics = orch_server::Metrics::new();
    // A queue of 2 behind a scorer that takes 300 ms a call: most of the
    // 60 decisions are dropped on offer, and the lane is in a call, with
    // more queued, when it is asked to stop.
    let lanes = orch_server::Shadows::with_queue(h.store.clone(), &metrics, 2).unwrap();
    lanes.sync(vec![shadow("slow", Arc::new(Slow))]);
    h.scheduler = Scheduler::new(
        Arc::new(Native::new(orch_scorer_binpack::Binpack)),
        Sampling::default(),
    )
    .with_shadows(lanes.clone());
    h.nodes(vec![
        node("a", 64_000, 65_536, &[]),
        node("b", 64_000, 65_536, &[]),
        node("c", 64_000, 65_536, &[]),
    ]);
    h.register(job(count(60)));
    h.run();
    let live = h.live("web");
    assert_eq!(live.len(), 60, "the primary placed everything");
    let stats = lanes.shutdown(std::time::Duration::from_secs(30));
    assert_eq!(stats.len(), 1);
    let lane = &stats[0];
    assert_eq!(lane.offered, 60);
    assert_eq!(lane.queued, 0, "nothing is left waiting: {lane:?}");
    // The call in hand ends; what was queued behind it is not scored.
    assert!(lane.scored + lane.faults <= 1, "{lane:?}");
    // Every answer the lane gave is in the store once shutdown returns,
    // and every decision is either answered or counted as dropped.
    let recorded = live
        .iter()
        .filter(|a| !h.store.shadows(&a.id).unwrap().is_empty())
        .count() as u64;
    assert_eq!(recorded, lane.scored + lane.faults, "{lane:?}");
    assert_eq!(recorded + lane.dropped, lane.offered, "{lane:?}");
    assert!(lanes.stats().is_empty(), "no lane runs after shutdown");
    // A lane asked for after shutdown does not start.
    lanes.sync(vec![shadow(
        "late",
        Arc::new(Native::new(orch_scorer_spread::Spread)),
    )]);
    assert!(lanes.stats().is_empty());
}

#[test]
fn a_shadow_lane_waits_while_the_primary_places_then_writes_every_answer() {
    let mut h = harness();
    let metrics = orch_server::Metrics::new();
    let lanes = orch_server::Shadows::start(h.store.clone(), &metrics).unwrap();
    lanes.sync(vec![shadow(
        "spread",
        Arc::new(Native::new(orch_scorer_spread::Spread)),
    )]);
    h.scheduler = Scheduler::new(
        Arc::new(Native::new(orch_scorer_binpack::Binpack)),
        Sampling::default(),
    )
    .with_shadows(lanes.clone());
    h.nodes(vec![
        node("a", 64_000, 65_536, &[]),
        node("b", 64_000, 65_536, &[]),
    ]);
    // While the primary is placing, the lane waits (its queue is far from
    // half full).
    let placing = lanes.primary_busy();
    h.register(job(count(20)));
    h.run();
    let lane = &lanes.stats()[0];
    assert_eq!(
        (lane.offered, lane.scored, lane.queued),
        (20, 0, 20),
        "{lane:?}"
    );
    drop(placing);
    // Then it works through its queue, and stops: all 20 answered and
    // written.
    let waited = std::time::Instant::now();
    while lanes.stats()[0].queued > 0 {
        assert!(waited.elapsed().as_secs() < 60, "the lane never caught up");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let lane = &lanes.shutdown(std::time::Duration::from_secs(30))[0];
    assert_eq!(
        (lane.offered, lane.scored, lane.dropped),
        (20, 20, 0),
        "{lane:?}"
    );
    for alloc in h.live("web") {
        let answers = h.store.shadows(&alloc.id).unwrap();
        assert_eq!(answers.len(), 1, "{}", alloc.name);
        assert_eq!(answers[0].candidate, "spread");
    }
}

#[test]
fn with_every_node_scored_the_records_of_a_plan_share_a_frame_and_read_back_whole() {
    let mut h = harness();
    h.scheduler = Scheduler::new(
        Arc::new(Native::new(orch_scorer_binpack::Binpack)),
        Sampling {
            candidates: 1_000,
            percent: 0,
        },
    );
    let nodes: Vec<_> = (0..300)
        .map(|i| node(&format!("n{i:03}"), 4000 + (i % 7) * 500, 8192, &[]))
        .collect();
    h.nodes(nodes);
    h.register(job(count(12)));
    h.run();
    let live = h.live("web");
    assert_eq!(live.len(), 12);
    let mut paged = BTreeMap::new();
    let (page, total) = h.store.decisions_since(0, None, 0, 100).unwrap();
    assert_eq!(total, Some(12));
    for (_, d) in page {
        paged.insert(d.alloc_id.clone(), d);
    }
    for alloc in &live {
        let d = h.store.decision(&alloc.id).unwrap().unwrap();
        // Every node with room: binpack fills one node (eight fit) before
        // the next, which leaves it out of the later placements.
        let full = usize::from(alloc.index >= 8);
        assert_eq!(d.candidates.len(), 300 - full, "{}", alloc.name);
        assert_eq!(d.picked_node(), Some(alloc.node_id.as_str()));
        assert_eq!(d.inputs.cpu_allocated.len(), d.candidates.len());
        assert_eq!(d.parts.len(), d.candidates.len() * d.part_names.len());
        // The same record through a page (frames read once per page).
        assert_eq!(paged.get(&alloc.id), Some(&d));
        // Its inputs are the request the scorer got: a replay agrees.
        let request = orch_server::request_of(&d);
        let again = h.scheduler.scorer().score(&request).unwrap();
        assert_eq!(again.scores, d.scores);
        // The node picked held what earlier placements of the plan put
        // there: the record's columns are this placement's, not the
        // frame's.
        let i = d.pick as usize;
        let before = live
            .iter()
            .filter(|a| a.node_id == alloc.node_id && a.index < alloc.index)
            .count() as u32;
        assert_eq!(d.inputs.total_allocs[i], before, "{}", alloc.name);
    }
}
