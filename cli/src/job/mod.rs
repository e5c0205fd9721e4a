//! `orch job run|plan|status|stop|history`: submit jobs and see what the
//! scheduler made of them, with Nomad's habits (the monitor after `run`,
//! the diff and `--check-index` hint after `plan`).
//!
//! Each subcommand is its arguments and its `run`; what they print is in
//! `view`, pure and snapshot-tested.

#[cfg(test)]
pub mod fixtures;
mod view;

pub use view::{
    alloc_table, change_summary, desired_str, eval_exit, file_problems, history, job_detail,
    job_list, monitor_report, node_label, plan_changes, plan_view, waiting_eval,
};

use super::client::{AddressArgs, Client, Reply, routes};
use super::format::{now_ms, pretty_json, short};
use crate::EXIT_ERROR;
use anyhow::{Context, Result};
use orch_model::{Allocation, EvalStatus, Evaluation, Job, Node, parse_job_file};
use orch_wire::{
    EvaluationDetail, JobPlanResponse, JobRegisterRequest, JobRegisterResponse, JobStopResponse,
    JobSummary,
};
use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use view::latest_decision;

#[derive(clap::Subcommand)]
pub enum JobCommand {
    /// Check a job file, submit it, and follow its evaluation.
    ///
    /// Follows the evaluation until its placements are known. Exit 0 when
    /// every allocation was placed, 2 when some could not be, or the file or
    /// the request was refused.
    Run(RunArgs),
    /// Show what submitting a job file would change, without changing anything.
    ///
    /// Exit 0 when nothing would change, 1 when something would, 2 on error.
    Plan(PlanArgs),
    /// List jobs, or show one job's groups and allocations.
    Status(StatusArgs),
    /// Stop a job: its allocations are stopped; its versions are kept.
    Stop(StopArgs),
    /// List a job's versions, newest first, with what changed in each.
    History(HistoryArgs),
}

impl JobCommand {
    pub fn run(self) -> Result<ExitCode> {
        match self {
            Self::Run(args) => args.run(),
            Self::Plan(args) => args.run(),
            Self::Status(args) => args.run(),
            Self::Stop(args) => args.run(),
            Self::History(args) => args.run(),
        }
    }
}

#[derive(clap::Args)]
pub struct RunArgs {
    /// The job file (TOML).
    pub file: PathBuf,
    /// Submit and return at once, without following the evaluation.
    #[arg(long)]
    pub detach: bool,
    /// Submit only if the job's modify index is still N (0: only if the
    /// job does not exist yet), as `orch job plan` printed it.
    #[arg(long, value_name = "N")]
    pub check_index: Option<u64>,
    /// Print the final evaluation as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub addr: AddressArgs,
}

