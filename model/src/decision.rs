//! Decision records: why an allocation went where it went.

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
    /// The number the scorer was given for this placement.
    pub placement: u64,
    /// Nodes in the snapshot.
    pub nodes_evaluated: u64,
    /// Nodes filtered out before scoring, by reason.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub nodes_filtered: BTreeMap<String, u64>,
    /// Feasible nodes that were not sampled.
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
    pub part_names: Vec<String>,
    /// Row-major: candidates × part names.
    pub parts: Vec<f64>,
    /// Index into `candidates` of the node picked.
    pub pick: u32,
    /// Time spent in the scorer call, in microseconds.
    pub scorer_micros: u64,
    /// Time spent on the whole placement (filter, sample, score, pick).
    pub total_micros: u64,
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
}
