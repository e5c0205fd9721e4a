//! `orch scheduler replay`: recorded decisions scored again by another
//! scorer (or the same one), from the exact requests the records keep,
//! here on this machine: agreement, and the decisions that differ with
//! both sides' parts.

use crate::client::{AddressArgs, Reply, routes};
use crate::format::score;
use crate::plugin::{RegistryArgs, advance, finish, progress_bar, read_plugin, runtime};
use crate::table::Table;
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use orch_model::Decision;
use orch_plugin_runtime::Limits;
use orch_server::{ComponentScorer, Scorer, parts_row, replay};
use orch_wire::{DecisionPage, SchedulerStatus};
use serde::Serialize;
use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Records fetched per request.
const PAGE: usize = 500;
/// Differences kept in the report (all are counted).
const KEEP: usize = 1000;

#[derive(clap::Args)]
pub struct ReplayArgs {
    /// The scorer to replay with: a scorer's name on the server, a path to
    /// a .wasm component here, `builtin:NAME`, or `oci://…`.
    #[arg(long = "with", value_name = "SCORER")]
    pub with: String,
    /// Only decisions made this recently (e.g. 30m, 2h); default: all.
    #[arg(long, conflicts_with = "job")]
    pub since: Option<String>,
    /// Only this job's decisions.
    #[arg(long)]
    pub job: Option<String>,
    /// Differences printed with their parts (all are counted).
    #[arg(long, default_value_t = 5)]
    pub show: usize,
    /// Deadline of one call, in ms (default: the scorer's on the server,
    /// else 1000).
    #[arg(long)]
    pub deadline_ms: Option<u64>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub addr: AddressArgs,
}

/// What a replay found.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayReport {
    /// What `--with` named, and the scorer it is.
    pub with: String,
    pub scorer: String,
    pub digest: String,
    pub decisions: u64,
    pub agreed: u64,
    pub faults: u64,
    /// Agreed over the decisions it answered.
    pub agreement: f64,
    pub seconds: f64,
    pub decisions_per_sec: f64,
    /// The first faults' errors.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fault_examples: Vec<String>,
    /// The decisions that differ, oldest first (the first 1000).
    pub differences: Vec<Difference>,
}

/// One decision the replay would have made differently.
#[derive(Debug, Clone, Serialize)]
pub struct Difference {
    pub alloc_id: String,
    pub job_id: String,
    pub group: String,
    pub recorded_node: String,
    pub replayed_node: String,
    /// The recorded scorer's view of both nodes, then the replayed one's.
    pub recorded: Verdict,
    pub replayed: Verdict,
}

/// One scorer's view of the two nodes a difference is about.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub scorer: String,
    pub part_names: Vec<String>,
    /// The node it picked, and the other side's pick.
    pub picked: NodeScore,
    pub other: NodeScore,
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeScore {
    pub node: String,
    /// The final score (the scorer's plus the host's adjustments).
    pub score: f64,
    pub parts: Vec<f64>,
}

