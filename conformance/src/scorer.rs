//! The checks for `orch:scheduler/scorer-plugin`.

use crate::cases::{self, Case};
use crate::{Options, Report};
use orch_plugin_runtime::{
    Component, Inspection, Node, NodeColumns, OutputProblem, PluginError, Resources, Runtime,
    SCORER_WORLD, ScoreRequest, ScoreResponse, Scored, ScorerPlugin, validate_response,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

/// Every check, in the order the report lists them.
pub(crate) const CHECKS: &[&str] = &[
    "component",
    "world",
    "imports",
    "info",
    "sandbox",
    "length",
    "finite",
    "range",
    "parts",
    "deterministic",
    "sizes",
    "edge",
    "generated",
    "budget",
];

/// An answer some check got, kept so the output checks can look at all of them.
struct Answer {
    case: String,
    nodes: usize,
    response: ScoreResponse,
}

pub(crate) fn run(
    runtime: &Runtime,
    component: &Component,
    inspection: &Inspection,
    options: &Options,
    mut report: Report,
) -> Report {
    report.world = Some(SCORER_WORLD.to_owned());
    let exports = format!(
        "exports {}",
        inspection.world_export.as_deref().unwrap_or(SCORER_WORLD)
    );
    let plugin = match runtime.scorer(component, options.limits.clone()) {
        Ok(p) => p,
        Err(e @ PluginError::ForbiddenImport { .. }) => {
            report.pass("world", exports);
            report.fail("imports", e.to_string());
            return report.skip_rest(CHECKS);
        }
        Err(e) => {
            report.fail("world", e.to_string());
            return report.skip_rest(CHECKS);
        }
    };
    report.pass("world", exports);
    let wasi = inspection
        .imports
        .iter()
        .filter(|i| i.starts_with("wasi:"))
        .count();
    report.pass(
        "imports",
        if wasi == 0 {
            "no capability imports".to_owned()
        } else {
            format!("{wasi} WASI 0.2 interfaces, linked with nothing granted; nothing else")
        },
    );
    match plugin.info() {
        Ok(info) if !info.name.trim().is_empty() && !info.version.trim().is_empty() => report.pass(
            "info",
            format!("{} {}: {}", info.name, info.version, info.description),
        ),
        Ok(_) => report.fail("info", "info() returned an empty name or version"),
        Err(e) => report.fail("info", e.to_string()),
    }

    let cases = match cases::load("scorer") {
        Ok(c) => c,
        Err(e) => {
            report.fail(
                "sandbox",
                format!("the suite's own case data is broken: {e}"),
            );
            return report.skip_rest(CHECKS);
        }
    };
    let mut answers = Vec::new();
    let Some(typical) = cases.iter().find(|c| c.check == "sandbox") else {
        report.fail("sandbox", "the suite has no `sandbox` case");
        return report.skip_rest(CHECKS);
    };
    let first = match plugin.score_unchecked(&typical.request) {
        Ok(scored) => {
            report.pass(
                "sandbox",
                format!(
                    "scored {} with no files, network, environment or real clock",
                    typical.name
                ),
            );
            keep(&mut answers, typical, &scored);
            scored
        }
        Err(e) => {
            report.fail("sandbox", e.to_string());
            return report.skip_rest(CHECKS);
        }
    };

    check_deterministic(&plugin, typical, &first, &mut report);
    let budget = check_cases(&plugin, &cases, "sizes", &mut answers, &mut report);
    check_cases(&plugin, &cases, "edge", &mut answers, &mut report);
    check_generated(&plugin, options.generated_cases, &mut report);
    check_outputs(&answers, &mut report);
    check_budget(&plugin, budget, &mut report);

    report
        .checks
        .sort_by_key(|c| CHECKS.iter().position(|n| *n == c.check));
    report.skip_rest(CHECKS)
}

fn keep(answers: &mut Vec<Answer>, case: &Case, scored: &Scored) {
    answers.push(Answer {
        case: case.name.clone(),
        nodes: case.request.nodes.len().unwrap_or_default(),
        response: scored.response.clone(),
    });
}

/// Scores `case` again on the instance that just answered it, and once more
/// on a fresh instance: a scorer must be a function of its input alone, so
/// the live decision (a reused instance) and its replay (a fresh one) agree.
fn check_deterministic(plugin: &ScorerPlugin, case: &Case, first: &Scored, report: &mut Report) {
    let again = plugin.score_unchecked(&case.request);
    let fresh = plugin.fresh().score_unchecked(&case.request);
    match (again, fresh) {
        (Ok(again), Ok(fresh)) => {
            if !same_answer(&first.response, &again.response) {
                report.fail(
                    "deterministic",
                    format!(
                        "{} scored twice by the same instance gave different answers: the scorer keeps state between calls or reads the clock or randomness",
                        case.name
                    ),
                );
            } else if !same_answer(&first.response, &fresh.response) {
                report.fail(
                    "deterministic",
                    format!(
                        "{}: a fresh instance answered differently from a reused one",
                        case.name
                    ),
                );
            } else {
                report.pass(
                    "deterministic",
                    format!(
                        "the same answer, bit for bit, for {} on a reused and on a fresh instance",
                        case.name
                    ),
                );
            }
        }
        (Err(e), _) | (_, Err(e)) => report.fail("deterministic", format!("scoring again: {e}")),
    }
}

fn same_answer(a: &ScoreResponse, b: &ScoreResponse) -> bool {
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    a.part_names == b.part_names
        && bits(&a.scores) == bits(&b.scores)
        && bits(&a.parts) == bits(&b.parts)
}

/// Sends every case of `check`; returns the budget case's outcome if one ran.
fn check_cases(
    plugin: &ScorerPlugin,
    cases: &[Case],
    check: &str,
    answers: &mut Vec<Answer>,
    report: &mut Report,
) -> Option<(String, Result<Scored, PluginError>)> {
    let mut names = Vec::new();
    let mut refused = Vec::new();
    let mut failure = None;
    let mut budget = None;
    for case in cases.iter().filter(|c| c.check == check) {
        // The budget case runs on a fresh instance, so its figures include
        // instantiating.
        let result = if case.budget {
            plugin.fresh().score_unchecked(&case.request)
        } else {
            plugin.score_unchecked(&case.request)
        };
        match &result {
            Ok(scored) => keep(answers, case, scored),
            // Refusing an odd request is allowed: the host's failure policy
            // takes over. Trapping or hanging on one is not.
            Err(PluginError::Refused { .. }) => refused.push(case.name.clone()),
            Err(e) => {
                failure.get_or_insert_with(|| format!("{}: {e}", case.name));
            }
        }
        if !matches!(result, Err(PluginError::Refused { .. })) {
            names.push(case.name.clone());
        }
        if case.budget {
            budget = Some((case.name.clone(), result));
        }
    }
    match failure {
        Some(f) => report.fail(check, f),
        None if refused.is_empty() => report.pass(check, format!("answered {}", names.join("; "))),
        None => report.pass(
            check,
            format!(
                "answered {}; refused (allowed) {}",
                names.join("; "),
                refused.join("; ")
            ),
        ),
    }
    budget
}

fn check_outputs(answers: &[Answer], report: &mut Report) {
    let mut first: Vec<(&str, String)> = Vec::new();
    for a in answers {
        if let Err(problem) = validate_response(&a.response, a.nodes) {
            let check = match problem {
                OutputProblem::WrongLength { .. } => "length",
                OutputProblem::NotFinite { .. } => "finite",
                OutputProblem::OutOfRange { .. } => "range",
                OutputProblem::BadParts(_) => "parts",
            };
            if !first.iter().any(|(c, _)| *c == check) {
                first.push((check, format!("{}: {problem}", a.case)));
            }
        }
    }
    let checked = format!("{} answers checked", answers.len());
    let details = [
        ("length", "one score per node"),
        ("finite", "no NaN or infinity"),
        ("range", "every score in [-1, 1]"),
        (
            "parts",
            "part names snake_case and unique, one finite value per node and name",
        ),
    ];
    for (check, what) in details {
        match first.iter().find(|(c, _)| *c == check) {
            Some((_, detail)) => report.fail(check, detail.clone()),
            None => report.pass(check, format!("{what}; {checked}")),
        }
    }
}

fn check_generated(plugin: &ScorerPlugin, cases: u32, report: &mut Report) {
    let config = Config {
        cases,
        failure_persistence: None,
        // Each shrink step is a plugin call of well under a millisecond for
        // most plugins; a thousand find a small input.
        max_shrink_iters: 1024,
        ..Config::default()
    };
    // A fixed seed: the same plugin always meets the same inputs, so a
    // failure is reproducible and `orch plugin test` is repeatable.
    let rng = TestRng::deterministic_rng(RngAlgorithm::ChaCha);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let result = runner.run(&request(), |request| {
        match plugin.score_unchecked(&request) {
            Ok(scored) => {
                validate_response(&scored.response, request.nodes.len().unwrap_or_default())
                    .map_err(|p| TestCaseError::fail(p.to_string()))
            }
            Err(PluginError::Refused { .. }) => Ok(()),
            Err(e) => Err(TestCaseError::fail(e.to_string())),
        }
    });
    match result {
        Ok(()) => report.pass(
            "generated",
            format!("survived {cases} generated requests (zero, huge and overcommitted resources, odd attributes)"),
        ),
        Err(TestError::Fail(reason, request)) => report.fail(
            "generated",
            format!("{reason}; smallest failing request: {}", summarize(&request)),
        ),
        Err(TestError::Abort(reason)) => report.fail("generated", format!("aborted: {reason}")),
    }
}

fn summarize(r: &ScoreRequest) -> String {
    let count = r.nodes.len().unwrap_or_default();
    let nodes: Vec<String> = (0..count.min(3))
        .filter_map(|i| r.nodes.node(i))
        .map(|n| {
            format!(
                "cap {}/{}/{} used {}/{}/{}",
                n.capacity.cpu_mhz,
                n.capacity.memory_mib,
                n.capacity.disk_mib,
                n.allocated.cpu_mhz,
                n.allocated.memory_mib,
                n.allocated.disk_mib
            )
        })
        .collect();
    format!(
        "{} nodes [{}{}], ask {}/{}/{}, {} attributes",
        count,
        nodes.join("; "),
        if count > 3 { "; …" } else { "" },
        r.ask.cpu_mhz,
        r.ask.memory_mib,
        r.ask.disk_mib,
        r.attribute_names.len()
    )
}

fn check_budget(
    plugin: &ScorerPlugin,
    budget: Option<(String, Result<Scored, PluginError>)>,
    report: &mut Report,
) {
    let limits = plugin.limits();
    match budget {
        Some((case, Ok(scored))) => report.pass(
            "budget",
            format!(
                "{case}: {:.2} ms of a {} ms deadline, {:.1} MiB of a {} MiB cap; fresh instance in {} µs",
                scored.stats.call.as_secs_f64() * 1e3,
                limits.deadline.as_millis(),
                scored.stats.memory_bytes as f64 / f64::from(1 << 20),
                limits.memory_bytes >> 20,
                scored.stats.instantiate.as_micros()
            ),
        ),
        Some((case, Err(e))) => report.fail("budget", format!("{case}: {e}")),
        None => report.fail("budget", "the suite has no budget case"),
    }
}

// Generated inputs: within the contract (attribute ids valid or absent),
// at its edges (zeros, maxima, allocated beyond capacity).

fn edge_u32() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0), Just(1), Just(u32::MAX), 0..200_000u32]
}

