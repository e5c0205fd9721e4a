//! What the job commands print: pure functions of model values (and "now"
//! where an age is shown), so the snapshot tests below pin every line a user
//! sees. `node`, `eval` and `alloc` borrow the allocation table and the node
//! label from here.

use crate::EXIT_ERROR;
use crate::format::{
    CLIENT_STATUSES, age, blocked_line, datetime, placement_failures, plural, score, short,
    status_counts,
};
use crate::table::{Table, key_values};
use orch_model::{Allocation, EvalStatus, Evaluation, Job, Problem};
use orch_wire::{EvaluationDetail, JobPlanResponse, JobSummary};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Problems in a job file as a compiler shows them: the message, where,
/// the line itself with a caret under the column, and the hint.
pub fn file_problems(file: &str, text: &str, problems: &[Problem]) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::new();
    for p in problems {
        let field = if p.field.is_empty() {
            String::new()
        } else {
            format!("{}: ", p.field)
        };
        let _ = writeln!(out, "error: {field}{}", p.message);
        match (p.line, p.column) {
            (Some(line), Some(column)) => {
                let number = line.to_string();
                let gutter = " ".repeat(number.len());
                let _ = writeln!(out, "{gutter}--> {file}:{line}:{column}");
                let source = usize::try_from(line)
                    .ok()
                    .and_then(|l| l.checked_sub(1))
                    .and_then(|l| lines.get(l));
                if let Some(source) = source {
                    // Tabs stay tabs under the caret so it lines up in any
                    // terminal's tab width.
                    let lead: String = source
                        .chars()
                        .take(usize::try_from(column).unwrap_or(1).saturating_sub(1))
                        .map(|c| if c == '\t' { '\t' } else { ' ' })
                        .collect();
                    let _ = writeln!(out, "{gutter} |");
                    let _ = writeln!(out, "{number} | {source}");
                    let _ = writeln!(out, "{gutter} | {lead}^");
                }
                if let Some(hint) = &p.hint {
                    let _ = writeln!(out, "{gutter} = help: {hint}");
                }
            }
            _ => {
                let _ = writeln!(out, "  --> {file}");
                if let Some(hint) = &p.hint {
                    let _ = writeln!(out, "   = help: {hint}");
                }
            }
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "error: {} in {file}; nothing was sent to the server",
        plural(problems.len() as u64, "problem", "problems")
    );
    out
}

/// 0 when the evaluation placed everything, 2 when it failed or left
/// allocations unplaced: scripts can tell "submitted" from "running".
pub fn eval_exit(detail: &EvaluationDetail) -> u8 {
    let e = &detail.evaluation;
    if e.status == EvalStatus::Failed || !e.failed_tg_allocs.is_empty() {
        EXIT_ERROR
    } else {
        0
    }
}

/// What the monitor prints once the evaluation is done: its trigger, the
/// allocations it placed, how it ended and, when some allocations could not
/// be placed, why.
pub fn monitor_report(
    detail: &EvaluationDetail,
    allocs: &[Allocation],
    nodes: &BTreeMap<String, String>,
) -> String {
    let e = &detail.evaluation;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "    Evaluation triggered by job \"{}\" ({})",
        e.job_id,
        e.triggered_by.as_str()
    );
    let mut placed: Vec<&Allocation> = allocs
        .iter()
        .filter(|a| a.eval_id == e.id || detail.placed.contains(&a.id))
        .collect();
    placed.sort_by(|a, b| (&a.group, a.index, &a.id).cmp(&(&b.group, b.index, &b.id)));
    for a in &placed {
        let _ = writeln!(
            out,
            "    Allocation \"{}\" created: {} on node {}",
            short(&a.id),
            a.name,
            node_label(&a.node_id, nodes)
        );
    }
    // Placements the allocation list did not have (it may lag the eval).
    for id in &detail.placed {
        if !placed.iter().any(|a| &a.id == id) {
            let _ = writeln!(out, "    Allocation \"{}\" created", short(id));
        }
    }
    let _ = writeln!(
        out,
        "    Evaluation status changed: \"pending\" -> \"{}\"",
        e.status.as_str()
    );
    let id = short(&e.id);
    let status = e.status.as_str();
    if e.status == EvalStatus::Failed {
        let why = if e.status_description.is_empty() {
            "no reason given".to_owned()
        } else {
            e.status_description.clone()
        };
        let _ = writeln!(
            out,
            "==> Evaluation \"{id}\" finished with status \"{status}\": {why}"
        );
    } else if e.failed_tg_allocs.is_empty() {
        let _ = writeln!(
            out,
            "==> Evaluation \"{id}\" finished with status \"{status}\""
        );
    } else {
        let _ = writeln!(
            out,
            "==> Evaluation \"{id}\" finished with status \"{status}\" but failed to place all allocations:"
        );
        out.push_str(&placement_failures(&e.failed_tg_allocs, "    "));
        if let Some(blocked) = &e.blocked_eval {
            out.push_str(&blocked_line(blocked, "    "));
        }
    }
    out
}

