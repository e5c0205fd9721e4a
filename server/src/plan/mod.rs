//! Plans: what a scheduler worker proposes for one evaluation. Only the
//! plan applier turns a plan into state, after checking every node against
//! the latest state (optimistic concurrency, as in Omega and Nomad): its
//! judgement is [`evaluate`] (`apply.rs`), run by the store's single writer,
//! which commits what it accepts.

mod apply;

pub(crate) use apply::{evaluate, placed, stopped};

use orch_model::{Allocation, ClientStatus, Decision, DesiredStatus, Evaluation};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub eval_id: String,
    pub job_id: String,
    pub priority: u8,
    /// The index of the snapshot the plan was made on.
    pub snapshot_index: u64,
    /// New allocations (and in-place updates of existing ones), by node.
    pub placements: BTreeMap<String, Vec<Allocation>>,
    /// Allocations to stop.
    pub stops: Vec<AllocStop>,
    /// One per new placement.
    pub decisions: Vec<Decision>,
    /// The same, packed for the store by the worker that made them (the
    /// store packs what is left in `decisions`).
    pub records: Vec<crate::PackedDecision>,
    /// Commit all of it or none of it.
    pub all_at_once: bool,
    /// Evaluations to write in the same commit when the whole plan is
    /// accepted: the finished evaluation and any blocked one it leaves.
    /// When part of the plan is refused they are not written; the worker
    /// retries on a fresh snapshot and sends them again.
    pub evals: Vec<Evaluation>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllocStop {
    pub alloc_id: String,
    pub desired: DesiredStatus,
    pub description: String,
    /// Set when the server knows the outcome, e.g. `lost` for an allocation
    /// on a node that went down.
    pub client_status: Option<ClientStatus>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.placements.values().all(Vec::is_empty) && self.stops.is_empty()
    }

    pub fn placement_count(&self) -> usize {
        self.placements.values().map(Vec::len).sum()
    }
}

/// What the applier did with a plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanResult {
    /// The index of the commit; 0 when nothing was committed.
    pub index: u64,
    /// Allocations committed, by id.
    pub placed: Vec<String>,
    pub stopped: usize,
    /// The plan's evaluations written (all of them, or none when part of
    /// the plan was refused).
    pub evals_written: usize,
    /// Nodes whose placements did not fit the latest state, with why.
    pub rejected: BTreeMap<String, String>,
}

impl PlanResult {
    /// Whether some of the plan was refused: the worker retries what is left
    /// on a snapshot at least as new as `index`.
    pub fn is_partial(&self) -> bool {
        !self.rejected.is_empty()
    }
}
