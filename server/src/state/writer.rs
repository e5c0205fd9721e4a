//! The single writer: applies ops to a working copy of the state and to
//! one SQLite transaction per batch, then publishes.

use super::memory::State;
use super::sql;
use super::{CommitListener, PackedDecision, Refusal, StoreError};
use crate::metrics::{COMMIT, Histogram, OPS};
use crate::plan::{Plan, PlanResult};
use orch_model::{
    Allocation, ClientStatus, DesiredStatus, Eligibility, EvalStatus, Evaluation, Job, JobType,
    Node, NodeStatus, TaskState, TriggeredBy,
};
use rusqlite::{Connection, Transaction};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, mpsc};
use std::time::Instant;
use tokio::sync::{oneshot, watch};

/// A change to the state.
#[derive(Debug, Clone)]
pub enum Op {
    /// Registers a node or updates what its agent reports. The server's own
    /// fields (eligibility, drain, indexes) of a known node are kept.
    UpsertNode(Node),
    /// Many nodes at once (simulated clusters, tests).
    UpsertNodes(Vec<Node>),
    UpdateNode {
        node_id: String,
        change: NodeChange,
    },
    /// Registers a new job or a new version of one, with its evaluation.
    RegisterJob {
        job: Job,
        /// Refuse unless the job's modify index is this (0: must not exist).
        enforce_index: Option<u64>,
        now_ms: u64,
    },
    StopJob {
        job_id: String,
        now_ms: u64,
    },
    UpsertEvals(Vec<Evaluation>),
    /// What agents report of their allocations.
    UpdateAllocs {
        updates: Vec<AllocUpdate>,
        now_ms: u64,
    },
    ApplyPlan(Plan),
    /// Replaces the scheduler settings set at run time; entries stamped
    /// with index 0 get this commit's index.
    SetScheduler(orch_model::SchedulerOverrides),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeChange {
    Status {
        status: NodeStatus,
        description: String,
    },
    Eligibility(Eligibility),
    Drain(bool),
}

/// What an agent reports of one allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllocUpdate {
    pub alloc_id: String,
    pub client_status: ClientStatus,
    pub description: String,
    /// Every task's state, when the agent sends them; `None` keeps those
    /// the server has.
    pub task_states: Option<BTreeMap<String, TaskState>>,
}

/// What an op did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The index of the commit, and evaluations the op created.
    Applied {
        index: u64,
        evals: Vec<String>,
    },
    JobRegistered {
        index: u64,
        /// `None` when the job was unchanged and nothing was written.
        eval_id: Option<String>,
        version: u64,
        modify_index: u64,
    },
    Plan(PlanResult),
}

impl Outcome {
    pub fn index(&self) -> u64 {
        match self {
            Outcome::Applied { index, .. } | Outcome::JobRegistered { index, .. } => *index,
            Outcome::Plan(result) => result.index,
        }
    }
}

/// What a commit means for the evaluation broker.
#[derive(Debug, Default, Clone)]
pub struct CommitEvents {
    pub index: u64,
    /// Evaluations written as pending or blocked in this commit.
    pub evals: Vec<Arc<Evaluation>>,
    /// Capacity appeared: a node became schedulable or allocations let go
    /// of resources. Blocked evaluations may now fit.
    pub capacity_freed: bool,
}

pub(super) struct Request {
    pub op: Op,
    pub reply: oneshot::Sender<Result<Outcome, StoreError>>,
}

/// What the writer counts as it goes, for `/v1/metrics`: its queue, and
/// each commit's time and size.
#[derive(Debug)]
pub struct WriterStats {
    queued_ops: AtomicUsize,
    queued_plans: AtomicUsize,
    pub(crate) commits: Histogram,
    pub(crate) ops: Histogram,
}

impl Default for WriterStats {
    fn default() -> Self {
        Self {
            queued_ops: AtomicUsize::new(0),
            queued_plans: AtomicUsize::new(0),
            commits: Histogram::new(COMMIT),
            ops: Histogram::new(OPS),
        }
    }
}

impl WriterStats {
    /// Ops sent and not yet taken into a commit.
    pub fn queued_ops(&self) -> usize {
        self.queued_ops.load(Ordering::Relaxed)
    }

    /// Of those, plans (the plan applier's queue).
    pub fn queued_plans(&self) -> usize {
        self.queued_plans.load(Ordering::Relaxed)
    }