fn edge_u64() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0), Just(1), Just(u64::MAX), 0..(1u64 << 40)]
}

fn resources() -> impl Strategy<Value = Resources> {
    (edge_u32(), edge_u64(), edge_u64()).prop_map(|(cpu_mhz, memory_mib, disk_mib)| Resources {
        cpu_mhz,
        memory_mib,
        disk_mib,
    })
}

fn node() -> impl Strategy<Value = Node> {
    (resources(), resources(), edge_u32(), edge_u32()).prop_map(
        |(capacity, allocated, job_allocs, total_allocs)| Node {
            capacity,
            allocated,
            job_allocs,
            total_allocs,
        },
    )
}

fn request() -> impl Strategy<Value = ScoreRequest> {
    let names = vec("[a-z._]{0,12}", 0..4);
    let strings = vec("\\PC{0,16}", 0..6);
    (
        any::<u64>(),
        any::<u8>(),
        resources(),
        vec(node(), 0..40),
        names,
        strings,
    )
        .prop_flat_map(|(placement, job_priority, ask, nodes, names, strings)| {
            let cells = nodes.len() * names.len();
            let ids = if strings.is_empty() {
                Just(u32::MAX).boxed()
            } else {
                let n = u32::try_from(strings.len()).unwrap_or(u32::MAX);
                prop_oneof![Just(u32::MAX), 0..n].boxed()
            };
            vec(ids, cells).prop_map(move |attributes| ScoreRequest {
                placement,
                job_priority,
                ask,
                nodes: NodeColumns::from_nodes(&nodes),
                attribute_names: names.clone(),
                strings: strings.clone(),
                attributes,
            })
        })
}
