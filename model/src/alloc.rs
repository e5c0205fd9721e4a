//! Allocations: one task group of one job version placed on one node.

use crate::Resources;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What the server wants of an allocation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DesiredStatus {
    #[default]
    Run,
    Stop,
    /// Stopped to make room or move off a draining node.
    Evict,
}

/// What the agent reports of an allocation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientStatus {
    #[default]
    Pending,
    Running,
    Complete,
    Failed,
    /// Its node went down.
    Lost,
}

impl ClientStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientStatus::Pending => "pending",
            ClientStatus::Running => "running",
            ClientStatus::Complete => "complete",
            ClientStatus::Failed => "failed",
            ClientStatus::Lost => "lost",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            ClientStatus::Complete | ClientStatus::Failed | ClientStatus::Lost
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Allocation {
    pub id: String,
    /// `JOB.GROUP[INDEX]`, e.g. `web.frontend[2]`.
    pub name: String,
    pub job_id: String,
    pub job_version: u64,
    pub group: String,
    /// Which of the group's `count` slots this allocation fills.
    pub index: u32,
    pub node_id: String,
    /// The evaluation that placed it.
    pub eval_id: String,
    /// What the allocation holds on its node.
    pub resources: Resources,
    /// [`crate::Job::group_spec_hash`] of what it runs. A new job version
    /// with the same hash updates the allocation in place; a different one
    /// replaces it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub spec_hash: String,
    #[serde(default)]
    pub desired_status: DesiredStatus,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub desired_description: String,
    #[serde(default)]
    pub client_status: ClientStatus,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub client_description: String,
    /// The allocation this one replaces, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_allocation: Option<String>,
    /// Times the slot was rescheduled after failures, as milliseconds since
    /// the epoch; the reschedule policy counts them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reschedule_times_ms: Vec<u64>,
    #[serde(default)]
    pub create_index: u64,
    #[serde(default)]
    pub modify_index: u64,
    #[serde(default)]
    pub create_time_ms: u64,
    /// When the agent last reported a new client status, in milliseconds
    /// since the epoch; a failed allocation's reschedule delay counts from it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub client_time_ms: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Allocation {
    /// Whether the allocation holds resources on its node: the server still
    /// wants it and it has not ended.
    pub fn holds_resources(&self) -> bool {
        self.desired_status == DesiredStatus::Run && !self.client_status.is_terminal()
    }

    /// Whether it has ended or is being stopped: it no longer fills its slot.
    pub fn is_terminal(&self) -> bool {
        !self.holds_resources()
    }
}

/// Why some of a group's allocations could not be placed: what
/// `orch eval status` prints.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllocMetric {
    /// Nodes in the snapshot.
    pub nodes_evaluated: u64,
    /// Nodes that were filtered out, by reason (`constraint ${attr.os} = linux`,
    /// `missing driver exec`, `node not ready`, ...).
    #[serde(default)]
    pub nodes_filtered: BTreeMap<String, u64>,
    /// Nodes that passed the filters but had no room.
    #[serde(default)]
    pub nodes_exhausted: u64,
    /// The dimension each exhausted node ran out of.
    #[serde(default)]
    pub dimension_exhausted: BTreeMap<String, u64>,
    /// Further allocations of the group that failed for the same reasons.
    #[serde(default)]
    pub coalesced_failures: u64,
}

impl AllocMetric {
    pub fn filter(&mut self, reason: impl Into<String>) {
        *self.nodes_filtered.entry(reason.into()).or_default() += 1;
    }

    pub fn exhaust(&mut self, dimension: &str) {
        self.nodes_exhausted += 1;
        *self
            .dimension_exhausted
            .entry(dimension.to_owned())
            .or_default() += 1;
    }
}
