//! Golden tests of what `orch job validate` shows: each folder under
//! `tests/jobspec/` holds a `job.toml` and the `expected.txt` output. Adding
//! a case needs no Rust. Run with `ORCH_BLESS=1` to rewrite the expected
//! files after a deliberate change, then review the diff.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests may"
)]

use orch_model::{job_warnings, parse_job_file};
use orch_testkit::check_snapshot;
use std::fs;
use std::path::Path;

/// What a user sees for a file: a summary line for a good job (with any
/// warnings), or the error lines.
fn render(text: &str) -> String {
    match parse_job_file("job.toml", text) {
        Ok(job) => {
            let tasks: usize = job.groups.iter().map(|g| g.tasks.len()).sum();
            let groups = job.groups.len();
            let mut out = format!(
                "ok: job {}, {groups} group{}, {tasks} task{}\n",
                job.id,
                plural(groups),
                plural(tasks)
            );
            for w in job_warnings(&job) {
                out.push_str(&format!("warning: {w}\n"));
            }
            out
        }
        Err(e) => format!("{e}\n"),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[test]
fn job_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/jobspec");
    let mut cases: Vec<_> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("job.toml").is_file())
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no cases under {}", root.display());

    let mut failed = Vec::new();
    for case in &cases {
        let text = fs::read_to_string(case.join("job.toml")).unwrap();
        // Every case is checked (or blessed) before the test fails, so
        // one run shows them all.
        if let Err(diff) = check_snapshot(case.join("expected.txt"), &render(&text)) {
            eprintln!("{diff}");
            failed.push(case.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    assert!(
        failed.is_empty(),
        "{} case(s) differ: {failed:?}; if the change is deliberate, rerun with ORCH_BLESS=1",
        failed.len()
    );
}
