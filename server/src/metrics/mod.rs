//! `/v1/metrics`: what the control plane counts, in the Prometheus text
//! format (version 0.0.4).
//!
//! Two kinds of figures:
//! - **counted where it happens**: per scorer and role, the placements it
//!   made, its calls' time, its faults, the placements others made for it,
//!   and a shadow's drops and agreements; the store writer's commits (in
//!   `state/writer.rs`). Each scorer's counters are resolved once into a
//!   [`Tally`] when the scheduler is built, so the workers only add to
//!   atomics: no label lookup, no lock. A scorer's series are shown while
//!   it is in its role: once nothing counts into them (the scheduler or the
//!   shadow lane that held its tally is gone, its role ended), they are
//!   removed, as Prometheus client libraries remove the series of a label
//!   set that will never change again. A role that comes back starts at
//!   zero, which `rate()` reads as a counter reset.
//! - **read at scrape time** ([`Scrape`]): evaluations, nodes and allocations
//!   by status as the latest snapshot counts them (the state keeps those
//!   counts as it changes, so a scrape costs the same however many there
//!   are), the broker's queues, the writer's queue.
//!
//! One [`Metrics`] per control plane (`serve::run` makes it), never a
//! global: tests run several servers in one process.

mod histogram;

pub(crate) use histogram::{COMMIT, Histogram, OPS};

use crate::broker::BrokerStats;
use crate::state::{State, WriterStats};
use orch_model::{ClientStatus, EvalStatus, NodeStatus};
use prometheus_client::encoding::prometheus_text;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The content type of what [`Metrics::render`] writes.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// What a scorer does in the scheduler settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Primary,
    Split,
    Shadow,
    Fallback,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Split => "split",
            Role::Shadow => "shadow",
            Role::Fallback => "fallback",
        }
    }
}

impl EncodeLabelValue for Role {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ScorerLabels {
    /// The scorer's name in the scheduler settings.
    scorer: String,
    role: Role,
}

/// The counters of every scorer, and the registry that shows them.
#[derive(Debug, Clone)]
pub struct Metrics(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    registry: Registry,
    decisions: Family<ScorerLabels, Counter>,
    calls: Family<ScorerLabels, Histogram, fn() -> Histogram>,
    faults: Family<ScorerLabels, Counter>,
    fallbacks: Family<ScorerLabels, Counter>,
    dropped: Family<ScorerLabels, Counter>,
    agreed: Family<ScorerLabels, Counter>,
    /// How many live tallies count into each scorer's series.
    holders: Mutex<HashMap<ScorerLabels, usize>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("orch");
        let decisions = Family::<ScorerLabels, Counter>::default();
        let calls =
            Family::<ScorerLabels, Histogram, fn() -> Histogram>::new_with_constructor(|| {
                Histogram::new(histogram::CALL)
            });
        let faults = Family::<ScorerLabels, Counter>::default();
        let fallbacks = Family::<ScorerLabels, Counter>::default();
        let dropped = Family::<ScorerLabels, Counter>::default();
        let agreed = Family::<ScorerLabels, Counter>::default();
        registry.register(
            "build",
            "The orch version serving",
            Info::new([("version", env!("CARGO_PKG_VERSION"))]),
        );
        registry.register(
            "scorer_decisions",
            "Placements a scorer made: as primary, split or fallback the allocations committed \
             on its answer; as shadow the decisions it answered",
            decisions.clone(),
        );
        registry.register_with_unit(
            "scorer_call_duration",
            "Time of one scorer call, answered or not (a system job's nodes are one call; \
             dry runs count)",
            Unit::Seconds,
            calls.clone(),
        );
        registry.register(
            "scorer_faults",
            "Scorer calls that gave no usable answer (a trap, a deadline, an open breaker, a \
             refusal, a bad answer); a placement no scorer of its chain answered fails its \
             evaluation and counts one for each",
            faults.clone(),
        );
        registry.register(
            "scorer_fallbacks",
            "Placements another scorer made because this one, the policy placing the job, \
             failed",
            fallbacks.clone(),
        );
        registry.register(
            "scorer_shadow_dropped",
            "Decisions offered to a shadow that it never scored: its queue was full",
            dropped.clone(),
        );
        registry.register(
            "scorer_shadow_agreed",
            "Shadow answers that picked the node the policy picked; agreement is \
             orch_scorer_shadow_agreed_total / orch_scorer_decisions_total{role=\"shadow\"} \
             (over a window: the ratio of their rate())",
            agreed.clone(),
        );
        Self(Arc::new(Inner {
            registry,
            decisions,
            calls,
            faults,
            fallbacks,
            dropped,
            agreed,
            holders: Mutex::new(HashMap::new()),
        }))
    }

