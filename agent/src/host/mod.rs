//! The node's side of the capabilities task drivers import (`process`,
//! `artifacts`, `containers`, `log` in `wit/driver`): [`NodeHost`]
//! implements the plugin runtime's [`DriverHost`] for real, on Linux.

mod artifact;
mod cgroup;
mod containers;
mod error;
mod logs;
mod process;
mod shim;

use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use orch_plugin_runtime::{
    CapabilityError, ContainerSpec, DriverHost, EngineInfo, ExitStatus, FetchSpec, LogLevel,
    PortMapping, ProcessHandle, SpawnSpec, TaskRef, UsageStats,
};

pub use cgroup::CgroupSupport;
pub use containers::{ContainerSettings, RegistryAuth};
pub use error::HostError;
pub use logs::{LogChunk, LogCursor, read_log};
pub use shim::shim_main;

use crate::dirs;
use process::{EXIT_FILE, SHIM_LOG, SPEC_FILE, STATE_FILE, TaskProcess};
use shim::{Report, ShimSpec};

/// How the agent starts a task's supervisor: `program args… SPEC_FILE`.
/// In production `program` is the `orch` binary itself and `args` is
/// `["shim"]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShimCommand {
    pub program: PathBuf,
    pub args: Vec<String>,
}

/// The agent's settings for its host capabilities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostConfig {
    /// Root of the on-disk layout in [`crate::dirs`].
    pub data_dir: PathBuf,
    pub shim: ShimCommand,
    /// A task's log file is rotated once it holds this many bytes.
    pub log_max_bytes: u64,
    /// Rotated files kept per task and stream, the current one included.
    pub log_max_files: u32,
    /// The largest artifact a task may fetch.
    pub artifact_max_bytes: u64,
}

/// The node's host capabilities. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct NodeHost {
    inner: Arc<Inner>,
}

struct Inner {
    config: HostConfig,
    cgroups: CgroupSupport,
    http: ureq::Agent,
    /// `PATH` for tasks whose environment has none: the agent's own.
    default_path: String,
    /// The container engine, when the host was built with one.
    containers: Option<containers::Engine>,
}

impl NodeHost {
    /// Checks the config, creates the data directory and finds out what
    /// cgroups this node offers.
    /// Without a container engine: the `containers` calls answer that this
    /// node has none.
    pub fn new(config: HostConfig) -> Result<NodeHost, HostError> {
        Self::build(config, None)
    }

    /// With the `containers` capability on the engine `settings` name. The
    /// engine is reached on first use, so a node whose engine is down
    /// still starts (its fingerprint says the engine is unreachable).
    /// `node_id` labels every container, and only containers with this
    /// label are acted on.
    pub fn with_containers(
        config: HostConfig,
        node_id: &str,
        settings: ContainerSettings,
    ) -> Result<NodeHost, HostError> {
        Self::build(config, Some((node_id, settings)))
    }

    fn build(
        mut config: HostConfig,
        containers: Option<(&str, ContainerSettings)>,
    ) -> Result<NodeHost, HostError> {
        let bad = |why: &str| HostError::Config(why.to_owned());
        if config.log_max_bytes == 0 || config.log_max_files == 0 {
            return Err(bad("log_max_bytes and log_max_files must be at least 1"));
        }
        if config.artifact_max_bytes == 0 {
            return Err(bad("artifact_max_bytes must be at least 1"));
        }
        fs::create_dir_all(&config.data_dir)
            .map_err(|e| HostError::io("create the data directory", &config.data_dir, e))?;
        // Paths go into spec files and back to drivers: make them absolute.
        config.data_dir = config
            .data_dir
            .canonicalize()
            .map_err(|e| HostError::io("resolve the data directory", &config.data_dir, e))?;
        let containers = containers
            .map(|(node_id, settings)| {
                containers::Engine::new(
                    settings,
                    node_id,
                    containers::Layout {
                        data_dir: config.data_dir.clone(),
                        log_max_bytes: config.log_max_bytes,
                        log_max_files: config.log_max_files,
                    },
                )
            })
            .transpose()?;
        let cgroups = CgroupSupport::detect();
        tracing::info!(cgroups = %cgroups, data_dir = %config.data_dir.display(), "host capabilities ready");
        Ok(NodeHost {
            inner: Arc::new(Inner {
                config,
                cgroups,
                http: artifact::http_agent(),
                default_path: std::env::var("PATH").unwrap_or_else(|_| {
                    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned()
                }),
                containers,
            }),
        })
    }

