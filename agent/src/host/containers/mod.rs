//! The `containers` capability on the Docker engine (bollard): every
//! request is checked against the operator's policy in agent.toml before
//! the engine sees it, every container carries this agent's labels, and
//! every call by id acts only on containers labelled with this node's id
//! (several agents may share one engine).
//!
//! bollard is async; [`Engine`] owns a small tokio runtime and blocks on
//! it, since drivers call the host from plain threads.

mod logcopy;
mod policy;
mod pull;
mod settings;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, HostConfig as DockerHostConfig,
    HostConfigLogConfig, Mount as DockerMount, MountType, PortBinding,
};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptionsBuilder, KillContainerOptions,
    RemoveContainerOptions, StatsOptions, WaitContainerOptions,
};
use futures_util::StreamExt;
use orch_plugin_runtime::{
    CapabilityError, ContainerSpec, EngineInfo, ExitStatus, PortMapping, TaskRef, UsageStats,
};
use tokio::sync::watch;

pub use settings::{ContainerSettings, RegistryAuth};

use crate::dirs;
use crate::host::HostError;

const LABEL_NODE: &str = "orch.node";
const LABEL_ALLOC: &str = "orch.alloc";
const LABEL_TASK: &str = "orch.task";
/// `orch.port.<label>` = `<container port>/<protocol>`.
const LABEL_PORT: &str = "orch.port.";
/// How long connecting to the engine and fingerprinting may take.
const ENGINE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `wait` lets the log copy catch up once the container ended.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `stop` waits for the engine to kill a container after SIGKILL.
const KILL_TIMEOUT: Duration = Duration::from_secs(30);
/// A pull that makes no progress this long fails.
const PULL_STALL_LIMIT: Duration = Duration::from_secs(120);
/// Pull progress reaches the agent's log at most this often.
const PULL_PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// A container of this agent, as its labels name it.
struct Owned {
    /// The engine's full id.
    id: String,
    alloc_id: String,
    task: String,
    inspect: ContainerInspectResponse,
}

impl Owned {
    fn running(&self) -> bool {
        self.inspect
            .state
            .as_ref()
            .and_then(|s| s.running)
            .unwrap_or(false)
    }
}

/// One container's log copy; `done` turns true when it has drained.
struct Copy {
    task: tokio::task::JoinHandle<()>,
    done: watch::Receiver<bool>,
}

/// Where things live and how logs rotate, from the host's config.
pub(crate) struct Layout {
    pub data_dir: PathBuf,
    pub log_max_bytes: u64,
    pub log_max_files: u32,
}

/// The node's container engine, as drivers see it through `NodeHost`.
pub(crate) struct Engine {
    runtime: Option<tokio::runtime::Runtime>,
    endpoint: String,
    /// Connected (and the API version negotiated) on first use, so an agent
    /// starts on a node without a running engine.
    client: tokio::sync::Mutex<Option<Docker>>,
    settings: ContainerSettings,
    node_id: String,
    layout: Layout,
    copies: Mutex<HashMap<String, Copy>>,
}

