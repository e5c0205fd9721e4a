//! A task's process as the agent sees it: identified by pid *and* start
//! time (field 22 of `/proc/PID/stat`), so a reused pid is never mistaken
//! for the task; its end is learnt from the `exit.json` its shim records,
//! which outlives both the shim and the agent.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use orch_plugin_runtime::{CapabilityError, ExitStatus, ProcessHandle};
use rustix::process::{Pid, Signal};
use serde::{Deserialize, Serialize};

pub(crate) const STATE_FILE: &str = "state.json";
pub(crate) const EXIT_FILE: &str = "exit.json";
pub(crate) const SPEC_FILE: &str = "spec.json";
pub(crate) const SHIM_LOG: &str = "shim.log";

/// Written by the shim once the task runs: who is who, for `attach`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Started {
    pub pid: u32,
    pub start_token: u64,
    pub shim_pid: u32,
    pub shim_start_token: u64,
}

/// Written by the shim when the task has ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ExitRecord {
    pub pid: u32,
    pub start_token: u64,
    pub exit_code: Option<i32>,
    pub signal: Option<u32>,
    pub oom_killed: bool,
    pub finished_at_ms: u64,
}

impl ExitRecord {
    pub(crate) fn status(&self) -> ExitStatus {
        ExitStatus {
            exit_code: self.exit_code,
            signal: self.signal,
            oom_killed: self.oom_killed,
            finished_at_ms: self.finished_at_ms,
        }
    }
}

/// What `/proc/PID/stat` says about a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcStat {
    pub state: char,
    pub start_token: u64,
}

impl ProcStat {
    /// A zombie has ended; only its parent has not collected it yet.
    pub(crate) fn is_running(&self) -> bool {
        !matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// `None` when there is no such process.
pub(crate) fn proc_stat(pid: u32) -> Option<ProcStat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// The command name (field 2) is in parentheses and may hold spaces and
/// parentheses itself, so fields are counted from the last `)`.
fn parse_stat(text: &str) -> Option<ProcStat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state); field 22 (starttime) is fields[19].
    Some(ProcStat {
        state: fields.first()?.chars().next()?,
        start_token: fields.get(19)?.parse().ok()?,
    })
}

/// Whether `pid` is still the process that had `start_token`.
pub(crate) fn is_same_process(pid: u32, start_token: u64) -> bool {
    proc_stat(pid).is_some_and(|s| s.start_token == start_token && s.is_running())
}

pub(crate) use orch_model::now_ms;

/// The signals a driver may send, with or without the `SIG` prefix.
pub(crate) fn parse_signal(name: &str) -> Result<Signal, String> {
    let upper = name.trim().to_ascii_uppercase();
    let short = upper.strip_prefix("SIG").unwrap_or(&upper);
    Ok(match short {
        "TERM" => Signal::TERM,
        "KILL" => Signal::KILL,
        "INT" => Signal::INT,
        "HUP" => Signal::HUP,
        "QUIT" => Signal::QUIT,
        "USR1" => Signal::USR1,
        "USR2" => Signal::USR2,
        _ => {
            return Err(format!(
                "unknown signal {name:?}: use one of SIGTERM, SIGKILL, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2"
            ));
        }
    })
}

