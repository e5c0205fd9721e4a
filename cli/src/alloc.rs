//! `orch alloc status`: an allocation, its tasks' states and recent
//! events, and with `--verbose` the decision that put it where it is —
//! every candidate's score and its parts, so a user can see why one node
//! won. `orch alloc logs`: a task's output, read through the server from
//! the node's agent.

use super::client::{AddressArgs, Client, RawReply, Reply, routes};
use super::format::{age, datetime, now_ms, plural, pretty_json, score, short};
use super::job::{desired_str, node_names};
use super::table::{Table, key_values};
use anyhow::{Result, bail};
use orch_model::{Allocation, Decision, Job, TaskEvent, TaskState};
use orch_wire::{AllocWhyNot, AllocationDetail};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Subcommand)]
pub enum AllocCommand {
    /// Show an allocation; with --verbose, why it was placed where it is.
    Status(StatusArgs),
    /// Print a task's stdout (or stderr) as it wrote it.
    Logs(LogsArgs),
}

impl AllocCommand {
    pub fn run(self) -> Result<ExitCode> {
        match self {
            Self::Status(args) => args.run(),
            Self::Logs(args) => args.run(),
        }
    }
}

#[derive(clap::Args)]
pub struct StatusArgs {
    /// An allocation id, or a unique prefix of at least 4 characters.
    pub id: String,
    /// Show the placement decision: the scorer and every candidate's
    /// score.
    #[arg(long, short)]
    pub verbose: bool,
    /// Also say why the allocation is not on this node: outscored or tied
    /// (its score beside the winner's) if it was a candidate, otherwise what
    /// the group's checks make of the node as it is now. A node id, id
    /// prefix or name; with --json, only this answer is printed.
    #[arg(long, value_name = "NODE")]
    pub why_not: Option<String>,
    /// Print the server's JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub addr: AddressArgs,
}

impl StatusArgs {
    pub fn run(self) -> Result<ExitCode> {
        let client = self.addr.client()?;
        let why_not = match &self.why_not {
            Some(node) => {
                let why: Reply<AllocWhyNot> =
                    client.get(&routes::ALLOCATION_WHY_NOT, &[&self.id, node], &[])?;
                if self.json {
                    println!("{}", pretty_json(&why.text));
                    return Ok(ExitCode::SUCCESS);
                }
                Some(why.body)
            }
            None => None,
        };
        let query: &[(&str, &str)] = if self.verbose {
            &[("verbose", "true")]
        } else {
            &[]
        };
        let reply: Reply<AllocationDetail> = client.get(&routes::ALLOCATION, &[&self.id], query)?;
        if self.json {
            println!("{}", pretty_json(&reply.text));
            return Ok(ExitCode::SUCCESS);
        }
        // For names only: ids still identify every node without them.
        let nodes = node_names(&client);
        print!(
            "{}",
            alloc_detail(&reply.body, &nodes, self.verbose, now_ms())
        );
        if let Some(why_not) = &why_not {
            print!("{}", crate::why_not::alloc_why_not(why_not, &nodes));
        }
        Ok(ExitCode::SUCCESS)
    }
}

#[derive(clap::Args)]
pub struct LogsArgs {
    /// An allocation id, or a unique prefix of at least 4 characters.
    pub alloc: String,
    /// The task; may be left out when the allocation's group has one.
    pub task: Option<String>,
    /// Keep printing what the task writes until interrupted, or until
    /// the allocation has ended and everything it wrote is printed.
    #[arg(long, short)]
    pub follow: bool,
    /// Print stderr instead of stdout.
    #[arg(long)]
    pub stderr: bool,
    #[command(flatten)]
    pub addr: AddressArgs,
}

impl LogsArgs {
    pub fn run(self) -> Result<ExitCode> {
        let client = self.addr.client()?;
        let detail: Reply<AllocationDetail> =
            client.get(&routes::ALLOCATION, &[&self.alloc], &[])?;
        let alloc = detail.body.allocation;
        let task = match self.task {
            Some(task) => task,
            None => only_task(&client, &alloc)?,
        };
        let stream = if self.stderr { "stderr" } else { "stdout" };
        print_logs(&client, &alloc, &task, stream, self.follow)
    }
}

