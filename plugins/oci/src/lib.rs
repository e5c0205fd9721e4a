//! The oci task driver: "run this container image". The driver checks the
//! task's config, then asks the host's `containers` capability to pull the
//! image, create the task's container (with the task's environment and its
//! resources as limits) and start it. It keeps the container id and image
//! id in the task handle; every later call, also after an agent restart,
//! acts on that container. The host judges every request against the
//! operator's policy (privileged mode, host namespaces, mounts), mounts the
//! allocation's directories at `/alloc`, `/local` and `/secrets`, and copies
//! the container's output into the task's log files.
//!
//! It imports `containers` and `log` only: grant it
//! `[driver.oci] grants = ["containers", "log"]`.
//!
//! # The task's config
//!
//! | key | type | meaning |
//! |---|---|---|
//! | `image` | string, required | `[registry[:port]/]name[:tag][@sha256:…]`; `:latest` when neither tag nor digest is given |
//! | `entrypoint` | list of strings | replaces the image's ENTRYPOINT |
//! | `command` | string | short for a one-element `entrypoint` (`command = "/bin/httpd"` is `entrypoint = ["/bin/httpd"]`); give one of the two. Unlike Nomad's docker driver, where `command` replaces the CMD |
//! | `args` | list of strings | replaces the image's CMD |
//! | `ports` | list | Docker CLI style: `"8080"` (the engine picks the host port), `"18080:8080"`, `"53/udp"`, `"18053:53/udp"`; labelled `port_8080`, `port_53_udp` |
//! | `privileged` | bool | asks for privileged mode; the operator must allow it |
//! | `network_mode` | string | `"bridge"` (default), `"none"` or `"host"` |
//! | `pid_mode`, `ipc_mode` | string | `""` (default) or `"host"` |
//! | `mounts` | list of `{ source, target, readonly }` | `source` relative to the allocation directory (absolute only where the operator allows it), `target` absolute |
//! | `user` | string | user inside the container, e.g. `"1000:1000"`; defaults to the task's `user` |
//! | `work_dir` | string | absolute working directory inside the container |
//!
//! ```toml
//! [[group.task]]
//! name = "web"
//! driver = "oci"
//! [group.task.config]
//! image = "127.0.0.1:5000/web:1.2"
//! command = "/bin/httpd"
//! args = ["-f", "-p", "8080", "-h", "/www"]
//! ports = ["8080"]
//! mounts = [{ source = "www", target = "/www", readonly = true }]
//! ```

mod config;
mod reference;

pub use config::{OciConfig, parse as parse_config};

use orch_plugin_sdk::containers::{self, ContainerError, ContainerSpec};
use orch_plugin_sdk::{
    ConfigError, Driver, DriverError, DriverInfo, ExitResult, Fingerprint, LogLevel, TaskConfig,
    TaskHandle, TaskState, TaskStats, export_driver, log,
};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Version of [`State`]'s encoding in task handles.
const HANDLE_VERSION: u32 = 1;

/// How long a forced `destroy` gives the container to go after SIGKILL
/// before removing it anyway (the removal is forced too).
const FORCED_STOP: Duration = Duration::from_secs(1);

/// What a task handle's `state` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct State {
    container_id: String,
    image_id: String,
}

/// The oci driver.
#[derive(Debug, Default)]
pub struct Oci;

impl Driver for Oci {
    const INFO: DriverInfo = DriverInfo {
        name: "oci",
        version: env!("CARGO_PKG_VERSION"),
        can_signal: true,
        can_recover: true,
    };

    fn fingerprint(&self) -> Fingerprint {
        match containers::engine_info() {
            Ok(engine) => Fingerprint {
                healthy: true,
                health_description: format!("{} {} is reachable", engine.name, engine.version),
                attributes: vec![
                    ("version".to_owned(), engine.version),
                    ("api_version".to_owned(), engine.api_version),
                    ("os".to_owned(), engine.os),
                    ("arch".to_owned(), engine.arch),
                ],
            },
            Err(e) => Fingerprint {
                healthy: false,
                health_description: format!("the container engine is not usable: {e}"),
                attributes: Vec::new(),
            },
        }
    }

    fn validate_config(&self, config: &str) -> Result<(), Vec<ConfigError>> {
        config::parse(config).map(drop)
    }

