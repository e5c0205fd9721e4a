//! `--why-not NODE` of `orch job plan` and `orch alloc status`: what
//! became of one node, as the server's verdicts say it, in a paragraph a
//! person reads top to bottom. A candidate that lost gets its score table
//! beside the winner's, part by part.

use super::format::{plural, score, short};
use super::table::Table;
use orch_model::Resources;
use orch_wire::{AllocWhyNot, CandidateScore, NodeVerdict, PlanWhyNot, WhyNotBasis};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// `orch job plan FILE --why-not NODE`: per group, what became of the node
/// in each placement; placements in a row with the same outcome share a
/// line.
pub fn plan_why_not(w: &PlanWhyNot) -> String {
    let mut out = format!("\nWhy Not Node {}\n", label(&w.node_id, Some(&w.node_name)));
    for g in &w.groups {
        let _ = writeln!(out, "Task Group \"{}\":", g.group);
        // (what, the verdict's line, its table); a run of placements with
        // one line shares it.
        let mut lines: Vec<(Vec<String>, String, Option<String>)> = Vec::new();
        let mut merging = false;
        for p in &g.placements {
            let what = match (&p.allocation, p.unplaced) {
                (Some(name), _) => name.clone(),
                (None, 0) => "nothing to place".to_owned(),
                (None, n) => format!("{} not placed", plural(n, "allocation", "allocations")),
            };
            let (line, table) = verdict(&p.verdict, &w.node_id);
            let placed = p.allocation.is_some() && table.is_none();
            match lines.last_mut() {
                Some((whats, last, None)) if merging && placed && *last == line => {
                    whats.push(what);
                }
                _ => lines.push((vec![what], line, table)),
            }
            merging = placed;
        }
        for (whats, line, table) in lines {
            let what = match &whats[..] {
                [one] => one.clone(),
                [first, rest @ ..] => format!("{first} and {} more", rest.len()),
                [] => String::new(),
            };
            let _ = writeln!(out, "  {what}: {line}");
            if let Some(table) = table {
                out.push_str(&indent(&table, "    "));
            }
        }
    }
    out
}

/// `orch alloc status ID --why-not NODE`: where the allocation is, and
/// why not on the node: its scores beside the winner's when it was a
/// candidate; otherwise the node as it is now, said to be so.
pub fn alloc_why_not(w: &AllocWhyNot, nodes: &BTreeMap<String, String>) -> String {
    let node = label(&w.node_id, Some(&w.node_name));
    let mut out = format!("\nWhy Not Node {node}\n");
    let _ = writeln!(
        out,
        "Allocation \"{}\" ({}) is on node {}.",
        short(&w.alloc_id),
        w.alloc_name,
        label(&w.alloc_node_id, nodes.get(&w.alloc_node_id))
    );
    match w.basis {
        WhyNotBasis::Decision => {
            let (line, table) = verdict(&w.verdict, &w.node_id);
            let _ = writeln!(out, "It was a candidate of the placement, {line}.");
            if let Some(table) = table {
                out.push('\n');
                out.push_str(&table);
            }
        }
        WhyNotBasis::Now => {
            match &w.funnel {
                Some(f) => {
                    let _ = writeln!(
                        out,
                        "It was not a candidate: the placement scored {} of {} ({} filtered, {} without room, {} not reached).",
                        f.candidates,
                        plural(f.nodes_evaluated, "node", "nodes"),
                        f.nodes_filtered,
                        f.nodes_exhausted,
                        f.nodes_skipped
                    );
                    out.push_str("The decision record keeps no reason per node; ");
                }
                None => out.push_str("No decision record is kept for the allocation; "),
            }
            let now = match &w.verdict {
                NodeVerdict::Fits => {
                    let then = match &w.funnel {
                        Some(f) if f.nodes_skipped == 0 => {
                            "full then, or not as it is now (the placement examined every node)"
                                .to_owned()
                        }
                        Some(f) => format!(
                            "not sampled ({} not reached), or full then",
                            plural(f.nodes_skipped, "node was", "nodes were")
                        ),
                        None => "not sampled, or full then".to_owned(),
                    };
                    format!(
                        "as the node is now, it passes every check and has room: it was probably {then}"
                    )
                }
                other => format!("as the node is now, it is {}", verdict(other, &w.node_id).0),
            };
            let _ = writeln!(out, "{now}.");
        }
    }
    out
}

