//! Scheduler workers: take an evaluation from the broker, compute its plan
//! on the latest snapshot, hand the plan to the applier, and retry what the
//! applier refused on a fresher snapshot. The evaluation's outcome is
//! written in the same commit as the plan that completes it.

use super::{Current, SchedError, Scheduler};
use crate::broker::{Broker, Lease};
use crate::{Op, Outcome, Store, StoreError, pack_plan};
use orch_model::now_ms;
use orch_model::{EvalStatus, Evaluation, TriggeredBy};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Fresh snapshots tried when the applier refuses part of a plan.
    pub plan_retries: u32,
    /// How long a worker waits on the broker before checking for a stop.
    pub poll: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            plan_retries: 5,
            poll: Duration::from_millis(250),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error(transparent)]
    Sched(#[from] SchedError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the plan applier refused placements {retries} times in a row ({rejected})")]
    Refused { retries: u32, rejected: String },
}

impl ProcessError {
    /// Whether another attempt could succeed.
    fn is_permanent(&self) -> bool {
        matches!(self, ProcessError::Sched(SchedError::Job { .. }))
    }
}

/// Processes `eval` to the end on the latest state: the plan and the
/// evaluation's outcome are committed together, with the `superseded`
/// evaluations of the same job (folded into this one by the broker)
/// canceled. Returns the evaluation as written, or `None` when it was
/// already finished (a redelivery).
pub fn process_eval(
    store: &Store,
    scheduler: &Scheduler,
    eval: &Evaluation,
    superseded: &[Arc<Evaluation>],
    attempt: u32,
    now_ms: u64,
    retries: u32,
) -> Result<Option<Evaluation>, ProcessError> {
    // Shadow lanes wait while the primary places (unless they fall behind).
    let _placing = scheduler.shadows().map(|s| s.primary_busy());
    let mut state = store.snapshot();
    if state.eval(&eval.id).is_some_and(|e| e.status.is_terminal()) {
        if superseded.is_empty() {
            return Ok(None);
        }
        store.apply(Op::UpsertEvals(canceled(&state, superseded, &eval.id)))?;
        return Ok(None);
    }
    let mut rejected = BTreeMap::new();
    for _ in 0..=retries {
        let computed = scheduler.compute(&state, eval, now_ms)?;
        let mut done = eval.clone();
        done.status = EvalStatus::Complete;
        done.status_description = String::new();
        done.attempts = attempt;
        done.queued_allocations = computed.queued.clone();
        done.failed_tg_allocs = computed.failed_tg_allocs.clone();
        done.blocked_eval = None;
        let mut evals = Vec::new();
        // One blocked evaluation per job: this one's replaces the others.
        for other in state.evals_of_job(&eval.job_id) {
            if other.status == EvalStatus::Blocked && other.id != eval.id {
                let mut canceled = (**other).clone();
                canceled.status = EvalStatus::Canceled;
                canceled.status_description = format!("superseded by evaluation {}", eval.id);
                evals.push(canceled);
            }
        }
        if let Some(at) = computed.followup_at {
            // One follow-up is enough: an earlier one will make the next.
            let waiting = state.evals_of_job(&eval.job_id).any(|e| {
                e.id != eval.id
                    && e.status == EvalStatus::Pending
                    && e.wait_until_ms.is_some_and(|t| t <= at)
            });
            if !waiting {
                evals.push(followup_eval(
                    eval,
                    at,
                    now_ms,
                    TriggeredBy::AllocFailure,
                    "waiting out a reschedule delay",
                ));
            }
        }
        if !computed.failed_tg_allocs.is_empty() {
            if eval.status == EvalStatus::Blocked {
                // Woken and still short of room: it goes back to waiting,
                // rather than leaving a new blocked evaluation behind at
                // every change of capacity.
                done.status = EvalStatus::Blocked;
                done.status_description = "waiting for capacity".into();
                done.snapshot_index = state.index();
            } else {
                let mut blocked = blocked_eval(eval, now_ms);
                blocked.snapshot_index = state.index();
                // It waits on these failures, and says so (`orch eval
                // status` of it), as Nomad's blocked evaluations do.
                blocked.failed_tg_allocs = computed.failed_tg_allocs.clone();
                blocked.queued_allocations = computed.queued.clone();
                done.blocked_eval = Some(blocked.id.clone());
                evals.push(blocked);
            }
        }
        evals.insert(0, done.clone());
        evals.extend(canceled(&state, superseded, &eval.id));
        let mut plan = computed.plan;
        if plan.is_empty() {
            store.apply(Op::UpsertEvals(evals))?;
            return Ok(Some(done));
        }
        plan.evals = evals;
        // Packed here, beside the other workers, not in the store's single
        // writer that every plan waits on.
        plan.records = pack_plan(&plan.decisions)?;
        let decisions = std::mem::take(&mut plan.decisions);
        // Who answered each placement: counted once it is committed.
        let answered: Vec<(String, usize)> = decisions
            .iter()
            .zip(computed.answered_by)
            .map(|(d, at)| (d.alloc_id.clone(), at))
            .collect();
        let outcome = store.apply(Op::ApplyPlan(plan))?;
        if let Outcome::Plan(result) = &outcome {
            scheduler.count_committed(&eval.job_id, &answered, result);
            // Shadow candidates see what was committed, once it is.
            if let Some(shadows) = scheduler.shadows().filter(|s| s.covers(&eval.job_id)) {
                shadows.offer(decisions, &result.placed);
            }
        }
        match outcome {
            Outcome::Plan(result) if result.is_partial() => {
                rejected = result.rejected;
                state = store.snapshot();
            }
            _ => return Ok(Some(done)),
        }
    }
    Err(ProcessError::Refused {
        retries,
        rejected: rejected
            .iter()
            .map(|(node, why)| format!("{node}: {why}"))
            .collect::<Vec<_>>()
            .join("; "),
    })
}

