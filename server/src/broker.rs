//! The evaluation broker: hands pending evaluations to scheduler workers.
//!
//! - Higher priority first, then oldest first.
//! - One evaluation per job in flight: a second evaluation of the same job
//!   waits until the first is acked or nacked, so two workers never plan
//!   the same job on different snapshots.
//! - At least once: an evaluation stays the broker's until it is acked; a
//!   nack (or a lease that ran out) puts it back after a backoff that
//!   doubles with each attempt, and after `max_attempts` the worker is told
//!   to give up on it.
//! - Evaluations of a job that pile up while one is in flight (a node
//!   flapping, many nodes of a partition going down) are folded: the
//!   newest is delivered with the others as `superseded`, which the worker
//!   cancels with its result. One reconcile covers them all (Nomad's
//!   cancelable evaluations).
//! - Blocked evaluations (placements that found no room) wait, one per
//!   job, until [`Broker::unblock`] says capacity appeared.
//!
//! Time is passed in (`now`), so tests drive it; only
//! [`Broker::dequeue_wait`] sleeps.

use orch_model::{EvalStatus, Evaluation};
use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct BrokerOptions {
    /// How long a worker may hold an evaluation before it is handed out
    /// again.
    pub lease: Duration,
    /// The first nack's backoff; each further nack doubles it.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// Deliveries before the worker is told to mark the evaluation failed.
    pub max_attempts: u32,
}

impl Default for BrokerOptions {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(60),
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            max_attempts: 5,
        }
    }
}

/// An evaluation handed to a worker; ack or nack it with its token.
#[derive(Debug, Clone)]
pub struct Lease {
    pub eval: Arc<Evaluation>,
    pub token: u64,
    /// Deliveries so far, this one included.
    pub attempt: u32,
    /// This is the last delivery: if it fails, mark the evaluation failed.
    pub last_attempt: bool,
    /// Older evaluations of the same job folded into this one; the worker
    /// writes them canceled with its result.
    pub superseded: Vec<Arc<Evaluation>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerError {
    #[error("evaluation {0} is not held by this worker (its lease ran out or it was acked)")]
    NotHeld(String),
}

pub struct Broker {
    options: BrokerOptions,
    inner: Mutex<Inner>,
    ready_signal: Condvar,
}

#[derive(Default)]
struct Inner {
    seq: u64,
    ready: BinaryHeap<Ready>,
    /// Evaluations whose job has one in flight, oldest first.
    waiting: HashMap<String, VecDeque<Queued>>,
    inflight: HashMap<String, Held>,
    jobs_inflight: HashSet<String>,
    /// Nacked, not before their time.
    delayed: Vec<(Instant, Queued)>,
    blocked: HashMap<String, Arc<Evaluation>>,
    /// The index of the last commit that freed capacity.
    last_unblock: u64,
    /// Every evaluation the broker holds in any queue, so a repeated
    /// enqueue (a restart's reload, a listener firing twice) is ignored.
    known: HashSet<String>,
    /// Deliveries so far, by evaluation.
    attempts: HashMap<String, u32>,
}

#[derive(Clone)]
struct Queued {
    eval: Arc<Evaluation>,
    seq: u64,
    /// Evaluations of the same job this one stands for.
    folded: Vec<Arc<Evaluation>>,
}

struct Ready(Queued);

impl PartialEq for Ready {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Ready {}
impl PartialOrd for Ready {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ready {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.0.eval.priority, Reverse(self.0.seq))
            .cmp(&(other.0.eval.priority, Reverse(other.0.seq)))
    }
}

struct Held {
    queued: Queued,
    token: u64,
    deadline: Instant,
}

/// How many evaluations are where, for `orch server` logs and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BrokerStats {
    pub ready: usize,
    pub waiting: usize,
    pub inflight: usize,
    pub delayed: usize,
    pub blocked: usize,
}

