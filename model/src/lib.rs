//! The job model of `orch` and the types its server, CLI and agent share:
//! jobs, nodes, allocations, evaluations, decision records, the sha256
//! [`Digest`] plugins and artifacts are named by, and the one wall clock
//! ([`now_ms`]).
//!
//! Everything here is plain data with serde; the server's state store keeps
//! it, the scheduler reads it, and the API (orch-wire) speaks it as
//! snake_case JSON. The job file parser (TOML with line and column in every
//! error) lives here too, so the CLI can check a file before sending it.

mod alloc;
mod clock;
mod decision;
mod digest;
mod duration;
mod eval;
mod job;
mod jobspec;
mod node;
mod problem;
mod resources;
mod sampling;
mod scheduler;
mod validate;
mod version;

pub use alloc::{
    AllocMetric, Allocation, ClientStatus, DesiredStatus, TaskEvent, TaskEventKind, TaskState,
    TaskStatus,
};
pub use clock::{now_ms, rfc3339};
pub use decision::{CandidateInputs, Decision};
pub use digest::Digest;
pub use duration::{Dur, DurationError};
pub use eval::{EvalStatus, Evaluation, TriggeredBy};
pub use job::{
    Affinity, Artifact, Constraint, DEFAULT_PRIORITY, Job, JobType, Operator, PRIORITY_RANGE,
    ReschedulePolicy, RestartMode, RestartPolicy, Spread, SpreadTarget, Task, TaskGroup,
};
pub use jobspec::{JobFileError, closest, parse_job_file, place_problems};
pub use node::{DriverInfo, Eligibility, Node, NodeStatus};
pub use problem::{Problem, one_line};
pub use resources::{Dimension, Resources};
pub use sampling::Sampling;
pub use scheduler::{
    Candidate, CandidateMode, Origin, SchedulerOverrides, ScorerSpec, ShadowDecision, Stamped,
    bucket, glob_matches,
};
pub use validate::{job_warnings, validate_job};
pub use version::VersionRange;
