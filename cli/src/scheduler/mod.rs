//! `orch scheduler …`: the scheduler settings in force and their changes at
//! run time — named scorers, candidates in shadow or in split, promote,
//! reset — and the comparison of the scorers that run (Nomad's
//! `operator scheduler get-config`/`set-config` habit, with A/B on top).

mod replay;

pub use replay::{ReplayArgs, ReplayReport, replay_view};

use super::client::{AddressArgs, Reply, routes};
use super::format::{age, now_ms, pretty_json, short};
use super::table::{Table, key_values};
use anyhow::Result;
use orch_model::{Candidate, CandidateMode, Origin, ScorerSpec};
use orch_wire::{Comparison, Packing, SchedulerStatus};
use std::fmt::Write as _;
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum SchedulerCommand {
    /// Show the primary scorer, the candidates beside it, every scorer
    /// known by name, and where each setting came from.
    Status(StatusArgs),
    /// Add, replace or remove a scorer known by name.
    #[command(subcommand)]
    Scorer(ScorerCommand),
    /// Run a scorer beside the primary: in shadow (it scores every
    /// decision, places nothing) or in split (it places a share of the
    /// jobs).
    #[command(subcommand)]
    Candidate(CandidateCommand),
    /// Make a scorer the primary, without a restart; the old primary keeps
    /// running in shadow. It must pass `orch plugin test`.
    Promote(PromoteArgs),
    /// Drop every setting changed at run time: back to the config file's.
    Reset(ResetArgs),
    /// Every scorer that runs, side by side: decisions, agreement with the
    /// primary, latency, faults, and how packed its cluster is.
    Compare(CompareArgs),
    /// Score recorded decisions again with another scorer, here, from the
    /// exact requests the records keep: agreement, and the decisions that
    /// differ with both sides' parts.
    Replay(ReplayArgs),
}

impl SchedulerCommand {
    pub fn run(self) -> Result<ExitCode> {
        match self {
            Self::Status(args) => args.run(),
            Self::Scorer(ScorerCommand::Add(args)) => args.run(),
            Self::Scorer(ScorerCommand::Remove(args)) => {
                args.remove(&routes::SCHEDULER_SCORER_DELETE, "Scorer")
            }
            Self::Candidate(CandidateCommand::Set(args)) => args.run(),
            Self::Candidate(CandidateCommand::Remove(args)) => {
                args.remove(&routes::SCHEDULER_CANDIDATE_DELETE, "Candidate")
            }
            Self::Promote(args) => args.run(),
            Self::Reset(args) => args.run(),
            Self::Compare(args) => args.run(),
            Self::Replay(args) => args.run(),
        }
    }
}

#[derive(clap::Subcommand)]
pub enum ScorerCommand {
    /// Know a scorer by NAME (replacing one of that name): a built-in
    /// (`builtin:spread`), a path to a .wasm component on the server's
    /// machine under its config file's folder, or `oci://…`. It must load
    /// and answer a typical request.
    Add(ScorerAddArgs),
    /// Forget a scorer known by name; it must have no role.
    Remove(NameArgs),
}

#[derive(clap::Subcommand)]
pub enum CandidateCommand {
    /// Run scorer NAME beside the primary (or change how it runs). It must
    /// pass `orch plugin test`.
    Set(CandidateSetArgs),
    /// Stop running scorer NAME beside the primary.
    Remove(NameArgs),
}

#[derive(clap::Args)]
pub struct StatusArgs {
    /// Print the server's JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub addr: AddressArgs,
}

impl StatusArgs {
    pub fn run(self) -> Result<ExitCode> {
        let client = self.addr.client()?;
        let status: Reply<SchedulerStatus> = client.get(&routes::SCHEDULER, &[], &[])?;
        if self.json {
            println!("{}", pretty_json(&status.text));
        } else {
            print!("{}", status_view(&status.body, now_ms()));
        }
        Ok(ExitCode::SUCCESS)
    }
}

