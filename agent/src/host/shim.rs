//! The per-task supervisor, like Nomad's executor: a small process between
//! the agent and the task, so the task outlives an agent crash or upgrade
//! and its exit is still known afterwards.
//!
//! The agent runs `<shim> SPEC` in its own process group with stdin closed.
//! The shim starts the task in the task's own process group (inside the
//! task's cgroup where there is one), reports one line on stdout — the
//! task's pid and start time, or why it could not start — and never writes
//! to stdout again. It then copies the task's output into rotating log
//! files, waits for the task, records `exit.json` atomically, removes the
//! cgroup and exits.

use std::ffi::OsString;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};
use serde::{Deserialize, Serialize};

use crate::dirs::LogStream;
use crate::host::cgroup::CgroupPlan;
use crate::host::logs::RotatingLog;
use crate::host::process::{
    EXIT_FILE, ExitRecord, STATE_FILE, Started, now_ms, proc_stat, write_json_atomic,
};

/// Everything the shim needs, written by the agent to the shim's directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ShimSpec {
    /// `alloc/task`, for messages.
    pub label: String,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Absolute; checked by the agent to be inside `task_dir`.
    pub cwd: PathBuf,
    pub task_dir: PathBuf,
    /// Searched for `argv[0]` when the task's environment has no `PATH`.
    pub default_path: String,
    pub log_dir: PathBuf,
    pub task: String,
    pub log_max_bytes: u64,
    pub log_max_files: u32,
    pub cgroup: Option<CgroupPlan>,
    /// Where `state.json` and `exit.json` go.
    pub shim_dir: PathBuf,
}

/// The one line the shim writes on stdout.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Report {
    Started(Started),
    Failed(String),
}

/// How long the shim waits for the output pipes to close after the task
/// and what it left behind were killed; a process that escaped both the
/// process group and the cgroup must not keep the exit from being recorded.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// The `orch shim` entry point. `args` are the arguments after the
/// subcommand; the last is the path of the spec file. Returns the shim's
/// exit code: 0 when the task ran (whatever its own exit), 1 when it could
/// not be started, 2 when the shim was called wrongly.
pub fn shim_main(args: Vec<OsString>) -> i32 {
    let Some(spec_path) = args.last().map(PathBuf::from) else {
        eprintln!("orch shim: usage: orch shim SPEC_FILE (the agent runs this, not people)");
        return 2;
    };
    let spec = match read_spec(&spec_path) {
        Ok(spec) => spec,
        Err(message) => {
            report(&Report::Failed(message));
            return 2;
        }
    };
    match start(&spec) {
        Ok((child, started)) => {
            report(&Report::Started(started));
            supervise(&spec, child, started);
            0
        }
        Err(message) => {
            eprintln!("orch shim {}: {message}", spec.label);
            report(&Report::Failed(message));
            1
        }
    }
}

fn read_spec(path: &Path) -> Result<ShimSpec, String> {
    let text =
        fs::read(path).map_err(|e| format!("cannot read the shim spec {}: {e}", path.display()))?;
    serde_json::from_slice(&text)
        .map_err(|e| format!("the shim spec {} is not valid: {e}", path.display()))
}

fn report(report: &Report) {
    let mut out = io::stdout().lock();
    // The agent may have died meanwhile; the task runs on either way.
    if let Ok(line) = serde_json::to_string(report) {
        let _ = writeln!(out, "{line}").and_then(|()| out.flush());
    }
}

