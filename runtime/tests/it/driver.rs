//! The built-in exec driver, running in the real runtime, starting real
//! processes through a small `DriverHost` built on `std::process` (standing
//! in for the agent, which implements the same trait).

use orch_plugin_runtime::{
    CapabilityError, Component, DriverCallError, DriverHost, DriverPlugin, ExitStatus, FetchSpec,
    Grants, Limits, LogLevel, PluginError, ProcessHandle, Runtime, RuntimeConfig, SpawnSpec,
    TaskHandle, TaskRef, TaskRunState, TaskStart, WorldKind,
};
use std::collections::HashMap;
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// The host side: processes the way an agent would run them.

/// One process this host spawned; kept after it exits so that a driver can
/// still attach and read its exit, as the agent keeps it.
struct Proc {
    pid: u32,
    token: u64,
    child: Mutex<std::process::Child>,
    exit: Mutex<Option<ExitStatus>>,
}

impl Proc {
    fn try_exit(&self) -> Result<Option<ExitStatus>, CapabilityError> {
        let mut exit = self.exit.lock().unwrap();
        if exit.is_none() {
            let status = self
                .child
                .lock()
                .unwrap()
                .try_wait()
                .map_err(|e| CapabilityError::Failed(e.to_string()))?;
            *exit = status.map(|s| ExitStatus {
                exit_code: s.code(),
                signal: s.signal().map(|n| n as u32),
                oom_killed: false,
                finished_at_ms: orch_model::now_ms(),
            });
        }
        Ok(*exit)
    }
}

struct Handle(Arc<Proc>);

impl ProcessHandle for Handle {
    fn pid(&self) -> u32 {
        self.0.pid
    }

    fn start_token(&self) -> u64 {
        self.0.token
    }

    fn signal(&mut self, signal: &str) -> Result<(), CapabilityError> {
        if self.0.try_exit()?.is_some() {
            return Err(CapabilityError::NotFound(format!(
                "pid {} has exited",
                self.0.pid
            )));
        }
        let name = signal.strip_prefix("SIG").unwrap_or(signal);
        // The whole process group, as the agent signals a task.
        let status = Command::new("kill")
            .args(["-s", name, "--", &format!("-{}", self.0.pid)])
            .status()
            .map_err(|e| CapabilityError::Failed(e.to_string()))?;
        status
            .success()
            .then_some(())
            .ok_or_else(|| CapabilityError::Failed(format!("kill -s {name} failed")))
    }

