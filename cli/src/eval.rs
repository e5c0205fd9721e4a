//! `orch eval status`: what an evaluation did and, above all, why some
//! allocations could not be placed.

use super::client::{AddressArgs, Reply, routes};
use super::format::{age, blocked_line, now_ms, placement_failures, pretty_json, short};
use super::job::{node_label, node_names, waiting_eval};
use super::table::key_values;
use anyhow::Result;
use orch_model::Allocation;
use orch_wire::EvaluationDetail;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum EvalCommand {
    /// Show an evaluation: its trigger, what it placed and why it could not
    /// place the rest.
    Status(StatusArgs),
}

impl EvalCommand {
    pub fn run(self) -> Result<ExitCode> {
        match self {
            Self::Status(args) => args.run(),
        }
    }
}

#[derive(clap::Args)]
pub struct StatusArgs {
    /// An evaluation id, or a unique prefix of at least 4 characters.
    pub id: String,
    /// Print the server's JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub addr: AddressArgs,
}

impl StatusArgs {
    pub fn run(self) -> Result<ExitCode> {
        let client = self.addr.client()?;
        let reply: Reply<EvaluationDetail> = client.get(&routes::EVALUATION, &[&self.id], &[])?;
        if self.json {
            println!("{}", pretty_json(&reply.text));
            return Ok(ExitCode::SUCCESS);
        }
        let e = &reply.body.evaluation;
        // Names and nodes of what it placed make the list readable; the ids
        // alone still answer, so failures here are tolerated.
        let allocs: Vec<Allocation> = if reply.body.placed.is_empty() {
            Vec::new()
        } else {
            client
                .get::<Vec<Allocation>>(&routes::ALLOCATIONS, &[], &[("job", &e.job_id)])
                .map(|r| r.body)
                .unwrap_or_default()
        };
        let nodes = if allocs.is_empty() {
            BTreeMap::new()
        } else {
            node_names(&client)
        };
        print!("{}", eval_detail(&reply.body, &allocs, &nodes, now_ms()));
        Ok(ExitCode::SUCCESS)
    }
}

/// `orch eval status ID`.
pub fn eval_detail(
    detail: &EvaluationDetail,
    allocs: &[Allocation],
    nodes: &BTreeMap<String, String>,
    now_ms: u64,
) -> String {
    let e = &detail.evaluation;
    let mut pairs = vec![
        ("ID", e.id.clone()),
        ("Create Time", age(now_ms, e.create_time_ms)),
        ("Status", e.status.as_str().to_owned()),
        ("Status Description", e.status_description.clone()),
        ("Triggered By", e.triggered_by.as_str().to_owned()),
        ("Job ID", e.job_id.clone()),
        ("Job Version", e.job_version.to_string()),
        ("Priority", e.priority.to_string()),
    ];
    if let Some(n) = &e.node_id {
        pairs.push(("Node ID", n.clone()));
    }
    if let Some(p) = &e.previous_eval {
        pairs.push(("Previous Eval", p.clone()));
    }
    if let Some(b) = &e.blocked_eval {
        pairs.push(("Blocked Eval", b.clone()));
    }
    if let Some(w) = e.wait_until_ms.filter(|w| *w > 0) {
        pairs.push(("Wait Until", super::format::datetime(w)));
    }
    if e.attempts > 0 {
        pairs.push(("Attempts", e.attempts.to_string()));
    }
    pairs.push((
        "Placement Failures",
        (!e.failed_tg_allocs.is_empty()).to_string(),
    ));
    let mut out = key_values(&pairs);

    if !detail.placed.is_empty() {
        out.push_str("\n==> Placed Allocations\n");
        for id in &detail.placed {
            match allocs.iter().find(|a| &a.id == id) {
                Some(a) => {
                    let _ = writeln!(
                        out,
                        "Allocation \"{}\": {} on node {}",
                        short(id),
                        a.name,
                        node_label(&a.node_id, nodes)
                    );
                }
                None => {
                    let _ = writeln!(out, "Allocation \"{}\"", short(id));
                }
            }
        }
    }

    if !e.failed_tg_allocs.is_empty() {
        out.push_str("\n==> Failed Placements\n");
        out.push_str(&placement_failures(&e.failed_tg_allocs, ""));
        let queued: u64 = e.queued_allocations.values().sum();
        if queued > 0 {
            let _ = writeln!(
                out,
                "\n{} waiting for a node",
                super::format::plural(queued, "allocation", "allocations")
            );
        }
        if let Some(b) = waiting_eval(e) {
            out.push('\n');
            out.push_str(&blocked_line(b, ""));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::testing::assert_snapshot;
    use crate::job::fixtures::*;
    use orch_model::ClientStatus;

    #[test]
    fn eval_status_with_failures() {
        let detail = eval_with_failures();
        let mut metric = failed_metric();
        metric.coalesced_failures = 2;
        let mut detail2 = detail.clone();
        detail2
            .evaluation
            .failed_tg_allocs
            .insert("api".into(), metric);
        // The list lacks the second placed allocation: it prints by id.
        let allocs = vec![alloc(
            0,
            "n1a2b3c4-0000-4000-8000-000000000001",
            ClientStatus::Running,
        )];
        assert_snapshot(
            "cli-eval-status-failures",
            &eval_detail(&detail2, &allocs, &node_name_map(), NOW),
        );
    }

    /// A blocked evaluation carries the failures it waits on: its status
    /// says why, and that it is the one waiting.
    #[test]
    fn eval_status_of_a_blocked_evaluation() {
        let failed = eval_with_failures().evaluation;
        let blocked = EvaluationDetail {
            evaluation: orch_model::Evaluation {
                id: "b10cked0-0000-4000-8000-000000000002".into(),
                status: orch_model::EvalStatus::Blocked,
                status_description: "waiting for capacity".into(),
                triggered_by: orch_model::TriggeredBy::QueuedAllocs,
                blocked_eval: None,
                previous_eval: Some(failed.id.clone()),
                ..failed
            },
            placed: Vec::new(),
        };
        assert_snapshot(
            "cli-eval-status-blocked",
            &eval_detail(&blocked, &[], &node_name_map(), NOW),
        );
    }
}
