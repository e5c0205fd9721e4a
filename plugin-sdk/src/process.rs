//! Processes on the node: the `process` capability (`orch:driver/process`).
//!
//! The host starts the process in the task's directory, sends its output to
//! the task's log files and applies the task's limits where the kernel can.
//! Only inside a component: built natively, every call returns an error.

use crate::{ExitResult, Resources, TaskId};
use std::time::Duration;

/// What to spawn.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpawnRequest {
    /// `argv[0]` is resolved in the task directory, then in `PATH`.
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Working directory, relative to the task directory.
    pub cwd: String,
    /// Limits to enforce.
    pub limits: Resources,
}

/// A process the host spawned or re-attached for this driver. Dropping it
/// does not stop the process.
pub struct Child {
    #[cfg(target_arch = "wasm32")]
    inner: crate::driver_bindings::orch::driver::process::Child,
    #[cfg(not(target_arch = "wasm32"))]
    never: std::convert::Infallible,
}

impl std::fmt::Debug for Child {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Child")
            .field("pid", &self.pid())
            .finish_non_exhaustive()
    }
}

/// Spawns a process for `task`.
pub fn spawn(task: &TaskId, request: &SpawnRequest) -> Result<Child, String> {
    imp::spawn(task, request)
}

/// Re-attaches a process this node's agent spawned before (perhaps before
/// it restarted). Fails when the pid is gone or belongs to another process
/// now.
pub fn attach(task: &TaskId, pid: u32, start_token: u64) -> Result<Child, String> {
    imp::attach(task, pid, start_token)
}

impl Child {
    /// The operating system's process id.
    pub fn pid(&self) -> u32 {
        imp::pid(self)
    }

    /// With the pid, identifies the process across pid reuse: keep both in
    /// the task handle.
    pub fn start_token(&self) -> u64 {
        imp::start_token(self)
    }

    /// Sends a signal by name, e.g. `SIGTERM`.
    pub fn signal(&self, signal: &str) -> Result<(), String> {
        imp::signal(self, signal)
    }

    /// Waits up to `timeout` (at most ~49 days) for the process to end;
    /// `None` if it still runs.
    pub fn wait(&self, timeout: Duration) -> Result<Option<ExitResult>, String> {
        let ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
        imp::wait(self, ms)
    }
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::{Child, SpawnRequest};
    use crate::driver::wasm::{exit, wit_task_id};
    use crate::driver_bindings::orch::driver::process as wit;
    use crate::driver_bindings::orch::types::types as shared;
    use crate::{ExitResult, TaskId};

    pub(super) fn spawn(task: &TaskId, request: &SpawnRequest) -> Result<Child, String> {
        let request = wit::SpawnRequest {
            argv: request.argv.clone(),
            env: request
                .env
                .iter()
                .map(|(key, value)| shared::KeyValue {
                    key: key.clone(),
                    value: value.clone(),
                })
                .collect(),
            cwd: request.cwd.clone(),
            limits: shared::Resources {
                cpu_mhz: request.limits.cpu_mhz,
                memory_mib: request.limits.memory_mib,
                disk_mib: request.limits.disk_mib,
            },
        };
        wit::spawn(&wit_task_id(task), &request).map(|inner| Child { inner })
    }

    pub(super) fn attach(task: &TaskId, pid: u32, start_token: u64) -> Result<Child, String> {
        wit::attach(&wit_task_id(task), pid, start_token).map(|inner| Child { inner })
    }

    pub(super) fn pid(child: &Child) -> u32 {
        child.inner.pid()
    }

    pub(super) fn start_token(child: &Child) -> u64 {
        child.inner.start_token()
    }

    pub(super) fn signal(child: &Child, signal: &str) -> Result<(), String> {
        child.inner.signal(signal)
    }

    pub(super) fn wait(child: &Child, timeout_ms: u32) -> Result<Option<ExitResult>, String> {
        child.inner.wait(timeout_ms).map(|e| e.map(exit))
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use super::{Child, SpawnRequest};
    use crate::{ExitResult, TaskId};

    const NATIVE: &str =
        "the process capability exists only inside a component run by an orch agent";

    pub(super) fn spawn(_: &TaskId, _: &SpawnRequest) -> Result<Child, String> {
        Err(NATIVE.to_owned())
    }

    pub(super) fn attach(_: &TaskId, _: u32, _: u64) -> Result<Child, String> {
        Err(NATIVE.to_owned())
    }

    pub(super) fn pid(child: &Child) -> u32 {
        match child.never {}
    }

    pub(super) fn start_token(child: &Child) -> u64 {
        match child.never {}
    }

    pub(super) fn signal(child: &Child, _: &str) -> Result<(), String> {
        match child.never {}
    }

    pub(super) fn wait(child: &Child, _: u32) -> Result<Option<ExitResult>, String> {
        match child.never {}
    }
}
