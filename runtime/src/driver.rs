//! The driver world, `orch:driver/driver-plugin@0.1.0`, on the host side:
//! the agent runs tasks through driver components (exec, oci, …) and gives
//! them host capabilities through its [`DriverHost`].
//!
//! Same lifecycle as a scorer: load → validate against the world (here also
//! against the driver's [`Grants`]: a capability it imports but was not
//! granted refuses the load) → instantiate with limits → call → check. The
//! capabilities themselves live in `capabilities`.

mod capabilities;

use crate::breaker::Breaker;
use crate::error::printable;
use crate::inspect::{DRIVER_INTERFACE, check_export, is_linked_wasi, same_minor, split_version};
use crate::runtime::Pool;
use crate::sandbox::{MemoryBudget, Sandbox};
use crate::{
    Component, Digest, DriverHost, ExitStatus, Grants, Limits, PluginError, Runtime, TaskRef,
};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::Store;

pub(crate) use capabilities::{DriverCtx, link_capabilities};

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit/driver",
        world: "orch:driver/driver-plugin",
        with: {
            "orch:driver/process.child": crate::driver::capabilities::Child,
        },
        // Resource-table lookups can fail (a forged handle): a trap, not a panic.
        imports: { default: trappable },
    });
}

use bindings::orch::driver::types as wit;
use bindings::{DriverPlugin as Bindings, DriverPluginPre};

/// What a `start` may spend blocked in the host on top of the plugin's
/// deadline, unless the agent sets another with
/// [`DriverPlugin::with_start_allowance`]: the epoch deadline counts wall
/// time, and the host's `spawn` (starting the task's supervisor, joining its
/// cgroup) or an artifact fetch can take seconds on a loaded machine. A
/// handle thrown away by a deadline would leave a task running that nobody
/// supervises.
const DEFAULT_START_ALLOWANCE: Duration = Duration::from_secs(30);
/// The same for calls that re-attach to or signal a process.
const HOST_ALLOWANCE: Duration = Duration::from_secs(5);
/// The same for `destroy`, which may kill a task and then free what it
/// held (removing a container's filesystem takes seconds on some storage
/// drivers).
const DESTROY_ALLOWANCE: Duration = Duration::from_secs(60);
/// What a `stop` may take past its own timeout: after the timeout the host
/// kills the task and waits for the end (a container's teardown can take
/// seconds on a loaded engine).
const KILL_ALLOWANCE: Duration = Duration::from_secs(30);

/// The world a task driver targets, as `orch plugin inspect` prints it.
pub const DRIVER_WORLD: &str = "orch:driver/driver-plugin@0.1.0";

/// Imports of the world that carry types only, so give no capability.
const TYPE_IMPORTS: &[&str] = &["orch:types/types", "orch:driver/types"];

/// The capabilities a driver may import, each with the name the agent
/// config grants it by.
const CAPABILITIES: &[(&str, &str)] = &[
    ("orch:driver/process", "process"),
    ("orch:driver/artifacts", "artifacts"),
    ("orch:driver/containers", "containers"),
    ("orch:types/log", "log"),
];

/// Whether `grants` allows the capability called `name` (see [`CAPABILITIES`]).
pub(crate) fn granted(grants: Grants, name: &str) -> bool {
    match name {
        "process" => grants.process,
        "artifacts" => grants.artifacts,
        "containers" => grants.containers,
        "log" => grants.log,
        _ => false,
    }
}

/// Longest message kept from a driver's error or state description.
const MAX_MESSAGE: usize = 1000;
/// Largest task handle state kept: the agent persists it with every task.
const MAX_STATE_BYTES: usize = 64 << 10;
/// Most config problems kept from one validation.
const MAX_PROBLEMS: usize = 64;
/// Most fingerprint attributes kept.
const MAX_ATTRIBUTES: usize = 64;