#[derive(clap::Args)]
pub struct ScorerAddArgs {
    /// The name candidates, promote and decision records use (a-z, 0-9,
    /// - and _).
    pub name: String,
    /// `builtin:NAME`, a path to a .wasm component on the server's
    /// machine under its config file's folder (relative to it), or
    /// `oci://…`.
    pub plugin: String,
    /// Deadline of one call, in ms (default: `[scheduler.limits]`).
    #[arg(long)]
    pub deadline_ms: Option<u64>,
    /// Memory one instance may grow to, in MiB.
    #[arg(long)]
    pub memory_mib: Option<u64>,
    /// Fuel one call may burn (the server must meter fuel).
    #[arg(long)]
    pub fuel: Option<u64>,
    #[command(flatten)]
    pub addr: AddressArgs,
}

impl ScorerAddArgs {
    pub fn run(self) -> Result<ExitCode> {
        let client = self.addr.client()?;
        let spec = ScorerSpec {
            plugin: self.plugin,
            deadline_ms: self.deadline_ms,
            memory_mib: self.memory_mib,
            fuel: self.fuel,
        };
        let status: Reply<SchedulerStatus> =
            client.post(&routes::SCHEDULER_SCORER, &[&self.name], &spec)?;
        println!("Scorer {} added", self.name);
        print!("{}", status_view(&status.body, now_ms()));
        Ok(ExitCode::SUCCESS)
    }
}

#[derive(clap::Args)]
pub struct NameArgs {
    pub name: String,
    #[command(flatten)]
    pub addr: AddressArgs,
}

#[derive(clap::ValueEnum, Clone, Copy)]
pub enum Mode {
    Shadow,
    Split,
}

#[derive(clap::Args)]
pub struct CandidateSetArgs {
    /// A scorer's name: a built-in's, or one `orch scheduler scorer add`
    /// or `[scheduler.scorers]` named.
    pub name: String,
    /// shadow: score every decision beside the primary, place nothing;
    /// split: place a share of the jobs for real.
    #[arg(long, value_enum)]
    pub mode: Mode,
    /// Percent of jobs (chosen by a hash of the job id): for a split, the
    /// share it places (required); for a shadow, the share it watches
    /// (default 100).
    #[arg(long)]
    pub weight: Option<u32>,
    /// Only jobs whose id matches this glob (`*`, `?`); repeat for more.
    #[arg(long = "jobs", value_name = "GLOB")]
    pub jobs: Vec<String>,
    #[command(flatten)]
    pub addr: AddressArgs,
}

impl CandidateSetArgs {
    pub fn run(self) -> Result<ExitCode> {
        let client = self.addr.client()?;
        let candidate = Candidate {
            mode: match self.mode {
                Mode::Shadow => CandidateMode::Shadow,
                Mode::Split => CandidateMode::Split,
            },
            weight: self.weight,
            jobs: self.jobs,
        };
        let status: Reply<SchedulerStatus> =
            client.post(&routes::SCHEDULER_CANDIDATE, &[&self.name], &candidate)?;
        println!(
            "Candidate {} runs in {}",
            self.name,
            candidate.mode.as_str()
        );
        print!("{}", status_view(&status.body, now_ms()));
        Ok(ExitCode::SUCCESS)
    }
}

impl NameArgs {
    fn remove(self, route: &orch_wire::Route, what: &str) -> Result<ExitCode> {
        let client = self.addr.client()?;
        let status: Reply<SchedulerStatus> = client.delete(route, &[&self.name])?;
        println!("{what} {} removed", self.name);
        print!("{}", status_view(&status.body, now_ms()));
        Ok(ExitCode::SUCCESS)
    }
}

#[derive(clap::Args)]
pub struct PromoteArgs {
    /// The scorer to make the primary.
    pub name: String,
    #[command(flatten)]
    pub addr: AddressArgs,
}

impl PromoteArgs {
    pub fn run(self) -> Result<ExitCode> {
        let client = self.addr.client()?;
        let before: Reply<SchedulerStatus> = client.get(&routes::SCHEDULER, &[], &[])?;
        let status: Reply<SchedulerStatus> = client.post(
            &routes::SCHEDULER_PROMOTE,
            &[&self.name],
            &serde_json::json!({}),
        )?;
        println!(
            "{} is the primary now; {} runs in shadow",
            self.name, before.body.primary.name
        );
        print!("{}", status_view(&status.body, now_ms()));
        Ok(ExitCode::SUCCESS)
    }
}

