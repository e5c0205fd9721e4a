//! Jobs: what a user asks to run. A job file in TOML or a JSON body in the
//! API both become a [`Job`]; the server adds the fields marked "set by the
//! server".

use crate::{Dur, Resources};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Lowest and highest job priority; evaluations of higher-priority jobs are
/// scheduled first.
pub const PRIORITY_RANGE: std::ops::RangeInclusive<u8> = 1..=100;
pub const DEFAULT_PRIORITY: u8 = 50;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobType {
    /// Long-running: allocations that stop are replaced.
    #[default]
    Service,
    /// Runs to completion: allocations that completed are not run again.
    Batch,
    /// One allocation per eligible node.
    System,
}

impl JobType {
    pub fn as_str(self) -> &'static str {
        match self {
            JobType::Service => "service",
            JobType::Batch => "batch",
            JobType::System => "system",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Job {
    /// Unique, stable name of the job: `[a-z0-9][a-z0-9_.-]*`, at most 128.
    pub id: String,
    /// Display name; defaults to the id.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, rename = "type")]
    pub job_type: JobType,
    #[serde(default = "default_priority")]
    pub priority: u8,
    /// Datacenters the job may run in; empty means any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub datacenters: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: BTreeMap<String, String>,
    #[serde(default, rename = "constraint", skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<Constraint>,
    #[serde(default, rename = "affinity", skip_serializing_if = "Vec::is_empty")]
    pub affinities: Vec<Affinity>,
    #[serde(default, rename = "spread", skip_serializing_if = "Vec::is_empty")]
    pub spreads: Vec<Spread>,
    #[serde(rename = "group")]
    pub groups: Vec<TaskGroup>,

    /// Set by the server: the job was stopped (`orch job stop`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub stop: bool,
    /// Set by the server: raised by every change to the job's spec.
    #[serde(default)]
    pub version: u64,
    /// Set by the server: the index at which the job was first registered.
    #[serde(default)]
    pub create_index: u64,
    /// Set by the server: the index of this version.
    #[serde(default)]
    pub modify_index: u64,
    /// Set by the server: when this version was submitted, in milliseconds
    /// since the Unix epoch.
    #[serde(default)]
    pub submit_time_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskGroup {
    /// Unique within the job.
    pub name: String,
    /// How many allocations of the group to run; ignored by system jobs,
    /// which run one per eligible node.
    #[serde(default = "default_count")]
    pub count: u32,
    #[serde(default, rename = "constraint", skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<Constraint>,
    #[serde(default, rename = "affinity", skip_serializing_if = "Vec::is_empty")]
    pub affinities: Vec<Affinity>,
    #[serde(default, rename = "spread", skip_serializing_if = "Vec::is_empty")]
    pub spreads: Vec<Spread>,
    #[serde(default)]
    pub restart: RestartPolicy,
    #[serde(default)]
    pub reschedule: ReschedulePolicy,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: BTreeMap<String, String>,
    #[serde(rename = "task")]
    pub tasks: Vec<Task>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Task {
    /// Unique within the group.
    pub name: String,
    /// The task driver that runs it, e.g. `exec` or `oci`.
    pub driver: String,
    /// Driver-specific configuration, checked by the driver itself.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub config: serde_json::Map<String, serde_json::Value>,
    #[serde(default = "default_task_resources")]
    pub resources: Resources,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default, rename = "artifact", skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<Artifact>,
    #[serde(default, rename = "constraint", skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<Constraint>,
    #[serde(default, rename = "affinity", skip_serializing_if = "Vec::is_empty")]
    pub affinities: Vec<Affinity>,
    /// How long a task gets between its stop signal and a kill.
    #[serde(default = "default_kill_timeout")]
    pub kill_timeout: Dur,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: BTreeMap<String, String>,
}

/// A file fetched into the task's directory before it starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    /// `http://`, `https://` or `file://` URL.
    pub source: String,
    /// Path inside the task directory; defaults to `local/`.
    #[serde(default = "default_artifact_destination")]
    pub destination: String,
    /// Hex sha256 of the content; required for http(s) sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Set the executable bit on the fetched file.
    #[serde(default, skip_serializing_if = "is_false")]
    pub executable: bool,
}

/// Operators of constraints and affinities, written as in Nomad.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Operator {
    #[default]
    #[serde(rename = "=")]
    Equal,
    #[serde(rename = "!=")]
    NotEqual,
    #[serde(rename = "<")]
    Less,
    #[serde(rename = "<=")]
    LessEqual,
    #[serde(rename = ">")]
    Greater,
    #[serde(rename = ">=")]
    GreaterEqual,
    /// The attribute matches a regular expression.
    #[serde(rename = "regexp")]
    Regexp,
    /// The attribute is a version within a range such as `>= 1.2, < 2`.
    #[serde(rename = "version")]
    Version,
    /// The attribute, a comma-separated set, contains every listed value.
    #[serde(rename = "set_contains")]
    SetContains,
    #[serde(rename = "is_set")]
    IsSet,
    #[serde(rename = "is_not_set")]
    IsNotSet,
    /// No two allocations of the job (or group) on one node; takes no
    /// attribute.
    #[serde(rename = "distinct_hosts")]
    DistinctHosts,
}

impl Operator {
    pub const ALL: [Operator; 12] = [
        Operator::Equal,
        Operator::NotEqual,
        Operator::Less,
        Operator::LessEqual,
        Operator::Greater,
        Operator::GreaterEqual,
        Operator::Regexp,
        Operator::Version,
        Operator::SetContains,
        Operator::IsSet,
        Operator::IsNotSet,
        Operator::DistinctHosts,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Equal => "=",
            Operator::NotEqual => "!=",
            Operator::Less => "<",
            Operator::LessEqual => "<=",
            Operator::Greater => ">",
            Operator::GreaterEqual => ">=",
            Operator::Regexp => "regexp",
            Operator::Version => "version",
            Operator::SetContains => "set_contains",
            Operator::IsSet => "is_set",
            Operator::IsNotSet => "is_not_set",
            Operator::DistinctHosts => "distinct_hosts",
        }
    }
}

/// A hard requirement on the node: a node that does not meet it is not a
/// candidate.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Constraint {
    /// `${attr.kernel.name}`, `${node.datacenter}`, `${meta.rack}`...;
    /// empty for `distinct_hosts`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub attribute: String,
    #[serde(default)]
    pub operator: Operator,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
}