    fn start(&self, task: &TaskConfig) -> Result<TaskHandle, DriverError> {
        let config = config::parse(&task.config).map_err(DriverError::InvalidConfig)?;
        let image = &config.image;
        let image_id = containers::pull(&task.id, image).map_err(|e| match e {
            ContainerError::Denied(m) => DriverError::Denied(format!("pulling {image}: {m}")),
            ContainerError::NotFound(m) => DriverError::failed(format!(
                "image {image} was not found: {m}; check its name and tag, and that the registry has it"
            )),
            ContainerError::Failed(m) => DriverError::failed(format!("pulling {image}: {m}")),
        })?;
        let spec = ContainerSpec {
            image: image.clone(),
            command: config.entrypoint,
            args: config.args,
            env: container_env(&task.env),
            ports: config.ports,
            mounts: config.mounts,
            limits: task.resources,
            privileged: config.privileged,
            network_mode: config.network_mode,
            host_pid: config.host_pid,
            host_ipc: config.host_ipc,
            user: config.user.or_else(|| task.user.clone()),
            working_dir: config.work_dir,
        };
        let container_id = containers::create(&task.id, &spec).map_err(|e| match e {
            ContainerError::Denied(m) => DriverError::Denied(m),
            ContainerError::NotFound(m) => DriverError::failed(format!(
                "creating a container of image {image}: not found: {m}"
            )),
            ContainerError::Failed(m) => {
                DriverError::failed(format!("creating a container of image {image}: {m}"))
            }
        })?;
        let state = State {
            container_id,
            image_id,
        };
        // From here on a failure must not leave the container behind: the
        // agent gets no handle, so nobody else would remove it.
        let handle = containers::start(&state.container_id)
            .map_err(|e| {
                let m = format!(
                    "starting container {} of image {image}: {e}",
                    state.container_id
                );
                match e {
                    ContainerError::Denied(_) => DriverError::Denied(m),
                    _ => DriverError::Failed(m),
                }
            })
            .and_then(|()| {
                serde_json::to_string(&state)
                    .map_err(|e| DriverError::failed(format!("encoding the task handle: {e}")))
            });
        let state_json = match handle {
            Ok(json) => json,
            Err(e) => {
                if let Err(gone) = containers::remove(&state.container_id, true) {
                    log(
                        LogLevel::Warn,
                        &format!(
                            "removing container {} after a failed start: {gone}",
                            state.container_id
                        ),
                    );
                }
                return Err(e);
            }
        };
        log(
            LogLevel::Info,
            &format!(
                "started container {} ({image}) for task {} of allocation {}",
                state.container_id, task.id.task, task.id.alloc_id
            ),
        );
        Ok(TaskHandle {
            id: task.id.clone(),
            version: HANDLE_VERSION,
            state: state_json,
        })
    }

    fn wait(
        &self,
        handle: &TaskHandle,
        timeout: Duration,
    ) -> Result<Option<ExitResult>, DriverError> {
        let state = decode(handle)?;
        containers::wait(&state.container_id, timeout)
            .map_err(|e| container_error(handle, &state, "waiting for", e))
    }

    fn inspect(&self, handle: &TaskHandle) -> Result<TaskState, DriverError> {
        let state = decode(handle)?;
        let id = &state.container_id;
        match containers::inspect(id) {
            Ok(Some(true)) => Ok(TaskState::Running),
            Ok(Some(false)) => match containers::wait(id, Duration::ZERO) {
                Ok(Some(exit)) => Ok(TaskState::Exited(exit)),
                // It started again between the two calls.
                Ok(None) => Ok(TaskState::Running),
                Err(e) => Err(container_error(handle, &state, "inspecting", e)),
            },
            Ok(None) => Err(gone(handle, &state)),
            // The engine does not answer: the container may well run on.
            Err(ContainerError::Failed(m)) => Ok(TaskState::Unknown(format!(
                "cannot inspect container {id}: {m}"
            ))),
            Err(e) => Err(container_error(handle, &state, "inspecting", e)),
        }
    }

    fn stop(
        &self,
        handle: &TaskHandle,
        signal: &str,
        timeout: Duration,
    ) -> Result<(), DriverError> {
        let state = decode(handle)?;
        containers::stop(&state.container_id, signal, timeout)
            .map_err(|e| container_error(handle, &state, "stopping", e))
    }

    fn destroy(&self, handle: &TaskHandle, force: bool) -> Result<(), DriverError> {
        let state = decode(handle)?;
        let id = &state.container_id;
        if force {
            // Kill first, so the removal does not race the container's own
            // shutdown; remove whatever happened (the removal forces too).
            match containers::stop(id, "SIGKILL", FORCED_STOP) {
                Ok(()) | Err(ContainerError::NotFound(_)) => {}
                Err(e) => log(
                    LogLevel::Warn,
                    &format!("killing container {id} before removing it: {e}"),
                ),
            }
        } else {
            match containers::inspect(id) {
                // Nothing is left to free.
                Ok(None) | Err(ContainerError::NotFound(_)) => return Ok(()),
                Ok(Some(true)) => {
                    return Err(DriverError::failed(format!(
                        "container {id} still runs; stop the task first, or destroy it with force"
                    )));
                }
                Ok(Some(false)) => {}
                Err(e) => return Err(container_error(handle, &state, "inspecting", e)),
            }
        }
        match containers::remove(id, force) {
            Ok(()) | Err(ContainerError::NotFound(_)) => Ok(()),
            Err(e) => Err(container_error(handle, &state, "removing", e)),
        }
    }

