//! Decision records: why an allocation went where it went.

use crate::Resources;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One placement decision, complete enough to show the score table
/// (`orch alloc status --verbose`), to replay the decision against another
/// scorer, and to answer "why not node X". Candidates are kept in the order
/// the scorer saw them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    pub alloc_id: String,
    pub eval_id: String,
    pub job_id: String,
    pub group: String,
    /// The scorer's name and version as it describes itself.
    pub scorer: String,
    /// sha256 of the scorer component (or of the native build's name for the
    /// native baseline).
    pub scorer_digest: String,
    /// The scorer's name in the scheduler settings (`orch scheduler
    /// status`); empty in records written before scorers had names.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scorer_name: String,
    /// The scorer meant to place this: the primary, or the split candidate
    /// that places the job. Differs from `scorer_name` when it failed and
    /// another answered (see `scorer_failure`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub policy: String,
    /// Set when `policy` is a split candidate rather than the primary.
    #[serde(default, skip_serializing_if = "is_false")]
    pub split: bool,
    /// When the decision was made (ms since the epoch); 0 in records
    /// written before it was kept.
    #[serde(default)]
    pub time_ms: u64,
    /// Set when the configured scorer failed and the fallback (named in
    /// `scorer`) answered: the configured scorer's error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scorer_failure: Option<String>,
    /// The number the scorer was given for this placement.
    pub placement: u64,
    /// The index of the state the placement was made on.
    #[serde(default)]
    pub snapshot_index: u64,
    /// The job's priority and the allocation's ask, as the scorer got them.
    #[serde(default)]
    pub job_priority: u8,
    #[serde(default)]
    pub ask: Resources,
    /// What the scorer was told about each candidate: with `placement`,
    /// `job_priority` and `ask`, the whole request, so the decision can be
    /// replayed against this or another scorer.
    #[serde(default)]
    pub inputs: CandidateInputs,
    /// Schedulable nodes (ready, eligible, not draining) when it was placed.
    pub nodes_evaluated: u64,
    /// Nodes filtered out before scoring, by reason.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub nodes_filtered: BTreeMap<String, u64>,
    /// Nodes the walk did not reach once it had its candidates, feasible or
    /// not (they were not examined).
    #[serde(default)]
    pub nodes_skipped: u64,
    /// The candidates, by node id.
    pub candidates: Vec<String>,
    /// The scorer's score of each candidate.
    pub scores: Vec<f64>,
    /// Affinity and spread adjustments the host added, per candidate
    /// (empty when the job has none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_adjustments: Vec<f64>,
    /// What the final score averages over (1 for the scorer's score, plus
    /// one per kind of preference): `final = (score + preferences) /
    /// host_divisor`, so the adjustment above is `final - score`. Another
    /// scorer's final score on the same candidates (a shadow's, a replay's)
    /// is `final + (its score - score) / host_divisor`. Absent (0) in
    /// records without preferences or written before it was kept.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub host_divisor: f64,
    pub part_names: Vec<String>,
    /// Row-major: candidates × part names.
    pub parts: Vec<f64>,
    /// Index into `candidates` of the node picked.
    pub pick: u32,
    /// Time spent in the call of the scorer that answered, in
    /// microseconds (a failed call before it, when the fallback answered,
    /// is not in it).
    pub scorer_micros: u64,
    /// Time spent on the whole placement (filter, sample, score, pick).
    pub total_micros: u64,
}

/// The scorer's view of the candidates, column by column in candidate
/// order (the `node-columns` and attributes of `orch:scheduler`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CandidateInputs {
    pub cpu_capacity: Vec<u32>,
    pub memory_capacity: Vec<u64>,
    pub disk_capacity: Vec<u64>,
    pub cpu_allocated: Vec<u32>,
    pub memory_allocated: Vec<u64>,
    pub disk_allocated: Vec<u64>,
    pub job_allocs: Vec<u32>,
    pub total_allocs: Vec<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attribute_names: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub strings: Vec<String>,
    /// Row-major: candidates × attribute names; `u32::MAX` when a node does
    /// not have the attribute.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<u32>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

impl Decision {
    pub fn picked_node(&self) -> Option<&str> {
        self.candidates.get(self.pick as usize).map(String::as_str)
    }

    /// The final score of candidate `i`: the scorer's plus the host's
    /// adjustments.
    pub fn final_score(&self, i: usize) -> Option<f64> {
        let base = *self.scores.get(i)?;
        Some(base + self.host_adjustments.get(i).copied().unwrap_or(0.0))
    }

    /// The final score candidate `i` would have had with `score` from
    /// another scorer, the job's preferences weighed as they were.
    pub fn final_score_with(&self, i: usize, score: f64) -> f64 {
        let Some(recorded) = self.final_score(i) else {
            return score;
        };
        let divisor = if self.host_divisor > 0.0 {
            self.host_divisor
        } else {
            1.0
        };
        let base = self.scores.get(i).copied().unwrap_or(0.0);
        recorded + (score - base) / divisor
    }
}
