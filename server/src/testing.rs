//! A scheduler harness for tests anywhere (Nomad keeps `scheduler/testing.go`
//! beside its scheduler for the same reason): a real store on a temporary
//! SQLite file, nodes and jobs registered through it, and every pending
//! evaluation run through the same code the workers run (compute → plan →
//! applier → the evaluation's outcome), on a clock the test moves. Builders
//! for nodes and jobs come with it.
//!
//! It is test support: it panics, with what failed, where a test would.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test support: a failure here is a failed test, said where it happened"
)]

use crate::{
    AllocUpdate, Durability, Op, Outcome, Sampling, Scheduler, Scorer, State, Store, StoreOptions,
    process_eval,
};
use orch_model::{Allocation, ClientStatus, EvalStatus, Evaluation, Job, Node};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

pub struct Harness {
    _dir: tempfile::TempDir,
    /// A real store on a temporary SQLite file.
    pub store: Store,
    /// What [`Harness::run`] schedules with; a test may swap it.
    pub scheduler: Scheduler,
    now: std::cell::Cell<u64>,
}

impl Harness {
    /// A harness whose scheduler scores with `scorer` (default sampling)
    /// and whose clock starts at 1,000,000 ms.
    pub fn new(scorer: Arc<dyn Scorer>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            &dir.path().join("state.db"),
            StoreOptions {
                sync: Durability::Normal,
                ..StoreOptions::default()
            },
        )
        .unwrap();
        Self {
            _dir: dir,
            store,
            scheduler: Scheduler::new(scorer, Sampling::default()),
            now: std::cell::Cell::new(1_000_000),
        }
    }

    /// The harness's clock, in ms since the epoch; only [`Self::advance`]
    /// moves it.
    pub fn now(&self) -> u64 {
        self.now.get()
    }

    pub fn advance(&self, ms: u64) {
        self.now.set(self.now() + ms);
    }

    /// The latest committed state.
    pub fn state(&self) -> Arc<State> {
        self.store.snapshot()
    }

    /// Registers (or updates) nodes.
    pub fn nodes(&self, nodes: Vec<Node>) {
        self.store.apply(Op::UpsertNodes(nodes)).unwrap();
    }

    /// Registers `job`; the evaluation it made, if it changed anything.
    pub fn register(&self, job: Job) -> Option<String> {
        match self
            .store
            .apply(Op::RegisterJob {
                job,
                enforce_index: None,
                now_ms: self.now(),
            })
            .unwrap()
        {
            Outcome::JobRegistered { eval_id, .. } => eval_id,
            other => panic!("{other:?}"),
        }
    }

    /// Runs pending evaluations that are due, oldest first, until none is
    /// left (the broker holds back the ones waiting out a delay).
    pub fn run(&self) -> Vec<Evaluation> {
        let mut done = Vec::new();
        for _ in 0..100 {
            let state = self.state();
            let mut pending: Vec<Arc<Evaluation>> = state
                .evals()
                .filter(|e| e.status == EvalStatus::Pending)
                .filter(|e| e.wait_until_ms.is_none_or(|t| t <= self.now()))
                .cloned()
                .collect();
            if pending.is_empty() {
                return done;
            }
            pending.sort_by_key(|e| e.create_index);
            for eval in pending {
                if let Some(e) =
                    process_eval(&self.store, &self.scheduler, &eval, &[], 1, self.now(), 5)
                        .unwrap()
                {
                    done.push(e);
                }
            }
        }
        panic!("evaluations keep coming");
    }

    /// What the broker does when capacity appears: blocked evaluations run.
    pub fn unblock(&self) -> Vec<Evaluation> {
        let state = self.state();
        let blocked: Vec<Arc<Evaluation>> = state
            .evals()
            .filter(|e| e.status == EvalStatus::Blocked)
            .cloned()
            .collect();
        let mut done = Vec::new();
        for eval in blocked {
            done.extend(
                process_eval(&self.store, &self.scheduler, &eval, &[], 1, self.now(), 5).unwrap(),
            );
        }
        done.extend(self.run());
        done
    }

    /// The job's allocations that hold resources.
    pub fn live(&self, job: &str) -> Vec<Arc<Allocation>> {
        self.state()
            .allocs_of_job(job)
            .filter(|a| a.holds_resources())
            .cloned()
            .collect()
    }

    /// What an agent reports of `alloc`.
    pub fn report(&self, alloc: &str, status: ClientStatus) {
        self.store
            .apply(Op::UpdateAllocs {
                updates: vec![AllocUpdate {
                    alloc_id: alloc.into(),
                    client_status: status,
                    description: String::new(),
                    task_states: None,
                }],
                now_ms: self.now(),
            })
            .unwrap();
    }
}

/// A ready node with the exec driver, `cpu` MHz, `memory` MiB, 10 GB of
/// disk and the given attributes.
pub fn node(id: &str, cpu: u32, memory: u64, attrs: &[(&str, &str)]) -> Node {
    let attrs: BTreeMap<String, String> = attrs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    serde_json::from_value(json!({
        "id": id, "name": id, "resources": {"cpu": cpu, "memory": memory, "disk": 10000},
        "attributes": attrs, "drivers": {"exec": {"detected": true, "healthy": true}},
        "status": "ready",
    }))
    .unwrap()
}

/// A job `web` of one group `g` (count 1) of one exec task asking
/// 500 MHz and 256 MiB, with `value` merged over it.
pub fn job(value: serde_json::Value) -> Job {
    let mut base = json!({
        "id": "web",
        "group": [{"name": "g", "count": 1,
                   "task": [{"name": "t", "driver": "exec",
                             "resources": {"cpu": 500, "memory": 256}}]}],
    });
    merge(&mut base, value);
    serde_json::from_value(base).unwrap()
}

/// Merges `from` into `into`: objects key by key, arrays of the same
/// length item by item, anything else replaced.
pub fn merge(into: &mut serde_json::Value, from: serde_json::Value) {
    match (into, from) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (serde_json::Value::Array(a), serde_json::Value::Array(b)) if a.len() == b.len() => {
            for (x, y) in a.iter_mut().zip(b) {
                merge(x, y);
            }
        }
        (slot, v) => *slot = v,
    }
}

/// The override of [`job`] that sets its group's count.
pub fn count(n: u32) -> serde_json::Value {
    json!({"group": [{"count": n}]})
}
