//! Evaluations: "something changed for this job; reconcile it".

use crate::AllocMetric;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TriggeredBy {
    JobRegister,
    JobDeregister,
    NodeUpdate,
    NodeDrain,
    AllocFailure,
    /// A blocked evaluation woken by new capacity.
    QueuedAllocs,
    /// Re-created after a failed attempt.
    Retry,
}

impl TriggeredBy {
    pub fn as_str(self) -> &'static str {
        match self {
            TriggeredBy::JobRegister => "job-register",
            TriggeredBy::JobDeregister => "job-deregister",
            TriggeredBy::NodeUpdate => "node-update",
            TriggeredBy::NodeDrain => "node-drain",
            TriggeredBy::AllocFailure => "alloc-failure",
            TriggeredBy::QueuedAllocs => "queued-allocs",
            TriggeredBy::Retry => "retry",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvalStatus {
    /// Waiting for, or in, a scheduler worker.
    #[default]
    Pending,
    Complete,
    /// Could not be scheduled after every retry.
    Failed,
    /// Waiting for capacity: woken when a node joins or resources free up.
    Blocked,
    /// Superseded by a newer evaluation of the same job.
    Canceled,
}

impl EvalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EvalStatus::Pending => "pending",
            EvalStatus::Complete => "complete",
            EvalStatus::Failed => "failed",
            EvalStatus::Blocked => "blocked",
            EvalStatus::Canceled => "canceled",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            EvalStatus::Complete | EvalStatus::Failed | EvalStatus::Canceled
        )
    }
}

impl Evaluation {
    /// A pending evaluation of `job` at its current version, made at
    /// `now_ms`; the store sets the indexes.
    pub fn pending(id: String, job: &crate::Job, triggered_by: TriggeredBy, now_ms: u64) -> Self {
        Self::blank(id, &job.id, job.priority, job.version, triggered_by, now_ms)
    }

    /// An evaluation that follows this one for the same job (a blocked or
    /// a delayed one): same job, version and priority.
    #[must_use]
    pub fn follow_up(&self, id: String, triggered_by: TriggeredBy, now_ms: u64) -> Self {
        Self {
            previous_eval: Some(self.id.clone()),
            ..Self::blank(
                id,
                &self.job_id,
                self.priority,
                self.job_version,
                triggered_by,
                now_ms,
            )
        }
    }

    fn blank(
        id: String,
        job_id: &str,
        priority: u8,
        job_version: u64,
        triggered_by: TriggeredBy,
        now_ms: u64,
    ) -> Self {
        Self {
            id,
            job_id: job_id.to_owned(),
            priority,
            triggered_by,
            status: EvalStatus::Pending,
            status_description: String::new(),
            node_id: None,
            job_version,
            failed_tg_allocs: BTreeMap::new(),
            queued_allocations: BTreeMap::new(),
            blocked_eval: None,
            previous_eval: None,
            wait_until_ms: None,
            attempts: 0,
            snapshot_index: 0,
            create_index: 0,
            modify_index: 0,
            create_time_ms: now_ms,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evaluation {
    pub id: String,
    pub job_id: String,
    /// The job's priority when the evaluation was made; the broker hands out
    /// higher priorities first.
    pub priority: u8,
    pub triggered_by: TriggeredBy,
    #[serde(default)]
    pub status: EvalStatus,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status_description: String,
    /// The node whose change triggered it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    /// The job version it was made for.
    #[serde(default)]
    pub job_version: u64,
    /// Per group, why allocations could not be placed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub failed_tg_allocs: BTreeMap<String, AllocMetric>,
    /// Per group, how many allocations are still waiting for a node.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub queued_allocations: BTreeMap<String, u64>,
    /// The blocked evaluation this one left behind for what it could not
    /// place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_eval: Option<String>,
    /// The evaluation this one follows (a blocked eval's creator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_eval: Option<String>,
    /// Not before this time (ms since the epoch): delayed reschedules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_until_ms: Option<u64>,
    /// Times a worker gave it back (nack) before it completed.
    #[serde(default)]
    pub attempts: u32,
    /// For a blocked evaluation: the index of the state its placements
    /// failed on. Capacity freed after that index wakes it at once, so a
    /// node that joined while it was being planned is not missed.
    #[serde(default)]
    pub snapshot_index: u64,
    #[serde(default)]
    pub create_index: u64,
    #[serde(default)]
    pub modify_index: u64,
    #[serde(default)]
    pub create_time_ms: u64,
}
