//! The `containers` capability against the real Docker engine and a real
//! registry (orch-testkit): images built FROM scratch around busybox, pulled
//! from a `docker-registry` on 127.0.0.1.
//!
//! Every container here is labelled with a node id starting `testB-` and
//! removed by a guard when the test ends, however it ends; images pulled
//! here are removed the same way.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use orch_agent::{
    ContainerSettings, HostConfig, LogStream, NodeHost, RegistryAuth, ShimCommand, read_log,
};
use orch_plugin_runtime::{
    CapabilityError, ContainerSpec, DriverHost, ExitStatus, Mount, PortMapping, ProcessLimits,
    TaskRef,
};
use orch_testkit::{Registry, docker};

const PATIENCE: Duration = Duration::from_secs(60);
/// The image most tests run, built here once per test process.
const IMAGE: &str = "orch-testb/busybox:latest";

fn image() -> &'static str {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| orch_testkit::build_image(IMAGE, 0));
    IMAGE
}

fn config(data: &Path) -> HostConfig {
    HostConfig {
        data_dir: data.to_owned(),
        shim: ShimCommand {
            program: PathBuf::from(env!("CARGO_BIN_EXE_orch-task-shim")),
            args: Vec::new(),
        },
        log_max_bytes: 1024 * 1024,
        log_max_files: 5,
        artifact_max_bytes: 1024 * 1024,
    }
}

/// Settings for tests: ports on 127.0.0.1 and no Docker config file, so
/// nobody's `docker login` leaks in.
fn settings(data: &Path) -> ContainerSettings {
    ContainerSettings {
        port_bind_address: "127.0.0.1".to_owned(),
        docker_config: Some(data.join("no-docker-config.json")),
        ..ContainerSettings::default()
    }
}

/// A node id of its own per call, and a guard that removes its containers.
struct Node {
    id: String,
}

impl Node {
    fn new() -> Node {
        static N: AtomicUsize = AtomicUsize::new(0);
        Node {
            id: format!(
                "testB-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::SeqCst)
            ),
        }
    }

    fn host(&self, data: &Path, settings: ContainerSettings) -> NodeHost {
        NodeHost::with_containers(config(data), &self.id, settings).unwrap()
    }

    fn containers(&self) -> Vec<String> {
        docker(&[
            "ps",
            "-aq",
            "--no-trunc",
            "--filter",
            &format!("label=orch.node={}", self.id),
        ])
        .lines()
        .map(str::to_owned)
        .collect()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        for id in self.containers() {
            let _ = std::process::Command::new("docker")
                .args(["rm", "-f", &id])
                .output();
        }
    }
}

/// Removes an image this test pulled.
struct PulledImage(String);

impl Drop for PulledImage {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["rmi", "-f", &self.0])
            .output();
    }
}

fn task(name: &str) -> TaskRef {
    TaskRef {
        alloc_id: format!("{name}-{}", std::process::id()),
        task: "main".to_owned(),
    }
}

fn sh(script: &str) -> ContainerSpec {
    ContainerSpec {
        image: image().to_owned(),
        command: Some(vec!["/bin/sh".into(), "-c".into(), script.into()]),
        ..ContainerSpec::default()
    }
}

fn wait_exit(host: &NodeHost, id: &str) -> ExitStatus {
    host.wait_container(id, PATIENCE)
        .unwrap()
        .expect("the container did not end")
}

fn log_text(data: &Path, task: &TaskRef, stream: LogStream) -> String {
    let chunk = read_log(data, &task.alloc_id, &task.task, stream, None, 1 << 20).unwrap();
    String::from_utf8(chunk.data).unwrap()
}

fn run(host: &NodeHost, task: &TaskRef, spec: ContainerSpec) -> String {
    let id = host.create_container(task, spec).unwrap();
    host.start_container(&id).unwrap();
    id
}

