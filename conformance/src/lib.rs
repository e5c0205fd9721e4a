//! The conformance suite: checks any plugin against the world it targets.
//! `orch plugin test PATH.wasm` is its front door.
//!
//! The suite reads the component's exports to find its world, then runs that
//! world's checks in order; a check that cannot run because an earlier one
//! failed is reported as skipped. The inputs the checks send are data
//! (`conformance/cases/<kind>/*.toml`, embedded at build time); the
//! misbehaving plugins the suite must catch live in `conformance/fixtures`.

mod cases;
mod report;
mod scorer;

pub use report::{CheckResult, Outcome, Report};

/// The misbehaving fixture plugin `name` (`loop-forever`, `panics`, …; see
/// `conformance/fixtures/cases`), as this build compiled it: for the
/// suite's own tests and for tests of what runs plugins.
pub fn fixture_wasm(name: &str) -> std::path::PathBuf {
    let file = name.replace('-', "_");
    std::path::Path::new(env!("ORCH_FIXTURE_WASM_DIR")).join(format!("{file}.wasm"))
}

/// A request with `nodes` typical nodes from `seed`, as the suite's cases
/// make them: for benchmarks and tests that need realistic input.
pub fn typical_request(nodes: usize, seed: u64) -> orch_plugin_runtime::ScoreRequest {
    orch_plugin_runtime::ScoreRequest {
        placement: seed,
        job_priority: 50,
        ask: orch_plugin_runtime::Resources {
            cpu_mhz: 500,
            memory_mib: 256,
            disk_mib: 100,
        },
        nodes: orch_plugin_runtime::NodeColumns::from_nodes(&cases::typical_nodes(nodes, seed)),
        attribute_names: Vec::new(),
        strings: Vec::new(),
        attributes: Vec::new(),
    }
}

use orch_plugin_runtime::{Limits, Runtime, WorldKind};

/// How thoroughly to test.
#[derive(Debug, Clone)]
pub struct Options {
    /// Limits every call runs with; the budget check measures against them.
    pub limits: Limits,
    /// How many generated edge-case requests to send.
    pub generated_cases: u32,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            generated_cases: 48,
        }
    }
}

/// Runs the suite for whatever world the component `bytes` targets.
pub fn test_component(runtime: &Runtime, name: &str, bytes: &[u8], options: &Options) -> Report {
    let mut report = Report::new(name);
    let component = match runtime.load(name, bytes, &options.limits) {
        Ok(c) => c,
        Err(e) => {
            report.fail("component", e.to_string());
            return report.skip_rest(scorer::CHECKS);
        }
    };
    report.digest = Some(component.digest().to_string());
    report.pass(
        "component",
        format!("a component of {} bytes; compiled", component.size()),
    );
    let inspection = runtime.inspect(&component);
    match inspection.world {
        Some(WorldKind::Scorer) | None => {
            scorer::run(runtime, &component, &inspection, options, report)
        }
        Some(kind) => {
            report.world = Some(kind.world().to_owned());
            report.fail(
                "world",
                format!(
                    "targets {}; this orch has no conformance suite for that world yet, only for {}",
                    kind.world(),
                    WorldKind::Scorer.world()
                ),
            );
            // The scorer's checks mean nothing for this world: not listed.
            report
        }
    }
}