/// `"box-1" (5678abcd)`, or the id prefix alone when the name is unknown.
pub fn node_label(node_id: &str, nodes: &BTreeMap<String, String>) -> String {
    match nodes.get(node_id) {
        Some(name) => format!("\"{name}\" ({})", short(node_id)),
        None => format!("\"{}\"", short(node_id)),
    }
}

/// `orch job status`: one line per job.
pub fn job_list(jobs: &[JobSummary]) -> String {
    if jobs.is_empty() {
        return "No jobs registered\n".to_owned();
    }
    let mut t =
        Table::new(["ID", "TYPE", "PRIORITY", "STATUS", "VERSION", "ALLOCS"]).right(&[2, 4]);
    for j in jobs {
        t.row([
            j.id.clone(),
            j.job_type.clone(),
            j.priority.to_string(),
            if j.stop {
                format!("{} (stopped)", j.status)
            } else {
                j.status.clone()
            },
            j.version.to_string(),
            status_counts(&j.allocs),
        ]);
    }
    t.render()
}

/// The newest evaluation that placed (or failed to place) the job's
/// allocations. A blocked evaluation counts once it carries failures: the
/// ones it was left with, or its own after it looked again and is still
/// waiting (an older server left it none; then the one that failed says
/// why). A canceled one decided nothing.
pub(super) fn latest_decision(evals: &[Evaluation]) -> Option<&Evaluation> {
    evals
        .iter()
        .filter(|e| match e.status {
            EvalStatus::Canceled => false,
            EvalStatus::Blocked => !e.failed_tg_allocs.is_empty(),
            _ => true,
        })
        .max_by_key(|e| e.create_index)
}

/// `orch job status ID`: the header, a summary per group, the latest
/// evaluation's placement failures if any, and the allocations.
pub fn job_detail(
    job: &Job,
    summary: Option<&JobSummary>,
    allocs: &[Allocation],
    latest_eval: Option<&Evaluation>,
    now_ms: u64,
) -> String {
    let status = match summary {
        Some(s) => s.status.clone(),
        None => "unknown".to_owned(),
    };
    let mut out = key_values(&[
        ("ID", job.id.clone()),
        ("Name", job.display_name().to_owned()),
        ("Submit Date", datetime(job.submit_time_ms)),
        ("Type", job.job_type.as_str().to_owned()),
        ("Priority", job.priority.to_string()),
        (
            "Datacenters",
            if job.datacenters.is_empty() {
                "*".to_owned()
            } else {
                job.datacenters.join(",")
            },
        ),
        (
            "Status",
            if job.stop {
                format!("{status} (stopped)")
            } else {
                status
            },
        ),
        ("Version", job.version.to_string()),
    ]);

    // Groups of the job first, in its order; then any that only older
    // versions had but that still have allocations.
    let mut groups: Vec<&str> = job.groups.iter().map(|g| g.name.as_str()).collect();
    for a in allocs {
        if !groups.contains(&a.group.as_str()) {
            groups.push(&a.group);
        }
    }
    let queued = latest_eval.map(|e| &e.queued_allocations);
    let mut t = Table::new(
        ["GROUP", "QUEUED"]
            .into_iter()
            .chain(CLIENT_STATUSES.iter().map(|s| s.as_str()))
            .map(str::to_uppercase),
    )
    .right(&[1, 2, 3, 4, 5, 6]);
    for g in &groups {
        let mut row = vec![
            (*g).to_owned(),
            queued
                .and_then(|q| q.get(*g))
                .copied()
                .unwrap_or(0)
                .to_string(),
        ];
        for s in CLIENT_STATUSES {
            let n = allocs
                .iter()
                .filter(|a| a.group == *g && a.client_status == s)
                .count();
            row.push(n.to_string());
        }
        t.row(row);
    }
    out.push_str("\nSummary\n");
    out.push_str(&t.render());

    if let Some(e) = latest_eval.filter(|e| !e.failed_tg_allocs.is_empty()) {
        out.push_str("\nPlacement Failure\n");
        out.push_str(&placement_failures(&e.failed_tg_allocs, ""));
        if let Some(b) = waiting_eval(e) {
            out.push_str(&blocked_line(b, ""));
        }
    }

    out.push_str("\nAllocations\n");
    if allocs.is_empty() {
        out.push_str("No allocations placed\n");
    } else {
        out.push_str(&alloc_table(allocs, now_ms));
    }
    out
}