#[derive(clap::Args)]
pub struct ResetArgs {
    #[command(flatten)]
    pub addr: AddressArgs,
}

impl ResetArgs {
    pub fn run(self) -> Result<ExitCode> {
        let client = self.addr.client()?;
        let status: Reply<SchedulerStatus> =
            client.post(&routes::SCHEDULER_RESET, &[], &serde_json::json!({}))?;
        println!("The scheduler settings are the config file's again");
        print!("{}", status_view(&status.body, now_ms()));
        Ok(ExitCode::SUCCESS)
    }
}

#[derive(clap::Args)]
pub struct CompareArgs {
    /// Only decisions made this recently (e.g. 30m, 2h), or `all`;
    /// default: the last 24h.
    #[arg(long)]
    pub since: Option<String>,
    /// The node attribute allocations are counted by for spread.
    #[arg(long, default_value = "${node.datacenter}")]
    pub spread_by: String,
    /// Print the server's JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub addr: AddressArgs,
}

impl CompareArgs {
    pub fn run(self) -> Result<ExitCode> {
        let client = self.addr.client()?;
        let mut query = vec![("spread_by", self.spread_by.as_str())];
        if let Some(since) = &self.since {
            query.push(("since", since.as_str()));
        }
        let comparison: Reply<Comparison> = client.get(&routes::SCHEDULER_COMPARE, &[], &query)?;
        if self.json {
            println!("{}", pretty_json(&comparison.text));
        } else {
            print!(
                "{}",
                compare_view(&comparison.body, &self.spread_by, now_ms())
            );
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// Where a setting came from, as a person reads it.
fn origin(o: Origin, now_ms: u64) -> String {
    match o {
        Origin::Config => "config".to_owned(),
        Origin::Api { index, time_ms } => format!("api, {} (index {index})", age(now_ms, time_ms)),
    }
}

fn percent(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// What `orch scheduler status` prints.
pub fn status_view(s: &SchedulerStatus, now_ms: u64) -> String {
    let mut out = key_values(&[
        (
            "Primary",
            format!(
                "{} ({}, {})",
                s.primary.name,
                s.primary.label,
                short_digest(&s.primary.digest)
            ),
        ),
        ("  from", origin(s.primary.origin, now_ms)),
        (
            "Fallback",
            s.fallback
                .clone()
                .unwrap_or_else(|| "none: a failing scorer fails the placement".to_owned()),
        ),
        (
            "Sampling",
            format!(
                "{} candidates or {}% of the nodes",
                s.sampling.candidates, s.sampling.percent
            ),
        ),
    ]);
    if let Some(why) = &s.stale {
        let _ = writeln!(
            out,
            "\nWarning: the settings changed at run time are not in force: {why}\n`orch scheduler reset` drops them"
        );
    }
    out.push_str("\nCandidates\n");
    if s.candidates.is_empty() {
        out.push_str("none: `orch scheduler candidate set NAME --mode shadow` adds one\n");
    } else {
        let mut t = Table::new([
            "Name", "Mode", "Weight", "Jobs", "Scorer", "Scored", "Agreed", "Faults", "Dropped",
            "From",
        ])
        .right(&[2, 5, 6, 7, 8]);
        for c in &s.candidates {
            let (scored, agreed, faults, dropped) = match &c.shadow {
                Some(l) => (
                    l.scored.to_string(),
                    if l.scored == 0 {
                        "-".to_owned()
                    } else {
                        percent(l.agreed as f64 / l.scored as f64)
                    },
                    l.faults.to_string(),
                    l.dropped.to_string(),
                ),
                None => ("-".into(), "-".into(), "-".into(), "-".into()),
            };
            t.row([
                c.name.clone(),
                c.mode.as_str().to_owned(),
                format!("{}%", c.weight),
                if c.jobs.is_empty() {
                    "all".to_owned()
                } else {
                    c.jobs.join(",")
                },
                c.label.clone(),
                scored,
                agreed,
                faults,
                dropped,
                origin(c.origin, now_ms),
            ]);
        }
        out.push_str(&t.render());
    }
    out.push_str("\nScorers known by name (built-ins are known unlisted)\n");
    let mut t = Table::new(["Name", "Plugin", "Limits", "Role", "From"]);
    for n in &s.scorers {
        let mut limits = Vec::new();
        if let Some(d) = n.spec.deadline_ms {
            limits.push(format!("deadline {d}ms"));
        }
        if let Some(m) = n.spec.memory_mib {
            limits.push(format!("memory {m}MiB"));
        }
        if let Some(f) = n.spec.fuel {
            limits.push(format!("fuel {f}"));
        }
        t.row([
            n.name.clone(),
            n.spec.plugin.clone(),
            if limits.is_empty() {
                "default".to_owned()
            } else {
                limits.join(", ")
            },
            n.role.clone().unwrap_or_else(|| "-".to_owned()),
            origin(n.origin, now_ms),
        ]);
    }
    out.push_str(&t.render());
    out
}

fn short_digest(digest: &str) -> String {
    match digest.strip_prefix("sha256:") {
        Some(hex) => format!("sha256:{}", short(hex)),
        None => digest.to_owned(),
    }
}

fn micros(us: u64) -> String {
    if us >= 10_000 {
        format!("{:.1}ms", us as f64 / 1000.0)
    } else {
        format!("{us}µs")
    }
}

/// What `orch scheduler compare` prints.
pub fn compare_view(c: &Comparison, spread_by: &str, now_ms: u64) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Decisions since {} (state index {})\n",
        if c.since_ms == 0 {
            "the first recorded".to_owned()
        } else {
            age(now_ms, c.since_ms)
        },
        c.index
    );
    let mut t = Table::new([
        "Scorer",
        "Role",
        "Decisions",
        "Agreement",
        "p50",
        "p99",
        "Faults",
        "Fallbacks",
        "Drops",
    ])
    .right(&[2, 3, 4, 5, 6, 7, 8]);
    for f in &c.scorers {
        t.row([
            f.name.clone(),
            f.role.clone(),
            f.decisions.to_string(),
            f.agreement.map_or_else(|| "-".to_owned(), percent),
            micros(f.latency_p50_us),
            micros(f.latency_p99_us),
            f.faults.to_string(),
            f.fallbacks.to_string(),
            f.drops.to_string(),
        ]);
    }
    out.push_str(&t.render());
    let packed: Vec<(&str, &str, &Packing)> = c
        .scorers
        .iter()
        .filter_map(|f| {
            f.packing
                .as_ref()
                .map(|p| (f.name.as_str(), f.role.as_str(), p))
        })
        .collect();
    if packed.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "\nPacking now (the primary's real cluster, each shadow's own)"
    );
    let mut headers = vec!["".to_owned()];
    headers.extend(packed.iter().map(|(name, role, _)| {
        if *role == "shadow" {
            format!("{name} (shadow)")
        } else {
            (*name).to_owned()
        }
    }));
    let mut t = Table::new(headers);
    let row = |label: &str, cell: &dyn Fn(&Packing) -> String| {
        let mut r = vec![label.to_owned()];
        r.extend(packed.iter().map(|(_, _, p)| cell(p)));
        r
    };
    t.row(row("nodes used", &|p| {
        format!("{} of {}", p.nodes_used, p.nodes)
    }));
    t.row(row("allocations", &|p| {
        if p.unplaced > 0 {
            format!("{} ({} found no room)", p.allocations, p.unplaced)
        } else {
            p.allocations.to_string()
        }
    }));
    for (i, name) in ["cpu", "memory", "disk"].iter().enumerate() {
        t.row(row(&format!("{name} mean / p90"), &|p| {
            p.resources.get(i).map_or_else(String::new, |r| {
                format!("{} / {}", percent(r.mean), percent(r.p90))
            })
        }));
    }
    for (i, name) in ["cpu", "memory", "disk"].iter().enumerate() {
        t.row(row(&format!("{name} stranded"), &|p| {
            p.resources
                .get(i)
                .map_or_else(String::new, |r| percent(r.stranded))
        }));
    }
    t.row(row(&format!("spread by {spread_by}"), &|p| {
        let values: Vec<String> = p
            .spread
            .iter()
            .take(4)
            .map(|c| format!("{} {}", c.value, c.allocations))
            .collect();
        let more = p.spread.len().saturating_sub(4);
        if more > 0 {
            format!("{} +{more}", values.join(", "))
        } else {
            values.join(", ")
        }
    }));
    out.push_str(&t.render());
    let _ = writeln!(
        out,
        "\nUtilization of each used node (mean of cpu and memory), highest first"
    );
    let width = packed.iter().map(|(n, _, _)| n.len()).max().unwrap_or(0);
    for (name, _, p) in &packed {
        let _ = writeln!(out, "{name:<width$}  {}", bars(&p.per_node, 60));
    }
    out.push_str(&history_view(c, &packed, width));
    out
}

/// Nodes in use and mean cpu of each cluster over time, one line each.
fn history_view(c: &Comparison, packed: &[(&str, &str, &Packing)], width: usize) -> String {
    let mut out = String::new();
    let mut lines = Vec::new();
    for (name, _, p) in packed {
        let mine: Vec<&orch_wire::UsageSample> =
            c.history.iter().filter(|s| s.scorer == *name).collect();
        if mine.len() < 2 {
            continue;
        }
        let total = p.nodes.max(1) as f64;
        let used: Vec<f64> = mine.iter().map(|s| s.nodes_used as f64 / total).collect();
        let cpu: Vec<f64> = mine.iter().map(|s| s.cpu).collect();
        let (first, last) = (mine[0], mine[mine.len() - 1]);
        lines.push(format!(
            "{name:<width$}  nodes used  {}  {} → {} of {}",
            bars(&used, 60),
            first.nodes_used,
            last.nodes_used,
            p.nodes
        ));
        lines.push(format!(
            "{:<width$}  mean cpu    {}  {} → {}",
            "",
            bars(&cpu, 60),
            percent(first.cpu),
            percent(last.cpu)
        ));
    }
    if !lines.is_empty() {
        let _ = writeln!(
            out,
            "\nOver time (a sample every 10 s since the server started, oldest left)"
        );
        for line in lines {
            let _ = writeln!(out, "{line}");
        }
    }
    out
}

/// One block character per value (0 to 1), at most `max` of them: a long
/// list is shrunk by taking the mean of each run, so its shape stays.
pub fn bars(values: &[f64], max: usize) -> String {
    const BLOCKS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    if values.is_empty() {
        return "(no node in use)".to_owned();
    }
    let n = values.len().min(max.max(1));
    let mut out = String::with_capacity(n * 3);
    for i in 0..n {
        let (a, b) = (
            i * values.len() / n,
            ((i + 1) * values.len() / n).max(i * values.len() / n + 1),
        );
        let run = &values[a..b.min(values.len())];
        let v = run.iter().sum::<f64>() / run.len() as f64;
        let level = (v.clamp(0.0, 1.0) * 8.0).round() as usize;
        // A node in use never looks empty.
        out.push(BLOCKS[level.max(1)]);
    }
    if values.len() > n {
        let _ = write!(out, " ({} nodes)", values.len());
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests may")]
    use super::*;
    use crate::format::testing::assert_snapshot;
    use orch_model::Sampling;
    use orch_wire::{
        CandidateStatus, NamedScorer, ResourcePacking, ScorerFigures, ScorerRole, ShadowCounters,
        SpreadCount,
    };

    const NOW: u64 = 1_795_000_000_000;

    fn status() -> SchedulerStatus {
        SchedulerStatus {
            index: 42,
            primary: ScorerRole {
                name: "binpack".into(),
                label: "binpack 0.1.0".into(),
                digest: "sha256:9f86d081884c7d659a2feaa0".into(),
                origin: Origin::Config,
            },
            fallback: None,
            sampling: Sampling::default(),
            candidates: vec![
                CandidateStatus {
                    name: "spread".into(),
                    mode: CandidateMode::Shadow,
                    weight: 100,
                    jobs: vec![],
                    label: "spread 0.1.0".into(),
                    digest: "sha256:aa".into(),
                    origin: Origin::Api {
                        index: 40,
                        time_ms: NOW - 120_000,
                    },
                    shadow: Some(ShadowCounters {
                        started_ms: NOW - 120_000,
                        offered: 200,
                        scored: 190,
                        faults: 2,
                        dropped: 8,
                        agreed: 57,
                        unplaced: 0,
                        queued: 0,
                    }),
                },
                CandidateStatus {
                    name: "tight".into(),
                    mode: CandidateMode::Split,
                    weight: 10,
                    jobs: vec!["batch-*".into()],
                    label: "binpack 0.1.0".into(),
                    digest: "sha256:bb".into(),
                    origin: Origin::Config,
                    shadow: None,
                },
            ],
            scorers: vec![
                NamedScorer {
                    name: "binpack".into(),
                    spec: ScorerSpec::plugin("binpack"),
                    origin: Origin::Config,
                    role: Some("primary".into()),
                },
                NamedScorer {
                    name: "tight".into(),
                    spec: ScorerSpec {
                        deadline_ms: Some(50),
                        ..ScorerSpec::plugin("builtin:binpack")
                    },
                    origin: Origin::Config,
                    role: Some("split".into()),
                },
            ],
            stale: None,
        }
    }

    #[test]
    fn status_shows_roles_counters_and_origins() {
        assert_snapshot("scheduler_status", &status_view(&status(), NOW));
    }

    #[test]
    fn compare_shows_figures_and_packing_side_by_side() {
        let packing = |used: u64, mean: f64, per_node: Vec<f64>| Packing {
            nodes: 10,
            nodes_used: used,
            allocations: 40,
            unplaced: 0,
            resources: ["cpu", "memory", "disk"]
                .iter()
                .map(|r| ResourcePacking {
                    resource: (*r).into(),
                    mean,
                    p90: mean + 0.05,
                    stranded: 0.01,
                })
                .collect(),
            spread: vec![
                SpreadCount {
                    value: "dc1".into(),
                    allocations: 30,
                },
                SpreadCount {
                    value: "dc2".into(),
                    allocations: 10,
                },
            ],
            per_node,
        };
        let figures = |name: &str, role: &str, agreement, p: Option<Packing>| ScorerFigures {
            name: name.into(),
            role: role.into(),
            label: String::new(),
            decisions: 40,
            agreement,
            latency_p50_us: 45,
            latency_p99_us: 12_500,
            faults: 0,
            fallbacks: 0,
            drops: 0,
            packing: p,
        };
        let sample = |t: u64, scorer: &str, nodes_used: u64, cpu: f64| orch_wire::UsageSample {
            time_ms: NOW - 3_600_000 + t * 10_000,
            scorer: scorer.into(),
            nodes_used,
            cpu,
            memory: cpu,
        };
        let mut history = Vec::new();
        for t in 0..12 {
            history.push(sample(t, "binpack", 1 + t / 4, 0.5 + t as f64 / 30.0));
            history.push(sample(t, "spread", (1 + t).min(10), 0.36));
        }
        // The primary failed on 3 placements, which the fallback answered.
        let mut binpack = figures(
            "binpack",
            "primary",
            None,
            Some(packing(4, 0.9, vec![1.0, 0.95, 0.9, 0.75])),
        );
        (binpack.faults, binpack.fallbacks) = (3, 3);
        let mut fallback = figures("epvm", "fallback", None, None);
        fallback.decisions = 3;
        let c = Comparison {
            history,
            since_ms: NOW - 3_600_000,
            index: 77,
            scorers: vec![
                binpack,
                figures(
                    "spread",
                    "shadow",
                    Some(0.25),
                    Some(packing(10, 0.36, vec![0.4; 10])),
                ),
                fallback,
            ],
        };
        assert_snapshot(
            "scheduler_compare",
            &compare_view(&c, "${node.datacenter}", NOW),
        );
    }

    #[test]
    fn bars_keep_the_shape_of_long_lists() {
        assert_eq!(bars(&[1.0, 0.5, 0.0], 10), "█▄▁");
        let many: Vec<f64> = (0..100).map(|i| 1.0 - f64::from(i) / 100.0).collect();
        let b = bars(&many, 10);
        assert!(b.starts_with('█') && b.ends_with("(100 nodes)"), "{b}");
        assert_eq!(bars(&[], 10), "(no node in use)");
    }
}
