//! A process as the end-to-end tests and the benchmarks start `orch server`
//! and `orch agent`: up once it prints its first line on stdout (which says
//! where it listens, or which node it is), its stderr kept as its log, and
//! killed when dropped, whatever the test or the bench did meanwhile. Plus
//! what `/proc` says of a process: its CPU time and resident memory, and
//! whether it still runs.

use std::fmt;
use std::io::{self, BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a process may take to print its first line. `orch server`
/// compiles its plugins before it listens, which a loaded two-core machine
/// running a test suite in parallel does slowly.
const FIRST_LINE_WAIT: Duration = Duration::from_secs(120);

/// How long [`Process::logged`] and [`Process::exited`] wait.
const WAIT: Duration = Duration::from_secs(30);

/// What happens to a process's stderr besides being kept.
#[derive(Debug, Clone)]
pub enum Echo {
    /// Each line is also written to this process's stderr as `[TAG] line`,
    /// so a failing test shows the server's and agents' logs among its own
    /// output (the test harness captures it per test).
    Tagged(String),
    /// Kept only, for [`Process::log`]: a benchmark prints its figures,
    /// not thousands of log lines.
    Quiet,
}

impl Echo {
    pub fn tagged(tag: &str) -> Echo {
        Echo::Tagged(tag.to_owned())
    }
}

/// A process's stderr, as far as it has been read; clones share it.
#[derive(Clone, Default)]
pub struct Log(Arc<LogInner>);

#[derive(Default)]
struct LogInner {
    state: Mutex<LogState>,
    changed: Condvar,
}

#[derive(Default)]
struct LogState {
    text: String,
    /// The process closed its stderr (it exited).
    closed: bool,
}

impl Log {
    fn state(&self) -> MutexGuard<'_, LogState> {
        // A reader thread that panicked holding the lock left whole lines.
        self.0.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push_line(&self, line: &str) {
        let mut state = self.state();
        state.text.push_str(line);
        state.text.push('\n');
        self.0.changed.notify_all();
    }

    fn close(&self) {
        self.state().closed = true;
        self.0.changed.notify_all();
    }

    /// Everything logged so far, a line each.
    pub fn text(&self) -> String {
        self.state().text.clone()
    }

    /// The last `n` lines logged.
    pub fn tail(&self, n: usize) -> String {
        let state = self.state();
        let lines: Vec<&str> = state.text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// The first line logged that contains `text`, once there is one, for
    /// up to `timeout`.
    pub fn wait_for(&self, text: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let mut state = self.state();
        loop {
            if let Some(line) = state.text.lines().find(|l| l.contains(text)) {
                return Some(line.to_owned());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || state.closed {
                return None;
            }
            state = self
                .0
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Waits up to `timeout` for the process to close its stderr, so the
    /// log is whole.
    fn wait_closed(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut state = self.state();
        while !state.closed {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            state = self
                .0
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

/// Why a process did not come up.
#[derive(Debug)]
pub struct StartError {
    /// The command as a person would type it (`orch server`).
    pub name: String,
    /// What went wrong, to follow "cannot start `NAME`: ".
    pub problem: String,
    /// Its stderr, whole if it exited.
    pub log: String,
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot start `{}`: {}", self.name, self.problem)?;
        if self.log.trim().is_empty() {
            write!(f, "; it logged nothing")
        } else {
            write!(f, "; its log:\n{}", self.log.trim_end())
        }
    }
}

impl std::error::Error for StartError {}

/// A running process; killed (SIGKILL) and reaped when dropped.
pub struct Process {
    child: Child,
    name: String,
    ready_line: String,
    log: Log,
}

impl Process {
    /// Starts `command` with stdout and stderr piped and waits (up to two
    /// minutes) for its first line of stdout, which must start with
    /// `ready`: the process is up then. The rest of stdout is read and
    /// dropped, so the process never blocks on a full pipe; stderr is kept
    /// as its [`Log`] and echoed as `echo` says.
    pub fn start(mut command: Command, ready: &str, echo: Echo) -> Result<Process, StartError> {
        let name = display_name(&command);
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| StartError {
                name: name.clone(),
                problem: format!(
                    "{} ({e}); is it built?",
                    command.get_program().to_string_lossy()
                ),
                log: String::new(),
            })?;
        let log = Log::default();
        if let Some(stderr) = child.stderr.take() {
            let (log, tag) = (log.clone(), echo);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Echo::Tagged(tag) = &tag {
                        eprintln!("[{tag}] {line}");
                    }
                    log.push_line(&line);
                }
                log.close();
            });
        } else {
            log.close();
        }
        let (tx, rx) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            std::thread::spawn(move || {
                let mut out = BufReader::new(stdout);
                let mut line = String::new();
                let first = out.read_line(&mut line).map(|_| line);
                let _ = tx.send(first);
                let _ = io::copy(&mut out, &mut io::sink());
            });
        }
        let mut process = Process {
            child,
            name,
            ready_line: String::new(),
            log,
        };
        let problem = match rx.recv_timeout(FIRST_LINE_WAIT) {
            Ok(Ok(line)) => match line.trim().strip_prefix(ready) {
                Some(rest) => {
                    process.ready_line = rest.trim().to_owned();
                    return Ok(process);
                }
                None if line.is_empty() => match process.exited_within(Duration::from_secs(5)) {
                    Some(status) => format!("it exited ({status}) without saying it was up"),
                    None => "it closed its stdout without saying it was up".to_owned(),
                },
                None => format!(
                    "its first line was {:?}; expected one starting {ready:?}",
                    line.trim()
                ),
            },
            Ok(Err(e)) => format!("cannot read its output: {e}"),
            Err(_) => format!(
                "it printed nothing in {} s; expected a line starting {ready:?}",
                FIRST_LINE_WAIT.as_secs()
            ),
        };
        process.kill9();
        // Killed, it closes its stderr; what it said is then all there.
        process.log.wait_closed(Duration::from_secs(5));
        Err(StartError {
            name: process.name.clone(),
            problem,
            log: process.log.text(),
        })
    }

    /// The first line the process printed, past the `ready` prefix given
    /// to [`Process::start`] (`http://127.0.0.1:PORT` of
    /// `orch server: API listening on http://127.0.0.1:PORT`).
    pub fn ready_line(&self) -> &str {
        &self.ready_line
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> &Log {
        &self.log
    }

    /// Waits up to 30 s for the process to log a line containing `text`;
    /// that line. Panics with the log if it never does.
    pub fn logged(&self, text: &str) -> String {
        self.log.wait_for(text, WAIT).unwrap_or_else(|| {
            panic!(
                "`{}` never logged {text:?}; it logged:\n{}",
                self.name,
                self.log.text()
            )
        })
    }

    /// Sends the signal `name` (`HUP`, `TERM`) with kill(1).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .unwrap_or_else(|e| panic!("cannot run kill -{name}: {e}"));
        assert!(
            status.success(),
            "kill -{name} {} failed: {status}",
            self.pid()
        );
    }

    /// SIGKILL, and waits for the process to be gone. Its children (an
    /// agent's task supervisors) are left.
    pub fn kill9(&mut self) {
        // An error means it was gone already.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits up to 30 s for the process to exit; its exit status.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.exited_within(WAIT)
    }

    /// Its exit status if it has exited, without waiting.
    pub fn try_exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    fn exited_within(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.try_exited() {
                return Some(status);
            }
            if started.elapsed() >= timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// `orch server` for `/…/target/debug/orch server --config …`: the
/// program's file name and its first argument, if that is a word.
fn display_name(command: &Command) -> String {
    let program = Path::new(command.get_program())
        .file_name()
        .map_or_else(
            || command.get_program().to_string_lossy(),
            |n| n.to_string_lossy(),
        )
        .into_owned();
    match command.get_args().next().and_then(|a| a.to_str()) {
        Some(sub) if !sub.starts_with('-') => format!("{program} {sub}"),
        _ => program,
    }
}

/// Clock ticks per second, the unit of `/proc/PID/stat`'s CPU times, from
/// `getconf CLK_TCK`; 100 (Linux's usual value) if that cannot be run, and
/// then `true`, so a figure based on it can say it was assumed.
pub fn clock_ticks() -> (f64, bool) {
    let read = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|&t| t > 0.0);
    match read {
        Some(t) => (t, false),
        None => (100.0, true),
    }
}

/// utime + stime, in clock ticks, of the process whose `stat` file this is
/// (`/proc/PID/stat`, `/proc/self/stat`).
pub fn cpu_ticks(stat: impl AsRef<Path>) -> io::Result<u64> {
    let stat = stat.as_ref();
    let text = std::fs::read_to_string(stat)
        .map_err(|e| io::Error::new(e.kind(), format!("reading {}: {e}", stat.display())))?;
    let bad = |what: String| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {what}", stat.display()),
        )
    };
    // The command name, in parentheses, may hold spaces and parentheses:
    // fields count from the last ')' (state is field 3, utime 14, stime 15).
    let (_, rest) = text
        .rsplit_once(')')
        .ok_or_else(|| bad(format!("no ')' in {text:?}")))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> io::Result<u64> {
        fields
            .get(n - 3)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| bad(format!("field {n} is not a number")))
    };
    Ok(field(14)? + field(15)?)
}

