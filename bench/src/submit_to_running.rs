//! `orch-bench submit-to-running`: how long a trivial task takes from the
//! job's submission to its agent reporting it running, on a real server and
//! a real agent (two processes of this binary on loopback). With `--driver
//! oci --image REF` the task is a container on the node's Docker engine
//! (the image pulled once before the timed runs).

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
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

/// Kills the processes it holds when dropped, whatever happened.
struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts `orch ARGS` and returns it with the first line it printed.
fn start(args: &[&str]) -> Result<(Child, String)> {
    let exe = crate::orch_binary()?;
    let mut child = Command::new(exe)
        .args(args)
        .env("ORCH_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot start orch")?;
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        BufReader::new(out).read_line(&mut line)?;
    }
    Ok((child, line.trim().to_owned()))
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
    let mut procs = Procs(Vec::new());
    let (server, line) = start(&[
        "server",
        "--config",
        &config.display().to_string(),
        "--listen",
        "127.0.0.1:0",
    ])?;
    procs.0.push(server);
    let addr = line
        .strip_prefix("orch server: API listening on ")
        .with_context(|| format!("the server said {line:?}"))?
        .to_owned();
    let agent_dir = dir.path().join("agent");
    let (agent, line) = start(&[
        "agent",
        "--server",
        &addr,
        "--data-dir",
        &agent_dir.display().to_string(),
    ])?;
    procs.0.push(agent);
    if !line.starts_with("orch agent: node") {
        bail!("the agent said {line:?}");
    }
    let http: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    // Wait for the node.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let nodes: Value = http
            .get(format!("{addr}/v1/nodes"))
            .call()?
            .body_mut()
            .read_json()?;
        if nodes
            .as_array()
            .is_some_and(|n| n.iter().any(|n| n["status"] == "ready"))
        {
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
        let job = json!({"job": {"id": id, "type": "service", "group": [{"name": "g", "count": 1,
            "task": [task.clone()]}]}});
        let started = Instant::now();
        let mut res = http.post(format!("{addr}/v1/jobs")).send_json(&job)?;
        if res.status() != 200 {
            bail!("submitting {id}: {}", res.body_mut().read_to_string()?);
        }
        let mut index = 0u64;
        loop {
            let mut res = http
                .get(format!("{addr}/v1/job/{id}/allocations"))
                .query("index", index.to_string())
                .query("wait", "5s")
                .call()?;
            index = res
                .headers()
                .get("x-orch-index")
                .and_then(|v| v.to_str().ok()?.parse().ok())
                .unwrap_or(index);
            let allocs: Value = res.body_mut().read_json()?;
            let statuses: Vec<&str> = allocs
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|a| a["client_status"].as_str())
                        .collect()
                })
                .unwrap_or_default();
            if statuses.contains(&"running") {
                break;
            }
            if statuses.contains(&"failed") {
                bail!("{id} failed: {allocs}");
            }
            if started.elapsed() > Duration::from_secs(120) {
                bail!("{id} did not run within 120 s");
            }
        }
        if i > 0 {
            samples.push(started.elapsed());
        }
        // Stop it so the node does not fill up; not timed.
        http.delete(format!("{addr}/v1/job/{id}")).call()?;
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
    drop(procs);
    // Tasks the agent still ran are in its records; kill their groups.
    kill_leftover_tasks(&agent_dir);
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

/// Kills the process groups of tasks the agent's records still list.
fn kill_leftover_tasks(agent_dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(agent_dir.join("agent").join("allocs")) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        let Ok(record) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        for task in record["tasks"]
            .as_object()
            .into_iter()
            .flat_map(|m| m.values())
        {
            if let Some(state) = task["handle"]["state"].as_str()
                && let Ok(state) = serde_json::from_str::<Value>(state)
                && let Some(pid) = state["pid"].as_i64()
                && std::fs::read_link(format!("/proc/{pid}/cwd"))
                    .is_ok_and(|cwd| cwd.starts_with(agent_dir))
            {
                let _ = Command::new("kill")
                    .args(["-9", "--", &format!("-{pid}")])
                    .status();
            }
        }
    }
}
