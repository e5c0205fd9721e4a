//! The built-in oci driver, running in the real runtime against a
//! `DriverHost` that records every `containers` call and answers from a
//! script. What is tested here is the driver's own logic: its config
//! checks, the container spec it asks for, how it maps the host's errors
//! and cleans up after a failed start. The agent's tests run the same
//! component against a real Docker engine.

use orch_plugin_runtime::{
    CapabilityError, Component, ContainerSpec, DriverCallError, DriverHost, DriverPlugin,
    EngineInfo, ExitStatus, FetchSpec, Grants, Limits, LogLevel, Mount, PluginError, PortMapping,
    ProcessHandle, ProcessLimits, Runtime, RuntimeConfig, SpawnSpec, TaskHandle, TaskRef,
    TaskRunState, TaskStart, TaskStats, UsageStats, WorldKind,
};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

// ---------------------------------------------------------------------------
// The host side: records calls, answers from a script.

#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    EngineInfo,
    Pull(TaskRef, String),
    Create(TaskRef, Box<ContainerSpec>),
    Start(String),
    Wait(String, Duration),
    Kill(String, String),
    Stop(String, String, Duration),
    Remove(String, bool),
    Inspect(String),
    Stats(String),
}

/// What the host answers; every call succeeds unless a test says otherwise.
struct Script {
    engine: Result<EngineInfo, CapabilityError>,
    pull: Result<String, CapabilityError>,
    /// How long a pull takes.
    pull_takes: Duration,
    create: Result<String, CapabilityError>,
    start: Result<(), CapabilityError>,
    wait: Result<Option<ExitStatus>, CapabilityError>,
    kill: Result<(), CapabilityError>,
    stop: Result<(), CapabilityError>,
    remove: Result<(), CapabilityError>,
    inspect: Result<Option<bool>, CapabilityError>,
    stats: Result<UsageStats, CapabilityError>,
}

impl Default for Script {
    fn default() -> Self {
        Self {
            engine: Ok(EngineInfo {
                name: "docker".into(),
                version: "20.10.24".into(),
                api_version: "1.41".into(),
                os: "linux".into(),
                arch: "amd64".into(),
            }),
            pull: Ok(IMAGE_ID.into()),
            pull_takes: Duration::ZERO,
            create: Ok(CONTAINER.into()),
            start: Ok(()),
            wait: Ok(None),
            kill: Ok(()),
            stop: Ok(()),
            remove: Ok(()),
            inspect: Ok(Some(true)),
            stats: Ok(UsageStats {
                cpu_time_ns: 1_500_000,
                memory_bytes: 4 << 20,
                taken_at_ms: 1_700_000_000_000,
            }),
        }
    }
}

const IMAGE_ID: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const CONTAINER: &str = "c0ffee";

#[derive(Default)]
struct Recorder {
    script: Mutex<Script>,
    calls: Mutex<Vec<Call>>,
    logs: Mutex<Vec<(LogLevel, String)>>,
}

impl Recorder {
    fn script(&self, edit: impl FnOnce(&mut Script)) {
        edit(&mut self.script.lock().unwrap());
    }

    fn record<T: Clone>(&self, call: Call, answer: impl FnOnce(&Script) -> T) -> T {
        self.calls.lock().unwrap().push(call);
        answer(&self.script.lock().unwrap())
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    fn forget(&self) {
        self.calls.lock().unwrap().clear();
    }
}

impl DriverHost for Recorder {
    fn spawn(&self, _: &TaskRef, _: SpawnSpec) -> Result<Box<dyn ProcessHandle>, CapabilityError> {
        panic!("the oci driver spawns no process")
    }

    fn attach(
        &self,
        _: &TaskRef,
        _: u32,
        _: u64,
    ) -> Result<Box<dyn ProcessHandle>, CapabilityError> {
        panic!("the oci driver attaches no process")
    }

    fn fetch(&self, _: &TaskRef, _: FetchSpec) -> Result<String, CapabilityError> {
        panic!("the oci driver fetches no artifact")
    }

    fn log(&self, driver: &str, level: LogLevel, message: &str) {
        assert_eq!(driver, "builtin:oci");
        self.logs.lock().unwrap().push((level, message.to_owned()));
    }

