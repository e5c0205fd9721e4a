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
    /// With `?why_not=NODE`: what became of that node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why_not: Option<PlanWhyNot>,
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

/// What became of one node in one placement: the answer to `--why-not
/// NODE` of `orch job plan` and `orch alloc status`, stage by stage as the
/// scheduler decides (feasibility, room, sampling, score).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NodeVerdict {
    /// Not among the nodes a placement evaluates: the node takes nothing
    /// new (it is not ready, it is draining, or it is ineligible), so no
    /// metric of the placement counts it (`nodes_evaluated` is of the
    /// others); `reason` says which.
    NotEvaluated { reason: String },
    /// Passed over before anything was scored: it fails one of the group's
    /// checks (datacenter, driver, constraint, `distinct_hosts`); `reason`
    /// is what the evaluation's metrics count it under.
    Filtered { reason: String },
    /// It passes the checks, but the allocation does not fit: the first
    /// dimension short, what the allocation asks and what was free there.
    Exhausted {
        dimension: String,
        ask: orch_model::Resources,
        free: orch_model::Resources,
    },
    /// It passes the checks and has room, but sampling had its candidates
    /// before the walk reached it: `sampled` were scored of `feasible` nodes
    /// that would have done.
    NotSampled { sampled: u64, feasible: u64 },
    /// A candidate the winner outscored: both rows, part by part.
    Outscored {
        part_names: Vec<String>,
        node: CandidateScore,
        winner: CandidateScore,
    },
    /// A candidate whose final score equals the winner's: a tie goes to
    /// the candidate the walk reached first, which the winner was. Both
    /// rows, part by part.
    Tied {
        part_names: Vec<String>,
        node: CandidateScore,
        winner: CandidateScore,
    },
    /// The candidate picked.
    Picked {
        part_names: Vec<String>,
        node: CandidateScore,
    },
    /// It passes every check and has room, and nothing asked for it: the
    /// group places nothing there (a plan), or it would be a candidate now
    /// (an allocation's node as it is now).
    Fits,
}

/// One candidate's row of a decision: its final score, what it is made
/// of, and the scorer's parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateScore {
    pub node_id: String,
    #[serde(default)]
    pub node_name: String,
    /// The scorer's score plus the host's adjustment: what was compared.
    pub score: f64,
    pub scorer_score: f64,
    /// The job's affinities and spreads, as the host scored them (0 when
    /// the job has none).
    pub host_adjustment: f64,
    /// The scorer's parts, in the order of the verdict's `part_names`.
    pub parts: Vec<f64>,
}

/// `POST /v1/job/{id}/plan?why_not=NODE`: what became of the node in the
/// dry run, group by group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanWhyNot {
    pub node_id: String,
    pub node_name: String,
    /// The job's groups, in its order.
    pub groups: Vec<GroupWhyNot>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupWhyNot {
    pub group: String,
    /// One per allocation the plan places of the group, in the order they
    /// were placed; then one for those it could not place. A group the
    /// plan places nothing of has one: the node against its checks.
    pub placements: Vec<PlacementWhyNot>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlacementWhyNot {
    /// The allocation placed (`web.frontend[2]`); absent for the entry
    /// that stands for what could not be placed, or for nothing placed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocation: Option<String>,
    /// How many of the group's allocations could not be placed, on the
    /// entry that stands for them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unplaced: u64,
    pub verdict: NodeVerdict,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// `GET /v1/allocation/{id}/why-not/{node}`: why the allocation is not on
/// that node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AllocWhyNot {
    pub alloc_id: String,
    pub alloc_name: String,
    /// Where the allocation is.
    pub alloc_node_id: String,
    pub node_id: String,
    pub node_name: String,
    pub basis: WhyNotBasis,
    pub verdict: NodeVerdict,
    /// The placement's funnel, from its decision record when one is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub funnel: Option<PlacementFunnel>,
}

/// What an allocation's why-not verdict rests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhyNotBasis {
    /// The node was a candidate: its scores as the decision record keeps
    /// them.
    Decision,
    /// The node was not a candidate (or no record is kept), and the record
    /// keeps no reason per node: the group's checks, of the job version the
    /// allocation runs, against the node and its allocations as they are
    /// now.
    Now,
}

/// How one placement narrowed the nodes down, from its decision record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacementFunnel {
    /// Schedulable nodes when it was placed.
    pub nodes_evaluated: u64,
    /// Nodes a check filtered out.
    pub nodes_filtered: u64,
    /// Nodes that passed the checks but had no room.
    pub nodes_exhausted: u64,
    /// Nodes the walk did not reach once it had its candidates.
    pub nodes_skipped: u64,
    pub candidates: u64,
}
