//! The allocation runner: one thread per task, each driving its task
//! through its driver component — set up, fetch artifacts, start, wait,
//! restart per the group's policy, stop with the kill timeout — recording
//! task events and reporting the allocation's status to the server.
//!
//! Everything the agent needs to pick a task up again after its own
//! restart (the job version, the driver's task handle, the restart count)
//! is written to the allocation's record on every change.

use crate::dirs::{self, TaskDirs};
use crate::host::NodeHost;
use crate::record::{AllocRecord, Records, TaskRecord};
use crate::report::Reporter;
use crate::restart::Next;
use orch_model::{
    Allocation, ClientStatus, Job, JobType, Task, TaskEvent, TaskEventKind, TaskState, TaskStatus,
};
use orch_plugin_runtime::{
    DriverCallError, DriverHost, DriverPlugin, ExitStatus, FetchSpec, TaskHandle, TaskRef,
    TaskStart,
};
use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// What every allocation runner of one agent shares.
pub struct RunContext {
    pub drivers: BTreeMap<String, DriverPlugin>,
    pub host: Arc<NodeHost>,
    pub records: Records,
    pub reporter: Arc<Reporter>,
}

/// How often a running task's driver is asked whether it ended; a stop
/// request is noticed within this.
const WAIT_SLICE: Duration = Duration::from_millis(250);
/// How long a killed task's exit is waited for after its kill timeout.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// The runner of one allocation.
pub struct AllocRunner {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

struct Shared {
    ctx: Arc<RunContext>,
    record: Mutex<AllocRecord>,
    stop: Stop,
}

impl AllocRunner {
    /// Starts every task of a newly received allocation.
    pub fn start(ctx: Arc<RunContext>, alloc: Allocation, job: Job) -> AllocRunner {
        let now = now_ms();
        let tasks = job
            .groups
            .iter()
            .find(|g| g.name == alloc.group)
            .map(|g| g.tasks.clone())
            .unwrap_or_default();
        let mut record = AllocRecord {
            alloc,
            job,
            tasks: BTreeMap::new(),
        };
        for task in &tasks {
            let mut state = TaskState::default();
            state.push(TaskEvent::new(
                TaskEventKind::Received,
                now,
                "Task received by the agent",
            ));
            record.tasks.insert(
                task.name.clone(),
                TaskRecord {
                    state,
                    handle: None,
                    restarts: Default::default(),
                },
            );
        }
        Self::run(ctx, record, false)
    }

    /// Picks up an allocation from its record after an agent restart:
    /// tasks that were running are re-attached through their driver's
    /// `recover`, not restarted.
    pub fn recover(ctx: Arc<RunContext>, record: AllocRecord) -> AllocRunner {
        Self::run(ctx, record, true)
    }

    fn run(ctx: Arc<RunContext>, record: AllocRecord, recovering: bool) -> AllocRunner {
        let names: Vec<String> = record.tasks.keys().cloned().collect();
        let shared = Arc::new(Shared {
            ctx,
            record: Mutex::new(record),
            stop: Stop::default(),
        });
        // A recovered allocation reports what its record says at once: the
        // last report before the restart may never have reached the server.
        if recovering || names.is_empty() {
            shared.update(|_| {});
        }
        let threads = names
            .into_iter()
            .filter_map(|name| {
                let shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("task {name}"))
                    .spawn(move || run_task(&shared, &name, recovering))
                    .map_err(|e| tracing::error!("cannot start a task thread: {e}"))
                    .ok()
            })
            .collect();
        AllocRunner { shared, threads }
    }

    /// Stops every task (the server no longer wants the allocation).
    pub fn stop(&self, reason: &str) {
        self.shared.stop.set(reason);
    }

    /// Whether every task thread has ended.
    pub fn finished(&self) -> bool {
        self.threads.iter().all(JoinHandle::is_finished)
    }

