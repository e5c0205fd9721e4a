//! `orch-bench submit-to-running`: how long a trivial task takes from the
//! job's submission to its agent reporting it running, on a real server and
//! a real agent (two `orch` processes on loopback). With `--driver oci
//! --image REF` the task is a container on the node's Docker engine (the
//! image pulled once before the timed runs).

use anyhow::{Context, Result, bail};
use orch_model::{Allocation, ClientStatus, Job, Node, NodeStatus};
use orch_testkit::{Echo, Process, kill_agent_tasks};
use orch_wire::{JobRegisterRequest, JobRegisterResponse, JobStopResponse, routes};
use serde_json::json;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct RunningArgs {
    /// Jobs submitted, one after the other.
    #[arg(long, default_value_t = 100)]
    pub jobs: usize,
    /// The task's driver: `exec` (`/bin/sleep 300`) or `oci` (the image's
    /// `sleep 300`, which needs `--image`).
    #[arg(long, default_value = "exec", value_parser = ["exec", "oci"])]
    pub driver: String,
    /// Image for `--driver oci`, e.g. `127.0.0.1:5000/busybox:1`; it must
    /// have `/bin/sleep`.
    #[arg(long)]
    pub image: Option<String>,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Starts `orch ARGS`, up once its first line starts with `ready`; its
/// warnings go to this program's stderr, tagged `tag`.
fn start(args: &[&str], ready: &str, tag: &str) -> Result<Process> {
    let mut command = Command::new(crate::orch_binary()?);
    command.args(args).env("ORCH_LOG", "warn");
    Ok(Process::start(command, ready, Echo::tagged(tag))?)
}

pub fn run(args: RunningArgs) -> Result<()> {
    let task = match (args.driver.as_str(), &args.image) {
        ("oci", Some(image)) => {
            json!({"name": "t", "driver": "oci", "config": {"image": image, "entrypoint": ["/bin/sleep"], "args": ["300"]},
                   "resources": {"cpu": 10, "memory": 16}})
        }
        ("oci", None) => bail!("--driver oci needs --image REF (an image with /bin/sleep)"),
        _ => {
            json!({"name": "t", "driver": "exec", "config": {"command": "/bin/sleep", "args": ["300"]},
                   "resources": {"cpu": 10, "memory": 10}})
        }
    };
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("orch.toml"),
        format!(
            "data_dir = \"{}\"\n[heartbeat]\nttl_ms = 10000\n",
            dir.path().join("server").display()
        ),
    )?;
    let config = dir.path().join("orch.toml");
    let server = start(
        &[
            "server",
            "--config",
            &config.display().to_string(),
            "--listen",
            "127.0.0.1:0",
        ],
        "orch server: API listening on ",
        "server",
    )?;
    let client = crate::client(server.ready_line())?;
    let agent_dir = dir.path().join("agent");
    let agent = start(
        &[
            "agent",
            "--server",
            client.address(),
            "--data-dir",
            &agent_dir.display().to_string(),
        ],
        "orch agent: node ",
        "agent",
    )?;
    // Wait for the node.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let nodes: Vec<Node> = client.get(&routes::NODES, &[], &[])?.body;
        if nodes.iter().any(|n| n.status == NodeStatus::Ready) {
            break;
        }
        if Instant::now() > deadline {
            bail!("the agent's node never became ready");
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    // One untimed job first: it pulls the image (oci) and warms the
    // driver, so the figures are for a present image.
    let mut samples = Vec::with_capacity(args.jobs);
    for i in 0..=args.jobs {
        let id = format!("bench-{i}");
        let job: Job = serde_json::from_value(json!({"id": id, "type": "service",
            "group": [{"name": "g", "count": 1, "task": [task.clone()]}]}))
        .context("the bench's job")?;
        let request = JobRegisterRequest {
            job,
            enforce_index: None,
        };
        let started = Instant::now();
        let _: JobRegisterResponse = client
            .post(&routes::JOB_REGISTER, &[], &request)
            .map_err(|e| anyhow::anyhow!("submitting {id}: {e}"))?
            .body;
        let mut index = 0u64;
        loop {
            let reply = client.get_blocking::<Vec<Allocation>>(
                &routes::JOB_ALLOCATIONS,
                &[&id],
                index,
                Duration::from_secs(5),
            )?;
            if reply.index > 0 {
                index = reply.index;
            }
            let statuses: Vec<ClientStatus> = reply.body.iter().map(|a| a.client_status).collect();
            if statuses.contains(&ClientStatus::Running) {
                break;
            }
            if statuses.contains(&ClientStatus::Failed) {
                bail!("{id} failed: {}", reply.text);
            }
            if started.elapsed() > Duration::from_secs(120) {
                bail!("{id} did not run within 120 s");
            }
        }
        if i > 0 {
            samples.push(started.elapsed());
        }
        // Stop it so the node does not fill up; not timed.
        let _: JobStopResponse = client.delete(&routes::JOB_STOP, &[&id])?.body;
        if !args.json && i % 20 == 0 && i > 0 {
            eprint!("\r{i}/{} jobs", args.jobs);
        }
    }
    if !args.json {
        eprintln!();
    }
    samples.sort();
    let pick = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let (p50, p99, max) = (pick(0.5), pick(0.99), pick(1.0));
    if args.json {
        println!(
            "{}",
            json!({"driver": args.driver, "jobs": samples.len(), "p50_ms": p50, "p99_ms": p99, "max_ms": max})
        );
    } else {
        println!(
            "submit-to-running, trivial {} task, one local agent (server and agent as processes, fsync on)",
            args.driver
        );
        println!("jobs  p50 ms  p99 ms  max ms");
        println!("{:<5} {p50:<7.1} {p99:<7.1} {max:.1}", samples.len());
    }
    // Stopped jobs' tasks are killed by the agent; give it a moment before
    // the processes go.
    std::thread::sleep(Duration::from_millis(500));
    // The agent first: one whose server went first warns that it cannot
    // reach it.
    drop(agent);
    drop(server);
    // Tasks the agent still ran are in its records; kill their groups.
    kill_agent_tasks(&agent_dir);
    if args.driver == "oci" {
        remove_leftover_containers(&agent_dir);
    }
    Ok(())
}

/// Removes the containers the bench's agent created and did not remove
/// (they carry its node id as a label).
fn remove_leftover_containers(agent_dir: &std::path::Path) {
    let Ok(node) = std::fs::read_to_string(agent_dir.join("node-id")) else {
        return;
    };
    let Ok(out) = Command::new("docker")
        .args(["ps", "-aq", "--filter"])
        .arg(format!("label=orch.node={}", node.trim()))
        .output()
    else {
        return;
    };
    let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    if !ids.is_empty() {
        let _ = Command::new("docker")
            .args(["rm", "-f"])
            .args(&ids)
            .stdout(Stdio::null())
            .status();
    }
}