#[test]
fn a_container_runs_with_the_task_layout_and_its_output_lands_in_the_logs() {
    let data = tempfile::tempdir().unwrap();
    let node = Node::new();
    let host = node.host(data.path(), settings(data.path()));
    let t = task("run");
    let mut spec = sh(
        "echo out-1; echo err-1 >&2; echo \"x=$X cwd=$(pwd) user=$(id -u)\"; \
         echo hi > /local/note; echo shared > /alloc/shared; ls -d /secrets; exit 3",
    );
    spec.env.push(("X".into(), "from-env".into()));
    spec.working_dir = Some("/tmp".into());
    let id = run(&host, &t, spec);

    let labels = docker(&[
        "inspect",
        "--format",
        "{{.Name}} {{index .Config.Labels \"orch.node\"}} {{index .Config.Labels \"orch.alloc\"}} {{index .Config.Labels \"orch.task\"}}",
        &id,
    ]);
    assert_eq!(
        labels.trim(),
        format!("/orch-main-{} {} {} main", t.alloc_id, node.id, t.alloc_id)
    );
    let exit = wait_exit(&host, &id);
    assert_eq!(exit.exit_code, Some(3));
    assert!(!exit.oom_killed);
    assert!(exit.finished_at_ms > 0);
    assert_eq!(
        log_text(data.path(), &t, LogStream::Stdout),
        "out-1\nx=from-env cwd=/tmp user=0\n/secrets\n"
    );
    assert_eq!(log_text(data.path(), &t, LogStream::Stderr), "err-1\n");
    let alloc = data.path().join("allocs").join(&t.alloc_id);
    assert_eq!(
        std::fs::read_to_string(alloc.join("main/local/note")).unwrap(),
        "hi\n"
    );
    assert_eq!(
        std::fs::read_to_string(alloc.join("alloc/shared")).unwrap(),
        "shared\n",
        "/alloc is the allocation's shared directory"
    );

    assert_eq!(host.inspect_container(&id).unwrap(), Some(false));
    host.remove_container(&id, true).unwrap();
    assert_eq!(host.inspect_container(&id).unwrap(), None);
    assert!(node.containers().is_empty());

    // The user and the image's own command (args only).
    let as_user = run(
        &host,
        &t,
        ContainerSpec {
            image: image().to_owned(),
            args: vec!["/bin/sh".into(), "-c".into(), "echo user=$(id -u)".into()],
            user: Some("1000".into()),
            ..ContainerSpec::default()
        },
    );
    assert_eq!(wait_exit(&host, &as_user).exit_code, Some(0));
    assert!(log_text(data.path(), &t, LogStream::Stdout).ends_with("user=1000\n"));
    host.remove_container(&as_user, true).unwrap();
    // Removing what is gone is fine (a destroy after a restart).
    host.remove_container(&id, true).unwrap();
}

#[test]
fn a_host_without_an_engine_says_so() {
    let data = tempfile::tempdir().unwrap();
    let host = NodeHost::new(config(data.path())).unwrap();
    let err = host.engine_info().unwrap_err();
    assert!(err.to_string().contains("no container engine"), "{err}");
}