/// How long `orch alloc logs -f` waits between polls when nothing came.
const FOLLOW_EVERY: Duration = Duration::from_millis(250);

/// The task of `alloc`'s group when it has only one; otherwise an error
/// that lists them.
fn only_task(client: &Client, alloc: &Allocation) -> Result<String> {
    let job: Reply<Job> = client.get(
        &routes::JOB,
        &[&alloc.job_id],
        &[("version", &alloc.job_version.to_string())],
    )?;
    let Some(group) = job.body.group(&alloc.group) else {
        bail!(
            "version {} of job {:?} has no group {:?}, which allocation {} runs",
            alloc.job_version,
            alloc.job_id,
            alloc.group,
            alloc.id
        );
    };
    match &group.tasks[..] {
        [only] => Ok(only.name.clone()),
        tasks => {
            let names: Vec<&str> = tasks.iter().map(|t| t.name.as_str()).collect();
            bail!(
                "group {:?} of allocation {} has {} tasks: {}; name the one to read, e.g. `orch alloc logs {} {}`",
                alloc.group,
                short(&alloc.id),
                tasks.len(),
                names.join(", "),
                short(&alloc.id),
                names.first().copied().unwrap_or("TASK")
            )
        }
    }
}

/// Prints everything the task wrote to `stream` so far; with `follow`,
/// keeps asking from where the last answer ended until the allocation has
/// ended and nothing more comes.
fn print_logs(
    client: &Client,
    alloc: &Allocation,
    task: &str,
    stream: &str,
    follow: bool,
) -> Result<ExitCode> {
    let mut cursor: Option<(u64, u64)> = None;
    let mut out = std::io::stdout().lock();
    loop {
        // Whether it had ended *before* this round's reads: then whatever
        // it wrote is in the files, and a round that brings nothing is the
        // end of it.
        let ended = follow && {
            let now: Reply<AllocationDetail> =
                client.get(&routes::ALLOCATION, &[&alloc.id], &[])?;
            now.body.allocation.client_status.is_terminal()
        };
        loop {
            let (file, offset) = cursor.map_or((String::new(), String::new()), |(f, o)| {
                (f.to_string(), o.to_string())
            });
            let mut query = vec![("type", stream)];
            if cursor.is_some() {
                query.extend([("file", file.as_str()), ("offset", offset.as_str())]);
            }
            let chunk: RawReply =
                client.get_bytes(&routes::ALLOCATION_LOGS, &[&alloc.id, task], &query)?;
            let next = (
                client.number_header(&chunk, orch_wire::LOG_FILE_HEADER)?,
                client.number_header(&chunk, orch_wire::LOG_OFFSET_HEADER)?,
            );
            if !chunk.body.is_empty() {
                let written = out.write_all(&chunk.body).and_then(|()| out.flush());
                if let Err(e) = written {
                    // The reader went away (`| head`): nothing more to do.
                    if e.kind() == std::io::ErrorKind::BrokenPipe {
                        return Ok(ExitCode::SUCCESS);
                    }
                    return Err(e.into());
                }
            }
            let moved = cursor != Some(next);
            cursor = Some(next);
            if chunk.body.is_empty() && !moved {
                break;
            }
        }
        if !follow || ended {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(FOLLOW_EVERY);
    }
}

/// How many candidates the score table shows; the rest are in `--json`.
const MAX_ROWS: usize = 20;

/// `orch alloc status ID [--verbose]`.
pub fn alloc_detail(
    detail: &AllocationDetail,
    nodes: &BTreeMap<String, String>,
    verbose: bool,
    now_ms: u64,
) -> String {
    let a = &detail.allocation;
    let mut pairs = vec![
        ("ID", a.id.clone()),
        ("Eval ID", short(&a.eval_id).to_owned()),
        ("Name", a.name.clone()),
        ("Node ID", short(&a.node_id).to_owned()),
        (
            "Node Name",
            nodes.get(&a.node_id).cloned().unwrap_or_default(),
        ),
        ("Job ID", a.job_id.clone()),
        ("Job Version", a.job_version.to_string()),
        ("Group", a.group.clone()),
        ("Desired Status", desired_str(a.desired_status).to_owned()),
        ("Desired Description", a.desired_description.clone()),
        ("Client Status", a.client_status.as_str().to_owned()),
        ("Client Description", a.client_description.clone()),
        ("Created", age(now_ms, a.create_time_ms)),
        ("Resources", a.resources.to_string()),
        (
            "Previous Allocation",
            a.previous_allocation
                .as_deref()
                .map(|p| short(p).to_owned())
                .unwrap_or_default(),
        ),
    ];
    if let Some(last) = a.reschedule_times_ms.iter().max() {
        pairs.push((
            "Reschedules",
            format!(
                "{} (last {})",
                a.reschedule_times_ms.len(),
                age(now_ms, *last)
            ),
        ));
    }
    let mut out = key_values(&pairs);
    for (name, state) in &a.task_states {
        out.push_str(&task_view(name, state));
    }
    if verbose {
        out.push_str("\nPlacement Decision\n");
        match &detail.decision {
            Some(d) => out.push_str(&decision_view(d, nodes)),
            None => out.push_str(
                "No decision is recorded for this allocation (it was not placed by the \
                 scheduler, or its record has been garbage-collected).\n",
            ),
        }
    }
    out
}

/// One task of `orch alloc status`: where it is, then its recent events
/// newest first, as Nomad shows them.
pub fn task_view(name: &str, state: &TaskState) -> String {
    let mut out = format!("\nTask {name:?} is {:?}\n", state.state.as_str());
    out.push_str(&key_values(&[
        ("Failed", state.failed.to_string()),
        ("Total Restarts", state.restarts.to_string()),
        ("Started At", datetime(state.started_at_ms)),
        ("Finished At", datetime(state.finished_at_ms)),
    ]));
    out.push_str("\nRecent Events:\n");
    if state.events.is_empty() {
        out.push_str("No events reported\n");
        return out;
    }
    let mut t = Table::new(["TIME", "TYPE", "DESCRIPTION"]);
    for event in state.events.iter().rev() {
        t.row([
            datetime(event.time_ms),
            event.kind.title().to_owned(),
            event_description(event),
        ]);
    }
    out.push_str(&t.render());
    out
}

/// The event's message, then its exit code and signal when it has them.
fn event_description(event: &TaskEvent) -> String {
    let mut parts: Vec<String> = Vec::new();
    if !event.message.is_empty() {
        // One line per event: a message with line breaks would break the
        // table.
        parts.push(
            event
                .message
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
        );
    }
    if let Some(code) = event.exit_code {
        parts.push(format!("exit code {code}"));
    }
    if let Some(signal) = event.signal {
        parts.push(format!("signal {signal}"));
    }
    parts.join(", ")
}

/// The scorer, the funnel of nodes (evaluated, filtered, skipped, scored),
/// the time spent, and the candidates by final score, the picked one marked.
pub fn decision_view(d: &Decision, nodes: &BTreeMap<String, String>) -> String {
    let filtered: u64 = d.nodes_filtered.values().sum();
    let mut rows = vec![("Scorer", format!("{} ({})", d.scorer, d.scorer_digest))];
    if let Some(failure) = &d.scorer_failure {
        // The fallback answered: say why the configured scorer did not.
        rows.push(("Fallback Because", failure.clone()));
    }
    rows.extend([
        ("Nodes Evaluated", d.nodes_evaluated.to_string()),
        ("Nodes Filtered", filtered.to_string()),
        ("Nodes Skipped", d.nodes_skipped.to_string()),
        ("Candidates Scored", d.candidates.len().to_string()),
        (
            "Time",
            format!(
                "{} in the scorer, {} for the whole placement",
                micros(d.scorer_micros),
                micros(d.total_micros)
            ),
        ),
    ]);
    let mut out = key_values(&rows);
    // The reasons go right under the count they explain.
    let mut reasons: Vec<(&String, &u64)> = d.nodes_filtered.iter().collect();
    reasons.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    let reason_lines: String = reasons
        .iter()
        .map(|(reason, n)| {
            format!(
                "  * {} excluded by filter: {reason}\n",
                plural(**n, "node", "nodes")
            )
        })
        .collect();
    if let Some(at) = out
        .find("Nodes Filtered")
        .and_then(|start| out[start..].find('\n').map(|nl| start + nl + 1))
    {
        out.insert_str(at, &reason_lines);
    }

    if d.candidates.is_empty() {
        out.push_str("\nNo candidates were scored.\n");
        return out;
    }
    let pick = usize::try_from(d.pick).ok();
    let has_host = !d.host_adjustments.is_empty();
    let parts = d.part_names.len();
    let mut order: Vec<usize> = (0..d.candidates.len()).collect();
    let key = |i: usize| {
        d.final_score(i)
            .filter(|s| s.is_finite())
            .unwrap_or(f64::NEG_INFINITY)
    };
    // Best first; ties keep the order the scorer saw them in.
    order.sort_by(|&x, &y| key(y).total_cmp(&key(x)).then(x.cmp(&y)));
    let shown: Vec<usize> = {
        let mut top: Vec<usize> = order.iter().copied().take(MAX_ROWS).collect();
        // The picked node is always shown, even when it did not score best
        // (a scorer's pick among ties, or a host adjustment after it).
        if let Some(p) = pick.filter(|p| !top.contains(p) && *p < d.candidates.len()) {
            top.push(p);
        }
        top
    };

    let mut headers = vec![
        String::new(),
        "NODE".to_owned(),
        "NODE ID".to_owned(),
        "SCORE".to_owned(),
        "SCORER".to_owned(),
    ];
    if has_host {
        headers.push("HOST ADJ".to_owned());
    }
    headers.extend(d.part_names.iter().map(|p| p.to_uppercase()));
    let right: Vec<usize> = (3..headers.len()).collect();
    let mut t = Table::new(headers).right(&right);
    for &i in &shown {
        let id = d.candidates.get(i).map_or("", String::as_str);
        let mut row = vec![
            if Some(i) == pick { "*" } else { "" }.to_owned(),
            nodes.get(id).cloned().unwrap_or_else(|| "-".to_owned()),
            short(id).to_owned(),
            d.final_score(i).map_or("-".to_owned(), score),
            d.scores.get(i).copied().map_or("-".to_owned(), score),
        ];
        if has_host {
            row.push(
                d.host_adjustments
                    .get(i)
                    .copied()
                    .map_or("-".to_owned(), signed),
            );
        }
        for j in 0..parts {
            let cell = i
                .checked_mul(parts)
                .and_then(|r| r.checked_add(j))
                .and_then(|k| d.parts.get(k))
                .copied()
                .map_or("-".to_owned(), score);
            row.push(cell);
        }
        t.row(row);
    }
    out.push('\n');
    out.push_str(&t.render());
    let hidden = d.candidates.len().saturating_sub(shown.len());
    if hidden > 0 {
        let _ = writeln!(
            out,
            "({} not shown; --json has them all)",
            plural(hidden as u64, "more candidate", "more candidates")
        );
    }
    match d.picked_node() {
        Some(node) => {
            let name = nodes.get(node).map_or(String::new(), |n| format!(" ({n})"));
            let _ = writeln!(out, "* picked: {}{name}", short(node));
        }
        None => {
            let _ = writeln!(out, "the pick ({}) is not one of the candidates", d.pick);
        }
    }
    out
}

fn signed(x: f64) -> String {
    if x > 0.0 {
        format!("+{}", score(x))
    } else {
        score(x)
    }
}

fn micros(us: u64) -> String {
    if us < 1000 {
        format!("{us}µs")
    } else if us < 1_000_000 {
        format!("{}.{:03}ms", us / 1000, us % 1000)
    } else {
        format!("{}.{:03}s", us / 1_000_000, us % 1_000_000 / 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::testing::assert_snapshot;
    use crate::job::fixtures::*;
    use orch_model::ClientStatus;

    const N1: &str = "n1a2b3c4-0000-4000-8000-000000000001";
    const N2: &str = "n2a2b3c4-0000-4000-8000-000000000002";
    const N3: &str = "n3a2b3c4-0000-4000-8000-000000000003";

    fn decision() -> Decision {
        Decision {
            alloc_id: "a0c0ffee-0000-4000-8000-000000000000".into(),
            eval_id: "e1e1e1e1-0000-4000-8000-000000000001".into(),
            job_id: "web".into(),
            group: "frontend".into(),
            scorer: "binpack@0.1.0".into(),
            scorer_digest: "sha256:9f86d081884c7d65".into(),
            scorer_name: String::new(),
            policy: String::new(),
            split: false,
            time_ms: 0,
            scorer_failure: None,
            placement: 0,
            snapshot_index: 0,
            job_priority: 50,
            ask: Default::default(),
            inputs: Default::default(),
            nodes_evaluated: 6,
            nodes_filtered: [
                ("missing driver exec".to_owned(), 1),
                ("node not ready".to_owned(), 2),
            ]
            .into(),
            nodes_skipped: 0,
            candidates: vec![N3.into(), N1.into(), N2.into()],
            scores: vec![0.5, 0.75, 0.75],
            host_adjustments: vec![0.0, 0.125, -0.25],
            host_divisor: 0.0,
            part_names: vec!["cpu".into(), "memory".into()],
            parts: vec![0.4, 0.6, 0.7, 0.8, 0.7, 0.8],
            pick: 1,
            scorer_micros: 180,
            total_micros: 2_450,
        }
    }

    #[test]
    fn alloc_status_verbose_score_table() {
        let detail = AllocationDetail {
            allocation: alloc(0, N1, ClientStatus::Running),
            decision: Some(decision()),
            shadows: Vec::new(),
        };
        let text = alloc_detail(&detail, &node_name_map(), true, NOW);
        assert_snapshot("cli-alloc-status-verbose", &text);
        let plain = alloc_detail(&detail, &node_name_map(), false, NOW);
        assert!(!plain.contains("Placement Decision"));
    }

    #[test]
    fn alloc_status_shows_each_tasks_state_and_events_newest_first() {
        use orch_model::{TaskEventKind as K, TaskStatus};
        let mut a = alloc(0, N1, ClientStatus::Failed);
        a.client_description = "Failed tasks".into();
        let mut server = TaskState {
            state: TaskStatus::Dead,
            failed: true,
            restarts: 2,
            started_at_ms: NOW - 30_000,
            finished_at_ms: NOW - 10_000,
            events: Vec::new(),
        };
        let event =
            |kind, ago: u64, message: &str, code: Option<i32>, signal: Option<u32>| TaskEvent {
                exit_code: code,
                signal,
                ..TaskEvent::new(kind, NOW - ago, message)
            };
        server.push(event(K::Received, 60_000, "", None, None));
        server.push(event(K::Started, 50_000, "", None, None));
        server.push(event(K::Terminated, 40_000, "", Some(1), None));
        server.push(event(K::Restarting, 40_000, "restarting in 5s", None, None));
        server.push(event(K::Started, 30_000, "", None, None));
        server.push(event(
            K::Killed,
            10_000,
            "out of memory:\nkilled",
            Some(137),
            Some(9),
        ));
        server.push(event(
            K::NotRestarting,
            10_000,
            "exceeded 2 restarts",
            None,
            None,
        ));
        a.task_states.insert("server".into(), server);
        a.task_states.insert("sidecar".into(), TaskState::default());
        let detail = AllocationDetail {
            allocation: a,
            decision: None,
            shadows: Vec::new(),
        };
        let text = alloc_detail(&detail, &node_name_map(), false, NOW);
        assert_snapshot("cli-alloc-status-tasks", &text);
    }

    #[test]
    fn malformed_decisions_do_not_panic() {
        let mut d = decision();
        d.scores.truncate(1);
        d.parts.truncate(3);
        d.host_adjustments.clear();
        d.pick = 7;
        d.scores[0] = f64::NAN;
        let text = decision_view(&d, &BTreeMap::new());
        assert!(
            text.contains("the pick (7) is not one of the candidates"),
            "{text}"
        );
    }
}