    /// Called before `op` is sent to the writer.
    pub(super) fn sending(&self, op: &Op) {
        self.queued_ops.fetch_add(1, Ordering::Relaxed);
        if matches!(op, Op::ApplyPlan(_)) {
            self.queued_plans.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Called when `op` leaves the queue: taken by the writer, or never
    /// sent after all.
    pub(super) fn taken(&self, op: &Op) {
        self.queued_ops.fetch_sub(1, Ordering::Relaxed);
        if matches!(op, Op::ApplyPlan(_)) {
            self.queued_plans.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

pub(super) struct Shared {
    pub current: Arc<RwLock<Arc<State>>>,
    pub index: watch::Sender<u64>,
    pub listener: Arc<RwLock<Option<CommitListener>>>,
    pub stats: Arc<WriterStats>,
}

pub(super) fn spawn(
    conn: Connection,
    requests: mpsc::Receiver<Request>,
    shared: Shared,
    max_batch: usize,
) -> Result<(), StoreError> {
    std::thread::Builder::new()
        .name("orch-state-writer".into())
        .spawn(move || run(conn, requests, shared, max_batch.max(1)))
        .map(|_| ())
        .map_err(|e| StoreError::Internal(format!("cannot start the state writer: {e}")))
}

fn run(mut conn: Connection, requests: mpsc::Receiver<Request>, shared: Shared, max_batch: usize) {
    while let Ok(first) = requests.recv() {
        shared.stats.taken(&first.op);
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match requests.try_recv() {
                Ok(next) => {
                    shared.stats.taken(&next.op);
                    batch.push(next);
                }
                Err(_) => break,
            }
        }
        commit_batch(&mut conn, batch, &shared);
    }
}

fn commit_batch(conn: &mut Connection, batch: Vec<Request>, shared: &Shared) {
    let started = Instant::now();
    let ops = batch.len() as u64;
    let base = match shared.current.read() {
        Ok(s) => s.clone(),
        Err(p) => p.into_inner().clone(),
    };
    let mut state = (*base).clone();
    let mut events = CommitEvents::default();
    let tx = match conn.transaction() {
        Ok(tx) => tx,
        Err(e) => return fail_all(batch, &StoreError::from(e)),
    };
    let mut answers = Vec::with_capacity(batch.len());
    let mut replies = Vec::with_capacity(batch.len());
    for Request { op, reply } in batch {
        let answer = apply_one(&tx, &mut state, op, &mut events);
        answers.push(answer);
        replies.push(reply);
    }
    let committed = sql::set_index(&tx, state.index).and_then(|()| Ok(tx.commit()?));
    if let Err(e) = committed {
        tracing::error!("state commit failed, {} ops refused: {e}", replies.len());
        let message = e.to_string();
        for reply in replies {
            let _ = reply.send(Err(StoreError::Internal(format!(
                "the change was not saved: {message}"
            ))));
        }
        return;
    }
    shared.stats.commits.observe_duration(started.elapsed());
    shared.stats.ops.observe(ops);
    let index = state.index;
    let state = Arc::new(state);
    match shared.current.write() {
        Ok(mut cur) => *cur = state,
        Err(p) => *p.into_inner() = state,
    }
    shared.index.send_replace(index);
    events.index = index;
    if (!events.evals.is_empty() || events.capacity_freed)
        && let Ok(listener) = shared.listener.read()
        && let Some(listener) = listener.as_ref()
    {
        listener(&events);
    }
    for (reply, answer) in replies.into_iter().zip(answers) {
        let _ = reply.send(answer);
    }
}

fn fail_all(batch: Vec<Request>, e: &StoreError) {
    for request in batch {
        let _ = request.reply.send(Err(StoreError::Internal(format!(
            "the change was not saved: {e}"
        ))));
    }
}

/// Applies one op inside a savepoint, so a refused or failed op leaves
/// neither the transaction nor the working state half-changed.
fn apply_one(
    tx: &Transaction<'_>,
    state: &mut State,
    op: Op,
    events: &mut CommitEvents,
) -> Result<Outcome, StoreError> {
    let before = state.clone();
    let before_events = (events.evals.len(), events.capacity_freed);
    let savepoint = tx.execute_batch("SAVEPOINT op");
    let result = savepoint.map_err(StoreError::from).and_then(|()| {
        let mut w = Writer { tx, state, events };
        w.state.index += 1;
        w.apply(op)
    });
    match result {
        Ok(outcome) => {
            tx.execute_batch("RELEASE op")?;
            Ok(outcome)
        }
        Err(e) => {
            *state = before;
            events.evals.truncate(before_events.0);
            events.capacity_freed = before_events.1;
            tx.execute_batch("ROLLBACK TO op; RELEASE op")?;
            Err(e)
        }
    }
}

struct Writer<'a, 't> {
    tx: &'a Transaction<'t>,
    state: &'a mut State,
    events: &'a mut CommitEvents,
}

impl Writer<'_, '_> {
    fn index(&self) -> u64 {
        self.state.index
    }

    fn apply(&mut self, op: Op) -> Result<Outcome, StoreError> {
        match op {
            Op::UpsertNode(node) => self.upsert_nodes(vec![node]),
            Op::UpsertNodes(nodes) => self.upsert_nodes(nodes),
            Op::UpdateNode { node_id, change } => self.update_node(&node_id, change),
            Op::RegisterJob {
                job,
                enforce_index,
                now_ms,
            } => self.register_job(job, enforce_index, now_ms),
            Op::StopJob { job_id, now_ms } => self.stop_job(&job_id, now_ms),
            Op::UpsertEvals(evals) => {
                for eval in evals {
                    self.put_eval(eval)?;
                }
                Ok(self.applied(vec![]))
            }
            Op::UpdateAllocs { updates, now_ms } => self.update_allocs(updates, now_ms),
            Op::ApplyPlan(plan) => self.apply_plan(plan).map(Outcome::Plan),
            Op::SetScheduler(mut overrides) => {
                let index = self.index();
                let stamp = |i: &mut u64| {
                    if *i == 0 {
                        *i = index;
                    }
                };
                if let Some(p) = &mut overrides.primary {
                    stamp(&mut p.index);
                }
                overrides
                    .scorers
                    .values_mut()
                    .for_each(|s| stamp(&mut s.index));
                overrides
                    .candidates
                    .values_mut()
                    .for_each(|c| stamp(&mut c.index));
                sql::put_scheduler(self.tx, &overrides, index)?;
                self.state.scheduler = Arc::new(overrides);
                Ok(self.applied(vec![]))
            }
        }
    }

    fn applied(&self, evals: Vec<String>) -> Outcome {
        Outcome::Applied {
            index: self.index(),
            evals,
        }
    }

    fn put_eval(&mut self, mut eval: Evaluation) -> Result<(), StoreError> {
        if let Some(old) = self.state.eval(&eval.id) {
            eval.create_index = old.create_index;
        } else {
            eval.create_index = self.index();
        }
        eval.modify_index = self.index();
        sql::put_eval(self.tx, &eval)?;
        if matches!(eval.status, EvalStatus::Pending | EvalStatus::Blocked) {
            self.events.evals.push(Arc::new(eval.clone()));
        }
        self.state.put_eval(eval);
        Ok(())
    }

    /// A new pending evaluation of `job`.
    fn new_eval(
        &mut self,
        job: &Job,
        triggered_by: TriggeredBy,
        node_id: Option<&str>,
        now_ms: u64,
    ) -> Result<String, StoreError> {
        let eval = Evaluation {
            node_id: node_id.map(str::to_owned),
            ..Evaluation::pending(new_id(), job, triggered_by, now_ms)
        };
        let id = eval.id.clone();
        self.put_eval(eval)?;
        Ok(id)
    }

    fn upsert_nodes(&mut self, nodes: Vec<Node>) -> Result<Outcome, StoreError> {
        let mut evals = Vec::new();
        let mut changed = Vec::with_capacity(nodes.len());
        for mut node in nodes {
            if node.id.is_empty() {
                return Err(Refusal::Invalid("a node needs an id".into()).into());
            }
            let was_schedulable = match self.state.node(&node.id) {
                Some(old) => {
                    node.create_index = old.create_index;
                    node.eligibility = old.eligibility;
                    node.drain = old.drain;
                    node.modify_index = old.modify_index;
                    if node == **old {
                        // Nothing new (an agent registering again): no
                        // write, and blocking queries are not woken.
                        continue;
                    }
                    old.schedulable()
                }
                None => {
                    node.create_index = self.index();
                    false
                }
            };
            node.modify_index = self.index();
            sql::put_node(self.tx, &node)?;
            if node.schedulable() && !was_schedulable {
                self.events.capacity_freed = true;
                evals.extend(self.system_job_evals(&node.id)?);
            }
            changed.push(node);
        }
        if changed.is_empty() {
            self.state.index -= 1;
            return Ok(self.applied(evals));
        }
        self.state.put_nodes(changed);
        Ok(self.applied(evals))
    }

    /// A node joined or came back: every system job gets an evaluation.
    fn system_job_evals(&mut self, node_id: &str) -> Result<Vec<String>, StoreError> {
        let jobs: Vec<Arc<Job>> = self
            .state
            .jobs()
            .filter(|j| j.job_type == JobType::System && !j.stop)
            .cloned()
            .collect();
        jobs.iter()
            .map(|job| {
                self.new_eval(
                    job,
                    TriggeredBy::NodeUpdate,
                    Some(node_id),
                    orch_model::now_ms(),
                )
            })
            .collect()
    }

    fn update_node(&mut self, node_id: &str, change: NodeChange) -> Result<Outcome, StoreError> {
        let old = self
            .state
            .node(node_id)
            .cloned()
            .ok_or_else(|| Refusal::NotFound {
                kind: "node",
                id: node_id.to_owned(),
            })?;
        let mut node = (*old).clone();
        let mut trigger = None;
        // The jobs that run here now, before the change ends any of it.
        let running: BTreeSet<String> = self
            .state
            .allocs_on_node(node_id)
            .filter(|a| a.holds_resources())
            .map(|a| a.job_id.clone())
            .collect();
        match change {
            NodeChange::Status {
                status,
                description,
            } => {
                node.status = status;
                node.status_description = description;
                if status == NodeStatus::Down && old.status != NodeStatus::Down {
                    trigger = Some(TriggeredBy::NodeUpdate);
                    self.mark_lost(node_id)?;
                }
            }
            NodeChange::Eligibility(e) => node.eligibility = e,
            NodeChange::Drain(drain) => {
                node.drain = drain;
                if drain {
                    node.eligibility = Eligibility::Ineligible;
                    trigger = Some(TriggeredBy::NodeDrain);
                } else {
                    node.eligibility = Eligibility::Eligible;
                }
            }
        }
        node.modify_index = self.index();
        sql::put_node(self.tx, &node)?;
        let mut evals = Vec::new();
        if node.schedulable() && !old.schedulable() {
            self.events.capacity_freed = true;
            evals.extend(self.system_job_evals(node_id)?);
        }
        self.state.put_node(node);
        if let Some(trigger) = trigger {
            evals.extend(self.evals_for_jobs(running, node_id, trigger)?);
        }
        Ok(self.applied(evals))
    }

    /// The node went down: what ran there is lost.
    fn mark_lost(&mut self, node_id: &str) -> Result<(), StoreError> {
        let live: Vec<Arc<Allocation>> = self
            .state
            .allocs_on_node(node_id)
            .filter(|a| !a.client_status.is_terminal())
            .cloned()
            .collect();
        for alloc in live {
            let mut alloc = (*alloc).clone();
            alloc.client_status = ClientStatus::Lost;
            alloc.client_description = "node is down".into();
            alloc.desired_status = DesiredStatus::Stop;
            alloc.modify_index = self.index();
            sql::put_alloc(self.tx, &alloc)?;
            self.state.put_alloc(alloc);
        }
        Ok(())
    }

    /// One evaluation per job that ran on the node, for what changed there.
    fn evals_for_jobs(
        &mut self,
        job_ids: BTreeSet<String>,
        node_id: &str,
        trigger: TriggeredBy,
    ) -> Result<Vec<String>, StoreError> {
        let mut evals = Vec::new();
        for job_id in job_ids {
            if let Some(job) = self.state.job(&job_id).cloned()
                && !job.stop
            {
                evals.push(self.new_eval(&job, trigger, Some(node_id), orch_model::now_ms())?);
            }
        }
        Ok(evals)
    }

    fn register_job(
        &mut self,
        mut job: Job,
        enforce_index: Option<u64>,
        now_ms: u64,
    ) -> Result<Outcome, StoreError> {
        let old = self.state.job(&job.id).cloned();
        if let Some(expected) = enforce_index {
            let actual = old.as_ref().map_or(0, |j| j.modify_index);
            if actual != expected {
                return Err(Refusal::Conflict(format!(
                    "job {:?} is at modify index {actual}, not {expected}: it changed since you read it; run `orch job plan` again",
                    job.id
                ))
                .into());
            }
        }
        if let Some(old) = &old
            && !old.stop
            && old.same_spec(&job)
        {
            // Nothing to do: no new version, no evaluation, no index raised.
            self.state.index -= 1;
            return Ok(Outcome::JobRegistered {
                index: self.index(),
                eval_id: None,
                version: old.version,
                modify_index: old.modify_index,
            });
        }
        job.stop = false;
        job.version = old.as_ref().map_or(0, |j| j.version + 1);
        job.create_index = old.as_ref().map_or(self.index(), |j| j.create_index);
        job.modify_index = self.index();
        job.submit_time_ms = now_ms;
        sql::put_job(self.tx, &job, true)?;
        let eval_id = self.new_eval(&job, TriggeredBy::JobRegister, None, now_ms)?;
        self.cancel_blocked(&job.id)?;
        let outcome = Outcome::JobRegistered {
            index: self.index(),
            eval_id: Some(eval_id),
            version: job.version,
            modify_index: job.modify_index,
        };
        self.state.put_job(job);
        Ok(outcome)
    }

    /// A newer evaluation supersedes the job's blocked one.
    fn cancel_blocked(&mut self, job_id: &str) -> Result<(), StoreError> {
        let blocked: Vec<Arc<Evaluation>> = self
            .state
            .evals_of_job(job_id)
            .filter(|e| e.status == EvalStatus::Blocked)
            .cloned()
            .collect();
        for eval in blocked {
            let mut eval = (*eval).clone();
            eval.status = EvalStatus::Canceled;
            eval.status_description = "superseded by a newer evaluation".into();
            self.put_eval(eval)?;
        }
        Ok(())
    }

    fn stop_job(&mut self, job_id: &str, now_ms: u64) -> Result<Outcome, StoreError> {
        let old = self
            .state
            .job(job_id)
            .cloned()
            .ok_or_else(|| Refusal::NotFound {
                kind: "job",
                id: job_id.to_owned(),
            })?;
        let mut job = (*old).clone();
        job.stop = true;
        job.modify_index = self.index();
        sql::put_job(self.tx, &job, false)?;
        let eval_id = self.new_eval(&job, TriggeredBy::JobDeregister, None, now_ms)?;
        self.cancel_blocked(job_id)?;
        self.state.put_job(job);
        Ok(self.applied(vec![eval_id]))
    }

    fn update_allocs(
        &mut self,
        updates: Vec<AllocUpdate>,
        now_ms: u64,
    ) -> Result<Outcome, StoreError> {
        let mut failed_jobs = BTreeSet::new();
        let mut written = 0usize;
        for update in updates {
            let old =
                self.state
                    .alloc(&update.alloc_id)
                    .cloned()
                    .ok_or_else(|| Refusal::NotFound {
                        kind: "allocation",
                        id: update.alloc_id.clone(),
                    })?;
            let Some(change) = AllocChange::of(&old, &update) else {
                continue;
            };
            let mut alloc = (*old).clone();
            if change.status {
                alloc.client_status = update.client_status;
                alloc.client_description = update.description;
                alloc.client_time_ms = now_ms;
            }
            if change.tasks
                && let Some(tasks) = update.task_states
            {
                alloc.task_states = tasks;
            }
            alloc.modify_index = self.index();
            if old.holds_resources() && !alloc.holds_resources() {
                self.events.capacity_freed = true;
            }
            // The job needs a look when something it still wants ended: a
            // failure, or a service or system task that exited (batch
            // tasks are meant to).
            let ended_early = change.status
                && match alloc.client_status {
                    ClientStatus::Failed => true,
                    ClientStatus::Complete => self
                        .state
                        .job(&alloc.job_id)
                        .is_some_and(|j| j.job_type != JobType::Batch),
                    _ => false,
                };
            if ended_early && alloc.desired_status == DesiredStatus::Run {
                failed_jobs.insert(alloc.job_id.clone());
            }
            sql::put_alloc(self.tx, &alloc)?;
            self.state.put_alloc(alloc);
            written += 1;
        }
        if written == 0 {
            // A repeated report: no write, and blocking queries (agents
            // waiting on their allocations) are not woken.
            self.state.index -= 1;
            return Ok(self.applied(vec![]));
        }
        let mut evals = Vec::new();
        for job_id in failed_jobs {
            if let Some(job) = self.state.job(&job_id).cloned()
                && !job.stop
            {
                evals.push(self.new_eval(&job, TriggeredBy::AllocFailure, None, now_ms)?);
            }
        }
        Ok(self.applied(evals))
    }

    /// Commits what the plan applier ([`crate::plan::evaluate`]) accepts
    /// of `plan` against the latest state: the stops it does not hold back,
    /// the placements on nodes where they fit, their decision records, and
    /// the plan's evaluations when all of it was accepted.
    fn apply_plan(&mut self, plan: Plan) -> Result<PlanResult, StoreError> {
        let verdict = crate::plan::evaluate(self.state, &plan)?;
        let mut result = PlanResult {
            rejected: verdict.rejected,
            ..PlanResult::default()
        };
        if plan.all_at_once && result.is_partial() {
            self.state.index -= 1;
            return Ok(result);
        }
        for stop in &plan.stops {
            if verdict.kept.contains(&stop.alloc_id) {
                continue;
            }
            let Some(old) = self.state.alloc(&stop.alloc_id).cloned() else {
                continue;
            };
            let Some(alloc) = crate::plan::stopped(&old, stop, self.index()) else {
                continue;
            };
            if old.holds_resources() {
                self.events.capacity_freed = true;
            }
            sql::put_alloc(self.tx, &alloc)?;
            self.state.put_alloc(alloc);
            result.stopped += 1;
        }
        // Workers pack their decisions; a plan made elsewhere (a test) may
        // come with them unpacked.
        let unpacked = super::pack_plan(&plan.decisions)?;
        let decisions: BTreeMap<&str, &PackedDecision> = plan
            .records
            .iter()
            .chain(&unpacked)
            .map(|d| (d.alloc_id(), d))
            .collect();
        // Frames written so far: the records of a plan share a few.
        let mut frames = std::collections::HashSet::new();
        for planned in verdict.accepted {
            let old = self.state.alloc(&planned.id).map(|a| a.as_ref());
            let Some(alloc) = crate::plan::placed(old, planned, self.index()) else {
                continue;
            };
            sql::put_alloc(self.tx, &alloc)?;
            if let Some(decision) = decisions.get(alloc.id.as_str()) {
                if let Some(frame) = decision.frame()
                    && frames.insert(frame.id())
                {
                    sql::put_frame(self.tx, frame)?;
                }
                sql::put_decision(self.tx, decision)?;
            }
            result.placed.push(alloc.id.clone());
            self.state.put_alloc(alloc);
        }
        if !result.is_partial() {
            for eval in plan.evals {
                self.put_eval(eval)?;
                result.evals_written += 1;
            }
        }
        if result.placed.is_empty() && result.stopped == 0 && result.evals_written == 0 {
            self.state.index -= 1;
            return Ok(result);
        }
        let rejected: Vec<String> = result.rejected.keys().cloned().collect();
        sql::put_plan(
            self.tx,
            &plan.eval_id,
            self.index(),
            result.placed.len(),
            result.stopped,
            &rejected,
        )?;
        result.index = self.index();
        Ok(result)
    }
}

/// What of an agent's report an allocation takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AllocChange {
    status: bool,
    tasks: bool,
}

impl AllocChange {
    /// Statuses only move forward (pending, running, then an end), so a
    /// late or repeated report does not move them; task states are taken
    /// whenever they differ, because a task restarted in place changes
    /// nothing else (its allocation may even report pending again while it
    /// waits to restart). An allocation that has ended keeps its status; it
    /// still takes the task states of a report that says it ended (the
    /// agent's last word on how its tasks did), but not those of a report
    /// from before the end. `None`: nothing to write.
    fn of(old: &Allocation, update: &AllocUpdate) -> Option<AllocChange> {
        let backwards = old.client_status == ClientStatus::Running
            && update.client_status == ClientStatus::Pending;
        let status = !old.client_status.is_terminal()
            && old.client_status != update.client_status
            && !backwards;
        let tasks = update
            .task_states
            .as_ref()
            .is_some_and(|t| *t != old.task_states)
            && (!old.client_status.is_terminal() || update.client_status.is_terminal());
        (status || tasks).then_some(AllocChange { status, tasks })
    }
}

pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
