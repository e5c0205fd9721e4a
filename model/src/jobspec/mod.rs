//! Job files: TOML in, a [`Job`] or every problem with file, line and
//! column out. The CLI checks a file with this before it sends the job; the
//! API takes JSON and runs [`validate_job`] alone, with the same field
//! paths but no positions.
//!
//! Three passes, each only when the one before found nothing: TOML syntax;
//! a walk of the document against the schema (unknown keys with
//! suggestions, type mismatches, missing fields); then serde into [`Job`]
//! and [`validate_job`], whose field paths are mapped back to positions.

mod schema;
mod suggest;

pub use suggest::closest;
mod walk;

use crate::{Job, Problem, one_line, validate_job};
use serde::Deserialize;
use std::fmt::Write as _;
use std::ops::Range;
use toml::de::DeTable;
use walk::{Located, SpanIndex, walk_document};

/// Every problem found in one job file. `Display` prints one line per
/// problem, `FILE:LINE:COL: field.path: message (hint)`, in file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.file, .problems))]
pub struct JobFileError {
    /// The file name as given to [`parse_job_file`].
    pub file: String,
    /// Never empty; line and column are set wherever the file has a place
    /// to point at.
    pub problems: Vec<Problem>,
}

fn render(file: &str, problems: &[Problem]) -> String {
    let mut out = String::new();
    for (i, p) in problems.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let sep = if p.line.is_some() { ":" } else { ": " };
        // Writing to a String cannot fail.
        let _ = write!(out, "{file}{sep}{p}");
    }
    out
}

/// Parse and check a job file.
///
/// The job's keys are at the top level of the file, not under a `[job]`
/// table; groups and tasks are arrays of tables:
///
/// ```toml
/// id = "web"
/// datacenters = ["dc1"]
///
/// [[group]]
/// name = "frontend"
/// count = 2
///
/// [[group.task]]
/// name = "server"
/// driver = "exec"
/// config = { command = "/usr/bin/server" }
///
/// [group.task.resources]
/// cpu = 500
/// memory = 256
/// ```
///
/// `file_name` is only used in messages. On error, every problem the
/// furthest pass found is returned, not only the first.
pub fn parse_job_file(file_name: &str, text: &str) -> Result<Job, JobFileError> {
    let fail = |problems| JobFileError {
        file: file_name.to_owned(),
        problems,
    };
    let doc = match DeTable::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            let problem =
                Problem::new("", one_line(e.message())).hint("see https://toml.io for the syntax");
            return Err(fail(place_problems(text, vec![(problem, e.span())])));
        }
    };

    let walk = walk_document(&doc);
    if !walk.problems.is_empty() {
        let located = walk
            .problems
            .into_iter()
            .map(|Located { problem, span }| (problem, span));
        return Err(fail(place_problems(text, located.collect())));
    }

    let job = match Job::deserialize(toml::de::Deserializer::from(doc)) {
        Ok(job) => job,
        // The walk should have caught anything serde refuses; if the two
        // drift apart, still say where.
        Err(e) => {
            let problem = Problem::new("", one_line(e.message()));
            return Err(fail(place_problems(text, vec![(problem, e.span())])));
        }
    };

    let problems = validate_job(&job);
    if problems.is_empty() {
        return Ok(job);
    }
    let located = problems
        .into_iter()
        .map(|p| {
            let span = span_of(&walk.spans, &p.field);
            (p, span)
        })
        .collect();
    Err(fail(place_problems(text, located)))
}

/// The span of `path`, or of its nearest ancestor in the file: a problem
/// with a field the file leaves to its default points at the table that
/// would hold it.
fn span_of(spans: &SpanIndex, path: &str) -> Option<Range<usize>> {
    let mut path = path;
    loop {
        if let Some(span) = spans.get(path) {
            return Some(span.clone());
        }
        if path.is_empty() {
            return None;
        }
        path = match path.strip_suffix(']').and_then(|p| p.rfind('[')) {
            Some(bracket) => &path[..bracket],
            None => path.rfind('.').map_or("", |dot| &path[..dot]),
        };
    }
}

