//! Round-robin: rotates through the candidates, one step per placement
//! decision. Deterministic: the rotation comes from the decision's number,
//! not from state kept between calls, so a replay picks the same node.

use orch_plugin_sdk::{Info, ScoreRequest, Scorer, Scores, export_scorer};

#[derive(Debug, Default)]
pub struct RoundRobin;

impl Scorer for RoundRobin {
    const INFO: Info = Info {
        name: "round-robin",
        version: env!("CARGO_PKG_VERSION"),
        description: "rotates through the candidates, one step per placement",
    };

    fn score(&self, request: &ScoreRequest) -> Result<Scores, String> {
        let n = request.nodes.len() as u64;
        let mut scores = Scores::with_parts(&["rotation"], request.nodes.len());
        if n == 0 {
            return Ok(scores);
        }
        let first = request.placement % n;
        for i in 0..n {
            // Distance from this decision's first node, walking forward.
            let distance = (i + n - first) % n;
            let s = 1.0 - distance as f64 / n as f64;
            scores.push(s, &[s]);
        }
        Ok(scores)
    }
}

export_scorer!(RoundRobin);

#[cfg(test)]
mod tests {
    use super::*;
    use orch_plugin_sdk::Node;

    fn best(placement: u64, nodes: usize) -> usize {
        let request = ScoreRequest {
            placement,
            nodes: vec![Node::default(); nodes].into(),
            ..ScoreRequest::default()
        };
        let s = RoundRobin.score(&request).unwrap();
        let (i, _) = s
            .scores()
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap();
        i
    }

    #[test]
    fn rotates_one_node_per_placement() {
        let picks: Vec<usize> = (0..7).map(|p| best(p, 3)).collect();
        assert_eq!(picks, vec![0, 1, 2, 0, 1, 2, 0]);
    }
}
