//! The state store on a real SQLite file: group commit, the plan applier's
//! checks, blocking on the index, and reopening what was committed.

use orch_model::{
    Allocation, ClientStatus, DesiredStatus, DriverInfo, EvalStatus, Job, Node, NodeStatus,
    Resources, TaskEvent, TaskEventKind, TaskState, TaskStatus,
};
use orch_server::{AllocStop, NodeChange, Op, Outcome, Plan, Store, StoreOptions};
use std::collections::BTreeMap;

fn node(id: &str, cpu: u32, memory: u64) -> Node {
    Node {
        id: id.into(),
        name: id.into(),
        datacenter: "dc1".into(),
        node_class: String::new(),
        attributes: BTreeMap::new(),
        meta: BTreeMap::new(),
        resources: Resources::new(cpu, memory, 10_000),
        reserved: Resources::ZERO,
        drivers: [("exec".to_owned(), DriverInfo::default())].into(),
        http_addr: String::new(),
        status: NodeStatus::Ready,
        status_description: String::new(),
        eligibility: Default::default(),
        drain: false,
        create_index: 0,
        modify_index: 0,
    }
}

fn job(id: &str, count: u32) -> Job {
    let toml = format!(
        r#"{{"id":"{id}","group":[{{"name":"g","count":{count},"task":[{{"name":"t","driver":"exec"}}]}}]}}"#
    );
    serde_json::from_str(&toml).unwrap()
}

fn alloc(id: &str, job: &str, node: &str, cpu: u32) -> Allocation {
    Allocation {
        id: id.into(),
        name: format!("{job}.g[0]"),
        job_id: job.into(),
        job_version: 0,
        group: "g".into(),
        index: 0,
        node_id: node.into(),
        eval_id: "e".into(),
        resources: Resources::new(cpu, 100, 0),
        spec_hash: String::new(),
        desired_status: DesiredStatus::Run,
        desired_description: String::new(),
        client_status: ClientStatus::Pending,
        client_description: String::new(),
        previous_allocation: None,
        reschedule_times_ms: vec![],
        create_index: 0,
        modify_index: 0,
        create_time_ms: 0,
        client_time_ms: 0,
        task_states: Default::default(),
    }
}

fn plan(job: &str, allocs: Vec<Allocation>) -> Plan {
    let mut p = Plan {
        eval_id: "e".into(),
        job_id: job.into(),
        ..Plan::default()
    };
    for a in allocs {
        p.placements.entry(a.node_id.clone()).or_default().push(a);
    }
    p
}

fn open(dir: &tempfile::TempDir) -> Store {
    Store::open(&dir.path().join("state.db"), StoreOptions::default()).unwrap()
}

#[test]
fn register_makes_a_version_and_an_evaluation_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let Outcome::JobRegistered {
        eval_id, version, ..
    } = store
        .apply(Op::RegisterJob {
            job: job("web", 2),
            enforce_index: None,
            now_ms: 1,
        })
        .unwrap()
    else {
        panic!("not a registration")
    };
    assert_eq!(version, 0);
    let eval_id = eval_id.unwrap();
    // The same spec again changes nothing.
    let again = store
        .apply(Op::RegisterJob {
            job: job("web", 2),
            enforce_index: None,
            now_ms: 2,
        })
        .unwrap();
    assert!(matches!(
        again,
        Outcome::JobRegistered {
            eval_id: None,
            version: 0,
            ..
        }
    ));
    // A new count is a new version.
    let changed = store
        .apply(Op::RegisterJob {
            job: job("web", 3),
            enforce_index: None,
            now_ms: 3,
        })
        .unwrap();
    assert!(matches!(
        changed,
        Outcome::JobRegistered {
            version: 1,
            eval_id: Some(_),
            ..
        }
    ));
    let index = store.index();
    drop(store);

    let store = open(&dir);
    let state = store.snapshot();
    assert_eq!(state.index(), index);
    assert_eq!(state.job("web").unwrap().version, 1);
    assert_eq!(state.eval(&eval_id).unwrap().status, EvalStatus::Pending);
    assert_eq!(state.evals_of_job("web").count(), 2);
    let versions = store.job_versions("web").unwrap();
    assert_eq!(
        versions.iter().map(|j| j.version).collect::<Vec<_>>(),
        [1, 0]
    );
}