    /// What this node can enforce on tasks, for the fingerprint.
    pub fn cgroups(&self) -> &CgroupSupport {
        &self.inner.cgroups
    }

    pub fn config(&self) -> &HostConfig {
        &self.inner.config
    }

    fn data_dir(&self) -> &Path {
        &self.inner.config.data_dir
    }

    fn engine(&self) -> Result<&containers::Engine, CapabilityError> {
        self.inner.containers.as_ref().ok_or_else(|| {
            CapabilityError::Failed("this node has no container engine configured".to_owned())
        })
    }

    /// Starts `spec` under a new shim and waits only for the shim's report.
    pub fn spawn_task(
        &self,
        task: &TaskRef,
        spec: SpawnSpec,
    ) -> Result<Box<dyn ProcessHandle>, HostError> {
        let label = label(task);
        let task_dirs = dirs::create_task_dirs(self.data_dir(), &task.alloc_id, &task.task)?;
        if spec.argv.is_empty() {
            return Err(HostError::Spawn(format!(
                "task {label}: argv is empty: give the program to run"
            )));
        }
        // One run of a task at a time: a second shim would overwrite the
        // first one's records.
        if let Some(earlier) = process::read_started(&task_dirs.shim)
            && process::is_same_process(earlier.pid, earlier.start_token)
            && process::read_exit(&task_dirs.shim, earlier.pid)
                .ok()
                .flatten()
                .is_none()
        {
            return Err(HostError::Spawn(format!(
                "task {label} is already running as pid {}; stop it before starting it again",
                earlier.pid
            )));
        }
        for stale in [EXIT_FILE, STATE_FILE] {
            let path = task_dirs.shim.join(stale);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(HostError::io("remove", &path, e)),
            }
        }
        let cwd = artifact::inside(&task_dirs.task, &spec.cwd, "cwd")?;
        if !cwd.is_dir() {
            return Err(HostError::Spawn(format!(
                "task {label}: cwd {:?} is not a directory in the task directory {}",
                spec.cwd,
                task_dirs.task.display()
            )));
        }
        let shim_spec = ShimSpec {
            label: label.clone(),
            argv: spec.argv,
            env: spec.env,
            cwd,
            task_dir: task_dirs.task.clone(),
            default_path: self.inner.default_path.clone(),
            log_dir: task_dirs.logs.clone(),
            task: task.task.clone(),
            log_max_bytes: self.inner.config.log_max_bytes,
            log_max_files: self.inner.config.log_max_files,
            cgroup: self.inner.cgroups.plan(task, spec.limits),
            shim_dir: task_dirs.shim.clone(),
        };
        let spec_path = task_dirs.shim.join(SPEC_FILE);
        let text = serde_json::to_vec_pretty(&shim_spec).map_err(|e| {
            HostError::Spawn(format!("task {label}: cannot encode the shim spec: {e}"))
        })?;
        fs::write(&spec_path, text).map_err(|e| HostError::io("write", &spec_path, e))?;

