//! Every folder under `conformance/fixtures/cases` is a plugin the suite must
//! judge as its `expect.toml` says. Adding a case is adding a folder (and,
//! for a Rust fixture, its `[[example]]` line); no Rust here changes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests may"
)]

use orch_conformance::{Options, Outcome, test_component};
use orch_plugin_runtime::{Limits, Runtime, RuntimeConfig};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    /// The check that decides, or `all`.
    check: String,
    /// `pass` or `fail`.
    outcome: String,
    /// Text the check's detail must contain.
    #[serde(default)]
    detail: Option<String>,
}

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/cases")
}

/// A fixture's component: `plugin.wasm` in its folder, or the example of the
/// fixtures crate that `build.rs` compiled.
fn wasm_of(case: &Path) -> PathBuf {
    let committed = case.join("plugin.wasm");
    if committed.exists() {
        return committed;
    }
    let name = case
        .file_name()
        .unwrap()
        .to_string_lossy()
        .replace('-', "_");
    Path::new(env!("ORCH_FIXTURE_WASM_DIR")).join(format!("{name}.wasm"))
}

/// Short limits keep the runaway fixtures quick; they change nothing about
/// which check fails.
fn options() -> Options {
    Options {
        limits: Limits {
            deadline: Duration::from_millis(300),
            memory_bytes: 64 << 20,
            ..Limits::default()
        },
        generated_cases: 16,
    }
}