    /// Scorer `name`'s counters in `role`: those of a tally of it still
    /// alive (a scheduler replaced by one with the same lineup, a shadow
    /// lane restarted with a new scorer under the same name keep counting
    /// on), else new at zero. They are shown until the last tally of them,
    /// with its clones, is dropped. A counter a role never moves (a
    /// shadow's fallbacks) is not shown.
    pub fn tally(&self, name: &str, role: Role) -> Tally {
        let labels = ScorerLabels {
            scorer: name.to_owned(),
            role,
        };
        let i = &self.0;
        // Held while the series are looked up, so that they are not
        // removed in between by the last other tally of them going.
        let mut holders = i.holders.lock().unwrap_or_else(|p| p.into_inner());
        *holders.entry(labels.clone()).or_default() += 1;
        let policy = matches!(role, Role::Primary | Role::Split);
        let shadow = role == Role::Shadow;
        Tally {
            decisions: i.decisions.get_or_create_owned(&labels),
            calls: i.calls.get_or_create_owned(&labels),
            faults: i.faults.get_or_create_owned(&labels),
            fallbacks: if policy {
                i.fallbacks.get_or_create_owned(&labels)
            } else {
                Counter::default()
            },
            dropped: if shadow {
                i.dropped.get_or_create_owned(&labels)
            } else {
                Counter::default()
            },
            agreed: if shadow {
                i.agreed.get_or_create_owned(&labels)
            } else {
                Counter::default()
            },
            _shown: Some(Arc::new(Shown {
                metrics: self.clone(),
                labels,
            })),
        }
    }

    /// One tally of `labels` fewer; its series go with the last.
    fn release(&self, labels: &ScorerLabels) {
        let i = &self.0;
        let mut holders = i.holders.lock().unwrap_or_else(|p| p.into_inner());
        match holders.get_mut(labels) {
            Some(n) if *n > 1 => *n -= 1,
            _ => {
                holders.remove(labels);
                i.decisions.remove(labels);
                i.calls.remove(labels);
                i.faults.remove(labels);
                i.fallbacks.remove(labels);
                i.dropped.remove(labels);
                i.agreed.remove(labels);
            }
        }
    }

    /// Everything, in the Prometheus text format: the counters and what
    /// `now` says of the cluster.
    pub fn render(&self, now: &Scrape<'_>) -> Result<String, std::fmt::Error> {
        let mut out = String::with_capacity(16 * 1024);
        prometheus_text::encode(&mut out, &self.0.registry)?;
        prometheus_text::encode(&mut out, &now.registry())?;
        Ok(out)
    }
}

/// One scorer's counters in one role. Counting adds to atomics; nothing is
/// looked up. Clones count into the same series, and keep them shown.
#[derive(Debug, Clone)]
pub struct Tally {
    decisions: Counter,
    calls: Histogram,
    faults: Counter,
    fallbacks: Counter,
    dropped: Counter,
    agreed: Counter,
    /// Held for its drop; `None` when [`Tally::detached`].
    _shown: Option<Arc<Shown>>,
}

/// Keeps a scorer's series shown while a tally of them lives.
#[derive(Debug)]
struct Shown {
    metrics: Metrics,
    labels: ScorerLabels,
}

impl Drop for Shown {
    fn drop(&mut self) {
        self.metrics.release(&self.labels);
    }
}

impl Default for Tally {
    fn default() -> Self {
        Self::detached()
    }
}

impl Tally {
    /// Counters shown nowhere: a scheduler built without [`Metrics`] (a
    /// test, the benchmark) counts the same way, into these.
    pub fn detached() -> Self {
        Self {
            decisions: Counter::default(),
            calls: Histogram::new(histogram::CALL),
            faults: Counter::default(),
            fallbacks: Counter::default(),
            dropped: Counter::default(),
            agreed: Counter::default(),
            _shown: None,
        }
    }

    /// A call took `took`; `answered` is false when it gave no usable
    /// answer.
    pub fn called(&self, took: Duration, answered: bool) {
        self.calls.observe_duration(took);
        if !answered {
            self.faults.inc();
        }
    }

    /// A placement it made was committed, or (a shadow) a decision it
    /// answered.
    pub fn decided(&self) {
        self.decisions.inc();
    }