/// A process's resident memory, in MiB.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Resident {
    pub now_mib: f64,
    /// The most it ever held (`VmHWM`).
    pub peak_mib: f64,
}

/// The resident memory of the process whose `status` file this is
/// (`/proc/PID/status`).
pub fn resident(status: impl AsRef<Path>) -> io::Result<Resident> {
    let status = status.as_ref();
    let text = std::fs::read_to_string(status)
        .map_err(|e| io::Error::new(e.kind(), format!("reading {}: {e}", status.display())))?;
    let mib = |key: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0.0, |kib| kib / 1024.0)
    };
    Ok(Resident {
        now_mib: mib("VmRSS:"),
        peak_mib: mib("VmHWM:"),
    })
}

/// Whether process `pid` still runs; a zombie (exited, not yet reaped)
/// does not.
pub fn pid_alive(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|r| !r.trim_start().starts_with('Z'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_read_past_a_name_with_spaces() {
        let dir = tempfile::tempdir().unwrap();
        let stat = dir.path().join("stat");
        let mut fields = vec!["1 (a b) S".to_owned()];
        // Fields 4 to 13, then utime = 7 and stime = 5.
        fields.extend((4..=13).map(|n| n.to_string()));
        fields.extend(["7".into(), "5".into(), "0".into()]);
        std::fs::write(&stat, fields.join(" ")).unwrap();
        assert_eq!(cpu_ticks(stat.to_str().unwrap()).unwrap(), 12);
        assert!(cpu_ticks("/proc/self/stat").is_ok());
    }

    fn sh(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        c
    }

    /// The first line is where the process says it is up; what it says on
    /// stderr is its log, waited for by `logged`.
    #[test]
    fn a_process_is_up_at_its_first_line_and_its_log_is_kept() {
        let p = Process::start(
            sh("echo 'up at http://x:1'; echo one >&2; sleep 0.2; echo 'two words' >&2; sleep 30"),
            "up at ",
            Echo::Quiet,
        )
        .unwrap();
        assert_eq!(p.ready_line(), "http://x:1");
        assert_eq!(p.logged("two"), "two words");
        assert_eq!(p.log().tail(1), "two words");
        assert!(pid_alive(i64::from(p.pid())));
    }

    /// A process that says something else, or nothing, is named with what
    /// it logged.
    #[test]
    fn a_process_that_does_not_come_up_says_why() {
        let e = Process::start(sh("echo 'no config' >&2; exit 3"), "up at ", Echo::Quiet)
            .err()
            .unwrap();
        assert_eq!(e.name, "sh");
        assert!(e.problem.contains("exited (exit status: 3)"), "{e}");
        assert_eq!(e.log, "no config\n");
        let e = Process::start(sh("echo hello; exec sleep 30"), "up at ", Echo::Quiet)
            .err()
            .unwrap();
        assert!(
            e.to_string().contains("its first line was \"hello\""),
            "{e}"
        );
        let e = Process::start(Command::new("/nonexistent/orch"), "up", Echo::Quiet)
            .err()
            .unwrap();
        assert!(
            e.to_string()
                .starts_with("cannot start `orch`: /nonexistent/orch ("),
            "{e}"
        );
    }

    #[test]
    fn a_signalled_process_exits_and_a_dropped_one_is_killed() {
        let mut p = Process::start(sh("echo up; exec sleep 30"), "up", Echo::Quiet).unwrap();
        p.signal("TERM");
        assert!(p.exited().is_some());
        let p = Process::start(sh("echo up; exec sleep 30"), "up", Echo::Quiet).unwrap();
        let pid = i64::from(p.pid());
        drop(p);
        assert!(!pid_alive(pid));
    }
}
