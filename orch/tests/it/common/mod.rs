//! A real `orch server` for the tests that drive it from outside: its own
//! process on loopback (orch-testkit's [`Process`]), its own data dir and
//! config file, nodes registered through the HTTP API by simulated agents,
//! killed when dropped.

use orch_model::Node;
use orch_testkit::{Echo, Process, SimAgent};
use orch_wire::{Alive, Client, ClientOptions};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output};
use std::time::{Duration, Instant};

pub mod agent;

pub const ORCH: &str = env!("CARGO_BIN_EXE_orch");

pub struct Server {
    process: Process,
    /// What registers nodes: the client an agent uses.
    client: Client,
    pub addr: String,
    pub config: PathBuf,
    pub data: PathBuf,
}

impl Server {
    /// Starts a server on `dir/orch.toml` (written with the binpack scorer
    /// unless it is there already) with its data in `dir/data`.
    pub fn start(dir: &Path) -> Server {
        Self::start_with(dir, true)
    }

    /// Like [`Self::start`]; without a config file when `config` is false
    /// (every default, data in `dir/data` by `--data-dir`).
    pub fn start_with(dir: &Path, with_config: bool) -> Server {
        let config = dir.join("orch.toml");
        if with_config && !config.exists() {
            write_config(&config, "binpack");
        }
        let data = dir.join("data");
        let mut command = Command::new(ORCH);
        command.arg("server");
        if with_config {
            command.arg("--config").arg(&config);
        } else {
            command.arg("--data-dir").arg(&data);
        }
        command
            .args(["--listen", "127.0.0.1:0"])
            .env("ORCH_LOG", "info");
        // The server prints where its API listens once it is up.
        let process = Process::start(
            command,
            "orch server: API listening on ",
            Echo::tagged("server"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let addr = process.ready_line().to_owned();
        let client = Client::new(&addr, ClientOptions::agent()).unwrap();
        Server {
            process,
            client,
            addr,
            config,
            data,
        }
    }

    pub fn kill9(mut self) {
        self.process.kill9();
    }

    /// Waits up to 30 s for the server to log a line containing `text`.
    pub fn logged(&self, text: &str) -> String {
        self.process.logged(text)
    }

    pub fn sighup(&self) {
        self.signal("HUP");
    }

    pub fn signal(&self, name: &str) {
        self.process.signal(name);
    }

    /// Waits up to 30 s for the process to exit; its exit status.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.process.exited()
    }

    pub fn get(&self, path: &str) -> Value {
        get(&self.addr, path)
    }

    pub fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let resp = ureq::post(&format!("{}{path}", self.addr))
            .config()
            .http_status_as_error(false)
            .build()
            .header("content-type", "application/json")
            .send(body.to_string())
            .unwrap();
        let status = resp.status().as_u16();
        let body: Value = resp.into_body().read_json().unwrap_or(Value::Null);
        (status, body)
    }

    /// The simulated agent of `node`, talking to this server.
    pub fn agent(&self, node: Node) -> SimAgent {
        SimAgent::new(&self.client, node)
    }

    /// Registers `node` through its simulated agent and insists the server
    /// took it; what the server answered.
    pub fn register(&self, node: &Node) -> Alive {
        self.agent(node.clone())
            .register()
            .unwrap_or_else(|e| panic!("registering {}: {e}", node.id))
    }

    /// The `orch` CLI pointed at this server through `ORCH_ADDR`.
    pub fn orch(&self, args: &[&str]) -> Output {
        Command::new(ORCH)
            .args(args)
            .env("ORCH_ADDR", &self.addr)
            .output()
            .unwrap()
    }

    /// Polls `path` until `done` holds, for up to 30 s.
    pub fn until(&self, path: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let v = self.get(path);
            if done(&v) {
                return v;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "timed out waiting for {what}; last {path}: {v:#}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

pub fn get(addr: &str, path: &str) -> Value {
    ureq::get(&format!("{addr}{path}"))
        .call()
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
        .into_body()
        .read_json()
        .unwrap()
}

pub fn write_config(path: &Path, scorer: &str) {
    std::fs::write(
        path,
        format!(
            "data_dir = \"data\"\nworkers = 2\n[scheduler]\nscorer = \"{scorer}\"\n[state]\ndurability = \"full\"\n"
        ),
    )
    .unwrap();
}

/// `dir/ID.toml`: a job of one group `group` of `count` tasks that sleep
/// for an hour, each asking 500 MHz and `memory` MiB; `extra` goes at the
/// top level.
pub fn sleep_job_file(
    dir: &Path,
    id: &str,
    group: &str,
    count: u32,
    memory: u64,
    extra: &str,
) -> PathBuf {
    let path = dir.join(format!("{id}.toml"));
    std::fs::write(
        &path,
        format!(
            r#"id = "{id}"
{extra}
[[group]]
name = "{group}"
count = {count}

[[group.task]]
name = "server"
driver = "exec"
config = {{ command = "/bin/sleep", args = ["3600"] }}
resources = {{ cpu = 500, memory = {memory} }}
"#
        ),
    )
    .unwrap();
    path
}
