//! Binpack: Nomad's default scorer. Prefers the node that will be fullest
//! after the placement, so whole nodes stay free for large allocations.
//!
//! Nomad's `ScoreFitBinPack`: with `f` the fraction of a resource left free
//! after placing, `score = 20 - (10^f_cpu + 10^f_mem)`, in `[0, 18]`, divided
//! by 18. The parts are each resource's share of that sum.

use orch_plugin_sdk::math::pow10;
use orch_plugin_sdk::{Info, ScoreRequest, Scorer, Scores, export_scorer};

#[derive(Debug, Default)]
pub struct Binpack;

impl Scorer for Binpack {
    const INFO: Info = Info {
        name: "binpack",
        version: env!("CARGO_PKG_VERSION"),
        description: "prefers the node that is fullest after placing (Nomad's binpack)",
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
            let cpu = (10.0 - pow10(cpu)) / 18.0;
            let memory = (10.0 - pow10(memory)) / 18.0;
            scores.push(cpu + memory, &[cpu, memory]);
        }
        Ok(scores)
    }
}

/// Fraction of `capacity` left free once `used` is taken, in `[0, 1]`; a
/// resource the node does not offer counts as full.
pub fn free_after(capacity: f64, used: f64) -> f64 {
    if capacity <= 0.0 {
        return 0.0;
    }
    (1.0 - used / capacity).clamp(0.0, 1.0)
}

export_scorer!(Binpack);

#[cfg(test)]
mod tests {
    use super::*;
    use orch_plugin_sdk::{Node, Resources};

    fn node(cpu: u32, mem: u64, used_cpu: u32, used_mem: u64) -> Node {
        Node {
            capacity: Resources {
                cpu_mhz: cpu,
                memory_mib: mem,
                disk_mib: 0,
            },
            allocated: Resources {
                cpu_mhz: used_cpu,
                memory_mib: used_mem,
                disk_mib: 0,
            },
            ..Node::default()
        }
    }

    #[test]
    fn prefers_the_fuller_node_and_parts_add_up() {
        let request = ScoreRequest {
            ask: Resources {
                cpu_mhz: 500,
                memory_mib: 256,
                disk_mib: 0,
            },
            nodes: vec![node(4000, 8192, 0, 0), node(4000, 8192, 3000, 6000)].into(),
            ..ScoreRequest::default()
        };
        let s = Binpack.score(&request).unwrap();
        assert!(s.scores()[1] > s.scores()[0]);
        for i in 0..2 {
            let sum: f64 = s.parts_of(i).iter().sum();
            assert!((sum - s.scores()[i]).abs() < 1e-12);
            assert!((0.0..=1.0).contains(&s.scores()[i]));
        }
    }

    #[test]
    fn a_node_filled_exactly_scores_one() {
        let request = ScoreRequest {
            ask: Resources {
                cpu_mhz: 1000,
                memory_mib: 1024,
                disk_mib: 0,
            },
            nodes: vec![node(1000, 1024, 0, 0), node(0, 0, 0, 0)].into(),
            ..ScoreRequest::default()
        };
        let s = Binpack.score(&request).unwrap();
        assert!((s.scores()[0] - 1.0).abs() < 1e-12);
        // No capacity at all counts as full, not as NaN.
        assert!(s.scores()[1].is_finite());
    }
}