#[test]
fn enforce_index_refuses_a_stale_register_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store
        .apply(Op::RegisterJob {
            job: job("web", 1),
            enforce_index: Some(0),
            now_ms: 1,
        })
        .unwrap();
    let before = store.index();
    let err = store
        .apply(Op::RegisterJob {
            job: job("web", 5),
            enforce_index: Some(0),
            now_ms: 2,
        })
        .unwrap_err();
    assert!(
        err.to_string().contains("changed since you read it"),
        "{err}"
    );
    assert_eq!(store.index(), before);
    assert_eq!(store.snapshot().job("web").unwrap().groups[0].count, 1);
}

#[test]
fn the_applier_never_over_commits_a_node() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store.apply(Op::UpsertNode(node("n1", 1000, 4096))).unwrap();
    store
        .apply(Op::RegisterJob {
            job: job("a", 2),
            enforce_index: None,
            now_ms: 1,
        })
        .unwrap();
    // Two plans made on the same snapshot race for the last 1000 MHz: sent
    // together, they land in one group commit; only one may win.
    let mut y = alloc("y", "a", "n1", 700);
    (y.index, y.name) = (1, "a.g[1]".into());
    let first = store.submit(Op::ApplyPlan(plan("a", vec![alloc("x", "a", "n1", 700)])));
    let second = store.submit(Op::ApplyPlan(plan("a", vec![y])));
    let first = first.blocking_recv().unwrap().unwrap();
    let second = second.blocking_recv().unwrap().unwrap();
    let (Outcome::Plan(first), Outcome::Plan(second)) = (first, second) else {
        panic!("not plan results")
    };
    assert_eq!(first.placed, ["x"]);
    assert!(second.placed.is_empty());
    assert_eq!(
        second.rejected.get("n1").map(String::as_str),
        Some("cpu exhausted")
    );
    assert_eq!(store.snapshot().usage("n1").resources.cpu, 700);

    // Stopping x in the same plan makes room for y.
    let mut p = plan("a", vec![alloc("y", "a", "n1", 700)]);
    p.stops.push(AllocStop {
        alloc_id: "x".into(),
        desired: DesiredStatus::Stop,
        description: "replaced".into(),
        client_status: None,
    });
    let Outcome::Plan(result) = store.apply(Op::ApplyPlan(p)).unwrap() else {
        panic!()
    };
    assert_eq!((result.placed.len(), result.stopped), (1, 1));
    assert_eq!(store.snapshot().usage("n1").resources.cpu, 700);
}

#[test]
fn applying_the_same_plan_twice_changes_nothing_the_second_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store.apply(Op::UpsertNode(node("n1", 4000, 4096))).unwrap();
    store
        .apply(Op::RegisterJob {
            job: job("a", 1),
            enforce_index: None,
            now_ms: 1,
        })
        .unwrap();
    let p = plan("a", vec![alloc("x", "a", "n1", 500)]);
    let Outcome::Plan(once) = store.apply(Op::ApplyPlan(p.clone())).unwrap() else {
        panic!()
    };
    let index = store.index();
    let Outcome::Plan(twice) = store.apply(Op::ApplyPlan(p)).unwrap() else {
        panic!()
    };
    assert_eq!(once.placed, ["x"]);
    assert!(twice.placed.is_empty() && twice.rejected.is_empty());
    assert_eq!(store.index(), index);
    assert_eq!(store.snapshot().usage("n1").resources.cpu, 500);
    assert_eq!(store.snapshot().usage("n1").allocs, 1);
}

