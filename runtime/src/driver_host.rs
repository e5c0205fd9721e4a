//! What a node offers the task drivers it runs: the host side of the
//! capabilities in `wit/driver` (`process`, `artifacts`, `containers`,
//! `log`), as plain
//! Rust types, so the agent implements them without seeing any bindings.
//!
//! The runtime links a driver's imports to a [`DriverHost`]; each call is
//! checked against the driver's [`Grants`] first, so a capability that was
//! not granted is refused even if a component got past the load check.

use std::time::Duration;

/// One task of one allocation, as a driver names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct TaskRef {
    pub alloc_id: String,
    pub task: String,
}

/// Resources to enforce on a spawned process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcessLimits {
    pub cpu_mhz: u32,
    pub memory_mib: u64,
}

/// What a driver asks the host to spawn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpawnSpec {
    /// `argv[0]` is resolved in the task directory, then in `PATH`.
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Working directory, relative to the task directory.
    pub cwd: String,
    pub limits: ProcessLimits,
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitStatus {
    pub exit_code: Option<i32>,
    pub signal: Option<u32>,
    pub oom_killed: bool,
    /// Milliseconds since the Unix epoch.
    pub finished_at_ms: u64,
}

/// A file a driver asks the host to fetch into the task directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchSpec {
    /// `http://` or `https://` URL, `file://` URL, or a path relative to
    /// the task directory.
    pub source: String,
    /// Hex sha256 of the content; required for remote sources.
    pub sha256: Option<String>,
    /// Relative to the task directory.
    pub destination: String,
    /// Unix permission bits, e.g. 0o755.
    pub mode: Option<u32>,
}

/// How much a driver's log line matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// A process the host spawned for a driver, or re-attached after an agent
/// restart.
pub trait ProcessHandle: Send {
    fn pid(&self) -> u32;
    /// With the pid, identifies the process across pid reuse.
    fn start_token(&self) -> u64;
    /// Sends a signal by name, e.g. `SIGTERM`, to the process and its group.
    fn signal(&mut self, signal: &str) -> Result<(), CapabilityError>;
    /// Waits up to `timeout` for the process to end; `None` if it still runs.
    fn wait(&mut self, timeout: Duration) -> Result<Option<ExitStatus>, CapabilityError>;
}

/// Why a host capability call failed. Every variant carries a message a
/// person can act on; the kind says whether the operator's policy, the
/// request, a vanished object or the node itself is at fault. The
/// `containers` interface carries the kind to the driver (a denied call
/// fails the task without a restart); `process` and `artifacts` carry only
/// the message, as their WIT says, and the kind serves the host's own code
/// and tests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapabilityError {
    /// The operator's policy forbids it; the message names the setting that
    /// would allow it.
    #[error("{0}")]
    Denied(String),
    /// The request itself cannot be carried out as written: a path that
    /// leaves the task directory, a name that cannot be a directory, an
    /// unknown signal, an artifact without its sha256.
    #[error("{0}")]
    Invalid(String),
    /// What the call names is not there (any more): an image, a tag, a
    /// container, a process that ended without a recorded exit.
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Failed(String),
}

/// The node's container engine.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EngineInfo {
    /// e.g. `docker`.
    pub name: String,
    pub version: String,
    pub api_version: String,
    pub os: String,
    pub arch: String,
}

/// A container port published on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMapping {
    /// Label from the job file, e.g. `http`.
    pub label: String,
    pub container_port: u16,
    /// 0 asks the engine to choose.
    pub host_port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
}

/// A directory of the allocation mounted into a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Relative to the allocation directory; absolute only where the
    /// operator allowed the host path.
    pub source: String,
    /// Absolute path inside the container.
    pub target: String,
    pub read_only: bool,
}

/// What a driver asks the host to create.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerSpec {
    pub image: String,
    /// Replaces the image's entrypoint when given.
    pub command: Option<Vec<String>>,
    /// Replaces the image's cmd when not empty.
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub ports: Vec<PortMapping>,
    pub mounts: Vec<Mount>,
    pub limits: ProcessLimits,
    pub privileged: bool,
    /// `none`, `bridge` (the default when empty) or `host`.
    pub network_mode: String,
    pub host_pid: bool,
    pub host_ipc: bool,
    pub user: Option<String>,
    pub working_dir: Option<String>,
}

