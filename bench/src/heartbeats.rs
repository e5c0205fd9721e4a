//! `orch-bench heartbeats`: how many simulated agents one `orch server`
//! keeps alive at their TTL, and at what CPU.
//!
//! The server is a real one in its own process (`orch server`, a temp
//! dir, the TTL asked for), so its CPU and memory are read from
//! `/proc/PID` apart from the load generator's. The generator registers
//! orch-testkit's simulated agents, then beats for each at the cadence an
//! agent uses (a third of the TTL, spread evenly, with jitter) from a pool
//! of threads, each with its own client and so its own keep-alive
//! connection, while another thread reads the node list every few seconds. A node marked down while its simulated agent kept
//! beating on time is a false node-down: the server's fault. Beats the
//! generator itself sent late are counted apart, so a generator that
//! could not keep up is not blamed on the server.

use anyhow::{Context, Result, bail};
use orch_model::{Node, NodeStatus};
use orch_testkit::{
    Echo, Log, Process, SimAgent, clock_ticks, cpu_ticks, parse_duration, resident, sim_agent_index,
};
use orch_wire::{Client, routes};
use serde::Serialize;
use std::collections::{BinaryHeap, HashSet};
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct HeartbeatArgs {
    /// Simulated agents; several sizes run one after the other, each
    /// against a fresh server.
    #[arg(long, value_delimiter = ',', default_values_t = [10_000])]
    agents: Vec<usize>,
    /// The TTL the server hands out, in milliseconds; agents beat every
    /// third of it.
    #[arg(long, default_value_t = 10_000)]
    ttl_ms: u64,
    /// The server's grace after a restart (`[heartbeat] grace_ms`); it
    /// plays no part on a fresh server.
    #[arg(long, default_value_t = 1_000)]
    grace_ms: u64,
    /// How long to measure once every agent is registered: `60`, `60s`,
    /// `2m` or `500ms`.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    duration: Duration,
    /// Client threads that register and beat, each on its own keep-alive
    /// connection.
    #[arg(long, default_value_t = 32)]
    threads: usize,
    /// How often the node list is read to count the nodes not ready, in
    /// milliseconds.
    #[arg(long, default_value_t = 5_000)]
    poll_ms: u64,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Row {
    agents: usize,
    ttl_ms: u64,
    /// How often each agent beats: a third of the TTL (±10% jitter).
    interval_ms: u64,
    /// The measured window, from the last registration on.
    seconds: f64,
    register_seconds: f64,
    registrations_per_sec: f64,
    registration_errors: usize,
    /// The server's CPU time (user + system) spent while the agents
    /// registered.
    register_server_cpu_seconds: f64,
    heartbeats: usize,
    heartbeats_per_sec: f64,
    /// What the agents ask for: agents / interval.
    expected_per_sec: f64,
    /// Beats answered with an error or not answered at all.
    heartbeat_errors: usize,
    /// The server's user + system time over the window, in percent of one
    /// core.
    server_cpu_percent: f64,
    /// The same for this process, the load generator, on the same cores.
    generator_cpu_percent: f64,
    server_rss_mib: f64,
    server_peak_rss_mib: f64,
    latency_p50_ms: f64,
    latency_p99_ms: f64,
    latency_max_ms: f64,
    /// Nodes the server marked down at any time in the run.
    marked_down: usize,
    /// Marked down although the server took a beat from their agent at
    /// least once per TTL (by send time): the server's fault.
    false_downs: usize,
    /// Marked down after a TTL without a beat the server took, with beats
    /// that failed (an error status or a dropped connection) in it.
    downs_after_failures: usize,
    /// The most nodes not ready in one read of the node list.
    not_ready_max: usize,
    /// Beats sent more than a third of the TTL after they were due: the
    /// generator could not keep up.
    late_beats: usize,
    /// How long after they were due beats were sent: the generator's lag.
    lateness_p50_ms: f64,
    lateness_p99_ms: f64,
    max_lateness_ms: f64,
    /// The longest an agent went between two beats the server took.
    max_gap_ms: f64,
    /// Mean time of `GET /v1/nodes` on the whole cluster.
    list_nodes_ms: f64,
}

pub fn run(args: HeartbeatArgs) -> Result<ExitCode> {
    if args.agents.is_empty() || args.agents.contains(&0) {
        bail!("--agents: give one or more sizes above 0, such as 1000,5000,10000");
    }
    if args.threads == 0 {
        bail!("--threads: at least 1");
    }
    watch_signals()?;
    let (clk_tck, clk_tck_assumed) = clock_ticks();
    let mut rows = Vec::new();
    for &agents in &args.agents {
        eprintln!(
            "{agents} agents, TTL {} ms, {} s; load average {}",
            args.ttl_ms,
            args.duration.as_secs_f64(),
            load_average()
        );
        let row = one_run(&args, agents, clk_tck);
        // Whatever happened, the server goes and its folder with it.
        stop_server();
        let row = row?;
        eprintln!(
            "  {:.0} heartbeats/s, server {:.1}% CPU, {} false downs, {} late beats",
            row.heartbeats_per_sec, row.server_cpu_percent, row.false_downs, row.late_beats
        );
        rows.push(row);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "heartbeats: a real `orch server` process, agents beat every TTL/3 ±10% from {} client threads (keep-alive), measured {} s after registering; CPU in % of one core (CLK_TCK {clk_tck}{})",
        args.threads,
        args.duration.as_secs_f64(),
        if clk_tck_assumed { ", assumed" } else { "" }
    );
    println!(
        "{:>7}  {:>5}  {:>8}  {:>8}  {:>7}  {:>7}  {:>7}  {:>7}  {:>7}  {:>6}  {:>6}  {:>5}  {:>6}",
        "AGENTS",
        "TTL s",
        "BEATS/S",
        "EXPECTED",
        "SRV CPU",
        "GEN CPU",
        "RSS MiB",
        "p50 ms",
        "p99 ms",
        "DOWNS",
        "FALSE",
        "LATE",
        "ERRORS"
    );
    for r in &rows {
        println!(
            "{:>7}  {:>5.1}  {:>8.0}  {:>8.0}  {:>6.1}%  {:>6.1}%  {:>7.1}  {:>7.2}  {:>7.2}  {:>6}  {:>6}  {:>5}  {:>6}",
            r.agents,
            r.ttl_ms as f64 / 1e3,
            r.heartbeats_per_sec,
            r.expected_per_sec,
            r.server_cpu_percent,
            r.generator_cpu_percent,
            r.server_rss_mib,
            r.latency_p50_ms,
            r.latency_p99_ms,
            r.marked_down,
            r.false_downs,
            r.late_beats,
            r.heartbeat_errors + r.registration_errors
        );
    }
    for r in &rows {
        println!(
            "{} agents: registered in {:.1} s ({:.0}/s, server CPU {:.1} s); latency max {:.1} ms; beats sent after due p50 {:.0} / p99 {:.0} / max {:.0} ms (late past {} ms); longest gap between beats the server took {:.0} ms (TTL {}); downs after failed beats {}; most nodes not ready in one read {}; GET /v1/nodes {:.0} ms; peak RSS {:.1} MiB",
            r.agents,
            r.register_seconds,
            r.registrations_per_sec,
            r.register_server_cpu_seconds,
            r.latency_max_ms,
            r.lateness_p50_ms,
            r.lateness_p99_ms,
            r.max_lateness_ms,
            r.interval_ms,
            r.max_gap_ms,
            r.ttl_ms,
            r.downs_after_failures,
            r.not_ready_max,
            r.list_nodes_ms,
            r.server_peak_rss_mib
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// One size: a fresh server, registration, the measured window, the
/// count of downs. The caller stops the server.
fn one_run(args: &HeartbeatArgs, agents: usize, clk_tck: f64) -> Result<Row> {
    let server = start_server(args.ttl_ms, args.grace_ms)?;
    let ttl = Duration::from_millis(args.ttl_ms);
    let interval = ttl / 3;
    let epoch = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    // On every way out, early ones included, the threads stop.
    let _stopping = StopOnDrop(stop.clone());
    let threads = args.threads.min(agents);

    // Beating threads; each owns the agents whose index ≡ its own.
    let mut senders = Vec::with_capacity(threads);
    let mut beaters = Vec::with_capacity(threads);
    for t in 0..threads {
        let (tx, rx) = mpsc::channel::<(usize, Instant)>();
        senders.push(tx);
        let beater = Beater {
            // Its own client, so its own keep-alive connection.
            client: crate::client(&server.addr)?,
            interval,
            epoch,
            stop: stop.clone(),
            registered: rx,
            rng: Rng::seeded(t as u64),
        };
        beaters.push(
            std::thread::Builder::new()
                .name(format!("beat-{t}"))
                .spawn(move || beater.run())
                .context("cannot start a heartbeat thread")?,
        );
    }

    // Registration, in parallel; each registered agent goes to its beater.
    let next = Arc::new(AtomicUsize::new(0));
    let registered = Arc::new(AtomicUsize::new(0));
    let reg_errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let started = Instant::now();
    let server_stat = format!("/proc/{}/stat", server.pid);
    let register_cpu0 = cpu_ticks(&server_stat)?;
    let mut registrars = Vec::with_capacity(threads);
    for t in 0..threads {
        let (next, registered, errors) = (next.clone(), registered.clone(), reg_errors.clone());
        let senders = senders.clone();
        let client = crate::client(&server.addr)?;
        let stop = stop.clone();
        registrars.push(
            std::thread::Builder::new()
                .name(format!("register-{t}"))
                .spawn(move || {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= agents || stop.load(Ordering::Relaxed) {
                            break;
                        }
                        match register(&SimAgent::numbered(&client, i)) {
                            Ok(()) => {
                                registered.fetch_add(1, Ordering::Relaxed);
                                if let Some(tx) = senders.get(i % senders.len()) {
                                    let _ = tx.send((i, Instant::now()));
                                }
                            }
                            Err(e) => lock(&errors).push(format!("agent {i}: {e:#}")),
                        }
                    }
                })
                .context("cannot start a registering thread")?,
        );
    }
    drop(senders);
    let mut last_shown = Instant::now();
    while registrars.iter().any(|h| !h.is_finished()) {
        std::thread::sleep(Duration::from_millis(100));
        if last_shown.elapsed() >= Duration::from_secs(1) {
            last_shown = Instant::now();
            let n = registered.load(Ordering::Relaxed);
            eprintln!(
                "  registered {n}/{agents} ({:.0}/s)",
                n as f64 / started.elapsed().as_secs_f64().max(1e-9)
            );
        }
        server.check_alive()?;
    }
    for h in registrars {
        let _ = h.join();
    }
    let register_time = started.elapsed();
    let register_cpu = cpu_ticks(&server_stat)?.saturating_sub(register_cpu0) as f64 / clk_tck;
    let registration_errors = lock(&reg_errors).len();
    if let Some(first) = lock(&reg_errors).first() {
        eprintln!("  {registration_errors} registrations failed; the first: {first}");
    }
    if registration_errors == agents {
        bail!("no agent could register; see above");
    }

    // The measured window.
    let poller = Poller::start(
        crate::client(&server.addr)?,
        Duration::from_millis(args.poll_ms),
        &stop,
    )?;
    let window_start = Instant::now();
    let server_cpu0 = cpu_ticks(&server_stat)?;
    let own_cpu0 = cpu_ticks("/proc/self/stat")?;
    let end = window_start + args.duration;
    let mut shown = Instant::now();
    while Instant::now() < end {
        std::thread::sleep(
            Duration::from_millis(200).min(end.saturating_duration_since(Instant::now())),
        );
        if shown.elapsed() >= Duration::from_secs(10) {
            shown = Instant::now();
            eprintln!(
                "  {:.0} of {:.0} s; nodes not ready at the last read: {}",
                window_start.elapsed().as_secs_f64(),
                args.duration.as_secs_f64(),
                poller.last_not_ready()
            );
        }
        server.check_alive()?;
    }
    let window = window_start.elapsed();
    let server_cpu1 = cpu_ticks(&server_stat)?;
    let own_cpu1 = cpu_ticks("/proc/self/stat")?;
    let memory = resident(format!("/proc/{}/status", server.pid))?;
    stop.store(true, Ordering::Relaxed);
    let mut agents_seen = Vec::new();
    for h in beaters {
        match h.join() {
            Ok(done) => agents_seen.push(done),
            Err(_) => bail!("a heartbeat thread panicked"),
        }
    }
    let polled = poller.finish();
    // Read at once, well within the TTL of the last beats: registering
    // leaves the description empty, being marked down fills it, and a
    // beat after that leaves "heartbeating".
    let final_list = list_nodes(&crate::client(&server.addr)?)?;
    let mut down: HashSet<String> = polled.down.clone();
    down.extend(server.downs_logged());
    down.extend(
        final_list
            .iter()
            .filter(|n| n.status != NodeStatus::Ready || !n.status_description.is_empty())
            .map(|n| n.id.clone()),
    );

    // Only beats sent inside the window count for rates and latencies.
    let from = window_start.duration_since(epoch).as_micros() as u64;
    let to = from + window.as_micros() as u64;
    let late_after = micros_u32(ttl / 3);
    let (mut latencies, mut lateness) = (Vec::new(), Vec::new());
    let (mut heartbeats, mut errors, mut late, mut max_late, mut max_gap) =
        (0usize, 0usize, 0usize, Duration::ZERO, Duration::ZERO);
    let mut records = std::collections::HashMap::new();
    for done in &agents_seen {
        for b in done
            .beats
            .iter()
            .filter(|b| (from..to).contains(&b.sent_us))
        {
            if b.ok {
                heartbeats += 1;
                latencies.push(b.latency_us);
            } else {
                errors += 1;
            }
            lateness.push(b.lateness_us);
            if b.lateness_us > late_after {
                late += 1;
            }
        }
        max_late = max_late.max(done.max_lateness);
        for a in &done.agents {
            max_gap = max_gap.max(a.max_gap);
            records.insert(a.index, a);
        }
    }
    if let Some(e) = agents_seen.iter().find_map(|d| d.first_error.as_ref()) {
        eprintln!("  a heartbeat failed: {e}");
    }
    // A down node whose agent the server always heard from within the TTL
    // is a false down; one whose agent went a TTL without a beat the
    // server took is explained by failed beats or by the generator.
    let (mut false_downs, mut downs_after_failures) = (0, 0);
    for id in &down {
        match sim_agent_index(id).and_then(|i| records.get(&i)) {
            Some(a) if a.max_gap < ttl => false_downs += 1,
            Some(a) if a.failed > 0 => downs_after_failures += 1,
            _ => {}
        }
    }
    latencies.sort_unstable();
    lateness.sort_unstable();
    let pct = |v: &[u32], p: f64| -> f64 {
        let i = ((v.len() as f64 * p).ceil() as usize).saturating_sub(1);
        v.get(i).copied().unwrap_or(0) as f64 / 1e3
    };
    let secs = window.as_secs_f64().max(1e-9);
    let cpu = |a: u64, b: u64| b.saturating_sub(a) as f64 / clk_tck / secs * 100.0;
    Ok(Row {
        agents,
        ttl_ms: args.ttl_ms,
        interval_ms: interval.as_millis() as u64,
        seconds: secs,
        register_seconds: register_time.as_secs_f64(),
        registrations_per_sec: (agents - registration_errors) as f64
            / register_time.as_secs_f64().max(1e-9),
        registration_errors,
        register_server_cpu_seconds: register_cpu,
        heartbeats,
        heartbeats_per_sec: heartbeats as f64 / secs,
        expected_per_sec: (agents - registration_errors) as f64 / interval.as_secs_f64(),
        heartbeat_errors: errors,
        server_cpu_percent: cpu(server_cpu0, server_cpu1),
        generator_cpu_percent: cpu(own_cpu0, own_cpu1),
        server_rss_mib: memory.now_mib,
        server_peak_rss_mib: memory.peak_mib,
        latency_p50_ms: pct(&latencies, 0.50),
        latency_p99_ms: pct(&latencies, 0.99),
        latency_max_ms: latencies.last().copied().unwrap_or(0) as f64 / 1e3,
        marked_down: down.len(),
        false_downs,
        downs_after_failures,
        not_ready_max: polled.not_ready_max,
        late_beats: late,
        lateness_p50_ms: pct(&lateness, 0.50),
        lateness_p99_ms: pct(&lateness, 0.99),
        max_lateness_ms: max_late.as_secs_f64() * 1e3,
        max_gap_ms: max_gap.as_secs_f64() * 1e3,
        list_nodes_ms: polled.mean_list_ms,
    })
}

/// Raises the flag the generator's threads watch when dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// One beat as the generator saw it.
struct Beat {
    /// When it was sent, in µs since the run's epoch.
    sent_us: u64,
    latency_us: u32,
    ok: bool,
    /// How long after it was due it was sent.
    lateness_us: u32,
}

/// What a beating thread hands back.
struct BeaterDone {
    beats: Vec<Beat>,
    agents: Vec<AgentDone>,
    max_lateness: Duration,
    /// The first beat that failed, and why.
    first_error: Option<String>,
}

/// One thread's share of the agents: a queue ordered by when each agent's
/// next beat is due.
struct Beater {
    client: Client,
    interval: Duration,
    epoch: Instant,
    stop: Arc<AtomicBool>,
    registered: mpsc::Receiver<(usize, Instant)>,
    rng: Rng,
}

struct Sim {
    index: usize,
    agent: SimAgent,
    /// When the last beat the server took (answered 200) was sent, or the
    /// registration's answer.
    last_ok: Instant,
    /// The longest time between two of those.
    max_gap: Duration,
    failed: usize,
}

/// One agent's record: whether the server always had a beat from it
/// within the TTL.
struct AgentDone {
    index: usize,
    /// The longest time between sending two beats the server took (or
    /// between registering and the first), the end of the run included.
    max_gap: Duration,
    /// Its beats that failed (error status or no answer).
    failed: usize,
}

/// The beat queue: (due, slot in the agents), earliest first.
type Queue = BinaryHeap<std::cmp::Reverse<(Instant, usize)>>;

impl Beater {
    /// Agent `index`, registered at `at`, first beats at a random point of
    /// its first interval, so the beats spread evenly.
    fn admit(&mut self, index: usize, at: Instant, sims: &mut Vec<Sim>, queue: &mut Queue) {
        let due = at + self.interval.mul_f64(self.rng.unit());
        queue.push(std::cmp::Reverse((due, sims.len())));
        sims.push(Sim {
            index,
            agent: SimAgent::numbered(&self.client, index),
            last_ok: at,
            max_gap: Duration::ZERO,
            failed: 0,
        });
    }

    fn run(mut self) -> BeaterDone {
        let mut sims: Vec<Sim> = Vec::new();
        let mut queue = Queue::new();
        let mut beats = Vec::new();
        let mut max_lateness = Duration::ZERO;
        let mut first_error = None;
        let mut registering = true;
        while !self.stop.load(Ordering::Relaxed) {
            // Take in the agents registered since.
            while let Ok((index, at)) = self.registered.try_recv() {
                self.admit(index, at, &mut sims, &mut queue);
            }
            let now = Instant::now();
            let wait = match queue.peek() {
                Some(std::cmp::Reverse((due, _))) if *due <= now => None,
                Some(std::cmp::Reverse((due, _))) => Some(*due - now),
                None => Some(Duration::from_millis(100)),
            };
            if let Some(wait) = wait {
                // Wakes early for a new registration; never sleeps long,
                // so a stop is seen.
                let wait = wait.min(Duration::from_millis(100));
                if registering {
                    match self.registered.recv_timeout(wait) {
                        Ok((index, at)) => self.admit(index, at, &mut sims, &mut queue),
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        Err(mpsc::RecvTimeoutError::Disconnected) => registering = false,
                    }
                } else {
                    std::thread::sleep(wait);
                }
                continue;
            }
            let Some(std::cmp::Reverse((due, slot))) = queue.pop() else {
                continue;
            };
            let Some(sim) = sims.get_mut(slot) else {
                continue;
            };
            let sent = Instant::now();
            let lateness = sent.saturating_duration_since(due);
            max_lateness = max_lateness.max(lateness);
            let result = sim.agent.heartbeat();
            let ok = result.is_ok();
            if ok {
                sim.max_gap = sim.max_gap.max(sent - sim.last_ok);
                sim.last_ok = sent;
            } else {
                sim.failed += 1;
            }
            if let (Err(e), None) = (result, &first_error) {
                first_error = Some(format!("agent {}: {e}", sim.index));
            }
            let answered = Instant::now();
            beats.push(Beat {
                sent_us: sent.duration_since(self.epoch).as_micros() as u64,
                latency_us: micros_u32(answered - sent),
                ok,
                lateness_us: micros_u32(lateness),
            });
            // As an agent does: the next beat an interval (±10%) after this
            // one was answered.
            let next = answered + self.interval.mul_f64(0.9 + 0.2 * self.rng.unit());
            queue.push(std::cmp::Reverse((next, slot)));
        }
        let end = Instant::now();
        BeaterDone {
            beats,
            agents: sims
                .iter()
                .map(|s| AgentDone {
                    index: s.index,
                    max_gap: s.max_gap.max(end - s.last_ok),
                    failed: s.failed,
                })
                .collect(),
            max_lateness,
            first_error,
        }
    }
}

fn micros_u32(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// Registers simulated agent `agent`. A few tries: a registration
/// refused by a busy server is retried by a real agent too.
fn register(agent: &SimAgent) -> Result<()> {
    let mut last = None;
    for attempt in 0..3 {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(200 * attempt));
        }
        match agent.register() {
            Ok(_) => return Ok(()),
            Err(e) => last = Some(e),
        }
    }
    match last {
        Some(e) => Err(e.into()),
        None => bail!("not registered"),
    }
}

fn list_nodes(client: &Client) -> Result<Vec<Node>> {
    Ok(client
        .get(&routes::NODES, &[], &[])
        .context("listing the nodes")?
        .body)
}

/// Reads the node list every few seconds during the window.
struct Poller {
    handle: std::thread::JoinHandle<Polled>,
    last_not_ready: Arc<AtomicUsize>,
}

#[derive(Default)]
struct Polled {
    /// Every node seen not ready.
    down: HashSet<String>,
    not_ready_max: usize,
    mean_list_ms: f64,
}

impl Poller {
    fn start(client: Client, every: Duration, stop: &Arc<AtomicBool>) -> Result<Self> {
        let stop = stop.clone();
        let last_not_ready = Arc::new(AtomicUsize::new(0));
        let last = last_not_ready.clone();
        let handle = std::thread::Builder::new()
            .name("poll-nodes".into())
            .spawn(move || {
                let mut polled = Polled::default();
                let (mut reads, mut total) = (0u32, Duration::ZERO);
                let mut next = Instant::now() + every;
                while !stop.load(Ordering::Relaxed) {
                    if Instant::now() < next {
                        std::thread::sleep(Duration::from_millis(50));
                        continue;
                    }
                    next += every;
                    let t = Instant::now();
                    let Ok(nodes) = list_nodes(&client) else {
                        continue;
                    };
                    total += t.elapsed();
                    reads += 1;
                    let not_ready: Vec<&Node> = nodes
                        .iter()
                        .filter(|n| n.status != NodeStatus::Ready)
                        .collect();
                    last.store(not_ready.len(), Ordering::Relaxed);
                    polled.not_ready_max = polled.not_ready_max.max(not_ready.len());
                    polled.down.extend(not_ready.iter().map(|n| n.id.clone()));
                }
                polled.mean_list_ms = total.as_secs_f64() * 1e3 / f64::from(reads.max(1));
                polled
            })
            .context("cannot start the node list thread")?;
        Ok(Self {
            handle,
            last_not_ready,
        })
    }

    fn last_not_ready(&self) -> usize {
        self.last_not_ready.load(Ordering::Relaxed)
    }

    fn finish(self) -> Polled {
        self.handle.join().unwrap_or_default()
    }
}

/// The running server and its folder, where the Ctrl-C handler finds them.
static RUNNING: Mutex<Option<(Process, PathBuf)>> = Mutex::new(None);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Kills the server (if one runs) and removes its folder.
fn stop_server() {
    if let Some((process, dir)) = lock(&RUNNING).take() {
        drop(process);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// On SIGINT or SIGTERM: the server is stopped and its folder removed
/// before this process exits.
fn watch_signals() -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the signal watcher")?;
    let (mut int, mut term) = runtime
        .block_on(async {
            Ok::<_, std::io::Error>((
                signal(SignalKind::interrupt())?,
                signal(SignalKind::terminate())?,
            ))
        })
        .context("cannot listen for SIGINT and SIGTERM")?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            runtime.block_on(async {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            });
            stop_server();
            eprintln!("interrupted: the server was stopped and its temp dir removed");
            std::process::exit(130);
        })
        .context("cannot start the signal watcher")?;
    Ok(())
}

/// The server process as this bench sees it; the process itself is in
/// [`RUNNING`].
struct Server {
    pid: u32,
    addr: String,
    log: Log,
}

impl Server {
    fn check_alive(&self) -> Result<()> {
        let exited = match lock(&RUNNING).as_mut() {
            Some((process, _)) => process.try_exited(),
            None => bail!("the server was stopped"),
        };
        if let Some(status) = exited {
            bail!(
                "the server exited ({status}) during the run; its last lines:\n{}",
                self.log.tail(20)
            );
        }
        Ok(())
    }

    /// Nodes the server logged marking down (a warning each).
    fn downs_logged(&self) -> HashSet<String> {
        self.log
            .text()
            .lines()
            .filter_map(|line| {
                let at = line.find(" missed its heartbeat")?;
                line[..at].rsplit(' ').next().map(str::to_owned)
            })
            .collect()
    }
}

/// Starts `orch server` on a fresh temp dir with the TTL asked for, and
/// waits for the address it prints.
fn start_server(ttl_ms: u64, grace_ms: u64) -> Result<Server> {
    let dir = std::env::temp_dir().join(format!("orch-bench-heartbeats-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let config = dir.join("orch.toml");
    std::fs::write(
        &config,
        format!("data_dir = \"data\"\n[heartbeat]\nttl_ms = {ttl_ms}\ngrace_ms = {grace_ms}\n"),
    )
    .with_context(|| format!("writing {}", config.display()))?;
    let mut command = Command::new(crate::orch_binary()?);
    command
        .arg("server")
        .arg("--config")
        .arg(&config)
        .args(["--listen", "127.0.0.1:0"])
        // Marking a node down is a warning: each one is seen here.
        .env("ORCH_LOG", "warn");
    // Held while the server starts: a Ctrl-C meanwhile waits for it, then
    // finds it to stop.
    let mut running = lock(&RUNNING);
    let process = match Process::start(command, "orch server: API listening on ", Echo::Quiet) {
        Ok(process) => process,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e.into());
        }
    };
    let server = Server {
        pid: process.pid(),
        addr: process.ready_line().to_owned(),
        log: process.log().clone(),
    };
    *running = Some((process, dir));
    Ok(server)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

/// A small generator (splitmix64) for jitter; no need for anything better.
struct Rng(u64);

impl Rng {
    /// Seeded from the clock and `salt` (each thread its own), so runs
    /// differ; the jitter need not be reproducible.
    fn seeded(salt: u64) -> Self {
        Rng(orch_model::now_ms() ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}
