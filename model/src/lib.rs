//! The job model of `orch` and the wire types its server, CLI and agent
//! share: jobs, nodes, allocations, evaluations, decision records, and the
//! bodies of the HTTP API.
//!
//! Everything here is plain data with serde; the server's state store keeps
//! it, the scheduler reads it, and the API speaks it as snake_case JSON. The
//! job file parser (TOML with line and column in every error) lives here too,
//! so the CLI can check a file before sending it.

mod alloc;
mod api;
mod decision;
mod duration;
mod eval;
mod job;
mod jobspec;
mod node;
mod problem;
mod resources;
mod validate;
mod version;

pub use alloc::{
    AllocMetric, Allocation, ClientStatus, DesiredStatus, TaskEvent, TaskEventKind, TaskState,
    TaskStatus,
};
pub use api::{
    AllocationDetail, ErrorBody, EvaluationDetail, FieldDiff, GroupPlan, JobPlanResponse,
    JobRegisterRequest, JobRegisterResponse, JobStopResponse, JobSummary, PlannedPlacement,
};
pub use decision::{CandidateInputs, Decision};
pub use duration::{Dur, DurationError};
pub use eval::{EvalStatus, Evaluation, TriggeredBy};
pub use job::{
    Affinity, Artifact, Constraint, DEFAULT_PRIORITY, Job, JobType, Operator, PRIORITY_RANGE,
    ReschedulePolicy, RestartMode, RestartPolicy, Spread, SpreadTarget, Task, TaskGroup,
};
pub use jobspec::{JobFileError, closest, parse_job_file, place_problems};
pub use node::{DriverInfo, Eligibility, Node, NodeStatus};
pub use problem::Problem;
pub use resources::{Dimension, Resources};
pub use validate::{job_warnings, validate_job};
pub use version::VersionRange;
