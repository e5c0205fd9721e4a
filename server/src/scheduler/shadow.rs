//! Shadow candidates: scorers that see every decision the primary commits
//! and say what they would have picked, without placing anything and
//! without ever delaying the primary.
//!
//! Each candidate has a *lane*: a bounded queue and one thread in the
//! idle CPU class. A worker offers a committed decision to each lane
//! with a non-blocking send; when a lane's queue is full the decision is
//! dropped for that lane and counted. A lane that traps, loops or blocks
//! only fills its own queue; its breaker (the plugin runtime's) trips and
//! its faults are counted.
//!
//! For each decision a lane records two answers:
//! - its pick on the same request (same candidates, same snapshot, host
//!   adjustments included), for agreement with the primary and for replay;
//! - its pick in its **shadow cluster**: the cluster as it would be had it
//!   placed every allocation since it started (Borg's Fauxmaster, live).
//!   The shadow cluster is the real one plus a delta per node: each
//!   allocation the candidate put elsewhere than the primary (or could not
//!   fit anywhere) moves its resources, and gives them back when the real
//!   allocation stops. It chooses among the primary's candidates that still
//!   have room in the shadow cluster.
//!
//! Answers are written to the store (`shadow_decisions`) in batches. The
//! shadow cluster is not stored: a lane rebuilds it at start from those
//! rows and the live allocations, so it survives a restart.

use super::score::{Scorer, request_of};
use crate::metrics::{Metrics, Role, Tally};
use crate::{PackedShadow, Store};
use orch_model::{Candidate, Decision, Resources, ShadowDecision, bucket, now_ms};
use orch_plugin_runtime::{ScoreRequest, ScoreResponse};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, mpsc};
use std::time::{Duration, Instant};

/// Decisions waiting per lane before new ones are dropped.
pub const LANE_QUEUE: usize = 4096;
/// Shadow answers waiting to be written before new ones are dropped.
const RECORD_QUEUE: usize = 16_384;
/// Most answers written in one commit, and about the most bytes: a commit
/// of shadow answers holds up the plans queued behind it.
const RECORD_BATCH: usize = 1024;
const RECORD_BATCH_BYTES: usize = 4 << 20;
/// How long answers wait to be batched.
const RECORD_EVERY: Duration = Duration::from_millis(200);
/// How often a lane gives back what stopped allocations held in its
/// cluster (at most; only when the state changed).
const PRUNE_EVERY: Duration = Duration::from_millis(250);

/// A candidate to run in shadow.
#[derive(Clone)]
pub struct ShadowSpec {
    pub name: String,
    pub scorer: Arc<dyn Scorer>,
    pub candidate: Candidate,
}

impl ShadowSpec {
    /// Whether this shadow watches `job_id`: its globs match and the job
    /// falls in its share (drawn with its own name as the salt, so it is
    /// independent of the splits' draws and of other shadows').
    fn covers(&self, job_id: &str) -> bool {
        self.candidate.covers(job_id) && bucket(&self.name, job_id) < self.candidate.weight()
    }
}

/// The lanes, and the thread that writes their answers.
pub struct Shadows {
    store: Store,
    metrics: Metrics,
    /// Evaluations the primary is placing now.
    busy: Arc<Busy>,
    lanes: RwLock<BTreeMap<String, Lane>>,
    /// `None` once shut down.
    records: Mutex<Option<mpsc::SyncSender<ShadowDecision>>>,
    /// Says when the answers' writer has written its last batch.
    written: Mutex<Option<mpsc::Receiver<()>>>,
    queue: usize,
}

struct Lane {
    spec: ShadowSpec,
    queue: mpsc::SyncSender<Arc<Decision>>,
    shared: Arc<LaneShared>,
}

impl Lane {
    /// Stops it: what it still has queued is dropped (and counted so), not
    /// scored; the call in hand ends first.
    fn close(self) -> (ShadowSpec, Arc<LaneShared>) {
        self.shared.closing.store(true, Ordering::Relaxed);
        (self.spec, self.shared)
    }
}

struct LaneShared {
    counters: Counters,
    /// Set at shutdown: what is still queued is dropped, not scored.
    closing: std::sync::atomic::AtomicBool,
    /// What `/v1/metrics` shows of it; unlike the counters, kept across
    /// a restart of the lane (a new scorer under the same name).
    tally: Tally,
    cluster: Mutex<Cluster>,
    started_ms: u64,
}

#[derive(Default)]
struct Counters {
    offered: AtomicU64,
    scored: AtomicU64,
    faults: AtomicU64,
    dropped: AtomicU64,
    agreed: AtomicU64,
    unplaced: AtomicU64,
    /// Answers the writer had no room for (not stored).
    unrecorded: AtomicU64,
    micros: AtomicU64,
}

/// What a lane did since it started (this server process).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LaneStats {
    pub name: String,
    pub label: String,
    pub digest: String,
    pub weight: u32,
    pub started_ms: u64,
    /// Decisions offered to it.
    pub offered: u64,
    /// Decisions it answered.
    pub scored: u64,
    pub faults: u64,
    /// Offered while its queue was full: never scored.
    pub dropped: u64,
    /// Answers that picked the primary's node.
    pub agreed: u64,
    /// Allocations it found no room for in its shadow cluster.
    pub unplaced: u64,
    pub unrecorded: u64,
    /// Decisions waiting in its queue now.
    pub queued: usize,
}