/// What a driver says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DriverInfo {
    /// The name jobs use in `driver = "…"`.
    pub name: String,
    pub version: String,
    /// Whether `signal` works.
    pub can_signal: bool,
    /// Whether `recover` can re-attach tasks after an agent restart.
    pub can_recover: bool,
}

/// Whether a driver can run tasks on this node, and what it publishes about
/// the node as `driver.<name>.<key>` attributes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DriverFingerprint {
    pub healthy: bool,
    /// Why, for an unhealthy driver.
    pub health_description: String,
    pub attributes: Vec<(String, String)>,
}

/// One problem with a task's driver config, at a field path such as
/// `config.args[2]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigProblem {
    pub field: String,
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// What the agent starts a task with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskStart {
    pub task: TaskRef,
    /// The task's `config` table from the job file, as JSON text.
    pub config_json: String,
    /// Environment for the task, already interpolated.
    pub env: Vec<(String, String)>,
    pub cpu_mhz: u32,
    pub memory_mib: u64,
    pub disk_mib: u64,
    pub alloc_dir: String,
    pub task_dir: String,
    pub secrets_dir: String,
    pub user: Option<String>,
}

/// What a driver hands back from `start`; the agent persists it (as JSON)
/// and gives it back to every later call, also after its own restart. The
/// `state` is the driver's own encoding (version `version`); the agent never
/// reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskHandle {
    pub task: TaskRef,
    pub version: u32,
    pub state: String,
}

/// Where a task is, as its driver sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskRunState {
    Running,
    Exited(ExitStatus),
    /// The driver cannot tell, and says why.
    Unknown(String),
}

/// Resource usage of a running task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskStats {
    /// CPU time used since start, in nanoseconds.
    pub cpu_time_ns: u64,
    /// Resident memory, in bytes.
    pub memory_bytes: u64,
    /// Milliseconds since the Unix epoch.
    pub taken_at_ms: u64,
}

/// Why a call that acts on a task failed: the plugin itself failed
/// ([`PluginError`]: trap, deadline, …), or the driver answered with an error.
///
/// The strings are whole sentences that name the driver and the verb, e.g.
/// `driver exec: start failed: cannot start "/nope": No such file or
/// directory`, ready for a task event.
#[derive(Debug, thiserror::Error)]
pub enum DriverCallError {
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// Every problem of the task's driver config, each at its field.
    #[error("{}", describe_problems(.0))]
    InvalidConfig(Vec<ConfigProblem>),
    /// The task (or its process, container, …) is not known to the driver.
    #[error("{0}")]
    NotFound(String),
    /// The driver does not do this.
    #[error("{0}")]
    Unsupported(String),
    /// The host refused a capability call.
    #[error("{0}")]
    Denied(String),
    #[error("{0}")]
    Failed(String),
}

impl DriverCallError {
    /// A short, stable name for the kind of failure: `invalid-config`,
    /// `not-found`, `unsupported`, `denied`, `failed`, or the plugin error's
    /// own kind (`trap`, `deadline`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Plugin(e) => e.kind(),
            Self::InvalidConfig(_) => "invalid-config",
            Self::NotFound(_) => "not-found",
            Self::Unsupported(_) => "unsupported",
            Self::Denied(_) => "denied",
            Self::Failed(_) => "failed",
        }
    }
}

fn describe_problems(problems: &[ConfigProblem]) -> String {
    let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
    match list.len() {
        0 => "the task's driver config is invalid (the driver did not say why)".to_owned(),
        1 => format!("the task's driver config is invalid: {}", list.join("")),
        n => format!(
            "the task's driver config has {n} problems: {}",
            list.join("; ")
        ),
    }
}

/// A loaded task driver that passed the world and grant checks. Calls run
/// with the plugin's limits on instances kept warm between calls (several at
/// once, for tasks started or waited on together); an instance that faults
/// is thrown away. Clones share the warm instances.
#[derive(Clone)]
pub struct DriverPlugin {
    runtime: Runtime,
    component: Component,
    limits: Limits,
    grants: Grants,
    host: Arc<dyn DriverHost>,
    pre: DriverPluginPre<Sandbox>,
    pool: Arc<Pool<Bindings>>,
    breaker: Arc<Breaker>,
    /// What `start` may spend blocked in the host (see
    /// `DEFAULT_START_ALLOWANCE`).
    start_allowance: Duration,
}

