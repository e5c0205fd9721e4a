//! End to end with containers: a real `orch server` and real `orch agent`
//! processes whose built-in oci driver runs containers on this machine's
//! Docker engine, from images pushed to a real registry on 127.0.0.1
//! (Debian's docker-registry, started by orch-testkit).

use crate::common::Server;
use crate::common::agent::{
    Agent, allocs_until, events, job, now_ms, server_with_ttl, status, submit,
};
use orch_testkit::{Registry, docker, push_busybox};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Removes every container an agent of this test created, whatever
/// happened (they carry the agent's node id as a label).
struct Containers(Vec<String>);

impl Drop for Containers {
    fn drop(&mut self) {
        for node in &self.0 {
            for id in containers_of("orch.node", node) {
                let _ = Command::new("docker")
                    .args(["rm", "-f", &id])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}

/// Ids of the containers (running or not) whose label `key` is `value`.
fn containers_of(key: &str, value: &str) -> Vec<String> {
    docker(&[
        "ps",
        "-aq",
        "--no-trunc",
        "--filter",
        &format!("label={key}={value}"),
    ])
    .split_whitespace()
    .map(str::to_owned)
    .collect()
}

/// An agent.toml for `dir`: ports on loopback, plus `extra` lines.
fn agent_config(dir: &Path, name: &str, extra: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!("[containers]\nport_bind_address = \"127.0.0.1\"\n{extra}"),
    )
    .unwrap();
    path
}

fn oci(name: &str, image: &str, script: &str) -> Value {
    json!({
        "name": name, "driver": "oci",
        "config": {"image": image, "entrypoint": ["/bin/sh", "-c"], "args": [script]},
        "resources": {"cpu": 100, "memory": 64},
        "kill_timeout": "2s",
    })
}

fn pinned(mut job: Value, node: &str) -> Value {
    job["constraint"] = json!([{"attribute": "${node.unique.name}", "value": node}]);
    job
}

/// What `orch alloc logs` prints for the allocation's task.
fn logs(server: &Server, alloc: &str, task: &str, stderr: bool) -> String {
    let mut args = vec!["alloc", "logs", alloc, task];
    if stderr {
        args.push("--stderr");
    }
    let out = server.orch(&args);
    assert!(
        out.status.success(),
        "orch alloc logs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls the task's stdout until `done` holds for it (30 s at most).
fn logs_until(
    server: &Server,
    alloc: &str,
    task: &str,
    what: &str,
    done: impl Fn(&str) -> bool,
) -> String {
    let started = Instant::now();
    loop {
        let text = logs(server, alloc, task, false);
        if done(&text) {
            return text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}; the log so far:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_container_runs_its_logs_survive_agent_restarts_and_stop_removes_it() {
    let registry = Registry::start();
    let image = push_busybox(&registry, "e2e/busybox:1");
    // The agent pulls it from the registry, not from the local tag.
    docker(&["rmi", &image]);
    let dir = tempfile::tempdir().unwrap();
    let server = server_with_ttl(dir.path(), 3000);
    let config = agent_config(dir.path(), "a1", "");
    let mut agent = Agent::start_with(&server, &dir.path().join("a1"), "a1", Some(&config));
    let _cleanup = Containers(vec![agent.node_id.clone()]);

    // A numbered tick every 200 ms, a line on stderr, and a web page on a
    // published port.
    let script = "echo oops >&2; echo page > /www/index.html; httpd -p 8080 -h /www; \
                  i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done";
    let mut task = oci("web", &image, script);
    task["config"]["ports"] = json!(["8080"]);
    submit(&server, job("web", "service", task, 0));
    let allocs = allocs_until(&server, "web", "the container to run", |a| {
        a.len() == 1 && status(&a[0]) == "running"
    });
    let alloc = allocs[0]["id"].as_str().unwrap().to_owned();
    let ids = containers_of("orch.alloc", &alloc);
    assert_eq!(ids.len(), 1, "one container for the allocation: {ids:?}");
    let container = ids[0].clone();
    let started_at = docker(&["inspect", "--format", "{{.State.StartedAt}}", &container]);

    logs_until(&server, &alloc, "web", "ticks", |t| t.contains("tick 3\n"));
    let err = logs(&server, &alloc, "web", true);
    assert!(err.contains("oops"), "stderr: {err:?}");

    // The published port answers on loopback.
    let port = docker(&["port", &container, "8080/tcp"]);
    let port = port.lines().next().unwrap().rsplit(':').next().unwrap();
    let page = Command::new("curl")
        .args(["-s", &format!("http://127.0.0.1:{port}/index.html")])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&page.stdout), "page\n");

    // kill -9 of the agent, twice: the container runs on, the new agent
    // re-attaches it, and the ticks printed meanwhile reach the log once.
    for round in 1..=2 {
        agent.kill9();
        std::thread::sleep(Duration::from_millis(700));
        let restarted_at = now_ms();
        agent.restart(&server);
        server.until(
            &format!("/v1/allocation/{alloc}"),
            "the container to be re-attached",
            |a| {
                a["task_states"]["web"]["events"]
                    .as_array()
                    .is_some_and(|e| {
                        e.iter().any(|e| {
                            e["type"] == "recovered" && e["time_ms"].as_u64() >= Some(restarted_at)
                        })
                    })
            },
        );
        let after = docker(&["inspect", "--format", "{{.State.StartedAt}}", &container]);
        assert_eq!(after, started_at, "round {round}: the container restarted");
    }
    let text = logs(&server, &alloc, "web", false);
    let last: u64 = text
        .lines()
        .filter_map(|l| l.strip_prefix("tick ")?.parse().ok())
        .max()
        .unwrap();
    let text = logs_until(&server, &alloc, "web", "ticks after the restarts", |t| {
        t.contains(&format!("tick {}\n", last + 5))
    });
    let ticks: Vec<u64> = text
        .lines()
        .filter_map(|l| l.strip_prefix("tick ")?.parse().ok())
        .collect();
    let expected: Vec<u64> = (0..ticks.len() as u64).collect();
    assert_eq!(
        ticks, expected,
        "every tick once and in order, across two agent restarts"
    );
    let allocs = allocs_until(&server, "web", "still running", |a| {
        status(&a[0]) == "running"
    });
    assert_eq!(allocs[0]["task_states"]["web"]["restarts"], 0);

    // Stop: the container is stopped and removed.
    let out = server.orch(&["job", "stop", "web"]);
    assert!(out.status.success());
    let allocs = allocs_until(&server, "web", "the allocation to stop", |a| {
        status(&a[0]) == "complete"
    });
    let kinds: Vec<String> = events(&allocs[0], "web").into_iter().map(|e| e.0).collect();
    assert!(kinds.contains(&"killed".to_owned()), "{kinds:?}");
    let started = Instant::now();
    while !containers_of("orch.alloc", &alloc).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the container was not removed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_batch_container_completes_with_its_exit_code() {
    let registry = Registry::start();
    let image = push_busybox(&registry, "e2e/batch:1");
    let dir = tempfile::tempdir().unwrap();
    let server = server_with_ttl(dir.path(), 3000);
    let config = agent_config(dir.path(), "a1", "");
    let agent = Agent::start_with(&server, &dir.path().join("a1"), "a1", Some(&config));
    let _cleanup = Containers(vec![agent.node_id.clone()]);

    submit(
        &server,
        job(
            "ok",
            "batch",
            oci(
                "t",
                &image,
                "echo done from $ORCH_TASK_NAME in $ORCH_ALLOC_DIR with PATH=$PATH",
            ),
            0,
        ),
    );
    let allocs = allocs_until(&server, "ok", "the batch to complete", |a| {
        a.len() == 1 && status(&a[0]) == "complete"
    });
    let alloc = allocs[0]["id"].as_str().unwrap();
    assert_eq!(
        logs(&server, alloc, "t", false),
        "done from t in /alloc with PATH=/bin\n",
        "the container's own paths and the image's PATH"
    );

    submit(&server, job("bad", "batch", oci("t", &image, "exit 3"), 0));
    let allocs = allocs_until(&server, "bad", "the batch to fail", |a| {
        a.len() == 1 && status(&a[0]) == "failed"
    });
    let terminated: Vec<String> = events(&allocs[0], "t")
        .into_iter()
        .filter(|e| e.0 == "terminated")
        .map(|e| e.1)
        .collect();
    assert!(
        terminated.iter().any(|m| m == "Exit code 3"),
        "{terminated:?}"
    );
}

#[test]
fn privileged_containers_are_refused_unless_the_operator_allows_them() {
    let registry = Registry::start();
    let image = push_busybox(&registry, "e2e/priv:1");
    let dir = tempfile::tempdir().unwrap();
    let server = server_with_ttl(dir.path(), 3000);
    let strict = agent_config(dir.path(), "strict", "");
    let lenient = agent_config(dir.path(), "lenient", "allow_privileged = true\n");
    let a1 = Agent::start_with(&server, &dir.path().join("strict"), "strict", Some(&strict));
    let a2 = Agent::start_with(
        &server,
        &dir.path().join("lenient"),
        "lenient",
        Some(&lenient),
    );
    let _cleanup = Containers(vec![a1.node_id.clone(), a2.node_id.clone()]);

    let mut task = oci("t", &image, "sleep 300");
    task["config"]["privileged"] = json!(true);
    // Two restarts allowed: a refusal must not use them.
    submit(
        &server,
        pinned(job("priv", "service", task.clone(), 2), "strict"),
    );
    let allocs = allocs_until(&server, "priv", "the refusal", |a| {
        a.len() == 1 && status(&a[0]) == "failed"
    });
    let failure = events(&allocs[0], "t")
        .into_iter()
        .find(|e| e.0 == "driver_failure")
        .unwrap_or_else(|| panic!("no driver failure: {:?}", events(&allocs[0], "t")));
    assert!(
        failure.1.contains("privileged") && failure.1.contains("allow_privileged"),
        "the refusal names the setting: {failure:?}"
    );
    assert_eq!(allocs[0]["task_states"]["t"]["restarts"], 0);
    assert!(containers_of("orch.node", &a1.node_id).is_empty());

    // Where the operator allows it, the request reaches the engine. (Docker
    // in a sandbox may still fail to start a privileged container: runc
    // cannot grant capabilities it lacks itself; that failure is the
    // engine's, not the policy's.)
    submit(&server, pinned(job("priv2", "service", task, 0), "lenient"));
    let allocs = allocs_until(&server, "priv2", "the privileged container to start", |a| {
        a.len() == 1 && (status(&a[0]) == "running" || status(&a[0]) == "failed")
    });
    let events = events(&allocs[0], "t");
    if status(&allocs[0]) == "running" {
        let alloc = allocs[0]["id"].as_str().unwrap();
        let ids = containers_of("orch.alloc", alloc);
        assert_eq!(
            docker(&["inspect", "--format", "{{.HostConfig.Privileged}}", &ids[0]]).trim(),
            "true"
        );
    } else {
        let failure = events
            .iter()
            .find(|e| e.0 == "driver_failure")
            .unwrap_or_else(|| panic!("{events:?}"));
        assert!(
            !failure.1.contains("allow_privileged") && failure.1.contains("starting container"),
            "the engine, not the policy, refused it: {failure:?}"
        );
    }
}

#[test]
fn missing_images_and_refused_credentials_fail_with_clear_events() {
    let open = Registry::start();
    let image = push_busybox(&open, "e2e/there:1");
    let locked = Registry::start_with_password("orch", "right-password");
    locked.docker_login();
    let private = push_busybox(&locked, "e2e/private:1");
    docker(&["rmi", &private]);
    let dir = tempfile::tempdir().unwrap();
    let server = server_with_ttl(dir.path(), 3000);
    let config = agent_config(
        dir.path(),
        "a1",
        &format!(
            "[containers.auth.\"{}\"]\nusername = \"orch\"\npassword = \"wrong-password\"\n",
            locked.host()
        ),
    );
    let agent = Agent::start_with(&server, &dir.path().join("a1"), "a1", Some(&config));
    let _cleanup = Containers(vec![agent.node_id.clone()]);

    let missing = image.replace(":1", ":no-such-tag");
    let unreachable = format!("127.0.0.1:{}/e2e/x:1", orch_testkit::free_port());
    for (id, image, expect) in [
        ("missing", missing.as_str(), "no-such-tag"),
        ("private", private.as_str(), "credentials"),
        ("unreachable", unreachable.as_str(), "127.0.0.1"),
    ] {
        submit(&server, job(id, "service", oci("t", image, "sleep 300"), 0));
        let allocs = allocs_until(&server, id, "the failure", |a| {
            a.len() == 1 && status(&a[0]) == "failed"
        });
        let failures: Vec<String> = events(&allocs[0], "t")
            .into_iter()
            .filter(|e| e.0 == "driver_failure")
            .map(|e| e.1)
            .collect();
        assert!(
            failures.iter().any(|m| m.contains(expect)),
            "{id}: the event says what went wrong ({expect:?}): {failures:?}"
        );
        assert!(
            failures.iter().all(|m| !m.contains("wrong-password")),
            "{id}: a password in an event: {failures:?}"
        );
    }
}

#[test]
fn oci_tasks_go_only_to_nodes_whose_engine_answers() {
    let registry = Registry::start();
    let image = push_busybox(&registry, "e2e/placed:1");
    let dir = tempfile::tempdir().unwrap();
    let server = server_with_ttl(dir.path(), 3000);
    let broken = agent_config(
        dir.path(),
        "noengine",
        "endpoint = \"unix:///nonexistent/docker.sock\"\n",
    );
    let a1 = Agent::start_with(
        &server,
        &dir.path().join("noengine"),
        "noengine",
        Some(&broken),
    );
    let _cleanup = Containers(vec![a1.node_id.clone()]);
    server.until("/v1/nodes", "the node to register", |n| {
        n.as_array()
            .is_some_and(|n| n.iter().any(|n| n["status"] == "ready"))
    });
    let node = server.get(&format!("/v1/node/{}", a1.node_id));
    assert_eq!(node["drivers"]["oci"]["healthy"], false, "{node:#}");
    assert_eq!(node["drivers"]["exec"]["healthy"], true, "{node:#}");
    assert!(
        node["drivers"]["oci"]["health_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{node:#}"
    );
    submit(
        &server,
        job("nowhere", "service", oci("t", &image, "sleep 300"), 0),
    );
    std::thread::sleep(Duration::from_secs(1));
    let allocs = server.get("/v1/job/nowhere/allocations");
    assert_eq!(allocs, json!([]), "placed on a node without an engine");

    // A node whose engine answers takes it.
    let config = agent_config(dir.path(), "a2", "");
    let a2 = Agent::start_with(&server, &dir.path().join("a2"), "a2", Some(&config));
    let _cleanup2 = Containers(vec![a2.node_id.clone()]);
    let allocs = allocs_until(&server, "nowhere", "placement on the healthy node", |a| {
        a.len() == 1 && status(&a[0]) == "running"
    });
    assert_eq!(allocs[0]["node_id"], a2.node_id.as_str());
    let node = server.get(&format!("/v1/node/{}", a2.node_id));
    assert!(
        node["attributes"]["driver.oci.version"].is_string(),
        "the engine's version is a node attribute: {node:#}"
    );
}

/// `orch dev`, then the CLI: a container job from the local registry runs,
/// its logs read back, `job stop` removes it.
#[test]
fn orch_dev_runs_a_container_job() {
    let registry = Registry::start();
    let image = push_busybox(&registry, "e2e/dev:1");
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Command::new(crate::common::ORCH)
        .args(["dev", "--listen", "127.0.0.1:0"])
        .env("ORCH_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut lines = BufReader::new(dev.stdout.take().unwrap()).lines();
    let dev = Kill(dev);
    let (addr, node) = loop {
        let line = lines.next().expect("orch dev exited").unwrap();
        if let Some(rest) = line.strip_prefix("orch dev: agent running as node ") {
            let node = rest.split(';').next().unwrap().to_owned();
            let addr = rest.rsplit("ORCH_ADDR=").next().unwrap().to_owned();
            break (addr, node);
        }
    };
    let _cleanup = Containers(vec![node]);
    let orch = |args: &[&str]| {
        let out = Command::new(crate::common::ORCH)
            .args(args)
            .env("ORCH_ADDR", &addr)
            .current_dir(dir.path())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    std::fs::write(
        dir.path().join("hello.toml"),
        format!(
            r#"id = "hello"
type = "service"

[[group]]
name = "web"

[[group.task]]
name = "hello"
driver = "oci"
resources = {{ cpu = 100, memory = 32 }}

[group.task.config]
image = "{image}"
entrypoint = ["/bin/sh", "-c"]
args = ["while true; do echo hello from a container; sleep 1; done"]
"#
        ),
    )
    .unwrap();
    let (code, out, err) = orch(&["job", "run", "hello.toml"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let started = Instant::now();
    let alloc = loop {
        let allocs = crate::common::get(&addr, "/v1/job/hello/allocations");
        if let Some(a) = allocs
            .as_array()
            .and_then(|a| a.iter().find(|a| a["client_status"] == "running"))
        {
            break a["id"].as_str().unwrap().to_owned();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "not running: {allocs:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let started = Instant::now();
    loop {
        let (_, out, _) = orch(&["alloc", "logs", &alloc, "hello"]);
        if out.contains("hello from a container") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no logs: {out}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (code, out, err) = orch(&["job", "stop", "hello"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let started = Instant::now();
    while !containers_of("orch.alloc", &alloc).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the container was not removed"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(dev);
}
