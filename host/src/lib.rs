//! The control plane of `orch`: state, the job model's life cycle, and the
//! path from a job to allocations on nodes.
//!
//! ```text
//! job ──► API ──► store (job version + evaluation) ──► broker
//! broker ──► scheduler worker: snapshot → reconcile → feasibility → sample
//!        → one scorer call → pick ──► plan ──► store's writer (plan applier)
//! ```
//!
//! The store ([`Store`]) is SQLite with an immutable in-memory snapshot; its
//! single writer is also the plan applier, so every write — a job, a node, a
//! plan — passes the same checks and the same group commit.

pub mod agent;
pub mod api;
pub mod broker;
pub mod config;
pub mod heartbeat;
mod plan;
pub mod scheduler;
pub mod server;
mod state;

pub use plan::{AllocStop, Plan, PlanResult};
pub use state::{
    AllocUpdate, CommitEvents, CommitListener, Durability, NodeChange, Op, Outcome, Refusal, State,
    Store, StoreError, StoreOptions, Usage,
};
