//! The driver side of `orch:driver@0.1.0`, in plain Rust types.

use crate::Resources;
use std::time::Duration;

/// What a driver says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DriverInfo {
    /// The name jobs use in `driver = "…"`, e.g. `exec`.
    pub name: &'static str,
    /// The driver's own version.
    pub version: &'static str,
    /// Whether [`Driver::signal`] works.
    pub can_signal: bool,
    /// Whether [`Driver::recover`] can re-attach tasks after an agent restart.
    pub can_recover: bool,
}

/// Whether the driver can run tasks on this node, and what it publishes
/// about the node as `driver.<name>.<key>` attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fingerprint {
    pub healthy: bool,
    /// Why, for an unhealthy driver: shown in `orch node status`.
    pub health_description: String,
    pub attributes: Vec<(String, String)>,
}

impl Fingerprint {
    /// Healthy, with `attributes`.
    pub fn healthy(attributes: &[(&str, &str)]) -> Self {
        Self {
            healthy: true,
            health_description: "healthy".to_owned(),
            attributes: attributes
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }
}

/// One task of one allocation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskId {
    pub alloc_id: String,
    pub task: String,
}

/// A problem with a task's driver config: where (`config.args[2]`) and what
/// to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub field: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Why a driver call failed. Messages are for the operator: say what and
/// what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriverError {
    /// The task's driver config is wrong; list every problem.
    InvalidConfig(Vec<ConfigError>),
    /// The task or handle is not known (e.g. its process is gone).
    NotFound(String),
    /// The driver does not do this.
    Unsupported(String),
    /// The host refused a capability call.
    Denied(String),
    /// Anything else.
    Failed(String),
}

impl DriverError {
    pub fn failed(message: impl Into<String>) -> Self {
        Self::Failed(message.into())
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(message.into())
    }
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::Unsupported(message.into())
    }
}

/// What a task is started with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskConfig {
    pub id: TaskId,
    /// The task's `config` table from the job file, as JSON text.
    pub config: String,
    /// Environment for the task, already interpolated by the agent.
    pub env: Vec<(String, String)>,
    /// Resources reserved for the task.
    pub resources: Resources,
    pub alloc_dir: String,
    pub task_dir: String,
    pub secrets_dir: String,
    pub user: Option<String>,
}

/// What `start` hands back; the agent keeps it (across its own restarts)
/// and gives it to every later call. `state` is the driver's own encoding,
/// `version` its format, so a newer driver can read an older handle.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskHandle {
    pub id: TaskId,
    pub version: u32,
    pub state: String,
}

/// How a task ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExitResult {
    pub exit_code: Option<i32>,
    pub signal: Option<u32>,
    pub oom_killed: bool,
    /// Milliseconds since the Unix epoch.
    pub finished_at_ms: u64,
}

/// Where a task is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskState {
    Running,
    Exited(ExitResult),
    /// The driver cannot tell, and says why.
    Unknown(String),
}

/// Resource usage of a running task.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TaskStats {
    pub cpu_time_ns: u64,
    pub memory_bytes: u64,
    pub taken_at_ms: u64,
}

/// A task driver, after Nomad's driver plugins: the agent starts, watches,
/// stops and recovers tasks through it.
///
/// A fresh value is made for every call, and the agent may restart between
/// calls: keep whatever a later call needs in the [`TaskHandle`]. Reach the
/// node through the host capabilities ([`crate::process`],
/// [`crate::artifacts`], [`crate::log`]); the agent grants each driver only
/// those its config lists, and refuses to load a driver that imports more,
/// so a driver imports exactly the capabilities it calls.
pub trait Driver {
    /// What the driver says about itself.
    const INFO: DriverInfo;

    /// Whether the driver can run tasks here. Called at agent start and
    /// periodically; keep it cheap.
    fn fingerprint(&self) -> Fingerprint {
        Fingerprint::healthy(&[("version", Self::INFO.version)])
    }

