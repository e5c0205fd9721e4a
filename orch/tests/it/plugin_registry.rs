//! Plugins through a real OCI registry (Debian's docker-registry on
//! 127.0.0.1, started by orch-testkit): `orch plugin push` publishes a
//! built-in scorer, `orch plugin add` pulls it by tag, verifies it and pins
//! its digest in the lock file, and a server configured with the pinned
//! reference schedules with it. Then each failure a user can meet, as the
//! CLI and the server report it.

use crate::common::ORCH;
use orch_model::Node;
use orch_testkit::{Echo, Process, Registry, SimAgent, node};
use orch_wire::{Client, ClientOptions};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The CLI with its plugin store and compile cache inside `dir`.
fn orch(dir: &Path, args: &[&str]) -> Output {
    Command::new(ORCH)
        .args(args)
        .env("ORCH_PLUGIN_STORE", dir.join("store"))
        .env("ORCH_CACHE_DIR", dir.join("cache"))
        .env("DOCKER_CONFIG", dir.join("docker"))
        .env_remove("ORCH_REGISTRY_PASSWORD")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn json(o: &Output) -> Value {
    assert_eq!(o.status.code(), Some(0), "{}", text(o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

/// A server on `dir/orch.toml` whose plugin store is `dir/store`; `Err`
/// with what it printed when it refuses to start.
struct Server {
    /// Killed when dropped.
    _process: Process,
    addr: String,
}

impl Server {
    fn start(dir: &Path, scorer: &str, extra: &str) -> Result<Server, String> {
        let config = dir.join("orch.toml");
        std::fs::write(
            &config,
            format!("data_dir = \"data\"\n[scheduler]\nscorer = \"{scorer}\"\n{extra}"),
        )
        .unwrap();
        let mut command = Command::new(ORCH);
        command
            .args(["server", "--listen", "127.0.0.1:0", "--config"])
            .arg(&config)
            .env("ORCH_LOG", "info")
            .env("ORCH_PLUGIN_STORE", dir.join("store"))
            .env("DOCKER_CONFIG", dir.join("docker"));
        let process = Process::start(
            command,
            "orch server: API listening on ",
            Echo::tagged("server"),
        )
        .map_err(|e| e.log)?;
        Ok(Server {
            addr: process.ready_line().to_owned(),
            _process: process,
        })
    }

    /// Registers `node` through its simulated agent; the server must take it.
    fn register(&self, node: Node) {
        let client = Client::new(&self.addr, ClientOptions::agent()).unwrap();
        let id = node.id.clone();
        if let Err(e) = SimAgent::new(&client, node).register() {
            panic!("registering {id}: {e}");
        }
    }

    fn orch(&self, args: &[&str]) -> Output {
        Command::new(ORCH)
            .args(args)
            .env("ORCH_ADDR", &self.addr)
            .output()
            .unwrap()
    }
}

fn job_file(dir: &Path, id: &str, count: u32) -> PathBuf {
    let path = dir.join(format!("{id}.toml"));
    std::fs::write(
        &path,
        format!(
            r#"id = "{id}"
[[group]]
name = "web"
count = {count}

[[group.task]]
name = "server"
driver = "exec"
config = {{ command = "/bin/sleep", args = ["3600"] }}
resources = {{ cpu = 500, memory = 256 }}
"#
        ),
    )
    .unwrap();
    path
}

#[test]
fn a_pushed_scorer_is_added_by_tag_pinned_and_schedules() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let tag = format!("oci://{}/scorers/spread:1.0", registry.host());

    let pushed = json(&orch(
        dir.path(),
        &["plugin", "push", "builtin:spread", &tag, "--json"],
    ));
    let digest = pushed["digest"].as_str().unwrap().to_owned();
    assert_eq!(pushed["world"], "orch:scheduler/scorer@0.1.0", "{pushed}");

    let lock = dir.path().join("orch.lock");
    let added = json(&orch(
        dir.path(),
        &[
            "plugin",
            "add",
            &tag,
            "--lock",
            lock.to_str().unwrap(),
            "--json",
        ],
    ));
    assert_eq!(added["digest"], digest.as_str(), "{added}");
    assert_eq!(added["world"], "orch:scheduler/scorer@0.1.0");
    assert_eq!(added["component"], pushed["component"]);
    let lock_text = std::fs::read_to_string(&lock).unwrap();
    assert!(
        lock_text.contains(&format!("[plugin.\"{tag}\"]")),
        "{lock_text}"
    );
    assert!(
        lock_text.contains(&format!("digest = \"{digest}\"")),
        "{lock_text}"
    );
    let stored = PathBuf::from(added["path"].as_str().unwrap());
    assert!(stored.starts_with(dir.path().join("store")), "{stored:?}");

    // The human output names the digest, the world and the line to paste.
    let out = orch(
        dir.path(),
        &["plugin", "add", &tag, "--lock", lock.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let shown = text(&out);
    assert!(
        shown.contains(&digest) && shown.contains("orch:scheduler/scorer@0.1.0"),
        "{shown}"
    );
    assert!(shown.contains(&format!("{tag}@{digest}")), "{shown}");

    // A server configured with the pinned reference schedules with it.
    let server = Server::start(dir.path(), &format!("{tag}@{digest}"), "").unwrap();
    for n in ["n1", "n2", "n3"] {
        server.register(node(n, 4000, 8192, "linux"));
    }
    let status = crate::common::get(&server.addr, "/v1/status");
    let label = status["scorer"]["label"].as_str().unwrap();
    assert!(label.starts_with("spread"), "{status}");
    let file = job_file(dir.path(), "spread-out", 3);
    let out = server.orch(&["job", "run", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let allocs = crate::common::get(&server.addr, "/v1/job/spread-out/allocations");
    let nodes: std::collections::BTreeSet<&str> = allocs
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["node_id"].as_str().unwrap())
        .collect();
    assert_eq!(allocs.as_array().unwrap().len(), 3, "{allocs}");
    assert!(
        nodes.len() >= 2,
        "the pulled spread scorer spreads: {allocs}"
    );
    drop(server);

    // With the registry gone, the tag still resolves: the lock file's
    // digest, served from the store.
    drop(registry);
    let server = Server::start(dir.path(), &tag, "").unwrap();
    let status = crate::common::get(&server.addr, "/v1/status");
    assert!(
        status["scorer"]["label"]
            .as_str()
            .unwrap()
            .starts_with("spread"),
        "{status}"
    );
}

fn post(addr: &str, path: &str, body: &Value) -> (u16, Value) {
    let resp = ureq::post(&format!("{addr}{path}"))
        .config()
        .http_status_as_error(false)
        .build()
        .header("content-type", "application/json")
        .send(body.to_string())
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.into_body().read_json().unwrap_or(Value::Null))
}

/// `orch plugin add` that must fail; its output.
fn add_fails(dir: &Path, reference: &str) -> String {
    let lock = dir.join("orch.lock");
    let out = orch(
        dir,
        &["plugin", "add", reference, "--lock", lock.to_str().unwrap()],
    );
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!lock.exists(), "nothing is pinned after a failure");
    text(&out)
}

#[test]
fn each_registry_failure_is_a_clear_error() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let host = registry.host();
    let tag = format!("oci://{host}/scorers/binpack:1.0");
    json(&orch(
        dir.path(),
        &["plugin", "push", "builtin:binpack", &tag, "--json"],
    ));

    // A digest the registry does not hold.
    let wrong = format!("{tag}@sha256:{}", "0".repeat(64));
    let e = add_fails(dir.path(), &wrong);
    assert!(
        e.contains("has no manifest sha256:000") && e.contains("is the digest right"),
        "{e}"
    );

    // Nothing listens on the port.
    let port = orch_testkit::free_port();
    let e = add_fails(
        dir.path(),
        &format!("oci://127.0.0.1:{port}/scorers/binpack:1.0"),
    );
    assert!(
        e.contains(&format!("registry 127.0.0.1:{port} is unreachable")),
        "{e}"
    );

    // A tag that was never pushed.
    let e = add_fails(dir.path(), &format!("oci://{host}/scorers/binpack:9.9"));
    assert!(e.contains("has no tag `9.9` of `scorers/binpack`"), "{e}");

    // A malformed reference names the part that is wrong.
    let e = add_fails(dir.path(), &format!("oci://{host}/Scorers/binpack:1.0"));
    assert!(e.contains("the name is wrong"), "{e}");

    // A server naming a tag that was never added refuses to start and says
    // what to run.
    let e = Server::start(dir.path(), &tag, "")
        .err()
        .expect("the server must refuse");
    assert!(
        e.contains("is not in the lock file") && e.contains(&format!("orch plugin add {tag}")),
        "{e}"
    );
}

#[test]
fn bad_credentials_are_refused_without_showing_the_password() {
    let registry = Registry::start_with_password("orch", "right-pw");
    let dir = tempfile::tempdir().unwrap();
    let tag = format!("oci://{}/scorers/binpack:1.0", registry.host());
    let with_password = |pw: &str, args: &[&str]| {
        Command::new(ORCH)
            .args(args)
            .env("ORCH_PLUGIN_STORE", dir.path().join("store"))
            .env("DOCKER_CONFIG", dir.path().join("docker"))
            .env("ORCH_REGISTRY_PASSWORD", pw)
            .output()
            .unwrap()
    };
    let out = with_password(
        "right-pw",
        &[
            "plugin",
            "push",
            "builtin:binpack",
            &tag,
            "--username",
            "orch",
            "--json",
        ],
    );
    let digest = json(&out)["digest"].as_str().unwrap().to_owned();

    let out = with_password("wrong-pw", &["plugin", "add", &tag, "--username", "orch"]);
    assert_ne!(out.status.code(), Some(0));
    let e = text(&out);
    assert!(e.contains("refused the credentials of user `orch`"), "{e}");
    assert!(!e.contains("wrong-pw"), "{e}");

    // Without any credentials: told how to give some.
    let e = add_fails(dir.path(), &tag);
    assert!(
        e.contains("wants credentials") && e.contains("docker login"),
        "{e}"
    );

    // The server pulls with [registry."HOST"] credentials from the config.
    let pinned = format!("{tag}@{digest}");
    let extra = format!(
        "[registry.\"{}\"]\nusername = \"orch\"\npassword_env = \"ORCH_TEST_REGISTRY_PW\"\n",
        registry.host()
    );
    let e = Server::start(dir.path(), &pinned, &extra)
        .err()
        .expect("variable unset");
    assert!(e.contains("ORCH_TEST_REGISTRY_PW, which is not set"), "{e}");
    let extra = format!(
        "[registry.\"{}\"]\nusername = \"orch\"\npassword = \"right-pw\"\n",
        registry.host()
    );
    let server = Server::start(dir.path(), &pinned, &extra).unwrap();
    let status = crate::common::get(&server.addr, "/v1/status");
    assert!(
        status["scorer"]["label"]
            .as_str()
            .unwrap()
            .starts_with("binpack"),
        "{status}"
    );
}

#[test]
fn a_container_image_is_not_added() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    orch_testkit::push_busybox(&registry, "tools/busybox:1");
    let e = add_fails(
        dir.path(),
        &format!("oci://{}/tools/busybox:1", registry.host()),
    );
    assert!(
        e.contains("is not a WASM component artifact") && e.contains("container image"),
        "{e}"
    );
}

impl Server {
    fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        post(&self.addr, path, body)
    }

    /// The job's allocations once `done` holds for them (30 s at most).
    fn allocs_until(&self, job: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let started = std::time::Instant::now();
        loop {
            let v = crate::common::get(&self.addr, &format!("/v1/job/{job}/allocations"));
            let allocs = v.as_array().cloned().unwrap_or_default();
            if done(&allocs) {
                return allocs;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(30),
                "timed out; last allocations: {v:#}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

#[test]
fn an_agent_loads_a_driver_pinned_in_a_registry_and_runs_a_task_with_it() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let tag = format!("oci://{}/drivers/exec:1.0", registry.host());
    let pushed = json(&orch(
        dir.path(),
        &["plugin", "push", "builtin:exec", &tag, "--json"],
    ));
    let pinned = pushed["pinned"].as_str().unwrap().to_owned();
    assert_eq!(pushed["world"], "orch:driver/driver@0.1.0", "{pushed}");

    let server = Server::start(dir.path(), "binpack", "").unwrap();
    let agent_dir = dir.path().join("agent");
    std::fs::create_dir_all(&agent_dir).unwrap();
    let config = agent_dir.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "[driver.exec]\nplugin = \"{pinned}\"\ngrants = [\"process\", \"artifacts\", \"log\"]\n"
        ),
    )
    .unwrap();
    // Its own, empty store: the agent pulls the driver at start.
    let mut command = Command::new(ORCH);
    command
        .args([
            "agent",
            "--server",
            &server.addr,
            "--name",
            "a1",
            "--config",
        ])
        .arg(&config)
        .arg("--data-dir")
        .arg(agent_dir.join("data"))
        .env("ORCH_LOG", "info")
        .env("ORCH_PLUGIN_STORE", agent_dir.join("store"))
        .env("DOCKER_CONFIG", dir.path().join("docker"));
    let agent = Process::start(command, "orch agent: node ", Echo::tagged("agent"))
        .unwrap_or_else(|e| panic!("{e}"));
    let stored = agent_dir.join("store/sha256").join(format!(
        "{}.wasm",
        &pushed["component"].as_str().unwrap()["sha256:".len()..]
    ));
    assert!(
        stored.is_file(),
        "the agent keeps the pulled driver in its store"
    );

    let (status, body) = server.post(
        "/v1/jobs",
        &serde_json::json!({ "job": {
            "id": "once", "type": "batch",
            "group": [{
                "name": "g", "count": 1,
                "restart": {"attempts": 0, "delay": "100ms", "interval": "1h", "mode": "fail"},
                "reschedule": {"attempts": 0, "unlimited": false},
                "task": [{
                    "name": "work", "driver": "exec",
                    "config": {"command": "/bin/sh", "args": ["-c", "echo done"]},
                    "resources": {"cpu": 100, "memory": 64},
                }],
            }],
        }}),
    );
    assert_eq!(status, 200, "{body}");
    let allocs = server.allocs_until("once", |a| {
        a.len() == 1
            && a[0]["client_status"]
                .as_str()
                .is_some_and(|s| s != "pending" && s != "running")
    });
    assert_eq!(allocs[0]["client_status"], "complete", "{:#}", allocs[0]);
    drop(agent);

    // A tag alone is refused with what to do.
    std::fs::write(
        &config,
        format!(
            "[driver.exec]\nplugin = \"{tag}\"\ngrants = [\"process\", \"artifacts\", \"log\"]\n"
        ),
    )
    .unwrap();
    let out = Command::new(ORCH)
        .args(["agent", "--server", &server.addr, "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(agent_dir.join("data2"))
        .env("ORCH_PLUGIN_STORE", agent_dir.join("store"))
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let e = text(&out);
    assert!(
        e.contains("pinned by digest") && e.contains(&format!("orch plugin add {tag}")),
        "{e}"
    );
}