#[test]
fn placements_on_a_down_node_or_for_a_stopped_job_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store.apply(Op::UpsertNode(node("n1", 4000, 4096))).unwrap();
    store.apply(Op::UpsertNode(node("n2", 4000, 4096))).unwrap();
    store
        .apply(Op::RegisterJob {
            job: job("a", 1),
            enforce_index: None,
            now_ms: 1,
        })
        .unwrap();
    store
        .apply(Op::ApplyPlan(plan("a", vec![alloc("x", "a", "n1", 500)])))
        .unwrap();
    let Outcome::Applied { evals, .. } = store
        .apply(Op::UpdateNode {
            node_id: "n1".into(),
            change: NodeChange::Status {
                status: NodeStatus::Down,
                description: "missed heartbeats".into(),
            },
        })
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(
        evals.len(),
        1,
        "the job on the lost node gets an evaluation"
    );
    let state = store.snapshot();
    assert_eq!(state.alloc("x").unwrap().client_status, ClientStatus::Lost);
    assert_eq!(state.usage("n1").resources, Resources::ZERO);
    let Outcome::Plan(r) = store
        .apply(Op::ApplyPlan(plan("a", vec![alloc("y", "a", "n1", 500)])))
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(
        r.rejected.get("n1").map(String::as_str),
        Some("node is down")
    );

    store
        .apply(Op::StopJob {
            job_id: "a".into(),
            now_ms: 2,
        })
        .unwrap();
    let Outcome::Plan(r) = store
        .apply(Op::ApplyPlan(plan("a", vec![alloc("z", "a", "n2", 500)])))
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(
        r.rejected.get("n2").map(String::as_str),
        Some("job was stopped")
    );
}

#[test]
fn a_refused_op_in_a_batch_leaves_the_others_committed() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let ok = store.submit(Op::UpsertNode(node("n1", 1000, 1000)));
    let bad = store.submit(Op::StopJob {
        job_id: "nope".into(),
        now_ms: 0,
    });
    let ok2 = store.submit(Op::UpsertNode(node("n2", 1000, 1000)));
    assert!(ok.blocking_recv().unwrap().is_ok());
    let err = bad.blocking_recv().unwrap().unwrap_err();
    assert_eq!(err.to_string(), "job \"nope\" not found");
    assert!(ok2.blocking_recv().unwrap().is_ok());
    drop(store);
    let state = open(&dir).snapshot();
    assert_eq!(state.node_count(), 2);
    assert_eq!(state.index(), 2);
}

#[test]
fn blocking_reads_wake_on_the_next_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let at = store.index();
    let writer = store.clone();
    let handle = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(50));
        writer.apply(Op::UpsertNode(node("n1", 1, 1))).unwrap();
    });
    let seen = rt.block_on(store.wait_past(at, std::time::Duration::from_secs(30)));
    assert_eq!(seen, at + 1);
    handle.join().unwrap();
    // Nothing newer: returns at the timeout with the same index.
    let seen = rt.block_on(store.wait_past(seen, std::time::Duration::from_millis(20)));
    assert_eq!(seen, at + 1);
}

#[test]
fn a_failed_allocation_makes_an_evaluation() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store.apply(Op::UpsertNode(node("n1", 4000, 4096))).unwrap();
    store
        .apply(Op::RegisterJob {
            job: job("a", 1),
            enforce_index: None,
            now_ms: 1,
        })
        .unwrap();
    store
        .apply(Op::ApplyPlan(plan("a", vec![alloc("x", "a", "n1", 500)])))
        .unwrap();
    let Outcome::Applied { evals, .. } = store
        .apply(Op::UpdateAllocs {
            updates: vec![orch_server::AllocUpdate {
                alloc_id: "x".into(),
                client_status: ClientStatus::Failed,
                description: "exit code 1".into(),
                task_states: None,
            }],
            now_ms: 5,
        })
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(evals.len(), 1);
    let state = store.snapshot();
    assert_eq!(
        state.eval(&evals[0]).unwrap().triggered_by,
        orch_model::TriggeredBy::AllocFailure
    );
    assert_eq!(state.usage("n1").allocs, 0);
}