#[test]
fn engine_info_names_the_engine_and_an_unreachable_one_fails_fast() {
    let data = tempfile::tempdir().unwrap();
    let node = Node::new();
    let info = node
        .host(data.path(), settings(data.path()))
        .engine_info()
        .unwrap();
    assert_eq!(info.name, "docker");
    assert!(!info.version.is_empty());
    assert_eq!(info.os, "linux");
    assert!(!info.arch.is_empty());
    let server_api = docker(&["version", "--format", "{{.Server.APIVersion}}"]);
    assert_eq!(info.api_version, server_api.trim());

    let gone = ContainerSettings {
        endpoint: Some(format!("unix://{}/no.sock", data.path().display())),
        ..settings(data.path())
    };
    let started = Instant::now();
    let err = node.host(data.path(), gone).engine_info().unwrap_err();
    assert!(matches!(err, CapabilityError::Failed(_)), "{err:?}");
    assert!(err.to_string().contains("no.sock"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn each_policy_refusal_names_its_setting_and_nothing_reaches_the_engine() {
    let data = tempfile::tempdir().unwrap();
    let node = Node::new();
    let closed = node.host(data.path(), settings(data.path()));
    let shared = tempfile::tempdir().unwrap();
    std::fs::write(shared.path().join("file"), "from-host\n").unwrap();
    let t = task("policy");
    let alloc = data.path().join("allocs").join(&t.alloc_id);
    let local = alloc.join(&t.task).join("local");
    std::fs::create_dir_all(local.join("data")).unwrap();
    std::fs::write(local.join("data/in"), "inside\n").unwrap();
    std::os::unix::fs::symlink("/etc", local.join("escape")).unwrap();

    let mount = |source: &str, target: &str| Mount {
        source: source.into(),
        target: target.into(),
        read_only: true,
    };
    let cat = "cat /m/* 2>/dev/null; true";
    let cases: Vec<(&str, ContainerSpec)> = vec![
        (
            "allow_privileged",
            ContainerSpec {
                privileged: true,
                ..sh(cat)
            },
        ),
        (
            "allow_host_network",
            ContainerSpec {
                network_mode: "host".into(),
                ..sh(cat)
            },
        ),
        (
            "allow_host_pid",
            ContainerSpec {
                host_pid: true,
                ..sh(cat)
            },
        ),
        (
            "allow_host_ipc",
            ContainerSpec {
                host_ipc: true,
                ..sh(cat)
            },
        ),
        (
            "allowed_host_paths",
            ContainerSpec {
                mounts: vec![mount(shared.path().to_str().unwrap(), "/m")],
                ..sh(cat)
            },
        ),
    ];
    for (setting, spec) in &cases {
        match closed.create_container(&t, spec.clone()) {
            Err(CapabilityError::Denied(m)) => {
                assert!(m.contains(setting) && m.contains("agent.toml"), "{m}")
            }
            other => panic!("{setting}: {other:?}"),
        }
    }
    // Only `alloc` and `local/…` name directories of the task: the
    // allocation's root holds every task's logs, secrets and the agent's
    // own files.
    for escape in [
        "local/escape",
        "../..",
        "local/../..",
        "logs",
        ".orch",
        "main",
        "main/secrets",
        "alloc/sub",
        "data",
    ] {
        let spec = ContainerSpec {
            mounts: vec![mount(escape, "/m")],
            ..sh(cat)
        };
        assert!(
            matches!(
                closed.create_container(&t, spec),
                Err(CapabilityError::Denied(_))
            ),
            "{escape}"
        );
    }
    assert!(
        node.containers().is_empty(),
        "a refused request reached the engine"
    );

    // The task's own directories need no permission.
    let inside = ContainerSpec {
        mounts: vec![mount("local/data", "/m")],
        ..sh(cat)
    };
    let id = run(&closed, &t, inside);
    assert_eq!(wait_exit(&closed, &id).exit_code, Some(0));
    assert_eq!(log_text(data.path(), &t, LogStream::Stdout), "inside\n");
    closed.remove_container(&id, true).unwrap();

    // Each one allowed by its setting.
    let open = node.host(
        data.path(),
        ContainerSettings {
            allow_privileged: true,
            allow_host_network: true,
            allow_host_pid: true,
            allow_host_ipc: true,
            allowed_host_paths: vec![shared.path().to_owned()],
            ..settings(data.path())
        },
    );
    // The field of `docker inspect` each allowed setting shows in.
    let expected = [
        (0, "true"),
        (1, "host"),
        (2, "host"),
        (3, "host"),
        (4, "/m"),
    ];
    for ((setting, spec), expected) in cases.into_iter().zip(expected) {
        let id = open
            .create_container(&t, spec)
            .unwrap_or_else(|e| panic!("{setting} allowed, yet: {e}"));
        let shown = docker(&[
            "inspect",
            "--format",
            "{{.HostConfig.Privileged}}|{{.HostConfig.NetworkMode}}|{{.HostConfig.PidMode}}|{{.HostConfig.IpcMode}}|{{range .Mounts}}{{.Destination}},{{end}}",
            &id,
        ]);
        let fields: Vec<&str> = shown.trim().split('|').collect();
        assert!(
            fields[expected.0].contains(expected.1),
            "{setting}: {shown}"
        );
        // This machine's engine cannot start privileged containers (runc
        // may not apply every capability here); the policy let it through.
        if setting != "allow_privileged" {
            open.start_container(&id).unwrap();
            assert_eq!(wait_exit(&open, &id).exit_code, Some(0), "{setting}");
        }
        open.remove_container(&id, true).unwrap();
    }
    assert!(log_text(data.path(), &t, LogStream::Stdout).contains("from-host"));
}

#[test]
fn another_agents_container_is_not_found() {
    let data = tempfile::tempdir().unwrap();
    let mine = Node::new();
    let theirs = Node::new();
    let host = mine.host(data.path(), settings(data.path()));
    let other = theirs.host(data.path(), settings(data.path()));
    let t = task("ownership");
    let id = run(&host, &t, sh("sleep 30"));
    let refused = |r: Result<(), CapabilityError>, what: &str| match r {
        Err(CapabilityError::NotFound(m)) => assert!(m.contains("of this agent"), "{what}: {m}"),
        other => panic!("{what}: {other:?}"),
    };
    refused(other.start_container(&id), "start");
    refused(other.kill_container(&id, "SIGKILL"), "kill");
    refused(
        other.stop_container(&id, "SIGTERM", Duration::from_secs(1)),
        "stop",
    );
    refused(other.remove_container(&id, true), "remove");
    refused(other.inspect_container(&id).map(drop), "inspect");
    refused(other.wait_container(&id, Duration::ZERO).map(drop), "wait");
    refused(other.container_stats(&id).map(drop), "stats");
    refused(other.container_ports(&id).map(drop), "ports");
    // By name too.
    refused(
        other
            .inspect_container(&format!("orch-main-{}", t.alloc_id))
            .map(drop),
        "inspect by name",
    );
    assert_eq!(host.inspect_container(&id).unwrap(), Some(true));
    // The other agent cannot take the name over either.
    let err = other.create_container(&t, sh("true")).unwrap_err();
    assert!(err.to_string().contains("not this agent's"), "{err}");
    assert_eq!(host.inspect_container(&id).unwrap(), Some(true));
    host.remove_container(&id, true).unwrap();
}

#[test]
fn create_removes_a_leftover_container_of_the_same_task() {
    let data = tempfile::tempdir().unwrap();
    let node = Node::new();
    let host = node.host(data.path(), settings(data.path()));
    let t = task("leftover");
    let first = run(&host, &t, sh("sleep 30"));
    let second = host.create_container(&t, sh("echo again")).unwrap();
    assert_ne!(first, second);
    assert_eq!(host.inspect_container(&first).unwrap(), None);
    assert_eq!(node.containers(), vec![second]);
}

#[test]
fn stop_kills_a_container_that_ignores_its_signal_after_the_timeout() {
    let data = tempfile::tempdir().unwrap();
    let node = Node::new();
    let host = node.host(data.path(), settings(data.path()));
    let t = task("stop");
    let id = run(
        &host,
        &t,
        sh("trap '' TERM; echo ready; while true; do sleep 1; done"),
    );
    assert_eq!(
        host.wait_container(&id, Duration::from_millis(300))
            .unwrap(),
        None
    );
    let started = Instant::now();
    host.stop_container(&id, "SIGTERM", Duration::from_secs(2))
        .unwrap();
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(2), "stopped after {took:?}");
    let exit = wait_exit(&host, &id);
    assert_eq!(exit.exit_code, Some(137));
    // Stopping an exited container is fine.
    host.stop_container(&id, "SIGTERM", Duration::from_secs(1))
        .unwrap();
    assert_eq!(log_text(data.path(), &t, LogStream::Stdout), "ready\n");
}

#[test]
fn kill_delivers_a_signal_by_name() {
    let data = tempfile::tempdir().unwrap();
    let node = Node::new();
    let host = node.host(data.path(), settings(data.path()));
    let t = task("hup");
    let id = run(
        &host,
        &t,
        sh("trap 'echo got-hup; exit 0' HUP; echo ready; while true; do sleep 0.1; done"),
    );
    let deadline = Instant::now() + PATIENCE;
    while !log_text(data.path(), &t, LogStream::Stdout).contains("ready") {
        assert!(Instant::now() < deadline, "the container never got ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    host.kill_container(&id, "SIGHUP").unwrap();
    assert_eq!(wait_exit(&host, &id).exit_code, Some(0));
    assert_eq!(
        log_text(data.path(), &t, LogStream::Stdout),
        "ready\ngot-hup\n"
    );
    let err = host.kill_container(&id, "SIGHUP").unwrap_err();
    assert!(err.to_string().contains("not running"), "{err}");
    assert!(host.kill_container(&id, "HUP; rm -rf /").is_err());
}

#[test]
fn a_new_host_picks_the_log_copy_up_without_duplicating_or_losing_a_line() {
    let data = tempfile::tempdir().unwrap();
    let node = Node::new();
    let t = task("restart");
    let lines = 80;
    let id = {
        let host = node.host(data.path(), settings(data.path()));
        let id = run(
            &host,
            &t,
            sh(&format!(
                "i=0; while [ $i -lt {lines} ]; do echo line-$i; echo err-$i >&2; i=$((i+1)); sleep 0.05; done"
            )),
        );
        std::thread::sleep(Duration::from_millis(1500));
        id
        // The agent goes away here, mid-output.
    };
    let copied = log_text(data.path(), &t, LogStream::Stdout);
    assert!(copied.contains("line-0\n"), "{copied}");
    assert!(
        !copied.contains(&format!("line-{}\n", lines - 1)),
        "all copied already"
    );
    std::thread::sleep(Duration::from_millis(1000));
    let host = node.host(data.path(), settings(data.path()));
    // What the driver's recover calls.
    assert!(host.inspect_container(&id).unwrap().is_some());
    assert_eq!(wait_exit(&host, &id).exit_code, Some(0));
    let expected =
        |prefix: &str| -> String { (0..lines).map(|i| format!("{prefix}-{i}\n")).collect() };
    assert_eq!(
        log_text(data.path(), &t, LogStream::Stdout),
        expected("line")
    );
    assert_eq!(
        log_text(data.path(), &t, LogStream::Stderr),
        expected("err")
    );

    // A third agent after the container ended copies nothing again.
    drop(host);
    let host = node.host(data.path(), settings(data.path()));
    assert_eq!(host.inspect_container(&id).unwrap(), Some(false));
    assert!(wait_exit(&host, &id).exit_code == Some(0));
    assert_eq!(
        log_text(data.path(), &t, LogStream::Stdout),
        expected("line")
    );
}

#[test]
fn a_memory_limit_is_enforced_and_the_oom_kill_reported() {
    let data = tempfile::tempdir().unwrap();
    let node = Node::new();
    let host = node.host(data.path(), settings(data.path()));
    let t = task("oom");
    let mut spec = sh("x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done");
    spec.limits = ProcessLimits {
        cpu_mhz: 100,
        memory_mib: 16,
    };
    let id = run(&host, &t, spec);
    let memory = docker(&[
        "inspect",
        "--format",
        "{{.HostConfig.Memory}} {{.HostConfig.CpuShares}}",
        &id,
    ]);
    assert_eq!(memory.trim(), format!("{} 100", 16 << 20));
    let exit = wait_exit(&host, &id);
    assert!(exit.oom_killed, "{exit:?}");
    assert_eq!(exit.exit_code, Some(137));
}

#[test]
fn stats_report_cpu_time_and_memory() {
    let data = tempfile::tempdir().unwrap();
    let node = Node::new();
    let host = node.host(data.path(), settings(data.path()));
    let t = task("stats");
    let id = run(
        &host,
        &t,
        sh("i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; sleep 30"),
    );
    std::thread::sleep(Duration::from_millis(500));
    let stats = host.container_stats(&id).unwrap();
    assert!(stats.cpu_time_ns > 0, "{stats:?}");
    assert!(stats.memory_bytes > 0, "{stats:?}");
    assert!(stats.taken_at_ms > 0);
    host.remove_container(&id, true).unwrap();
}

#[test]
fn ports_are_published_on_the_bind_address_and_reachable() {
    let data = tempfile::tempdir().unwrap();
    let node = Node::new();
    let host = node.host(data.path(), settings(data.path()));
    let t = task("ports");
    let mut spec = sh("echo hello > /www/index.html; exec httpd -f -p 8080 -h /www");
    spec.ports = vec![PortMapping {
        label: "http".into(),
        container_port: 8080,
        host_port: 0,
        protocol: "tcp".into(),
    }];
    let id = run(&host, &t, spec);
    let ports = host.container_ports(&id).unwrap();
    assert_eq!(ports.len(), 1);
    assert_eq!(
        (ports[0].label.as_str(), ports[0].container_port),
        ("http", 8080)
    );
    assert!(ports[0].host_port > 0, "{ports:?}");
    let bound = docker(&["port", &id, "8080/tcp"]);
    assert!(bound.trim().starts_with("127.0.0.1:"), "{bound}");
    let deadline = Instant::now() + PATIENCE;
    let body = loop {
        let answer = TcpStream::connect(("127.0.0.1", ports[0].host_port)).and_then(|mut s| {
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            write!(s, "GET / HTTP/1.0\r\n\r\n")?;
            let mut text = String::new();
            s.read_to_string(&mut text)?;
            Ok(text)
        });
        match answer {
            Ok(text) if text.contains("hello") => break text,
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            other => panic!("no answer on the published port: {other:?}"),
        }
    };
    assert!(body.starts_with("HTTP/1."), "{body}");
    host.remove_container(&id, true).unwrap();
}

/// A repository name of this test process, so pulls never collide.
fn repo(name: &str) -> String {
    format!("testb-{}/{name}", std::process::id())
}

fn push(registry: &Registry, name_tag: &str, config_dir: Option<&Path>) -> String {
    image();
    let reference = format!("{}/{name_tag}", registry.host());
    docker(&["tag", IMAGE, &reference]);
    match config_dir {
        Some(dir) => docker(&["--config", dir.to_str().unwrap(), "push", &reference]),
        None => docker(&["push", &reference]),
    };
    // The engine must pull it again: only the registry has it now.
    docker(&["rmi", &reference]);
    reference
}

#[test]
fn pull_from_a_registry_then_the_present_image_needs_no_registry() {
    let data = tempfile::tempdir().unwrap();
    let node = Node::new();
    let host = node.host(data.path(), settings(data.path()));
    let t = task("pull");
    let mut registry = Registry::start();
    let reference = push(&registry, &format!("{}:1", repo("app")), None);
    let _cleanup = PulledImage(reference.clone());
    let id = host.pull_image(&t, &reference).unwrap();
    assert!(id.starts_with("sha256:"), "{id}");
    let missing = host
        .pull_image(&t, &format!("{}/{}:nope", registry.host(), repo("app")))
        .unwrap_err();
    assert!(
        matches!(missing, CapabilityError::NotFound(_)),
        "{missing:?}"
    );
    let no_repo = host
        .pull_image(&t, &format!("{}/{}:1", registry.host(), repo("nothing")))
        .unwrap_err();
    assert!(
        matches!(no_repo, CapabilityError::NotFound(_)),
        "{no_repo:?}"
    );
    registry.stop();
    // Present: no pull, so the registry being gone does not matter.
    assert_eq!(host.pull_image(&t, &reference).unwrap(), id);
    let created = run(
        &host,
        &t,
        ContainerSpec {
            image: reference.clone(),
            command: Some(vec!["/bin/echo".into(), "pulled".into()]),
            ..ContainerSpec::default()
        },
    );
    assert_eq!(wait_exit(&host, &created).exit_code, Some(0));
    assert_eq!(log_text(data.path(), &t, LogStream::Stdout), "pulled\n");
    host.remove_container(&created, true).unwrap();
}

#[test]
fn pull_from_an_unreachable_registry_names_it() {
    let data = tempfile::tempdir().unwrap();
    let node = Node::new();
    let host = node.host(data.path(), settings(data.path()));
    let address = format!("127.0.0.1:{}", orch_testkit::free_port());
    let err = host
        .pull_image(
            &task("unreachable"),
            &format!("{address}/{}:1", repo("app")),
        )
        .unwrap_err();
    match err {
        CapabilityError::Failed(m) => {
            assert!(
                m.contains("cannot reach the registry") && m.contains(&address),
                "{m}"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn pull_with_credentials_from_config_and_docker_config_and_wrong_ones_refused() {
    let data = tempfile::tempdir().unwrap();
    let node = Node::new();
    let registry = Registry::start_with_password("orch", "s3cret-pw");
    // Log in and push with a Docker config of this test's own.
    let login = tempfile::tempdir().unwrap();
    docker(&[
        "--config",
        login.path().to_str().unwrap(),
        "login",
        "--username",
        "orch",
        "--password",
        "s3cret-pw",
        &registry.host(),
    ]);
    let reference = push(
        &registry,
        &format!("{}:1", repo("private")),
        Some(login.path()),
    );
    let _cleanup = PulledImage(reference.clone());
    let t = task("private");
    let auth = |password: &str| {
        let mut s = settings(data.path());
        s.auth.insert(
            registry.host(),
            RegistryAuth {
                username: "orch".into(),
                password: Some(password.into()),
                password_env: None,
            },
        );
        s
    };

    // None at all.
    let err = node
        .host(data.path(), settings(data.path()))
        .pull_image(&t, &reference)
        .unwrap_err();
    assert!(err.to_string().contains("wants credentials"), "{err}");
    // Wrong ones, from agent.toml.
    let err = node
        .host(data.path(), auth("wrong-pw"))
        .pull_image(&t, &reference)
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, CapabilityError::Failed(_)));
    assert!(
        text.contains("refused the credentials") && text.contains("agent.toml"),
        "{text}"
    );
    assert!(!text.contains("wrong-pw"), "{text}");
    // Right ones, from agent.toml.
    node.host(data.path(), auth("s3cret-pw"))
        .pull_image(&t, &reference)
        .unwrap();
    docker(&["rmi", &reference]);
    // Right ones, called from async code (the host blocks a thread of its
    // own then).
    let host = node.host(data.path(), auth("s3cret-pw"));
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(async { host.pull_image(&t, &reference) })
        .unwrap();
    docker(&["rmi", &reference]);
    // Right ones, from the Docker config file `docker login` wrote.
    let from_file = ContainerSettings {
        docker_config: Some(login.path().join("config.json")),
        ..settings(data.path())
    };
    node.host(data.path(), from_file)
        .pull_image(&t, &reference)
        .unwrap();
    docker(&["rmi", &reference]);
    // Wrong ones from a Docker config file: the message names the file.
    let bad = tempfile::tempdir().unwrap();
    let encoded = base64_encode(b"orch:nope");
    std::fs::write(
        bad.path().join("config.json"),
        format!(
            "{{\"auths\":{{\"{}\":{{\"auth\":\"{encoded}\"}}}}}}",
            registry.host()
        ),
    )
    .unwrap();
    let err = node
        .host(
            data.path(),
            ContainerSettings {
                docker_config: Some(bad.path().join("config.json")),
                ..settings(data.path())
            },
        )
        .pull_image(&t, &reference)
        .unwrap_err();
    assert!(
        err.to_string().contains("refused the credentials")
            && err.to_string().contains("Docker config file"),
        "{err}"
    );
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