impl Drop for Engine {
    fn drop(&mut self) {
        // Log copies end with the runtime; the next agent picks them up.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

fn failed(message: impl Into<String>) -> CapabilityError {
    CapabilityError::Failed(message.into())
}

fn not_ours(id: &str) -> CapabilityError {
    CapabilityError::NotFound(format!("no container {id} of this agent"))
}

use orch_model::now_ms;

impl Engine {
    pub(crate) fn new(
        settings: ContainerSettings,
        node_id: &str,
        layout: Layout,
    ) -> Result<Engine, HostError> {
        settings.check()?;
        if node_id.is_empty() {
            return Err(HostError::Config(
                "the containers capability needs the node id".to_owned(),
            ));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("containers")
            .enable_all()
            .build()
            .map_err(|e| HostError::Config(format!("cannot start the containers runtime: {e}")))?;
        Ok(Engine {
            runtime: Some(runtime),
            endpoint: settings.endpoint(),
            client: tokio::sync::Mutex::new(None),
            settings,
            node_id: node_id.to_owned(),
            layout,
            copies: Mutex::new(HashMap::new()),
        })
    }

    fn block_on<F>(&self, future: F) -> Result<F::Output, CapabilityError>
    where
        F: Future + Send,
        F::Output: Send,
    {
        let Some(runtime) = &self.runtime else {
            return Err(failed("the containers capability is shutting down"));
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return Ok(runtime.block_on(future));
        }
        // Called from async code (tokio refuses to block a runtime's
        // thread on another runtime): block a thread of our own instead.
        std::thread::scope(|scope| scope.spawn(|| runtime.block_on(future)).join())
            .map_err(|_| failed("a containers call panicked"))
    }

    async fn docker(&self) -> Result<Docker, CapabilityError> {
        let mut client = self.client.lock().await;
        if let Some(docker) = &*client {
            return Ok(docker.clone());
        }
        let unreachable = |e: &dyn std::fmt::Display| {
            failed(format!(
                "cannot reach the Docker engine at {}: {e}; set endpoint in the [containers] section of agent.toml if it listens elsewhere",
                self.endpoint
            ))
        };
        let docker = Docker::connect_with_host(&self.endpoint).map_err(|e| unreachable(&e))?;
        let docker = tokio::time::timeout(ENGINE_TIMEOUT, docker.negotiate_version())
            .await
            .map_err(|_| unreachable(&"no answer within 5 s"))?
            .map_err(|e| unreachable(&e))?;
        *client = Some(docker.clone());
        Ok(docker)
    }

    /// An engine error for `what`; a 404 becomes NotFound.
    fn engine_error(&self, what: &str, e: DockerError) -> CapabilityError {
        match e {
            DockerError::DockerResponseServerError {
                status_code: 404,
                message,
            } => CapabilityError::NotFound(format!("{what}: {message}")),
            DockerError::DockerResponseServerError { message, .. } => {
                failed(format!("{what}: the Docker engine said: {message}"))
            }
            other => failed(format!(
                "{what}: talking to the Docker engine at {} failed: {other}",
                self.endpoint
            )),
        }
    }

    /// The container `id` if it exists and is this agent's; `None` when the
    /// engine has no such container; NotFound when it is another's.
    async fn owned(&self, docker: &Docker, id: &str) -> Result<Option<Owned>, CapabilityError> {
        if id.is_empty() {
            return Err(not_ours(id));
        }
        let inspect = match docker.inspect_container(id, None).await {
            Ok(inspect) => inspect,
            Err(DockerError::DockerResponseServerError {
                status_code: 404, ..
            }) => return Ok(None),
            Err(e) => return Err(self.engine_error(&format!("inspecting container {id}"), e)),
        };
        let labels = inspect
            .config
            .as_ref()
            .and_then(|c| c.labels.clone())
            .unwrap_or_default();
        let label = |key: &str| labels.get(key).cloned().unwrap_or_default();
        if label(LABEL_NODE) != self.node_id {
            return Err(not_ours(id));
        }
        let (alloc_id, task) = (label(LABEL_ALLOC), label(LABEL_TASK));
        dirs::check_name("allocation id", &alloc_id)
            .and_then(|()| dirs::check_name("task name", &task))
            .map_err(|e| failed(format!("container {id} has bad orch labels: {e}")))?;
        Ok(Some(Owned {
            id: inspect.id.clone().unwrap_or_else(|| id.to_owned()),
            alloc_id,
            task,
            inspect,
        }))
    }

    async fn owned_or_not_found(
        &self,
        docker: &Docker,
        id: &str,
    ) -> Result<Owned, CapabilityError> {
        self.owned(docker, id).await?.ok_or_else(|| not_ours(id))
    }

    pub(crate) fn engine_info(&self) -> Result<EngineInfo, CapabilityError> {
        self.block_on(async {
            let docker = self.docker().await?;
            let version = tokio::time::timeout(ENGINE_TIMEOUT, docker.version())
                .await
                .map_err(|_| {
                    failed(format!(
                        "the Docker engine at {} did not answer within 5 s",
                        self.endpoint
                    ))
                })?
                .map_err(|e| self.engine_error("asking the engine its version", e))?;
            Ok(EngineInfo {
                name: "docker".to_owned(),
                version: version.version.unwrap_or_default(),
                api_version: docker.client_version().to_string(),
                os: version.os.unwrap_or_default(),
                arch: version.arch.unwrap_or_default(),
            })
        })?
    }

    pub(crate) fn pull_image(
        &self,
        task: &TaskRef,
        image: &str,
    ) -> Result<String, CapabilityError> {
        let reference = pull::ImageRef::parse(image)?;
        self.block_on(async {
            let docker = self.docker().await?;
            let full = reference.full();
            if let Ok(found) = docker.inspect_image(&full).await {
                tracing::debug!(image = %full, "image present; no pull");
                return Ok(found.id.unwrap_or_default());
            }
            let credentials = pull::credentials(&self.settings, &reference.registry)?;
            tracing::info!(
                alloc = %task.alloc_id, task = %task.task, image = %full,
                credentials = credentials.as_ref().map_or("none", |c| c.source.as_str()),
                "pulling image"
            );
            let options = CreateImageOptionsBuilder::default()
                .from_image(&reference.repository)
                .tag(&reference.tag)
                .build();
            let started = Instant::now();
            let mut last_note = Instant::now();
            let mut stream = docker.create_image(
                Some(options),
                None,
                credentials.as_ref().map(|c| c.docker.clone()),
            );
            // A registry that stops sending mid-pull would hold the task's
            // start forever: give up after a stretch with no progress.
            loop {
                let item = match tokio::time::timeout(PULL_STALL_LIMIT, stream.next()).await {
                    Ok(Some(item)) => item,
                    Ok(None) => break,
                    Err(_) => {
                        return Err(failed(format!(
                            "pulling {full}: no progress for {} s; is the registry {} reachable and answering?",
                            PULL_STALL_LIMIT.as_secs(),
                            reference.registry
                        )));
                    }
                };
                match item {
                    Ok(info) => {
                        if last_note.elapsed() >= PULL_PROGRESS_EVERY {
                            last_note = Instant::now();
                            tracing::info!(
                                image = %full,
                                status = info.status.as_deref().unwrap_or(""),
                                seconds = started.elapsed().as_secs(),
                                "still pulling"
                            );
                        }
                    }
                    Err(DockerError::DockerResponseServerError {
                        status_code,
                        message,
                    }) => {
                        return Err(pull::pull_error(
                            &reference,
                            credentials.as_ref(),
                            Some(status_code),
                            &message,
                        ));
                    }
                    Err(DockerError::DockerStreamError { error }) => {
                        return Err(pull::pull_error(
                            &reference,
                            credentials.as_ref(),
                            None,
                            &error,
                        ));
                    }
                    Err(e) => {
                        return Err(self.engine_error(&format!("pulling {full}"), e));
                    }
                }
            }
            let pulled = docker
                .inspect_image(&full)
                .await
                .map_err(|e| self.engine_error(&format!("pulled {full}, then looking it up"), e))?;
            tracing::info!(image = %full, millis = started.elapsed().as_millis() as u64, "pulled image");
            Ok(pulled.id.unwrap_or_default())
        })?
    }

    pub(crate) fn create_container(
        &self,
        task: &TaskRef,
        spec: ContainerSpec,
    ) -> Result<String, CapabilityError> {
        let host_error =
            |e: HostError| failed(format!("task {}/{}: {e}", task.alloc_id, task.task));
        let task_dirs = dirs::create_task_dirs(&self.layout.data_dir, &task.alloc_id, &task.task)
            .map_err(host_error)?;
        // The policy first: nothing reaches the engine that it refuses.
        let mounts = policy::check(&self.settings, &task_dirs, &spec)?;
        let name = container_name(task);
        let body = self.create_body(task, &spec, &task_dirs, mounts)?;
        self.block_on(async {
            let docker = self.docker().await?;
            // A container of this task left over from an agent that died
            // between create and recording the handle.
            match self.owned(&docker, &name).await {
                Ok(Some(leftover))
                    if leftover.alloc_id != task.alloc_id || leftover.task != task.task =>
                {
                    return Err(failed(format!(
                        "a container named {name} belongs to task {}/{} of this agent; rename one of the tasks",
                        leftover.alloc_id, leftover.task
                    )));
                }
                Ok(Some(leftover)) => {
                    tracing::info!(container = %leftover.id, name = %name, "removing a leftover container of this task");
                    self.remove_owned(&docker, &leftover).await?;
                }
                Ok(None) => {}
                Err(CapabilityError::NotFound(_)) => {
                    return Err(failed(format!(
                        "a container named {name} exists and is not this agent's; remove it, or run the task on another node"
                    )));
                }
                Err(e) => return Err(e),
            }
            let options = CreateContainerOptions {
                name: Some(name.clone()),
                ..Default::default()
            };
            let created = docker
                .create_container(Some(options), body)
                .await
                .map_err(|e| match e {
                    DockerError::DockerResponseServerError {
                        status_code: 404,
                        message,
                    } => CapabilityError::NotFound(format!(
                        "creating container {name}: image {} is not on this node ({message}); pull it first",
                        spec.image
                    )),
                    e => self.engine_error(&format!("creating container {name}"), e),
                })?;
            for warning in &created.warnings {
                tracing::warn!(container = %created.id, "{warning}");
            }
            Ok(created.id)
        })?
    }

    fn create_body(
        &self,
        task: &TaskRef,
        spec: &ContainerSpec,
        task_dirs: &dirs::TaskDirs,
        mounts: Vec<policy::CheckedMount>,
    ) -> Result<ContainerCreateBody, CapabilityError> {
        let mut labels = HashMap::from([
            (LABEL_NODE.to_owned(), self.node_id.clone()),
            (LABEL_ALLOC.to_owned(), task.alloc_id.clone()),
            (LABEL_TASK.to_owned(), task.task.clone()),
        ]);
        let mut exposed = Vec::new();
        let mut bindings = HashMap::new();
        for port in &spec.ports {
            let protocol = match port.protocol.as_str() {
                "" | "tcp" => "tcp",
                "udp" => "udp",
                other => {
                    return Err(failed(format!(
                        "port {:?}: protocol {other:?} is neither tcp nor udp",
                        port.label
                    )));
                }
            };
            if port.label.is_empty() || port.container_port == 0 {
                return Err(failed(format!(
                    "port {:?} -> {}: give a label and a container port",
                    port.label, port.container_port
                )));
            }
            let key = format!("{}/{protocol}", port.container_port);
            if labels
                .insert(format!("{LABEL_PORT}{}", port.label), key.clone())
                .is_some()
            {
                return Err(failed(format!("port label {:?} is used twice", port.label)));
            }
            exposed.push(key.clone());
            let binding = PortBinding {
                host_ip: Some(self.settings.port_bind_address.clone()),
                host_port: Some(if port.host_port == 0 {
                    String::new()
                } else {
                    port.host_port.to_string()
                }),
            };
            bindings
                .entry(key)
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(binding);
        }
        let bind = |source: &std::path::Path, target: &str, read_only: bool| DockerMount {
            source: Some(source.display().to_string()),
            target: Some(target.to_owned()),
            typ: Some(MountType::BIND),
            read_only: Some(read_only),
            ..Default::default()
        };
        // Nomad's layout inside the container: the allocation's shared
        // directory (not the allocation's root, which holds every task's
        // logs, secrets and supervisor files), the task's own local and
        // secrets directories.
        let mut all_mounts = vec![
            bind(&task_dirs.shared, "/alloc", false),
            bind(&task_dirs.local, "/local", false),
            bind(&task_dirs.secrets, "/secrets", false),
        ];
        all_mounts.extend(
            mounts
                .iter()
                .map(|m| bind(&m.source, &m.target, m.read_only)),
        );
        let limits = spec.limits;
        let memory = (limits.memory_mib > 0).then_some((limits.memory_mib as i64) << 20);
        // Nomad's mapping: one share per MHz (the engine's minimum is 2).
        let cpu_shares = (limits.cpu_mhz > 0).then(|| i64::from(limits.cpu_mhz.max(2)));
        let log_size = self.layout.log_max_bytes.max(1 << 20);
        let host_config = DockerHostConfig {
            memory,
            // No swap beyond the limit, as Nomad does without memory_max.
            memory_swap: memory,
            cpu_shares,
            mounts: Some(all_mounts),
            port_bindings: (!bindings.is_empty()).then_some(bindings),
            network_mode: Some(policy::network_mode(spec).to_owned()),
            privileged: Some(spec.privileged),
            pid_mode: spec.host_pid.then(|| "host".to_owned()),
            ipc_mode: spec.host_ipc.then(|| "host".to_owned()),
            // The log copy reads the engine's copy back: json-file can be
            // read, and is bounded here.
            log_config: Some(HostConfigLogConfig {
                typ: Some("json-file".to_owned()),
                config: Some(HashMap::from([
                    ("max-size".to_owned(), log_size.to_string()),
                    ("max-file".to_owned(), "2".to_owned()),
                ])),
            }),
            ..Default::default()
        };
        Ok(ContainerCreateBody {
            image: Some(spec.image.clone()),
            entrypoint: spec.command.clone(),
            cmd: (!spec.args.is_empty()).then(|| spec.args.clone()),
            env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            user: spec.user.clone().filter(|u| !u.is_empty()),
            working_dir: spec.working_dir.clone().filter(|w| !w.is_empty()),
            labels: Some(labels),
            exposed_ports: (!exposed.is_empty()).then_some(exposed),
            host_config: Some(host_config),
            ..Default::default()
        })
    }

    pub(crate) fn start_container(&self, id: &str) -> Result<(), CapabilityError> {
        self.block_on(async {
            let docker = self.docker().await?;
            let owned = self.owned_or_not_found(&docker, id).await?;
            docker
                .start_container(&owned.id, None)
                .await
                .map_err(|e| self.engine_error(&format!("starting container {id}"), e))?;
            self.ensure_copy(&docker, &owned, true);
            Ok(())
        })?
    }

    /// Starts copying the container's output unless a copy runs (or, with
    /// `again`, unless one runs that has not finished).
    fn ensure_copy(&self, docker: &Docker, owned: &Owned, again: bool) {
        let mut copies = self.copies.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(copy) = copies.get(&owned.id)
            && (!again || !*copy.done.borrow())
        {
            return;
        }
        let (logs_dir, shim_dir) = match (
            dirs::logs_dir(&self.layout.data_dir, &owned.alloc_id),
            dirs::shim_dir(&self.layout.data_dir, &owned.alloc_id, &owned.task),
        ) {
            (Ok(logs), Ok(shim)) => (logs, shim),
            _ => return,
        };
        for dir in [&logs_dir, &shim_dir] {
            if let Err(e) = std::fs::create_dir_all(dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot create a directory for the container's logs");
                return;
            }
        }
        let target = logcopy::Target {
            logs_dir,
            task: owned.task.clone(),
            cursor: shim_dir.join(logcopy::CURSOR_FILE),
            max_bytes: self.layout.log_max_bytes,
            max_files: self.layout.log_max_files,
        };
        let (done_tx, done) = watch::channel(false);
        let (docker, id) = (docker.clone(), owned.id.clone());
        let Some(runtime) = &self.runtime else { return };
        let task = runtime.spawn(async move {
            if let Err(e) = logcopy::copy(docker, id.clone(), target).await {
                tracing::warn!(container = %id, error = %e, "copying the container's output stopped");
            }
            let _ = done_tx.send(true);
        });
        copies.insert(owned.id.clone(), Copy { task, done });
    }

    /// Waits up to `timeout` for the container's log copy to drain.
    async fn drained(&self, id: &str, timeout: Duration) {
        let done = {
            let copies = self.copies.lock().unwrap_or_else(|p| p.into_inner());
            copies.get(id).map(|c| c.done.clone())
        };
        if let Some(mut done) = done {
            let _ = tokio::time::timeout(timeout, done.wait_for(|d| *d)).await;
        }
    }

    fn stop_copy(&self, id: &str) {
        let copy = self
            .copies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        if let Some(copy) = copy {
            copy.task.abort();
        }
    }

    pub(crate) fn wait_container(
        &self,
        id: &str,
        timeout: Duration,
    ) -> Result<Option<ExitStatus>, CapabilityError> {
        self.block_on(async {
            let docker = self.docker().await?;
            let mut owned = self.owned_or_not_found(&docker, id).await?;
            self.ensure_copy(&docker, &owned, false);
            if owned.running() {
                // The engine answers a wait only when the container ends;
                // its HTTP timeout must outlast ours.
                let waiter = docker
                    .clone()
                    .with_timeout(timeout + Duration::from_secs(60));
                let options = WaitContainerOptions {
                    condition: "not-running".to_owned(),
                };
                let mut wait = waiter.wait_container(&owned.id, Some(options));
                // An exit code other than 0 arrives as an error; the
                // inspect below reads the state either way.
                if tokio::time::timeout(timeout, wait.next()).await.is_err() {
                    return Ok(None);
                }
                owned = self.owned_or_not_found(&docker, id).await?;
                if owned.running() {
                    return Ok(None);
                }
            }
            let state = owned.inspect.state.clone().unwrap_or_default();
            if matches!(
                state.status,
                Some(bollard::models::ContainerStateStatusEnum::CREATED)
            ) {
                // Never started: nothing to wait for yet.
                return Ok(None);
            }
            self.drained(&owned.id, DRAIN_TIMEOUT).await;
            Ok(Some(ExitStatus {
                exit_code: state.exit_code.and_then(|c| i32::try_from(c).ok()),
                signal: None,
                oom_killed: state.oom_killed.unwrap_or(false),
                finished_at_ms: state
                    .finished_at
                    .as_deref()
                    .and_then(logcopy::Stamp::parse)
                    .map_or(0, |s| s.millis()),
            }))
        })?
    }

    async fn kill(&self, docker: &Docker, id: &str, signal: &str) -> Result<bool, CapabilityError> {
        let options = KillContainerOptions {
            signal: signal.to_owned(),
        };
        match docker.kill_container(id, Some(options)).await {
            Ok(()) => Ok(true),
            // Not running (any more): nothing to signal.
            Err(DockerError::DockerResponseServerError {
                status_code: 409, ..
            }) => Ok(false),
            Err(e) => Err(self.engine_error(&format!("sending {signal} to container {id}"), e)),
        }
    }

    pub(crate) fn kill_container(&self, id: &str, signal: &str) -> Result<(), CapabilityError> {
        check_signal(signal)?;
        self.block_on(async {
            let docker = self.docker().await?;
            let owned = self.owned_or_not_found(&docker, id).await?;
            if self.kill(&docker, &owned.id, signal).await? {
                Ok(())
            } else {
                Err(failed(format!(
                    "container {id} is not running; cannot send it {signal}"
                )))
            }
        })?
    }

    pub(crate) fn stop_container(
        &self,
        id: &str,
        signal: &str,
        timeout: Duration,
    ) -> Result<(), CapabilityError> {
        check_signal(signal)?;
        self.block_on(async {
            let docker = self.docker().await?;
            let Some(owned) = self.owned(&docker, id).await? else {
                return Ok(());
            };
            if !owned.running() {
                return Ok(());
            }
            for (signal, patience) in [(signal, timeout), ("SIGKILL", KILL_TIMEOUT)] {
                if !self.kill(&docker, &owned.id, signal).await? {
                    return Ok(());
                }
                let waiter = docker
                    .clone()
                    .with_timeout(patience + Duration::from_secs(60));
                let mut wait = waiter.wait_container(&owned.id, None::<WaitContainerOptions>);
                if tokio::time::timeout(patience, wait.next()).await.is_ok() {
                    return Ok(());
                }
            }
            Err(failed(format!(
                "container {id} still runs {} s after SIGKILL",
                KILL_TIMEOUT.as_secs()
            )))
        })?
    }

    async fn remove_owned(&self, docker: &Docker, owned: &Owned) -> Result<(), CapabilityError> {
        let options = RemoveContainerOptions {
            force: true,
            v: true,
            ..Default::default()
        };
        let removed = docker.remove_container(&owned.id, Some(options)).await;
        // A forced remove ends the output: let the copy take the last lines.
        self.drained(&owned.id, Duration::from_secs(1)).await;
        self.stop_copy(&owned.id);
        match removed {
            Ok(()) => Ok(()),
            Err(DockerError::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(e) => Err(self.engine_error(&format!("removing container {}", owned.id), e)),
        }
    }

    pub(crate) fn remove_container(&self, id: &str, force: bool) -> Result<(), CapabilityError> {
        self.block_on(async {
            let docker = self.docker().await?;
            let Some(owned) = self.owned(&docker, id).await? else {
                return Ok(());
            };
            if owned.running() && !force {
                return Err(failed(format!(
                    "container {id} is running; stop it first or remove it with force"
                )));
            }
            self.remove_owned(&docker, &owned).await
        })?
    }

    pub(crate) fn inspect_container(&self, id: &str) -> Result<Option<bool>, CapabilityError> {
        self.block_on(async {
            let docker = self.docker().await?;
            let Some(owned) = self.owned(&docker, id).await? else {
                return Ok(None);
            };
            // After an agent restart this is the first call the driver
            // makes: pick the log copy up again.
            self.ensure_copy(&docker, &owned, false);
            Ok(Some(owned.running()))
        })?
    }

    pub(crate) fn container_stats(&self, id: &str) -> Result<UsageStats, CapabilityError> {
        self.block_on(async {
            let docker = self.docker().await?;
            let owned = self.owned_or_not_found(&docker, id).await?;
            let options = StatsOptions {
                stream: false,
                one_shot: true,
            };
            let stats = docker
                .stats(&owned.id, Some(options))
                .next()
                .await
                .ok_or_else(|| failed(format!("the engine sent no stats for container {id}")))?
                .map_err(|e| {
                    self.engine_error(&format!("reading the stats of container {id}"), e)
                })?;
            let cpu = stats
                .cpu_stats
                .and_then(|c| c.cpu_usage)
                .and_then(|u| u.total_usage)
                .unwrap_or(0);
            let memory = stats.memory_stats.map_or(0, |m| {
                // What `docker stats` shows: usage less the inactive page
                // cache, which the kernel reclaims first.
                let inactive = m.stats.as_ref().and_then(|s| {
                    s.get("total_inactive_file")
                        .or_else(|| s.get("inactive_file"))
                        .copied()
                });
                m.usage.unwrap_or(0).saturating_sub(inactive.unwrap_or(0))
            });
            Ok(UsageStats {
                cpu_time_ns: cpu,
                memory_bytes: memory,
                taken_at_ms: now_ms(),
            })
        })?
    }

    pub(crate) fn container_ports(&self, id: &str) -> Result<Vec<PortMapping>, CapabilityError> {
        self.block_on(async {
            let docker = self.docker().await?;
            let owned = self.owned_or_not_found(&docker, id).await?;
            let labels = owned
                .inspect
                .config
                .as_ref()
                .and_then(|c| c.labels.clone())
                .unwrap_or_default();
            let bound = owned
                .inspect
                .network_settings
                .as_ref()
                .and_then(|n| n.ports.clone())
                .unwrap_or_default();
            let mut ports: Vec<PortMapping> = labels
                .iter()
                .filter_map(|(key, value)| {
                    let label = key.strip_prefix(LABEL_PORT)?;
                    let (port, protocol) = value.split_once('/')?;
                    let host_port = bound
                        .get(value)
                        .and_then(|b| b.as_ref())
                        .and_then(|b| {
                            b.iter()
                                .filter_map(|b| b.host_port.as_deref()?.parse::<u16>().ok())
                                .next()
                        })
                        .unwrap_or(0);
                    Some(PortMapping {
                        label: label.to_owned(),
                        container_port: port.parse().ok()?,
                        host_port,
                        protocol: protocol.to_owned(),
                    })
                })
                .collect();
            ports.sort_by(|a, b| a.label.cmp(&b.label));
            Ok(ports)
        })?
    }
}

/// `orch-<task>-<alloc>`, with what the engine does not accept in a name
/// replaced; a task name that needed replacing also gets a short hash of
/// itself, so that `web api` and `web_api` never share a name.
fn container_name(task: &TaskRef) -> String {
    let clean = |text: &str| -> String {
        text.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let name = clean(&task.task);
    let name = if name == task.task {
        name
    } else {
        let digest = orch_model::Digest::of(task.task.as_bytes()).hex();
        format!("{name}-{}", &digest[..8])
    };
    format!("orch-{name}-{}", clean(&task.alloc_id))
}

/// A signal name such as `SIGHUP` or `HUP`, or a number.
fn check_signal(signal: &str) -> Result<(), CapabilityError> {
    if !signal.is_empty()
        && signal.len() <= 16
        && signal
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-')
    {
        Ok(())
    } else {
        Err(failed(format!(
            "{signal:?} is not a signal name; give e.g. SIGTERM or SIGHUP"
        )))
    }
}