impl Runtime {
    /// Checks that `component` exports orch:driver/driver at a version this
    /// host speaks and imports nothing beyond WASI 0.2, orch:types/types,
    /// orch:driver/types and the capabilities in `grants`
    /// (orch:driver/process, orch:driver/artifacts, orch:driver/containers,
    /// orch:types/log), and prepares it. A capability imported but not
    /// granted is [`PluginError::NotGranted`].
    pub fn driver(
        &self,
        component: &Component,
        grants: Grants,
        limits: Limits,
        host: Arc<dyn DriverHost>,
    ) -> Result<DriverPlugin, PluginError> {
        let inspection = self.inspect(component);
        let wrong_world = |detail: String| PluginError::WrongWorld {
            plugin: component.name.clone(),
            digest: component.digest,
            detail,
        };
        check_export(
            component,
            &inspection,
            DRIVER_INTERFACE,
            "a task driver",
            "wit/driver",
        )?;
        for import in &inspection.imports {
            check_import(component, grants, import)?;
        }
        let instance_pre = self
            .driver_linker()
            .instantiate_pre(&component.component)
            .map_err(|e| wrong_world(format!("cannot be linked: {e:#}")))?;
        let pre = DriverPluginPre::new(instance_pre)
            .map_err(|e| wrong_world(format!("does not match {DRIVER_WORLD}: {e:#}")))?;
        Ok(DriverPlugin {
            runtime: self.clone(),
            component: component.clone(),
            grants,
            host,
            pre,
            pool: Pool::new(MemoryBudget::new(limits.total_memory_bytes)),
            breaker: Arc::new(Breaker::new(
                limits.breaker_threshold,
                limits.breaker_cooldown,
            )),
            limits,
            start_allowance: DEFAULT_START_ALLOWANCE,
        })
    }
}

/// Accepts WASI 0.2, the type-only interfaces, and the capabilities in
/// `grants`, each at a version this host speaks.
fn check_import(component: &Component, grants: Grants, import: &str) -> Result<(), PluginError> {
    let (name, version) = split_version(import);
    let ours = version.is_some_and(|v| same_minor(v, "0.1.0"));
    if is_linked_wasi(import) || (ours && TYPE_IMPORTS.contains(&name)) {
        return Ok(());
    }
    if let Some((_, capability)) = CAPABILITIES.iter().find(|(i, _)| *i == name) {
        if !granted(grants, capability) {
            return Err(PluginError::NotGranted {
                plugin: component.name.clone(),
                digest: component.digest,
                capability,
            });
        }
        if ours {
            return Ok(());
        }
    }
    Err(PluginError::ForbiddenImport {
        plugin: component.name.clone(),
        digest: component.digest,
        world: DRIVER_WORLD,
        import: import.to_owned(),
    })
}

impl DriverPlugin {
    /// The name the plugin was loaded under; its log lines carry it.
    pub fn name(&self) -> &str {
        &self.component.name
    }

    /// The sha256 of the component's bytes.
    pub fn digest(&self) -> Digest {
        self.component.digest
    }

    /// The capabilities it may use.
    pub fn grants(&self) -> Grants {
        self.grants
    }

    /// Linear memory all of this driver's instances hold now, warm and in
    /// calls, in bytes: what counts against
    /// [`Limits::total_memory_bytes`].
    pub fn memory_held(&self) -> usize {
        self.pool.memory_held()
    }

    /// The same driver, whose `start` may spend up to `allowance` blocked in
    /// the host on top of the plugin's deadline (the default is 30 s): a
    /// container driver's start pulls its image, which can take minutes.
    /// The agent sets it from `[driver.NAME] start_timeout`. Clones made
    /// before keep theirs; the warm instances are shared either way.
    #[must_use]
    pub fn with_start_allowance(mut self, allowance: Duration) -> Self {
        self.start_allowance = allowance;
        self
    }