/// Starts the task and records who is who in `state.json`.
fn start(spec: &ShimSpec) -> Result<(Child, Started), String> {
    let argv0 = spec
        .argv
        .first()
        .ok_or_else(|| "argv is empty: give the program to run".to_owned())?;
    let program = resolve_program(spec, argv0)?;
    if let Some(plan) = &spec.cgroup {
        enter_cgroup(plan)?;
    }
    let spawned = Command::new(&program)
        .arg0(argv0)
        .args(&spec.argv[1..])
        .env_clear()
        .envs(task_env(spec))
        .current_dir(&spec.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn();
    if let Some(plan) = &spec.cgroup {
        leave_cgroup(plan);
    }
    let child = match spawned {
        Ok(child) => child,
        Err(e) => {
            if let Some(plan) = &spec.cgroup {
                remove_cgroup(plan);
            }
            return Err(format!(
                "{:?}: {}",
                program.display().to_string(),
                describe_io(&e)
            ));
        }
    };
    let pid = child.id();
    let own = std::process::id();
    let (Some(task_stat), Some(shim_stat)) = (proc_stat(pid), proc_stat(own)) else {
        return Err(format!(
            "cannot read /proc/{pid}/stat of the task just started"
        ));
    };
    let started = Started {
        pid,
        start_token: task_stat.start_token,
        shim_pid: own,
        shim_start_token: shim_stat.start_token,
    };
    let state = spec.shim_dir.join(STATE_FILE);
    if let Err(e) = write_json_atomic(&state, &started) {
        // Without the state file nobody could attach after an agent restart.
        kill_group(pid, Signal::KILL);
        return Err(format!("cannot write {}: {e}", state.display()));
    }
    Ok((child, started))
}

/// The task's environment: exactly what the driver gave, plus a `PATH` if
/// it gave none, so `sh -c` and friends find their programs.
fn task_env(spec: &ShimSpec) -> Vec<(String, String)> {
    let mut env = spec.env.clone();
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.push(("PATH".to_owned(), spec.default_path.clone()));
    }
    env
}

/// `argv[0]` with a `/` is a path (relative ones start at the task
/// directory); a bare name is looked for in the task directory, then in
/// `PATH`.
fn resolve_program(spec: &ShimSpec, argv0: &str) -> Result<PathBuf, String> {
    if argv0.contains('/') {
        let path = spec.task_dir.join(argv0);
        return if path.exists() {
            Ok(path)
        } else {
            Err(format!("{argv0:?}: no such file or directory"))
        };
    }
    let in_task_dir = spec.task_dir.join(argv0);
    if in_task_dir.is_file() {
        return Ok(in_task_dir);
    }
    let env = task_env(spec);
    let path = env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    path.split(':')
        .filter(|dir| !dir.is_empty())
        .map(|dir| Path::new(dir).join(argv0))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            format!("{argv0:?}: no such file or directory (not in the task directory nor in PATH={path})")
        })
}

fn describe_io(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file or directory".to_owned(),
        io::ErrorKind::PermissionDenied => "permission denied (is it executable?)".to_owned(),
        _ => e.to_string(),
    }
}

fn enter_cgroup(plan: &CgroupPlan) -> Result<(), String> {
    for dir in &plan.dirs {
        fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create cgroup {}: {e}", dir.display()))?;
    }
    let fail = |what: &str, path: &Path, e: io::Error| {
        remove_cgroup(plan);
        format!("cannot {what} {}: {e}", path.display())
    };
    for (file, value) in &plan.writes {
        fs::write(file, value).map_err(|e| fail(&format!("write {value} to"), file, e))?;
    }
    let me = std::process::id().to_string();
    for dir in &plan.dirs {
        let procs = dir.join("cgroup.procs");
        if let Err(e) = fs::write(&procs, &me) {
            leave_cgroup(plan);
            return Err(fail("join cgroup", &procs, e));
        }
    }
    Ok(())
}

/// Back to where the shim came from, so only the task counts against its
/// limits. Failing here is not fatal: the task runs, limited as asked.
fn leave_cgroup(plan: &CgroupPlan) {
    let me = std::process::id().to_string();
    for home in &plan.home {
        let procs = home.join("cgroup.procs");
        if let Err(e) = fs::write(&procs, &me) {
            eprintln!("orch shim: cannot move back to {}: {e}", procs.display());
        }
    }
}

/// Kills whatever is left in the task's cgroups and removes them.
fn remove_cgroup(plan: &CgroupPlan) {
    for dir in &plan.dirs {
        if !dir.exists() {
            continue;
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            for pid in fs::read_to_string(dir.join("cgroup.procs"))
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok())
                .filter_map(Pid::from_raw)
            {
                let _ = rustix::process::kill_process(pid, Signal::KILL);
            }
            match fs::remove_dir(dir) {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                // Killed processes take a moment to leave the cgroup.
                Err(e) if Instant::now() >= deadline => {
                    eprintln!("orch shim: cannot remove cgroup {}: {e}", dir.display());
                    break;
                }
                Err(_) => thread::sleep(Duration::from_millis(5)),
            }
        }
    }
}