        let log_path = task_dirs.shim.join(SHIM_LOG);
        let shim_log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| HostError::io("open", &log_path, e))?;
        let log_start = shim_log.metadata().map(|m| m.len()).unwrap_or(0);
        let shim = &self.inner.config.shim;
        let mut child = Command::new(&shim.program)
            .args(&shim.args)
            .arg(&spec_path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(shim_log)
            // Its own group: a ^C or a signal to the agent's group does not
            // reach the shim, and the shim outlives the agent.
            .process_group(0)
            .spawn()
            .map_err(|e| {
                HostError::Spawn(format!(
                    "task {label}: cannot start the task supervisor {}: {e}",
                    shim.program.display()
                ))
            })?;
        let mut line = String::new();
        let read = match child.stdout.take() {
            Some(stdout) => BufReader::new(stdout).read_line(&mut line),
            None => Ok(0),
        };
        let report: Option<Report> = serde_json::from_str(line.trim()).ok();
        match report {
            Some(Report::Started(started)) => {
                // Reap the shim whenever it ends; the handle watches it
                // through /proc, which also works after an agent restart.
                let reaper = thread::Builder::new()
                    .name(format!("shim-{}", started.shim_pid))
                    .spawn(move || {
                        let _ = child.wait();
                    });
                if let Err(e) = reaper {
                    tracing::warn!(task = %label, error = %e, "cannot start a thread to reap the shim; it stays a zombie when it ends");
                }
                Ok(Box::new(TaskProcess::running(
                    label,
                    task_dirs.shim,
                    started,
                )))
            }
            Some(Report::Failed(message)) => {
                let _ = child.wait();
                Err(HostError::Spawn(format!("task {label}: {message}")))
            }
            None => {
                let status = child.wait();
                let detail = match read {
                    Err(e) => format!("reading its report failed: {e}"),
                    Ok(_) if line.is_empty() => "it exited without a report".to_owned(),
                    Ok(_) => format!("it reported {:?}", line.trim()),
                };
                let status = status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|e| e.to_string());
                Err(HostError::Spawn(format!(
                    "task {label}: the task supervisor {} failed ({detail}; {status}); its log {} says: {}",
                    shim.program.display(),
                    log_path.display(),
                    tail(&log_path, log_start)
                )))
            }
        }
    }

    /// Re-attaches to a task that a shim runs or ran, after an agent restart.
    pub fn attach_task(
        &self,
        task: &TaskRef,
        pid: u32,
        start_token: u64,
    ) -> Result<Box<dyn ProcessHandle>, HostError> {
        let label = label(task);
        let shim_dir = dirs::shim_dir(self.data_dir(), &task.alloc_id, &task.task)?;
        if let Some(exit) = process::read_exit(&shim_dir, pid).map_err(HostError::Process)?
            && exit.start_token == start_token
        {
            return Ok(Box::new(TaskProcess::finished(label, shim_dir, exit)));
        }
        match process::proc_stat(pid) {
            Some(stat) if stat.start_token == start_token => {}
            Some(stat) => {
                return Err(HostError::Gone(format!(
                    "task {label}: pid {pid} now belongs to another process (started at {}, not {start_token}) \
                     and no exit was recorded; the task is gone",
                    stat.start_token
                )));
            }
            None => {
                // Ended a moment ago: its supervisor, named in the state
                // file, has yet to write the exit; the handle's wait reads
                // it (or notices that the supervisor died).
                if let Some(started) = process::read_started(&shim_dir)
                    && started.pid == pid
                    && started.start_token == start_token
                {
                    return Ok(Box::new(TaskProcess::running(label, shim_dir, started)));
                }
                return Err(HostError::Gone(format!(
                    "task {label}: pid {pid} is gone and no exit was recorded in {}",
                    shim_dir.join(EXIT_FILE).display()
                )));
            }
        }
        match process::read_started(&shim_dir) {
            Some(started) if started.pid == pid && started.start_token == start_token => {
                Ok(Box::new(TaskProcess::running(label, shim_dir, started)))
            }
            _ => Err(HostError::Process(format!(
                "task {label}: pid {pid} runs, but {} does not name it, so its supervisor is unknown",
                shim_dir.join(STATE_FILE).display()
            ))),
        }
    }

    /// Fetches an artifact into the task directory; returns where it went.
    pub fn fetch_artifact(
        &self,
        task: &TaskRef,
        artifact: &FetchSpec,
    ) -> Result<PathBuf, HostError> {
        artifact::Fetcher {
            http: &self.inner.http,
            data_dir: self.data_dir(),
            max_bytes: self.inner.config.artifact_max_bytes,
        }
        .fetch(&task.alloc_id, &task.task, artifact)
    }
}

