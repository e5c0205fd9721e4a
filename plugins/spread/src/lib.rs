//! Spread (worst fit): prefers the node with the most room left after the
//! placement, so load is spread evenly and a node failure hurts less.
//!
//! Nomad's `ScoreFitSpread`: with `f` the fraction of a resource left free
//! after placing, `score = (10^f_cpu + 10^f_mem) - 2`, in `[0, 18]`, divided
//! by 18. The parts are each resource's share of that sum.

use orch_plugin_sdk::math::pow10;
use orch_plugin_sdk::{Info, ScoreRequest, Scorer, Scores, export_scorer};

#[derive(Debug, Default)]
pub struct Spread;

impl Scorer for Spread {
    const INFO: Info = Info {
        name: "spread",
        version: env!("CARGO_PKG_VERSION"),
        description: "prefers the node with the most room left after placing (worst fit)",
    };

    fn score(&self, request: &ScoreRequest) -> Result<Scores, String> {
        let mut scores = Scores::with_parts(&["cpu", "memory"], request.nodes.len());
        let ask = request.ask;
        for node in &request.nodes {
            let cpu = free_after(
                f64::from(node.capacity.cpu_mhz),
                f64::from(node.allocated.cpu_mhz) + f64::from(ask.cpu_mhz),
            );
            let memory = free_after(
                node.capacity.memory_mib as f64,
                node.allocated.memory_mib as f64 + ask.memory_mib as f64,
            );
            let cpu = (pow10(cpu) - 1.0) / 18.0;
            let memory = (pow10(memory) - 1.0) / 18.0;
            scores.push(cpu + memory, &[cpu, memory]);
        }
        Ok(scores)
    }
}

/// Fraction of `capacity` left free once `used` is taken, in `[0, 1]`; a
/// resource the node does not offer counts as full.
fn free_after(capacity: f64, used: f64) -> f64 {
    if capacity <= 0.0 {
        return 0.0;
    }
    (1.0 - used / capacity).clamp(0.0, 1.0)
}

export_scorer!(Spread);

#[cfg(test)]
mod tests {
    use super::*;
    use orch_plugin_sdk::{Node, Resources};

    #[test]
    fn prefers_the_emptier_node() {
        let empty = Node {
            capacity: Resources {
                cpu_mhz: 4000,
                memory_mib: 8192,
                disk_mib: 0,
            },
            ..Node::default()
        };
        let busy = Node {
            allocated: Resources {
                cpu_mhz: 3000,
                memory_mib: 6000,
                disk_mib: 0,
            },
            ..empty
        };
        let request = ScoreRequest {
            ask: Resources {
                cpu_mhz: 500,
                memory_mib: 256,
                disk_mib: 0,
            },
            nodes: vec![busy, empty].into(),
            ..ScoreRequest::default()
        };
        let s = Spread.score(&request).unwrap();
        assert!(s.scores()[1] > s.scores()[0]);
        assert!(s.scores().iter().all(|v| (0.0..=1.0).contains(v)));
    }
}
