//! The host capabilities against the real thing: the real shim binary, real
//! processes and signals, real files, cgroups where the machine has them,
//! and a real HTTP server on 127.0.0.1 for artifacts.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use orch_agent::{
    HostConfig, LogCursor, LogStream, NodeHost, ShimCommand, read_log, shim_dir, task_dir,
};
use orch_plugin_runtime::{
    CapabilityError, DriverHost, FetchSpec, LogLevel, ProcessHandle, ProcessLimits, SpawnSpec,
    TaskRef,
};
use rustix::process::{Pid, Signal};

/// Long enough for anything here to finish on a loaded machine; a test
/// only ever waits this long when it is about to fail.
const PATIENCE: Duration = Duration::from_secs(60);

fn config(data: &Path) -> HostConfig {
    HostConfig {
        data_dir: data.to_owned(),
        shim: ShimCommand {
            program: PathBuf::from(env!("CARGO_BIN_EXE_orch-task-shim")),
            args: Vec::new(),
        },
        log_max_bytes: 1024 * 1024,
        log_max_files: 5,
        artifact_max_bytes: 1024 * 1024,
    }
}

fn host(data: &Path) -> NodeHost {
    NodeHost::new(config(data)).unwrap()
}

/// Alloc ids unique across concurrent test processes: task cgroups of
/// every test run on the machine share one parent.
fn task(name: &str) -> TaskRef {
    TaskRef {
        alloc_id: format!("{name}-{}", std::process::id()),
        task: "main".to_owned(),
    }
}

fn spec(argv: &[&str]) -> SpawnSpec {
    SpawnSpec {
        argv: argv.iter().map(|s| s.to_string()).collect(),
        env: vec![("PATH".into(), "/usr/bin:/bin".into())],
        cwd: String::new(),
        limits: ProcessLimits::default(),
    }
}

/// Kills the task's process group when the test ends, however it ends.
struct Reap(u32);

impl Drop for Reap {
    fn drop(&mut self) {
        if let Some(pid) = Pid::from_raw(self.0 as i32) {
            let _ = rustix::process::kill_process_group(pid, Signal::KILL);
        }
    }
}

fn spawn(host: &NodeHost, task: &TaskRef, spec: SpawnSpec) -> (Box<dyn ProcessHandle>, Reap) {
    let handle = host.spawn(task, spec).unwrap();
    let pid = handle.pid();
    (handle, Reap(pid))
}

fn wait_exit(handle: &mut Box<dyn ProcessHandle>) -> orch_plugin_runtime::ExitStatus {
    handle
        .wait(PATIENCE)
        .unwrap()
        .expect("the task did not end")
}

fn log_text(data: &Path, task: &TaskRef, stream: LogStream) -> String {
    let chunk = read_log(data, &task.alloc_id, &task.task, stream, None, 1 << 20).unwrap();
    String::from_utf8(chunk.data).unwrap()
}

fn log_files(data: &Path, task: &TaskRef, stream: LogStream) -> Vec<String> {
    let dir = data.join("allocs").join(&task.alloc_id).join("logs");
    let prefix = format!("{}.{}.", task.task, stream.as_str());
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(&prefix))
        .collect();
    names.sort();
    names
}

#[test]
fn spawn_reports_the_exit_code_and_the_output_lands_in_the_logs() {
    let data = tempfile::tempdir().unwrap();
    let host = host(data.path());
    let t = task("exit");
    let mut s = spec(&[
        "sh",
        "-c",
        "echo to-out; echo to-err >&2; echo \"cwd=$(pwd) x=$X\"; exit 7",
    ]);
    s.env.push(("X".into(), "from-env".into()));
    let (mut handle, _reap) = spawn(&host, &t, s);
    assert!(handle.pid() > 0);
    let exit = wait_exit(&mut handle);
    assert_eq!(exit.exit_code, Some(7));
    assert_eq!(exit.signal, None);
    assert!(!exit.oom_killed);
    assert!(exit.finished_at_ms > 0);
    let dir = task_dir(data.path(), &t.alloc_id, &t.task).unwrap();
    assert_eq!(
        log_text(data.path(), &t, LogStream::Stdout),
        format!(
            "to-out\ncwd={} x=from-env\n",
            dir.canonicalize().unwrap().display()
        )
    );
    assert_eq!(log_text(data.path(), &t, LogStream::Stderr), "to-err\n");
    // A later wait answers at once with the same exit.
    assert_eq!(handle.wait(Duration::ZERO).unwrap(), Some(exit));
}