/// A verdict as one line, and the score table that goes under it when the
/// node lost to another.
fn verdict(v: &NodeVerdict, node_id: &str) -> (String, Option<String>) {
    match v {
        NodeVerdict::NotEvaluated { reason } => (
            format!(
                "not evaluated: {reason} (a placement evaluates only nodes that are ready, eligible and not draining)"
            ),
            None,
        ),
        NodeVerdict::Filtered { reason } => (format!("filtered by {reason}"), None),
        NodeVerdict::Exhausted {
            dimension,
            ask,
            free,
        } => (
            format!(
                "without room: {dimension} exhausted ({} asked, {} free)",
                amount(dimension, *ask),
                amount(dimension, *free)
            ),
            None,
        ),
        NodeVerdict::NotSampled { sampled, feasible } => (
            format!(
                "not sampled: {} of {feasible} feasible were scored, and the walk did not reach it",
                plural(*sampled, "node", "nodes")
            ),
            None,
        ),
        NodeVerdict::Outscored {
            part_names,
            node,
            winner,
        } => (
            format!(
                "outscored by {}: {} against {} ({})",
                label(&winner.node_id, Some(&winner.node_name)),
                score(node.score),
                score(winner.score),
                signed(node.score - winner.score)
            ),
            Some(beside(part_names, node, winner)),
        ),
        NodeVerdict::Tied {
            part_names,
            node,
            winner,
        } => (
            format!(
                "tied with {} at {}, which the walk reached first (a tie goes to the first candidate)",
                label(&winner.node_id, Some(&winner.node_name)),
                score(winner.score)
            ),
            Some(beside(part_names, node, winner)),
        ),
        NodeVerdict::Picked { node, .. } => {
            let who = if node.node_id == node_id {
                String::new()
            } else {
                format!(" ({})", label(&node.node_id, Some(&node.node_name)))
            };
            (
                format!("picked{who} with score {}", score(node.score)),
                None,
            )
        }
        NodeVerdict::Fits => (
            "passes every check and has room; the plan places nothing of the group".to_owned(),
            None,
        ),
    }
}

/// The node's score, its make-up and its parts beside the winner's, and
/// by how much it is behind on each.
fn beside(part_names: &[String], node: &CandidateScore, winner: &CandidateScore) -> String {
    let name = |c: &CandidateScore| {
        if c.node_name.is_empty() {
            short(&c.node_id).to_owned()
        } else {
            c.node_name.clone()
        }
    };
    let mut t = Table::new([
        "PART".to_owned(),
        name(node),
        name(winner),
        "DIFF".to_owned(),
    ])
    .right(&[1, 2, 3]);
    let row = |part: &str, a: f64, b: f64, show: fn(f64) -> String| {
        [part.to_owned(), show(a), show(b), signed(a - b)]
    };
    t.row(row("score", node.score, winner.score, score));
    // The score is the scorer's alone unless the job has preferences.
    if node.host_adjustment != 0.0 || winner.host_adjustment != 0.0 {
        t.row(row("scorer", node.scorer_score, winner.scorer_score, score));
        t.row(row(
            "host adj",
            node.host_adjustment,
            winner.host_adjustment,
            signed,
        ));
    }
    for (i, part) in part_names.iter().enumerate() {
        match (node.parts.get(i), winner.parts.get(i)) {
            (Some(a), Some(b)) => t.row(row(part, *a, *b, score)),
            _ => t.row([part.clone(), "-".into(), "-".into(), "-".into()]),
        }
    }
    t.render()
}

/// `"box-1" (n1a2b3c4)`, or the short id alone without a name.
fn label(id: &str, name: Option<&String>) -> String {
    match name.filter(|n| !n.is_empty()) {
        Some(name) => format!("\"{name}\" ({})", short(id)),
        None => format!("\"{}\"", short(id)),
    }
}

/// One dimension of `r`, with its unit.
fn amount(dimension: &str, r: Resources) -> String {
    match dimension {
        "cpu" => format!("{} MHz", r.cpu),
        "memory" => format!("{} MiB", r.memory),
        "disk" => format!("{} MiB", r.disk),
        other => format!("{other}: {r}"),
    }
}

fn signed(x: f64) -> String {
    if x > 0.0 {
        format!("+{}", score(x))
    } else {
        score(x)
    }
}

