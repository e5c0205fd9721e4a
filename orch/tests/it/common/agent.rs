//! A real `orch agent` process beside a [`Server`], and what the agent
//! tests share: submitting jobs, waiting on allocations, reading events.

use super::{ORCH, Server};
use orch_testkit::{Echo, Process, kill_agent_tasks};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A real `orch agent` process; killed (with its tasks) when dropped.
pub struct Agent {
    process: Process,
    pub data: PathBuf,
    pub node_id: String,
    name: String,
    config: Option<PathBuf>,
}

/// Starts `orch agent` on `data`; the process and the node id it printed.
/// Its log is passed through to the test's output, tagged with `name`.
fn spawn_agent(
    server: &Server,
    data: &Path,
    name: &str,
    config: Option<&Path>,
) -> (Process, String) {
    // Supervisors orphaned by a killed agent come to this process rather
    // than to the machine's init.
    static SUBREAPER: std::sync::Once = std::sync::Once::new();
    SUBREAPER.call_once(|| {
        rustix::process::set_child_subreaper(Some(rustix::process::getpid())).unwrap();
    });
    let mut command = Command::new(ORCH);
    command
        .args(["agent", "--server", &server.addr, "--name", name])
        .arg("--data-dir")
        .arg(data);
    if let Some(config) = config {
        command.arg("--config").arg(config);
    }
    command.env("ORCH_LOG", "info");
    let process = Process::start(command, "orch agent: node ", Echo::tagged(name))
        .unwrap_or_else(|e| panic!("{e}"));
    let node_id = process
        .ready_line()
        .split_whitespace()
        .next()
        .unwrap_or_else(|| panic!("no node id in {:?}", process.ready_line()))
        .to_owned();
    (process, node_id)
}

impl Agent {
    pub fn start(server: &Server, data: &Path, name: &str) -> Agent {
        Self::start_with(server, data, name, None)
    }

    /// With `--config FILE` (an agent.toml).
    pub fn start_with(server: &Server, data: &Path, name: &str, config: Option<&Path>) -> Agent {
        let (process, node_id) = spawn_agent(server, data, name, config);
        Agent {
            process,
            data: data.to_owned(),
            node_id,
            name: name.to_owned(),
            config: config.map(Path::to_owned),
        }
    }

    /// A new agent process on the same data dir, which must keep its node id.
    pub fn restart(&mut self, server: &Server) {
        self.kill9();
        let (process, node_id) =
            spawn_agent(server, &self.data, &self.name, self.config.as_deref());
        self.process = process;
        assert_eq!(
            node_id, self.node_id,
            "the node id changed across a restart"
        );
    }

    /// kill -9 the agent alone: its tasks keep running.
    pub fn kill9(&mut self) {
        self.process.kill9();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill9();
        kill_agent_tasks(&self.data);
    }
}

pub use orch_model::now_ms;

/// A server holding nodes to a short TTL, so a dead agent's node goes down
/// within a second or two.
pub fn server(dir: &Path) -> Server {
    server_with_ttl(dir, 1000)
}

pub fn server_with_ttl(dir: &Path, ttl_ms: u64) -> Server {
    std::fs::write(
        dir.join("orch.toml"),
        format!(
            "data_dir = \"data\"\nworkers = 2\n[heartbeat]\nttl_ms = {ttl_ms}\ngrace_ms = 1000\n"
        ),
    )
    .unwrap();
    Server::start(dir)
}

pub fn submit(server: &Server, job: Value) {
    let (status, body) = server.post("/v1/jobs", &json!({ "job": job }));
    assert_eq!(status, 200, "submitting: {body}");
}

pub fn job(id: &str, kind: &str, task: Value, restart_attempts: u32) -> Value {
    json!({
        "id": id, "type": kind,
        "group": [{
            "name": "g", "count": 1,
            "restart": {"attempts": restart_attempts, "delay": "100ms", "interval": "1h", "mode": "fail"},
            "reschedule": {"attempts": 0, "unlimited": false},
            "task": [task],
        }],
    })
}

/// The job's allocations, once `done` holds for them (30 s at most).
pub fn allocs_until(
    server: &Server,
    job: &str,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let v = server.until(&format!("/v1/job/{job}/allocations"), what, |v| {
        v.as_array().is_some_and(|a| done(a))
    });
    v.as_array().unwrap().clone()
}

pub fn status(a: &Value) -> &str {
    a["client_status"].as_str().unwrap_or("")
}

pub fn events(alloc: &Value, task: &str) -> Vec<(String, String)> {
    alloc["task_states"][task]["events"]
        .as_array()
        .map(|e| {
            e.iter()
                .map(|e| {
                    (
                        e["type"].as_str().unwrap_or("").to_owned(),
                        e["message"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}