#[test]
fn argv0_is_looked_up_in_the_task_dir_then_path_and_cwd_stays_inside() {
    let data = tempfile::tempdir().unwrap();
    let host = host(data.path());
    let t = task("argv0");
    let dir = orch_agent::create_task_dirs(data.path(), &t.alloc_id, &t.task).unwrap();
    for private in [&dir.secrets, &dir.shim] {
        let mode = fs::metadata(private).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{}", private.display());
    }
    let script = dir.task.join("hello");
    fs::write(
        &script,
        "#!/bin/sh\necho \"hi from $(basename \"$0\") in $(basename \"$(pwd)\")\"\n",
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let mut s = spec(&["hello"]);
    s.cwd = "local".into();
    let (mut handle, _reap) = spawn(&host, &t, s);
    assert_eq!(wait_exit(&mut handle).exit_code, Some(0));
    assert_eq!(
        log_text(data.path(), &t, LogStream::Stdout),
        "hi from hello in local\n"
    );

    for cwd in ["../..", "/tmp"] {
        let mut s = spec(&["true"]);
        s.cwd = cwd.into();
        let err = host.spawn(&task("argv0-cwd"), s).err().unwrap();
        assert!(matches!(err, CapabilityError::Invalid(_)), "{err:?}");
        assert!(
            err.to_string().contains("leaves the task directory"),
            "{err}"
        );
    }
}

#[test]
fn a_missing_binary_is_a_clear_error() {
    let data = tempfile::tempdir().unwrap();
    let host = host(data.path());
    let err = host
        .spawn(&task("missing"), spec(&["/no/such/bin"]))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("\"/no/such/bin\": no such file or directory"),
        "{err}"
    );
    let err = host
        .spawn(&task("missing2"), spec(&["no-such-program-x"]))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("\"no-such-program-x\": no such file or directory"),
        "{err}"
    );
    assert!(err.contains("PATH=/usr/bin:/bin"), "{err}");
    let err = host
        .spawn(&task("missing3"), spec(&[]))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("argv is empty"), "{err}");
}

#[test]
fn rotation_keeps_at_most_the_configured_number_of_files() {
    let data = tempfile::tempdir().unwrap();
    let mut cfg = config(data.path());
    cfg.log_max_bytes = 100;
    cfg.log_max_files = 3;
    let host = NodeHost::new(cfg).unwrap();
    let t = task("rotate");
    // 50 lines of 16 bytes: 800 bytes, eight files' worth.
    let script = "i=10; while [ $i -lt 60 ]; do echo \"line-$i-abcdefg\"; i=$((i+1)); done";
    let (mut handle, _reap) = spawn(&host, &t, spec(&["sh", "-c", script]));
    assert_eq!(wait_exit(&mut handle).exit_code, Some(0));
    let files = log_files(data.path(), &t, LogStream::Stdout);
    assert_eq!(files, ["main.stdout.5", "main.stdout.6", "main.stdout.7"]);
    let expected: String = (10..60).map(|i| format!("line-{i}-abcdefg\n")).collect();
    let kept = log_text(data.path(), &t, LogStream::Stdout);
    assert_eq!(kept.len(), 300);
    assert!(expected.ends_with(&kept), "{kept:?}");
    for file in files {
        let len = fs::metadata(
            data.path()
                .join("allocs")
                .join(&t.alloc_id)
                .join("logs")
                .join(file),
        )
        .unwrap()
        .len();
        assert_eq!(len, 100);
    }
}