#[test]
fn decisions_are_stored_compressed_and_rows_from_before_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store.apply(Op::UpsertNode(node("n1", 4000, 4096))).unwrap();
    store
        .apply(Op::RegisterJob {
            job: job("a", 1),
            enforce_index: None,
            now_ms: 1,
        })
        .unwrap();
    let decision: orch_model::Decision = serde_json::from_value(serde_json::json!({
        "alloc_id": "x", "eval_id": "e", "job_id": "a", "group": "g",
        "scorer": "binpack 0.1.0", "scorer_digest": "sha256:00", "placement": 7,
        "nodes_evaluated": 1, "candidates": ["n1"], "scores": [0.1234567890123],
        "part_names": ["cpu"], "parts": [0.1234567890123], "pick": 0,
        "scorer_micros": 1, "total_micros": 2,
    }))
    .unwrap();
    let mut p = plan("a", vec![alloc("x", "a", "n1", 100)]);
    p.decisions.push(decision.clone());
    store.apply(Op::ApplyPlan(p)).unwrap();
    assert_eq!(store.decision("x").unwrap(), Some(decision.clone()));

    let db = rusqlite::Connection::open(dir.path().join("state.db")).unwrap();
    let (body, packed): (String, Vec<u8>) = db
        .query_row(
            "SELECT body, packed FROM decisions WHERE alloc_id = 'x'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(body.is_empty());
    assert!(!packed.is_empty());
    // A row written before decisions were compressed: JSON in `body`.
    let old = orch_model::Decision {
        alloc_id: "old".into(),
        ..decision
    };
    db.execute(
        "INSERT INTO decisions (alloc_id, eval_id, body) VALUES ('old', 'e', ?1)",
        [serde_json::to_string(&old).unwrap()],
    )
    .unwrap();
    assert_eq!(store.decision("old").unwrap(), Some(old.clone()));
    // One written compressed before records had a binary layout: the
    // whole record as JSON, LZ4-packed (format 1).
    let packed_json = orch_model::Decision {
        alloc_id: "lz".into(),
        ..old
    };
    db.execute(
        "INSERT INTO decisions (alloc_id, eval_id, body, packed) VALUES ('lz', 'e', '', ?1)",
        [lz4_flex::compress_prepend_size(
            serde_json::to_string(&packed_json).unwrap().as_bytes(),
        )],
    )
    .unwrap();
    assert_eq!(store.decision("lz").unwrap(), Some(packed_json));
    // A damaged one is an error that names it, not a panic.
    db.execute(
        "UPDATE decisions SET packed = x'ffffffff00' WHERE alloc_id = 'x'",
        [],
    )
    .unwrap();
    let err = store.decision("x").unwrap_err().to_string();
    assert!(err.contains("\"x\""), "{err}");
}

fn report(
    store: &Store,
    alloc: &str,
    status: ClientStatus,
    tasks: Option<BTreeMap<String, TaskState>>,
) -> Outcome {
    store
        .apply(Op::UpdateAllocs {
            updates: vec![orch_server::AllocUpdate {
                alloc_id: alloc.into(),
                client_status: status,
                description: format!("{} by test", status.as_str()),
                task_states: tasks,
            }],
            now_ms: 7,
        })
        .unwrap()
}

/// One task `t` in `state`, restarted `restarts` times, its events the
/// kinds given (a millisecond apart).
fn tasks(state: TaskStatus, restarts: u32, kinds: &[TaskEventKind]) -> BTreeMap<String, TaskState> {
    let mut t = TaskState {
        state,
        restarts,
        ..TaskState::default()
    };
    for (i, kind) in kinds.iter().enumerate() {
        t.push(TaskEvent::new(*kind, 1000 + i as u64, ""));
    }
    [("t".to_owned(), t)].into()
}

