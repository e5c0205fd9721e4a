//! E-PVM, the cost model Borg used: each resource of a node costs
//! `BASE^utilisation`, a convex function, and a placement is scored by how
//! little it raises the node's total cost. Loaded nodes get expensive fast,
//! so load spreads across cpu, memory and disk together.
//!
//! The score is `1 - mean(marginal cost / max marginal cost)` over the three
//! resources; each part is one resource's third of it. Resources the
//! allocation does not ask for add no cost.

use orch_plugin_sdk::math::pow2;
use orch_plugin_sdk::{Info, ScoreRequest, Scorer, Scores, export_scorer};

/// Base of the cost function (see [`pow2`] below). Borg's paper leaves it
/// open; 2 keeps an empty node's marginal cost at half a full one's.
const BASE: f64 = 2.0;

#[derive(Debug, Default)]
pub struct Epvm;

impl Scorer for Epvm {
    const INFO: Info = Info {
        name: "epvm",
        version: env!("CARGO_PKG_VERSION"),
        description: "prefers the placement that raises the node's convex cost least (Borg's E-PVM)",
    };

    fn score(&self, request: &ScoreRequest) -> Result<Scores, String> {
        let mut scores = Scores::with_parts(&["cpu", "memory", "disk"], request.nodes.len());
        let ask = request.ask;
        for node in &request.nodes {
            let cpu = part(
                f64::from(node.capacity.cpu_mhz),
                f64::from(node.allocated.cpu_mhz),
                f64::from(ask.cpu_mhz),
            );
            let memory = part(
                node.capacity.memory_mib as f64,
                node.allocated.memory_mib as f64,
                ask.memory_mib as f64,
            );
            let disk = part(
                node.capacity.disk_mib as f64,
                node.allocated.disk_mib as f64,
                ask.disk_mib as f64,
            );
            scores.push(cpu + memory + disk, &[cpu, memory, disk]);
        }
        Ok(scores)
    }
}

/// One resource's third of the score: 1/3 when placing costs nothing, 0 when
/// it costs the most a placement can (from empty to full).
fn part(capacity: f64, used: f64, ask: f64) -> f64 {
    if ask <= 0.0 {
        return 1.0 / 3.0;
    }
    if capacity <= 0.0 {
        return 0.0;
    }
    let before = (used / capacity).clamp(0.0, 1.0);
    let after = ((used + ask) / capacity).clamp(0.0, 1.0);
    let marginal = pow2(after) - pow2(before);
    (1.0 - marginal / (BASE - 1.0)).clamp(0.0, 1.0) / 3.0
}

export_scorer!(Epvm);

#[cfg(test)]
mod tests {
    use super::*;
    use orch_plugin_sdk::{Node, Resources};

    #[test]
    fn prefers_the_less_loaded_node() {
        let cap = Resources {
            cpu_mhz: 4000,
            memory_mib: 8192,
            disk_mib: 10_000,
        };
        let light = Node {
            capacity: cap,
            ..Node::default()
        };
        let heavy = Node {
            capacity: cap,
            allocated: Resources {
                cpu_mhz: 3000,
                memory_mib: 6000,
                disk_mib: 5000,
            },
            ..Node::default()
        };
        let request = ScoreRequest {
            ask: Resources {
                cpu_mhz: 500,
                memory_mib: 512,
                disk_mib: 100,
            },
            nodes: vec![heavy, light].into(),
            ..ScoreRequest::default()
        };
        let s = Epvm.score(&request).unwrap();
        assert!(s.scores()[1] > s.scores()[0], "{:?}", s.scores());
        assert!(s.scores().iter().all(|v| (0.0..=1.0).contains(v)));
    }
}