#[test]
fn every_fixture_is_judged_as_expected() {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 16, "fixtures went missing: {cases:?}");

    let mut wrong = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let expect: Expect =
            toml::from_str(&std::fs::read_to_string(case.join("expect.toml")).unwrap())
                .unwrap_or_else(|e| panic!("{name}/expect.toml: {e}"));
        let wasm = wasm_of(case);
        let bytes = std::fs::read(&wasm).unwrap_or_else(|e| panic!("{}: {e}", wasm.display()));
        let report = test_component(&runtime, &name, &bytes, &options());

        let verdict = if expect.check == "all" {
            let ok = report.passed == (expect.outcome == "pass");
            ok.then_some(()).ok_or_else(|| report.table())
        } else {
            match report.check(&expect.check) {
                None => Err(format!(
                    "check {} did not run\n{}",
                    expect.check,
                    report.table()
                )),
                Some(c) => {
                    let outcome_ok = match expect.outcome.as_str() {
                        "pass" => c.outcome == Outcome::Pass,
                        "fail" => c.outcome == Outcome::Fail,
                        other => panic!("{name}: outcome must be pass or fail, not {other}"),
                    };
                    let detail_ok = expect.detail.as_ref().is_none_or(|d| c.detail.contains(d));
                    // A failing fixture must fail for the expected reason
                    // first: no earlier check may have failed.
                    let first_failure = report
                        .checks
                        .iter()
                        .find(|c| c.outcome == Outcome::Fail)
                        .map(|c| c.check.as_str());
                    let first_ok = expect.outcome == "pass" || first_failure == Some(&expect.check);
                    (outcome_ok
                        && detail_ok
                        && first_ok
                        && report.passed != (expect.outcome == "fail"))
                        .then_some(())
                        .ok_or_else(|| report.table())
                }
            }
        };
        if let Err(table) = verdict {
            wrong.push(format!(
                "{name}: expected {} {} ({:?})\n{table}",
                expect.check, expect.outcome, expect.detail
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_runtime_keeps_working_after_every_kind_of_fault() {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let limits = options().limits;
    let binpack = orch_builtins::get("binpack").unwrap();
    let good = runtime
        .scorer(
            &runtime.load("binpack", binpack.wasm, &limits).unwrap(),
            limits.clone(),
        )
        .unwrap();
    let request = orch_conformance::typical_request(20, 1);
    for (fixture, kind) in [
        ("loop_forever", "deadline"),
        ("allocate_forever", "memory"),
        ("recurse_forever", "stack-overflow"),
        ("panics", "trap"),
        ("wrong_count", "wrong-length"),
        ("nan_score", "not-finite"),
    ] {
        let bad = fixture_scorer(&runtime, fixture, limits.clone());
        // Twice: the second call gets a fresh instance and fails the same
        // way, rather than finding a poisoned one.
        for _ in 0..2 {
            let err = bad.score(&request).unwrap_err();
            assert_eq!(err.kind(), kind, "{fixture}: {err}");
            assert!(err.to_string().contains(fixture), "names the plugin: {err}");
            assert!(
                err.to_string().contains(&bad.digest().short()),
                "names the digest: {err}"
            );
        }
        let scored = good.score(&request).unwrap();
        assert_eq!(scored.response.scores.len(), 20);
    }
}

/// The compiled fixture `name` (as its example is called), ready to score.
fn fixture_scorer(
    runtime: &Runtime,
    name: &str,
    limits: Limits,
) -> orch_plugin_runtime::ScorerPlugin {
    let bytes =
        std::fs::read(Path::new(env!("ORCH_FIXTURE_WASM_DIR")).join(format!("{name}.wasm")))
            .unwrap();
    let component = runtime.load(name, &bytes, &limits).unwrap();
    runtime.scorer(&component, limits).unwrap()
}

#[test]
fn fuel_stops_a_runaway_plugin_when_metered() {
    let runtime = Runtime::new(RuntimeConfig {
        fuel: true,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let limits = Limits {
        fuel: Some(5_000_000),
        deadline: Duration::from_secs(30),
        ..Limits::default()
    };
    let plugin = fixture_scorer(&runtime, "loop_forever", limits);
    let err = plugin
        .score(&orch_conformance::typical_request(5, 1))
        .unwrap_err();
    assert_eq!(err.kind(), "fuel", "{err}");

    // With the same fuel, binpack finishes and reports what it burnt.
    let binpack = orch_builtins::get("binpack").unwrap();
    let limits = Limits {
        fuel: Some(5_000_000),
        ..Limits::default()
    };
    let good = runtime
        .scorer(
            &runtime.load("binpack", binpack.wasm, &limits).unwrap(),
            limits,
        )
        .unwrap();
    let scored = good
        .score(&orch_conformance::typical_request(5, 1))
        .unwrap();
    let used = scored.stats.fuel_used.unwrap();
    assert!(used > 0 && used < 5_000_000, "{used}");
}

#[test]
fn a_fuel_limit_without_metering_is_refused_clearly() {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let limits = Limits {
        fuel: Some(1000),
        ..Limits::default()
    };
    let binpack = orch_builtins::get("binpack").unwrap();
    let plugin = runtime
        .scorer(
            &runtime.load("binpack", binpack.wasm, &limits).unwrap(),
            limits,
        )
        .unwrap();
    let err = plugin
        .score(&orch_conformance::typical_request(1, 1))
        .unwrap_err();
    assert_eq!(err.kind(), "config");
    assert!(err.to_string().contains("fuel = true"), "{err}");
}

#[test]
fn every_builtin_conforms() {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    for b in orch_builtins::BUILTINS
        .iter()
        .filter(|b| b.kind == "scorer")
    {
        let report = test_component(&runtime, b.name, b.wasm, &Options::default());
        assert!(report.passed, "{}", report.table());
    }
}

/// Drivers have no suite yet: the report says so, at the world check.
#[test]
fn a_builtin_driver_is_told_it_has_no_suite_yet() {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let exec = orch_builtins::get("exec").unwrap();
    assert_eq!(exec.kind, "driver");
    let report = test_component(&runtime, "builtin:exec", exec.wasm, &Options::default());
    let world = report.check("world").unwrap();
    assert_eq!(world.outcome, Outcome::Fail, "{}", report.table());
    assert!(
        world
            .detail
            .contains("no conformance suite for that world yet"),
        "{}",
        report.table()
    );
    assert_eq!(report.world.as_deref(), Some("orch:driver/driver-plugin"));
}

#[test]
fn a_plugin_that_keeps_faulting_trips_its_breaker() {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let limits = Limits {
        deadline: Duration::from_millis(50),
        breaker_threshold: 2,
        breaker_cooldown: Duration::from_secs(3600),
        ..Limits::default()
    };
    let plugin = fixture_scorer(&runtime, "loop_forever", limits);
    let request = orch_conformance::typical_request(3, 1);
    assert_eq!(plugin.score(&request).unwrap_err().kind(), "deadline");
    assert_eq!(plugin.score(&request).unwrap_err().kind(), "deadline");
    // Now refused without running: no third deadline is spent.
    let err = plugin.score(&request).unwrap_err();
    assert_eq!(err.kind(), "breaker-open", "{err}");
    assert!(
        err.to_string().contains("faulted 2 times in a row"),
        "{err}"
    );
    assert!(err.to_string().contains("loop_forever@"), "{err}");
}