    fn wait(&mut self, timeout: Duration) -> Result<Option<ExitStatus>, CapabilityError> {
        let until = Instant::now() + timeout;
        loop {
            if let Some(exit) = self.0.try_exit()? {
                return Ok(Some(exit));
            }
            if Instant::now() >= until {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The kernel's start time of `pid` (field 22 of /proc/PID/stat), which
/// with the pid names one process across pid reuse.
fn start_time(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 1..];
    after_name
        .split_whitespace()
        .nth(19)
        .unwrap()
        .parse()
        .unwrap()
}

#[derive(Default)]
struct TestHost {
    task_dir: PathBuf,
    procs: Mutex<HashMap<u32, Arc<Proc>>>,
    logs: Mutex<Vec<(String, LogLevel, String)>>,
}

impl DriverHost for TestHost {
    fn spawn(
        &self,
        _task: &TaskRef,
        spec: SpawnSpec,
    ) -> Result<Box<dyn ProcessHandle>, CapabilityError> {
        let (program, args) = spec
            .argv
            .split_first()
            .ok_or_else(|| CapabilityError::Invalid("empty argv".into()))?;
        let child = Command::new(program)
            .args(args)
            .envs(spec.env)
            .current_dir(self.task_dir.join(&spec.cwd))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| CapabilityError::Failed(format!("cannot run {program:?}: {e}")))?;
        let pid = child.id();
        let proc = Arc::new(Proc {
            pid,
            token: start_time(pid),
            child: Mutex::new(child),
            exit: Mutex::new(None),
        });
        self.procs.lock().unwrap().insert(pid, Arc::clone(&proc));
        Ok(Box::new(Handle(proc)))
    }

    fn attach(
        &self,
        _task: &TaskRef,
        pid: u32,
        start_token: u64,
    ) -> Result<Box<dyn ProcessHandle>, CapabilityError> {
        match self.procs.lock().unwrap().get(&pid) {
            Some(p) if p.token == start_token => Ok(Box::new(Handle(Arc::clone(p)))),
            Some(_) => Err(CapabilityError::NotFound(format!(
                "pid {pid} is another process now"
            ))),
            None => Err(CapabilityError::NotFound(format!(
                "no process {pid} was spawned by this agent"
            ))),
        }
    }

    fn fetch(&self, _task: &TaskRef, artifact: FetchSpec) -> Result<String, CapabilityError> {
        Err(CapabilityError::Failed(format!(
            "this test host fetches nothing ({})",
            artifact.source
        )))
    }

    fn log(&self, driver: &str, level: LogLevel, message: &str) {
        self.logs
            .lock()
            .unwrap()
            .push((driver.to_owned(), level, message.to_owned()));
    }
}

// ---------------------------------------------------------------------------
// The plugin side: the real exec component.

const EXEC_GRANTS: Grants = Grants {
    process: true,
    log: true,
    artifacts: false,
    containers: false,
};

/// One runtime and one compiled exec for every test of this file.
fn runtime_and_exec() -> &'static (Runtime, Component) {
    static EXEC: OnceLock<(Runtime, Component)> = OnceLock::new();
    EXEC.get_or_init(|| {
        let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
        let wasm = orch_builtins::get("exec").unwrap().wasm;
        let component = runtime
            .load("builtin:exec", wasm, &Limits::default())
            .unwrap();
        (runtime, component)
    })
}

fn exec(host: &Arc<TestHost>) -> DriverPlugin {
    let (runtime, component) = runtime_and_exec();
    runtime
        .driver(
            component,
            EXEC_GRANTS,
            Limits::default(),
            Arc::clone(host) as Arc<dyn DriverHost>,
        )
        .unwrap()
}

fn host() -> Arc<TestHost> {
    Arc::new(TestHost {
        task_dir: std::env::temp_dir(),
        ..TestHost::default()
    })
}

fn task(name: &str, config: &str) -> TaskStart {
    TaskStart {
        task: TaskRef {
            alloc_id: "a1b2c3".into(),
            task: name.into(),
        },
        config_json: config.into(),
        env: vec![("GREETING".into(), "hello".into())],
        cpu_mhz: 100,
        memory_mib: 64,
        disk_mib: 0,
        alloc_dir: "/tmp".into(),
        task_dir: "/tmp".into(),
        secrets_dir: "/tmp".into(),
        user: None,
    }
}

// ---------------------------------------------------------------------------

#[test]
fn a_command_runs_and_its_exit_code_comes_back() {
    let host = host();
    let exec = exec(&host);
    let info = exec.info().unwrap();
    assert_eq!(info.name, "exec");
    assert!(info.can_signal && info.can_recover);
    let fp = exec.fingerprint().unwrap();
    assert!(fp.healthy);
    assert!(fp.attributes.iter().any(|(k, _)| k == "version"));

    let t = task(
        "hi",
        r#"{"command": "/bin/sh", "args": ["-c", "echo hi; test \"$GREETING\" = hello && exit 3"]}"#,
    );
    let handle = exec.start(&t).unwrap();
    assert_eq!(handle.task, t.task);
    assert_eq!(handle.version, 1);

    let exit = exec
        .wait(&handle, Duration::from_secs(30))
        .unwrap()
        .unwrap();
    assert_eq!(exit.exit_code, Some(3), "{exit:?}");
    assert_eq!(exit.signal, None);
    assert_eq!(exec.inspect(&handle).unwrap(), TaskRunState::Exited(exit));

    // The agent keeps the handle as JSON and hands it back after a restart.
    let json = serde_json::to_string(&handle).unwrap();
    let back: TaskHandle = serde_json::from_str(&json).unwrap();
    assert_eq!(exec.wait(&back, Duration::ZERO).unwrap(), Some(exit));
    exec.recover(&back).unwrap();
    exec.destroy(&back, false).unwrap();

    let state: serde_json::Value = serde_json::from_str(&handle.state).unwrap();
    let pid = state["pid"].as_u64().unwrap();
    let logs = host.logs.lock().unwrap();
    assert!(
        logs.iter()
            .any(|(driver, level, line)| driver == "builtin:exec"
                && *level == LogLevel::Info
                && line.contains("started \"/bin/sh\"")
                && line.ends_with(&format!("pid {pid}"))),
        "{logs:?}"
    );
}

#[test]
fn stop_ends_a_task_with_the_signal_asked_for() {
    let host = host();
    let exec = exec(&host);
    let handle = exec
        .start(&task("sleeper", r#"{"command": "sleep", "args": ["30"]}"#))
        .unwrap();
    assert_eq!(exec.inspect(&handle).unwrap(), TaskRunState::Running);
    assert_eq!(exec.wait(&handle, Duration::from_millis(10)).unwrap(), None);
    assert!(
        matches!(exec.destroy(&handle, false), Err(DriverCallError::Failed(m)) if m.contains("still runs")),
        "a running task is not destroyed without force"
    );

    exec.stop(&handle, "SIGTERM", Duration::from_secs(20))
        .unwrap();
    let exit = exec.wait(&handle, Duration::ZERO).unwrap().unwrap();
    assert_eq!(
        exit.signal,
        Some(15),
        "ended by SIGTERM, not killed: {exit:?}"
    );
    assert_eq!(exit.exit_code, None);
    // Stopping a stopped task is no error.
    exec.stop(&handle, "SIGTERM", Duration::from_secs(1))
        .unwrap();
}

#[test]
fn signal_and_forced_destroy_reach_the_process() {
    let host = host();
    let exec = exec(&host);
    let handle = exec
        .start(&task("sleeper", r#"{"command": "sleep", "args": ["30"]}"#))
        .unwrap();
    exec.signal(&handle, "SIGUSR1").unwrap();
    let exit = exec
        .wait(&handle, Duration::from_secs(20))
        .unwrap()
        .unwrap();
    assert_eq!(exit.signal, Some(10), "{exit:?}");

    let handle = exec
        .start(&task("sleeper", r#"{"command": "sleep", "args": ["30"]}"#))
        .unwrap();
    exec.destroy(&handle, true).unwrap();
    let exit = exec.wait(&handle, Duration::ZERO).unwrap().unwrap();
    assert_eq!(exit.signal, Some(9), "{exit:?}");
    assert!(matches!(
        exec.stats(&handle),
        Err(DriverCallError::Unsupported(m)) if m.contains("driver builtin:exec: stats is not supported")
    ));
}

#[test]
fn config_errors_list_every_problem_at_its_field() {
    let host = host();
    let exec = exec(&host);
    let bad = r#"{"command": 5, "args": ["ok", 7], "comand": "x"}"#;
    let problems = exec.validate_config(bad).unwrap();
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        ["config.command", "config.args[1]", "config.comand"]
    );
    assert!(
        problems[2].message.contains("did you mean `command`?"),
        "{problems:?}"
    );

    let Err(err) = exec.start(&task("bad", bad)) else {
        panic!("an invalid config must not start")
    };
    assert_eq!(err.kind(), "invalid-config");
    let DriverCallError::InvalidConfig(at_start) = &err else {
        unreachable!()
    };
    assert_eq!(at_start, &problems);
    let shown = err.to_string();
    assert!(
        shown.starts_with(
            "the task's driver config has 3 problems: config.command: must be a string"
        ),
        "{shown}"
    );
    assert!(host.procs.lock().unwrap().is_empty(), "nothing was spawned");

    assert_eq!(
        exec.validate_config(r#"{"command": "/bin/true"}"#).unwrap(),
        []
    );
}

#[test]
fn a_missing_binary_is_a_clear_failure() {
    let host = host();
    let exec = exec(&host);
    let err = exec
        .start(&task(
            "ghost",
            r#"{"command": "/nonexistent/orch-test-binary"}"#,
        ))
        .unwrap_err();
    let DriverCallError::Failed(message) = &err else {
        panic!("expected a failure, got {err:?}")
    };
    assert!(
        message.starts_with(
            "driver builtin:exec: start failed: cannot start \"/nonexistent/orch-test-binary\""
        ),
        "{message}"
    );
    assert!(message.contains("No such file or directory"), "{message}");
}

#[test]
fn a_task_whose_process_is_gone_is_not_found() {
    let host = host();
    let exec = exec(&host);
    let handle = TaskHandle {
        task: TaskRef {
            alloc_id: "a1b2c3".into(),
            task: "lost".into(),
        },
        version: 1,
        state: r#"{"pid": 4000000, "start_token": 7}"#.into(),
    };
    let err = exec.recover(&handle).unwrap_err();
    assert_eq!(err.kind(), "not-found", "{err}");
    assert!(err.to_string().contains("no process 4000000"), "{err}");
    // Nothing is left to free.
    exec.destroy(&handle, true).unwrap();
}

#[test]
fn exec_imports_only_process_and_log() {
    let (runtime, component) = runtime_and_exec();
    let inspection = runtime.inspect(component);
    assert_eq!(inspection.world, Some(WorldKind::Driver));
    assert!(inspection.version_supported);
    let orch: Vec<&str> = inspection
        .imports
        .iter()
        .map(String::as_str)
        .filter(|i| !i.starts_with("wasi:"))
        .collect();
    assert!(orch.contains(&"orch:driver/process@0.1.0"), "{orch:?}");
    assert!(orch.contains(&"orch:types/log@0.1.0"), "{orch:?}");
    assert!(
        !orch
            .iter()
            .any(|i| i.contains("containers") || i.contains("artifacts")),
        "{orch:?}"
    );
}

#[test]
fn a_capability_not_granted_refuses_the_load() {
    let (runtime, component) = runtime_and_exec();
    let host: Arc<dyn DriverHost> = host();
    let only_log = Grants {
        log: true,
        ..Grants::default()
    };
    let Err(err) = runtime.driver(component, only_log, Limits::default(), Arc::clone(&host)) else {
        panic!("exec without `process` must not load")
    };
    assert!(
        matches!(
            &err,
            PluginError::NotGranted {
                capability: "process",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.kind(), "not-granted");
    let message = err.to_string();
    assert!(
        message.starts_with("plugin builtin:exec@sha256:"),
        "{message}"
    );
    assert!(
        message.contains("imports the `process` capability"),
        "{message}"
    );
    assert!(
        message.contains(r#"[driver.exec] grants = ["process", "log"]"#),
        "{message}"
    );

    let only_process = Grants {
        process: true,
        ..Grants::default()
    };
    let Err(err) = runtime.driver(component, only_process, Limits::default(), host) else {
        panic!("exec without `log` must not load")
    };
    assert!(
        matches!(
            err,
            PluginError::NotGranted {
                capability: "log",
                ..
            }
        ),
        "{err:?}"
    );
}

/// A component that imports `containers`: the driver world's export over a
/// dummy core module (see `tests/fixtures/README.md`).
/// The built-in oci driver: it imports `containers` (and `log`).
fn containers_driver() -> &'static [u8] {
    orch_builtins::get("oci").unwrap().wasm
}

#[test]
fn a_component_importing_containers_needs_the_grant() {
    let (runtime, _) = runtime_and_exec();
    let component = runtime
        .load("builtin:oci", containers_driver(), &Limits::default())
        .unwrap();
    assert!(
        runtime
            .inspect(&component)
            .imports
            .iter()
            .any(|i| i == "orch:driver/containers@0.1.0")
    );
    let host: Arc<dyn DriverHost> = host();
    let all_but_containers = Grants {
        process: true,
        artifacts: true,
        log: true,
        containers: false,
    };
    let Err(err) = runtime.driver(
        &component,
        all_but_containers,
        Limits::default(),
        Arc::clone(&host),
    ) else {
        panic!("a containers import without the grant must not load")
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
    let containers = Grants {
        containers: true,
        log: true,
        ..Grants::default()
    };
    runtime
        .driver(&component, containers, Limits::default(), host)
        .unwrap();
}

#[test]
fn a_driver_is_shared_across_threads() {
    fn send_sync<T: Send + Sync + Clone>() {}
    send_sync::<DriverPlugin>();
    // Clones share warm instances; calls from two threads at once each get
    // their own.
    let host = host();
    let exec = exec(&host);
    let waits: Vec<_> = (0..2)
        .map(|i| {
            let exec = exec.clone();
            std::thread::spawn(move || {
                let t = task(
                    "pair",
                    &format!(r#"{{"command": "/bin/sh", "args": ["-c", "exit {i}"]}}"#),
                );
                let handle = exec.start(&t).unwrap();
                exec.wait(&handle, Duration::from_secs(30))
                    .unwrap()
                    .unwrap()
                    .exit_code
            })
        })
        .collect();
    let codes: Vec<_> = waits.into_iter().map(|w| w.join().unwrap()).collect();
    assert_eq!(codes, [Some(0), Some(1)]);
}

#[test]
fn a_scorer_is_not_a_driver() {
    let (runtime, _) = runtime_and_exec();
    let wasm = orch_builtins::get("binpack").unwrap().wasm;
    let component = runtime
        .load("builtin:binpack", wasm, &Limits::default())
        .unwrap();
    let Err(err) = runtime.driver(&component, EXEC_GRANTS, Limits::default(), host()) else {
        panic!("a scorer must not load as a driver")
    };
    assert_eq!(err.kind(), "wrong-world");
    assert!(err.to_string().contains("is not a task driver"), "{err}");
}
