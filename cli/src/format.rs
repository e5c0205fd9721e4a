//! What the client commands share in what they print: short ids, times,
//! resources, the "why could this group not be placed" block, and the
//! server's JSON re-indented without being re-encoded.
//!
//! Every function here is pure: the current time is a parameter, so the
//! snapshot tests print the same thing on every run.

use orch_model::{AllocMetric, Allocation, ClientStatus, Resources};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The first 8 characters of an id, as Nomad shows them; ids are uuids,
/// but a user-made node id may be shorter or not ASCII.
pub fn short(id: &str) -> &str {
    match id.char_indices().nth(8) {
        Some((end, _)) => &id[..end],
        None => id,
    }
}

/// How long ago `then_ms` was, `now_ms` being now: `3s ago`, `4m10s ago`,
/// `2h5m ago`, `3d4h ago`. Zero (never set) prints `-`; a time in the
/// future (clocks of two machines disagree) prints `just now`.
pub fn age(now_ms: u64, then_ms: u64) -> String {
    if then_ms == 0 {
        return "-".to_owned();
    }
    let Some(ms) = now_ms.checked_sub(then_ms) else {
        return "just now".to_owned();
    };
    let s = ms / 1000;
    let text = match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{}s", s / 60, s % 60),
        3600..86_400 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{}h", s / 86_400, s % 86_400 / 3600),
    };
    format!("{text} ago")
}

/// A UTC timestamp, `2026-11-22T10:31:05Z`; `-` for zero (never set).
pub fn datetime(ms: u64) -> String {
    if ms == 0 {
        return "-".to_owned();
    }
    orch_model::rfc3339(ms)
}

pub use orch_model::now_ms;

pub fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A score: three decimals, as the scorers' parts are fractions.
pub fn score(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.3}")
    } else {
        // The server refuses non-finite scores; print them honestly if one
        // slips through rather than as a plausible number.
        format!("{x}")
    }
}

/// The client statuses in the order a summary reads them.
pub const CLIENT_STATUSES: [ClientStatus; 5] = [
    ClientStatus::Pending,
    ClientStatus::Running,
    ClientStatus::Complete,
    ClientStatus::Failed,
    ClientStatus::Lost,
];

/// `2 running, 1 pending`-style counts of a status map, in lifecycle
/// order; statuses this client does not know go last, as the server named
/// them. `-` when empty.
pub fn status_counts(counts: &BTreeMap<String, u64>) -> String {
    let known: Vec<&str> = CLIENT_STATUSES.iter().map(|s| s.as_str()).collect();
    let mut parts: Vec<String> = known
        .iter()
        .filter_map(|s| {
            counts
                .get(*s)
                .filter(|n| **n > 0)
                .map(|n| format!("{n} {s}"))
        })
        .collect();
    parts.extend(
        counts
            .iter()
            .filter(|(k, n)| !known.contains(&k.as_str()) && **n > 0)
            .map(|(k, n)| format!("{n} {k}")),
    );
    if parts.is_empty() {
        "-".to_owned()
    } else {
        parts.join(", ")
    }
}

/// What the allocations that still hold resources hold, summed.
pub fn held(allocs: &[Allocation]) -> Resources {
    allocs
        .iter()
        .filter(|a| a.holds_resources())
        .fold(Resources::ZERO, |sum, a| sum.saturating_add(a.resources))
}

/// `used / total (NN%)`.
pub fn fraction(used: u64, total: u64, unit: &str) -> String {
    if total == 0 {
        return format!("{used} {unit} / 0 {unit}");
    }
    // Display only: the precision of f64 is plenty for a percentage.
    #[allow(
        clippy::cast_precision_loss,
        reason = "a percentage for display: counts are far below 2^52"
    )]
    let pct = used as f64 * 100.0 / total as f64;
    format!("{used} {unit} / {total} {unit} ({pct:.0}%)")
}

