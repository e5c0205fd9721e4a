//! The benchmarks keep working: `orch-bench placements` on a small cluster,
//! in process (store, broker, workers, plan applier, SQLite), with the
//! binpack component and natively. Its figures are not checked — these
//! machines are shared — only that every job was placed and each row is
//! whole. The process benchmarks need a release `orch` beside them and are
//! run by hand (README, Measuring).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests may"
)]

use std::process::Command;

#[test]
fn placements_runs_on_a_small_cluster_with_the_component_and_natively() {
    let out = Command::new(env!("CARGO_BIN_EXE_orch-bench"))
        .args([
            "placements",
            "--nodes",
            "200",
            "--jobs",
            "6",
            "--count",
            "5",
            "--durability",
            "normal",
            "--candidates",
            "64,1000",
            "--shadows",
            "0,1",
            "--json",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    // Sampled and every node scored, each with the component, natively,
    // and the component with a shadow.
    assert_eq!(rows.len(), 6, "{rows:?}");
    let mut scorers = Vec::new();
    for row in rows {
        assert_eq!(row["nodes"], 200, "{row}");
        assert_eq!(row["placements"], 30, "every allocation placed: {row}");
        assert!(row["placements_per_sec"].as_f64().unwrap() > 0.0, "{row}");
        scorers.push(row["scorer"].as_str().unwrap().to_owned());
        if row["shadows"] == 1 {
            // Every decision offered to the shadow was answered or dropped.
            let seen = ["shadow_scored", "shadow_faults", "shadow_dropped"]
                .iter()
                .map(|k| row[k].as_u64().unwrap())
                .sum::<u64>();
            assert_eq!(seen, 30, "{row}");
        }
    }
    let candidates: Vec<u64> = rows
        .iter()
        .map(|r| r["candidates"].as_u64().unwrap())
        .collect();
    assert_eq!(candidates, [64, 64, 64, 200, 200, 200], "{rows:?}");
    assert!(scorers.iter().any(|s| s.contains("native")), "{scorers:?}");
    assert!(scorers.iter().any(|s| !s.contains("native")), "{scorers:?}");
}