impl Shadows {
    /// No lanes yet; starts the thread that writes answers to `store`.
    /// Each lane counts in `metrics`.
    pub fn start(store: Store, metrics: &Metrics) -> std::io::Result<Arc<Self>> {
        Self::with_queue(store, metrics, LANE_QUEUE)
    }

    /// [`Self::start`] with lanes of `queue` decisions (tests make it small
    /// to see drops).
    pub fn with_queue(store: Store, metrics: &Metrics, queue: usize) -> std::io::Result<Arc<Self>> {
        let (records, rx) = mpsc::sync_channel(RECORD_QUEUE);
        let (done, written) = mpsc::sync_channel(1);
        let writer = store.clone();
        std::thread::Builder::new()
            .name("orch-shadow-records".into())
            .spawn(move || {
                write_records(&writer, &rx);
                let _ = done.send(());
            })?;
        Ok(Arc::new(Self {
            store,
            metrics: metrics.clone(),
            busy: Arc::new(Busy::default()),
            lanes: RwLock::new(BTreeMap::new()),
            records: Mutex::new(Some(records)),
            written: Mutex::new(Some(written)),
            queue: queue.max(1),
        }))
    }

    /// Stops every lane and writes the answers they gave, waiting at most
    /// `wait` for that; returns what each lane did in the end. What lanes
    /// still had queued is dropped (and counted so); a lane in the middle
    /// of a call ends it first (within its deadline). No lane starts after.
    pub fn shutdown(&self, wait: Duration) -> Vec<LaneStats> {
        let stopped: Vec<(ShadowSpec, Arc<LaneShared>)> = {
            let mut lanes = self.lanes.write().unwrap_or_else(|p| p.into_inner());
            // Taken under the lanes' lock: a `sync` racing this finds no
            // writer and starts nothing.
            drop(
                self.records
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .take(),
            );
            // Each lane's thread ends once its queue's sender is gone (here)
            // and it sees `closing`; the writer ends once every lane's
            // thread and this have let go of its queue.
            std::mem::take(&mut *lanes)
                .into_values()
                .map(Lane::close)
                .collect()
        };
        let written = self
            .written
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(written) = written
            && written.recv_timeout(wait).is_err()
        {
            tracing::warn!(
                "shadow answers: not all written after {} s; the last ones may be lost",
                wait.as_secs()
            );
        }
        stopped
            .iter()
            .map(|(spec, shared)| lane_stats(spec, shared))
            .collect()
    }

    /// Runs exactly `specs`: starts lanes for new candidates (or for a
    /// candidate whose scorer changed, with a fresh cluster), stops lanes
    /// no longer named, keeps the others as they are.
    pub fn sync(&self, specs: Vec<ShadowSpec>) {
        let mut lanes = self.lanes.write().unwrap_or_else(|p| p.into_inner());
        let wanted: HashSet<String> = specs.iter().map(|s| s.name.clone()).collect();
        let gone: Vec<String> = lanes
            .keys()
            .filter(|name| !wanted.contains(*name))
            .cloned()
            .collect();
        for name in gone {
            if let Some(lane) = lanes.remove(&name) {
                lane.close();
            }
        }
        for spec in specs {
            // The same loaded scorer (digest and limits): the lane goes on.
            // Another one (new limits, say) gets a new lane, whose cluster
            // is rebuilt from the stored answers.
            let same = lanes
                .get(&spec.name)
                .is_some_and(|lane| Arc::ptr_eq(&lane.spec.scorer, &spec.scorer));
            if same {
                if let Some(lane) = lanes.get_mut(&spec.name) {
                    // Weight and globs apply at once; the cluster stays.
                    lane.spec.candidate = spec.candidate;
                }
                continue;
            }
            match self.spawn_lane(spec.clone()) {
                Ok(lane) => {
                    if let Some(old) = lanes.insert(spec.name.clone(), lane) {
                        old.close();
                    }
                }
                Err(e) => tracing::error!("shadow {}: cannot start its thread: {e}", spec.name),
            }
        }
    }