/// A soft preference: nodes that meet it score higher (or lower, with a
/// negative weight).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Affinity {
    pub attribute: String,
    #[serde(default)]
    pub operator: Operator,
    #[serde(default)]
    pub value: String,
    /// -100 to 100, not 0.
    #[serde(default = "default_affinity_weight")]
    pub weight: i8,
}

/// Spread allocations over the values of a node attribute.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spread {
    pub attribute: String,
    /// 1 to 100.
    #[serde(default = "default_spread_weight")]
    pub weight: u8,
    /// Desired shares per value; empty means even over the values seen.
    #[serde(default, rename = "target", skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<SpreadTarget>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpreadTarget {
    pub value: String,
    /// Share of the group's allocations, 0 to 100.
    pub percent: u8,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestartMode {
    /// After `attempts` restarts within `interval`, the allocation fails.
    #[default]
    Fail,
    /// After `attempts` restarts within `interval`, wait out the interval
    /// and try again.
    Delay,
}

/// Restarts of a task in place, on its node, by the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartPolicy {
    #[serde(default = "default_restart_attempts")]
    pub attempts: u32,
    #[serde(default = "default_restart_interval")]
    pub interval: Dur,
    #[serde(default = "default_restart_delay")]
    pub delay: Dur,
    #[serde(default)]
    pub mode: RestartMode,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            attempts: default_restart_attempts(),
            interval: default_restart_interval(),
            delay: default_restart_delay(),
            mode: RestartMode::default(),
        }
    }
}

/// Replacement of a failed allocation on another node, by the scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReschedulePolicy {
    /// Replacements allowed within `interval`; ignored when `unlimited`.
    #[serde(default = "default_reschedule_attempts")]
    pub attempts: u32,
    #[serde(default = "default_reschedule_interval")]
    pub interval: Dur,
    /// Wait before the first replacement; doubles up to `max_delay`.
    #[serde(default = "default_reschedule_delay")]
    pub delay: Dur,
    #[serde(default = "default_reschedule_max_delay")]
    pub max_delay: Dur,
    #[serde(default)]
    pub unlimited: bool,
}

