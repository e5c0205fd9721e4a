//! `orch bench scorer`: the binpack scorer as a component against the same
//! crate compiled natively, in one run, on the same requests.

use anyhow::{Context, Result};
use clap::Subcommand;
use orch_plugin_runtime::{Limits, Runtime, RuntimeConfig};
use orch_plugin_sdk::Scorer as _;
use serde::Serialize;
use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Subcommand)]
pub enum BenchCommand {
    /// How many simulated agents one `orch server` (its own process) keeps
    /// alive at their TTL, at what CPU, and whether any node is marked down
    /// while its agent beats on time.
    Heartbeats(crate::bench_heartbeats::HeartbeatArgs),
    /// Submit-to-running latency of a trivial exec task on a local agent
    /// (a real server and agent, as processes): p50 and p99.
    SubmitToRunning(crate::bench_running::RunningArgs),
    /// Placements per second end to end (store, broker, workers, plan
    /// applier, SQLite commit) at 1,000, 5,000 and 10,000 simulated nodes,
    /// with the binpack component and natively in the same run.
    Placements(crate::bench_placements::PlacementArgs),
    /// Score 100, 1,000 and 10,000 nodes with the binpack component and
    /// natively; print ns per node and the ratio.
    Scorer {
        /// Node counts to measure.
        #[arg(long, value_delimiter = ',', default_values_t = [100, 1_000, 10_000])]
        nodes: Vec<usize>,
        /// Time spent measuring each row, per side, in milliseconds.
        #[arg(long, default_value_t = 1500)]
        time_ms: u64,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Serialize)]
struct Row {
    nodes: usize,
    native_ns_per_node: f64,
    component_ns_per_node: f64,
    /// The call alone (lowering, guest, lifting), without taking an
    /// instance from the pool and validating the answer, per node.
    component_call_ns_per_node: f64,
    ratio: f64,
    call_ratio: f64,
    iterations: usize,
}

#[derive(Serialize)]
struct Results {
    rows: Vec<Row>,
    /// A fresh instance from the in-memory compiled cache (median); taken
    /// after a fault, and by replays.
    instantiate_us: f64,
    /// Compiling the binpack component from its bytes.
    compile_ms: f64,
    /// Loading it again from the on-disk cache in a new runtime.
    disk_cache_load_ms: f64,
}

pub fn run(cmd: BenchCommand) -> Result<ExitCode> {
    let (nodes, time_ms, json) = match cmd {
        BenchCommand::Placements(args) => return crate::bench_placements::run(args),
        BenchCommand::Heartbeats(args) => return crate::bench_heartbeats::run(args),
        BenchCommand::SubmitToRunning(args) => {
            crate::bench_running::run(args)?;
            return Ok(ExitCode::SUCCESS);
        }
        BenchCommand::Scorer {
            nodes,
            time_ms,
            json,
        } => (nodes, time_ms, json),
    };
    let budget = Duration::from_millis(time_ms);
    let builtin = orch_builtins::get("binpack").context("binpack is built in")?;

    let cache = tempfile_dir()?;
    let config = RuntimeConfig {
        cache_dir: Some(cache.clone()),
        ..RuntimeConfig::default()
    };
    let runtime = Runtime::new(config.clone())?;
    let limits = Limits::default();
    let started = Instant::now();
    let component = runtime.load("builtin:binpack", builtin.wasm, &limits)?;
    let compile = started.elapsed();
    let started = Instant::now();
    let _ = Runtime::new(config)?.load("builtin:binpack", builtin.wasm, &limits)?;
    let disk_load = started.elapsed();
    let plugin = runtime.scorer(&component, limits)?;

    eprintln!("measuring instantiation…");
    let tiny = orch_conformance::typical_request(1, 1);
    let mut instantiations = Vec::new();
    let _ = measure(budget / 4, || {
        if let Ok(scored) = plugin.fresh().score(&tiny) {
            instantiations.push(scored.stats.instantiate);
        }
    });

    let mut rows = Vec::new();
    for &n in &nodes {
        eprintln!("measuring {n} nodes…");
        let request = orch_conformance::typical_request(n, 7);
        let native_request = orch::scheduler::score::to_sdk(&request);
        let native = median(measure(budget, || {
            black_box(
                orch_scorer_binpack::Binpack
                    .score(black_box(&native_request))
                    .ok(),
            );
        }));
        let mut calls = Vec::new();
        let component_times = measure(budget, || {
            if let Ok(scored) = plugin.score(black_box(&request)) {
                calls.push(scored.stats.call);
            }
        });
        let iterations = component_times.len();
        let component = median(component_times);
        let call = median(calls);
        let per_node = |d: Duration| d.as_nanos() as f64 / n.max(1) as f64;
        rows.push(Row {
            nodes: n,
            native_ns_per_node: per_node(native),
            component_ns_per_node: per_node(component),
            component_call_ns_per_node: per_node(call),
            ratio: component.as_secs_f64() / native.as_secs_f64().max(1e-12),
            call_ratio: call.as_secs_f64() / native.as_secs_f64().max(1e-12),
            iterations,
        });
    }
    let results = Results {
        rows,
        instantiate_us: median(instantiations).as_secs_f64() * 1e6,
        compile_ms: compile.as_secs_f64() * 1e3,
        disk_cache_load_ms: disk_load.as_secs_f64() * 1e3,
    };
    let _ = std::fs::remove_dir_all(&cache);

    if json {
        println!("{}", serde_json::to_string_pretty(&results)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "binpack scorer: the component (warm instance, output validated) vs the same crate native, on the same columnar request"
    );
    println!(
        "{:>8}  {:>14}  {:>17}  {:>15}  {:>6}  {:>10}",
        "NODES", "NATIVE ns/node", "COMPONENT ns/node", "CALL-ONLY ns/node", "RATIO", "CALL RATIO"
    );
    for r in &results.rows {
        println!(
            "{:>8}  {:>14.1}  {:>17.1}  {:>15.1}  {:>5.2}x  {:>9.2}x",
            r.nodes,
            r.native_ns_per_node,
            r.component_ns_per_node,
            r.component_call_ns_per_node,
            r.ratio,
            r.call_ratio
        );
    }
    println!(
        "fresh instance from the compiled cache: {:.1} µs (median); compile: {:.0} ms; load from the disk cache: {:.1} ms",
        results.instantiate_us, results.compile_ms, results.disk_cache_load_ms
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs `f` a few times to warm up, then for about `budget`; each run's time.
fn measure(budget: Duration, mut f: impl FnMut()) -> Vec<Duration> {
    for _ in 0..3 {
        f();
    }
    let mut times = Vec::new();
    let started = Instant::now();
    while started.elapsed() < budget || times.len() < 10 {
        let t = Instant::now();
        f();
        times.push(t.elapsed());
    }
    times
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times.get(times.len() / 2).copied().unwrap_or_default()
}

fn tempfile_dir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("orch-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}
