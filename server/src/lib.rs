//! The orch control plane as a library: what `orch server` runs.
//!
//! ```text
//! job ──► api ──► store (job version + evaluation) ──► broker
//! broker ──► scheduler worker: snapshot → reconcile → feasibility → sample
//!        → one scorer call → host adjustments → select ──► plan
//! plan ──► plan applier (on the store's single writer): re-check each node
//!          against the latest state, commit what fits, hand back the rest
//! ```
//!
//! - [`Store`] (`state/`): SQLite with an immutable in-memory snapshot and one
//!   writer thread, so every write — a job, a node, a plan — passes the same
//!   checks and the same group commit.
//! - `plan/`: what a worker proposes ([`Plan`]) and the applier that turns it
//!   into state.
//! - [`Broker`]: evaluations waiting, leased to workers, blocked on capacity.
//! - [`Scheduler`] (`scheduler/`): the pipeline from one evaluation and one
//!   snapshot to a plan; it never writes.
//! - `api/`: the HTTP API ([`router`]) over the store and the broker.
//! - [`Config`] (`config/`): `orch.toml`, the scorers it names and its reload;
//!   [`Lineup`]: the scheduler settings in force (the file's, with what
//!   `orch scheduler …` changed at run time on top) and the scorers behind
//!   them.
//! - [`Heartbeats`]: node TTLs and the reaper that marks nodes down.
//! - [`Metrics`] (`metrics/`): what `/v1/metrics` shows — per-scorer
//!   counters the workers and shadow lanes add to, and the state, broker
//!   and writer read at each scrape.
//! - [`run`] (`serve.rs`): all of it wired together in one process.
//! - [`testing`]: a scheduler harness for tests, like Nomad's
//!   `scheduler/testing.go`.
//!
//! It knows no command line and no agent: `orch-cli` parses flags and
//! `orch-agent` runs on the nodes.

mod api;
mod broker;
mod config;
mod heartbeat;
mod metrics;
mod plan;
mod scheduler;
mod serve;
mod state;
#[cfg(feature = "testing")]
pub mod testing;

pub use api::{ApiContext, ApiError, DEFAULT_WAIT, MAX_WAIT, router, routes};
pub use broker::{Broker, BrokerError, BrokerOptions, BrokerStats, Lease};
pub use config::{
    ApiConfig, Change, Config, ConfigError, Entry, HeartbeatConfig, LimitsConfig, Lineup,
    LineupError, LineupStatus, MAX_SCORER_BYTES, RegistryAuthConfig, Reloaded, Reloader,
    SamplingConfig, SchedulerConfig, ScorerLoadError, ScorerSource, Settings, StateConfig,
};
pub use heartbeat::Heartbeats;
pub use metrics::{Metrics, Role, Scrape, Tally};
pub use plan::{AllocStop, Plan, PlanResult};
pub use scheduler::replay::{Replayed, replay, row as parts_row};
pub use scheduler::{
    Component as ComponentScorer, Computed, Current, DistinctHosts, DryRun, Feasibility, LaneStats,
    Native as NativeScorer, Placing, ProcessError, Sampling, SchedError, Scheduler, ScoreError,
    Scorer, ShadowSpec, Shadows, Split, Worker, WorkerOptions, process_eval, request_of, to_sdk,
};
pub use serve::{ControlPlane, OnListening, ServeError, ServerOptions, run};
pub use state::{
    AllocUpdate, ByStatus, CommitEvents, CommitListener, Durability, NodeChange, Op, Outcome,
    Refusal, State, Store, StoreError, StoreOptions, Usage, WriterStats,
};
pub use state::{DecisionRow, PackedDecision, PackedShadow, ShadowRow, pack_plan};
