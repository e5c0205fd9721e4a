//! Pull throughput of an image through a registry on 127.0.0.1: the agent's
//! `containers` capability (bollard → the Docker engine) against the
//! `docker pull` command as the baseline, in the same run, alternating, on
//! the same image. `cargo bench -p orch-agent --bench image_pull`; set
//! `ORCH_BENCH_MIB` (default 50) and `ORCH_BENCH_ROUNDS` (default 5).
//!
//! Needs what the tests need: the Docker engine, Debian's docker-registry
//! and busybox-static (`scripts/setup`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests may"
)]

use orch_agent::{ContainerSettings, HostConfig, NodeHost, ShimCommand};
use orch_plugin_runtime::{DriverHost, TaskRef};
use orch_testkit::{Registry, build_image, docker};
use std::time::{Duration, Instant};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let mib = env_or("ORCH_BENCH_MIB", 50);
    let rounds = env_or("ORCH_BENCH_ROUNDS", 5);
    let registry = Registry::start();
    let local = format!("orch-bench/pull:{mib}m");
    eprintln!("building a {mib} MiB image FROM scratch…");
    build_image(&local, mib);
    let image = format!("{}/bench/pull:{mib}m", registry.host());
    docker(&["tag", &local, &image]);
    docker(&["push", &image]);
    let bytes: u64 = docker(&["image", "inspect", "--format", "{{.Size}}", &image])
        .trim()
        .parse()
        .unwrap();

    let data = tempfile::tempdir().unwrap();
    let host = NodeHost::with_containers(
        HostConfig {
            data_dir: data.path().to_owned(),
            shim: ShimCommand {
                program: "/bin/false".into(),
                args: Vec::new(),
            },
            log_max_bytes: 1 << 20,
            log_max_files: 2,
            artifact_max_bytes: 1 << 20,
        },
        "bench-image-pull",
        ContainerSettings {
            port_bind_address: "127.0.0.1".into(),
            ..Default::default()
        },
    )
    .unwrap();
    let task = TaskRef {
        alloc_id: "bench".into(),
        task: "pull".into(),
    };

    let mut orch = Vec::new();
    let mut cli = Vec::new();
    for round in 1..=rounds {
        // Both start from an engine without the image (or its layers: the
        // local build's tag is dropped too, so nothing is shared).
        let _ = std::process::Command::new("docker")
            .args(["rmi", "--force", &image, &local])
            .output();
        let started = Instant::now();
        host.pull_image(&task, &image).unwrap();
        orch.push(started.elapsed());
        docker(&["rmi", "--force", &image]);
        let started = Instant::now();
        docker(&["pull", "--quiet", &image]);
        cli.push(started.elapsed());
        eprintln!(
            "round {round}/{rounds}: orch {:.0} ms, docker pull {:.0} ms",
            ms(*orch.last().unwrap()),
            ms(*cli.last().unwrap())
        );
    }
    let _ = std::process::Command::new("docker")
        .args(["rmi", "--force", &image])
        .output();

    let mb = bytes as f64 / 1e6;
    println!(
        "image pull through a registry on 127.0.0.1: {mb:.1} MB image (uncompressed), {rounds} rounds each, alternating"
    );
    println!(
        "{:<28} {:>9} {:>9} {:>10}",
        "puller", "median ms", "best ms", "MB/s (med)"
    );
    for (name, samples) in [
        ("orch containers capability", &mut orch),
        ("docker pull (baseline)", &mut cli),
    ] {
        samples.sort();
        let median = samples[samples.len() / 2];
        println!(
            "{name:<28} {:>9.0} {:>9.0} {:>10.1}",
            ms(median),
            ms(samples[0]),
            mb / median.as_secs_f64()
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