/// Reads the exit a shim recorded, if it is the exit of `pid`.
pub(crate) fn read_exit(shim_dir: &Path, pid: u32) -> Result<Option<ExitRecord>, String> {
    let path = shim_dir.join(EXIT_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let record: ExitRecord = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not a valid exit record: {e}", path.display()))?;
    Ok((record.pid == pid).then_some(record))
}

pub(crate) fn read_started(shim_dir: &Path) -> Option<Started> {
    let text = fs::read_to_string(shim_dir.join(STATE_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Writes `value` as JSON to `path` so that readers see the old file or
/// the whole new one, never a part. No fsync: these records must survive
/// the agent or the shim dying, which the page cache does; a machine crash
/// ends the task itself, and spawn is on the submit-to-running path.
pub(crate) fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let text = serde_json::to_vec(value).map_err(io::Error::other)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    fs::write(&tmp, text)?;
    fs::rename(&tmp, path)
}

/// The handle `spawn` and `attach` return.
pub(crate) struct TaskProcess {
    /// `alloc/task`, for messages.
    label: String,
    pid: u32,
    start_token: u64,
    shim_dir: PathBuf,
    shim_pid: u32,
    shim_start_token: u64,
    finished: Option<ExitStatus>,
}

impl TaskProcess {
    pub(crate) fn running(label: String, shim_dir: PathBuf, started: Started) -> TaskProcess {
        TaskProcess {
            label,
            pid: started.pid,
            start_token: started.start_token,
            shim_dir,
            shim_pid: started.shim_pid,
            shim_start_token: started.shim_start_token,
            finished: None,
        }
    }

    pub(crate) fn finished(label: String, shim_dir: PathBuf, exit: ExitRecord) -> TaskProcess {
        TaskProcess {
            label,
            pid: exit.pid,
            start_token: exit.start_token,
            shim_dir,
            shim_pid: 0,
            shim_start_token: 0,
            finished: Some(exit.status()),
        }
    }

    fn check_exit(&mut self) -> Result<Option<ExitStatus>, String> {
        if self.finished.is_none() {
            self.finished = read_exit(&self.shim_dir, self.pid)
                .map_err(|e| format!("task {}: {e}", self.label))?
                .map(|r| r.status());
        }
        Ok(self.finished)
    }
}

impl ProcessHandle for TaskProcess {
    fn pid(&self) -> u32 {
        self.pid
    }

    fn start_token(&self) -> u64 {
        self.start_token
    }

    /// Signalling a task that has already ended does nothing: a stop that
    /// races the task's own exit is not an error.
    fn signal(&mut self, signal: &str) -> Result<(), CapabilityError> {
        let sig = parse_signal(signal).map_err(CapabilityError::Invalid)?;
        if self
            .check_exit()
            .map_err(CapabilityError::Failed)?
            .is_some()
            || !is_same_process(self.pid, self.start_token)
        {
            return Ok(());
        }
        let Some(pid) = i32::try_from(self.pid).ok().and_then(Pid::from_raw) else {
            return Err(CapabilityError::Invalid(format!(
                "task {}: pid {} is not a valid pid",
                self.label, self.pid
            )));
        };
        // The task leads its own process group, so its children get it too;
        // if it left that group, it still gets the signal itself.
        match rustix::process::kill_process_group(pid, sig) {
            Ok(()) => Ok(()),
            Err(rustix::io::Errno::SRCH) => match rustix::process::kill_process(pid, sig) {
                Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
                Err(e) => Err(CapabilityError::Failed(format!(
                    "task {}: cannot send {signal} to pid {}: {e}",
                    self.label, self.pid
                ))),
            },
            Err(e) => Err(CapabilityError::Failed(format!(
                "task {}: cannot send {signal} to process group {}: {e}",
                self.label, self.pid
            ))),
        }
    }

    fn wait(&mut self, timeout: Duration) -> Result<Option<ExitStatus>, CapabilityError> {
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(2);
        loop {
            if let Some(exit) = self.check_exit().map_err(CapabilityError::Failed)? {
                return Ok(Some(exit));
            }
            if !is_same_process(self.shim_pid, self.shim_start_token) {
                // The shim records the exit before it ends: look once more.
                if let Some(exit) = self.check_exit().map_err(CapabilityError::Failed)? {
                    return Ok(Some(exit));
                }
                return Err(CapabilityError::NotFound(format!(
                    "task {}: its supervisor (shim pid {}) died without recording how pid {} ended; \
                     see {}",
                    self.label,
                    self.shim_pid,
                    self.pid,
                    self.shim_dir.join(SHIM_LOG).display()
                )));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let line = "4242 (we)ird (name)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        let stat = parse_stat(line).unwrap();
        assert_eq!(
            stat,
            ProcStat {
                state: 'S',
                start_token: 987654
            }
        );
        let own = proc_stat(std::process::id()).unwrap();
        assert!(own.is_running());
        assert!(is_same_process(std::process::id(), own.start_token));
        assert!(!is_same_process(std::process::id(), own.start_token + 1));
    }

    #[test]
    fn signal_names() {
        assert_eq!(parse_signal("SIGTERM").unwrap(), Signal::TERM);
        assert_eq!(parse_signal("usr1").unwrap(), Signal::USR1);
        let err = parse_signal("SIGWINCH").unwrap_err();
        assert!(err.contains("unknown signal \"SIGWINCH\""), "{err}");
    }
}