/// Resource usage of a running container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UsageStats {
    pub cpu_time_ns: u64,
    pub memory_bytes: u64,
    /// Milliseconds since the Unix epoch.
    pub taken_at_ms: u64,
}

/// What a host without a container engine answers.
fn no_engine() -> CapabilityError {
    CapabilityError::Failed("this node has no container engine".to_owned())
}

/// The node's side of the driver capabilities. Every method may block (a
/// spawn, a download); the runtime calls them from the driver call's thread.
/// Errors say what went wrong in words a person can act on; they reach the
/// driver, which usually passes them on in a task event.
pub trait DriverHost: Send + Sync + 'static {
    fn spawn(
        &self,
        task: &TaskRef,
        spec: SpawnSpec,
    ) -> Result<Box<dyn ProcessHandle>, CapabilityError>;
    /// Fails when the pid is gone without a recorded exit, or belongs to
    /// another process now.
    fn attach(
        &self,
        task: &TaskRef,
        pid: u32,
        start_token: u64,
    ) -> Result<Box<dyn ProcessHandle>, CapabilityError>;
    /// Returns the absolute path the artifact was written to.
    fn fetch(&self, task: &TaskRef, artifact: FetchSpec) -> Result<String, CapabilityError>;
    /// A line from the driver called `driver` for the agent's log.
    fn log(&self, driver: &str, level: LogLevel, message: &str);

    // The `containers` capability. The host checks every request against
    // the operator's policy before the engine sees it, and acts only on
    // containers it created for this agent. A host without an engine keeps
    // the defaults.

    /// Whether the engine answers, and what it is.
    fn engine_info(&self) -> Result<EngineInfo, CapabilityError> {
        Err(no_engine())
    }
    /// Pulls `image` unless present (with the operator's registry
    /// credentials); returns the image id. May take minutes.
    fn pull_image(&self, task: &TaskRef, image: &str) -> Result<String, CapabilityError> {
        let _ = (task, image);
        Err(no_engine())
    }
    /// Creates the task's container (checked against the policy, with the
    /// allocation's directories mounted); returns its id.
    fn create_container(
        &self,
        task: &TaskRef,
        spec: ContainerSpec,
    ) -> Result<String, CapabilityError> {
        let _ = (task, spec);
        Err(no_engine())
    }
    /// Starts it and begins copying its output into the task's log files.
    fn start_container(&self, id: &str) -> Result<(), CapabilityError> {
        let _ = id;
        Err(no_engine())
    }
    /// Waits up to `timeout` for it to end; `None` while it runs.
    fn wait_container(
        &self,
        id: &str,
        timeout: Duration,
    ) -> Result<Option<ExitStatus>, CapabilityError> {
        let _ = (id, timeout);
        Err(no_engine())
    }
    /// Sends `signal`, e.g. `SIGHUP`, to the container's main process.
    fn kill_container(&self, id: &str, signal: &str) -> Result<(), CapabilityError> {
        let _ = (id, signal);
        Err(no_engine())
    }
    /// Sends `signal`, then kills it after `timeout`.
    fn stop_container(
        &self,
        id: &str,
        signal: &str,
        timeout: Duration,
    ) -> Result<(), CapabilityError> {
        let _ = (id, signal, timeout);
        Err(no_engine())
    }
    fn remove_container(&self, id: &str, force: bool) -> Result<(), CapabilityError> {
        let _ = (id, force);
        Err(no_engine())
    }
    /// `Some(running)`, or `None` when the container is gone. Picks the log
    /// copy up again after an agent restart.
    fn inspect_container(&self, id: &str) -> Result<Option<bool>, CapabilityError> {
        let _ = id;
        Err(no_engine())
    }
    fn container_stats(&self, id: &str) -> Result<UsageStats, CapabilityError> {
        let _ = id;
        Err(no_engine())
    }
    /// The host ports the engine bound.
    fn container_ports(&self, id: &str) -> Result<Vec<PortMapping>, CapabilityError> {
        let _ = id;
        Err(no_engine())
    }
}

/// Which host capabilities a driver may import, from the agent's config.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Grants {
    pub process: bool,
    pub artifacts: bool,
    pub containers: bool,
    pub log: bool,
}
