//! What a node offers the task drivers it runs: the host side of the
//! capabilities in `wit/driver` (`process`, `artifacts`, `log`), as plain
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
    fn signal(&mut self, signal: &str) -> Result<(), String>;
    /// Waits up to `timeout` for the process to end; `None` if it still runs.
    fn wait(&mut self, timeout: Duration) -> Result<Option<ExitStatus>, String>;
}

/// The node's side of the driver capabilities. Every method may block (a
/// spawn, a download); the runtime calls them from the driver call's thread.
/// Errors are messages a person can act on; they reach the driver, which
/// usually passes them on in a task event.
pub trait DriverHost: Send + Sync + 'static {
    fn spawn(&self, task: &TaskRef, spec: SpawnSpec) -> Result<Box<dyn ProcessHandle>, String>;
    /// Fails when the pid is gone without a recorded exit, or belongs to
    /// another process now.
    fn attach(
        &self,
        task: &TaskRef,
        pid: u32,
        start_token: u64,
    ) -> Result<Box<dyn ProcessHandle>, String>;
    /// Returns the absolute path the artifact was written to.
    fn fetch(&self, task: &TaskRef, artifact: FetchSpec) -> Result<String, String>;
    /// A line from the driver called `driver` for the agent's log.
    fn log(&self, driver: &str, level: LogLevel, message: &str);
}

/// Which host capabilities a driver may import, from the agent's config.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Grants {
    pub process: bool,
    pub artifacts: bool,
    pub containers: bool,
    pub log: bool,
}