impl Default for ReschedulePolicy {
    fn default() -> Self {
        Self {
            attempts: default_reschedule_attempts(),
            interval: default_reschedule_interval(),
            delay: default_reschedule_delay(),
            max_delay: default_reschedule_max_delay(),
            unlimited: false,
        }
    }
}

impl Job {
    pub fn group(&self, name: &str) -> Option<&TaskGroup> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// The job's name for display: its name, or its id.
    pub fn display_name(&self) -> &str {
        if self.name.is_empty() {
            &self.id
        } else {
            &self.name
        }
    }

    /// Whether `other` asks for the same thing: the user's spec, ignoring
    /// what the server sets and the order groups and tasks are written in
    /// (they are matched by name, as `orch job plan`'s diff matches them).
    /// A register that changes nothing makes no new version.
    pub fn same_spec(&self, other: &Job) -> bool {
        let strip = |j: &Job| {
            let mut j = Job {
                stop: false,
                version: 0,
                create_index: 0,
                modify_index: 0,
                submit_time_ms: 0,
                ..j.clone()
            };
            j.groups.sort_by(|a, b| a.name.cmp(&b.name));
            for g in &mut j.groups {
                g.tasks.sort_by(|a, b| a.name.cmp(&b.name));
            }
            j
        };
        strip(self) == strip(other)
    }
}

impl Job {
    /// A digest of what an allocation of `group` runs and where it may run:
    /// the group's tasks, its and the job's constraints, affinities, spreads,
    /// datacenters and metadata. Not its `count`, restart or reschedule
    /// policy, priority or name: changing those updates allocations in place
    /// (Nomad's rule), changing anything hashed here replaces them.
    pub fn group_spec_hash(&self, group: &TaskGroup) -> String {
        let relevant = serde_json::json!({
            "datacenters": self.datacenters,
            "meta": self.meta,
            "constraints": self.constraints,
            "affinities": self.affinities,
            "spreads": self.spreads,
            "group_constraints": group.constraints,
            "group_affinities": group.affinities,
            "group_spreads": group.spreads,
            "group_meta": group.meta,
            "tasks": group.tasks,
        });
        // FNV-1a over the canonical JSON (object keys sorted): stable across
        // releases and machines, unlike std's hasher.
        let text = relevant.to_string();
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in text.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{hash:016x}")
    }
}

impl TaskGroup {
    /// What one allocation of the group asks for: the sum of its tasks.
    pub fn resources(&self) -> Resources {
        self.tasks
            .iter()
            .fold(Resources::ZERO, |sum, t| sum.saturating_add(t.resources))
    }

    /// Drivers the group's tasks need on a node.
    pub fn drivers(&self) -> impl Iterator<Item = &str> {
        self.tasks.iter().map(|t| t.driver.as_str())
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}
fn default_priority() -> u8 {
    DEFAULT_PRIORITY
}
fn default_count() -> u32 {
    1
}
fn default_task_resources() -> Resources {
    Resources::new(100, 300, 0)
}
fn default_kill_timeout() -> Dur {
    Dur::secs(5)
}
fn default_artifact_destination() -> String {
    "local/".to_owned()
}
fn default_affinity_weight() -> i8 {
    50
}
fn default_spread_weight() -> u8 {
    50
}
fn default_restart_attempts() -> u32 {
    2
}
fn default_restart_interval() -> Dur {
    Dur::secs(30 * 60)
}
fn default_restart_delay() -> Dur {
    Dur::secs(15)
}
fn default_reschedule_attempts() -> u32 {
    3
}
fn default_reschedule_interval() -> Dur {
    Dur::secs(3600)
}
fn default_reschedule_delay() -> Dur {
    Dur::secs(5)
}
fn default_reschedule_max_delay() -> Dur {
    Dur::secs(3600)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests may")]
    use super::*;

    #[test]
    fn the_order_of_groups_and_tasks_is_not_a_change() {
        let job: Job = serde_json::from_value(serde_json::json!({
            "id": "j",
            "group": [
                {"name": "a", "task": [{"name": "x", "driver": "exec"}, {"name": "y", "driver": "exec"}]},
                {"name": "b", "task": [{"name": "z", "driver": "exec"}]},
            ],
        }))
        .unwrap();
        let mut swapped = job.clone();
        swapped.groups.reverse();
        swapped.groups[1].tasks.reverse();
        assert!(job.same_spec(&swapped));
        swapped.groups[0].count = 2;
        assert!(!job.same_spec(&swapped));
    }
}