    /// Checks a task's `config` (JSON text) without side effects; `Err`
    /// lists every problem.
    fn validate_config(&self, config: &str) -> Result<(), Vec<ConfigError>>;

    /// Starts the task.
    fn start(&self, task: &TaskConfig) -> Result<TaskHandle, DriverError>;

    /// Waits up to `timeout` for the task to end; `None` if it still runs.
    fn wait(
        &self,
        handle: &TaskHandle,
        timeout: Duration,
    ) -> Result<Option<ExitResult>, DriverError>;

    /// Where the task is.
    fn inspect(&self, handle: &TaskHandle) -> Result<TaskState, DriverError>;

    /// Asks the task to stop with `signal`; kills it after `timeout`.
    fn stop(&self, handle: &TaskHandle, signal: &str, timeout: Duration)
    -> Result<(), DriverError>;

    /// Frees everything the task held; `force` kills it first if needed.
    fn destroy(&self, handle: &TaskHandle, force: bool) -> Result<(), DriverError>;

    /// Sends `signal` to the task.
    fn signal(&self, handle: &TaskHandle, signal: &str) -> Result<(), DriverError> {
        let _ = (handle, signal);
        Err(DriverError::unsupported(format!(
            "the {} driver cannot signal tasks",
            Self::INFO.name
        )))
    }

    /// The task's resource usage.
    fn stats(&self, handle: &TaskHandle) -> Result<TaskStats, DriverError> {
        let _ = handle;
        Err(DriverError::unsupported(format!(
            "the {} driver does not report task statistics",
            Self::INFO.name
        )))
    }

    /// Re-attaches a task started before an agent restart, without
    /// restarting it.
    fn recover(&self, handle: &TaskHandle) -> Result<(), DriverError> {
        let _ = handle;
        Err(DriverError::unsupported(format!(
            "the {} driver cannot recover tasks after an agent restart",
            Self::INFO.name
        )))
    }
}

#[cfg(target_arch = "wasm32")]
pub(crate) mod wasm {
    //! Converts between the generated bindings and the types above; the
    //! export macro calls these.
    use super::*;
    use crate::driver_bindings::orch::driver::types as wit;
    use crate::driver_bindings::orch::types::types as shared;

    pub(crate) fn task_id(id: wit::TaskId) -> TaskId {
        TaskId {
            alloc_id: id.alloc_id,
            task: id.task,
        }
    }

    pub(crate) fn wit_task_id(id: &TaskId) -> wit::TaskId {
        wit::TaskId {
            alloc_id: id.alloc_id.clone(),
            task: id.task.clone(),
        }
    }

    pub(crate) fn exit(e: wit::ExitResult) -> ExitResult {
        ExitResult {
            exit_code: e.exit_code,
            signal: e.signal,
            oom_killed: e.oom_killed,
            finished_at_ms: e.finished_at_ms,
        }
    }

    fn wit_exit(e: ExitResult) -> wit::ExitResult {
        wit::ExitResult {
            exit_code: e.exit_code,
            signal: e.signal,
            oom_killed: e.oom_killed,
            finished_at_ms: e.finished_at_ms,
        }
    }

    fn handle(h: wit::TaskHandle) -> TaskHandle {
        TaskHandle {
            id: task_id(h.id),
            version: h.version,
            state: h.state,
        }
    }

    fn config_errors(errors: Vec<ConfigError>) -> Vec<wit::ConfigError> {
        errors
            .into_iter()
            .map(|e| wit::ConfigError {
                field: e.field,
                message: e.message,
            })
            .collect()
    }

    fn error(e: DriverError) -> wit::DriverError {
        match e {
            DriverError::InvalidConfig(list) => {
                wit::DriverError::InvalidConfig(config_errors(list))
            }
            DriverError::NotFound(m) => wit::DriverError::NotFound(m),
            DriverError::Unsupported(m) => wit::DriverError::Unsupported(m),
            DriverError::Denied(m) => wit::DriverError::Denied(m),
            DriverError::Failed(m) => wit::DriverError::Failed(m),
        }
    }