    fn signal(&self, handle: &TaskHandle, signal: &str) -> Result<(), DriverError> {
        let state = decode(handle)?;
        containers::kill(&state.container_id, signal)
            .map_err(|e| container_error(handle, &state, &format!("sending {signal} to"), e))
    }

    fn stats(&self, handle: &TaskHandle) -> Result<TaskStats, DriverError> {
        let state = decode(handle)?;
        containers::stats(&state.container_id)
            .map_err(|e| container_error(handle, &state, "reading the statistics of", e))
    }

    fn recover(&self, handle: &TaskHandle) -> Result<(), DriverError> {
        let state = decode(handle)?;
        match containers::inspect(&state.container_id) {
            Ok(Some(running)) => {
                log(
                    LogLevel::Info,
                    &format!(
                        "recovered container {} of task {} of allocation {} ({})",
                        state.container_id,
                        handle.id.task,
                        handle.id.alloc_id,
                        if running { "running" } else { "exited" }
                    ),
                );
                Ok(())
            }
            Ok(None) => Err(gone(handle, &state)),
            Err(e) => Err(container_error(handle, &state, "recovering", e)),
        }
    }
}

export_driver!(Oci);

/// The container of `handle` no longer exists.
fn gone(handle: &TaskHandle, state: &State) -> DriverError {
    DriverError::not_found(format!(
        "container {} of task {} of allocation {} is gone",
        state.container_id, handle.id.task, handle.id.alloc_id
    ))
}

/// A host error while `doing` something to the task's container.
fn container_error(
    handle: &TaskHandle,
    state: &State,
    doing: &str,
    e: ContainerError,
) -> DriverError {
    let id = &state.container_id;
    match e {
        ContainerError::NotFound(m) => DriverError::not_found(format!(
            "container {id} of task {} of allocation {}: {m}",
            handle.id.task, handle.id.alloc_id
        )),
        ContainerError::Denied(m) => DriverError::Denied(format!("{doing} container {id}: {m}")),
        ContainerError::Failed(m) => DriverError::failed(format!("{doing} container {id}: {m}")),
    }
}

fn decode(handle: &TaskHandle) -> Result<State, DriverError> {
    if handle.version != HANDLE_VERSION {
        return Err(DriverError::failed(format!(
            "task handle version {} is not one this oci driver reads (it reads {HANDLE_VERSION}); was it written by another orch release?",
            handle.version
        )));
    }
    let state: State = serde_json::from_str(&handle.state).map_err(|e| {
        DriverError::failed(format!(
            "the task handle's state is not the oci driver's ({e}); it should be {{\"container_id\": …, \"image_id\": …}}"
        ))
    })?;
    if state.container_id.is_empty() {
        return Err(DriverError::failed(
            "the task handle names no container (its container_id is empty)",
        ));
    }
    Ok(state)
}

/// The task's environment as the container sees it: the directories the
/// agent names by their host paths are at Nomad's places inside.
fn container_env(env: &[(String, String)]) -> Vec<(String, String)> {
    env.iter()
        .map(|(key, value)| {
            let inside = match key.as_str() {
                "ORCH_ALLOC_DIR" => "/alloc",
                "ORCH_TASK_DIR" => "/local",
                "ORCH_SECRETS_DIR" => "/secrets",
                _ => value,
            };
            (key.clone(), inside.to_owned())
        })
        .collect()
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
            container_id: "c0ffee".into(),
            image_id: "sha256:ab".into(),
        };
        let json = serde_json::to_string(&state).unwrap();
        assert_eq!(decode(&handle(1, &json)).unwrap(), state);
        let DriverError::Failed(m) = decode(&handle(2, &json)).unwrap_err() else {
            panic!("a newer handle is a failure")
        };
        assert!(m.contains("version 2"), "{m}");
        let DriverError::Failed(m) =
            decode(&handle(1, r#"{"pid": 4, "start_token": 1}"#)).unwrap_err()
        else {
            panic!("a foreign state is a failure")
        };
        assert!(m.contains("not the oci driver's"), "{m}");
    }

    #[test]
    fn start_checks_the_config_before_pulling() {
        let task = TaskConfig {
            config: r#"{"args": 1}"#.into(),
            ..TaskConfig::default()
        };
        let Err(DriverError::InvalidConfig(problems)) = Oci.start(&task) else {
            panic!("an invalid config must not start")
        };
        let fields: Vec<_> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, vec!["config.image", "config.args"]);
    }

    #[test]
    fn natively_the_engine_is_unusable() {
        let fp = Oci.fingerprint();
        assert!(!fp.healthy);
        assert!(fp.health_description.contains("only inside a component"));
    }
}
