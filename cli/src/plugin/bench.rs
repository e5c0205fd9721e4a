//! `orch plugin bench PLUGIN`: a scorer component against a baseline on the
//! same requests, in the same run — by default the built-in binpack
//! component, the scorer every cluster starts with — and against its own
//! native build where orch has one (the built-ins), so a plugin author sees
//! what their scorer costs per placement and what the sandbox adds.

use super::read_plugin;
use anyhow::{Context, Result, bail};
use orch_plugin_runtime::{Limits, Runtime, RuntimeConfig, ScoreRequest, ScorerPlugin};
use orch_plugin_sdk::Scorer as _;
use serde::Serialize;
use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct BenchArgs {
    /// The scorer: a `.wasm` component or `builtin:NAME`.
    plugin: String,
    /// The scorer to compare with, on the same requests.
    #[arg(long, default_value = "builtin:binpack")]
    against: String,
    /// Node counts to measure.
    #[arg(long, value_delimiter = ',', default_values_t = [100, 1_000, 10_000])]
    nodes: Vec<usize>,
    /// Time spent measuring each row, per scorer, in milliseconds.
    #[arg(long, default_value_t = 1500)]
    time_ms: u64,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Row {
    nodes: usize,
    /// The plugin as the scheduler calls it: a warm instance, its answer
    /// validated.
    plugin_ns_per_node: f64,
    /// The call alone (lowering, guest, lifting), without taking an
    /// instance from the pool and validating the answer.
    plugin_call_ns_per_node: f64,
    against_ns_per_node: f64,
    /// plugin / against: above 1, the plugin is slower.
    ratio: f64,
    /// The plugin's own crate compiled natively, where orch has it: the
    /// bare call on a request converted once, as `orch bench scorer`
    /// measured it.
    #[serde(skip_serializing_if = "Option::is_none")]
    native_ns_per_node: Option<f64>,
    /// plugin / native: what the sandbox costs, validation included.
    #[serde(skip_serializing_if = "Option::is_none")]
    native_ratio: Option<f64>,
    /// The call alone / native: what crossing into the component costs.
    #[serde(skip_serializing_if = "Option::is_none")]
    native_call_ratio: Option<f64>,
    iterations: usize,
}

#[derive(Serialize)]
struct Results {
    plugin: String,
    plugin_digest: String,
    against: String,
    rows: Vec<Row>,
    /// A fresh instance from the in-memory compiled cache (median); taken
    /// after a fault, and by replays.
    instantiate_us: f64,
    /// Compiling the plugin from its bytes.
    compile_ms: f64,
    /// Loading it again from the on-disk cache in a new runtime.
    disk_cache_load_ms: f64,
}

impl BenchArgs {
    pub fn run(self) -> Result<ExitCode> {
        let budget = Duration::from_millis(self.time_ms);
        let (name, bytes) = read_plugin(&self.plugin)?;
        let cache = tempfile::Builder::new()
            .prefix("orch-plugin-bench-")
            .tempdir()
            .context("cannot make a temporary compile cache")?;
        let config = RuntimeConfig {
            cache_dir: Some(cache.path().to_owned()),
            ..RuntimeConfig::default()
        };
        let limits = Limits::default();
        let runtime = Runtime::new(config.clone())?;
        let started = Instant::now();
        let component = runtime.load(&name, &bytes, &limits)?;
        let compile = started.elapsed();
        let started = Instant::now();
        let _ = Runtime::new(config)?.load(&name, &bytes, &limits)?;
        let disk_load = started.elapsed();
        let plugin = scorer_of(&runtime, &component, &self.plugin)?;
        let digest = component.digest().to_string();
        let against = {
            let (against_name, against_bytes) = read_plugin(&self.against)?;
            let shared = super::runtime()?;
            let component = shared.load(&against_name, &against_bytes, &limits)?;
            scorer_of(&shared, &component, &self.against)?
        };
        let native = self
            .plugin
            .strip_prefix("builtin:")
            .and_then(native_builtin);

        eprintln!("measuring instantiation…");
        let tiny = orch_conformance::typical_request(1, 1);
        let mut instantiations = Vec::new();
        let _ = measure(budget / 4, || {
            if let Ok(scored) = plugin.fresh().score(&tiny) {
                instantiations.push(scored.stats.instantiate);
            }
        });

        let mut rows = Vec::new();
        for &n in &self.nodes {
            eprintln!("measuring {n} nodes…");
            let request = orch_conformance::typical_request(n, 7);
            let (whole, call, iterations) = time_component(&plugin, &request, budget)?;
            let (against_time, _, _) = time_component(&against, &request, budget)?;
            let native_time = native
                .as_ref()
                .map(|s| time_native(s, &request, budget))
                .transpose()?;
            let per_node = |d: Duration| d.as_nanos() as f64 / n.max(1) as f64;
            let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-12);
            rows.push(Row {
                nodes: n,
                plugin_ns_per_node: per_node(whole),
                plugin_call_ns_per_node: per_node(call),
                against_ns_per_node: per_node(against_time),
                ratio: ratio(whole, against_time),
                native_ns_per_node: native_time.map(per_node),
                native_ratio: native_time.map(|t| ratio(whole, t)),
                native_call_ratio: native_time.map(|t| ratio(call, t)),
                iterations,
            });
        }
        let results = Results {
            plugin: self.plugin.clone(),
            plugin_digest: digest,
            against: self.against.clone(),
            rows,
            instantiate_us: median(instantiations).as_secs_f64() * 1e6,
            compile_ms: compile.as_secs_f64() * 1e3,
            disk_cache_load_ms: disk_load.as_secs_f64() * 1e3,
        };
        if self.json {
            println!("{}", serde_json::to_string_pretty(&results)?);
        } else {
            print!("{}", table(&results));
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// The component as a scorer, or an error saying it is not one.
fn scorer_of(
    runtime: &Runtime,
    component: &orch_plugin_runtime::Component,
    name: &str,
) -> Result<ScorerPlugin> {
    runtime
        .scorer(component, Limits::default())
        .with_context(|| {
            format!("{name} is not a scorer component; `orch plugin bench` measures scorers")
        })
}

/// A scorer crate's `score`, called natively.
type NativeScore = Box<dyn Fn(&orch_plugin_sdk::ScoreRequest) -> Result<(), String>>;

/// The native build of a built-in scorer: the crate's own `score`, on the
/// request as the SDK types it.
fn native_builtin(name: &str) -> Option<NativeScore> {
    Some(match name {
        "binpack" => Box::new(|r| orch_scorer_binpack::Binpack.score(r).map(drop)),
        "spread" => Box::new(|r| orch_scorer_spread::Spread.score(r).map(drop)),
        "epvm" => Box::new(|r| orch_scorer_epvm::Epvm.score(r).map(drop)),
        "round-robin" => Box::new(|r| orch_scorer_round_robin::RoundRobin.score(r).map(drop)),
        _ => return None,
    })
}

/// The median of a whole call and of the call alone, and how many calls.
fn time_component(
    plugin: &ScorerPlugin,
    request: &ScoreRequest,
    budget: Duration,
) -> Result<(Duration, Duration, usize)> {
    // One call first: a scorer that fails here would be timed failing.
    plugin
        .score(request)
        .with_context(|| format!("{} failed on a typical request", plugin.name()))?;
    let mut calls = Vec::new();
    let times = measure(budget, || {
        if let Ok(scored) = plugin.score(black_box(request)) {
            calls.push(scored.stats.call);
        }
    });
    let iterations = times.len();
    Ok((median(times), median(calls), iterations))
}

/// The median native call, on the request converted once beforehand (a
/// component call copies the columns in as it lowers them; the native
/// baseline is the scorer's own work alone).
fn time_native(score: &NativeScore, request: &ScoreRequest, budget: Duration) -> Result<Duration> {
    let request = orch_server::to_sdk(request);
    if let Err(e) = score(&request) {
        bail!("the native build failed on a typical request: {e}");
    }
    Ok(median(measure(budget, || {
        black_box(score(black_box(&request)).ok());
    })))
}

fn table(r: &Results) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let has_native = r.rows.iter().any(|row| row.native_ns_per_node.is_some());
    let _ = writeln!(
        out,
        "{} ({}) against {}: warm instances, answers validated, the same columnar requests",
        r.plugin, r.plugin_digest, r.against
    );
    let _ = write!(
        out,
        "{:>8}  {:>14}  {:>17}  {:>15}  {:>6}",
        "NODES", "PLUGIN ns/node", "CALL-ONLY ns/node", "AGAINST ns/node", "RATIO"
    );
    if has_native {
        let _ = write!(
            out,
            "  {:>14}  {:>9}  {:>14}",
            "NATIVE ns/node", "VS NATIVE", "CALL VS NATIVE"
        );
    }
    out.push('\n');
    for row in &r.rows {
        let _ = write!(
            out,
            "{:>8}  {:>14.1}  {:>17.1}  {:>15.1}  {:>5.2}x",
            row.nodes,
            row.plugin_ns_per_node,
            row.plugin_call_ns_per_node,
            row.against_ns_per_node,
            row.ratio
        );
        if let (Some(native), Some(ratio), Some(call_ratio)) = (
            row.native_ns_per_node,
            row.native_ratio,
            row.native_call_ratio,
        ) {
            let _ = write!(out, "  {native:>14.1}  {ratio:>8.2}x  {call_ratio:>13.2}x");
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "fresh instance from the compiled cache: {:.1} µs (median); compile: {:.0} ms; load from the disk cache: {:.1} ms",
        r.instantiate_us, r.compile_ms, r.disk_cache_load_ms
    );
    out
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