    fn ms(timeout_ms: u32) -> Duration {
        Duration::from_millis(u64::from(timeout_ms))
    }

    pub fn info<D: Driver>() -> wit::DriverInfo {
        let i = D::INFO;
        wit::DriverInfo {
            name: i.name.to_owned(),
            version: i.version.to_owned(),
            can_signal: i.can_signal,
            can_recover: i.can_recover,
        }
    }

    pub fn fingerprint<D: Driver + Default>() -> wit::DriverFingerprint {
        let f = D::default().fingerprint();
        wit::DriverFingerprint {
            healthy: f.healthy,
            health_description: f.health_description,
            attributes: f
                .attributes
                .into_iter()
                .map(|(key, value)| shared::KeyValue { key, value })
                .collect(),
        }
    }

    pub fn validate_config<D: Driver + Default>(
        config: String,
    ) -> Result<(), Vec<wit::ConfigError>> {
        D::default().validate_config(&config).map_err(config_errors)
    }

    pub fn start<D: Driver + Default>(
        task: wit::TaskConfig,
    ) -> Result<wit::TaskHandle, wit::DriverError> {
        let task = TaskConfig {
            id: task_id(task.id),
            config: task.config,
            env: task.env.into_iter().map(|kv| (kv.key, kv.value)).collect(),
            resources: Resources {
                cpu_mhz: task.resources.cpu_mhz,
                memory_mib: task.resources.memory_mib,
                disk_mib: task.resources.disk_mib,
            },
            alloc_dir: task.alloc_dir,
            task_dir: task.task_dir,
            secrets_dir: task.secrets_dir,
            user: task.user,
        };
        let h = D::default().start(&task).map_err(error)?;
        Ok(wit::TaskHandle {
            id: wit_task_id(&h.id),
            version: h.version,
            state: h.state,
        })
    }

    pub fn wait<D: Driver + Default>(
        h: wit::TaskHandle,
        timeout_ms: u32,
    ) -> Result<Option<wit::ExitResult>, wit::DriverError> {
        D::default()
            .wait(&handle(h), ms(timeout_ms))
            .map(|e| e.map(wit_exit))
            .map_err(error)
    }

    pub fn inspect<D: Driver + Default>(
        h: wit::TaskHandle,
    ) -> Result<wit::TaskState, wit::DriverError> {
        match D::default().inspect(&handle(h)).map_err(error)? {
            TaskState::Running => Ok(wit::TaskState::Running),
            TaskState::Exited(e) => Ok(wit::TaskState::Exited(wit_exit(e))),
            TaskState::Unknown(why) => Ok(wit::TaskState::Unknown(why)),
        }
    }

    pub fn stop<D: Driver + Default>(
        h: wit::TaskHandle,
        signal: String,
        timeout_ms: u32,
    ) -> Result<(), wit::DriverError> {
        D::default()
            .stop(&handle(h), &signal, ms(timeout_ms))
            .map_err(error)
    }

    pub fn destroy<D: Driver + Default>(
        h: wit::TaskHandle,
        force: bool,
    ) -> Result<(), wit::DriverError> {
        D::default().destroy(&handle(h), force).map_err(error)
    }

    pub fn signal<D: Driver + Default>(
        h: wit::TaskHandle,
        signal: String,
    ) -> Result<(), wit::DriverError> {
        D::default().signal(&handle(h), &signal).map_err(error)
    }

    pub fn stats<D: Driver + Default>(
        h: wit::TaskHandle,
    ) -> Result<wit::TaskStats, wit::DriverError> {
        let s = D::default().stats(&handle(h)).map_err(error)?;
        Ok(wit::TaskStats {
            cpu_time_ns: s.cpu_time_ns,
            memory_bytes: s.memory_bytes,
            taken_at_ms: s.taken_at_ms,
        })
    }

    pub fn recover<D: Driver + Default>(h: wit::TaskHandle) -> Result<(), wit::DriverError> {
        D::default().recover(&handle(h)).map_err(error)
    }
}
