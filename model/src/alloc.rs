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
    /// Per task, where it is and what happened to it, as its agent last
    /// reported.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub task_states: BTreeMap<String, TaskState>,
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
    /// Schedulable nodes (ready, eligible, not draining) in the snapshot:
    /// those the placement could examine. A node that takes nothing new is
    /// in no count here.
    pub nodes_evaluated: u64,
    /// Nodes that were filtered out, by reason (`constraint ${attr.os} = linux`,
    /// `missing driver exec`, `distinct_hosts`, ...).
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

/// Where a task is in its life, as Nomad names it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Received, fetching artifacts, or waiting to restart.
    #[default]
    Pending,
    Running,
    /// Ended for good: `failed` on its [`TaskState`] says how.
    Dead,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Pending => "pending",
            TaskStatus::Running => "running",
            TaskStatus::Dead => "dead",
        }
    }
}

/// What kind of thing happened to a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskEventKind {
    /// The agent took the allocation.
    Received,
    /// The task directory is being set up.
    TaskSetup,
    /// The driver refused the task's config, or its host could not set up.
    SetupFailure,
    DownloadingArtifacts,
    ArtifactFailed,
    /// The driver could not start the task.
    DriverFailure,
    Started,
    /// The task exited on its own (or was killed by something else).
    Terminated,
    /// The restart policy restarts it after a delay.
    Restarting,
    /// The restart policy has no restarts left.
    NotRestarting,
    /// The agent is stopping it (the server asked, or the allocation is gone).
    Killing,
    Killed,
    /// The agent restarted and re-attached the running task.
    Recovered,
}

impl TaskEventKind {
    /// How `orch alloc status` names it.
    pub fn title(self) -> &'static str {
        match self {
            TaskEventKind::Received => "Received",
            TaskEventKind::TaskSetup => "Task Setup",
            TaskEventKind::SetupFailure => "Setup Failure",
            TaskEventKind::DownloadingArtifacts => "Downloading Artifacts",
            TaskEventKind::ArtifactFailed => "Failed Artifact Download",
            TaskEventKind::DriverFailure => "Driver Failure",
            TaskEventKind::Started => "Started",
            TaskEventKind::Terminated => "Terminated",
            TaskEventKind::Restarting => "Restarting",
            TaskEventKind::NotRestarting => "Not Restarting",
            TaskEventKind::Killing => "Killing",
            TaskEventKind::Killed => "Killed",
            TaskEventKind::Recovered => "Recovered",
        }
    }
}

/// One thing that happened to a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskEvent {
    #[serde(rename = "type")]
    pub kind: TaskEventKind,
    /// Milliseconds since the Unix epoch, on the agent's clock.
    pub time_ms: u64,
    /// What a person needs to know: the error, the exit code, the delay.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<u32>,
}

impl TaskEvent {
    pub fn new(kind: TaskEventKind, time_ms: u64, message: impl Into<String>) -> Self {
        Self {
            kind,
            time_ms,
            message: message.into(),
            exit_code: None,
            signal: None,
        }
    }
}

/// A task's state as its agent reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskState {
    pub state: TaskStatus,
    /// Whether it ended in failure (only meaningful when `dead`).
    #[serde(default)]
    pub failed: bool,
    /// Restarts in place by the agent so far.
    #[serde(default)]
    pub restarts: u32,
    /// When it last started, in milliseconds since the epoch; 0 never.
    #[serde(default)]
    pub started_at_ms: u64,
    /// When it ended for good; 0 while it may still run.
    #[serde(default)]
    pub finished_at_ms: u64,
    /// The most recent events, oldest first (at most [`TaskState::MAX_EVENTS`]).
    #[serde(default)]
    pub events: Vec<TaskEvent>,
}

impl TaskState {
    /// Events kept per task; older ones are dropped, as in Nomad.
    pub const MAX_EVENTS: usize = 10;

    /// Longest event message kept, in bytes; longer ones are cut (the
    /// server refuses reports with messages past its own, larger cap).
    pub const MAX_MESSAGE: usize = 2048;

    /// Appends `event`, dropping the oldest beyond [`Self::MAX_EVENTS`].
    pub fn push(&mut self, mut event: TaskEvent) {
        if event.message.len() > Self::MAX_MESSAGE {
            let mut cut = Self::MAX_MESSAGE - '…'.len_utf8();
            while !event.message.is_char_boundary(cut) {
                cut -= 1;
            }
            event.message.truncate(cut);
            event.message.push('…');
        }
        self.events.push(event);
        let extra = self.events.len().saturating_sub(Self::MAX_EVENTS);
        self.events.drain(..extra);
    }
}
