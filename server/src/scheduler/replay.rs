//! Replay: a recorded decision scored again, by the same scorer or another,
//! from the exact request the record keeps, and the pick it leads to
//! (host adjustments included, as the primary's and a shadow's are).
//! Replaying with the scorer that made a decision gives its pick again;
//! replaying with a shadow's scorer gives the shadow's same-snapshot pick.

use super::score::{Scorer, request_of};
use super::shadow::pick;
use orch_model::Decision;

/// What a replayed scorer said of one decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Replayed {
    /// Index into the decision's candidates of its pick.
    pub pick: usize,
    pub scores: Vec<f64>,
    pub part_names: Vec<String>,
    /// Row-major: candidates × part names.
    pub parts: Vec<f64>,
}

impl Replayed {
    /// Whether it picked the node the decision picked.
    pub fn agrees(&self, d: &Decision) -> bool {
        self.pick == d.pick as usize
    }
}

/// Scores `d`'s recorded request with `scorer`; its error (as the scorer
/// or the answer check words it) when it gives no usable answer.
pub fn replay(scorer: &dyn Scorer, d: &Decision) -> Result<Replayed, String> {
    let request = request_of(d);
    let nodes = d.candidates.len();
    let response = scorer.score(&request).map_err(|e| e.to_string())?;
    orch_plugin_runtime::validate_response(&response, nodes).map_err(|p| p.to_string())?;
    Ok(Replayed {
        pick: pick(d, &response.scores, None),
        scores: response.scores,
        part_names: response.part_names,
        parts: response.parts,
    })
}

/// Row `i` of row-major `parts` with `width` columns.
pub fn row(parts: &[f64], width: usize, i: usize) -> Vec<f64> {
    parts
        .get(i * width..(i + 1) * width)
        .map(<[f64]>::to_vec)
        .unwrap_or_default()
}
