//! Bodies of the HTTP API that are not model objects themselves. Each is
//! declared once and serialized by the side that sends it and deserialized
//! by the side that receives it.

use orch_model::{
    AllocMetric, Allocation, ClientStatus, Decision, Evaluation, Job, Problem, Sampling,
    ShadowDecision, TaskState,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
    pub failed_tg_allocs: BTreeMap<String, AllocMetric>,
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
    /// What each shadow candidate would have picked for this placement.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shadows: Vec<ShadowDecision>,
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
    pub allocs: BTreeMap<String, u64>,
    pub modify_index: u64,
}

/// `GET /v1/status`: the server's index and version, the scheduler it
/// places with, and how much it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerStatus {
    pub index: u64,
    pub version: String,
    pub scorer: ScorerInfo,
    /// The built-in that scores when the scorer fails; absent: fail closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<ScorerInfo>,
    pub sampling: Sampling,
    pub nodes: usize,
    pub jobs: usize,
    pub allocations: usize,
    pub broker: BrokerInfo,
}

/// A scorer as decision records name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScorerInfo {
    pub label: String,
    pub digest: String,
}

/// Evaluations in the broker, by where they wait.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerInfo {
    pub ready: usize,
    pub waiting: usize,
    pub inflight: usize,
    pub delayed: usize,
    pub blocked: usize,
}

/// What registering a node or its heartbeat answers: the commit, and how
/// long the agent has until its next heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alive {
    pub index: u64,
    pub heartbeat_ttl_ms: u64,
}

/// `POST /v1/node/{id}/drain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrainRequest {
    pub enable: bool,
}

/// `POST /v1/node/{id}/eligibility`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EligibilityRequest {
    pub eligible: bool,
}

/// What a drain or an eligibility change answers: the commit, and the
/// evaluations it made (one per job with allocations to move off a
/// draining node; one per system job when the node takes work again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeUpdated {
    pub index: u64,
    #[serde(default)]
    pub eval_ids: Vec<String>,
}

/// `POST /v1/allocations/status`: what agents report, in batches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusUpdates {
    pub updates: Vec<StatusUpdate>,
}

/// One allocation's status as its agent reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusUpdate {
    pub alloc_id: String,
    pub client_status: ClientStatus,
    #[serde(default)]
    pub description: String,
    /// Every task's state; left out, the server keeps what it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_states: Option<BTreeMap<String, TaskState>>,
}

/// The answer to `POST /v1/allocations/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusUpdated {
    pub index: u64,
    /// Allocations of the batch the server does not have; not applied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknown: Vec<String>,
}
