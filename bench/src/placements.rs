//! `orch-bench placements`: placements per second end to end — jobs
//! submitted to the store, evaluations through the broker, scheduler
//! workers, the plan applier and the SQLite commit — on simulated clusters,
//! with the binpack component and, in the same run, the same crate built
//! natively; with `--shadows 0,1,3`, the component primary again with that
//! many shadow candidates beside it (spread, epvm, round-robin; or, with
//! `--looping-shadow`, one that spins until its deadline on every call), so
//! what shadows cost the primary is read off the same run.

use anyhow::{Context, Result};
use orch_model::{EvalStatus, Job, Node};
use orch_plugin_runtime::{Limits, Runtime, RuntimeConfig};
use orch_server::{
    ComponentScorer as Component, ControlPlane, Durability, NativeScorer as Native, Op, Sampling,
    Scheduler, Scorer, ShadowSpec, Shadows, Store, StoreOptions,
};
use serde::Serialize;
use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct PlacementArgs {
    /// Simulated cluster sizes.
    #[arg(long, value_delimiter = ',', default_values_t = [1_000, 5_000, 10_000])]
    nodes: Vec<usize>,
    /// Jobs submitted per run.
    #[arg(long, default_value_t = 400)]
    jobs: usize,
    /// Allocations per job (the group's count).
    #[arg(long, default_value_t = 25)]
    count: u32,
    /// Scheduler worker threads.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Candidates scored per placement, one run per value (a value at
    /// least the node count scores every node).
    #[arg(long, value_delimiter = ',', default_values_t = [64])]
    candidates: Vec<usize>,
    /// `full` (fsync every commit, the server's default) or `normal`.
    #[arg(long, default_value = "full")]
    durability: String,
    /// Shadow candidates beside the component primary, one run per count
    /// (0 to 3); the native baseline runs without.
    #[arg(long, value_delimiter = ',', default_values_t = [0])]
    shadows: Vec<usize>,
    /// The shadow candidate is the `loop-forever` fixture (every call runs
    /// into its deadline, then its breaker opens) instead of the built-ins.
    #[arg(long)]
    looping_shadow: bool,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Row {
    nodes: usize,
    /// Candidates scored per placement (at most the nodes).
    candidates: usize,
    scorer: String,
    /// Shadow candidates beside it.
    shadows: usize,
    placements: usize,
    evaluations: usize,
    seconds: f64,
    placements_per_sec: f64,
    /// Mean time of one placement decision inside the worker (filter,
    /// sample, score, pick), from the decision records.
    decision_us: f64,
    /// Mean time inside the scorer call.
    scorer_us: f64,
    /// p99 of the placement decisions' time (of the first 2,000 records).
    decision_p99_us: f64,
    /// Shadow decisions scored, faulted and dropped (queue full).
    shadow_scored: u64,
    shadow_faults: u64,
    shadow_dropped: u64,
    /// From the first submit until the shadow lanes had answered every
    /// decision offered to them (they run at the lowest priority, after
    /// the primary); 0 without shadows.
    shadow_seconds: f64,
    /// Recorded decisions (up to 2,000) replayed with the spread component
    /// from their stored requests, per second (`orch scheduler replay`'s
    /// work, less fetching the pages); 0 when not measured.
    replay_per_sec: f64,
}

pub fn run(args: PlacementArgs) -> Result<ExitCode> {
    let durability = match args.durability.as_str() {
        "full" => Durability::Full,
        "normal" => Durability::Normal,
        other => anyhow::bail!("--durability {other:?}: write full or normal"),
    };
    let runtime = Runtime::new(RuntimeConfig::default())?;
    let limits = Limits::default();
    let wasm = orch_builtins::get("binpack")
        .context("binpack is built in")?
        .wasm;
    let loaded = runtime.load("builtin:binpack", wasm, &limits)?;
    let component: Arc<dyn Scorer> =
        Arc::new(Component::new(runtime.scorer(&loaded, limits)?).map_err(|e| anyhow::anyhow!(e))?);
    let native: Arc<dyn Scorer> = Arc::new(Native::new(orch_scorer_binpack::Binpack));
    if args.shadows.iter().any(|&n| n > 3) {
        anyhow::bail!("--shadows: at most 3 shadow candidates (spread, epvm, round-robin)");
    }
    let spread = shadow_scorers(&runtime, false)?
        .into_iter()
        .next()
        .context("spread is built in")?
        .scorer;
    let shadow_scorers = shadow_scorers(&runtime, args.looping_shadow)?;
    let mut rows = Vec::new();
    for (&n, &c) in args
        .nodes
        .iter()
        .flat_map(|n| args.candidates.iter().map(move |c| (n, c)))
    {
        let sampling = Sampling {
            candidates: c,
            percent: 0,
        };
        for (name, scorer) in [("component", &component), ("native", &native)] {
            eprint!("{n} nodes, {} candidates, binpack {name}: ", c.min(n));
            let replayer = (name == "component").then_some(spread.as_ref());
            let row = one_run(
                &args,
                n,
                scorer.clone(),
                sampling,
                durability,
                name,
                &[],
                replayer,
            )?;
            eprintln!(" {:.0} placements/s", row.placements_per_sec);
            rows.push(row);
        }
        for &k in args.shadows.iter().filter(|&&k| k > 0) {
            eprint!(
                "{n} nodes, {} candidates, binpack component + {k} shadows: ",
                c.min(n)
            );
            let row = one_run(
                &args,
                n,
                component.clone(),
                sampling,
                durability,
                "component",
                &shadow_scorers[..k.min(shadow_scorers.len())],
                None,
            )?;
            eprintln!(" {:.0} placements/s", row.placements_per_sec);
            rows.push(row);
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "placements end to end: {} jobs × {} allocations, {} workers, durability {}",
        args.jobs, args.count, args.workers, args.durability
    );
    println!(
        "{:>7}  {:>10}  {:<10}  {:>7}  {:>10}  {:>8}  {:>12}  {:>11}  {:>9}  {:>10}  {:>8}  {:>14}  {:>20}  {:>14}  {:>9}",
        "NODES",
        "CANDIDATES",
        "SCORER",
        "SHADOWS",
        "PLACEMENTS",
        "SECONDS",
        "PLACEMENTS/S",
        "DECISION µs",
        "SCORER µs",
        "p99 µs",
        "VS BASE",
        "VS NATIVE",
        "SHADOW OK/FAULT/DROP",
        "SHADOWS DONE s",
        "REPLAY/S"
    );
    for r in &rows {
        let same = |s: &str, k: usize| {
            rows.iter().find(|o| {
                o.nodes == r.nodes
                    && o.candidates == r.candidates
                    && o.scorer == s
                    && o.shadows == k
            })
        };
        let vs_native = match (r.scorer.as_str(), r.shadows, same("native", 0)) {
            ("component", 0, Some(n)) => {
                format!(
                    "{:.2}x",
                    r.placements_per_sec / n.placements_per_sec.max(1e-9)
                )
            }
            _ => String::new(),
        };
        let vs_base = match (r.shadows, same("component", 0)) {
            (k, Some(b)) if k > 0 => format!(
                "{:.2}x p/s, {:.2}x p99",
                r.placements_per_sec / b.placements_per_sec.max(1e-9),
                r.decision_p99_us / b.decision_p99_us.max(1e-9)
            ),
            _ => String::new(),
        };
        let shadow = if r.shadows > 0 {
            format!(
                "{}/{}/{}",
                r.shadow_scored, r.shadow_faults, r.shadow_dropped
            )
        } else {
            String::new()
        };
        println!(
            "{:>7}  {:>10}  {:<10}  {:>7}  {:>10}  {:>8.2}  {:>12.0}  {:>11.1}  {:>9.1}  {:>10.0}  {:>8}  {:>14}  {:>20}  {:>14}  {:>9}",
            r.nodes,
            r.candidates,
            r.scorer,
            r.shadows,
            r.placements,
            r.seconds,
            r.placements_per_sec,
            r.decision_us,
            r.scorer_us,
            r.decision_p99_us,
            vs_native,
            vs_base,
            shadow,
            if r.shadows > 0 {
                format!("{:.2}", r.shadow_seconds)
            } else {
                String::new()
            },
            if r.replay_per_sec > 0.0 {
                format!("{:.0}", r.replay_per_sec)
            } else {
                String::new()
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[allow(
    clippy::too_many_arguments,
    reason = "each is one knob of the run; a struct would only rename them"
)]
fn one_run(
    args: &PlacementArgs,
    nodes: usize,
    scorer: Arc<dyn Scorer>,
    sampling: Sampling,
    durability: Durability,
    name: &str,
    shadows: &[ShadowSpec],
    replayer: Option<&dyn Scorer>,
) -> Result<Row> {
    let dir = std::env::temp_dir().join(format!(
        "orch-bench-placements-{}-{nodes}-{name}-{}",
        std::process::id(),
        shadows.len()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let store = Store::open(
        &dir.join("state.db"),
        StoreOptions {
            sync: durability,
            ..StoreOptions::default()
        },
    )?;
    store.apply(Op::UpsertNodes((0..nodes).map(node).collect()))?;
    let lanes = Shadows::start(store.clone(), &orch_server::Metrics::new())?;
    lanes.sync(shadows.to_vec());
    let plane = ControlPlane::start(
        store.clone(),
        Scheduler::new(scorer, sampling).with_shadows(lanes.clone()),
        args.workers,
        None,
    )?;
    let total = args.jobs * args.count as usize;
    let started = Instant::now();
    let replies: Vec<_> = (0..args.jobs)
        .map(|i| {
            store.submit(Op::RegisterJob {
                job: job(i, args.count),
                enforce_index: None,
                now_ms: 0,
            })
        })
        .collect();
    for reply in replies {
        reply
            .blocking_recv()
            .map_err(|_| anyhow::anyhow!("the store stopped"))??;
    }
    let mut shown = 0;
    let elapsed = loop {
        let state = store.snapshot();
        let placed = state.alloc_count();
        let open = state
            .evals()
            .filter(|e| e.status == EvalStatus::Pending)
            .count();
        if placed >= total && open == 0 {
            break started.elapsed();
        }
        // A progress bar of twenty steps on stderr.
        let step = placed * 20 / total.max(1);
        while shown < step {
            eprint!("#");
            let _ = std::io::stderr().flush();
            shown += 1;
        }
        if started.elapsed() > Duration::from_secs(600) {
            anyhow::bail!("{placed} of {total} placed after 10 minutes; giving up");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    while shown < 20 {
        eprint!("#");
        shown += 1;
    }
    // The lanes' backlog: how long after the primary they are done.
    let shadows_done = loop {
        let busy: usize = lanes.stats().iter().map(|l| l.queued).sum();
        if busy == 0 || started.elapsed() > Duration::from_secs(900) {
            break started.elapsed();
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    plane.shutdown();
    let replay_per_sec = match replayer {
        Some(with) => replay_rate(&store, with)?,
        None => 0.0,
    };
    let lane_stats = lanes.shutdown(Duration::from_secs(60));
    let state = store.snapshot();
    let evaluations = state.evals().count();
    let (mut decision, mut scorer_us, mut sampled) = (0u64, 0u64, 0u64);
    let mut times = Vec::new();
    for alloc in state.allocs().take(2_000) {
        if let Some(d) = store.decision(&alloc.id)? {
            decision += d.total_micros;
            scorer_us += d.scorer_micros;
            sampled += 1;
            times.push(d.total_micros);
        }
    }
    times.sort_unstable();
    let p99 = times
        .get((times.len() * 99 / 100).min(times.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0);
    let _ = std::fs::remove_dir_all(&dir);
    let placements = state.alloc_count();
    Ok(Row {
        nodes,
        candidates: sampling.limit(nodes),
        scorer: name.to_owned(),
        placements,
        evaluations,
        seconds: elapsed.as_secs_f64(),
        placements_per_sec: placements as f64 / elapsed.as_secs_f64().max(1e-9),
        decision_us: decision as f64 / sampled.max(1) as f64,
        scorer_us: scorer_us as f64 / sampled.max(1) as f64,
        shadows: shadows.len(),
        decision_p99_us: p99 as f64,
        shadow_scored: lane_stats.iter().map(|l| l.scored).sum(),
        shadow_faults: lane_stats.iter().map(|l| l.faults).sum(),
        shadow_dropped: lane_stats.iter().map(|l| l.dropped).sum(),
        shadow_seconds: if shadows.is_empty() {
            0.0
        } else {
            shadows_done.as_secs_f64()
        },
        replay_per_sec,
    })
}

/// Replays up to 2,000 of the run's decisions with `with`; per second.
fn replay_rate(store: &Store, with: &dyn Scorer) -> Result<f64> {
    let (page, _) = store.decisions_since(0, None, 0, 2_000)?;
    let started = Instant::now();
    for (_, d) in &page {
        orch_server::replay(with, d)
            .map_err(|e| anyhow::anyhow!("replaying {}: {e}", d.alloc_id))?;
    }
    Ok(page.len() as f64 / started.elapsed().as_secs_f64().max(1e-9))
}

/// The shadow candidates: the three other built-ins, or the looping
/// fixture (with a 50 ms deadline, so its breaker opens after five).
fn shadow_scorers(runtime: &Runtime, looping: bool) -> Result<Vec<ShadowSpec>> {
    let candidate = orch_model::Candidate {
        mode: orch_model::CandidateMode::Shadow,
        weight: None,
        jobs: Vec::new(),
    };
    let spec = |name: &str, bytes: &[u8], limits: Limits| -> Result<ShadowSpec> {
        let loaded = runtime.load(name, bytes, &limits)?;
        let scorer: Arc<dyn Scorer> = Arc::new(
            Component::new(runtime.scorer(&loaded, limits)?).map_err(|e| anyhow::anyhow!(e))?,
        );
        Ok(ShadowSpec {
            name: name.to_owned(),
            scorer,
            candidate: candidate.clone(),
        })
    };
    if looping {
        let path = orch_conformance::fixture_wasm("loop-forever");
        let bytes = std::fs::read(&path)
            .with_context(|| format!("the loop-forever fixture at {}", path.display()))?;
        let limits = Limits {
            deadline: Duration::from_millis(50),
            ..Limits::default()
        };
        return Ok(vec![spec("loop-forever", &bytes, limits)?]);
    }
    ["spread", "epvm", "round-robin"]
        .iter()
        .map(|name| {
            let wasm = orch_builtins::get(name)
                .with_context(|| format!("{name} is built in"))?
                .wasm;
            spec(name, wasm, Limits::default())
        })
        .collect()
}

/// A simulated node: 8 to 16 cores and 32 to 64 GiB (spread over the
/// cluster so scores and decision records vary as on a real one), the exec
/// driver, one of four racks.
fn node(i: usize) -> Node {
    let pairs = |kv: &[(&str, String)]| {
        kv.iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    };
    Node {
        id: format!("{i:08x}-0000-4000-8000-{i:012x}"),
        name: format!("node-{i}"),
        datacenter: "dc1".into(),
        node_class: String::new(),
        attributes: pairs(&[("os.name", "linux".into()), ("cpu.arch", "x86_64".into())]),
        meta: pairs(&[("rack", format!("r{}", i % 4))]),
        resources: orch_model::Resources::new(
            8_000 + (i * 7_919 % 17) as u32 * 500,
            32_768 + (i * 104_729 % 17) as u64 * 2_048,
            100_000,
        ),
        reserved: orch_model::Resources::ZERO,
        drivers: [("exec".to_owned(), orch_model::DriverInfo::default())].into(),
        http_addr: String::new(),
        status: orch_model::NodeStatus::Ready,
        status_description: String::new(),
        eligibility: orch_model::Eligibility::Eligible,
        drain: false,
        create_index: 0,
        modify_index: 0,
    }
}

fn job(i: usize, count: u32) -> Job {
    Job {
        id: format!("bench-{i}"),
        name: String::new(),
        job_type: orch_model::JobType::Service,
        priority: 50,
        datacenters: Vec::new(),
        meta: Default::default(),
        constraints: vec![orch_model::Constraint {
            attribute: "${attr.os.name}".into(),
            operator: orch_model::Operator::Equal,
            value: "linux".into(),
        }],
        affinities: Vec::new(),
        spreads: Vec::new(),
        groups: vec![orch_model::TaskGroup {
            name: "g".into(),
            count,
            constraints: Vec::new(),
            affinities: Vec::new(),
            spreads: Vec::new(),
            restart: Default::default(),
            reschedule: Default::default(),
            meta: Default::default(),
            tasks: vec![orch_model::Task {
                name: "t".into(),
                driver: "exec".into(),
                config: Default::default(),
                resources: orch_model::Resources::new(100, 128, 0),
                env: Default::default(),
                artifacts: Vec::new(),
                constraints: Vec::new(),
                affinities: Vec::new(),
                kill_timeout: orch_model::Dur::secs(5),
                meta: Default::default(),
            }],
        }],
        stop: false,
        version: 0,
        create_index: 0,
        modify_index: 0,
        submit_time_ms: 0,
    }
}