impl ReplayArgs {
    pub fn run(self) -> Result<ExitCode> {
        let client = self.addr.client()?;
        let (name, bytes, limits) = self.scorer_bytes(&client)?;
        let runtime = runtime()?;
        let component = runtime.load(&name, &bytes, &limits)?;
        let plugin = runtime.scorer(&component, limits)?;
        let scorer = ComponentScorer::new(plugin)
            .with_context(|| format!("{name} did not describe itself (info())"))?;
        let mut query: Vec<(&str, String)> = vec![("limit", PAGE.to_string())];
        if let Some(job) = &self.job {
            query.push(("job", job.clone()));
        }
        let mut report = ReplayReport {
            with: self.with.clone(),
            scorer: scorer.label().to_owned(),
            digest: scorer.digest().to_owned(),
            decisions: 0,
            agreed: 0,
            faults: 0,
            agreement: 0.0,
            seconds: 0.0,
            decisions_per_sec: 0.0,
            fault_examples: Vec::new(),
            differences: Vec::new(),
        };
        let bar = replay_bar();
        let mut scoring = Duration::ZERO;
        let mut after = 0u64;
        // The first page says where the window starts; the later ones ask
        // for that same window, however long the replay takes.
        let mut window = self.since.clone().map(|since| ("since", since));
        loop {
            let mut q: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let cursor = after.to_string();
            q.push(("after", &cursor));
            if let Some((key, value)) = &window {
                q.push((*key, value.as_str()));
            }
            let page: Reply<DecisionPage> = client.get(&routes::SCHEDULER_DECISIONS, &[], &q)?;
            if after == 0 {
                window = Some(("since_ms", page.body.since_ms.to_string()));
                if let Some(bar) = &bar {
                    // Counted on the first page only.
                    bar.set_length(page.body.total);
                }
            }
            let started = Instant::now();
            for d in &page.body.decisions {
                tally(&mut report, &scorer, d);
                if let Some(bar) = &bar {
                    bar.inc(1);
                }
            }
            scoring += started.elapsed();
            match page.body.next {
                Some(next) => after = next,
                None => break,
            }
        }
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        let answered = report.decisions - report.faults;
        report.agreement = if answered == 0 {
            0.0
        } else {
            report.agreed as f64 / answered as f64
        };
        report.seconds = scoring.as_secs_f64();
        report.decisions_per_sec = if report.seconds > 0.0 {
            report.decisions as f64 / report.seconds
        } else {
            0.0
        };
        if self.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}", replay_view(&report, self.show));
        }
        Ok(ExitCode::SUCCESS)
    }

    /// The scorer's name, bytes and limits: a file or built-in here, an
    /// OCI reference pulled here, or a name the server knows, resolved to
    /// one of those.
    fn scorer_bytes(&self, client: &orch_wire::Client) -> Result<(String, Vec<u8>, Limits)> {
        let mut limits = Limits::default();
        let mut plugin = self.with.clone();
        let local = std::path::Path::new(&plugin).is_file();
        if !local && !plugin.starts_with("builtin:") && !plugin.starts_with("oci://") {
            // A name: what the server runs under it.
            let status: Reply<SchedulerStatus> = client.get(&routes::SCHEDULER, &[], &[])?;
            let known = status.body.scorers.iter().find(|s| s.name == plugin);
            match known {
                Some(s) => {
                    if let Some(ms) = s.spec.deadline_ms {
                        limits.deadline = Duration::from_millis(ms);
                    }
                    if let Some(mib) = s.spec.memory_mib {
                        limits.memory_bytes = usize::try_from(mib << 20).unwrap_or(usize::MAX);
                    }
                    plugin = s.spec.plugin.clone();
                    if orch_builtins::get(&plugin).is_some() {
                        plugin = format!("builtin:{plugin}");
                    }
                }
                None if orch_builtins::get(&plugin).is_some() => {
                    plugin = format!("builtin:{plugin}");
                }
                None => {
                    let names: Vec<&str> = status
                        .body
                        .scorers
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect();
                    anyhow::bail!(
                        "{plugin} is not a file here, and the server knows no scorer by that name (it knows {}, and the built-ins); give a name, a path to a .wasm file, builtin:NAME or oci://…",
                        names.join(", ")
                    );
                }
            }
        }
        if let Some(ms) = self.deadline_ms {
            limits.deadline = Duration::from_millis(ms);
        }
        if let Some(reference) = plugin.strip_prefix("oci://").map(|_| plugin.clone()) {
            let reference = orch_registry::Reference::parse(&reference)?;
            let auth = self.registry.auth(reference.registry())?;
            let bar = progress_bar(&format!("pulling {reference}"));
            let artifact =
                orch_registry::Client::new()?.pull(&reference, &auth, &mut |p| advance(&bar, p))?;
            finish(bar);
            return Ok((reference.to_string(), artifact.bytes, limits));
        }
        if !plugin.starts_with("builtin:") && !std::path::Path::new(&plugin).is_file() {
            anyhow::bail!(
                "scorer {} is the file {plugin} on the server's machine, which is not here; copy it and give --with PATH.wasm",
                self.with
            );
        }
        let (name, bytes) = read_plugin(&plugin)?;
        Ok((name, bytes, limits))
    }
}