/// Fill in line and column, then order the problems as they appear in the
/// file, so a user can fix them top to bottom. Any TOML input with spans
/// (job files, the server's config) places its problems with this.
pub fn place_problems(text: &str, located: Vec<(Problem, Option<Range<usize>>)>) -> Vec<Problem> {
    let mut placed: Vec<(usize, Problem)> = located
        .into_iter()
        .map(|(mut problem, span)| {
            let offset = span.map_or(usize::MAX, |s| s.start);
            if let Some((line, column)) = line_col(text, offset) {
                problem.line = Some(line);
                problem.column = Some(column);
            }
            (offset, problem)
        })
        .collect();
    placed.sort_by_key(|(offset, _)| *offset);
    placed.into_iter().map(|(_, p)| p).collect()
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> Option<(u32, u32)> {
    if offset > text.len() {
        return None;
    }
    let (mut line, mut column) = (1u32, 1u32);
    for (i, c) in text.char_indices() {
        if i >= offset {
            break;
        }
        if c == '\n' {
            line = line.saturating_add(1);
            column = 1;
        } else {
            column = column.saturating_add(1);
        }
    }
    Some((line, column))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests may")]
    use super::*;

    const MINIMAL: &str = r#"
id = "web"

[[group]]
name = "app"

[[group.task]]
name = "server"
driver = "exec"
"#;

    fn lines(text: &str) -> Vec<String> {
        parse_job_file("job.toml", text)
            .unwrap_err()
            .to_string()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn a_minimal_file_parses() {
        let job = parse_job_file("job.toml", MINIMAL).unwrap();
        assert_eq!(job.id, "web");
        assert_eq!(job.groups[0].tasks[0].driver, "exec");
    }

    #[test]
    fn line_and_column_count_characters() {
        let text = "ab\nçd\n";
        assert_eq!(line_col(text, 0), Some((1, 1)));
        assert_eq!(line_col(text, 3), Some((2, 1)));
        assert_eq!(line_col(text, 5), Some((2, 2)));
        assert_eq!(line_col(text, text.len()), Some((3, 1)));
        assert_eq!(line_col(text, usize::MAX), None);
    }

    #[test]
    fn absent_fields_point_at_their_parent() {
        let spans: SpanIndex = [
            (String::new(), 0..100),
            ("group".to_owned(), 1..6),
            ("group[0]".to_owned(), 10..20),
            ("group[0].task[1]".to_owned(), 30..40),
        ]
        .into();
        assert_eq!(
            span_of(&spans, "group[0].task[1].resources.memory"),
            Some(30..40)
        );
        assert_eq!(span_of(&spans, "group[0].task"), Some(10..20));
        assert_eq!(span_of(&spans, "group[3].name"), Some(1..6));
        assert_eq!(span_of(&spans, "priority"), Some(0..100));
    }

    #[test]
    fn unknown_keys_at_every_depth_are_all_reported() {
        let text = MINIMAL
            .replace("name = \"app\"", "name = \"app\"\ncuont = 2")
            .replace(
                "driver = \"exec\"",
                "drivr = \"exec\"\n[group.task.resources]\nmemroy = 5\n",
            );
        // `drivr` is not reported again as a missing `driver`.
        assert_eq!(
            lines(&text),
            [
                "job.toml:6:1: group[0]: unknown field `cuont` (did you mean `count`?)",
                "job.toml:10:1: group[0].task[0]: unknown field `drivr` (did you mean `driver`?)",
                "job.toml:12:1: group[0].task[0].resources: unknown field `memroy` \
                 (did you mean `memory`?)",
            ]
        );
    }

    /// Every field serde knows is in the schema, with the type serde wants:
    /// a job with every field set survives a trip through a job file.
    #[test]
    fn the_schema_matches_serde() {
        let job: Job = serde_json::from_value(serde_json::json!({
            "id": "web",
            "name": "Web",
            "type": "batch",
            "priority": 70,
            "datacenters": ["dc1", "dc2"],
            "meta": {"team": "a"},
            "constraint": [{"attribute": "${attr.kernel.name}", "operator": "=", "value": "linux"}],
            "affinity": [{"attribute": "${node.class}", "operator": "!=", "value": "x", "weight": -20}],
            "spread": [{"attribute": "${node.datacenter}", "weight": 30,
                        "target": [{"value": "dc1", "percent": 60}]}],
            "group": [{
                "name": "app",
                "count": 3,
                "constraint": [{"operator": "distinct_hosts"}],
                "affinity": [{"attribute": "${meta.rack}", "operator": "regexp", "value": "r[0-9]", "weight": 5}],
                "spread": [{"attribute": "${meta.rack}"}],
                "restart": {"attempts": 3, "interval": "10m", "delay": "20s", "mode": "delay"},
                "reschedule": {"attempts": 2, "interval": "1h", "delay": "10s", "max_delay": "5m",
                               "unlimited": false},
                "meta": {"tier": "1"},
                "task": [{
                    "name": "server",
                    "driver": "exec",
                    "config": {"command": "/bin/server", "args": ["-p", 8080], "nested": {"x": true}},
                    "resources": {"cpu": 250, "memory": 128, "disk": 512},
                    "env": {"PORT": "8080"},
                    "artifact": [{"source": "https://example.com/a.tgz", "destination": "local/a",
                                  "sha256": "ab".repeat(32), "executable": true}],
                    "constraint": [{"attribute": "${attr.cpu.arch}", "operator": "version", "value": ">= 1"}],
                    "affinity": [{"attribute": "${node.name}", "operator": "is_set"}],
                    "kill_timeout": "30s",
                    "meta": {"k": "v"}
                }]
            }]
        }))
        .unwrap();
        let mut value = serde_json::to_value(&job).unwrap();
        let top = value.as_object_mut().unwrap();
        for server_set in [
            "stop",
            "version",
            "create_index",
            "modify_index",
            "submit_time_ms",
        ] {
            top.remove(server_set);
        }
        let text = toml::to_string(&value).unwrap();
        assert_eq!(parse_job_file("job.toml", &text), Ok(job), "{text}");
    }
}