fn indent(text: &str, by: &str) -> String {
    text.lines().map(|l| format!("{by}{l}\n")).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests may")]
    use super::*;
    use crate::format::testing::assert_snapshot;
    use orch_wire::{GroupWhyNot, PlacementFunnel, PlacementWhyNot};

    const N1: &str = "n1a2b3c4-0000-4000-8000-000000000001";
    const N2: &str = "n2a2b3c4-0000-4000-8000-000000000002";
    const N3: &str = "n3a2b3c4-0000-4000-8000-000000000003";

    fn scores(id: &str, name: &str, scorer: f64, host: f64, parts: &[f64]) -> CandidateScore {
        CandidateScore {
            node_id: id.into(),
            node_name: name.into(),
            score: scorer + host,
            scorer_score: scorer,
            host_adjustment: host,
            parts: parts.to_vec(),
        }
    }

    fn parts() -> Vec<String> {
        vec!["cpu".into(), "memory".into()]
    }

    fn outscored() -> NodeVerdict {
        NodeVerdict::Outscored {
            part_names: parts(),
            node: scores(N2, "box-2", 0.75, -0.25, &[0.7, 0.8]),
            winner: scores(N1, "box-1", 0.75, 0.125, &[0.7, 0.8]),
        }
    }

    fn placed(name: &str, verdict: NodeVerdict) -> PlacementWhyNot {
        PlacementWhyNot {
            allocation: Some(name.into()),
            unplaced: 0,
            verdict,
        }
    }

    #[test]
    fn plan_why_not_per_group_and_placement() {
        let filtered = |reason: &str| NodeVerdict::Filtered {
            reason: reason.into(),
        };
        let why = PlanWhyNot {
            node_id: N2.into(),
            node_name: "box-2".into(),
            groups: vec![
                GroupWhyNot {
                    group: "frontend".into(),
                    placements: vec![
                        placed("web.frontend[0]", outscored()),
                        placed(
                            "web.frontend[1]",
                            NodeVerdict::Picked {
                                part_names: parts(),
                                node: scores(N2, "box-2", 0.9, 0.0, &[0.9, 0.9]),
                            },
                        ),
                        placed(
                            "web.frontend[2]",
                            NodeVerdict::Exhausted {
                                dimension: "memory".into(),
                                ask: Resources::new(500, 256, 0),
                                free: Resources::new(3000, 100, 20_000),
                            },
                        ),
                        placed(
                            "web.frontend[3]",
                            NodeVerdict::NotSampled {
                                sampled: 2,
                                feasible: 5,
                            },
                        ),
                        placed(
                            "web.frontend[4]",
                            NodeVerdict::Tied {
                                part_names: parts(),
                                node: scores(N2, "box-2", 0.75, 0.0, &[0.6, 0.9]),
                                winner: scores(N1, "box-1", 0.75, 0.0, &[0.7, 0.8]),
                            },
                        ),
                    ],
                },
                GroupWhyNot {
                    group: "cache".into(),
                    placements: vec![
                        placed("web.cache[0]", filtered("distinct_hosts")),
                        placed("web.cache[1]", filtered("distinct_hosts")),
                        placed("web.cache[2]", filtered("distinct_hosts")),
                        PlacementWhyNot {
                            allocation: None,
                            unplaced: 2,
                            verdict: filtered("distinct_hosts"),
                        },
                    ],
                },
                GroupWhyNot {
                    group: "windows".into(),
                    placements: vec![PlacementWhyNot {
                        allocation: None,
                        unplaced: 1,
                        verdict: filtered("constraint ${attr.kernel.name} = windows"),
                    }],
                },
                GroupWhyNot {
                    group: "batch".into(),
                    placements: vec![PlacementWhyNot {
                        allocation: None,
                        unplaced: 0,
                        verdict: NodeVerdict::Fits,
                    }],
                },
            ],
        };
        assert_snapshot("cli-job-plan-why-not", &plan_why_not(&why));
    }

    fn alloc_why(basis: WhyNotBasis, verdict: NodeVerdict) -> AllocWhyNot {
        AllocWhyNot {
            alloc_id: "a0c0ffee-0000-4000-8000-000000000000".into(),
            alloc_name: "web.frontend[0]".into(),
            alloc_node_id: N1.into(),
            node_id: N3.into(),
            node_name: "mac-1".into(),
            basis,
            verdict,
            funnel: Some(PlacementFunnel {
                nodes_evaluated: 6,
                nodes_filtered: 3,
                nodes_exhausted: 1,
                nodes_skipped: 0,
                candidates: 2,
            }),
        }
    }

    #[test]
    fn alloc_why_not_from_the_record_or_as_the_node_is_now() {
        let names = crate::job::fixtures::node_name_map();
        let mut text = String::new();
        let mut candidate = alloc_why(WhyNotBasis::Decision, outscored());
        candidate.node_id = N2.into();
        candidate.node_name = "box-2".into();
        text.push_str(&alloc_why_not(&candidate, &names));
        text.push_str(&alloc_why_not(
            &alloc_why(
                WhyNotBasis::Now,
                NodeVerdict::Filtered {
                    reason: "constraint ${attr.kernel.name} = linux".into(),
                },
            ),
            &names,
        ));
        text.push_str(&alloc_why_not(
            &alloc_why(
                WhyNotBasis::Now,
                NodeVerdict::NotEvaluated {
                    reason: "the node is down".into(),
                },
            ),
            &names,
        ));
        let mut fits = alloc_why(WhyNotBasis::Now, NodeVerdict::Fits);
        text.push_str(&alloc_why_not(&fits, &names));
        fits.funnel = None;
        text.push_str(&alloc_why_not(&fits, &names));
        assert_snapshot("cli-alloc-status-why-not", &text);

        // Without affinities or spreads the score is the scorer's: one row.
        let plain = NodeVerdict::Outscored {
            part_names: parts(),
            node: scores(N2, "box-2", 0.5, 0.0, &[0.4, 0.6]),
            winner: scores(N1, "box-1", 0.75, 0.0, &[0.7, 0.8]),
        };
        let (line, table) = verdict(&plain, N2);
        assert_eq!(
            line,
            "outscored by \"box-1\" (n1a2b3c4): 0.500 against 0.750 (-0.250)"
        );
        assert_eq!(
            table.unwrap(),
            "PART    box-2  box-1    DIFF\n\
             score   0.500  0.750  -0.250\n\
             cpu     0.400  0.700  -0.300\n\
             memory  0.600  0.800  -0.200\n"
        );
    }
}