    /// A shadow's answer picked the node the policy picked.
    pub fn agreed(&self) {
        self.agreed.inc();
    }

    /// A placement it should have made was made by another scorer.
    pub fn fell_back(&self) {
        self.fallbacks.inc();
    }

    /// A shadow's queue was full.
    pub fn dropped(&self) {
        self.dropped.inc();
    }

    /// Decisions, faults and fallbacks so far (for tests).
    #[cfg(test)]
    pub(crate) fn counts(&self) -> (u64, u64, u64) {
        (
            self.decisions.get(),
            self.faults.get(),
            self.fallbacks.get(),
        )
    }
}

/// What a scrape reads as it is now.
pub struct Scrape<'a> {
    pub state: &'a State,
    pub broker: BrokerStats,
    pub writer: &'a WriterStats,
}

type Labeled = Family<[(&'static str, &'static str); 1], Gauge>;

impl Scrape<'_> {
    /// A registry of this scrape's gauges.
    fn registry(&self) -> Registry {
        let mut r = Registry::with_prefix("orch");

        // Kept by the state as it changes: no walk of the evaluations.
        let counts = self.state.by_status();
        let evals = Labeled::default();
        for s in EVAL_STATUSES {
            evals
                .get_or_create(&[("status", s.as_str())])
                .set(gauge(counts.evals(s)));
        }
        r.register("evaluations", "Evaluations in the state by status", evals);

        let broker = Labeled::default();
        let b = self.broker;
        for (queue, n) in [
            ("ready", b.ready),
            ("waiting", b.waiting),
            ("inflight", b.inflight),
            ("delayed", b.delayed),
            ("blocked", b.blocked),
        ] {
            broker.get_or_create(&[("queue", queue)]).set(gauge(n));
        }
        r.register(
            "broker_evaluations",
            "Evaluations in the broker: ready for a worker, waiting behind another of the same \
             job, inflight (leased to a worker), delayed until a time, blocked waiting for \
             capacity",
            broker,
        );

        let nodes = Labeled::default();
        for s in NODE_STATUSES {
            nodes
                .get_or_create(&[("status", s.as_str())])
                .set(gauge(counts.nodes(s)));
        }
        r.register("nodes", "Nodes by status", nodes);

        let allocs = Labeled::default();
        for s in CLIENT_STATUSES {
            allocs
                .get_or_create(&[("client_status", s.as_str())])
                .set(gauge(counts.allocs(s)));
        }
        r.register(
            "allocations",
            "Allocations in the state by what their node's agent reported",
            allocs,
        );

        let w = self.writer;
        let queued = Gauge::<i64>::default();
        queued.set(gauge(w.queued_ops()));
        r.register(
            "store_writer_queued_ops",
            "Ops sent to the store's single writer and not yet taken into a commit",
            queued,
        );
        let plans = Gauge::<i64>::default();
        plans.set(gauge(w.queued_plans()));
        r.register(
            "plan_applier_queued_plans",
            "Plans waiting for the plan applier (it runs on the store's writer; they are \
             among the queued ops)",
            plans,
        );
        r.register_with_unit(
            "store_commit_duration",
            "Time of one commit of the store's writer: every op of the batch applied (plans \
             checked against the latest state) and the SQLite transaction committed",
            Unit::Seconds,
            w.commits.clone(),
        );
        r.register(
            "store_commit_ops",
            "Ops in one commit (the writer's group commit)",
            w.ops.clone(),
        );
        r
    }
}