fn kill_group(pid: u32, signal: Signal) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
        let _ = rustix::process::kill_process_group(pid, signal);
    }
}

/// Copies the task's output to its logs, waits for it and records its
/// exit. Nothing here can stop the exit from being recorded except a
/// failure to write the record itself.
fn supervise(spec: &ShimSpec, mut child: Child, started: Started) {
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let mut pumps = 0;
    for (stream, pipe) in [
        (
            LogStream::Stdout,
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ),
        (
            LogStream::Stderr,
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ),
    ] {
        let Some(pipe) = pipe else { continue };
        let log = match RotatingLog::open(
            &spec.log_dir,
            &spec.task,
            stream,
            spec.log_max_bytes,
            spec.log_max_files,
        ) {
            Ok(log) => Some(log),
            Err(e) => {
                eprintln!(
                    "orch shim {}: cannot open the {} log in {}: {e}; the output is dropped",
                    spec.label,
                    stream.as_str(),
                    spec.log_dir.display()
                );
                None
            }
        };
        let done = done_tx.clone();
        let label = spec.label.clone();
        let spawned = thread::Builder::new()
            .name(format!("log-{}", stream.as_str()))
            .spawn(move || {
                pump(pipe, log, &label, stream);
                let _ = done.send(());
            });
        match spawned {
            Ok(_) => pumps += 1,
            Err(e) => eprintln!("orch shim {}: cannot start the log thread: {e}", spec.label),
        }
    }
    drop(done_tx);

    let status = child.wait();
    // Read before anything else is killed: only the kernel's OOM killer
    // counts here.
    let oom_killed = spec
        .cgroup
        .as_ref()
        .and_then(|plan| plan.oom_file.as_ref())
        .is_some_and(|file| oom_kill_count(file) > 0);
    // What the task left running in its group goes with it, so nothing of
    // it outlives the task unsupervised.
    kill_group(started.pid, Signal::KILL);
    if let Some(plan) = &spec.cgroup {
        remove_cgroup(plan);
    }
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    for _ in 0..pumps {
        let left = deadline.saturating_duration_since(Instant::now());
        if done_rx.recv_timeout(left).is_err() {
            eprintln!(
                "orch shim {}: the task's output is still open after it ended \
                 (a process outside its group holds it); recording the exit anyway",
                spec.label
            );
            break;
        }
    }
    let (exit_code, signal) = match status {
        Ok(status) => (
            status.code(),
            status.signal().and_then(|s| u32::try_from(s).ok()),
        ),
        Err(e) => {
            eprintln!(
                "orch shim {}: cannot wait for pid {}: {e}",
                spec.label, started.pid
            );
            (None, None)
        }
    };
    let record = ExitRecord {
        pid: started.pid,
        start_token: started.start_token,
        exit_code,
        signal,
        oom_killed,
        finished_at_ms: now_ms(),
    };
    let path = spec.shim_dir.join(EXIT_FILE);
    if let Err(e) = write_json_atomic(&path, &record) {
        eprintln!(
            "orch shim {}: cannot record the exit in {}: {e}",
            spec.label,
            path.display()
        );
    }
}

fn pump(
    mut pipe: Box<dyn Read + Send>,
    mut log: Option<RotatingLog>,
    label: &str,
    stream: LogStream,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match pipe.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                eprintln!("orch shim {label}: reading {}: {e}", stream.as_str());
                return;
            }
        };
        // Keep reading even when the log cannot be written, so the task
        // never blocks on a full pipe.
        if let Some(writer) = log.as_mut()
            && let Err(e) = writer.write_all(&buf[..n])
        {
            eprintln!(
                "orch shim {label}: writing the {} log: {e}; the output is dropped",
                stream.as_str()
            );
            log = None;
        }
    }
}

/// The `oom_kill N` line of v1 `memory.oom_control` or v2 `memory.events`.
fn oom_kill_count(file: &Path) -> u64 {
    fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}