impl DriverHost for NodeHost {
    fn spawn(
        &self,
        task: &TaskRef,
        spec: SpawnSpec,
    ) -> Result<Box<dyn ProcessHandle>, CapabilityError> {
        Ok(self.spawn_task(task, spec)?)
    }

    fn attach(
        &self,
        task: &TaskRef,
        pid: u32,
        start_token: u64,
    ) -> Result<Box<dyn ProcessHandle>, CapabilityError> {
        Ok(self.attach_task(task, pid, start_token)?)
    }

    fn fetch(&self, task: &TaskRef, artifact: FetchSpec) -> Result<String, CapabilityError> {
        Ok(self
            .fetch_artifact(task, &artifact)
            .map(|path| path.display().to_string())?)
    }

    fn log(&self, driver: &str, level: LogLevel, message: &str) {
        match level {
            LogLevel::Trace => tracing::trace!(driver, "{message}"),
            LogLevel::Debug => tracing::debug!(driver, "{message}"),
            LogLevel::Info => tracing::info!(driver, "{message}"),
            LogLevel::Warn => tracing::warn!(driver, "{message}"),
            LogLevel::Error => tracing::error!(driver, "{message}"),
        }
    }

    fn engine_info(&self) -> Result<EngineInfo, CapabilityError> {
        self.engine()?.engine_info()
    }

    fn pull_image(&self, task: &TaskRef, image: &str) -> Result<String, CapabilityError> {
        self.engine()?.pull_image(task, image)
    }

    fn create_container(
        &self,
        task: &TaskRef,
        spec: ContainerSpec,
    ) -> Result<String, CapabilityError> {
        self.engine()?.create_container(task, spec)
    }

    fn start_container(&self, id: &str) -> Result<(), CapabilityError> {
        self.engine()?.start_container(id)
    }

    fn wait_container(
        &self,
        id: &str,
        timeout: Duration,
    ) -> Result<Option<ExitStatus>, CapabilityError> {
        self.engine()?.wait_container(id, timeout)
    }

    fn kill_container(&self, id: &str, signal: &str) -> Result<(), CapabilityError> {
        self.engine()?.kill_container(id, signal)
    }

    fn stop_container(
        &self,
        id: &str,
        signal: &str,
        timeout: Duration,
    ) -> Result<(), CapabilityError> {
        self.engine()?.stop_container(id, signal, timeout)
    }

    fn remove_container(&self, id: &str, force: bool) -> Result<(), CapabilityError> {
        self.engine()?.remove_container(id, force)
    }

    fn inspect_container(&self, id: &str) -> Result<Option<bool>, CapabilityError> {
        self.engine()?.inspect_container(id)
    }

    fn container_stats(&self, id: &str) -> Result<UsageStats, CapabilityError> {
        self.engine()?.container_stats(id)
    }

    fn container_ports(&self, id: &str) -> Result<Vec<PortMapping>, CapabilityError> {
        self.engine()?.container_ports(id)
    }
}

fn label(task: &TaskRef) -> String {
    format!("{}/{}", task.alloc_id, task.task)
}

/// The last bytes the shim wrote to its log since `from`, for an error.
fn tail(path: &Path, from: u64) -> String {
    let mut text = String::new();
    if let Ok(mut file) = fs::File::open(path) {
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let start = from.max(len.saturating_sub(1000));
        if file.seek(SeekFrom::Start(start)).is_ok() {
            let _ = file.read_to_string(&mut text);
        }
    }
    let text = text.trim();
    if text.is_empty() {
        "nothing".to_owned()
    } else {
        text.to_owned()
    }
}
