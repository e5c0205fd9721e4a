//! A real `orch server` for the tests that drive it from outside: its own
//! process on loopback, its own data dir and config file, nodes registered
//! through the HTTP API (there is no agent yet), killed when dropped.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub mod agent;

pub const ORCH: &str = env!("CARGO_BIN_EXE_orch");

pub struct Server {
    child: Child,
    /// What the server logged so far.
    log: Arc<Mutex<String>>,
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
        let mut child = command
            .args(["--listen", "127.0.0.1:0"])
            .env("ORCH_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The server prints where its API listens once it is up.
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("orch server: API listening on ")
            .unwrap_or_else(|| {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                panic!("unexpected first line {line:?}; stderr: {err}")
            })
            .to_owned();
        // Drain stderr so the server never blocks on a full pipe.
        let log = Arc::new(Mutex::new(String::new()));
        if let Some(stderr) = child.stderr.take() {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    eprintln!("[server] {line}");
                    log.lock().unwrap().push_str(&(line + "\n"));
                }
            });
        }
        Server {
            child,
            log,
            addr,
            config,
            data,
        }
    }

    pub fn kill9(mut self) {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
    }

    /// Waits up to 30 s for the server to log a line containing `text`.
    pub fn logged(&self, text: &str) -> String {
        let started = Instant::now();
        loop {
            let log = self.log.lock().unwrap().clone();
            if let Some(line) = log.lines().find(|l| l.contains(text)) {
                return line.to_owned();
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the server never logged {text:?}; it logged:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn sighup(&self) {
        self.signal("HUP");
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits up to 30 s for the process to exit; its exit status.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
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

    /// Registers `node` and insists the server took it.
    pub fn register(&self, node: &Value) {
        let (status, body) = self.post("/v1/nodes", node);
        assert_eq!(status, 200, "registering {node}: {body}");
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

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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

/// A ready node with the `exec` driver, named as its id.
pub fn node(id: &str, cpu: u32, memory: u64, os: &str) -> Value {
    json!({
        "id": id, "name": id,
        "resources": {"cpu": cpu, "memory": memory, "disk": 20000},
        "attributes": {"os.name": os, "kernel.name": os},
        "drivers": {"exec": {"detected": true, "healthy": true}},
    })
}