#[test]
fn task_states_are_taken_when_they_change_and_statuses_still_only_move_forward() {
    use TaskEventKind::{Received, Restarting, Started, Terminated};
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store.apply(Op::UpsertNode(node("n1", 4000, 4096))).unwrap();
    store
        .apply(Op::RegisterJob {
            job: job("a", 1),
            enforce_index: None,
            now_ms: 1,
        })
        .unwrap();
    store
        .apply(Op::ApplyPlan(plan("a", vec![alloc("x", "a", "n1", 500)])))
        .unwrap();
    let running = tasks(TaskStatus::Running, 0, &[Received, Started]);
    report(&store, "x", ClientStatus::Running, Some(running.clone()));
    let a = store.snapshot().alloc("x").unwrap().clone();
    assert_eq!(a.client_status, ClientStatus::Running);
    assert_eq!(a.task_states, running);

    // The same report again: nothing written, the index stays.
    let before = store.index();
    let outcome = report(&store, "x", ClientStatus::Running, Some(running.clone()));
    assert_eq!(outcome.index(), before);
    assert_eq!(store.index(), before);

    // Restarted in place: the status does not change (or reads pending
    // while the task waits), only the task states do; they are taken, the
    // status does not move back.
    let restarting = tasks(
        TaskStatus::Pending,
        1,
        &[Received, Started, Terminated, Restarting],
    );
    report(&store, "x", ClientStatus::Pending, Some(restarting.clone()));
    let a = store.snapshot().alloc("x").unwrap().clone();
    assert_eq!(a.client_status, ClientStatus::Running);
    assert_eq!(a.client_description, "running by test");
    assert_eq!(a.task_states, restarting);
    assert!(a.modify_index > before);
    // A report without task states keeps those the server has.
    report(&store, "x", ClientStatus::Running, None);
    assert_eq!(store.snapshot().alloc("x").unwrap().task_states, restarting);

    // It fails, and its last word on the tasks comes with the end; one
    // evaluation for the failure.
    let dead = tasks(TaskStatus::Dead, 1, &[Started, Terminated]);
    let Outcome::Applied { evals, .. } = report(&store, "x", ClientStatus::Failed, Some(dead))
    else {
        panic!()
    };
    assert_eq!(evals.len(), 1);
    // Task states sent again with the terminal status are taken, and make
    // no second evaluation; a late running report changes nothing.
    let mut last = tasks(TaskStatus::Dead, 1, &[Started, Terminated]);
    last.get_mut("t").unwrap().failed = true;
    let Outcome::Applied { evals, .. } =
        report(&store, "x", ClientStatus::Failed, Some(last.clone()))
    else {
        panic!()
    };
    assert!(evals.is_empty(), "{evals:?}");
    let before = store.index();
    report(&store, "x", ClientStatus::Running, Some(running));
    assert_eq!(store.index(), before);
    let a = store.snapshot().alloc("x").unwrap().clone();
    assert_eq!(a.client_status, ClientStatus::Failed);
    assert_eq!(a.task_states, last);
    let failures = store
        .snapshot()
        .evals_of_job("a")
        .filter(|e| e.triggered_by == orch_model::TriggeredBy::AllocFailure)
        .count();
    assert_eq!(failures, 1);

    // Kept on disk.
    drop(store);
    let store = open(&dir);
    assert_eq!(store.snapshot().alloc("x").unwrap().task_states, last);
}

#[test]
fn draining_a_node_makes_an_evaluation_for_each_job_running_there() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    for n in ["n1", "n2"] {
        store.apply(Op::UpsertNode(node(n, 4000, 4096))).unwrap();
    }
    for j in ["a", "b", "c", "stopped"] {
        store
            .apply(Op::RegisterJob {
                job: job(j, 1),
                enforce_index: None,
                now_ms: 1,
            })
            .unwrap();
    }
    // a, c and the stopped job on n1; b on n2.
    for (id, j, n) in [
        ("xa", "a", "n1"),
        ("xb", "b", "n2"),
        ("xc", "c", "n1"),
        ("xs", "stopped", "n1"),
    ] {
        store
            .apply(Op::ApplyPlan(plan(j, vec![alloc(id, j, n, 500)])))
            .unwrap();
    }
    store
        .apply(Op::StopJob {
            job_id: "stopped".into(),
            now_ms: 2,
        })
        .unwrap();

    let Outcome::Applied { evals, .. } = store
        .apply(Op::UpdateNode {
            node_id: "n1".into(),
            change: NodeChange::Drain(true),
        })
        .unwrap()
    else {
        panic!()
    };
    let state = store.snapshot();
    let mut jobs: Vec<&str> = evals
        .iter()
        .map(|id| {
            let e = state.eval(id).unwrap();
            assert_eq!(e.triggered_by, orch_model::TriggeredBy::NodeDrain);
            assert_eq!(e.node_id.as_deref(), Some("n1"));
            assert_eq!(e.status, EvalStatus::Pending);
            e.job_id.as_str()
        })
        .collect();
    jobs.sort_unstable();
    assert_eq!(jobs, ["a", "c"], "not b (elsewhere), not a stopped job");
    let n1 = state.node("n1").unwrap();
    assert!(n1.drain);
    assert_eq!(n1.eligibility, orch_model::Eligibility::Ineligible);
    assert!(!state.schedulable_nodes().iter().any(|n| n.id == "n1"));

    // Ineligible while draining; ending the drain makes it eligible again.
    store
        .apply(Op::UpdateNode {
            node_id: "n1".into(),
            change: NodeChange::Drain(false),
        })
        .unwrap();
    let state = store.snapshot();
    let n1 = state.node("n1").unwrap();
    assert!(!n1.drain);
    assert_eq!(n1.eligibility, orch_model::Eligibility::Eligible);
    assert!(state.schedulable_nodes().iter().any(|n| n.id == "n1"));

    // Ineligible: nothing moves, no evaluation.
    let Outcome::Applied { evals, .. } = store
        .apply(Op::UpdateNode {
            node_id: "n2".into(),
            change: NodeChange::Eligibility(orch_model::Eligibility::Ineligible),
        })
        .unwrap()
    else {
        panic!()
    };
    assert!(evals.is_empty());
    assert!(
        !store
            .snapshot()
            .schedulable_nodes()
            .iter()
            .any(|n| n.id == "n2")
    );

    let err = store
        .apply(Op::UpdateNode {
            node_id: "nowhere".into(),
            change: NodeChange::Drain(true),
        })
        .unwrap_err();
    assert!(
        err.to_string().contains("node \"nowhere\" not found"),
        "{err}"
    );
}