    fn spawn_lane(&self, spec: ShadowSpec) -> std::io::Result<Lane> {
        let records = self
            .records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| std::io::Error::other("the shadow lanes are shut down"))?;
        let (queue, rx) = mpsc::sync_channel(self.queue);
        let shared = Arc::new(LaneShared {
            counters: Counters::default(),
            closing: std::sync::atomic::AtomicBool::new(false),
            tally: self.metrics.tally(&spec.name, Role::Shadow),
            cluster: Mutex::new(Cluster::default()),
            started_ms: now_ms(),
        });
        let worker = LaneWorker {
            busy: self.busy.clone(),
            patience: self.queue / 2,
            name: spec.name.clone(),
            scorer: spec.scorer.clone(),
            shared: shared.clone(),
            store: self.store.clone(),
            records,
        };
        std::thread::Builder::new()
            .name(format!("orch-shadow-{}", spec.name))
            .spawn(move || worker.run(&rx))?;
        Ok(Lane {
            spec,
            queue,
            shared,
        })
    }

    /// Marks the primary busy placing until the guard is dropped: lanes
    /// wait meanwhile, so shadow work does not share the CPU (or its
    /// caches) with placements. A lane whose queue is half full stops
    /// waiting, so a busy cluster still gets its shadows, at some cost.
    pub fn primary_busy(&self) -> Placing {
        self.busy.enter();
        Placing(self.busy.clone())
    }

    /// Whether any lane takes part in `job_id`'s decisions.
    pub fn covers(&self, job_id: &str) -> bool {
        let lanes = self.lanes.read().unwrap_or_else(|p| p.into_inner());
        lanes.values().any(|lane| lane.spec.covers(job_id))
    }

    /// Hands the committed ones of `decisions` (those whose allocation is
    /// in `placed`) to every lane that covers their job; never blocks.
    pub fn offer(&self, decisions: Vec<Decision>, placed: &[String]) {
        let placed: HashSet<&str> = placed.iter().map(String::as_str).collect();
        // Only the primary's decisions: a shadow is compared with the
        // primary, not with a split.
        let decisions: Vec<Arc<Decision>> = decisions
            .into_iter()
            .filter(|d| !d.split && placed.contains(d.alloc_id.as_str()))
            .map(Arc::new)
            .collect();
        let lanes = self.lanes.read().unwrap_or_else(|p| p.into_inner());
        for lane in lanes.values() {
            for d in &decisions {
                if !lane.spec.covers(&d.job_id) {
                    continue;
                }
                let c = &lane.shared.counters;
                c.offered.fetch_add(1, Ordering::Relaxed);
                if let Err(mpsc::TrySendError::Full(_)) = lane.queue.try_send(d.clone()) {
                    c.dropped.fetch_add(1, Ordering::Relaxed);
                    lane.shared.tally.dropped();
                }
            }
        }
    }

    /// Every lane's counters, by name.
    pub fn stats(&self) -> Vec<LaneStats> {
        let lanes = self.lanes.read().unwrap_or_else(|p| p.into_inner());
        lanes
            .values()
            .map(|lane| lane_stats(&lane.spec, &lane.shared))
            .collect()
    }

    /// Candidate `name`'s shadow cluster as a difference from the real one:
    /// per node, what it holds beyond (negative: short of) the real
    /// allocations; and how many live allocations it found no room for.
    /// `None` when no lane has that name.
    pub fn cluster_delta(&self, name: &str) -> Option<(HashMap<String, Delta>, u64)> {
        let lanes = self.lanes.read().unwrap_or_else(|p| p.into_inner());
        let lane = lanes.get(name)?;
        let mut cluster = lane
            .shared
            .cluster
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        cluster.prune(&self.store);
        let unplaced = cluster.moved.values().filter(|m| m.to.is_none()).count() as u64;
        Some((cluster.delta.clone(), unplaced))
    }
}

/// Decisions offered to a lane and not yet answered or dropped.
fn lane_stats_queued(shared: &LaneShared) -> usize {
    let c = &shared.counters;
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    pending(
        get(&c.offered),
        get(&c.scored) + get(&c.faults) + get(&c.dropped),
    )
}

fn pending(offered: u64, done: u64) -> usize {
    usize::try_from(offered.saturating_sub(done)).unwrap_or(usize::MAX)
}

fn lane_stats(spec: &ShadowSpec, shared: &LaneShared) -> LaneStats {
    let c = &shared.counters;
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let offered = get(&c.offered);
    let scored = get(&c.scored);
    let faults = get(&c.faults);
    let dropped = get(&c.dropped);
    LaneStats {
        name: spec.name.clone(),
        label: spec.scorer.label().to_owned(),
        digest: spec.scorer.digest().to_owned(),
        weight: spec.candidate.weight(),
        started_ms: shared.started_ms,
        offered,
        scored,
        faults,
        dropped,
        agreed: get(&c.agreed),
        unplaced: get(&c.unplaced),
        unrecorded: get(&c.unrecorded),
        queued: pending(offered, scored + faults + dropped),
    }
}

/// How many evaluations the primary is placing, for lanes to wait on.
#[derive(Default)]
struct Busy {
    placing: Mutex<usize>,
    idle: std::sync::Condvar,
}

impl Busy {
    fn enter(&self) {
        *self.placing.lock().unwrap_or_else(|p| p.into_inner()) += 1;
    }

    fn leave(&self) {
        let mut placing = self.placing.lock().unwrap_or_else(|p| p.into_inner());
        *placing = placing.saturating_sub(1);
        if *placing == 0 {
            self.idle.notify_all();
        }
    }

    fn is_busy(&self) -> bool {
        *self.placing.lock().unwrap_or_else(|p| p.into_inner()) > 0
    }

    /// Waits until the primary places nothing, at most `at_most`.
    fn wait_idle(&self, at_most: Duration) {
        let placing = self.placing.lock().unwrap_or_else(|p| p.into_inner());
        let _ = self
            .idle
            .wait_timeout_while(placing, at_most, |n| *n > 0)
            .map_err(|p| p.into_inner());
    }
}