fn gauge(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

// Every status, so each series is there from the start (at 0).
const EVAL_STATUSES: [EvalStatus; 5] = [
    EvalStatus::Pending,
    EvalStatus::Blocked,
    EvalStatus::Complete,
    EvalStatus::Failed,
    EvalStatus::Canceled,
];
const NODE_STATUSES: [NodeStatus; 3] = [
    NodeStatus::Initializing,
    NodeStatus::Ready,
    NodeStatus::Down,
];
const CLIENT_STATUSES: [ClientStatus; 5] = [
    ClientStatus::Pending,
    ClientStatus::Running,
    ClientStatus::Complete,
    ClientStatus::Failed,
    ClientStatus::Lost,
];

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, reason = "tests may")]
    use super::*;
    use crate::scheduler::{Native, ScoreError, Scorer};
    use crate::testing::{Harness, count, job, node};
    use crate::{Sampling, Scheduler, Split};
    use orch_plugin_runtime::{ScoreRequest, ScoreResponse};

    /// Refuses every request.
    struct Broken;

    impl Scorer for Broken {
        fn label(&self) -> &str {
            "broken 0.0.1"
        }
        fn digest(&self) -> &str {
            "native:broken"
        }
        fn score(&self, _: &ScoreRequest) -> Result<ScoreResponse, ScoreError> {
            Err(ScoreError::Refused("no".into()))
        }
    }

    fn binpack() -> Arc<dyn Scorer> {
        Arc::new(Native::new(orch_scorer_binpack::Binpack))
    }

    fn render(metrics: &Metrics, h: &Harness) -> String {
        metrics
            .render(&Scrape {
                state: &h.state(),
                broker: BrokerStats {
                    ready: 1,
                    waiting: 2,
                    inflight: 3,
                    delayed: 4,
                    blocked: 5,
                },
                writer: h.store.writer_stats(),
            })
            .unwrap()
    }

    /// The value of the sample `series` (name and labels as written).
    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines().find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
                .map(|v| v.parse().unwrap())
        })
    }

    #[test]
    fn placements_count_for_who_answered_and_a_fallback_for_the_policy() {
        let metrics = Metrics::new();
        let mut h = Harness::new(binpack());
        h.scheduler = Scheduler::new(Arc::new(Broken), Sampling::default())
            .named("broken")
            .with_fallback(binpack())
            .fallback_named("binpack")
            .with_metrics(&metrics);
        h.nodes(vec![node("a", 4000, 8192, &[]), node("b", 4000, 8192, &[])]);
        h.register(job(count(3)));
        h.run();
        assert_eq!(h.live("web").len(), 3);
        let text = render(&metrics, &h);
        let primary = r#"{scorer="broken",role="primary"}"#;
        let fallback = r#"{scorer="binpack",role="fallback"}"#;
        let v = |name: &str, labels: &str| value(&text, &format!("{name}{labels}"));
        assert_eq!(v("orch_scorer_decisions_total", primary), Some(0.0));
        assert_eq!(v("orch_scorer_faults_total", primary), Some(3.0));
        assert_eq!(v("orch_scorer_fallbacks_total", primary), Some(3.0));
        assert_eq!(v("orch_scorer_decisions_total", fallback), Some(3.0));
        assert_eq!(v("orch_scorer_faults_total", fallback), Some(0.0));
        // A fallback stands in for no one: it has no fallbacks of its own.
        assert_eq!(v("orch_scorer_fallbacks_total", fallback), None);
        assert_eq!(
            v("orch_scorer_call_duration_seconds_count", primary),
            Some(3.0)
        );
        assert_eq!(
            v(
                "orch_scorer_call_duration_seconds_bucket",
                r#"{scorer="binpack",role="fallback",le="+Inf"}"#
            ),
            Some(3.0)
        );
        // Not a shadow: no shadow series.
        assert!(
            !text.contains("orch_scorer_shadow_dropped_total{"),
            "{text}"
        );
        // What the state and the broker say now.
        assert_eq!(v("orch_nodes", r#"{status="ready"}"#), Some(2.0));
        assert_eq!(v("orch_nodes", r#"{status="down"}"#), Some(0.0));
        assert_eq!(v("orch_evaluations", r#"{status="complete"}"#), Some(1.0));
        assert_eq!(v("orch_evaluations", r#"{status="pending"}"#), Some(0.0));
        assert_eq!(
            v("orch_allocations", r#"{client_status="pending"}"#),
            Some(3.0)
        );
        assert_eq!(
            v("orch_broker_evaluations", r#"{queue="blocked"}"#),
            Some(5.0)
        );
        assert_eq!(v("orch_store_writer_queued_ops", ""), Some(0.0));
        assert_eq!(v("orch_plan_applier_queued_plans", ""), Some(0.0));
        // Nodes, the job, the plan: at least three commits, timed and sized.
        let commits = v("orch_store_commit_duration_seconds_count", "").unwrap();
        assert!(commits >= 3.0, "{text}");
        assert_eq!(v("orch_store_commit_ops_count", ""), Some(commits));
        assert_eq!(
            v(
                "orch_build_info",
                &format!(r#"{{version="{}"}}"#, env!("CARGO_PKG_VERSION"))
            ),
            Some(1.0)
        );
        assert!(text.contains("# TYPE orch_scorer_call_duration_seconds histogram"));
        assert!(text.contains("# TYPE orch_scorer_decisions_total counter"));
        assert!(text.contains("# TYPE orch_nodes gauge"));
    }

    #[test]
    fn a_placement_no_one_answers_is_a_fault_of_each_and_no_decision() {
        let metrics = Metrics::new();
        let mut h = Harness::new(binpack());
        h.scheduler = Scheduler::new(Arc::new(Broken), Sampling::default())
            .named("broken")
            .with_fallback(Arc::new(Broken))
            .fallback_named("also-broken")
            .with_metrics(&metrics);
        h.nodes(vec![node("a", 4000, 8192, &[])]);
        let eval = h.register(job(count(1))).unwrap();
        let state = h.state();
        crate::process_eval(
            &h.store,
            &h.scheduler,
            state.eval(&eval).unwrap(),
            &[],
            1,
            h.now(),
            5,
        )
        .unwrap_err();
        let primary = metrics.tally("broken", Role::Primary).counts();
        let fallback = metrics.tally("also-broken", Role::Fallback).counts();
        assert_eq!(primary, (0, 1, 0), "decisions, faults, fallbacks");
        assert_eq!(fallback, (0, 1, 0));
    }

    #[test]
    fn a_scorers_series_are_shown_while_it_is_in_its_role() {
        let metrics = Metrics::new();
        let mut h = Harness::new(binpack());
        h.scheduler = Scheduler::new(binpack(), Sampling::default())
            .named("binpack")
            .with_fallback(binpack())
            .fallback_named("last-resort")
            .with_metrics(&metrics);
        h.nodes(vec![node("a", 4000, 8192, &[])]);
        h.register(job(count(1)));
        h.run();
        let primary = r#"{scorer="binpack",role="primary"}"#;
        let decisions =
            |text: &str, labels: &str| value(text, &format!("orch_scorer_decisions_total{labels}"));
        let text = render(&metrics, &h);
        assert_eq!(decisions(&text, primary), Some(1.0));
        assert!(text.contains(r#"scorer="last-resort""#), "{text}");

        // As the lineup changes it: the next scheduler is built, then put
        // in place of the one in force. The fallback is gone and a split
        // comes; the primary, in the same role, counts on.
        let split = Split {
            name: "spread".into(),
            scorer: Arc::new(Native::new(orch_scorer_spread::Spread)),
            candidate: orch_model::Candidate {
                mode: orch_model::CandidateMode::Split,
                weight: Some(50),
                jobs: Vec::new(),
            },
            tally: Tally::detached(),
        };
        h.scheduler = Scheduler::new(binpack(), Sampling::default())
            .named("binpack")
            .with_splits(vec![split])
            .with_metrics(&metrics);
        let text = render(&metrics, &h);
        assert_eq!(decisions(&text, primary), Some(1.0));
        assert!(!text.contains(r#"scorer="last-resort""#), "{text}");
        let split = r#"{scorer="spread",role="split"}"#;
        assert_eq!(decisions(&text, split), Some(0.0));
        assert_eq!(
            value(&text, &format!("orch_scorer_fallbacks_total{split}")),
            Some(0.0)
        );

        // Spread promoted: binpack is no longer the primary, nor spread a
        // split.
        h.scheduler = Scheduler::new(binpack(), Sampling::default())
            .named("spread")
            .with_metrics(&metrics);
        let text = render(&metrics, &h);
        assert!(!text.contains(r#"scorer="binpack""#), "{text}");
        assert!(!text.contains(r#"role="split""#), "{text}");
        assert_eq!(
            decisions(&text, r#"{scorer="spread",role="primary"}"#),
            Some(0.0)
        );

        // Binpack back as the primary: a new series, from zero.
        h.scheduler = Scheduler::new(binpack(), Sampling::default())
            .named("binpack")
            .with_metrics(&metrics);
        let text = render(&metrics, &h);
        assert_eq!(decisions(&text, primary), Some(0.0));
        assert!(!text.contains(r#"scorer="spread""#), "{text}");
    }

    #[test]
    fn a_scheduler_without_metrics_counts_where_nothing_shows_it() {
        let metrics = Metrics::new();
        let mut h = Harness::new(binpack());
        h.scheduler = Scheduler::new(binpack(), Sampling::default()).named("binpack");
        h.nodes(vec![node("a", 4000, 8192, &[])]);
        h.register(job(count(1)));
        h.run();
        assert_eq!(h.live("web").len(), 1);
        assert!(!render(&metrics, &h).contains("orch_scorer_decisions_total{"));
    }
}
