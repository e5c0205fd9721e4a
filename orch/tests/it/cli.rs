//! `orch plugin …` as a user runs it: the real binary, its output and exit codes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn orch(args: &[&str]) -> Output {
    let cache = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_orch"))
        .args(args)
        .env("ORCH_CACHE_DIR", cache.path())
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn testing_a_builtin_prints_a_table_and_exits_0() {
    let out = orch(&["plugin", "test", "builtin:binpack"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(text.contains("CHECK"), "{text}");
    assert!(
        text.contains("world   orch:scheduler/scorer-plugin@0.1.0"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("budget ") && l.contains("pass")),
        "{text}"
    );
    assert!(
        text.contains("14 passed, 0 failed, 0 skipped: conforms"),
        "{text}"
    );
}

#[test]
fn a_failing_plugin_exits_1_with_the_reason_in_json() {
    let file = repo().join("conformance/fixtures/cases/core-module/plugin.wasm");
    let out = orch(&["plugin", "test", file.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["passed"], false);
    assert_eq!(report["checks"][0]["check"], "component");
    assert_eq!(report["checks"][0]["outcome"], "fail");
    assert!(
        report["checks"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("core wasm module")
    );
    assert!(
        report["checks"].as_array().unwrap()[1..]
            .iter()
            .all(|c| c["outcome"] == "skip")
    );
}

#[test]
fn a_missing_file_or_builtin_exits_2_with_what_to_do() {
    let out = orch(&["plugin", "test", "/nonexistent/scorer.wasm"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("cannot read plugin /nonexistent/scorer.wasm"),
        "{err}"
    );
    assert!(err.contains("No such file"), "{err}");

    let out = orch(&["plugin", "inspect", "builtin:nope"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("no built-in plugin `nope`"), "{err}");
    assert!(err.contains("binpack, spread, epvm, round-robin"), "{err}");
}

#[test]
fn inspect_shows_world_imports_exports_size_and_digest() {
    let out = orch(&["plugin", "inspect", "builtin:epvm", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let i: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(i["world"], "scorer");
    assert_eq!(i["world_export"], "orch:scheduler/scorer@0.1.0");
    assert_eq!(i["version_supported"], true);
    assert!(i["digest"].as_str().unwrap().starts_with("sha256:"));
    assert!(i["size"].as_u64().unwrap() > 1000);
    assert!(
        i["imports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "wasi:cli/stderr@0.2.6")
    );

    let out = orch(&["plugin", "inspect", "builtin:epvm"]);
    let text = stdout(&out);
    for field in [
        "plugin ", "digest ", "size ", "world ", "imports ", "exports ",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(field)),
            "{field} missing:\n{text}"
        );
    }
}

#[test]
fn list_names_every_builtin() {
    let out = orch(&["plugin", "list", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<(&str, &str)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["name"].as_str().unwrap(), b["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        names,
        [
            ("binpack", "scorer"),
            ("spread", "scorer"),
            ("epvm", "scorer"),
            ("round-robin", "scorer"),
            ("exec", "driver"),
            ("oci", "driver")
        ]
    );
}

#[test]
fn usage_errors_exit_2() {
    let out = orch(&["plugin", "frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}

/// What a user sees from `orch plugin test`, compared with a snapshot so
/// changes to it are deliberate. Re-bless with `ORCH_BLESS=1 cargo test`.
#[test]
fn plugin_test_table_matches_its_snapshot() {
    let out = orch(&["plugin", "test", "builtin:round-robin"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The digest and size change with every rebuild of the plugin and the
    // budget line carries timings: keep their shape, not their values.
    let seen: String = stdout(&out)
        .lines()
        .map(|l| {
            if l.starts_with("digest") {
                "digest  sha256:<digest>".to_owned()
            } else if l.starts_with("budget") || l.starts_with("component") {
                numbers_as_hash(l)
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    orch_testkit::assert_snapshot(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/plugin-test-round-robin.txt"),
        &seen,
    );
}

/// `10,000 nodes: 1.52 ms` → `# nodes: # ms`.
fn numbers_as_hash(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() {
            while i < chars.len()
                && (chars[i].is_ascii_digit()
                    || (matches!(chars[i], '.' | ',')
                        && chars.get(i + 1).is_some_and(char::is_ascii_digit)))
            {
                i += 1;
            }
            out.push('#');
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// `orch plugin bench` measures a scorer against the built-in binpack on
/// the same requests, and against its own native build where orch has one;
/// the figures vary, their presence and shape do not.
#[test]
fn plugin_bench_measures_a_scorer_against_binpack_and_its_native_build() {
    let out = orch(&[
        "plugin",
        "bench",
        "builtin:round-robin",
        "--nodes",
        "10,100",
        "--time-ms",
        "20",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["plugin"], "builtin:round-robin");
    assert_eq!(r["against"], "builtin:binpack");
    assert!(r["plugin_digest"].as_str().unwrap().starts_with("sha256:"));
    let rows = r["rows"].as_array().unwrap();
    assert_eq!(
        rows.iter()
            .map(|row| row["nodes"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [10, 100]
    );
    for row in rows {
        for field in [
            "plugin_ns_per_node",
            "plugin_call_ns_per_node",
            "against_ns_per_node",
            "ratio",
            "native_ns_per_node",
            "native_ratio",
            "native_call_ratio",
        ] {
            let v = row[field]
                .as_f64()
                .unwrap_or_else(|| panic!("{field}: {row}"));
            assert!(v.is_finite() && v > 0.0, "{field}: {row}");
        }
        assert!(row["iterations"].as_u64().unwrap() >= 10, "{row}");
    }
    assert!(r["compile_ms"].as_f64().unwrap() > 0.0);

    // The table a person reads names both sides and the native column.
    let out = orch(&[
        "plugin",
        "bench",
        "builtin:spread",
        "--against",
        "builtin:epvm",
        "--nodes",
        "10",
        "--time-ms",
        "10",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("builtin:spread (sha256:"), "{text}");
    assert!(text.contains("against builtin:epvm"), "{text}");
    assert!(text.contains("NATIVE ns/node"), "{text}");
}

/// What is not a scorer is refused with a reason, exit 2, before any timing.
#[test]
fn plugin_bench_refuses_what_is_not_a_scorer() {
    let out = orch(&["plugin", "bench", "builtin:exec"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("builtin:exec is not a scorer component"),
        "{err}"
    );
    let core = repo().join("conformance/fixtures/cases/core-module/plugin.wasm");
    let out = orch(&["plugin", "bench", core.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("not a WebAssembly component"),
        "{}",
        stderr(&out)
    );
    let out = orch(&["plugin", "bench", "/no/such/scorer.wasm"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cannot read plugin /no/such/scorer.wasm"));
    let out = orch(&[
        "plugin",
        "bench",
        "builtin:binpack",
        "--against",
        "builtin:oci",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("builtin:oci is not a scorer component"));
}
