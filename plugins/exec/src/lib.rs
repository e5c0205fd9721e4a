//! The exec task driver: "run this binary". A task's config names a
//! `command` and its `args`; the driver asks the host's `process` capability
//! to spawn it (in the task directory, with the task's environment and
//! limits) and keeps the pid and the host's start token in the task handle,
//! so that every later call, also after an agent restart, re-attaches to the
//! same process and never to another that reused its pid.
//!
//! It imports `process` and `log` only: grant it
//! `[driver.exec] grants = ["process", "log"]`.

mod config;

pub use config::{ExecConfig, parse as parse_config};

use orch_plugin_sdk::process::{self, Child, SpawnRequest};
use orch_plugin_sdk::{
    ConfigError, Driver, DriverError, DriverInfo, ExitResult, LogLevel, TaskConfig, TaskHandle,
    TaskState, export_driver, log,
};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How long `stop` and `destroy` wait for a process to go after SIGKILL.
/// Short: the kernel acts on SIGKILL at once, and the call's deadline (the
/// plugin's own, beyond the stop timeout) must cover it.
const AFTER_KILL: Duration = Duration::from_millis(250);

/// Version of [`State`]'s encoding in task handles.
const HANDLE_VERSION: u32 = 1;

/// What a task handle's `state` holds: enough to re-attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct State {
    pid: u32,
    start_token: u64,
}

/// The exec driver.
#[derive(Debug, Default)]
pub struct Exec;

impl Driver for Exec {
    const INFO: DriverInfo = DriverInfo {
        name: "exec",
        version: env!("CARGO_PKG_VERSION"),
        can_signal: true,
        can_recover: true,
    };

    fn validate_config(&self, config: &str) -> Result<(), Vec<ConfigError>> {
        config::parse(config).map(drop)
    }

    fn start(&self, task: &TaskConfig) -> Result<TaskHandle, DriverError> {
        let config = config::parse(&task.config).map_err(DriverError::InvalidConfig)?;
        let request = SpawnRequest {
            argv: config.argv(),
            env: task.env.clone(),
            cwd: ".".to_owned(),
            limits: task.resources,
        };
        let child = process::spawn(&task.id, &request)
            .map_err(|e| DriverError::failed(format!("cannot start {:?}: {e}", config.command)))?;
        let state = State {
            pid: child.pid(),
            start_token: child.start_token(),
        };
        log(
            LogLevel::Info,
            &format!(
                "started {:?} for task {} of allocation {}: pid {}",
                config.command, task.id.task, task.id.alloc_id, state.pid
            ),
        );
        Ok(TaskHandle {
            id: task.id.clone(),
            version: HANDLE_VERSION,
            state: serde_json::to_string(&state)
                .map_err(|e| DriverError::failed(format!("encoding the task handle: {e}")))?,
        })
    }

    fn wait(
        &self,
        handle: &TaskHandle,
        timeout: Duration,
    ) -> Result<Option<ExitResult>, DriverError> {
        let (child, state) = attach(handle)?;
        child.wait(timeout).map_err(|e| waiting(state, &e))
    }

    fn inspect(&self, handle: &TaskHandle) -> Result<TaskState, DriverError> {
        let (child, state) = attach(handle)?;
        Ok(
            match child.wait(Duration::ZERO).map_err(|e| waiting(state, &e))? {
                None => TaskState::Running,
                Some(exit) => TaskState::Exited(exit),
            },
        )
    }

    fn stop(
        &self,
        handle: &TaskHandle,
        signal: &str,
        timeout: Duration,
    ) -> Result<(), DriverError> {
        let (child, state) = attach(handle)?;
        if child
            .wait(Duration::ZERO)
            .map_err(|e| waiting(state, &e))?
            .is_some()
        {
            return Ok(());
        }
        child.signal(signal).map_err(|e| {
            DriverError::failed(format!("sending {signal} to pid {}: {e}", state.pid))
        })?;
        if child
            .wait(timeout)
            .map_err(|e| waiting(state, &e))?
            .is_some()
        {
            return Ok(());
        }
        log(
            LogLevel::Warn,
            &format!(
                "pid {} did not stop within {timeout:?} of {signal}; killing it",
                state.pid
            ),
        );
        kill(&child, state)
    }

