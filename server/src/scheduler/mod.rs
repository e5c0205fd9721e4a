//! The scheduler, read like Nomad's, one stage per module:
//!
//! 1. `reconcile`: what the job wants against what exists — slots to place,
//!    allocations to stop, replace or update in place;
//! 2. `feasible`: the checks that say whether a node can take a slot at
//!    all (constraints, drivers, distinct hosts), each failure a reason;
//! 3. `sample`: the limit — walk the nodes from a rotating start, apply the
//!    feasibility checks and the room check to each as it comes, and keep
//!    enough that pass (Nomad's limit iterator, Kubernetes'
//!    percentageOfNodesToScore);
//! 4. `score`: the one batched call into the scorer component for every
//!    candidate (better than Nomad's per-node iterators: one host→guest
//!    call per placement), its request carrying the attributes the
//!    preferences read (`adjust` builds it);
//! 5. `adjust`: the host's affinity and spread preferences on top;
//! 6. `select`: the best final score wins;
//!
//! `place` runs stages 2–6 for each slot and records a decision; `worker`
//! takes evaluations from the broker and hands plans to the applier;
//! `why_not` says afterwards what became of one node (`--why-not`), with
//! the checks `sample` applies, so placing pays nothing for it.
//!
//! A [`Scheduler`] is a scorer and a sampling setting; [`Scheduler::compute`]
//! turns one evaluation and one snapshot into a [`Plan`] (what to place,
//! stop and update) and the evaluation's outcome. It never writes: the plan
//! goes to the plan applier, which re-checks it against the latest state.

mod adjust;
pub mod compare;
pub(crate) mod feasible;
mod place;
mod reconcile;
pub mod replay;
pub(crate) mod sample;
pub(crate) mod score;
mod select;
pub mod shadow;
mod why_not;
mod worker;

pub use feasible::{DistinctHosts, Feasibility};
pub use sample::Sampling;
pub use shadow::{LaneStats, Placing, ShadowSpec, Shadows};

pub use score::{Component, Native, ScoreError, Scorer, request_of, to_sdk};
pub use why_not::alloc_why_not;
pub use worker::{ProcessError, Worker, WorkerOptions, process_eval};

use crate::metrics::{Metrics, Role, Tally};
use crate::{Plan, PlanResult, State};
use orch_model::{AllocMetric, Evaluation, Job, TriggeredBy};
use orch_wire::{GroupPlan, PlannedPlacement};
use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
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
    /// For each of the plan's decisions, who of the job's chain answered
    /// (0: the policy placing it): counted once the plan is committed.
    pub answered_by: Vec<usize>,
    /// When a failed allocation waiting out its reschedule delay may be
    /// replaced (ms since the epoch): the job needs an evaluation then.
    pub followup_at: Option<u64>,
}

/// The scorers and sampling every worker uses: the primary, the fallback,
/// split candidates that place a share of the jobs, and the shadow
/// candidates the decisions are offered to once committed.
pub struct Scheduler {
    scorer: Arc<dyn Scorer>,
    /// The primary's name in the scheduler settings.
    name: String,
    /// Scores a placement the scorer failed on (the failure policy
    /// `fallback`); without one the placement fails (`fail_closed`).
    fallback: Option<Arc<dyn Scorer>>,
    fallback_name: String,
    sampling: Sampling,
    /// Placements made so far: each placement's number (see
    /// [`orch_model::Decision::placement`]); shared by the schedulers that
    /// replace this one, so numbers do not start over at a change.
    placements: Arc<AtomicU64>,
    splits: Vec<Split>,
    shadows: Option<Arc<Shadows>>,
    /// The primary's counters, and the fallback's.
    tally: Tally,
    fallback_tally: Tally,
}

/// A split candidate: places the jobs its globs match whose bucket, drawn
/// with its name ([`orch_model::bucket`]), is below its weight.
pub struct Split {
    pub name: String,
    pub scorer: Arc<dyn Scorer>,
    pub candidate: orch_model::Candidate,
    /// Its counters ([`Scheduler::with_metrics`] resolves them).
    pub tally: Tally,
}

impl Scheduler {
    pub fn new(scorer: Arc<dyn Scorer>, sampling: Sampling) -> Self {
        Self {
            scorer,
            name: "primary".to_owned(),
            fallback: None,
            fallback_name: "fallback".to_owned(),
            sampling,
            placements: Arc::new(AtomicU64::new(0)),
            splits: Vec::new(),
            shadows: None,
            tally: Tally::detached(),
            fallback_tally: Tally::detached(),
        }
    }