/// The evaluation waiting for capacity on `e`'s behalf: the blocked one it
/// left, or itself when it is that one.
pub fn waiting_eval(e: &Evaluation) -> Option<&str> {
    e.blocked_eval
        .as_deref()
        .or((e.status == EvalStatus::Blocked).then_some(e.id.as_str()))
}

/// The allocations table `job status` and `node status` share, newest
/// first as Nomad lists them.
pub fn alloc_table(allocs: &[Allocation], now_ms: u64) -> String {
    let mut sorted: Vec<&Allocation> = allocs.iter().collect();
    sorted.sort_by(|a, b| {
        b.create_index
            .cmp(&a.create_index)
            .then_with(|| a.name.cmp(&b.name))
    });
    let mut t = Table::new([
        "ID", "NODE", "GROUP", "VERSION", "DESIRED", "STATUS", "CREATED",
    ])
    .right(&[3]);
    for a in sorted {
        t.row([
            short(&a.id).to_owned(),
            short(&a.node_id).to_owned(),
            a.group.clone(),
            a.job_version.to_string(),
            desired_str(a.desired_status).to_owned(),
            a.client_status.as_str().to_owned(),
            age(now_ms, a.create_time_ms),
        ]);
    }
    t.render()
}

pub fn desired_str(d: orch_model::DesiredStatus) -> &'static str {
    match d {
        orch_model::DesiredStatus::Run => "run",
        orch_model::DesiredStatus::Stop => "stop",
        orch_model::DesiredStatus::Evict => "evict",
    }
}

/// `orch job history ID`: versions newest first, each with what changed
/// from the version before it.
pub fn history(versions: &[Job]) -> String {
    if versions.is_empty() {
        return "No versions\n".to_owned();
    }
    let mut sorted: Vec<&Job> = versions.iter().collect();
    sorted.sort_by_key(|j| std::cmp::Reverse(j.version));
    let mut t =
        Table::new(["VERSION", "SUBMITTED", "MODIFY INDEX", "STOP", "CHANGES"]).right(&[0, 2]);
    for (i, j) in sorted.iter().enumerate() {
        let changes = match sorted.get(i + 1) {
            Some(older) => change_summary(older, j),
            None => "(first version)".to_owned(),
        };
        t.row([
            j.version.to_string(),
            datetime(j.submit_time_ms),
            j.modify_index.to_string(),
            j.stop.to_string(),
            changes,
        ]);
    }
    t.render()
}

/// A one-cell summary of what changed in the user's spec between two
/// versions: one change in full (`group[0].count: 2 => 3`), more as a list
/// of fields.
pub fn change_summary(old: &Job, new: &Job) -> String {
    let (a, b) = (spec_fields(old), spec_fields(new));
    let mut changed: Vec<(String, Option<&String>, Option<&String>)> = Vec::new();
    for (k, v) in &a {
        if b.get(k) != Some(v) {
            changed.push((k.clone(), Some(v), b.get(k)));
        }
    }
    for (k, v) in &b {
        if !a.contains_key(k) {
            changed.push((k.clone(), None, Some(v)));
        }
    }
    changed.sort_by(|x, y| x.0.cmp(&y.0));
    match changed.as_slice() {
        [] => "-".to_owned(),
        [(field, old, new)] => format!(
            "{field}: {} => {}",
            old.map_or("(unset)", String::as_str),
            new.map_or("(unset)", String::as_str)
        ),
        many => {
            let names: Vec<&str> = many.iter().take(3).map(|c| c.0.as_str()).collect();
            let rest = many.len().saturating_sub(3);
            if rest > 0 {
                format!("{} (+{rest} more)", names.join(", "))
            } else {
                names.join(", ")
            }
        }
    }
}

