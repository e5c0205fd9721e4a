//! Containers on the node's engine: the `containers` capability
//! (`orch:driver/containers`).
//!
//! Narrow on purpose: the host checks every request against the operator's
//! policy before the engine sees it (privileged mode, host namespaces and
//! mounts outside the allocation are refused unless allowed), acts only on
//! containers it created for this agent, mounts the allocation's
//! directories (`/alloc`, `/local`, `/secrets`) and copies the container's
//! output into the task's log files. Only inside a component: built
//! natively, every call returns [`ContainerError::Failed`].

use crate::{ExitResult, Resources, TaskId, TaskStats};
use std::fmt;
use std::time::Duration;

/// Why a container call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerError {
    /// The operator's policy forbids the request; the message names the
    /// setting that would allow it. Retrying does not help.
    Denied(String),
    /// The image, tag or container does not exist.
    NotFound(String),
    /// The engine is unreachable, the registry refused, or anything else.
    Failed(String),
}

impl ContainerError {
    /// The host's message.
    pub fn message(&self) -> &str {
        match self {
            Self::Denied(m) | Self::NotFound(m) | Self::Failed(m) => m,
        }
    }
}

impl fmt::Display for ContainerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for ContainerError {}

/// The node's container engine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Engine {
    /// e.g. `docker`.
    pub name: String,
    pub version: String,
    pub api_version: String,
    pub os: String,
    pub arch: String,
}

/// A container port published on the node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortMapping {
    /// A name for the port, e.g. `http` or `port_8080`.
    pub label: String,
    pub container_port: u16,
    /// 0 lets the engine choose.
    pub host_port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
}

/// A directory mounted into the container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mount {
    /// Relative to the allocation directory (absolute host paths only where
    /// the operator allowed them).
    pub source: String,
    /// Absolute path inside the container.
    pub target: String,
    pub read_only: bool,
}

/// What to create.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerSpec {
    /// e.g. `127.0.0.1:5000/app:1.2` or `…@sha256:…`.
    pub image: String,
    /// Replaces the image's entrypoint when given.
    pub command: Option<Vec<String>>,
    /// Replaces the image's cmd when not empty.
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub ports: Vec<PortMapping>,
    pub mounts: Vec<Mount>,
    pub limits: Resources,
    pub privileged: bool,
    /// `none`, `bridge` (the default when empty) or `host`.
    pub network_mode: String,
    /// Share the host's pid namespace.
    pub host_pid: bool,
    /// Share the host's ipc namespace.
    pub host_ipc: bool,
    /// User inside the container, e.g. `1000:1000`.
    pub user: Option<String>,
    /// Working directory inside the container.
    pub working_dir: Option<String>,
}

/// Whether the engine answers, and what it is.
pub fn engine_info() -> Result<Engine, ContainerError> {
    imp::engine_info()
}

/// Pulls `image` for `task` unless the node has it; returns the image id.
/// May take minutes.
pub fn pull(task: &TaskId, image: &str) -> Result<String, ContainerError> {
    imp::pull(task, image)
}

/// Creates the task's container; returns its id.
pub fn create(task: &TaskId, spec: &ContainerSpec) -> Result<String, ContainerError> {
    imp::create(task, spec)
}

/// Starts the container; the host begins copying its output into the
/// task's log files.
pub fn start(id: &str) -> Result<(), ContainerError> {
    imp::start(id)
}

/// Waits up to `timeout` (at most ~49 days) for the container to end;
/// `None` while it runs.
pub fn wait(id: &str, timeout: Duration) -> Result<Option<ExitResult>, ContainerError> {
    imp::wait(id, millis(timeout))
}

/// Sends `signal`, e.g. `SIGHUP`, to the container's main process.
pub fn kill(id: &str, signal: &str) -> Result<(), ContainerError> {
    imp::kill(id, signal)
}

/// Sends `signal`, then kills the container after `timeout`. A container
/// that already exited is no error.
pub fn stop(id: &str, signal: &str, timeout: Duration) -> Result<(), ContainerError> {
    imp::stop(id, signal, millis(timeout))
}

/// Removes the container; `force` kills it first if it runs.
pub fn remove(id: &str, force: bool) -> Result<(), ContainerError> {
    imp::remove(id, force)
}

/// `Some(running)`, or `None` when the container no longer exists. Also
/// picks up the copy of its output again after an agent restart.
pub fn inspect(id: &str) -> Result<Option<bool>, ContainerError> {
    imp::inspect(id)
}

/// The container's resource usage, now.
pub fn stats(id: &str) -> Result<TaskStats, ContainerError> {
    imp::stats(id)
}

/// The host ports the engine bound, once the container started.
pub fn ports(id: &str) -> Result<Vec<PortMapping>, ContainerError> {
    imp::ports(id)
}