    fn engine_info(&self) -> Result<EngineInfo, CapabilityError> {
        self.record(Call::EngineInfo, |s| s.engine.clone())
    }

    fn pull_image(&self, task: &TaskRef, image: &str) -> Result<String, CapabilityError> {
        let (answer, takes) = self.record(Call::Pull(task.clone(), image.to_owned()), |s| {
            (s.pull.clone(), s.pull_takes)
        });
        std::thread::sleep(takes);
        answer
    }

    fn create_container(
        &self,
        task: &TaskRef,
        spec: ContainerSpec,
    ) -> Result<String, CapabilityError> {
        self.record(Call::Create(task.clone(), Box::new(spec)), |s| {
            s.create.clone()
        })
    }

    fn start_container(&self, id: &str) -> Result<(), CapabilityError> {
        self.record(Call::Start(id.to_owned()), |s| s.start.clone())
    }

    fn wait_container(
        &self,
        id: &str,
        timeout: Duration,
    ) -> Result<Option<ExitStatus>, CapabilityError> {
        self.record(Call::Wait(id.to_owned(), timeout), |s| s.wait.clone())
    }

    fn kill_container(&self, id: &str, signal: &str) -> Result<(), CapabilityError> {
        self.record(Call::Kill(id.to_owned(), signal.to_owned()), |s| {
            s.kill.clone()
        })
    }

    fn stop_container(
        &self,
        id: &str,
        signal: &str,
        timeout: Duration,
    ) -> Result<(), CapabilityError> {
        self.record(Call::Stop(id.to_owned(), signal.to_owned(), timeout), |s| {
            s.stop.clone()
        })
    }

    fn remove_container(&self, id: &str, force: bool) -> Result<(), CapabilityError> {
        self.record(Call::Remove(id.to_owned(), force), |s| s.remove.clone())
    }

    fn inspect_container(&self, id: &str) -> Result<Option<bool>, CapabilityError> {
        self.record(Call::Inspect(id.to_owned()), |s| s.inspect.clone())
    }

    fn container_stats(&self, id: &str) -> Result<UsageStats, CapabilityError> {
        self.record(Call::Stats(id.to_owned()), |s| s.stats.clone())
    }
}

// ---------------------------------------------------------------------------
// The plugin side: the real oci component.

const OCI_GRANTS: Grants = Grants {
    containers: true,
    log: true,
    process: false,
    artifacts: false,
};

/// One runtime and one compiled oci driver for every test of this file.
fn runtime_and_oci() -> &'static (Runtime, Component) {
    static OCI: OnceLock<(Runtime, Component)> = OnceLock::new();
    OCI.get_or_init(|| {
        let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
        let wasm = orch_builtins::get("oci").unwrap().wasm;
        let component = runtime
            .load("builtin:oci", wasm, &Limits::default())
            .unwrap();
        (runtime, component)
    })
}

fn oci_with(limits: Limits) -> (Arc<Recorder>, DriverPlugin) {
    let (runtime, component) = runtime_and_oci();
    let host = Arc::new(Recorder::default());
    let driver = runtime
        .driver(
            component,
            OCI_GRANTS,
            limits,
            Arc::clone(&host) as Arc<dyn DriverHost>,
        )
        .unwrap();
    (host, driver)
}

fn oci() -> (Arc<Recorder>, DriverPlugin) {
    oci_with(Limits::default())
}

fn task_ref(name: &str) -> TaskRef {
    TaskRef {
        alloc_id: "a1b2c3".into(),
        task: name.into(),
    }
}

fn task(name: &str, config: &str) -> TaskStart {
    TaskStart {
        task: task_ref(name),
        config_json: config.into(),
        env: vec![
            ("GREETING".into(), "hello".into()),
            ("NOMAD_TASK_NAME".into(), name.into()),
        ],
        cpu_mhz: 250,
        memory_mib: 128,
        disk_mib: 300,
        alloc_dir: "/var/lib/orch/alloc/a1b2c3".into(),
        task_dir: "/var/lib/orch/alloc/a1b2c3/web".into(),
        secrets_dir: "/var/lib/orch/alloc/a1b2c3/web/secrets".into(),
        user: None,
    }
}