/// The primary placing; see [`Shadows::primary_busy`].
pub struct Placing(Arc<Busy>);

impl Drop for Placing {
    fn drop(&mut self) {
        self.0.leave();
    }
}

/// What a node holds in a shadow cluster beyond the real one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delta {
    pub cpu: i64,
    pub memory: i64,
    pub disk: i64,
    pub allocs: i64,
}

impl Delta {
    fn add(&mut self, r: Resources, sign: i64) {
        self.cpu += sign * i64::from(r.cpu);
        self.memory += sign * i64::try_from(r.memory).unwrap_or(i64::MAX);
        self.disk += sign * i64::try_from(r.disk).unwrap_or(i64::MAX);
        self.allocs += sign;
    }

    fn is_zero(&self) -> bool {
        *self == Self::default()
    }

    /// `real` with this delta, never below zero.
    pub fn apply(&self, real: Resources) -> Resources {
        let shift = |v: u64, d: i64| u64::try_from(i128::from(v) + i128::from(d)).unwrap_or(0);
        Resources {
            cpu: u32::try_from(shift(u64::from(real.cpu), self.cpu)).unwrap_or(u32::MAX),
            memory: shift(real.memory, self.memory),
            disk: shift(real.disk, self.disk),
        }
    }
}

/// An allocation the shadow cluster holds elsewhere than the real one.
#[derive(Debug, Clone)]
struct Moved {
    job: String,
    from: String,
    /// `None`: no candidate had room in the shadow cluster.
    to: Option<String>,
    resources: Resources,
    /// The commit that placed the real allocation, and its evaluation: a
    /// request made on an earlier snapshot did not see it (unless its own
    /// plan placed it), so it must not see the move.
    index: u64,
    eval: String,
}

/// The latest moves kept for requests that lag behind them: more than a
/// lane's queue holds (lanes with a smaller queue lag less).
const RECENT: usize = 2 * LANE_QUEUE;

/// A lane's shadow cluster, as a delta from the real one.
#[derive(Default)]
struct Cluster {
    moved: HashMap<String, Moved>,
    delta: HashMap<String, Delta>,
    job_delta: HashMap<(String, String), i64>,
    /// The latest moves: commit index and allocation.
    recent: std::collections::VecDeque<(u64, String)>,
    seen_index: u64,
    pruned_at: Option<Instant>,
}

impl Cluster {
    fn shift(&mut self, m: &Moved, sign: i64) {
        self.delta
            .entry(m.from.clone())
            .or_default()
            .add(m.resources, -sign);
        *self
            .job_delta
            .entry((m.job.clone(), m.from.clone()))
            .or_default() -= sign;
        if let Some(to) = &m.to {
            self.delta
                .entry(to.clone())
                .or_default()
                .add(m.resources, sign);
            *self
                .job_delta
                .entry((m.job.clone(), to.clone()))
                .or_default() += sign;
        }
        self.delta.retain(|_, d| !d.is_zero());
        self.job_delta.retain(|_, n| *n != 0);
    }

    fn insert(&mut self, alloc_id: String, m: Moved) {
        if m.to.as_deref() == Some(m.from.as_str()) {
            return;
        }
        self.shift(&m, 1);
        if self.recent.len() >= RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back((m.index, alloc_id.clone()));
        self.moved.insert(alloc_id, m);
    }

    /// Gives back what allocations that stopped held, when the state has
    /// moved on and it has not been done for a while.
    fn prune(&mut self, store: &Store) {
        let fresh = self.pruned_at.is_some_and(|at| at.elapsed() < PRUNE_EVERY);
        if fresh || store.index() == self.seen_index {
            return;
        }
        let state = store.snapshot();
        self.seen_index = state.index();
        self.pruned_at = Some(Instant::now());
        let gone: Vec<String> = self
            .moved
            .keys()
            .filter(|id| !state.alloc(id).is_some_and(|a| a.holds_resources()))
            .cloned()
            .collect();
        for id in gone {
            if let Some(m) = self.moved.remove(&id) {
                self.shift(&m, -1);
            }
        }
    }