    /// Sends the allocation's status again (the server has not taken the
    /// final one yet).
    pub fn report_again(&self) {
        self.shared.update(|_| {});
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, AllocRecord> {
        self.record.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes the record, writes it, and reports the allocation's status.
    fn update(&self, change: impl FnOnce(&mut AllocRecord)) {
        let mut record = self.lock();
        change(&mut record);
        if let Err(e) = self.ctx.records.save(&record) {
            tracing::error!(alloc = %record.alloc.id, "cannot write the allocation's record: {e}");
        }
        let states: BTreeMap<String, TaskState> = record
            .tasks
            .iter()
            .map(|(k, t)| (k.clone(), t.state.clone()))
            .collect();
        let (status, description) = client_status(&states);
        self.ctx.reporter.report(orch_wire::StatusUpdate {
            alloc_id: record.alloc.id.clone(),
            client_status: status,
            description: description.to_owned(),
            task_states: Some(states),
        });
    }

    fn task_update(&self, name: &str, change: impl FnOnce(&mut TaskRecord)) {
        self.update(|record| {
            if let Some(task) = record.tasks.get_mut(name) {
                change(task);
            }
        });
    }

    fn event(&self, name: &str, event: TaskEvent) {
        self.task_update(name, |t| t.state.push(event));
    }
}

/// The allocation's status from its tasks': failed if a task failed,
/// complete when all ended well, running once a task runs.
pub fn client_status(states: &BTreeMap<String, TaskState>) -> (ClientStatus, &'static str) {
    if states.is_empty() {
        return (ClientStatus::Failed, "The group has no tasks on this agent");
    }
    let all_dead = states.values().all(|s| s.state == TaskStatus::Dead);
    if all_dead {
        if states.values().any(|s| s.failed) {
            return (ClientStatus::Failed, "Failed tasks");
        }
        return (ClientStatus::Complete, "All tasks have completed");
    }
    if states
        .values()
        .any(|s| s.state == TaskStatus::Running || s.started_at_ms > 0)
    {
        return (ClientStatus::Running, "Tasks are running");
    }
    (ClientStatus::Pending, "No tasks have started")
}

/// Everything a task thread reads from the record once.
struct TaskSpec {
    task: Task,
    job_type: JobType,
    restart: orch_model::RestartPolicy,
    alloc: Allocation,
    job_name: String,
}

fn spec_of(shared: &Shared, name: &str) -> Option<TaskSpec> {
    let record = shared.lock();
    let group = record
        .job
        .groups
        .iter()
        .find(|g| g.name == record.alloc.group)?;
    let task = group.tasks.iter().find(|t| t.name == name)?.clone();
    Some(TaskSpec {
        task,
        job_type: record.job.job_type,
        restart: group.restart,
        alloc: record.alloc.clone(),
        job_name: record.job.name.clone(),
    })
}

fn run_task(shared: &Shared, name: &str, recovering: bool) {
    let Some(spec) = spec_of(shared, name) else {
        return;
    };
    let task_ref = TaskRef {
        alloc_id: spec.alloc.id.clone(),
        task: name.to_owned(),
    };
    let ctx = &shared.ctx;
    let Some(driver) = ctx.drivers.get(&spec.task.driver) else {
        let known: Vec<&str> = ctx.drivers.keys().map(String::as_str).collect();
        fail(
            shared,
            name,
            TaskEventKind::DriverFailure,
            format!(
                "this agent has no driver {:?} (it has: {})",
                spec.task.driver,
                known.join(", ")
            ),
        );
        return;
    };
    let (dead, mut handle) = {
        let record = shared.lock();
        let t = record.tasks.get(name);
        (
            t.is_some_and(|t| t.state.state == TaskStatus::Dead),
            t.and_then(|t| t.handle.clone()),
        )
    };
    if dead {
        return;
    }
    if recovering && let Some(h) = handle.take() {
        match driver.recover(&h) {
            Ok(()) => {
                shared.event(
                    name,
                    TaskEvent::new(
                        TaskEventKind::Recovered,
                        now_ms(),
                        "Re-attached after the agent restarted",
                    ),
                );
                handle = Some(h);
            }
            Err(e) => {
                // Its exit is not known: the restart policy decides.
                shared.task_update(name, |t| {
                    t.handle = None;
                    t.state.state = TaskStatus::Pending;
                    t.state.push(TaskEvent::new(
                        TaskEventKind::DriverFailure,
                        now_ms(),
                        format!("could not re-attach after the agent restarted: {e}"),
                    ));
                });
                if !restart_or_fail(shared, name, &spec) {
                    return;
                }
            }
        }
    }
    let mut set_up = recovering;
    loop {
        let h = match handle.take() {
            Some(h) => h,
            None => {
                if let Some(reason) = shared.stop.reason() {
                    shared.task_update(name, |t| {
                        t.state.state = TaskStatus::Dead;
                        t.state.finished_at_ms = now_ms();
                        t.state
                            .push(TaskEvent::new(TaskEventKind::Killed, now_ms(), reason));
                    });
                    return;
                }
                match start(shared, name, &spec, driver, &task_ref, !set_up) {
                    Ok(h) => h,
                    Err(Fatal) => return,
                    Err(Retry) => {
                        set_up = true;
                        if restart_or_fail(shared, name, &spec) {
                            continue;
                        }
                        return;
                    }
                }
            }
        };
        set_up = true;
        // Running: wait for the end, or for a stop.
        let exit = loop {
            if let Some(reason) = shared.stop.reason() {
                kill(shared, name, &spec, driver, &h, &reason);
                return;
            }
            match driver.wait(&h, WAIT_SLICE) {
                Ok(Some(exit)) => break Ok(exit),
                Ok(None) => {}
                // The plugin faulted (a deadline on a loaded machine, its
                // breaker open): the task itself is fine; ask again.
                Err(DriverCallError::Plugin(e)) => {
                    tracing::warn!(task = name, "waiting on the task: {e}");
                    shared.stop.sleep(Duration::from_secs(1));
                }
                Err(e) => break Err(e),
            }
        };
        // A task whose supervision was lost is killed rather than left
        // running beside its replacement.
        let _ = driver.destroy(&h, exit.is_err());
        let success = match &exit {
            Ok(exit) => exit.exit_code == Some(0) && exit.signal.is_none(),
            Err(_) => false,
        };
        shared.task_update(name, |t| {
            t.handle = None;
            let event = match &exit {
                Ok(exit) => terminated(exit),
                Err(e) => TaskEvent::new(
                    TaskEventKind::DriverFailure,
                    now_ms(),
                    format!("lost track of the task: {e}"),
                ),
            };
            t.state.push(event);
            if success && spec.job_type == JobType::Batch {
                t.state.state = TaskStatus::Dead;
                t.state.finished_at_ms = now_ms();
            } else {
                t.state.state = TaskStatus::Pending;
            }
        });
        if success && spec.job_type == JobType::Batch {
            return;
        }
        if !restart_or_fail(shared, name, &spec) {
            return;
        }
    }
}

/// How a start attempt failed: for good (the config is wrong), or in a way
/// the restart policy may retry (an artifact, the driver).
enum StartError {
    Fatal,
    Retry,
}
use StartError::{Fatal, Retry};

fn start(
    shared: &Shared,
    name: &str,
    spec: &TaskSpec,
    driver: &DriverPlugin,
    task_ref: &TaskRef,
    first: bool,
) -> Result<TaskHandle, StartError> {
    let ctx = &shared.ctx;
    let data_dir = ctx.records.data_dir();
    if first {
        shared.event(
            name,
            TaskEvent::new(
                TaskEventKind::TaskSetup,
                now_ms(),
                "Building the task directory",
            ),
        );
    }
    let dirs = match dirs::create_task_dirs(data_dir, &spec.alloc.id, name) {
        Ok(d) => d,
        Err(e) => {
            fail(shared, name, TaskEventKind::SetupFailure, e.to_string());
            return Err(Fatal);
        }
    };
    let config = serde_json::Value::Object(spec.task.config.clone()).to_string();
    match driver.validate_config(&config) {
        Ok(problems) if problems.is_empty() => {}
        Ok(problems) => {
            let text: Vec<String> = problems
                .iter()
                .map(|p| format!("{}: {}", p.field, p.message))
                .collect();
            fail(
                shared,
                name,
                TaskEventKind::SetupFailure,
                format!(
                    "driver {} refused the task's config: {}",
                    spec.task.driver,
                    text.join("; ")
                ),
            );
            return Err(Fatal);
        }
        Err(e) => {
            event_pending(shared, name, TaskEventKind::DriverFailure, e.to_string());
            return Err(Retry);
        }
    }
    if !spec.task.artifacts.is_empty() {
        shared.event(
            name,
            TaskEvent::new(
                TaskEventKind::DownloadingArtifacts,
                now_ms(),
                format!("Fetching {} artifact(s)", spec.task.artifacts.len()),
            ),
        );
        for artifact in &spec.task.artifacts {
            let fetch = FetchSpec {
                source: artifact.source.clone(),
                sha256: artifact.sha256.clone(),
                destination: artifact.destination.clone(),
                mode: artifact.executable.then_some(0o755),
            };
            if let Err(e) = ctx.host.fetch(task_ref, fetch) {
                event_pending(
                    shared,
                    name,
                    TaskEventKind::ArtifactFailed,
                    format!("{}: {e}", artifact.source),
                );
                return Err(Retry);
            }
        }
    }
    let start = TaskStart {
        task: task_ref.clone(),
        config_json: config,
        env: environment(spec, name, &dirs),
        cpu_mhz: spec.task.resources.cpu,
        memory_mib: spec.task.resources.memory,
        disk_mib: spec.task.resources.disk,
        alloc_dir: dirs.alloc.display().to_string(),
        task_dir: dirs.task.display().to_string(),
        secrets_dir: dirs.secrets.display().to_string(),
        user: None,
    };
    match driver.start(&start) {
        Ok(handle) => {
            let started = now_ms();
            shared.task_update(name, |t| {
                t.handle = Some(handle.clone());
                t.state.state = TaskStatus::Running;
                t.state.started_at_ms = started;
                t.state.push(TaskEvent::new(
                    TaskEventKind::Started,
                    started,
                    "Task started by the driver",
                ));
            });
            Ok(handle)
        }
        Err(DriverCallError::InvalidConfig(problems)) => {
            let text: Vec<String> = problems
                .iter()
                .map(|p| format!("{}: {}", p.field, p.message))
                .collect();
            fail(shared, name, TaskEventKind::SetupFailure, text.join("; "));
            Err(Fatal)
        }
        // The operator's policy refused what the task asks for (e.g. a
        // privileged container): starting again would be refused again.
        Err(DriverCallError::Denied(why)) => {
            fail(shared, name, TaskEventKind::DriverFailure, why);
            Err(Fatal)
        }
        Err(e) => {
            event_pending(shared, name, TaskEventKind::DriverFailure, e.to_string());
            Err(Retry)
        }
    }
}

/// The task's environment: the job file's `env`, then what orch sets.
fn environment(spec: &TaskSpec, name: &str, dirs: &TaskDirs) -> Vec<(String, String)> {
    let mut env: BTreeMap<String, String> = spec.task.env.clone();
    let alloc = &spec.alloc;
    let mut set = |k: &str, v: String| {
        env.insert(k.to_owned(), v);
    };
    set("ORCH_ALLOC_ID", alloc.id.clone());
    set("ORCH_ALLOC_NAME", alloc.name.clone());
    set("ORCH_ALLOC_INDEX", alloc.index.to_string());
    set("ORCH_JOB_ID", alloc.job_id.clone());
    set("ORCH_JOB_NAME", spec.job_name.clone());
    set("ORCH_GROUP_NAME", alloc.group.clone());
    set("ORCH_TASK_NAME", name.to_owned());
    set("ORCH_NODE_ID", alloc.node_id.clone());
    set("ORCH_ALLOC_DIR", dirs.shared.display().to_string());
    set("ORCH_TASK_DIR", dirs.task.display().to_string());
    set("ORCH_SECRETS_DIR", dirs.secrets.display().to_string());
    set("ORCH_CPU_LIMIT", spec.task.resources.cpu.to_string());
    set("ORCH_MEMORY_LIMIT", spec.task.resources.memory.to_string());
    // No PATH unless the job sets one: a process gets the agent's from the
    // host, a container its image's.
    env.into_iter().collect()
}

/// Applies the restart policy after an unwanted end; `true` to start again.
fn restart_or_fail(shared: &Shared, name: &str, spec: &TaskSpec) -> bool {
    let now = now_ms();
    let mut next = Next::Fail;
    shared.task_update(name, |t| {
        next = t.restarts.next(&spec.restart, now);
        match next {
            Next::Restart(delay) => {
                t.state.restarts += 1;
                t.state.state = TaskStatus::Pending;
                t.state.push(TaskEvent::new(
                    TaskEventKind::Restarting,
                    now,
                    format!("Restarting in {}", orch_model::Dur(delay)),
                ));
            }
            Next::Fail => {
                t.state.state = TaskStatus::Dead;
                t.state.failed = true;
                t.state.finished_at_ms = now;
                t.state.push(TaskEvent::new(
                    TaskEventKind::NotRestarting,
                    now,
                    format!(
                        "Exceeded allowed attempts {} in interval {}",
                        spec.restart.attempts, spec.restart.interval
                    ),
                ));
            }
        }
    });
    match next {
        // A stop during the delay is handled where the task would start.
        Next::Restart(delay) => {
            shared.stop.sleep(delay);
            true
        }
        Next::Fail => {
            shared.stop.set(&format!("Sibling task {name} failed"));
            false
        }
    }
}

/// The task cannot run (its config, its driver): dead and failed, with
/// the reason as an event; its siblings are stopped.
fn fail(shared: &Shared, name: &str, kind: TaskEventKind, message: String) {
    let now = now_ms();
    shared.task_update(name, |t| {
        t.state.state = TaskStatus::Dead;
        t.state.failed = true;
        t.state.finished_at_ms = now;
        t.state.push(TaskEvent::new(kind, now, message));
    });
    shared.stop.set(&format!("Sibling task {name} failed"));
}

fn event_pending(shared: &Shared, name: &str, kind: TaskEventKind, message: String) {
    shared.task_update(name, |t| {
        t.state.state = TaskStatus::Pending;
        t.state.push(TaskEvent::new(kind, now_ms(), message));
    });
}

/// Stops a running task: its signal, the kill timeout, then a kill.
fn kill(
    shared: &Shared,
    name: &str,
    spec: &TaskSpec,
    driver: &DriverPlugin,
    handle: &TaskHandle,
    reason: &str,
) {
    let timeout = spec.task.kill_timeout.0;
    shared.event(
        name,
        TaskEvent::new(
            TaskEventKind::Killing,
            now_ms(),
            format!(
                "{reason}; sent SIGTERM, kill timeout {}",
                spec.task.kill_timeout
            ),
        ),
    );
    let stopped = driver.stop(handle, "SIGTERM", timeout);
    let exit = driver.wait(handle, KILL_GRACE);
    let _ = driver.destroy(handle, true);
    shared.task_update(name, |t| {
        t.handle = None;
        t.state.state = TaskStatus::Dead;
        t.state.finished_at_ms = now_ms();
        let mut event = TaskEvent::new(TaskEventKind::Killed, now_ms(), "Task killed");
        match (&stopped, &exit) {
            (Err(e), _) => event.message = format!("Stopping failed: {e}"),
            (_, Ok(Some(exit))) => {
                event.exit_code = exit.exit_code;
                event.signal = exit.signal;
            }
            _ => {}
        }
        t.state.push(event);
    });
}

fn terminated(exit: &ExitStatus) -> TaskEvent {
    let mut message = match (exit.exit_code, exit.signal) {
        (Some(code), _) => format!("Exit code {code}"),
        (None, Some(sig)) => format!("Killed by signal {sig}"),
        (None, None) => "Exited".to_owned(),
    };
    if exit.oom_killed {
        message.push_str(" (out of memory: the kernel killed it at its memory limit)");
    }
    TaskEvent {
        kind: TaskEventKind::Terminated,
        time_ms: exit.finished_at_ms.max(1),
        message,
        exit_code: exit.exit_code,
        signal: exit.signal,
    }
}

/// A stop request that sleeping tasks wake up for.
#[derive(Default)]
struct Stop {
    reason: Mutex<Option<String>>,
    cv: Condvar,
}

impl Stop {
    fn set(&self, reason: &str) {
        let mut r = self.reason.lock().unwrap_or_else(|p| p.into_inner());
        if r.is_none() {
            *r = Some(reason.to_owned());
        }
        self.cv.notify_all();
    }

    fn reason(&self) -> Option<String> {
        self.reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Sleeps `d` unless stopped first; `true` when stopped.
    fn sleep(&self, d: Duration) -> bool {
        let guard = self.reason.lock().unwrap_or_else(|p| p.into_inner());
        let (guard, _) = self
            .cv
            .wait_timeout_while(guard, d, |r| r.is_none())
            .unwrap_or_else(|p| p.into_inner());
        guard.is_some()
    }
}

pub use orch_model::now_ms;