fn handle(name: &str) -> TaskHandle {
    TaskHandle {
        task: task_ref(name),
        version: 1,
        state: format!(r#"{{"container_id": "{CONTAINER}", "image_id": "{IMAGE_ID}"}}"#),
    }
}

fn started(driver: &DriverPlugin, host: &Recorder) -> TaskHandle {
    let handle = driver
        .start(&task("web", r#"{"image": "127.0.0.1:5000/web:1"}"#))
        .unwrap();
    host.forget();
    handle
}

// ---------------------------------------------------------------------------

#[test]
fn the_driver_says_what_it_is_and_imports_only_containers_and_log() {
    let (_, oci) = oci();
    let info = oci.info().unwrap();
    assert_eq!(info.name, "oci");
    assert!(info.can_signal && info.can_recover, "{info:?}");

    let (runtime, component) = runtime_and_oci();
    let inspection = runtime.inspect(component);
    assert_eq!(inspection.world, Some(WorldKind::Driver));
    let mut orch: Vec<&str> = inspection
        .imports
        .iter()
        .map(String::as_str)
        .filter(|i| !i.starts_with("wasi:") && !i.contains("/types@"))
        .collect();
    orch.sort_unstable();
    assert_eq!(
        orch,
        ["orch:driver/containers@0.1.0", "orch:types/log@0.1.0"]
    );

    let host: Arc<dyn DriverHost> = Arc::new(Recorder::default());
    let without_containers = Grants {
        process: true,
        artifacts: true,
        log: true,
        containers: false,
    };
    let Err(err) = runtime.driver(component, without_containers, Limits::default(), host) else {
        panic!("oci without `containers` must not load")
    };
    assert!(
        matches!(
            err,
            PluginError::NotGranted {
                capability: "containers",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn fingerprint_reports_the_engine_or_why_it_is_unusable() {
    let (host, oci) = oci();
    let fp = oci.fingerprint().unwrap();
    assert!(fp.healthy, "{fp:?}");
    assert_eq!(
        fp.attributes,
        [
            ("version".to_owned(), "20.10.24".to_owned()),
            ("api_version".to_owned(), "1.41".to_owned()),
            ("os".to_owned(), "linux".to_owned()),
            ("arch".to_owned(), "amd64".to_owned()),
        ]
    );
    assert_eq!(host.calls(), [Call::EngineInfo]);

    host.script(|s| {
        s.engine = Err(CapabilityError::Failed(
            "cannot reach the engine at unix:///var/run/docker.sock: connection refused".into(),
        ));
    });
    let fp = oci.fingerprint().unwrap();
    assert!(!fp.healthy, "{fp:?}");
    assert!(
        fp.health_description
            .contains("unix:///var/run/docker.sock: connection refused"),
        "{fp:?}"
    );
    assert!(fp.attributes.is_empty(), "{fp:?}");
}

#[test]
fn every_config_problem_is_reported_at_its_field_and_nothing_runs() {
    let (host, oci) = oci();
    let bad = r#"{
        "image": "Web:1", "command": "/bin/httpd", "entrypoint": ["/bin/sh"],
        "args": ["-f", 8080], "ports": ["8080", "99999", "1.2.3.4:80:80"],
        "privileged": "yes", "network_mode": "overlay", "pid_mode": "private",
        "ipc_mode": "container:x",
        "mounts": [{"source": "local/data", "target": "data"}, {"src": "x", "target": "/x"}],
        "user": "", "work_dir": "www", "volumes": ["a:/a"], "imag": "x"
    }"#;
    let problems = oci.validate_config(bad).unwrap();
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "config.image",
            "config.command",
            "config.args[1]",
            "config.privileged",
            "config.network_mode",
            "config.pid_mode",
            "config.ipc_mode",
            "config.ports[1]",
            "config.ports[2]",
            "config.mounts[0].target",
            "config.mounts[1].source",
            "config.mounts[1].src",
            "config.user",
            "config.work_dir",
            "config.imag",
            "config.volumes",
        ]
    );
    let says = |field: &str, what: &str| {
        let p = problems.iter().find(|p| p.field == field).unwrap();
        assert!(p.message.contains(what), "{field}: {}", p.message);
    };
    says("config.image", "must be lowercase; write \"web\"");
    says("config.command", "give one");
    says("config.ports[1]", "not a number from 1 to 65535");
    says("config.ports[2]", "port_bind_address");
    says("config.mounts[0].target", "absolute path");
    says("config.mounts[1].src", "did you mean `source`?");
    says("config.imag", "did you mean `image`?");
    says("config.volumes", "use `mounts");

    let err = oci.start(&task("web", bad)).unwrap_err();
    assert_eq!(err.kind(), "invalid-config");
    let DriverCallError::InvalidConfig(at_start) = &err else {
        unreachable!()
    };
    assert_eq!(at_start, &problems);
    assert!(
        err.to_string()
            .starts_with("the task's driver config has 16 problems: config.image:"),
        "{err}"
    );
    assert_eq!(host.calls(), [], "nothing is pulled or created");

    assert_eq!(
        oci.validate_config(r#"{"image": "127.0.0.1:5000/web:1"}"#)
            .unwrap(),
        []
    );
}

#[test]
fn start_pulls_creates_and_starts_the_spec_the_config_asks_for() {
    let (host, oci) = oci();
    let mut t = task(
        "web",
        r#"{
            "image": "127.0.0.1:5000/web:1.2",
            "command": "/bin/httpd",
            "args": ["-f", "-p", "8080"],
            "ports": ["8080", "18081:81", "53/udp"],
            "mounts": [{"source": "local/www", "target": "/www", "readonly": true},
                       {"source": "/srv/cache", "target": "/cache"}],
            "work_dir": "/www"
        }"#,
    );
    t.user = Some("nobody".into());
    let handle = oci.start(&t).unwrap();

    let expected = ContainerSpec {
        image: "127.0.0.1:5000/web:1.2".into(),
        command: Some(vec!["/bin/httpd".into()]),
        args: vec!["-f".into(), "-p".into(), "8080".into()],
        env: t.env.clone(),
        ports: vec![
            PortMapping {
                label: "port_8080".into(),
                container_port: 8080,
                host_port: 0,
                protocol: "tcp".into(),
            },
            PortMapping {
                label: "port_81".into(),
                container_port: 81,
                host_port: 18081,
                protocol: "tcp".into(),
            },
            PortMapping {
                label: "port_53_udp".into(),
                container_port: 53,
                host_port: 0,
                protocol: "udp".into(),
            },
        ],
        mounts: vec![
            Mount {
                source: "local/www".into(),
                target: "/www".into(),
                read_only: true,
            },
            Mount {
                source: "/srv/cache".into(),
                target: "/cache".into(),
                read_only: false,
            },
        ],
        limits: ProcessLimits {
            cpu_mhz: 250,
            memory_mib: 128,
        },
        privileged: false,
        network_mode: "bridge".into(),
        host_pid: false,
        host_ipc: false,
        user: Some("nobody".into()),
        working_dir: Some("/www".into()),
    };
    assert_eq!(
        host.calls(),
        [
            Call::Pull(t.task.clone(), "127.0.0.1:5000/web:1.2".into()),
            Call::Create(t.task.clone(), Box::new(expected)),
            Call::Start(CONTAINER.into()),
        ]
    );

    assert_eq!(handle.task, t.task);
    assert_eq!(handle.version, 1);
    let state: serde_json::Value = serde_json::from_str(&handle.state).unwrap();
    assert_eq!(
        state,
        serde_json::json!({"container_id": CONTAINER, "image_id": IMAGE_ID})
    );
    let logs = host.logs.lock().unwrap();
    assert!(
        logs.iter().any(|(level, line)| *level == LogLevel::Info
            && line.contains(&format!(
                "started container {CONTAINER} (127.0.0.1:5000/web:1.2)"
            ))),
        "{logs:?}"
    );
}

#[test]
fn a_bare_image_gets_latest_and_the_entrypoint_list_is_passed_as_is() {
    let (host, oci) = oci();
    oci.start(&task(
        "web",
        r#"{"image": "busybox", "entrypoint": ["/bin/sh", "-c"], "args": ["echo hi"], "user": "1000:1000"}"#,
    ))
    .unwrap();
    let calls = host.calls();
    assert_eq!(
        calls[0],
        Call::Pull(task_ref("web"), "busybox:latest".into())
    );
    let Call::Create(_, spec) = &calls[1] else {
        panic!("{calls:?}")
    };
    assert_eq!(spec.image, "busybox:latest");
    assert_eq!(spec.command, Some(vec!["/bin/sh".into(), "-c".into()]));
    assert_eq!(spec.args, ["echo hi"]);
    assert_eq!(spec.user.as_deref(), Some("1000:1000"));
    assert!(spec.ports.is_empty() && spec.mounts.is_empty());
    assert_eq!(spec.working_dir, None);
}

#[test]
fn privileged_and_host_namespaces_go_to_the_host_to_judge_and_its_refusal_is_denied() {
    let (host, oci) = oci();
    host.script(|s| {
        s.create = Err(CapabilityError::Denied(
            "privileged containers are not allowed on this node; set allow_privileged = true in agent.toml's [containers] to allow them".into(),
        ));
    });
    let err = oci
        .start(&task(
            "root",
            r#"{"image": "busybox:1", "privileged": true, "network_mode": "host",
                "pid_mode": "host", "ipc_mode": "host"}"#,
        ))
        .unwrap_err();
    assert_eq!(err.kind(), "denied", "{err}");
    let message = err.to_string();
    assert!(
        message.starts_with(
            "driver builtin:oci: start: refused by the host: privileged containers are not allowed"
        ),
        "{message}"
    );
    assert!(message.contains("allow_privileged = true"), "{message}");

    let calls = host.calls();
    assert_eq!(calls.len(), 2, "nothing to start or remove: {calls:?}");
    let Call::Create(_, spec) = &calls[1] else {
        panic!("{calls:?}")
    };
    assert!(
        spec.privileged && spec.host_pid && spec.host_ipc,
        "{spec:?}"
    );
    assert_eq!(spec.network_mode, "host");

    // A refused pull (e.g. a registry the operator does not allow) is
    // denied as well.
    host.forget();
    host.script(|s| s.pull = Err(CapabilityError::Denied("registry not allowed".into())));
    let err = oci
        .start(&task("web", r#"{"image": "busybox:1"}"#))
        .unwrap_err();
    assert_eq!(err.kind(), "denied", "{err}");
    assert_eq!(host.calls().len(), 1);
}

#[test]
fn a_missing_image_is_a_failure_that_names_it() {
    let (host, oci) = oci();
    host.script(|s| {
        s.pull = Err(CapabilityError::NotFound(
            "manifest for 127.0.0.1:5000/web:9 not found: manifest unknown".into(),
        ));
    });
    let err = oci
        .start(&task("web", r#"{"image": "127.0.0.1:5000/web:9"}"#))
        .unwrap_err();
    assert_eq!(err.kind(), "failed", "{err}");
    let message = err.to_string();
    assert!(
        message.starts_with(
            "driver builtin:oci: start failed: image 127.0.0.1:5000/web:9 was not found: manifest for"
        ),
        "{message}"
    );
    assert_eq!(host.calls().len(), 1, "nothing is created");

    host.forget();
    host.script(|s| {
        s.pull = Err(CapabilityError::Failed(
            "cannot reach the registry at 127.0.0.1:1: connection refused".into(),
        ));
    });
    let err = oci
        .start(&task("web", r#"{"image": "127.0.0.1:1/web:1"}"#))
        .unwrap_err();
    assert_eq!(err.kind(), "failed");
    assert!(
        err.to_string()
            .contains("pulling 127.0.0.1:1/web:1: cannot reach the registry"),
        "{err}"
    );
}

#[test]
fn a_failed_start_removes_the_container_it_created() {
    let (host, oci) = oci();
    host.script(|s| {
        s.start = Err(CapabilityError::Failed(
            "OCI runtime create failed: exec: \"/bin/nope\": no such file".into(),
        ));
    });
    let err = oci
        .start(&task(
            "web",
            r#"{"image": "busybox:1", "command": "/bin/nope"}"#,
        ))
        .unwrap_err();
    assert_eq!(err.kind(), "failed");
    let message = err.to_string();
    assert!(
        message.contains(&format!(
            "starting container {CONTAINER} of image busybox:1: OCI runtime create failed"
        )),
        "{message}"
    );
    let calls = host.calls();
    assert_eq!(
        calls[2..],
        [
            Call::Start(CONTAINER.into()),
            Call::Remove(CONTAINER.into(), true)
        ]
    );

    // A removal that fails too is logged; the start's own error is what the
    // task sees.
    host.forget();
    host.script(|s| s.remove = Err(CapabilityError::Failed("engine went away".into())));
    let err = oci
        .start(&task("web", r#"{"image": "busybox:1"}"#))
        .unwrap_err();
    assert!(
        err.to_string().contains("OCI runtime create failed"),
        "{err}"
    );
    assert_eq!(
        host.calls().last(),
        Some(&Call::Remove(CONTAINER.into(), true))
    );
    let logs = host.logs.lock().unwrap();
    assert!(
        logs.iter().any(|(level, line)| *level == LogLevel::Warn
            && line.contains("after a failed start: engine went away")),
        "{logs:?}"
    );
}

#[test]
fn wait_inspect_stop_signal_and_stats_act_on_the_handles_container() {
    let (host, oci) = oci();
    let handle = started(&oci, &host);

    assert_eq!(oci.wait(&handle, Duration::from_millis(50)).unwrap(), None);
    assert_eq!(oci.inspect(&handle).unwrap(), TaskRunState::Running);
    let exit = ExitStatus {
        exit_code: Some(137),
        signal: None,
        oom_killed: true,
        finished_at_ms: 1_700_000_000_123,
    };
    host.script(|s| {
        s.wait = Ok(Some(exit));
        s.inspect = Ok(Some(false));
    });
    assert_eq!(
        oci.wait(&handle, Duration::from_secs(2)).unwrap(),
        Some(exit)
    );
    assert_eq!(oci.inspect(&handle).unwrap(), TaskRunState::Exited(exit));

    oci.stop(&handle, "SIGINT", Duration::from_millis(1500))
        .unwrap();
    oci.signal(&handle, "SIGHUP").unwrap();
    assert_eq!(
        oci.stats(&handle).unwrap(),
        TaskStats {
            cpu_time_ns: 1_500_000,
            memory_bytes: 4 << 20,
            taken_at_ms: 1_700_000_000_000,
        }
    );
    let id = || CONTAINER.to_owned();
    assert_eq!(
        host.calls(),
        [
            Call::Wait(id(), Duration::from_millis(50)),
            Call::Inspect(id()),
            Call::Wait(id(), Duration::from_secs(2)),
            Call::Inspect(id()),
            Call::Wait(id(), Duration::ZERO),
            Call::Stop(id(), "SIGINT".into(), Duration::from_millis(1500)),
            Call::Kill(id(), "SIGHUP".into()),
            Call::Stats(id()),
        ]
    );

    // An engine that does not answer leaves the state unknown, not lost.
    host.script(|s| s.inspect = Err(CapabilityError::Failed("engine timed out".into())));
    let TaskRunState::Unknown(why) = oci.inspect(&handle).unwrap() else {
        panic!("an unreachable engine is no answer")
    };
    assert!(why.contains("engine timed out"), "{why}");

    host.script(|s| s.kill = Err(CapabilityError::Failed("unknown signal SIGFOO".into())));
    let err = oci.signal(&handle, "SIGFOO").unwrap_err();
    assert!(
        err.to_string().ends_with(&format!(
            "sending SIGFOO to container {CONTAINER}: unknown signal SIGFOO"
        )),
        "{err}"
    );
}

#[test]
fn destroy_removes_the_container_and_kills_it_first_when_forced() {
    let (host, oci) = oci();
    let handle = started(&oci, &host);
    let id = || CONTAINER.to_owned();

    oci.destroy(&handle, true).unwrap();
    assert_eq!(
        host.calls(),
        [
            Call::Stop(id(), "SIGKILL".into(), Duration::from_secs(1)),
            Call::Remove(id(), true)
        ]
    );

    // Without force, a running container stays.
    host.forget();
    let err = oci.destroy(&handle, false).unwrap_err();
    assert!(err.to_string().contains("still runs"), "{err}");
    assert_eq!(host.calls(), [Call::Inspect(id())]);

    host.forget();
    host.script(|s| s.inspect = Ok(Some(false)));
    oci.destroy(&handle, false).unwrap();
    assert_eq!(
        host.calls(),
        [Call::Inspect(id()), Call::Remove(id(), false)]
    );

    // A container that is already gone leaves nothing to free.
    host.forget();
    host.script(|s| {
        s.inspect = Ok(None);
        s.stop = Err(CapabilityError::NotFound("no such container".into()));
        s.remove = Err(CapabilityError::NotFound("no such container".into()));
    });
    oci.destroy(&handle, false).unwrap();
    oci.destroy(&handle, true).unwrap();
    assert_eq!(
        host.calls(),
        [
            Call::Inspect(id()),
            Call::Stop(id(), "SIGKILL".into(), Duration::from_secs(1)),
            Call::Remove(id(), true)
        ]
    );

    // A failing kill does not keep a forced destroy from removing.
    host.forget();
    host.script(|s| {
        s.stop = Err(CapabilityError::Failed("engine busy".into()));
        s.remove = Ok(());
    });
    oci.destroy(&handle, true).unwrap();
    assert_eq!(host.calls()[1], Call::Remove(id(), true));
}

#[test]
fn recover_reattaches_a_container_that_exists_and_a_gone_one_is_not_found() {
    let (host, oci) = oci();
    let handle = handle("web");
    // The agent keeps the handle as JSON across its restart.
    let back: TaskHandle = serde_json::from_str(&serde_json::to_string(&handle).unwrap()).unwrap();
    oci.recover(&back).unwrap();
    host.script(|s| s.inspect = Ok(Some(false)));
    oci.recover(&back).unwrap();
    assert_eq!(
        host.calls(),
        [
            Call::Inspect(CONTAINER.into()),
            Call::Inspect(CONTAINER.into())
        ]
    );

    host.script(|s| s.inspect = Ok(None));
    let err = oci.recover(&back).unwrap_err();
    assert_eq!(err.kind(), "not-found", "{err}");
    assert!(
        err.to_string().contains(&format!(
            "container {CONTAINER} of task web of allocation a1b2c3 is gone"
        )),
        "{err}"
    );
    host.script(|s| {
        s.inspect = Err(CapabilityError::NotFound(
            "no container c0ffee of this agent".into(),
        ));
        s.wait = Err(CapabilityError::NotFound(
            "no container c0ffee of this agent".into(),
        ));
    });
    assert_eq!(oci.recover(&back).unwrap_err().kind(), "not-found");
    assert_eq!(
        oci.wait(&back, Duration::ZERO).unwrap_err().kind(),
        "not-found"
    );

    host.script(|s| s.inspect = Err(CapabilityError::Failed("engine unreachable".into())));
    assert_eq!(oci.recover(&back).unwrap_err().kind(), "failed");

    // A handle of another driver is refused, not misread.
    let foreign = TaskHandle {
        state: r#"{"pid": 4, "start_token": 9}"#.into(),
        ..handle
    };
    let err = oci.recover(&foreign).unwrap_err();
    assert!(err.to_string().contains("not the oci driver's"), "{err}");
}

#[test]
fn start_may_take_as_long_as_its_allowance_and_no_longer() {
    let short = Limits {
        deadline: Duration::from_millis(200),
        ..Limits::default()
    };
    let (host, oci) = oci_with(short.clone());
    assert_eq!(oci.start_allowance(), Duration::from_secs(30));
    host.script(|s| s.pull_takes = Duration::from_millis(1500));
    // The default allowance covers a pull of a second and a half.
    oci.start(&task("web", r#"{"image": "busybox:1"}"#))
        .unwrap();

    let (host, oci) = oci_with(short);
    let oci = oci.with_start_allowance(Duration::from_millis(300));
    assert_eq!(oci.start_allowance(), Duration::from_millis(300));
    host.script(|s| s.pull_takes = Duration::from_millis(1500));
    let err = oci
        .start(&task("web", r#"{"image": "busybox:1"}"#))
        .unwrap_err();
    assert_eq!(err.kind(), "deadline", "{err}");
    assert_eq!(
        host.calls(),
        [Call::Pull(task_ref("web"), "busybox:1".into())],
        "the call ends when the pull returns, before anything is created"
    );
}