    fn destroy(&self, handle: &TaskHandle, force: bool) -> Result<(), DriverError> {
        // A process that cannot be attached is gone: nothing is left to free.
        let Ok((child, state)) = attach(handle) else {
            return Ok(());
        };
        match child.wait(Duration::ZERO).map_err(|e| waiting(state, &e))? {
            Some(_) => Ok(()),
            None if force => kill(&child, state),
            None => Err(DriverError::failed(format!(
                "pid {} still runs; stop the task first, or destroy it with force",
                state.pid
            ))),
        }
    }

    fn signal(&self, handle: &TaskHandle, signal: &str) -> Result<(), DriverError> {
        let (child, state) = attach(handle)?;
        child
            .signal(signal)
            .map_err(|e| DriverError::failed(format!("sending {signal} to pid {}: {e}", state.pid)))
    }

    fn recover(&self, handle: &TaskHandle) -> Result<(), DriverError> {
        let (_, state) = attach(handle)?;
        log(
            LogLevel::Info,
            &format!(
                "recovered task {} of allocation {}: pid {}",
                handle.id.task, handle.id.alloc_id, state.pid
            ),
        );
        Ok(())
    }
}

export_driver!(Exec);

/// Reads the handle and re-attaches its process; not-found when the process
/// is gone (or its pid is another process's now).
fn attach(handle: &TaskHandle) -> Result<(Child, State), DriverError> {
    let state = decode(handle)?;
    let child = process::attach(&handle.id, state.pid, state.start_token).map_err(|e| {
        DriverError::not_found(format!(
            "the process of task {} of allocation {} (pid {}) cannot be re-attached: {e}",
            handle.id.task, handle.id.alloc_id, state.pid
        ))
    })?;
    Ok((child, state))
}

fn decode(handle: &TaskHandle) -> Result<State, DriverError> {
    if handle.version != HANDLE_VERSION {
        return Err(DriverError::failed(format!(
            "task handle version {} is not one this exec driver reads (it reads {HANDLE_VERSION}); was it written by another orch release?",
            handle.version
        )));
    }
    serde_json::from_str(&handle.state).map_err(|e| {
        DriverError::failed(format!(
            "the task handle's state is not the exec driver's ({e}); it should be {{\"pid\": …, \"start_token\": …}}"
        ))
    })
}

/// SIGKILL, then a short wait for the process to go.
fn kill(child: &Child, state: State) -> Result<(), DriverError> {
    child
        .signal("SIGKILL")
        .map_err(|e| DriverError::failed(format!("sending SIGKILL to pid {}: {e}", state.pid)))?;
    match child.wait(AFTER_KILL).map_err(|e| waiting(state, &e))? {
        Some(_) => Ok(()),
        None => Err(DriverError::failed(format!(
            "pid {} was sent SIGKILL but has not exited after {AFTER_KILL:?} (stuck in the kernel?); wait for it again later",
            state.pid
        ))),
    }
}

fn waiting(state: State, error: &str) -> DriverError {
    DriverError::failed(format!("waiting for pid {}: {error}", state.pid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use orch_plugin_sdk::TaskId;

    fn handle(version: u32, state: &str) -> TaskHandle {
        TaskHandle {
            id: TaskId {
                alloc_id: "a1".into(),
                task: "web".into(),
            },
            version,
            state: state.into(),
        }
    }

    #[test]
    fn handles_round_trip_and_foreign_ones_are_refused() {
        let state = State {
            pid: 42,
            start_token: u64::MAX,
        };
        let json = serde_json::to_string(&state).unwrap();
        assert_eq!(decode(&handle(1, &json)).unwrap(), state);
        let DriverError::Failed(m) = decode(&handle(2, &json)).unwrap_err() else {
            panic!("a newer handle is a failure")
        };
        assert!(m.contains("version 2"), "{m}");
        let DriverError::Failed(m) = decode(&handle(1, "{\"id\": \"c0ffee\"}")).unwrap_err() else {
            panic!("a foreign state is a failure")
        };
        assert!(m.contains("not the exec driver's"), "{m}");
    }

    #[test]
    fn start_checks_the_config_before_spawning() {
        let task = TaskConfig {
            config: r#"{"args": 1}"#.into(),
            ..TaskConfig::default()
        };
        let Err(DriverError::InvalidConfig(problems)) = Exec.start(&task) else {
            panic!("an invalid config must not start")
        };
        let fields: Vec<_> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, vec!["config.command", "config.args"]);
    }
}
