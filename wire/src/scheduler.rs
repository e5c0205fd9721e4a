//! Bodies of `/v1/scheduler…`: the scheduler settings in force, changes to
//! them, and the comparison of the scorers that run.

use orch_model::{CandidateMode, Origin, Sampling, ScorerSpec};
use serde::{Deserialize, Serialize};

/// `GET /v1/scheduler`, and the answer to every change: what runs, and
/// where each setting came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchedulerStatus {
    /// The state index the settings were read at.
    pub index: u64,
    pub primary: ScorerRole,
    /// The built-in that scores when a scorer fails; absent: fail closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    pub sampling: Sampling,
    #[serde(default)]
    pub candidates: Vec<CandidateStatus>,
    /// Every scorer known by name (built-ins are known too, unlisted).
    #[serde(default)]
    pub scorers: Vec<NamedScorer>,
    /// Why the settings changed at run time are not in force, when they
    /// could not be applied over the config file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale: Option<String>,
}

/// The primary: its name, what it is, and where the choice came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScorerRole {
    pub name: String,
    /// Name and version as the scorer describes itself.
    pub label: String,
    pub digest: String,
    pub origin: Origin,
}

/// A candidate, with what its lane did since the server started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateStatus {
    pub name: String,
    pub mode: CandidateMode,
    /// Percent of jobs it takes part in.
    pub weight: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jobs: Vec<String>,
    pub label: String,
    pub digest: String,
    pub origin: Origin,
    /// A shadow's counters since its lane started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<ShadowCounters>,
}

/// What a shadow lane did since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShadowCounters {
    pub started_ms: u64,
    pub offered: u64,
    pub scored: u64,
    pub faults: u64,
    /// Offered while its queue was full: never scored.
    pub dropped: u64,
    pub agreed: u64,
    /// Allocations its shadow cluster had no room for.
    pub unplaced: u64,
    pub queued: u64,
}

/// A scorer known by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedScorer {
    pub name: String,
    #[serde(flatten)]
    pub spec: ScorerSpec,
    pub origin: Origin,
    /// `primary`, `shadow`, `split`, or absent when it has no role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// `GET /v1/scheduler/compare`: each scorer side by side over a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The window's start (ms since the epoch).
    pub since_ms: u64,
    pub index: u64,
    pub scorers: Vec<ScorerFigures>,
    /// Each cluster's packing over time (sampled every 10 s since the
    /// server started), oldest first.
    #[serde(default)]
    pub history: Vec<UsageSample>,
}

/// One cluster's packing at one time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageSample {
    pub time_ms: u64,
    pub scorer: String,
    pub nodes_used: u64,
    /// Mean utilization of the used nodes, 0 to 1.
    pub cpu: f64,
    pub memory: f64,
}

/// One scorer's figures in a comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScorerFigures {
    pub name: String,
    /// `primary`, `shadow`, `split` or `fallback` (it answers what the
    /// primary or a split fails on); `past` for a scorer that made
    /// decisions in the window but has no role now.
    pub role: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub label: String,
    /// Decisions it made (placed, or answered in shadow) in the window.
    pub decisions: u64,
    /// Of a shadow's answers, the share that picked the primary's node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agreement: Option<f64>,
    pub latency_p50_us: u64,
    pub latency_p99_us: u64,
    /// Calls that failed (traps, deadlines, bad answers, breaker open).
    /// For the primary and a split, the placements it failed on that
    /// another scorer answered; none for the fallback.
    pub faults: u64,
    /// Placements another scorer made because this one failed: the
    /// fallback's decisions are among the primary's and the splits'
    /// fallbacks.
    pub fallbacks: u64,
    /// Shadow decisions dropped because its queue was full (since its
    /// lane started).
    pub drops: u64,
    /// Packing of its cluster now: the real one for the primary and the
    /// splits (which share it), its shadow cluster for a shadow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packing: Option<Packing>,
}

/// How a cluster is packed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Packing {
    /// Schedulable nodes, and those holding at least one allocation.
    pub nodes: u64,
    pub nodes_used: u64,
    /// Allocations it holds (and, for a shadow, those it found no room for).
    pub allocations: u64,
    #[serde(default)]
    pub unplaced: u64,
    /// Per resource (`cpu`, `memory`, `disk`): mean and p90 utilization of
    /// the used nodes, and the share of the cluster's capacity stranded.
    pub resources: Vec<ResourcePacking>,
    /// Allocations per value of the spread attribute, most first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spread: Vec<SpreadCount>,
    /// Utilization of each used node (the mean of cpu and memory), highest
    /// first: what the terminal picture draws.
    #[serde(default)]
    pub per_node: Vec<f64>,
}

/// How many allocations nodes with one value of the spread attribute hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpreadCount {
    pub value: String,
    pub allocations: u64,
}

/// One resource's packing figures, fractions 0 to 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourcePacking {
    pub resource: String,
    pub mean: f64,
    pub p90: f64,
    /// Free on nodes where another resource is exhausted (less than 5% of
    /// its capacity free), as a share of the cluster's capacity: free but
    /// unusable, as the Borg paper counts it.
    pub stranded: f64,
}

/// `GET /v1/scheduler/decisions`: one page of decision records, oldest
/// first, for a replay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionPage {
    pub decisions: Vec<orch_model::Decision>,
    /// Records matching the query in all (this page and the others),
    /// counted for the first page (no `after`); 0 on the later pages.
    pub total: u64,
    /// Where the window starts, in ms since the epoch (0: the first
    /// record): pass it as `since_ms` for the later pages, so they read the
    /// same window as the first.
    #[serde(default)]
    pub since_ms: u64,
    /// Pass as `after` for the next page; absent on the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<u64>,
}