/// Counts one decision into the report.
fn tally(report: &mut ReplayReport, scorer: &ComponentScorer, d: &Decision) {
    report.decisions += 1;
    let replayed = match replay(scorer, d) {
        Ok(r) => r,
        Err(e) => {
            report.faults += 1;
            if report.fault_examples.len() < 5 {
                report.fault_examples.push(format!("{}: {e}", d.alloc_id));
            }
            return;
        }
    };
    if replayed.agrees(d) {
        report.agreed += 1;
        return;
    }
    if report.differences.len() >= KEEP {
        return;
    }
    let node = |i: usize| d.candidates.get(i).cloned().unwrap_or_default();
    let adjust = |i: usize| d.host_adjustments.get(i).copied().unwrap_or(0.0);
    let recorded_width = d.part_names.len();
    let replay_width = replayed.part_names.len();
    let (a, b) = (d.pick as usize, replayed.pick);
    let side = |scores: &[f64], parts: &[f64], width: usize, i: usize| NodeScore {
        node: node(i),
        score: scores.get(i).copied().unwrap_or(0.0) + adjust(i),
        parts: parts_row(parts, width, i),
    };
    report.differences.push(Difference {
        alloc_id: d.alloc_id.clone(),
        job_id: d.job_id.clone(),
        group: d.group.clone(),
        recorded_node: node(a),
        replayed_node: node(b),
        recorded: Verdict {
            scorer: d.scorer.clone(),
            part_names: d.part_names.clone(),
            picked: side(&d.scores, &d.parts, recorded_width, a),
            other: side(&d.scores, &d.parts, recorded_width, b),
        },
        replayed: Verdict {
            scorer: scorer.label().to_owned(),
            part_names: replayed.part_names.clone(),
            picked: side(&replayed.scores, &replayed.parts, replay_width, b),
            other: side(&replayed.scores, &replayed.parts, replay_width, a),
        },
    });
}

/// A count progress bar on stderr, only when stderr is a terminal.
fn replay_bar() -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("replaying [{bar:30}] {pos}/{len} decisions {per_sec}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    Some(bar)
}

/// What `orch scheduler replay` prints.
pub fn replay_view(r: &ReplayReport, show: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Replayed {} decisions with {} ({}) in {:.2}s ({:.0} decisions/s)",
        r.decisions, r.scorer, r.with, r.seconds, r.decisions_per_sec
    );
    let answered = r.decisions - r.faults;
    let _ = writeln!(
        out,
        "Agreement: {} of {answered} answered ({:.1}%); {} differ; {} faults",
        r.agreed,
        r.agreement * 100.0,
        answered - r.agreed,
        r.faults
    );
    for f in &r.fault_examples {
        let _ = writeln!(out, "  fault: {f}");
    }
    for d in r.differences.iter().take(show) {
        let _ = writeln!(
            out,
            "\nAllocation {} (job {}, group {}): recorded {} / replayed {}",
            crate::format::short(&d.alloc_id),
            d.job_id,
            d.group,
            d.recorded_node,
            d.replayed_node
        );
        for v in [&d.recorded, &d.replayed] {
            let mut headers = vec![v.scorer.clone(), "score".to_owned()];
            headers.extend(v.part_names.iter().cloned());
            let mut t = Table::new(headers);
            for (label, n) in [("picks", &v.picked), ("other", &v.other)] {
                let mut row = vec![format!("{label} {}", n.node), score(n.score)];
                row.extend(n.parts.iter().map(|p| score(*p)));
                t.row(row);
            }
            out.push_str(&t.render());
        }
    }
    let more = r.differences.len().saturating_sub(show);
    if more > 0 {
        let _ = writeln!(out, "\n… and {more} more (--show N, or --json for all)");
    }
    out
}
