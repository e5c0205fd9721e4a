//! Bodies of the HTTP API that are not model objects themselves.

use crate::{Allocation, Decision, Evaluation, Job, Problem};
use serde::{Deserialize, Serialize};

/// Every error the API returns: a message, a machine-readable code, and
/// per-field details where the input was at fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// e.g. `invalid_job`, `not_found`, `body_too_large`.
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<Problem>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobRegisterRequest {
    pub job: Job,
    /// Register only if the job's current modify index is this (0: only if
    /// the job does not exist); optimistic concurrency for scripts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforce_index: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRegisterResponse {
    /// The evaluation made for the change; `None` when nothing changed.
    pub eval_id: Option<String>,
    pub job_version: u64,
    pub job_modify_index: u64,
    pub index: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobStopResponse {
    pub eval_id: String,
    pub index: u64,
}

/// What `orch job plan` shows: how the job would change and where its
/// allocations would go, without changing anything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobPlanResponse {
    /// `none` (no change), `create`, or `edit`.
    pub diff_type: String,
    /// Field-level differences between the registered version and this one.
    pub diff: Vec<FieldDiff>,
    /// Per group, what the scheduler would do.
    pub groups: Vec<GroupPlan>,
    /// Allocations that would be placed, with their decision.
    pub placements: Vec<PlannedPlacement>,
    /// Per group, why some allocations could not be placed.
    pub failed_tg_allocs: std::collections::BTreeMap<String, crate::AllocMetric>,
    /// The job's current modify index, for `job run --check-index`.
    pub job_modify_index: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldDiff {
    /// `added`, `deleted` or `edited`.
    pub kind: String,
    pub field: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupPlan {
    pub name: String,
    pub place: u64,
    pub stop: u64,
    /// Replaced because the job changed (destructive update).
    pub replace: u64,
    /// Updated in place (only `count` or metadata changed).
    pub in_place: u64,
    pub ignore: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedPlacement {
    pub name: String,
    pub node_id: String,
    pub node_name: String,
    pub score: f64,
}

/// `GET /v1/allocation/ID?verbose=true`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AllocationDetail {
    #[serde(flatten)]
    pub allocation: Allocation,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
}

/// `GET /v1/evaluation/ID` with the evaluations it led to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluationDetail {
    #[serde(flatten)]
    pub evaluation: Evaluation,
    /// Allocations it placed.
    #[serde(default)]
    pub placed: Vec<String>,
}

/// A summary line of `orch job status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSummary {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub job_type: String,
    pub priority: u8,
    /// `pending`, `running` or `dead`.
    pub status: String,
    pub version: u64,
    pub stop: bool,
    /// Allocations by client status.
    pub allocs: std::collections::BTreeMap<String, u64>,
    pub modify_index: u64,
}