    /// What `start` may spend blocked in the host on top of the plugin's
    /// deadline.
    pub fn start_allowance(&self) -> Duration {
        self.start_allowance
    }

    /// Asks the driver to describe itself.
    pub fn info(&self) -> Result<DriverInfo, PluginError> {
        let info = self.call(Duration::ZERO, |p, s| p.orch_driver_driver().call_info(s))?;
        Ok(DriverInfo {
            name: printable(&info.name, 64),
            version: printable(&info.version, 32),
            can_signal: info.can_signal,
            can_recover: info.can_recover,
        })
    }

    /// Asks whether the driver can run tasks on this node.
    pub fn fingerprint(&self) -> Result<DriverFingerprint, PluginError> {
        let fp = self.call(Duration::ZERO, |p, s| {
            p.orch_driver_driver().call_fingerprint(s)
        })?;
        Ok(DriverFingerprint {
            healthy: fp.healthy,
            health_description: printable(&fp.health_description, MAX_MESSAGE),
            attributes: fp
                .attributes
                .into_iter()
                .take(MAX_ATTRIBUTES)
                .map(|kv| (printable(&kv.key, 64), printable(&kv.value, 256)))
                .collect(),
        })
    }

    /// Checks a task's `config` table (JSON text) without side effects.
    /// Empty when the config is valid.
    pub fn validate_config(&self, config_json: &str) -> Result<Vec<ConfigProblem>, PluginError> {
        let result = self.call(Duration::ZERO, |p, s| {
            p.orch_driver_driver().call_validate_config(s, config_json)
        })?;
        Ok(match result {
            Ok(()) => Vec::new(),
            Err(problems) => config_problems(problems),
        })
    }

    /// Starts the task and returns its handle, for the agent to keep.
    pub fn start(&self, task: &TaskStart) -> Result<TaskHandle, DriverCallError> {
        let config = wit::TaskConfig {
            id: task_id(&task.task),
            config: task.config_json.clone(),
            env: task
                .env
                .iter()
                .map(|(key, value)| bindings::orch::types::types::KeyValue {
                    key: key.clone(),
                    value: value.clone(),
                })
                .collect(),
            resources: bindings::orch::types::types::Resources {
                cpu_mhz: task.cpu_mhz,
                memory_mib: task.memory_mib,
                disk_mib: task.disk_mib,
            },
            alloc_dir: task.alloc_dir.clone(),
            task_dir: task.task_dir.clone(),
            secrets_dir: task.secrets_dir.clone(),
            user: task.user.clone(),
        };
        let handle = self
            .call(self.start_allowance, |p, s| {
                p.orch_driver_driver().call_start(s, &config)
            })?
            .map_err(|e| self.driver_error("start", e))?;
        self.check_handle(&task.task, handle)
    }

    /// Waits up to `timeout` for the task to end; `None` if it still runs.
    /// The call may take `timeout` plus the plugin's deadline.
    pub fn wait(
        &self,
        handle: &TaskHandle,
        timeout: Duration,
    ) -> Result<Option<ExitStatus>, DriverCallError> {
        let (ms, timeout) = millis(timeout);
        let h = wit_handle(handle);
        let exit = self
            .call(timeout, |p, s| p.orch_driver_driver().call_wait(s, &h, ms))?
            .map_err(|e| self.driver_error("wait", e))?;
        Ok(exit.map(exit_status))
    }

    /// Where the task is.
    pub fn inspect(&self, handle: &TaskHandle) -> Result<TaskRunState, DriverCallError> {
        let h = wit_handle(handle);
        let state = self
            .call(HOST_ALLOWANCE, |p, s| {
                p.orch_driver_driver().call_inspect(s, &h)
            })?
            .map_err(|e| self.driver_error("inspect", e))?;
        Ok(match state {
            wit::TaskState::Running => TaskRunState::Running,
            wit::TaskState::Exited(exit) => TaskRunState::Exited(exit_status(exit)),
            wit::TaskState::Unknown(why) => TaskRunState::Unknown(printable(&why, MAX_MESSAGE)),
        })
    }