/// Why a group's allocations could not be placed, Nomad's way:
///
/// ```text
/// Task Group "web" (failed to place 2 allocations):
///   * 5 nodes evaluated
///   * 3 nodes excluded by filter: missing driver exec
///   * Resources exhausted on 2 nodes
///   * Dimension "memory" exhausted on 2 nodes
/// ```
///
/// Reasons are sorted by how many nodes they filtered, most first, so the
/// reason to fix first is on top.
pub fn placement_failures(failed: &BTreeMap<String, AllocMetric>, indent: &str) -> String {
    let mut out = String::new();
    for (group, m) in failed {
        let failed_count = m.coalesced_failures.saturating_add(1);
        let _ = writeln!(
            out,
            "{indent}Task Group \"{group}\" (failed to place {}):",
            plural(failed_count, "allocation", "allocations")
        );
        if m.nodes_evaluated == 0 {
            let _ = writeln!(
                out,
                "{indent}  * No nodes were eligible for evaluation (is any agent registered and ready?)"
            );
        } else {
            let _ = writeln!(
                out,
                "{indent}  * {} evaluated",
                plural(m.nodes_evaluated, "node", "nodes")
            );
        }
        let mut reasons: Vec<(&String, &u64)> = m.nodes_filtered.iter().collect();
        reasons.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        for (reason, n) in reasons {
            let _ = writeln!(
                out,
                "{indent}  * {} excluded by filter: {reason}",
                plural(*n, "node", "nodes")
            );
        }
        if m.nodes_exhausted > 0 {
            let _ = writeln!(
                out,
                "{indent}  * Resources exhausted on {}",
                plural(m.nodes_exhausted, "node", "nodes")
            );
        }
        let mut dims: Vec<(&String, &u64)> = m.dimension_exhausted.iter().collect();
        dims.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        for (dim, n) in dims {
            let _ = writeln!(
                out,
                "{indent}  * Dimension \"{dim}\" exhausted on {}",
                plural(*n, "node", "nodes")
            );
        }
        if m.coalesced_failures > 0 {
            let _ = writeln!(
                out,
                "{indent}  * {} failed for the same reasons (coalesced)",
                plural(m.coalesced_failures, "more allocation", "more allocations")
            );
        }
    }
    out
}

/// The line Nomad prints after placement failures when a blocked
/// evaluation will retry.
pub fn blocked_line(blocked_eval: &str, indent: &str) -> String {
    format!(
        "{indent}Evaluation \"{}\" waiting for additional capacity to place remainder\n",
        short(blocked_eval)
    )
}

/// The server's JSON, indented two spaces, with keys, numbers and strings
/// exactly as sent: `serde_json::Value` would sort the keys and could
/// re-spell floats, and `--json` promises the server's answer unchanged.
pub fn pretty_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut chars = text.trim().chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.extend(std::iter::repeat_n("  ", depth));
    };
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
                let close = if c == '{' { '}' } else { ']' };
                if chars.peek() == Some(&close) {
                    chars.next();
                    out.push(c);
                    out.push(close);
                } else {
                    out.push(c);
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
pub mod testing {
    //! The views' snapshot files, `cli/tests/snapshots/NAME.txt`, through
    //! orch-testkit's one snapshot helper (`ORCH_BLESS=1` rewrites them).

    pub fn assert_snapshot(name: &str, actual: &str) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/snapshots")
            .join(format!("{name}.txt"));
        orch_testkit::assert_snapshot(&path, actual);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests may")]
    use super::*;

    #[test]
    fn ages_and_dates() {
        let now = 1_795_000_000_000;
        assert_eq!(age(now, 0), "-");
        assert_eq!(age(now, now - 3_400), "3s ago");
        assert_eq!(age(now, now - 250_000), "4m10s ago");
        assert_eq!(age(now, now - 7_500_000), "2h5m ago");
        assert_eq!(age(now, now - 3 * 86_400_000 - 3_600_000), "3d1h ago");
        assert_eq!(age(now, now + 5_000), "just now");
        assert_eq!(datetime(0), "-");
        assert_eq!(datetime(1000), "1970-01-01T00:00:01Z");
        assert_eq!(datetime(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(datetime(1_795_000_000_000), "2026-11-18T11:06:40Z");
    }

    #[test]
    fn short_ids_respect_characters() {
        assert_eq!(short("0123456789abcdef"), "01234567");
        assert_eq!(short("n1"), "n1");
        assert_eq!(short("ééééééééé"), "éééééééé");
    }

    #[test]
    fn json_keeps_order_and_spelling() {
        let text = r#"{"z":1.50,"a":[],"s":"a,b:{\"c\"}","o":{"k":[1, 2]},"e":{}}"#;
        assert_eq!(
            pretty_json(text),
            "{\n  \"z\": 1.50,\n  \"a\": [],\n  \"s\": \"a,b:{\\\"c\\\"}\",\n  \"o\": {\n    \"k\": [\n      1,\n      2\n    ]\n  },\n  \"e\": {}\n}"
        );
        let v: serde_json::Value = serde_json::from_str(&pretty_json(text)).unwrap();
        assert_eq!(v, serde_json::from_str::<serde_json::Value>(text).unwrap());
    }

    #[test]
    fn status_counts_in_lifecycle_order() {
        let m: BTreeMap<String, u64> = [
            ("running".to_owned(), 2),
            ("pending".to_owned(), 1),
            ("failed".to_owned(), 0),
            ("weird".to_owned(), 4),
        ]
        .into();
        assert_eq!(status_counts(&m), "1 pending, 2 running, 4 weird");
        assert_eq!(status_counts(&BTreeMap::new()), "-");
    }
}