/// The job as `path → value`, leaving out what the server sets.
fn spec_fields(job: &Job) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Ok(serde_json::Value::Object(map)) = serde_json::to_value(job) {
        for (k, v) in map {
            if matches!(
                k.as_str(),
                "stop" | "version" | "create_index" | "modify_index" | "submit_time_ms"
            ) {
                continue;
            }
            flatten(&k, &v, &mut out);
        }
    }
    out
}

fn flatten(path: &str, v: &serde_json::Value, out: &mut BTreeMap<String, String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                flatten(&format!("{path}.{k}"), v, out);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                flatten(&format!("{path}[{i}]"), v, out);
            }
        }
        scalar => {
            out.insert(path.to_owned(), scalar.to_string());
        }
    }
}

/// Whether the plan would change anything: the job's spec or any
/// allocation.
pub fn plan_changes(plan: &JobPlanResponse) -> bool {
    plan.diff_type != "none"
        || plan
            .groups
            .iter()
            .any(|g| g.place + g.stop + g.replace + g.in_place > 0)
}

/// `orch job plan FILE`: the diff, what each group would do, where new
/// allocations would go, what could not be placed, and the check-index hint.
pub fn plan_view(job: &Job, plan: &JobPlanResponse, file: &str) -> String {
    let mut out = String::new();
    let (mark, note) = match plan.diff_type.as_str() {
        "create" => ("+", ""),
        "edit" => ("~", ""),
        "none" => (" ", " (no changes)"),
        _ => ("?", ""),
    };
    let _ = writeln!(out, "{mark} Job: \"{}\"{note}", job.id);
    // A created job's every field is "added": listing them repeats the file.
    if plan.diff_type != "create" {
        for d in &plan.diff {
            let line = match d.kind.as_str() {
                "added" => format!("+ {}: {}", d.field, quoted(d.new.as_deref())),
                "deleted" => format!("- {}: {}", d.field, quoted(d.old.as_deref())),
                _ => format!(
                    "~ {}: {} => {}",
                    d.field,
                    quoted(d.old.as_deref()),
                    quoted(d.new.as_deref())
                ),
            };
            let _ = writeln!(out, "  {line}");
        }
    }
    for g in &plan.groups {
        let parts: Vec<String> = [
            (g.place, "place"),
            (g.replace, "replace"),
            (g.in_place, "in-place"),
            (g.stop, "stop"),
            (g.ignore, "ignore"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        let what = if parts.is_empty() {
            "no change".to_owned()
        } else {
            parts.join(", ")
        };
        let mark = if g.place + g.replace + g.in_place + g.stop > 0 {
            "~"
        } else {
            " "
        };
        let _ = writeln!(out, "{mark} Task Group: \"{}\" ({what})", g.name);
    }

    if !plan.placements.is_empty() {
        let mut t = Table::new(["NAME", "NODE", "NODE ID", "SCORE"]).right(&[3]);
        for p in &plan.placements {
            t.row([
                p.name.clone(),
                p.node_name.clone(),
                short(&p.node_id).to_owned(),
                score(p.score),
            ]);
        }
        out.push_str("\nPlacements\n");
        out.push_str(&t.render());
    }

    out.push_str("\nScheduler dry-run:\n");
    if plan.failed_tg_allocs.is_empty() {
        out.push_str("- All tasks successfully allocated.\n");
    } else {
        out.push_str("- WARNING: Failed to place all allocations.\n");
        out.push_str(&placement_failures(&plan.failed_tg_allocs, "  "));
    }

    let _ = write!(
        out,
        "\nJob Modify Index: {index}\n\
         To submit the job with version verification run:\n\n\
         orch job run --check-index {index} {file}\n\n\
         When running the job with the check-index flag, the job will only be run if the\n\
         job modify index given matches the server-side version. If the index has\n\
         changed, another user has modified the job and the plan's results are\n\
         potentially invalid.\n",
        index = plan.job_modify_index
    );
    out
}

fn quoted(v: Option<&str>) -> String {
    match v {
        Some(v) => format!("\"{v}\""),
        None => "(unset)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests may")]
    use super::*;
    use crate::format::testing::assert_snapshot;
    use crate::job::fixtures::*;
    use orch_model::{ClientStatus, parse_job_file};
    use orch_wire::{FieldDiff, GroupPlan, PlannedPlacement};

    const N1: &str = "n1a2b3c4-0000-4000-8000-000000000001";
    const N2: &str = "n2a2b3c4-0000-4000-8000-000000000002";

    #[test]
    fn job_status_table() {
        let jobs = vec![
            JobSummary {
                id: "batch-report".into(),
                name: "batch-report".into(),
                job_type: "batch".into(),
                priority: 30,
                status: "dead".into(),
                version: 0,
                stop: false,
                allocs: [("complete".to_owned(), 4)].into(),
                modify_index: 5,
            },
            JobSummary {
                id: "web".into(),
                name: "web".into(),
                job_type: "service".into(),
                priority: 50,
                status: "running".into(),
                version: 12,
                stop: false,
                allocs: [("running".to_owned(), 2), ("pending".to_owned(), 1)].into(),
                modify_index: 40,
            },
            JobSummary {
                id: "old".into(),
                name: "old".into(),
                job_type: "system".into(),
                priority: 100,
                status: "dead".into(),
                version: 3,
                stop: true,
                allocs: BTreeMap::new(),
                modify_index: 41,
            },
        ];
        assert_snapshot("cli-job-status-list", &job_list(&jobs));
        assert_eq!(job_list(&[]), "No jobs registered\n");
    }

    #[test]
    fn job_status_reports_the_failure_not_the_blocked_eval_after_it() {
        let failed = eval_with_failures().evaluation;
        let blocked = Evaluation {
            id: "b10cked0-0000-4000-8000-000000000002".into(),
            status: EvalStatus::Blocked,
            triggered_by: orch_model::TriggeredBy::QueuedAllocs,
            failed_tg_allocs: BTreeMap::new(),
            queued_allocations: BTreeMap::new(),
            blocked_eval: None,
            previous_eval: Some(failed.id.clone()),
            create_index: failed.create_index + 1,
            ..failed.clone()
        };
        // The server lists the newest first.
        let evals = vec![blocked.clone(), failed.clone()];
        assert_eq!(latest_decision(&evals), Some(&failed));
        assert_eq!(latest_decision(&evals[..1]), None);

        // Once it carries failures (it was left them, or it looked again and
        // still waits), the blocked one says why, and that it waits.
        let mut metric = failed_metric();
        metric.nodes_evaluated = 6;
        let looked = Evaluation {
            failed_tg_allocs: [("frontend".to_owned(), metric)].into(),
            queued_allocations: [("frontend".to_owned(), 1)].into(),
            ..blocked
        };
        let evals = vec![looked.clone(), failed];
        assert_eq!(latest_decision(&evals), Some(&looked));
        let text = job_detail(&job(1), None, &[], latest_decision(&evals), NOW);
        assert!(text.contains("  * 6 nodes evaluated\n"), "{text}");
        assert!(
            text.contains("Evaluation \"b10cked0\" waiting for additional capacity"),
            "{text}"
        );
        assert_eq!(
            row(&text, "frontend"),
            ["frontend", "1", "0", "0", "0", "0", "0"]
        );
    }

    /// The cells of the table row whose first cell is `first`.
    fn row<'a>(text: &'a str, first: &str) -> Vec<&'a str> {
        text.lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|cells| cells.first() == Some(&first))
            .unwrap_or_default()
    }

    #[test]
    fn job_status_detail() {
        let job = job(1);
        let summary = JobSummary {
            id: "web".into(),
            name: "web".into(),
            job_type: "service".into(),
            priority: 50,
            status: "running".into(),
            version: 1,
            stop: false,
            allocs: BTreeMap::new(),
            modify_index: 17,
        };
        let mut old = alloc(0, N2, ClientStatus::Complete);
        old.id = "01dc0ffe-0000-4000-8000-000000000009".into();
        old.group = "legacy".into();
        old.job_version = 0;
        old.desired_status = orch_model::DesiredStatus::Stop;
        old.create_index = 3;
        old.create_time_ms = NOW - 2 * 3_600_000;
        let allocs = vec![
            alloc(0, N1, ClientStatus::Running),
            alloc(1, N2, ClientStatus::Pending),
            old,
        ];
        let eval = eval_with_failures().evaluation;
        assert_snapshot(
            "cli-job-status-detail",
            &job_detail(&job, Some(&summary), &allocs, Some(&eval), NOW),
        );
    }

    #[test]
    fn monitor_after_run() {
        let detail = eval_with_failures();
        let allocs = vec![
            alloc(1, N2, ClientStatus::Pending),
            alloc(0, N1, ClientStatus::Pending),
        ];
        let text = monitor_report(&detail, &allocs, &node_name_map());
        assert_snapshot("cli-job-run-monitor", &text);
        assert_eq!(eval_exit(&detail), EXIT_ERROR);

        let mut ok = detail.clone();
        ok.evaluation.failed_tg_allocs.clear();
        ok.evaluation.blocked_eval = None;
        assert_eq!(eval_exit(&ok), 0);
        assert!(
            monitor_report(&ok, &allocs, &BTreeMap::new())
                .ends_with("==> Evaluation \"e1e1e1e1\" finished with status \"complete\"\n")
        );
        let mut failed = ok;
        failed.evaluation.status = EvalStatus::Failed;
        failed.evaluation.status_description = "maximum attempts reached (5)".into();
        assert_eq!(eval_exit(&failed), EXIT_ERROR);
        assert!(
            monitor_report(&failed, &[], &BTreeMap::new())
                .contains("finished with status \"failed\": maximum attempts reached (5)")
        );
    }

    #[test]
    fn plan_diff() {
        let job = job(2);
        let plan = JobPlanResponse {
            diff_type: "edit".into(),
            diff: vec![
                FieldDiff {
                    kind: "edited".into(),
                    field: "group[0].count".into(),
                    old: Some("2".into()),
                    new: Some("3".into()),
                },
                FieldDiff {
                    kind: "added".into(),
                    field: "group[0].task[0].env.MODE".into(),
                    old: None,
                    new: Some("fast".into()),
                },
                FieldDiff {
                    kind: "deleted".into(),
                    field: "meta.owner".into(),
                    old: Some("ops".into()),
                    new: None,
                },
            ],
            groups: vec![GroupPlan {
                name: "frontend".into(),
                place: 1,
                in_place: 2,
                ..GroupPlan::default()
            }],
            placements: vec![PlannedPlacement {
                name: "web.frontend[2]".into(),
                node_id: N2.into(),
                node_name: "box-2".into(),
                score: 0.8125,
            }],
            failed_tg_allocs: BTreeMap::new(),
            job_modify_index: 17,
            why_not: None,
        };
        assert!(plan_changes(&plan));
        assert_snapshot("cli-job-plan", &plan_view(&job, &plan, "web.toml"));

        let unchanged = JobPlanResponse {
            diff_type: "none".into(),
            diff: Vec::new(),
            groups: vec![GroupPlan {
                name: "frontend".into(),
                ignore: 3,
                ..GroupPlan::default()
            }],
            placements: Vec::new(),
            failed_tg_allocs: [("frontend".to_owned(), failed_metric())].into(),
            job_modify_index: 17,
            why_not: None,
        };
        assert!(!plan_changes(&unchanged));
        assert_snapshot(
            "cli-job-plan-unchanged",
            &plan_view(&job, &unchanged, "web.toml"),
        );
    }

    #[test]
    fn history_summarises_changes() {
        let v0 = job(0);
        let mut v1 = job(1);
        v1.groups[0].count = 4;
        let mut v2 = job(2);
        v2.groups[0].count = 4;
        v2.priority = 70;
        v2.meta.insert("owner".into(), "ops".into());
        v2.groups[0].tasks[0].resources.memory = 512;
        v2.groups[0].tasks[0]
            .env
            .insert("MODE".into(), "fast".into());
        let mut v3 = v2.clone();
        v3.version = 3;
        v3.modify_index = 31;
        v3.submit_time_ms += 60_000;
        v3.stop = true;
        assert_snapshot("cli-job-history", &history(&[v3, v2, v1, v0]));
    }

    #[test]
    fn job_file_problems_point_at_the_line() {
        let text = "id = \"web\"\n\n[[group]]\nname = \"frontend\"\ncuont = 3\n\n[[group.task]]\nname = \"server\"\ndriver = \"exec\"\n";
        let err = parse_job_file("web.toml", text).unwrap_err();
        assert_snapshot(
            "cli-job-run-file-problems",
            &file_problems("web.toml", text, &err.problems),
        );
    }
}