    /// Asks the task to stop with `signal` (e.g. `SIGTERM`) and has the
    /// driver kill it after `timeout`. The call may take `timeout` plus the
    /// plugin's deadline.
    pub fn stop(
        &self,
        handle: &TaskHandle,
        signal: &str,
        timeout: Duration,
    ) -> Result<(), DriverCallError> {
        let (ms, timeout) = millis(timeout);
        let h = wit_handle(handle);
        self.call(timeout + KILL_ALLOWANCE, |p, s| {
            p.orch_driver_driver().call_stop(s, &h, signal, ms)
        })?
        .map_err(|e| self.driver_error("stop", e))
    }

    /// Frees everything the task held; `force` kills it first if needed.
    pub fn destroy(&self, handle: &TaskHandle, force: bool) -> Result<(), DriverCallError> {
        let h = wit_handle(handle);
        self.call(DESTROY_ALLOWANCE, |p, s| {
            p.orch_driver_driver().call_destroy(s, &h, force)
        })?
        .map_err(|e| self.driver_error("destroy", e))
    }

    /// Sends `signal` (e.g. `SIGHUP`) to the task.
    pub fn signal(&self, handle: &TaskHandle, signal: &str) -> Result<(), DriverCallError> {
        let h = wit_handle(handle);
        self.call(HOST_ALLOWANCE, |p, s| {
            p.orch_driver_driver().call_signal(s, &h, signal)
        })?
        .map_err(|e| self.driver_error("signal", e))
    }

    /// Resource usage of the running task.
    pub fn stats(&self, handle: &TaskHandle) -> Result<TaskStats, DriverCallError> {
        let h = wit_handle(handle);
        let stats = self
            .call(Duration::ZERO, |p, s| {
                p.orch_driver_driver().call_stats(s, &h)
            })?
            .map_err(|e| self.driver_error("stats", e))?;
        Ok(TaskStats {
            cpu_time_ns: stats.cpu_time_ns,
            memory_bytes: stats.memory_bytes,
            taken_at_ms: stats.taken_at_ms,
        })
    }

    /// Re-attaches a task started before an agent restart, without
    /// restarting it; [`DriverCallError::NotFound`] when it is gone.
    pub fn recover(&self, handle: &TaskHandle) -> Result<(), DriverCallError> {
        let h = wit_handle(handle);
        self.call(HOST_ALLOWANCE, |p, s| {
            p.orch_driver_driver().call_recover(s, &h)
        })?
        .map_err(|e| self.driver_error("recover", e))
    }

    /// Runs one call on a warm instance, with the plugin's deadline plus
    /// `blocking` (the time the call may spend blocked in the host on the
    /// caller's behalf), behind the plugin's breaker.
    fn call<R>(
        &self,
        blocking: Duration,
        call: impl FnOnce(&Bindings, &mut Store<Sandbox>) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        if let Err((faults, retry_in)) = self.breaker.admit(Instant::now()) {
            return Err(PluginError::BreakerOpen {
                plugin: self.component.name.clone(),
                digest: self.component.digest,
                faults,
                retry_in,
            });
        }
        let limits = Limits {
            deadline: self.limits.deadline.saturating_add(blocking),
            ..self.limits.clone()
        };
        let result = self
            .runtime
            .call(
                &self.component,
                &limits,
                &self.pool,
                |store| {
                    store.data_mut().set_driver(DriverCtx::new(
                        self.component.name.clone(),
                        self.grants,
                        Arc::clone(&self.host),
                    ));
                    self.pre.instantiate(store)
                },
                call,
            )
            .map(|(r, _)| r);
        let fault = result.as_ref().is_err_and(PluginError::is_fault);
        self.breaker.record(fault, Instant::now());
        result
    }