#[test]
fn one_version_of_a_job_is_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    for count in [1, 2] {
        store
            .apply(Op::RegisterJob {
                job: job("a", count),
                enforce_index: None,
                now_ms: 1,
            })
            .unwrap();
    }
    let v0 = store.job_version("a", 0).unwrap().unwrap();
    assert_eq!((v0.version, v0.groups[0].count), (0, 1));
    let v1 = store.job_version("a", 1).unwrap().unwrap();
    assert_eq!((v1.version, v1.groups[0].count), (1, 2));
    assert_eq!(store.job_version("a", 2).unwrap(), None);
    assert_eq!(store.job_version("a", u64::MAX).unwrap(), None);
    assert_eq!(store.job_version("b", 0).unwrap(), None);
}

#[test]
fn shadow_answers_live_in_their_own_file_and_old_ones_move_there() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    drop(store);
    // An answer a state database kept itself, before shadows.db.
    let answer: orch_model::ShadowDecision = serde_json::from_value(serde_json::json!({
        "alloc_id": "a1", "job_id": "web", "candidate": "spread", "scorer": "spread 0.1.0",
        "scorer_digest": "sha256:00", "time_ms": 5, "pick": 1, "agrees": false,
        "cluster_node": "n2", "scorer_micros": 3,
    }))
    .unwrap();
    let db = rusqlite::Connection::open(dir.path().join("state.db")).unwrap();
    db.execute(
        "INSERT INTO shadow_decisions (alloc_id, candidate, digest, job_id, time_ms, agrees,
             fault, scorer_micros, cluster_node, packed)
         VALUES ('a1', 'spread', 'sha256:00', 'web', 5, 0, 0, 3, 'n2', ?1)",
        [lz4_flex::compress_prepend_size(
            serde_json::to_string(&answer).unwrap().as_bytes(),
        )],
    )
    .unwrap();
    drop(db);
    let store = open(&dir);
    assert_eq!(store.shadows("a1").unwrap(), vec![answer.clone()]);
    assert_eq!(
        store.shadow_cluster("spread", "sha256:00").unwrap(),
        vec![("a1".to_owned(), Some("n2".to_owned()), false)]
    );
    let db = rusqlite::Connection::open(dir.path().join("state.db")).unwrap();
    let left: i64 = db
        .query_row("SELECT COUNT(*) FROM shadow_decisions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0, "moved, not copied");
    // New answers go to shadows.db, never through the state's writer: the
    // state's index does not move.
    let index = store.index();
    let mut again = answer.clone();
    again.alloc_id = "a2".into();
    store
        .record_shadows(&[orch_server::PackedShadow::of(&again).unwrap()])
        .unwrap();
    assert_eq!(store.index(), index);
    assert_eq!(store.shadows("a2").unwrap(), vec![again]);
    let shadows = rusqlite::Connection::open(dir.path().join("shadows.db")).unwrap();
    let rows: i64 = shadows
        .query_row("SELECT COUNT(*) FROM shadow_decisions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 2);
}