    /// `request` as the shadow cluster sees it: each candidate's allocated
    /// columns shifted by the delta; `None` when nothing differs on these
    /// candidates (the same request).
    fn adjusted(
        &self,
        request: &ScoreRequest,
        candidates: &[String],
        job: &str,
        seen: (u64, &str),
    ) -> Option<ScoreRequest> {
        let (snapshot_index, eval) = seen;
        let mut deltas: Vec<(Delta, i64)> = candidates
            .iter()
            .map(|node| {
                (
                    self.delta.get(node).copied().unwrap_or_default(),
                    self.job_delta
                        .get(&(job.to_owned(), node.clone()))
                        .copied()
                        .unwrap_or(0),
                )
            })
            .collect();
        // Moves of allocations committed after the request's snapshot: the
        // request's columns do not hold those allocations, so the shadow
        // cluster as of that snapshot did not hold their moves either.
        // Lanes see decisions in the order workers offer them, not quite
        // commit order: every recent move is looked at.
        let later: Vec<&Moved> = self
            .recent
            .iter()
            .filter(|(index, _)| *index > snapshot_index)
            .filter_map(|(_, id)| self.moved.get(id))
            .filter(|m| m.eval != eval)
            .collect();
        if !later.is_empty() {
            let position: HashMap<&str, usize> = candidates
                .iter()
                .enumerate()
                .map(|(i, n)| (n.as_str(), i))
                .collect();
            for m in later {
                if let Some(&i) = position.get(m.from.as_str()) {
                    deltas[i].0.add(m.resources, 1);
                    if m.job == job {
                        deltas[i].1 += 1;
                    }
                }
                if let Some(&i) = m.to.as_deref().and_then(|to| position.get(to)) {
                    deltas[i].0.add(m.resources, -1);
                    if m.job == job {
                        deltas[i].1 -= 1;
                    }
                }
            }
        }
        if deltas.iter().all(|(d, j)| d.is_zero() && *j == 0) {
            return None;
        }
        let mut r = request.clone();
        let n = &mut r.nodes;
        let shift = |v: u64, d: i64| u64::try_from(i128::from(v) + i128::from(d)).unwrap_or(0);
        for (i, (d, j)) in deltas.iter().enumerate() {
            if let Some(v) = n.cpu_allocated.get_mut(i) {
                *v = u32::try_from(shift(u64::from(*v), d.cpu)).unwrap_or(u32::MAX);
            }
            if let Some(v) = n.memory_allocated.get_mut(i) {
                *v = shift(*v, d.memory);
            }
            if let Some(v) = n.disk_allocated.get_mut(i) {
                *v = shift(*v, d.disk);
            }
            if let Some(v) = n.total_allocs.get_mut(i) {
                *v = u32::try_from(shift(u64::from(*v), d.allocs)).unwrap_or(u32::MAX);
            }
            if let Some(v) = n.job_allocs.get_mut(i) {
                *v = u32::try_from(shift(u64::from(*v), *j)).unwrap_or(u32::MAX);
            }
        }
        Some(r)
    }
}

/// Indices of the request's candidates with room for its ask.
fn with_room(r: &ScoreRequest) -> Vec<usize> {
    let n = &r.nodes;
    (0..n.cpu_capacity.len())
        .filter(|&i| {
            let fits = |cap: Option<&u64>, used: Option<&u64>, ask: u64| {
                matches!((cap, used), (Some(c), Some(u)) if c.saturating_sub(*u) >= ask)
            };
            let cpu = |v: Option<&u32>| v.map(|x| u64::from(*x));
            fits(
                cpu(n.cpu_capacity.get(i)).as_ref(),
                cpu(n.cpu_allocated.get(i)).as_ref(),
                u64::from(r.ask.cpu_mhz),
            ) && fits(
                n.memory_capacity.get(i),
                n.memory_allocated.get(i),
                r.ask.memory_mib,
            ) && fits(n.disk_capacity.get(i), n.disk_allocated.get(i), r.ask.disk_mib)
        })
        .collect()
}

/// `r` with only the candidates at `keep`, in that order.
fn subset(r: &ScoreRequest, keep: &[usize]) -> ScoreRequest {
    let width = r.attribute_names.len();
    let attributes = keep
        .iter()
        .flat_map(|&i| {
            r.attributes
                .get(i * width..(i + 1) * width)
                .unwrap_or_default()
                .iter()
                .copied()
        })
        .collect();
    ScoreRequest {
        placement: r.placement,
        job_priority: r.job_priority,
        ask: r.ask,
        nodes: r.nodes.select(keep),
        attribute_names: r.attribute_names.clone(),
        strings: r.strings.clone(),
        attributes,
    }
}

/// Which of `d`'s candidates another scorer's `scores` pick: each final
/// score is what `d` recorded with the recorded score swapped for the new
/// one, the job's preferences weighed as the primary's were. `scores[j]`
/// is of candidate `indices[j]` (all candidates in order when `None`);
/// the answer indexes `scores`.
pub(crate) fn pick(d: &Decision, scores: &[f64], indices: Option<&[usize]>) -> usize {
    let finals: Vec<f64> = scores
        .iter()
        .enumerate()
        .map(|(j, s)| d.final_score_with(indices.map_or(j, |ix| ix[j]), *s))
        .collect();
    super::select::best(&finals)
}

/// One lane's thread.
struct LaneWorker {
    busy: Arc<Busy>,
    /// Queued decisions past which it stops waiting for the primary.
    patience: usize,
    name: String,
    scorer: Arc<dyn Scorer>,
    shared: Arc<LaneShared>,
    store: Store,
    records: mpsc::SyncSender<ShadowDecision>,
}