/// The folded evaluations that are still open, canceled in favour of `by`.
fn canceled(state: &crate::State, superseded: &[Arc<Evaluation>], by: &str) -> Vec<Evaluation> {
    superseded
        .iter()
        .filter(|e| {
            state
                .eval(&e.id)
                .is_none_or(|current| !current.status.is_terminal())
        })
        .map(|e| {
            let mut e = (**e).clone();
            e.status = EvalStatus::Canceled;
            e.status_description = format!("superseded by evaluation {by}");
            e
        })
        .collect()
}

/// What waits for capacity on behalf of `eval`'s unplaced allocations.
fn blocked_eval(eval: &Evaluation, now_ms: u64) -> Evaluation {
    Evaluation {
        status: EvalStatus::Blocked,
        status_description: "waiting for capacity".into(),
        ..eval.follow_up(
            uuid::Uuid::new_v4().to_string(),
            TriggeredBy::QueuedAllocs,
            now_ms,
        )
    }
}

/// How long after an evaluation failed its job is evaluated again.
const FAILED_RETRY_MS: u64 = 60_000;

/// What runs `eval`'s job again at `at_ms`: after a reschedule delay, or
/// after a failed evaluation.
fn followup_eval(
    eval: &Evaluation,
    at_ms: u64,
    now_ms: u64,
    triggered_by: TriggeredBy,
    why: &str,
) -> Evaluation {
    Evaluation {
        status_description: why.to_owned(),
        wait_until_ms: Some(at_ms),
        ..eval.follow_up(uuid::Uuid::new_v4().to_string(), triggered_by, now_ms)
    }
}

/// A scheduler worker thread's loop.
pub struct Worker {
    pub store: Store,
    pub broker: Arc<Broker>,
    pub scheduler: Current,
    pub options: WorkerOptions,
}

impl Worker {
    /// Starts the worker on its own thread; it stops when `stop` is set.
    pub fn spawn(
        self,
        name: String,
        stop: Arc<AtomicBool>,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new()
            .name(name)
            .spawn(move || self.run(&stop))
    }

    fn run(&self, stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) {
            if let Some(lease) = self.broker.dequeue_wait(self.options.poll) {
                self.handle(lease);
            }
        }
    }

    fn handle(&self, lease: Lease) {
        let scheduler = self.scheduler.get();
        let eval = &lease.eval;
        match process_eval(
            &self.store,
            &scheduler,
            eval,
            &lease.superseded,
            lease.attempt,
            now_ms(),
            self.options.plan_retries,
        ) {
            Ok(_) => self.ack(&lease),
            Err(e) if e.is_permanent() || lease.last_attempt => {
                tracing::error!(
                    "evaluation {} of job {}: failed after {} attempts: {e}",
                    eval.id,
                    eval.job_id,
                    lease.attempt
                );
                let mut failed = (**eval).clone();
                failed.status = EvalStatus::Failed;
                failed.status_description = e.to_string();
                failed.attempts = lease.attempt;
                let mut evals = vec![failed];
                // What they asked for is covered by the follow-up below, or
                // by the job's next change.
                evals.extend(canceled(
                    &self.store.snapshot(),
                    &lease.superseded,
                    &eval.id,
                ));
                // A failure that may pass (a store error, a plan refused
                // again and again) must not leave the job unscheduled:
                // another evaluation looks again later, as Nomad's failed
                // evaluation reaper does. A job that cannot be scheduled as
                // written waits for its next change instead.
                if !e.is_permanent() {
                    let now = now_ms();
                    evals.push(followup_eval(
                        eval,
                        now.saturating_add(FAILED_RETRY_MS),
                        now,
                        TriggeredBy::Retry,
                        "a retry of a failed evaluation",
                    ));
                }
                match self.store.apply(Op::UpsertEvals(evals)) {
                    Ok(_) => self.ack(&lease),
                    Err(e) => {
                        tracing::error!("evaluation {}: cannot record its failure: {e}", eval.id);
                        self.nack(&lease);
                    }
                }
            }
            Err(e) => {
                tracing::warn!(
                    "evaluation {} of job {}: attempt {} failed, will retry: {e}",
                    eval.id,
                    eval.job_id,
                    lease.attempt
                );
                self.nack(&lease);
            }
        }
    }

    fn ack(&self, lease: &Lease) {
        if let Err(e) = self.broker.ack(&lease.eval.id, lease.token) {
            tracing::warn!("{e}");
        }
    }

    fn nack(&self, lease: &Lease) {
        if let Err(e) = self
            .broker
            .nack(&lease.eval.id, lease.token, Instant::now())
        {
            tracing::warn!("{e}");
        }
    }
}