#[test]
fn read_log_follows_a_running_task_across_a_rotation() {
    let data = tempfile::tempdir().unwrap();
    let mut cfg = config(data.path());
    cfg.log_max_bytes = 100;
    let host = NodeHost::new(cfg).unwrap();
    let t = task("follow");
    let a = "A".repeat(80);
    let b = "B".repeat(80);
    // Writes 80 bytes, waits for the test to have read them, writes 80 more.
    let script = format!("printf {a}; while [ ! -e go ]; do sleep 0.01; done; printf {b}");
    let (mut handle, _reap) = spawn(&host, &t, spec(&["sh", "-c", &script]));
    let mut cursor: Option<LogCursor> = None;
    let mut seen = Vec::new();
    let started = Instant::now();
    while seen.len() < 80 {
        assert!(started.elapsed() < PATIENCE, "only {seen:?} arrived");
        let chunk = read_log(
            data.path(),
            &t.alloc_id,
            &t.task,
            LogStream::Stdout,
            cursor,
            30,
        )
        .unwrap();
        assert!(chunk.data.len() <= 30);
        seen.extend(chunk.data);
        cursor = Some(chunk.next);
        thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        cursor,
        Some(LogCursor {
            file: 0,
            offset: 80
        })
    );
    fs::write(
        task_dir(data.path(), &t.alloc_id, &t.task)
            .unwrap()
            .join("go"),
        "",
    )
    .unwrap();
    assert_eq!(wait_exit(&mut handle).exit_code, Some(0));
    let rest = read_log(
        data.path(),
        &t.alloc_id,
        &t.task,
        LogStream::Stdout,
        cursor,
        1000,
    )
    .unwrap();
    assert_eq!(String::from_utf8(rest.data).unwrap(), b);
    assert_eq!(
        rest.next,
        LogCursor {
            file: 1,
            offset: 60
        }
    );
    assert_eq!(
        log_files(data.path(), &t, LogStream::Stdout),
        ["main.stdout.0", "main.stdout.1"]
    );
}

#[test]
fn sigterm_ends_a_sleep_and_unknown_signals_are_refused() {
    let data = tempfile::tempdir().unwrap();
    let host = host(data.path());
    let t = task("sigterm");
    let (mut handle, _reap) = spawn(&host, &t, spec(&["sleep", "1000"]));
    assert_eq!(handle.wait(Duration::from_millis(20)).unwrap(), None);
    let err = handle.signal("SIGWINCH").unwrap_err();
    assert!(matches!(err, CapabilityError::Invalid(_)), "{err:?}");
    assert!(err.to_string().contains("unknown signal"), "{err}");
    handle.signal("SIGTERM").unwrap();
    let exit = wait_exit(&mut handle);
    assert_eq!(exit.signal, Some(15));
    assert_eq!(exit.exit_code, None);
    // After the end, a signal is a no-op, not an error.
    handle.signal("KILL").unwrap();
}

