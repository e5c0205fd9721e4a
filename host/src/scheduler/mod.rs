//! The scheduler, read like Nomad's: reconcile → feasibility → sample →
//! one scorer call → pick → plan.
//!
//! A [`Scheduler`] is a scorer and a sampling setting; it turns one
//! evaluation and one snapshot into a [`Plan`] (what to place, stop and
//! update) and the evaluation's outcome. It never writes: the plan goes to
//! the store's writer, which re-checks it against the latest state.

pub mod feasible;
pub mod sample;
pub mod score;

use crate::{Plan, State};
use orch_model::{AllocMetric, Evaluation, GroupPlan, Job, PlannedPlacement};
use sample::Sampling;
use score::Scorer;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchedError {
    /// The job cannot be scheduled as written (a constraint that does not
    /// compile); retrying will not help.
    #[error("job {job}: {detail}")]
    Job { job: String, detail: String },
    /// The scorer failed; the evaluation is retried.
    #[error("scorer {scorer}: {detail}")]
    Scorer { scorer: String, detail: String },
}

/// What one evaluation came to.
#[derive(Debug, Clone)]
pub struct Computed {
    pub plan: Plan,
    /// Per group: placed, stopped, replaced, updated in place, left alone.
    pub groups: Vec<GroupPlan>,
    /// Per group, why some allocations could not be placed.
    pub failed_tg_allocs: BTreeMap<String, AllocMetric>,
    /// Per group, allocations that could not be placed now.
    pub queued: BTreeMap<String, u64>,
}

/// The scorer and sampling every worker uses.
pub struct Scheduler {
    scorer: Arc<dyn Scorer>,
    sampling: Sampling,
}

impl Scheduler {
    pub fn new(scorer: Arc<dyn Scorer>, sampling: Sampling) -> Self {
        Self { scorer, sampling }
    }

    pub fn scorer(&self) -> &Arc<dyn Scorer> {
        &self.scorer
    }

    pub fn sampling(&self) -> Sampling {
        self.sampling
    }

    /// Reconciles `eval`'s job in `state` and places what is missing.
    pub fn compute(
        &self,
        state: &State,
        eval: &Evaluation,
        now_ms: u64,
    ) -> Result<Computed, SchedError> {
        let _ = (state, eval, now_ms);
        Err(SchedError::Job {
            job: eval.job_id.clone(),
            detail: "the scheduler is not built yet".into(),
        })
    }

    /// What registering `job` would do in `state`, without writing anything
    /// (`orch job plan`).
    pub fn dry_run(&self, state: &State, job: &Job, now_ms: u64) -> Result<DryRun, SchedError> {
        let _ = (state, now_ms);
        Err(SchedError::Job {
            job: job.id.clone(),
            detail: "the scheduler is not built yet".into(),
        })
    }
}

/// `orch job plan`'s scheduler part.
#[derive(Debug, Clone)]
pub struct DryRun {
    pub groups: Vec<GroupPlan>,
    pub placements: Vec<PlannedPlacement>,
    pub failed_tg_allocs: BTreeMap<String, AllocMetric>,
}

/// The scheduler in use, shared by the workers and the API; replaced whole
/// when the config is reloaded, so a worker finishes an evaluation with the
/// scheduler it started it with.
#[derive(Clone)]
pub struct Current(Arc<RwLock<Arc<Scheduler>>>);

impl Current {
    pub fn new(scheduler: Scheduler) -> Self {
        Self(Arc::new(RwLock::new(Arc::new(scheduler))))
    }

    pub fn get(&self) -> Arc<Scheduler> {
        match self.0.read() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub fn set(&self, scheduler: Scheduler) {
        let scheduler = Arc::new(scheduler);
        match self.0.write() {
            Ok(mut s) => *s = scheduler,
            Err(p) => *p.into_inner() = scheduler,
        }
    }
}