impl Broker {
    pub fn new(options: BrokerOptions) -> Self {
        Self {
            options,
            inner: Mutex::new(Inner::default()),
            ready_signal: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a pending or blocked evaluation; anything else is ignored.
    pub fn enqueue(&self, eval: Arc<Evaluation>) {
        let mut inner = self.lock();
        match eval.status {
            EvalStatus::Pending if inner.known.insert(eval.id.clone()) => {
                inner.push(eval);
                self.ready_signal.notify_one();
            }
            // Capacity appeared after the state it failed on: it may fit
            // now, so it is ready at once instead of waiting for the next
            // change.
            EvalStatus::Blocked if eval.snapshot_index < inner.last_unblock => {
                // Its own worker may be writing it back to blocked while
                // it still holds it: then it waits behind itself and is
                // delivered again after the ack.
                let deliver =
                    inner.inflight.contains_key(&eval.id) || inner.known.insert(eval.id.clone());
                if deliver {
                    inner.push(eval);
                    self.ready_signal.notify_one();
                }
            }
            EvalStatus::Blocked => {
                // One blocked evaluation per job: the newer one replaces it.
                if let Some(old) = inner.blocked.insert(eval.job_id.clone(), eval.clone()) {
                    inner.known.remove(&old.id);
                }
                inner.known.insert(eval.id.clone());
            }
            _ => {}
        }
    }

    /// Takes a pending evaluation that must not run before `not_before`
    /// (a delayed reschedule); the caller turns its `wait_until_ms` into an
    /// instant, so the broker keeps one clock.
    pub fn enqueue_at(&self, eval: Arc<Evaluation>, not_before: Instant) {
        let mut inner = self.lock();
        if eval.status == EvalStatus::Pending && inner.known.insert(eval.id.clone()) {
            inner.seq += 1;
            let queued = Queued {
                eval,
                seq: inner.seq,
                folded: Vec::new(),
            };
            inner.delayed.push((not_before, queued));
            self.ready_signal.notify_one();
        }
    }

    /// Capacity appeared in the commit at `index`: every blocked
    /// evaluation becomes ready, and so does any that arrives later having
    /// failed on an older state.
    pub fn unblock(&self, index: u64) -> usize {
        let mut inner = self.lock();
        inner.last_unblock = inner.last_unblock.max(index);
        let blocked: Vec<Arc<Evaluation>> = inner.blocked.drain().map(|(_, e)| e).collect();
        let n = blocked.len();
        for eval in blocked {
            inner.push(eval);
        }
        if n > 0 {
            self.ready_signal.notify_all();
        }
        n
    }

    /// The next evaluation to schedule, if one is ready at `now`.
    pub fn dequeue(&self, now: Instant) -> Option<Lease> {
        let mut inner = self.lock();
        inner.dequeue(now, &self.options)
    }

    /// Like [`Self::dequeue`], waiting up to `timeout` for one.
    pub fn dequeue_wait(&self, timeout: Duration) -> Option<Lease> {
        let until = Instant::now() + timeout;
        let mut inner = self.lock();
        loop {
            let now = Instant::now();
            if let Some(lease) = inner.dequeue(now, &self.options) {
                return Some(lease);
            }
            if now >= until {
                return None;
            }
            // Wake for a new evaluation, or when a delayed one is due.
            let next_due = inner.delayed.iter().map(|(t, _)| *t).min();
            let wait = next_due.map_or(until, |t| t.min(until)) - now;
            inner = self
                .ready_signal
                .wait_timeout(inner, wait.max(Duration::from_millis(1)))
                .map_or_else(|p| p.into_inner().0, |(g, _)| g);
        }
    }

    /// The worker finished the evaluation (its result is committed).
    pub fn ack(&self, eval_id: &str, token: u64) -> Result<(), BrokerError> {
        let mut inner = self.lock();
        let held = inner.take_held(eval_id, token)?;
        // An evaluation that went back to waiting for capacity (its commit
        // enqueued it as blocked while it was held) stays known.
        let job = &held.queued.eval.job_id;
        if inner.blocked.get(job).is_none_or(|b| b.id != eval_id) {
            inner.known.remove(eval_id);
        }
        inner.attempts.remove(eval_id);
        for folded in &held.queued.folded {
            inner.known.remove(&folded.id);
            inner.attempts.remove(&folded.id);
        }
        inner.release_job(&held.queued.eval.job_id);
        self.ready_signal.notify_one();
        Ok(())
    }

    /// The worker could not finish it: deliver it again after a backoff.
    pub fn nack(&self, eval_id: &str, token: u64, now: Instant) -> Result<(), BrokerError> {
        let mut inner = self.lock();
        let held = inner.take_held(eval_id, token)?;
        let attempts = inner.attempts.get(eval_id).copied().unwrap_or(1);
        let backoff = self
            .options
            .backoff
            .saturating_mul(1 << attempts.saturating_sub(1).min(16))
            .min(self.options.max_backoff);
        inner.release_job(&held.queued.eval.job_id);
        inner.delayed.push((now + backoff, held.queued));
        self.ready_signal.notify_one();
        Ok(())
    }

    pub fn stats(&self) -> BrokerStats {
        let inner = self.lock();
        BrokerStats {
            ready: inner.ready.len(),
            waiting: inner.waiting.values().map(VecDeque::len).sum(),
            inflight: inner.inflight.len(),
            delayed: inner.delayed.len(),
            blocked: inner.blocked.len(),
        }
    }
}

impl Inner {
    fn push(&mut self, eval: Arc<Evaluation>) {
        self.seq += 1;
        let queued = Queued {
            eval,
            seq: self.seq,
            folded: Vec::new(),
        };
        self.push_queued(queued);
    }

    fn push_queued(&mut self, queued: Queued) {
        if self.jobs_inflight.contains(&queued.eval.job_id) {
            self.waiting
                .entry(queued.eval.job_id.clone())
                .or_default()
                .push_back(queued);
        } else {
            self.ready.push(Ready(queued));
        }
    }

    fn dequeue(&mut self, now: Instant, options: &BrokerOptions) -> Option<Lease> {
        self.expire(now);
        let mut due = Vec::new();
        self.delayed.retain(|(at, q)| {
            let keep = *at > now;
            if !keep {
                due.push(q.clone());
            }
            keep
        });
        for q in due {
            self.push_queued(q);
        }
        while let Some(Ready(queued)) = self.ready.pop() {
            let job = queued.eval.job_id.clone();
            if self.jobs_inflight.contains(&job) {
                self.waiting.entry(job).or_default().push_back(queued);
                continue;
            }
            self.seq += 1;
            let token = self.seq;
            let attempt = {
                let a = self.attempts.entry(queued.eval.id.clone()).or_default();
                *a += 1;
                *a
            };
            self.jobs_inflight.insert(job);
            let eval = queued.eval.clone();
            self.inflight.insert(
                eval.id.clone(),
                Held {
                    queued,
                    token,
                    deadline: now + options.lease,
                },
            );
            let superseded = self
                .inflight
                .get(&eval.id)
                .map(|h| h.queued.folded.clone())
                .unwrap_or_default();
            return Some(Lease {
                eval,
                token,
                attempt,
                last_attempt: attempt >= options.max_attempts,
                superseded,
            });
        }
        None
    }

    /// Leases that ran out go back as if nacked, without backoff: the
    /// worker holding them is presumed gone.
    fn expire(&mut self, now: Instant) {
        let expired: Vec<String> = self
            .inflight
            .iter()
            .filter(|(_, h)| h.deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            if let Some(held) = self.inflight.remove(&id) {
                self.release_job(&held.queued.eval.job_id);
                self.push_queued(held.queued);
            }
        }
    }

    fn take_held(&mut self, eval_id: &str, token: u64) -> Result<Held, BrokerError> {
        match self.inflight.get(eval_id) {
            Some(h) if h.token == token => {}
            _ => return Err(BrokerError::NotHeld(eval_id.to_owned())),
        }
        self.inflight
            .remove(eval_id)
            .ok_or_else(|| BrokerError::NotHeld(eval_id.to_owned()))
    }

    /// The job has nothing in flight now: the evaluations that waited for
    /// it become one, the newest, carrying the others.
    fn release_job(&mut self, job: &str) {
        self.jobs_inflight.remove(job);
        let Some(queue) = self.waiting.remove(job) else {
            return;
        };
        let mut queue: Vec<Queued> = queue.into();
        queue.sort_by_key(|q| q.seq);
        let Some(mut newest) = queue.pop() else {
            return;
        };
        for older in queue {
            newest.folded.push(older.eval);
            newest.folded.extend(older.folded);
        }
        self.ready.push(Ready(newest));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests may")]
    use super::*;

    fn eval(id: &str, job: &str, priority: u8, status: EvalStatus) -> Arc<Evaluation> {
        Arc::new(
            serde_json::from_value(serde_json::json!({
                "id": id, "job_id": job, "priority": priority,
                "triggered_by": "job-register", "status": status.as_str(),
            }))
            .unwrap(),
        )
    }

    fn ids(broker: &Broker, now: Instant) -> Vec<String> {
        std::iter::from_fn(|| broker.dequeue(now))
            .map(|l| l.eval.id.clone())
            .collect()
    }

    #[test]
    fn higher_priority_first_then_oldest_first() {
        let b = Broker::new(BrokerOptions::default());
        b.enqueue(eval("low", "a", 10, EvalStatus::Pending));
        b.enqueue(eval("high", "b", 90, EvalStatus::Pending));
        b.enqueue(eval("mid1", "c", 50, EvalStatus::Pending));
        b.enqueue(eval("mid2", "d", 50, EvalStatus::Pending));
        b.enqueue(eval("mid1", "c", 50, EvalStatus::Pending)); // again: ignored
        assert_eq!(ids(&b, Instant::now()), ["high", "mid1", "mid2", "low"]);
    }

    #[test]
    fn one_evaluation_per_job_in_flight() {
        let b = Broker::new(BrokerOptions::default());
        let now = Instant::now();
        b.enqueue(eval("e1", "web", 50, EvalStatus::Pending));
        b.enqueue(eval("e2", "web", 50, EvalStatus::Pending));
        b.enqueue(eval("o1", "other", 50, EvalStatus::Pending));
        let first = b.dequeue(now).unwrap();
        assert_eq!(first.eval.id, "e1");
        assert_eq!(ids(&b, now), ["o1"], "e2 waits for e1");
        b.ack("e1", first.token).unwrap();
        assert_eq!(ids(&b, now), ["e2"]);
    }

    #[test]
    fn evaluations_that_pile_up_behind_one_in_flight_are_folded_into_the_newest() {
        let b = Broker::new(BrokerOptions::default());
        let now = Instant::now();
        b.enqueue(eval("first", "web", 50, EvalStatus::Pending));
        let first = b.dequeue(now).unwrap();
        assert!(first.superseded.is_empty());
        for id in ["n1-down", "n2-down", "n3-down"] {
            b.enqueue(eval(id, "web", 50, EvalStatus::Pending));
        }
        b.ack("first", first.token).unwrap();
        let next = b.dequeue(now).unwrap();
        assert_eq!(next.eval.id, "n3-down");
        let folded: Vec<&str> = next.superseded.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(folded, ["n1-down", "n2-down"]);
        assert!(b.dequeue(now).is_none(), "one delivery covers them all");
        b.ack("n3-down", next.token).unwrap();
        assert_eq!(b.stats(), BrokerStats::default());
        // Once acked, a folded one can be enqueued again.
        b.enqueue(eval("n1-down", "web", 50, EvalStatus::Pending));
        assert_eq!(ids(&b, now), ["n1-down"]);
    }

    #[test]
    fn nack_redelivers_after_a_doubling_backoff_and_says_when_to_give_up() {
        let options = BrokerOptions {
            backoff: Duration::from_millis(100),
            max_attempts: 3,
            ..BrokerOptions::default()
        };
        let b = Broker::new(options);
        let t0 = Instant::now();
        b.enqueue(eval("e", "j", 50, EvalStatus::Pending));
        let l1 = b.dequeue(t0).unwrap();
        assert!(!l1.last_attempt);
        b.nack("e", l1.token, t0).unwrap();
        assert!(b.dequeue(t0 + Duration::from_millis(99)).is_none());
        let l2 = b.dequeue(t0 + Duration::from_millis(100)).unwrap();
        assert_eq!(l2.attempt, 2);
        let t1 = t0 + Duration::from_millis(100);
        b.nack("e", l2.token, t1).unwrap();
        assert!(b.dequeue(t1 + Duration::from_millis(199)).is_none());
        let l3 = b.dequeue(t1 + Duration::from_millis(200)).unwrap();
        assert!(l3.last_attempt);
        // A stale token (the first lease) cannot ack the third delivery.
        assert!(b.ack("e", l1.token).is_err());
        b.ack("e", l3.token).unwrap();
        assert_eq!(b.stats(), BrokerStats::default());
    }

    #[test]
    fn a_lease_that_runs_out_is_handed_out_again() {
        let b = Broker::new(BrokerOptions {
            lease: Duration::from_secs(5),
            ..BrokerOptions::default()
        });
        let t0 = Instant::now();
        b.enqueue(eval("e", "j", 50, EvalStatus::Pending));
        let lost = b.dequeue(t0).unwrap();
        assert!(b.dequeue(t0 + Duration::from_secs(4)).is_none());
        let again = b.dequeue(t0 + Duration::from_secs(5)).unwrap();
        assert_eq!(again.eval.id, "e");
        assert_eq!(
            b.ack("e", lost.token),
            Err(BrokerError::NotHeld("e".into()))
        );
        b.ack("e", again.token).unwrap();
    }

    #[test]
    fn blocked_evaluations_wait_for_capacity_one_per_job() {
        let b = Broker::new(BrokerOptions::default());
        let now = Instant::now();
        b.enqueue(eval("b1", "web", 50, EvalStatus::Blocked));
        b.enqueue(eval("b2", "web", 50, EvalStatus::Blocked));
        b.enqueue(eval("b3", "api", 50, EvalStatus::Blocked));
        assert!(b.dequeue(now).is_none());
        assert_eq!(b.stats().blocked, 2);
        assert_eq!(b.unblock(7), 2);
        let mut got = ids(&b, now);
        got.sort();
        assert_eq!(got, ["b2", "b3"]);
    }

    #[test]
    fn a_blocked_evaluation_that_failed_before_the_last_unblock_is_ready_at_once() {
        let b = Broker::new(BrokerOptions::default());
        let now = Instant::now();
        b.unblock(10);
        let blocked = |id: &str, job: &str, at: u64| {
            let mut e = (*eval(id, job, 50, EvalStatus::Blocked)).clone();
            e.snapshot_index = at;
            Arc::new(e)
        };
        b.enqueue(blocked("missed", "a", 9));
        b.enqueue(blocked("current", "b", 10));
        assert_eq!(ids(&b, now), ["missed"]);
        assert_eq!(b.stats().blocked, 1);
    }

    #[test]
    fn an_evaluation_that_goes_back_to_blocked_while_held_stays_blocked() {
        let b = Broker::new(BrokerOptions::default());
        let now = Instant::now();
        b.enqueue(eval("e", "j", 50, EvalStatus::Blocked));
        b.unblock(1);
        let lease = b.dequeue(now).unwrap();
        // Its worker's commit writes it blocked again before the ack.
        let mut again = (*lease.eval).clone();
        again.snapshot_index = 2;
        b.enqueue(Arc::new(again));
        b.ack("e", lease.token).unwrap();
        assert_eq!(b.stats().blocked, 1);
        b.unblock(3);
        assert_eq!(ids(&b, now), ["e"]);
    }

    #[test]
    fn capacity_that_appears_while_a_blocked_evaluation_is_planned_is_not_missed() {
        let b = Broker::new(BrokerOptions::default());
        let now = Instant::now();
        b.enqueue(eval("e", "j", 50, EvalStatus::Blocked));
        b.unblock(1);
        let lease = b.dequeue(now).unwrap();
        // A node joins while the worker plans on the state at index 2.
        b.unblock(5);
        let mut again = (*lease.eval).clone();
        again.snapshot_index = 2;
        b.enqueue(Arc::new(again));
        b.ack("e", lease.token).unwrap();
        assert_eq!(ids(&b, now), ["e"], "delivered again, not left blocked");
    }

    #[test]
    fn a_delayed_evaluation_waits_for_its_time() {
        let b = Broker::new(BrokerOptions::default());
        let t0 = Instant::now();
        b.enqueue_at(
            eval("later", "j", 50, EvalStatus::Pending),
            t0 + Duration::from_secs(5),
        );
        b.enqueue(eval("now", "k", 50, EvalStatus::Pending));
        assert_eq!(ids(&b, t0), ["now"]);
        assert!(b.dequeue(t0 + Duration::from_secs(4)).is_none());
        assert_eq!(ids(&b, t0 + Duration::from_secs(5)), ["later"]);
    }

    #[test]
    fn dequeue_wait_wakes_when_an_evaluation_arrives() {
        let b = Arc::new(Broker::new(BrokerOptions::default()));
        let producer = b.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            producer.enqueue(eval("e", "j", 50, EvalStatus::Pending));
        });
        let lease = b.dequeue_wait(Duration::from_secs(30)).unwrap();
        assert_eq!(lease.eval.id, "e");
        t.join().unwrap();
        assert!(b.dequeue_wait(Duration::from_millis(10)).is_none());
    }
}
