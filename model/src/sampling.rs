//! How many feasible nodes the scheduler scores per placement: a setting of
//! `orch.toml` that `GET /v1/status` reports.

use serde::{Deserialize, Serialize};

/// How many feasible nodes are scored per placement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Sampling {
    /// At least this many candidates (all of them on smaller clusters).
    pub candidates: usize,
    /// Or this percentage of the schedulable nodes, if that is more.
    pub percent: u8,
}

impl Default for Sampling {
    fn default() -> Self {
        Self {
            candidates: 64,
            percent: 0,
        }
    }
}

impl Sampling {
    /// How many candidates to collect among `nodes` schedulable nodes.
    pub fn limit(&self, nodes: usize) -> usize {
        let by_percent = nodes.saturating_mul(usize::from(self.percent.min(100))) / 100;
        self.candidates.max(by_percent).max(1).min(nodes)
    }
}