fn millis(timeout: Duration) -> u32 {
    u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX)
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::{ContainerError, ContainerSpec, Engine, PortMapping};
    use crate::driver::wasm::{exit, wit_task_id};
    use crate::driver_bindings::orch::driver::containers as wit;
    use crate::driver_bindings::orch::types::types as shared;
    use crate::{ExitResult, TaskId, TaskStats};

    fn error(e: wit::ContainerError) -> ContainerError {
        match e {
            wit::ContainerError::Denied(m) => ContainerError::Denied(m),
            wit::ContainerError::NotFound(m) => ContainerError::NotFound(m),
            wit::ContainerError::Failed(m) => ContainerError::Failed(m),
        }
    }

    fn port(p: wit::PortMapping) -> PortMapping {
        PortMapping {
            label: p.label,
            container_port: p.container_port,
            host_port: p.host_port,
            protocol: p.protocol,
        }
    }

    pub(super) fn engine_info() -> Result<Engine, ContainerError> {
        wit::engine_info()
            .map(|e| Engine {
                name: e.name,
                version: e.version,
                api_version: e.api_version,
                os: e.os,
                arch: e.arch,
            })
            .map_err(error)
    }

    pub(super) fn pull(task: &TaskId, image: &str) -> Result<String, ContainerError> {
        wit::pull(&wit_task_id(task), image).map_err(error)
    }

    pub(super) fn create(task: &TaskId, spec: &ContainerSpec) -> Result<String, ContainerError> {
        let spec = wit::ContainerSpec {
            image: spec.image.clone(),
            command: spec.command.clone(),
            args: spec.args.clone(),
            env: spec
                .env
                .iter()
                .map(|(key, value)| shared::KeyValue {
                    key: key.clone(),
                    value: value.clone(),
                })
                .collect(),
            ports: spec
                .ports
                .iter()
                .map(|p| wit::PortMapping {
                    label: p.label.clone(),
                    container_port: p.container_port,
                    host_port: p.host_port,
                    protocol: p.protocol.clone(),
                })
                .collect(),
            mounts: spec
                .mounts
                .iter()
                .map(|m| wit::Mount {
                    source: m.source.clone(),
                    target: m.target.clone(),
                    read_only: m.read_only,
                })
                .collect(),
            limits: shared::Resources {
                cpu_mhz: spec.limits.cpu_mhz,
                memory_mib: spec.limits.memory_mib,
                disk_mib: spec.limits.disk_mib,
            },
            privileged: spec.privileged,
            network_mode: spec.network_mode.clone(),
            host_pid: spec.host_pid,
            host_ipc: spec.host_ipc,
            user: spec.user.clone(),
            working_dir: spec.working_dir.clone(),
        };
        wit::create(&wit_task_id(task), &spec).map_err(error)
    }

    pub(super) fn start(id: &str) -> Result<(), ContainerError> {
        wit::start(id).map_err(error)
    }

    pub(super) fn wait(id: &str, timeout_ms: u32) -> Result<Option<ExitResult>, ContainerError> {
        wit::wait(id, timeout_ms)
            .map(|e| e.map(exit))
            .map_err(error)
    }

    pub(super) fn kill(id: &str, signal: &str) -> Result<(), ContainerError> {
        wit::kill(id, signal).map_err(error)
    }

    pub(super) fn stop(id: &str, signal: &str, timeout_ms: u32) -> Result<(), ContainerError> {
        wit::stop(id, signal, timeout_ms).map_err(error)
    }

    pub(super) fn remove(id: &str, force: bool) -> Result<(), ContainerError> {
        wit::remove(id, force).map_err(error)
    }

    pub(super) fn inspect(id: &str) -> Result<Option<bool>, ContainerError> {
        wit::inspect(id).map_err(error)
    }

    pub(super) fn stats(id: &str) -> Result<TaskStats, ContainerError> {
        wit::stats(id)
            .map(|s| TaskStats {
                cpu_time_ns: s.cpu_time_ns,
                memory_bytes: s.memory_bytes,
                taken_at_ms: s.taken_at_ms,
            })
            .map_err(error)
    }

    pub(super) fn ports(id: &str) -> Result<Vec<PortMapping>, ContainerError> {
        wit::ports(id)
            .map(|ports| ports.into_iter().map(port).collect())
            .map_err(error)
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use super::{ContainerError, ContainerSpec, Engine, PortMapping};
    use crate::{ExitResult, TaskId, TaskStats};

    fn native() -> ContainerError {
        ContainerError::Failed(
            "the containers capability exists only inside a component run by an orch agent"
                .to_owned(),
        )
    }

    pub(super) fn engine_info() -> Result<Engine, ContainerError> {
        Err(native())
    }

    pub(super) fn pull(_: &TaskId, _: &str) -> Result<String, ContainerError> {
        Err(native())
    }

    pub(super) fn create(_: &TaskId, _: &ContainerSpec) -> Result<String, ContainerError> {
        Err(native())
    }

    pub(super) fn start(_: &str) -> Result<(), ContainerError> {
        Err(native())
    }

    pub(super) fn wait(_: &str, _: u32) -> Result<Option<ExitResult>, ContainerError> {
        Err(native())
    }

    pub(super) fn kill(_: &str, _: &str) -> Result<(), ContainerError> {
        Err(native())
    }

    pub(super) fn stop(_: &str, _: &str, _: u32) -> Result<(), ContainerError> {
        Err(native())
    }

    pub(super) fn remove(_: &str, _: bool) -> Result<(), ContainerError> {
        Err(native())
    }

    pub(super) fn inspect(_: &str) -> Result<Option<bool>, ContainerError> {
        Err(native())
    }

    pub(super) fn stats(_: &str) -> Result<TaskStats, ContainerError> {
        Err(native())
    }

    pub(super) fn ports(_: &str) -> Result<Vec<PortMapping>, ContainerError> {
        Err(native())
    }
}