    /// The driver's answer to `verb`, as a sentence naming the driver.
    fn driver_error(&self, verb: &str, error: wit::DriverError) -> DriverCallError {
        let name = &self.component.name;
        let say = |m: &str| printable(m, MAX_MESSAGE);
        match error {
            wit::DriverError::InvalidConfig(problems) => {
                DriverCallError::InvalidConfig(config_problems(problems))
            }
            wit::DriverError::NotFound(m) => {
                DriverCallError::NotFound(format!("driver {name}: {verb}: not found: {}", say(&m)))
            }
            wit::DriverError::Unsupported(m) => DriverCallError::Unsupported(format!(
                "driver {name}: {verb} is not supported: {}",
                say(&m)
            )),
            wit::DriverError::Denied(m) => DriverCallError::Denied(format!(
                "driver {name}: {verb}: refused by the host: {}",
                say(&m)
            )),
            wit::DriverError::Failed(m) => {
                DriverCallError::Failed(format!("driver {name}: {verb} failed: {}", say(&m)))
            }
        }
    }

    /// Keeps a handle only if it is for `task` and small enough to persist.
    fn check_handle(
        &self,
        task: &TaskRef,
        handle: wit::TaskHandle,
    ) -> Result<TaskHandle, DriverCallError> {
        let bad = |detail: String| {
            DriverCallError::Plugin(PluginError::BadHandle {
                plugin: self.component.name.clone(),
                digest: self.component.digest,
                detail,
            })
        };
        if handle.id.alloc_id != task.alloc_id || handle.id.task != task.task {
            return Err(bad(format!(
                "it names task {:?} of allocation {:?}, but task {:?} of allocation {:?} was started",
                printable(&handle.id.task, 100),
                printable(&handle.id.alloc_id, 100),
                task.task,
                task.alloc_id
            )));
        }
        if handle.state.len() > MAX_STATE_BYTES {
            return Err(bad(format!(
                "its state is {} bytes, over the cap of {MAX_STATE_BYTES}",
                handle.state.len()
            )));
        }
        Ok(TaskHandle {
            task: task.clone(),
            version: handle.version,
            state: handle.state,
        })
    }
}

/// `timeout` in whole milliseconds as the WIT carries it (at most ~49
/// days), and the duration that really is.
fn millis(timeout: Duration) -> (u32, Duration) {
    let ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
    (ms, Duration::from_millis(u64::from(ms)))
}

fn task_id(task: &TaskRef) -> wit::TaskId {
    wit::TaskId {
        alloc_id: task.alloc_id.clone(),
        task: task.task.clone(),
    }
}

fn wit_handle(handle: &TaskHandle) -> wit::TaskHandle {
    wit::TaskHandle {
        id: task_id(&handle.task),
        version: handle.version,
        state: handle.state.clone(),
    }
}

fn exit_status(exit: wit::ExitResult) -> ExitStatus {
    ExitStatus {
        exit_code: exit.exit_code,
        signal: exit.signal,
        oom_killed: exit.oom_killed,
        finished_at_ms: exit.finished_at_ms,
    }
}

fn config_problems(problems: Vec<wit::ConfigError>) -> Vec<ConfigProblem> {
    let total = problems.len();
    let mut kept: Vec<ConfigProblem> = problems
        .into_iter()
        .take(MAX_PROBLEMS)
        .map(|p| ConfigProblem {
            field: printable(&p.field, 200),
            message: printable(&p.message, MAX_MESSAGE),
        })
        .collect();
    if total == 0 {
        kept.push(ConfigProblem {
            field: "config".to_owned(),
            message: "the driver refused it without saying why".to_owned(),
        });
    }
    if total > MAX_PROBLEMS {
        kept.push(ConfigProblem {
            field: "config".to_owned(),
            message: format!("and {} more problems", total - MAX_PROBLEMS),
        });
    }
    kept
}