impl RunArgs {
    pub fn run(self) -> Result<ExitCode> {
        let Some(job) = read_job_file(&self.file)? else {
            return Ok(ExitCode::from(EXIT_ERROR));
        };
        let client = self.addr.client()?;
        let request = JobRegisterRequest {
            job,
            enforce_index: self.check_index,
        };
        let reply: Reply<JobRegisterResponse> =
            client.post(&routes::JOB_REGISTER, &[], &request)?;
        for w in &reply.body.warnings {
            eprintln!("warning: {w}");
        }
        let Some(eval_id) = reply.body.eval_id.clone() else {
            // Nothing new to evaluate, but the job may still be short of
            // room from before: the exit code says so, as it did then.
            let evals: Reply<Vec<Evaluation>> =
                client.get(&routes::JOB_EVALUATIONS, &[&request.job.id], &[])?;
            let waiting = evals.body.iter().find(|e| e.status == EvalStatus::Blocked);
            if self.json {
                println!("{}", pretty_json(&reply.text));
            } else {
                println!(
                    "Job \"{}\" is unchanged (version {}); nothing to evaluate.",
                    request.job.id, reply.body.job_version
                );
                if let Some(blocked) = waiting {
                    // A blocked evaluation counts what waits (an older
                    // server left it none until it looked again; then the
                    // one that left it does).
                    let counted = if blocked.queued_allocations.is_empty() {
                        evals
                            .body
                            .iter()
                            .find(|e| Some(&e.id) == blocked.previous_eval.as_ref())
                            .unwrap_or(blocked)
                    } else {
                        blocked
                    };
                    let queued: u64 = counted.queued_allocations.values().sum();
                    println!(
                        "It is still waiting for room for {queued} allocation(s): see `orch eval status {}`.",
                        short(&blocked.id)
                    );
                }
            }
            return Ok(if waiting.is_some() {
                ExitCode::from(EXIT_ERROR)
            } else {
                ExitCode::SUCCESS
            });
        };
        if self.detach {
            if self.json {
                println!("{}", pretty_json(&reply.text));
            } else {
                println!(
                    "Job registration successful (version {})\nEvaluation ID: {eval_id}",
                    reply.body.job_version
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
        follow(&client, &eval_id, &request.job.id, self.json)
    }
}

#[derive(clap::Args)]
pub struct PlanArgs {
    /// The job file (TOML).
    pub file: PathBuf,
    /// Also say what became of this node in each group: not evaluated
    /// (down, draining, ineligible), filtered (by what), without room, not
    /// sampled, outscored or tied (its score beside the winner's) or
    /// picked. A node id, id prefix or name.
    #[arg(long, value_name = "NODE")]
    pub why_not: Option<String>,
    /// Print the server's plan as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub addr: AddressArgs,
}

impl PlanArgs {
    pub fn run(self) -> Result<ExitCode> {
        let Some(job) = read_job_file(&self.file)? else {
            return Ok(ExitCode::from(EXIT_ERROR));
        };
        let client = self.addr.client()?;
        let request = JobRegisterRequest {
            job,
            enforce_index: None,
        };
        let query: Vec<(&str, &str)> = self
            .why_not
            .as_deref()
            .map(|node| ("why_not", node))
            .into_iter()
            .collect();
        let reply: Reply<JobPlanResponse> =
            client.post_with_query(&routes::JOB_PLAN, &[&request.job.id], &query, &request)?;
        if self.json {
            println!("{}", pretty_json(&reply.text));
        } else {
            print!(
                "{}",
                plan_view(&request.job, &reply.body, &self.file.display().to_string())
            );
            if let Some(why_not) = &reply.body.why_not {
                print!("{}", crate::why_not::plan_why_not(why_not));
            }
        }
        Ok(if plan_changes(&reply.body) {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        })
    }
}

#[derive(clap::Args)]
pub struct StatusArgs {
    /// A job id; without it, every job.
    pub id: Option<String>,
    /// Print the server's JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub addr: AddressArgs,
}

impl StatusArgs {
    pub fn run(self) -> Result<ExitCode> {
        let client = self.addr.client()?;
        let Some(id) = self.id else {
            let reply: Reply<Vec<JobSummary>> = client.get(&routes::JOBS, &[], &[])?;
            if self.json {
                println!("{}", pretty_json(&reply.text));
            } else {
                print!("{}", job_list(&reply.body));
            }
            return Ok(ExitCode::SUCCESS);
        };
        let job: Reply<Job> = client.get(&routes::JOB, &[&id], &[])?;
        if self.json {
            println!("{}", pretty_json(&job.text));
            return Ok(ExitCode::SUCCESS);
        }
        let allocs: Reply<Vec<Allocation>> = client.get(&routes::JOB_ALLOCATIONS, &[&id], &[])?;
        // The status is the server's word (it is derived there); the list
        // is the only place that has it.
        let summary = client
            .get::<Vec<JobSummary>>(&routes::JOBS, &[], &[])?
            .body
            .into_iter()
            .find(|s| s.id == job.body.id);
        let evals: Reply<Vec<Evaluation>> = client.get(&routes::JOB_EVALUATIONS, &[&id], &[])?;
        print!(
            "{}",
            job_detail(
                &job.body,
                summary.as_ref(),
                &allocs.body,
                latest_decision(&evals.body),
                now_ms()
            )
        );
        Ok(ExitCode::SUCCESS)
    }
}

#[derive(clap::Args)]
pub struct StopArgs {
    pub id: String,
    /// Return at once, without following the evaluation.
    #[arg(long)]
    pub detach: bool,
    /// Print the final evaluation as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub addr: AddressArgs,
}

impl StopArgs {
    pub fn run(self) -> Result<ExitCode> {
        let client = self.addr.client()?;
        let reply: Reply<JobStopResponse> = client.delete(&routes::JOB_STOP, &[&self.id])?;
        if self.detach {
            if self.json {
                println!("{}", pretty_json(&reply.text));
            } else {
                println!("Evaluation ID: {}", reply.body.eval_id);
            }
            return Ok(ExitCode::SUCCESS);
        }
        follow(&client, &reply.body.eval_id, &self.id, self.json)
    }
}

#[derive(clap::Args)]
pub struct HistoryArgs {
    pub id: String,
    /// Print the server's JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub addr: AddressArgs,
}

impl HistoryArgs {
    pub fn run(self) -> Result<ExitCode> {
        let client = self.addr.client()?;
        let reply: Reply<Vec<Job>> = client.get(&routes::JOB_VERSIONS, &[&self.id], &[])?;
        if self.json {
            println!("{}", pretty_json(&reply.text));
        } else {
            print!("{}", history(&reply.body));
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// The job in `file`, or `None` after printing every problem in it: a file
/// with problems is never sent.
fn read_job_file(file: &std::path::Path) -> Result<Option<Job>> {
    let name = file.display().to_string();
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read job file {name}"))?;
    match parse_job_file(&name, &text) {
        Ok(job) => Ok(Some(job)),
        Err(e) => {
            eprint!("{}", file_problems(&name, &text, &e.problems));
            Ok(None)
        }
    }
}

// ---- following an evaluation ------------------------------------------------

/// How long one blocking query waits; short enough that a server restart
/// is noticed, long enough not to poll.
const FOLLOW_WAIT: Duration = Duration::from_secs(30);

/// Wait for the evaluation to leave `pending`, then print what it did.
fn follow(client: &Client, eval_id: &str, job_id: &str, json: bool) -> Result<ExitCode> {
    if !json {
        println!("==> Monitoring evaluation \"{}\"", short(eval_id));
    }
    let spinner = (!json).then(|| Spinner::start("waiting for the scheduler"));
    let mut index = 0;
    let last = loop {
        let reply: Reply<EvaluationDetail> = if index == 0 {
            client.get(&routes::EVALUATION, &[eval_id], &[])?
        } else {
            client.get_blocking(&routes::EVALUATION, &[eval_id], index, FOLLOW_WAIT)?
        };
        if reply.body.evaluation.status != EvalStatus::Pending {
            break reply;
        }
        if reply.index <= index {
            // A server that does not block (or no index header): do not spin.
            std::thread::sleep(Duration::from_millis(500));
        }
        index = reply.index.max(index).max(1);
    };
    drop(spinner);
    if json {
        println!("{}", pretty_json(&last.text));
        return Ok(ExitCode::from(eval_exit(&last.body)));
    }
    // Names make the placements readable; without them the ids still say
    // it all, so a failure here is not worth failing the command for.
    let allocs: Vec<Allocation> = client
        .get::<Vec<Allocation>>(&routes::ALLOCATIONS, &[], &[("job", job_id)])
        .map(|r| r.body)
        .unwrap_or_default();
    let nodes = node_names(client);
    print!("{}", monitor_report(&last.body, &allocs, &nodes));
    Ok(ExitCode::from(eval_exit(&last.body)))
}

/// Node id → name, for display; empty when the list cannot be had.
pub fn node_names(client: &Client) -> BTreeMap<String, String> {
    client
        .get::<Vec<Node>>(&routes::NODES, &[], &[])
        .map(|r| r.body.into_iter().map(|n| (n.id, n.name)).collect())
        .unwrap_or_default()
}

/// Shows that something is happening while a blocking query waits, on a
/// terminal only: in a pipe or a CI log it would be noise.
struct Spinner {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Spinner {
    fn start(message: &'static str) -> Self {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let thread = std::io::stderr().is_terminal().then(|| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
                let started = std::time::Instant::now();
                let mut i = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    eprint!(
                        "\r{} {message} ({}s)",
                        frames[i % frames.len()],
                        started.elapsed().as_secs()
                    );
                    i = i.wrapping_add(1);
                    std::thread::sleep(Duration::from_millis(100));
                }
                // Clear the line so what follows starts clean.
                eprint!("\r\x1b[2K");
            })
        });
        Self { stop, thread }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