impl LaneWorker {
    fn run(self, rx: &mpsc::Receiver<Arc<Decision>>) {
        lowest_priority();
        self.rebuild();
        // Faults in a row, for logging the first and the breaker's opening
        // once each, not every decision.
        let mut streak = 0u64;
        let mut told_open = false;
        // Ends when the lane is dropped (its sender with it).
        while let Ok(decision) = rx.recv() {
            // The primary first: wait while it places, unless this lane is
            // falling behind (then it shares the CPU, in the idle class).
            while !self.shared.closing.load(Ordering::Relaxed)
                && lane_stats_queued(&self.shared) <= self.patience
                && self.busy.is_busy()
            {
                self.busy.wait_idle(Duration::from_millis(50));
            }
            if self.shared.closing.load(Ordering::Relaxed) {
                // Shutting down: what is left is dropped, and counted so.
                let left = 1 + rx.try_iter().count() as u64;
                self.shared
                    .counters
                    .dropped
                    .fetch_add(left, Ordering::Relaxed);
                break;
            }
            let record = self.answer(&decision);
            let c = &self.shared.counters;
            let tally = &self.shared.tally;
            // The call on the same request, as the record times it.
            tally.called(
                Duration::from_micros(record.scorer_micros),
                record.fault.is_none(),
            );
            match &record.fault {
                Some(fault) => {
                    c.faults.fetch_add(1, Ordering::Relaxed);
                    streak += 1;
                    if streak == 1 {
                        tracing::warn!(
                            "shadow {}: {fault}; the primary is not affected, and the fault is counted",
                            self.name
                        );
                    }
                    if !told_open && fault.contains("not called: it faulted") {
                        told_open = true;
                        tracing::warn!(
                            "shadow {}: its breaker is open after {streak} faults in a row; its decisions count as faults until it answers again",
                            self.name
                        );
                    }
                }
                None => {
                    c.scored.fetch_add(1, Ordering::Relaxed);
                    tally.decided();
                    if streak > 0 {
                        tracing::info!(
                            "shadow {}: answering again after {streak} faults",
                            self.name
                        );
                    }
                    streak = 0;
                    told_open = false;
                }
            }
            if record.agrees {
                c.agreed.fetch_add(1, Ordering::Relaxed);
                tally.agreed();
            }
            c.micros.fetch_add(record.scorer_micros, Ordering::Relaxed);
            if self.records.try_send(record).is_err() {
                c.unrecorded.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The shadow cluster as the stored answers and the live allocations
    /// say it is.
    fn rebuild(&self) {
        let rows = match self.store.shadow_cluster(&self.name, self.scorer.digest()) {
            Ok(rows) => rows,
            Err(e) => {
                tracing::error!(
                    "shadow {}: cannot rebuild its cluster: {e}; starting empty",
                    self.name
                );
                return;
            }
        };
        let state = self.store.snapshot();
        let mut cluster = self
            .shared
            .cluster
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let mut moved = 0;
        for (alloc_id, node, fault) in rows {
            let Some(alloc) = state.alloc(&alloc_id).filter(|a| a.holds_resources()) else {
                continue;
            };
            if fault {
                continue;
            }
            let m = Moved {
                job: alloc.job_id.clone(),
                from: alloc.node_id.clone(),
                to: node,
                resources: alloc.resources,
                index: alloc.create_index,
                eval: alloc.eval_id.clone(),
            };
            if m.to.as_deref() != Some(m.from.as_str()) {
                moved += 1;
            }
            cluster.insert(alloc_id, m);
        }
        cluster.seen_index = state.index();
        if moved > 0 {
            tracing::info!(
                "shadow {}: rebuilt its cluster from the records ({moved} allocations placed elsewhere than the primary)",
                self.name
            );
        }
    }

    fn answer(&self, d: &Decision) -> ShadowDecision {
        let mut record = ShadowDecision {
            alloc_id: d.alloc_id.clone(),
            job_id: d.job_id.clone(),
            candidate: self.name.clone(),
            scorer: self.scorer.label().to_owned(),
            scorer_digest: self.scorer.digest().to_owned(),
            time_ms: now_ms(),
            scores: Vec::new(),
            part_names: Vec::new(),
            parts: Vec::new(),
            pick: None,
            agrees: false,
            cluster_node: None,
            fault: None,
            scorer_micros: 0,
        };
        let request = request_of(d);
        let started = Instant::now();
        let answer = self.ask(&request, d.candidates.len());
        record.scorer_micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let response = match answer {
            Ok(r) => r,
            Err(e) => {
                record.fault = Some(e);
                return record;
            }
        };
        let same = pick(d, &response.scores, None);
        record.pick = u32::try_from(same).ok();
        record.agrees = record.pick == Some(d.pick);
        record.cluster_node = self.place_in_cluster(d, &request, same);
        record.scores = response.scores;
        record.part_names = response.part_names;
        record.parts = response.parts;
        record
    }

    /// Where the allocation goes in the shadow cluster (and puts it there).
    /// The cluster's lock is held to read it and to write it, never while
    /// the scorer runs.
    fn place_in_cluster(
        &self,
        d: &Decision,
        request: &ScoreRequest,
        same: usize,
    ) -> Option<String> {
        let shifted = {
            let mut cluster = self
                .shared
                .cluster
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            cluster.prune(&self.store);
            cluster.adjusted(
                request,
                &d.candidates,
                &d.job_id,
                (d.snapshot_index, &d.eval_id),
            )
        };
        let node = match shifted {
            // Nothing differs on these candidates: the same answer.
            None => d.candidates.get(same).cloned(),
            Some(shifted) => {
                let room = with_room(&shifted);
                if room.is_empty() {
                    None
                } else {
                    let sub = subset(&shifted, &room);
                    // A fault here leaves it where the same-request answer
                    // put it: the cluster still holds the allocation.
                    match self.ask(&sub, room.len()) {
                        Ok(r) => {
                            let best = pick(d, &r.scores, Some(&room));
                            room.get(best).and_then(|&i| d.candidates.get(i).cloned())
                        }
                        Err(_) => d.candidates.get(same).cloned(),
                    }
                }
            }
        };
        if node.is_none() {
            self.shared
                .counters
                .unplaced
                .fetch_add(1, Ordering::Relaxed);
        }
        if let Some(from) = d.picked_node() {
            // Offered once committed: the allocation is in the state.
            let index = self
                .store
                .snapshot()
                .alloc(&d.alloc_id)
                .map_or(d.snapshot_index + 1, |a| a.create_index);
            let mut cluster = self
                .shared
                .cluster
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            cluster.insert(
                d.alloc_id.clone(),
                Moved {
                    job: d.job_id.clone(),
                    from: from.to_owned(),
                    to: node.clone(),
                    resources: d.ask,
                    index,
                    eval: d.eval_id.clone(),
                },
            );
        }
        node
    }

    fn ask(&self, request: &ScoreRequest, nodes: usize) -> Result<ScoreResponse, String> {
        let response = self.scorer.score(request).map_err(|e| e.to_string())?;
        orch_plugin_runtime::validate_response(&response, nodes).map_err(|p| p.to_string())?;
        Ok(response)
    }
}

/// Writes answers in batches until every lane and the [`Shadows`] are gone,
/// into `shadows.db` (never through the state's writer, which plans wait
/// on), packing and inserting at the lowest priority like the lanes.
fn write_records(store: &Store, rx: &mpsc::Receiver<ShadowDecision>) {
    lowest_priority();
    let mut batch = Vec::new();
    loop {
        let deadline = Instant::now() + RECORD_EVERY;
        let mut closed = false;
        let mut bytes = 0;
        while batch.len() < RECORD_BATCH && bytes < RECORD_BATCH_BYTES {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(record) => match PackedShadow::of(&record) {
                    Ok(packed) => {
                        bytes += packed.size();
                        batch.push(packed);
                    }
                    Err(e) => tracing::warn!(
                        "shadow answer of {} for allocation {} not recorded: {e}",
                        record.candidate,
                        record.alloc_id
                    ),
                },
                Err(mpsc::RecvTimeoutError::Timeout) => break,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
        }
        if !batch.is_empty() {
            if let Err(e) = store.record_shadows(&batch) {
                tracing::warn!("{} shadow answers not recorded: {e}", batch.len());
            }
            batch.clear();
        }
        if closed {
            return;
        }
    }
}

/// Puts the calling thread in the idle class (Linux's `SCHED_IDLE`: it
/// runs only on a CPU no other thread wants, and gives way at once when one
/// does), so shadow work only uses what the primary leaves idle; nice 19
/// (weight 15 against 1,024) still takes a share while the primary's
/// threads are runnable. Best effort: nice 19 where the class cannot be
/// had.
#[allow(
    unsafe_code,
    reason = "sched_setscheduler has no safe wrapper in the crates used here; see SAFETY"
)]
fn lowest_priority() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid sched_param that outlives the call; pid 0
    // names the calling thread; the call changes nothing else.
    let idle = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } == 0;
    if idle {
        return;
    }
    let tid = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(tid), 19) {
        tracing::debug!("shadow lane: cannot lower its priority: {e}");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests may")]
    use super::*;

    fn request(allocated_cpu: &[u32]) -> ScoreRequest {
        let nodes: Vec<orch_plugin_runtime::Node> = allocated_cpu
            .iter()
            .map(|&cpu| orch_plugin_runtime::Node {
                capacity: orch_plugin_runtime::Resources {
                    cpu_mhz: 1000,
                    memory_mib: 1000,
                    disk_mib: 1000,
                },
                allocated: orch_plugin_runtime::Resources {
                    cpu_mhz: cpu,
                    memory_mib: 0,
                    disk_mib: 0,
                },
                job_allocs: 0,
                total_allocs: 0,
            })
            .collect();
        ScoreRequest {
            placement: 0,
            job_priority: 50,
            ask: orch_plugin_runtime::Resources {
                cpu_mhz: 500,
                memory_mib: 10,
                disk_mib: 0,
            },
            nodes: orch_plugin_runtime::NodeColumns::from_nodes(&nodes),
            attribute_names: vec![],
            strings: vec![],
            attributes: vec![],
        }
    }

    fn moved(from: &str, to: Option<&str>, cpu: u32) -> Moved {
        Moved {
            job: "web".into(),
            from: from.into(),
            to: to.map(str::to_owned),
            resources: Resources {
                cpu,
                memory: 0,
                disk: 0,
            },
            index: 5,
            eval: "e0".into(),
        }
    }

    #[test]
    fn the_cluster_moves_and_gives_back_resources() {
        let mut c = Cluster::default();
        c.insert("a1".into(), moved("n1", Some("n2"), 400));
        c.insert("a2".into(), moved("n1", Some("n1"), 100));
        assert_eq!(c.moved.len(), 1, "placed where the primary did: no delta");
        assert_eq!(c.delta["n1"].cpu, -400);
        assert_eq!(c.delta["n2"].cpu, 400);
        let candidates = vec!["n1".to_owned(), "n2".to_owned()];
        let shifted = c
            .adjusted(&request(&[400, 200]), &candidates, "web", (10, "e"))
            .unwrap();
        assert_eq!(shifted.nodes.cpu_allocated, vec![0, 600]);
        assert_eq!(shifted.nodes.job_allocs, vec![0, 1]);
        assert_eq!(
            with_room(&shifted),
            vec![0],
            "n2 has 400 left, the ask is 500"
        );
        let m = c.moved.remove("a1").unwrap();
        c.shift(&m, -1);
        assert!(c.delta.is_empty() && c.job_delta.is_empty());
        assert!(
            c.adjusted(&request(&[0, 0]), &candidates, "web", (10, "e"))
                .is_none()
        );
    }

    #[test]
    fn a_request_older_than_a_move_does_not_see_it_unless_its_own_plan_made_it() {
        let mut c = Cluster::default();
        c.insert("a1".into(), moved("n1", Some("n2"), 400));
        let candidates = vec!["n1".to_owned(), "n2".to_owned()];
        // Made on snapshot 4, before the move's commit (5), by another
        // evaluation: the real allocation is not in its columns either.
        assert!(
            c.adjusted(&request(&[0, 0]), &candidates, "web", (4, "e1"))
                .is_none()
        );
        // By the evaluation that placed it: its columns hold it.
        let shifted = c
            .adjusted(&request(&[400, 0]), &candidates, "web", (4, "e0"))
            .unwrap();
        assert_eq!(shifted.nodes.cpu_allocated, vec![0, 400]);
        // On a later snapshot: seen.
        assert!(
            c.adjusted(&request(&[400, 0]), &candidates, "web", (5, "e1"))
                .is_some()
        );
    }

    #[test]
    fn an_unplaced_allocation_only_frees_its_node() {
        let mut c = Cluster::default();
        c.insert("a1".into(), moved("n1", None, 300));
        assert_eq!(c.delta["n1"].cpu, -300);
        assert_eq!(c.delta["n1"].allocs, -1);
        assert_eq!(c.delta.len(), 1);
        let real = Resources {
            cpu: 200,
            memory: 5,
            disk: 0,
        };
        assert_eq!(c.delta["n1"].apply(real).cpu, 0, "never below zero");
    }

    #[test]
    fn a_subset_keeps_rows_and_attributes_together() {
        let mut r = request(&[1, 2, 3]);
        r.attribute_names = vec!["dc".into(), "rack".into()];
        r.attributes = vec![10, 11, 20, 21, 30, 31];
        let s = subset(&r, &[2, 0]);
        assert_eq!(s.nodes.cpu_allocated, vec![3, 1]);
        assert_eq!(s.attributes, vec![30, 31, 10, 11]);
    }

    #[test]
    fn another_scorer_is_weighed_with_the_preferences_as_the_primary_was() {
        // Two candidates; the job has one kind of preference (divisor 2),
        // worth 1.0 on node 0 and 0.0 on node 1. The primary scored them
        // 0.0 and 0.2: finals (0.0+1.0)/2 = 0.5 and (0.2+0.0)/2 = 0.1.
        let mut d: Decision = serde_json::from_value(serde_json::json!({
            "alloc_id": "a", "eval_id": "e", "job_id": "j", "group": "g",
            "scorer": "s", "scorer_digest": "d", "placement": 0,
            "nodes_evaluated": 2, "candidates": ["n0", "n1"],
            "scores": [0.0, 0.2], "part_names": [], "parts": [], "pick": 0,
            "scorer_micros": 0, "total_micros": 0,
        }))
        .unwrap();
        d.host_adjustments = vec![0.5, -0.1];
        d.host_divisor = 2.0;
        // Another scorer says 0.0 and 0.9: finals (0.0+1.0)/2 = 0.5 and
        // (0.9+0.0)/2 = 0.45; node 0 still wins. Adding the adjustments to
        // its scores as they are would have picked node 1 (0.5 vs 0.8).
        assert_eq!(pick(&d, &[0.0, 0.9], None), 0);
        assert!((d.final_score_with(1, 0.9) - 0.45).abs() < 1e-12);
        // With 1.0 on node 1 it wins: 0.5 vs 0.5 is a tie (the first), but
        // 1.0 on node 1 and -0.2 on node 0 is not.
        assert_eq!(pick(&d, &[-0.2, 1.0], None), 1);
        // Without preferences the scores alone decide.
        d.host_adjustments.clear();
        d.host_divisor = 0.0;
        assert_eq!(pick(&d, &[0.1, 0.5], None), 1);
        assert_eq!(pick(&d, &[0.5, 0.1], Some(&[1, 0])), 0);
    }
}
