//! A real `orch agent` process beside a [`Server`], and what the agent
//! tests share: submitting jobs, waiting on allocations, reading events.

use super::{ORCH, Server};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A real `orch agent` process; killed (with its tasks) when dropped.
pub struct Agent {
    child: Child,
    pub data: PathBuf,
    pub node_id: String,
    name: String,
    config: Option<PathBuf>,
}

/// Starts `orch agent` on `data`; the process and the node id it printed.
/// Its log is passed through to the test's output, tagged with `name`.
fn spawn_agent(server: &Server, data: &Path, name: &str, config: Option<&Path>) -> (Child, String) {
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
    let mut child = command
        .env("ORCH_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let node_id = line
        .strip_prefix("orch agent: node ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| {
            let mut err = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            panic!("unexpected first line {line:?}; stderr: {err}")
        })
        .to_owned();
    let stderr = child.stderr.take().unwrap();
    let tag = name.to_owned();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[{tag}] {line}");
        }
    });
    (child, node_id)
}

impl Agent {
    pub fn start(server: &Server, data: &Path, name: &str) -> Agent {
        Self::start_with(server, data, name, None)
    }

    /// With `--config FILE` (an agent.toml).
    pub fn start_with(server: &Server, data: &Path, name: &str, config: Option<&Path>) -> Agent {
        let (child, node_id) = spawn_agent(server, data, name, config);
        Agent {
            child,
            data: data.to_owned(),
            node_id,
            name: name.to_owned(),
            config: config.map(Path::to_owned),
        }
    }

    /// A new agent process on the same data dir, which must keep its node id.
    pub fn restart(&mut self, server: &Server) {
        self.kill9();
        let (child, node_id) = spawn_agent(server, &self.data, &self.name, self.config.as_deref());
        self.child = child;
        assert_eq!(
            node_id, self.node_id,
            "the node id changed across a restart"
        );
    }

    /// kill -9 the agent alone: its tasks keep running.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Pids of the tasks the agent's records say it runs.
    pub fn task_pids(&self) -> Vec<i64> {
        let mut pids = Vec::new();
        let Ok(entries) = std::fs::read_dir(self.data.join("agent/allocs")) else {
            return pids;
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
                {
                    pids.push(pid);
                }
            }
        }
        pids
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill9();
        for pid in self.task_pids() {
            // Only a process still working in this agent's data dir: a pid
            // of a task that ended may belong to anything by now.
            let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_default();
            if cwd.starts_with(&self.data) {
                let _ = Command::new("kill")
                    .args(["-9", "--", &format!("-{pid}")])
                    .status();
            }
        }
    }
}

pub use orch_model::now_ms;


pub fn alive(pid: i64) -> bool {
    // A zombie is dead for our purposes.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|r| !r.trim_start().starts_with('Z'))
    })
}

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