#[test]
fn signals_reach_the_tasks_children() {
    let data = tempfile::tempdir().unwrap();
    let host = host(data.path());
    let t = task("group");
    // The shell waits on a child sleep; SIGUSR1 to the group kills both.
    let (mut handle, _reap) = spawn(&host, &t, spec(&["sh", "-c", "sleep 1000 & echo $!; wait"]));
    let started = Instant::now();
    let child_pid = loop {
        let out = log_text(data.path(), &t, LogStream::Stdout);
        if let Some(line) = out.lines().next() {
            break line.trim().parse::<u32>().unwrap();
        }
        assert!(started.elapsed() < PATIENCE);
        thread::sleep(Duration::from_millis(5));
    };
    handle.signal("USR1").unwrap();
    assert_eq!(wait_exit(&mut handle).signal, Some(10));
    // The shim kills what is left of the group; the child is gone or a
    // zombie about to be collected by init.
    let started = Instant::now();
    loop {
        let stat = fs::read_to_string(format!("/proc/{child_pid}/stat")).unwrap_or_default();
        let state = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .next();
        if stat.is_empty() || state == Some("Z") {
            break;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "child {child_pid} still runs: {stat}"
        );
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn attach_after_the_exit_returns_the_recorded_exit_and_checks_the_token() {
    let data = tempfile::tempdir().unwrap();
    let t = task("attach");
    let (pid, token) = {
        let host = host(data.path());
        let (mut handle, _reap) = spawn(&host, &t, spec(&["sh", "-c", "exit 4"]));
        assert_eq!(wait_exit(&mut handle).exit_code, Some(4));
        (handle.pid(), handle.start_token())
    };
    // A new agent on the same data directory.
    let host = host(data.path());
    let mut handle = host.attach(&t, pid, token).unwrap();
    assert_eq!(handle.pid(), pid);
    let exit = handle.wait(Duration::ZERO).unwrap().unwrap();
    assert_eq!(exit.exit_code, Some(4));
    let err = host.attach(&t, pid, token + 1).err().unwrap().to_string();
    assert!(err.contains(&format!("pid {pid}")), "{err}");

    // A running task with the wrong token: the pid is someone else now.
    let t2 = task("attach-running");
    let (handle, _reap) = spawn(&host, &t2, spec(&["sleep", "1000"]));
    let err = host
        .attach(&t2, handle.pid(), handle.start_token() + 1)
        .err()
        .unwrap();
    assert!(matches!(err, CapabilityError::NotFound(_)), "{err:?}");
    assert!(
        err.to_string().contains("now belongs to another process"),
        "{err}"
    );
    let mut again = host
        .attach(&t2, handle.pid(), handle.start_token())
        .unwrap();
    assert_eq!(again.wait(Duration::ZERO).unwrap(), None);
    // And a second spawn of a task that runs is refused.
    let err = host.spawn(&t2, spec(&["true"])).err().unwrap().to_string();
    assert!(err.contains("already running"), "{err}");
    again.signal("SIGKILL").unwrap();
    assert_eq!(wait_exit(&mut again).signal, Some(9));
}

/// A task that ended a moment ago is gone from /proc before its supervisor
/// has written `exit.json`: attaching then must find it through the state
/// file, and `wait` must read the exit once written (here: report that the
/// supervisor is gone, since this test removed the record it wrote).
#[test]
fn attach_in_the_gap_between_the_tasks_end_and_its_exit_record() {
    let data = tempfile::tempdir().unwrap();
    let host = host(data.path());
    let t = task("gap");
    let (mut handle, reap) = spawn(&host, &t, spec(&["true"]));
    wait_exit(&mut handle);
    drop(reap);
    let (pid, token) = (handle.pid(), handle.start_token());
    let exit_file = shim_dir(data.path(), &t.alloc_id, &t.task)
        .unwrap()
        .join("exit.json");
    let record = fs::read(&exit_file).unwrap();
    fs::remove_file(&exit_file).unwrap();
    let mut attached = host.attach(&t, pid, token).unwrap();
    assert_eq!(attached.pid(), pid);
    // The supervisor ended too: without the record, wait says so…
    let err = attached.wait(PATIENCE).unwrap_err();
    assert!(matches!(err, CapabilityError::NotFound(_)), "{err:?}");
    assert!(err.to_string().contains("supervisor"), "{err}");
    // …and with it back, the exit is read.
    fs::write(&exit_file, record).unwrap();
    let mut attached = host.attach(&t, pid, token).unwrap();
    assert_eq!(
        attached.wait(Duration::ZERO).unwrap().unwrap().exit_code,
        Some(0)
    );
}

/// Run by `the_task_survives_the_death_of_its_spawner` in a child process:
/// spawns a task, prints its pid and token, and waits to be killed.
#[test]
#[ignore = "a helper the spawner test runs in a child process"]
fn spawner_helper() {
    let data = PathBuf::from(std::env::var("ORCH_TEST_SPAWNER_DATA").unwrap());
    let host = host(&data);
    let handle = host
        .spawn(&task("survive"), spec(&["sleep", "1000"]))
        .unwrap();
    println!("SPAWNED {} {}", handle.pid(), handle.start_token());
    std::io::stdout().flush().unwrap();
    loop {
        thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn the_task_survives_the_death_of_its_spawner() {
    let data = tempfile::tempdir().unwrap();
    let mut spawner = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "host::spawner_helper",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("ORCH_TEST_SPAWNER_DATA", data.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(spawner.stdout.take().unwrap()).lines();
    // libtest prints the test's name on the same line first.
    let line = lines
        .find_map(|l| {
            l.ok()?
                .split_once("SPAWNED ")
                .map(|(_, rest)| rest.to_owned())
        })
        .expect("the spawner did not report");
    let mut parts = line.split_whitespace();
    let pid: u32 = parts.next().unwrap().parse().unwrap();
    let token: u64 = parts.next().unwrap().parse().unwrap();
    let _reap = Reap(pid);
    // kill -9 the agent that spawned it.
    spawner.kill().unwrap();
    spawner.wait().unwrap();

    let host = host(data.path());
    let t = TaskRef {
        alloc_id: format!("survive-{}", spawner.id()),
        task: "main".into(),
    };
    let mut handle = host.attach(&t, pid, token).unwrap();
    assert_eq!(handle.pid(), pid);
    assert_eq!(handle.wait(Duration::from_millis(20)).unwrap(), None);
    handle.signal("TERM").unwrap();
    let exit = wait_exit(&mut handle);
    assert_eq!(exit.signal, Some(15));
    // The orphaned shim recorded it: a fresh attach sees the same.
    let mut again = host.attach(&t, pid, token).unwrap();
    assert_eq!(again.wait(Duration::ZERO).unwrap(), Some(exit));
}

#[test]
fn a_supervisor_that_dies_is_reported_by_wait() {
    let data = tempfile::tempdir().unwrap();
    let host = host(data.path());
    let t = task("shimdies");
    let (mut handle, _reap) = spawn(&host, &t, spec(&["sleep", "1000"]));
    let state = fs::read_to_string(
        shim_dir(data.path(), &t.alloc_id, &t.task)
            .unwrap()
            .join("state.json"),
    )
    .unwrap();
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    let shim_pid = state["shim_pid"].as_u64().unwrap() as i32;
    rustix::process::kill_process(Pid::from_raw(shim_pid).unwrap(), Signal::KILL).unwrap();
    let err = handle.wait(PATIENCE).unwrap_err().to_string();
    assert!(err.contains("supervisor") && err.contains("died"), "{err}");
    // Nobody is left to remove the task's cgroups: this test does.
    drop(_reap);
    for dir in host.cgroups().task_cgroup_dirs(&t) {
        let started = Instant::now();
        while dir.exists() && fs::remove_dir(&dir).is_err() {
            assert!(
                started.elapsed() < PATIENCE,
                "cannot remove {}",
                dir.display()
            );
            thread::sleep(Duration::from_millis(5));
        }
    }
}

#[test]
fn limits_are_written_to_the_tasks_cgroup_when_the_node_has_cgroups() {
    let data = tempfile::tempdir().unwrap();
    let host = host(data.path());
    let support = host.cgroups().clone();
    let t = task("cgroup");
    let Some(limit_file) = support.memory_limit_file(&t) else {
        eprintln!("skipped: no memory cgroup here: {support}");
        return;
    };
    let mut s = spec(&["sleep", "1000"]);
    s.limits = ProcessLimits {
        cpu_mhz: 300,
        memory_mib: 64,
    };
    let (mut handle, _reap) = spawn(&host, &t, s);
    let limit: u64 = fs::read_to_string(&limit_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(limit, 64 * 1024 * 1024);
    let dirs = support.task_cgroup_dirs(&t);
    for dir in &dirs {
        let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap();
        // Only the task, not its shim.
        assert_eq!(
            procs.split_whitespace().collect::<Vec<_>>(),
            [handle.pid().to_string()],
            "{}",
            dir.display()
        );
        if let Ok(shares) = fs::read_to_string(dir.join("cpu.shares")) {
            assert_eq!(shares.trim(), "300");
        }
    }
    handle.signal("SIGKILL").unwrap();
    assert_eq!(wait_exit(&mut handle).signal, Some(9));
    for dir in &dirs {
        assert!(!dir.exists(), "{} was not removed", dir.display());
    }
}

#[test]
fn a_task_over_its_memory_limit_is_reported_oom_killed() {
    let data = tempfile::tempdir().unwrap();
    let host = host(data.path());
    let t = task("oom");
    if host.cgroups().memory_limit_file(&t).is_none() {
        eprintln!("skipped: no memory cgroup here: {}", host.cgroups());
        return;
    }
    // The shell keeps the whole substitution in memory: 200 MB > 16 MiB.
    let mut s = spec(&[
        "sh",
        "-c",
        "a=$(head -c 200000000 /dev/zero | tr '\\0' x); echo ${#a}",
    ]);
    s.limits.memory_mib = 16;
    let (mut handle, _reap) = spawn(&host, &t, s);
    let exit = wait_exit(&mut handle);
    assert!(exit.oom_killed, "{exit:?}");
    assert_eq!(exit.signal, Some(9));
}

#[test]
fn driver_log_lines_carry_the_drivers_name() {
    use std::sync::Mutex;
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let data = tempfile::tempdir().unwrap();
    let host = host(data.path());
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        host.log("exec", LogLevel::Warn, "task web restarted");
        host.log("exec", LogLevel::Trace, "too detailed");
    });
    let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(
        out.contains("WARN")
            && out.contains("task web restarted")
            && out.contains("driver=\"exec\""),
        "{out}"
    );
    assert!(!out.contains("too detailed"), "{out}");
}

/// A tiny HTTP/1.1 server: `GET /app.bin` gets `body`, anything else 404.
struct Server {
    port: u16,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Server {
    fn start(body: Vec<u8>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (requests.clone(), stop.clone());
        let thread = thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(mut conn) = conn else { continue };
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                let mut header = String::new();
                while reader.read_line(&mut header).is_ok() && header.trim() != "" {
                    header.clear();
                }
                r.fetch_add(1, Ordering::SeqCst);
                let (status, content): (&str, &[u8]) = if request_line.starts_with("GET /app.bin ")
                {
                    ("200 OK", &body)
                } else {
                    ("404 Not Found", b"not here")
                };
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    content.len()
                );
                let _ = conn.write_all(content);
            }
        });
        Server {
            port,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn sha256(data: &[u8]) -> String {
    orch_model::Digest::of(data).hex()
}

fn fetch(source: &str, sha: Option<&str>, destination: &str) -> FetchSpec {
    FetchSpec {
        source: source.to_owned(),
        sha256: sha.map(str::to_owned),
        destination: destination.to_owned(),
        mode: None,
    }
}

/// Every file under `dir`, recursively, for "nothing left behind".
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries {
            let path = e.unwrap().path();
            if path.is_dir() {
                out.extend(files_under(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

#[test]
fn artifacts_are_verified_cached_and_kept_inside_the_task_dir() {
    let data = tempfile::tempdir().unwrap();
    let host = host(data.path());
    let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let digest = sha256(&body);
    let server = Server::start(body.clone());
    let url = server.url("/app.bin");
    let t = task("artifact");
    let tdir = task_dir(data.path(), &t.alloc_id, &t.task).unwrap();

    // Good digest, into a directory, with a mode.
    let mut spec = fetch(&url, Some(&digest.to_uppercase()), "local/");
    spec.mode = Some(0o755);
    let path = host.fetch(&t, spec).unwrap();
    assert_eq!(PathBuf::from(&path), tdir.join("local/app.bin"));
    assert_eq!(fs::read(&path).unwrap(), body);
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o755
    );
    assert!(data.path().join("cache/artifacts").join(&digest).is_file());
    assert_eq!(server.requests.load(Ordering::SeqCst), 1);

    // Wrong digest: named in the error, nothing kept anywhere.
    let wrong = sha256(b"something else");
    let t2 = task("artifact-wrong");
    let err = host
        .fetch(&t2, fetch(&url, Some(&wrong), "local/bad.bin"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("expected {wrong}")) && err.contains(&format!("got {digest}")),
        "{err}"
    );
    assert!(err.contains(&url), "{err}");
    assert_eq!(
        files_under(&task_dir(data.path(), &t2.alloc_id, &t2.task).unwrap()),
        Vec::<PathBuf>::new()
    );
    assert_eq!(
        files_under(&data.path().join("cache/artifacts")),
        [data.path().join("cache/artifacts").join(&digest)]
    );

    // No digest for http.
    let err = host
        .fetch(&t, fetch(&url, None, "local/x"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("sha256 is required"), "{err}");

    // An HTTP error names the URL and the status.
    let missing = server.url("/nope.bin");
    let err = host
        .fetch(&t, fetch(&missing, Some(&wrong), "local/"))
        .unwrap_err()
        .to_string();
    assert!(err.contains(&missing) && err.contains("HTTP 404"), "{err}");

    // Escapes are refused before anything is fetched.
    for dest in ["../../elsewhere", "/tmp/x", "local/../../x"] {
        let err = host
            .fetch(&t, fetch(&url, Some(&digest), dest))
            .unwrap_err()
            .to_string();
        assert!(err.contains("leaves the task directory"), "{dest}: {err}");
    }
    // A second fetch of the same digest does not download again...
    let requests = server.requests.load(Ordering::SeqCst);
    let t3 = task("artifact-cached");
    let path = host.fetch(&t3, fetch(&url, Some(&digest), "app")).unwrap();
    assert_eq!(fs::read(&path).unwrap(), body);
    assert_eq!(server.requests.load(Ordering::SeqCst), requests);
    drop(server);

    // ...and needs no server at all.
    let t4 = task("artifact-offline");
    let path = host
        .fetch(&t4, fetch(&url, Some(&digest), "local/"))
        .unwrap();
    assert_eq!(fs::read(&path).unwrap(), body);
}

#[test]
fn an_unreachable_artifact_server_is_a_clear_error() {
    let data = tempfile::tempdir().unwrap();
    let host = host(data.path());
    // A port that was free a moment ago and has nobody listening.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/app.bin");
    let err = host
        .fetch(
            &task("unreachable"),
            fetch(&url, Some(&sha256(b"x")), "local/"),
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&url) && err.contains("connection refused"),
        "{err}"
    );
}

#[test]
fn local_artifacts_and_the_size_cap() {
    let data = tempfile::tempdir().unwrap();
    let mut cfg = config(data.path());
    cfg.artifact_max_bytes = 1000;
    let host = NodeHost::new(cfg).unwrap();
    let t = task("local");
    let tdir = orch_agent::create_task_dirs(data.path(), &t.alloc_id, &t.task)
        .unwrap()
        .task;
    fs::write(tdir.join("conf.toml"), b"a = 1\n").unwrap();
    let path = host
        .fetch(&t, fetch("conf.toml", Some(&sha256(b"a = 1\n")), "local/"))
        .unwrap();
    assert_eq!(fs::read(path).unwrap(), b"a = 1\n");
    let outside = data.path().join("outside.bin");
    fs::write(&outside, vec![7u8; 500]).unwrap();
    let path = host
        .fetch(
            &t,
            fetch(
                &format!("file://{}", outside.display()),
                None,
                "local/copied.bin",
            ),
        )
        .unwrap();
    assert_eq!(PathBuf::from(path), tdir.join("local/copied.bin"));
    let err = host
        .fetch(&t, fetch("../../../outside.bin", None, "local/"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("leaves the task directory"), "{err}");
    fs::write(&outside, vec![7u8; 1001]).unwrap();
    let err = host
        .fetch(
            &t,
            fetch(
                &format!("file://{}", outside.display()),
                None,
                "local/big.bin",
            ),
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("larger than the agent's artifact limit of 1000 bytes"),
        "{err}"
    );
    assert!(!tdir.join("local/big.bin").exists());
    let err = host
        .fetch(&t, fetch("ftp://h/x", None, "local/"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("unsupported scheme"), "{err}");
}

#[cfg(feature = "https")]
#[test]
fn https_artifacts_go_through_tls() {
    let data = tempfile::tempdir().unwrap();
    let host = host(data.path());
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("https://127.0.0.1:{port}/app.bin");
    let err = host
        .fetch(&task("https"), fetch(&url, Some(&sha256(b"x")), "local/"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&url) && err.contains("connection refused"),
        "{err}"
    );
}

#[cfg(not(feature = "https"))]
#[test]
fn https_artifacts_are_refused_without_tls() {
    let data = tempfile::tempdir().unwrap();
    let host = host(data.path());
    let url = "https://127.0.0.1:1/app.bin";
    let err = host
        .fetch(&task("https"), fetch(url, Some(&sha256(b"x")), "local/"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("built without TLS"), "{err}");
}