    /// Counts each scorer's calls and placements in `metrics`, under its
    /// name and role as set so far: call it last. Without it they are
    /// counted where nothing shows them.
    #[must_use]
    pub fn with_metrics(mut self, metrics: &Metrics) -> Self {
        self.tally = metrics.tally(&self.name, Role::Primary);
        if self.fallback.is_some() {
            self.fallback_tally = metrics.tally(&self.fallback_name, Role::Fallback);
        }
        for split in &mut self.splits {
            split.tally = metrics.tally(&split.name, Role::Split);
        }
        self
    }

    /// The primary's name in the settings (`primary` unless named).
    #[must_use]
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Numbers placements on from `counter` (the scheduler this one
    /// replaces).
    #[must_use]
    pub fn with_counter(mut self, counter: Arc<AtomicU64>) -> Self {
        self.placements = counter;
        self
    }

    /// Split candidates, placing their share of the jobs for real.
    #[must_use]
    pub fn with_splits(mut self, splits: Vec<Split>) -> Self {
        self.splits = splits;
        self
    }

    /// The shadow lanes committed decisions are offered to.
    #[must_use]
    pub fn with_shadows(mut self, shadows: Arc<Shadows>) -> Self {
        self.shadows = Some(shadows);
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn splits(&self) -> &[Split] {
        &self.splits
    }

    pub fn shadows(&self) -> Option<&Arc<Shadows>> {
        self.shadows.as_ref()
    }

    /// The split that places `job_id`, if one does: the first by name
    /// whose draw takes it (each split draws with its own name, so one
    /// split's change never moves another's jobs; a job two splits both
    /// draw goes to the first).
    pub fn split_for(&self, job_id: &str) -> Option<&Split> {
        self.splits.iter().find(|s| {
            s.candidate.covers(job_id) && orch_model::bucket(&s.name, job_id) < s.candidate.weight()
        })
    }

    /// Who scores `job_id`'s placements, in order: its split or the
    /// primary, then the primary behind a split, then the fallback.
    fn chain(&self, job_id: &str) -> (Vec<score::Named<'_>>, bool) {
        let mut chain = Vec::with_capacity(3);
        let split = self.split_for(job_id);
        if let Some(s) = split {
            chain.push(score::Named {
                name: &s.name,
                scorer: s.scorer.as_ref(),
                tally: &s.tally,
            });
        }
        chain.push(score::Named {
            name: &self.name,
            scorer: self.scorer.as_ref(),
            tally: &self.tally,
        });
        if let Some(f) = &self.fallback {
            chain.push(score::Named {
                name: &self.fallback_name,
                scorer: f.as_ref(),
                tally: &self.fallback_tally,
            });
        }
        (chain, split.is_some())
    }

    /// Counts the placements of `job_id` that `result` committed:
    /// `answered` has each decision's allocation and who of the job's
    /// chain answered it. A decision for whoever answered, and a fallback
    /// for the policy when that was someone else.
    pub(crate) fn count_committed(
        &self,
        job_id: &str,
        answered: &[(String, usize)],
        result: &PlanResult,
    ) {
        let (chain, _) = self.chain(job_id);
        // Only a partial plan leaves some of them out.
        let placed: Option<std::collections::HashSet<&str>> = result
            .is_partial()
            .then(|| result.placed.iter().map(String::as_str).collect());
        for (alloc_id, at) in answered {
            if placed
                .as_ref()
                .is_some_and(|p| !p.contains(alloc_id.as_str()))
            {
                continue;
            }
            if let Some(who) = chain.get(*at) {
                who.tally.decided();
            }
            if *at > 0
                && let Some(policy) = chain.first()
            {
                policy.tally.fell_back();
            }
        }
    }

    /// Scores with `fallback` whatever the scorer fails on.
    #[must_use]
    pub fn with_fallback(mut self, fallback: Arc<dyn Scorer>) -> Self {
        self.fallback = Some(fallback);
        self
    }

    /// The fallback's name in decision records (`fallback` unless named).
    #[must_use]
    pub fn fallback_named(mut self, name: impl Into<String>) -> Self {
        self.fallback_name = name.into();
        self
    }

    pub fn fallback(&self) -> Option<&Arc<dyn Scorer>> {
        self.fallback.as_ref()
    }

    /// The fallback's name in decision records, when there is one.
    pub fn fallback_name(&self) -> Option<&str> {
        self.fallback.as_ref().map(|_| self.fallback_name.as_str())
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
        let job = state.job(&eval.job_id).map(Arc::as_ref);
        let nodes = state.schedulable_nodes();
        let node_of = |id: &str| state.node(id).cloned();
        let reconciled = reconcile::reconcile(
            job,
            state.allocs_of_job(&eval.job_id),
            nodes,
            &node_of,
            now_ms,
        )
        .map_err(|detail| SchedError::Job {
            job: eval.job_id.clone(),
            detail,
        })?;
        let mut plan = Plan {
            eval_id: eval.id.clone(),
            job_id: eval.job_id.clone(),
            priority: job.map_or(eval.priority, |j| j.priority),
            snapshot_index: state.index(),
            ..Plan::default()
        };
        for alloc in reconciled.update {
            plan.placements
                .entry(alloc.node_id.clone())
                .or_default()
                .push(alloc);
        }
        let mut computed = Computed {
            plan,
            groups: Vec::new(),
            failed_tg_allocs: BTreeMap::new(),
            queued: BTreeMap::new(),
            answered_by: Vec::new(),
            followup_at: reconciled.followup_at,
        };
        if let Some(job) = job.filter(|j| !j.stop) {
            let (chain, split) = self.chain(&job.id);
            let placer = place::Placer {
                state,
                job,
                eval,
                chain,
                split,
                sampling: self.sampling,
                counter: &self.placements,
                now_ms,
            };
            let placed = placer.place(reconciled.place, &reconciled.stop)?;
            for alloc in placed.allocs {
                computed
                    .plan
                    .placements
                    .entry(alloc.node_id.clone())
                    .or_default()
                    .push(alloc);
            }
            computed.plan.decisions = placed.decisions;
            computed.answered_by = placed.answered_by;
            computed.plan.stops.extend(placed.stops);
            computed.failed_tg_allocs = placed.failed;
            computed.queued = placed.queued;
        }
        computed.plan.stops.splice(0..0, reconciled.stop);
        computed.groups = reconciled.groups.into_values().collect();
        // In the job's order; groups it no longer has last.
        let position = |name: &str| {
            job.and_then(|j| j.groups.iter().position(|g| g.name == name))
                .unwrap_or(usize::MAX)
        };
        computed.groups.sort_by_key(|g| position(&g.name));
        Ok(computed)
    }

    /// What registering `job` would do in `state`, without writing anything
    /// (`orch job plan`).
    pub fn dry_run(&self, state: &State, job: &Job, now_ms: u64) -> Result<DryRun, SchedError> {
        let mut job = job.clone();
        if let Some(current) = state.job(&job.id) {
            job.version = if current.same_spec(&job) && !current.stop {
                current.version
            } else {
                current.version + 1
            };
        }
        let eval = Evaluation::pending("dry-run".into(), &job, TriggeredBy::JobRegister, now_ms);
        let hypothetical = state.with_job(job);
        let computed = self.compute(&hypothetical, &eval, now_ms)?;
        let decisions: BTreeMap<&str, &orch_model::Decision> = computed
            .plan
            .decisions
            .iter()
            .map(|d| (d.alloc_id.as_str(), d))
            .collect();
        let placements = computed
            .plan
            .placements
            .values()
            .flatten()
            .filter_map(|alloc| {
                let decision = decisions.get(alloc.id.as_str())?;
                Some(PlannedPlacement {
                    name: alloc.name.clone(),
                    node_id: alloc.node_id.clone(),
                    node_name: state
                        .node(&alloc.node_id)
                        .map_or_else(String::new, |n| n.name.clone()),
                    score: decision.final_score(decision.pick as usize).unwrap_or(0.0),
                })
            })
            .collect();
        Ok(DryRun {
            groups: computed.groups,
            placements,
            failed_tg_allocs: computed.failed_tg_allocs,
            plan: computed.plan,
        })
    }
}

/// `orch job plan`'s scheduler part.
#[derive(Debug, Clone)]
pub struct DryRun {
    pub groups: Vec<GroupPlan>,
    pub placements: Vec<PlannedPlacement>,
    pub failed_tg_allocs: BTreeMap<String, AllocMetric>,
    /// The plan itself, decisions in placement order: what
    /// [`DryRun::why_not`] reads.
    pub plan: Plan,
}

/// The scheduler in use, shared by the workers and the API; replaced whole
/// when the config is reloaded, so a worker finishes an evaluation with the
/// scheduler it started it with.
#[derive(Clone)]
pub struct Current(Arc<RwLock<Arc<Scheduler>>>);

impl From<Scheduler> for Current {
    fn from(scheduler: Scheduler) -> Self {
        Self::new(scheduler)
    }
}

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
