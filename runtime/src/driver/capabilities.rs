//! The host capabilities a driver imports (`process`, `artifacts`,
//! `containers`, `log`), passed on to the agent's [`DriverHost`].
//!
//! The load check already refused any driver importing a capability it was
//! not granted; every call checks again, so a gap in that check cannot hand
//! out a capability.
//!
//! A timeout the driver chooses (`child.wait`, `containers.wait` and
//! `containers.stop`) is cut to the time left in the call (see
//! `crate::deadline`).

use super::bindings::orch::driver::{artifacts, containers, process, types};
use super::bindings::orch::types::{log, types as shared};
use super::granted;
use crate::deadline::{DeadlinePassed, clamp};
use crate::error::printable;
use crate::sandbox::Sandbox;
use crate::{
    DriverHost, FetchSpec, Grants, LogLevel, ProcessHandle, ProcessLimits, SpawnSpec, TaskRef,
};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

/// Live `child` resources one instance may hold; a driver that never drops
/// its children cannot grow the host's table without bound.
const MAX_CHILDREN: usize = 256;
/// Longest log line passed on, in characters.
const MAX_LOG_LINE: usize = 2000;
/// Log lines passed on per call; the rest are dropped, with one line
/// saying so.
const MAX_LOG_LINES: u32 = 200;
/// Longest signal name accepted.
const MAX_SIGNAL_NAME: usize = 16;

/// What a driver's capabilities act on, kept in its store.
pub(crate) struct DriverCtx {
    name: String,
    grants: Grants,
    host: Arc<dyn DriverHost>,
    children: usize,
    log_lines: u32,
}

impl DriverCtx {
    pub(crate) fn new(name: String, grants: Grants, host: Arc<dyn DriverHost>) -> Self {
        Self {
            name,
            grants,
            host,
            children: 0,
            log_lines: 0,
        }
    }

    /// Per-call budgets start again.
    pub(crate) fn start_call(&mut self) {
        self.log_lines = 0;
    }
}

/// A process the host spawned or re-attached, as the `child` resource.
/// (`pub` because the bindings re-export it; the module is private.)
pub struct Child(Box<dyn ProcessHandle>);

/// Projects a [`Sandbox`] onto what the capabilities need.
struct Caps;

impl HasData for Caps {
    type Data<'a> = View<'a>;
}

struct View<'a> {
    ctx: Option<&'a mut DriverCtx>,
    table: &'a mut ResourceTable,
    /// When the call must end.
    deadline: Instant,
}

fn view(sandbox: &mut Sandbox) -> View<'_> {
    let (ctx, table, deadline) = sandbox.driver_parts();
    View {
        ctx,
        table,
        deadline,
    }
}

/// Adds every driver capability to `linker`.
pub(crate) fn link_capabilities(linker: &mut Linker<Sandbox>) -> wasmtime::Result<()> {
    process::add_to_linker::<Sandbox, Caps>(linker, view)?;
    artifacts::add_to_linker::<Sandbox, Caps>(linker, view)?;
    containers::add_to_linker::<Sandbox, Caps>(linker, view)?;
    log::add_to_linker::<Sandbox, Caps>(linker, view)?;
    types::add_to_linker::<Sandbox, Caps>(linker, view)?;
    shared::add_to_linker::<Sandbox, Caps>(linker, view)?;
    Ok(())
}

impl View<'_> {
    /// The agent's host, if `capability` is granted; otherwise the message
    /// the driver gets instead.
    fn host(&self, capability: &str) -> Result<Arc<dyn DriverHost>, String> {
        match self.ctx.as_deref() {
            None => Err(format!(
                "the `{capability}` capability is only for task drivers"
            )),
            Some(ctx) if !granted(ctx.grants, capability) => Err(format!(
                "driver {}: the `{capability}` capability is not granted; grant it in the agent config, e.g. `[driver.exec] grants = [\"process\", \"log\"]`",
                ctx.name
            )),
            Some(ctx) => Ok(Arc::clone(&ctx.host)),
        }
    }

    /// Keeps `handle` as a `child` resource, within [`MAX_CHILDREN`].
    fn adopt(
        &mut self,
        handle: Box<dyn ProcessHandle>,
    ) -> wasmtime::Result<Result<Resource<Child>, String>> {
        let Some(ctx) = self.ctx.as_deref_mut() else {
            return Ok(Err("no driver context".to_owned()));
        };
        if ctx.children >= MAX_CHILDREN {
            // The process runs on; only this driver's view of it is refused.
            return Ok(Err(format!(
                "driver {} holds {MAX_CHILDREN} process handles already; drop some before attaching more",
                ctx.name
            )));
        }
        let child = self.table.push(Child(handle))?;
        ctx.children += 1;
        Ok(Ok(child))
    }

    /// The part of `timeout_ms`, a wait the driver asked for, that fits
    /// before the call's deadline, and whether it was cut.
    fn bounded(&self, timeout_ms: u32) -> (Duration, bool) {
        clamp(
            Duration::from_millis(u64::from(timeout_ms)),
            self.deadline,
            Instant::now(),
        )
    }

    fn has_room(&self) -> Result<(), String> {
        match self.ctx.as_deref() {
            Some(ctx) if ctx.children >= MAX_CHILDREN => Err(format!(
                "driver {} holds {MAX_CHILDREN} process handles already; drop some first",
                ctx.name
            )),
            _ => Ok(()),
        }
    }
}

fn task_ref(task: types::TaskId) -> TaskRef {
    TaskRef {
        alloc_id: task.alloc_id,
        task: task.task,
    }
}

fn exit_result(exit: crate::ExitStatus) -> types::ExitResult {
    types::ExitResult {
        exit_code: exit.exit_code,
        signal: exit.signal,
        oom_killed: exit.oom_killed,
        finished_at_ms: exit.finished_at_ms,
    }
}

impl process::Host for View<'_> {
    fn spawn(
        &mut self,
        task: types::TaskId,
        request: process::SpawnRequest,
    ) -> wasmtime::Result<Result<Resource<Child>, String>> {
        let host = match self
            .host("process")
            .and_then(|h| self.has_room().map(|()| h))
        {
            Ok(host) => host,
            Err(e) => return Ok(Err(e)),
        };
        if request.argv.first().is_none_or(String::is_empty) {
            return Ok(Err(
                "spawn: argv is empty; argv[0] must name the program to run".to_owned(),
            ));
        }
        let spec = SpawnSpec {
            argv: request.argv,
            env: request
                .env
                .into_iter()
                .map(|kv| (kv.key, kv.value))
                .collect(),
            cwd: request.cwd,
            limits: ProcessLimits {
                cpu_mhz: request.limits.cpu_mhz,
                memory_mib: request.limits.memory_mib,
            },
        };
        match host.spawn(&task_ref(task), spec) {
            Ok(handle) => self.adopt(handle),
            Err(e) => Ok(Err(e.to_string())),
        }
    }

    fn attach(
        &mut self,
        task: types::TaskId,
        pid: u32,
        start_token: u64,
    ) -> wasmtime::Result<Result<Resource<Child>, String>> {
        let host = match self
            .host("process")
            .and_then(|h| self.has_room().map(|()| h))
        {
            Ok(host) => host,
            Err(e) => return Ok(Err(e)),
        };
        match host.attach(&task_ref(task), pid, start_token) {
            Ok(handle) => self.adopt(handle),
            Err(e) => Ok(Err(e.to_string())),
        }
    }
}

impl process::HostChild for View<'_> {
    fn pid(&mut self, child: Resource<Child>) -> wasmtime::Result<u32> {
        Ok(self.table.get(&child)?.0.pid())
    }

    fn start_token(&mut self, child: Resource<Child>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&child)?.0.start_token())
    }

    fn signal(
        &mut self,
        child: Resource<Child>,
        signal: String,
    ) -> wasmtime::Result<Result<(), String>> {
        if let Err(e) = self.host("process") {
            return Ok(Err(e));
        }
        if signal.len() > MAX_SIGNAL_NAME {
            return Ok(Err(format!(
                "unknown signal {:?}; use a name such as SIGTERM",
                printable(&signal, MAX_SIGNAL_NAME)
            )));
        }
        Ok(self
            .table
            .get_mut(&child)?
            .0
            .signal(&signal)
            .map_err(|e| e.to_string()))
    }

    fn wait(
        &mut self,
        child: Resource<Child>,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<Option<types::ExitResult>, String>> {
        if let Err(e) = self.host("process") {
            return Ok(Err(e));
        }
        let (timeout, cut) = self.bounded(timeout_ms);
        let handle = &mut self.table.get_mut(&child)?.0;
        match handle.wait(timeout) {
            // Still running at the deadline, though asked to wait longer.
            Ok(None) if cut => Err(DeadlinePassed.into()),
            outcome => Ok(outcome
                .map(|exit| exit.map(exit_result))
                .map_err(|e| e.to_string())),
        }
    }

    fn drop(&mut self, child: Resource<Child>) -> wasmtime::Result<()> {
        self.table.delete(child)?;
        if let Some(ctx) = self.ctx.as_deref_mut() {
            ctx.children = ctx.children.saturating_sub(1);
        }
        Ok(())
    }
}

impl artifacts::Host for View<'_> {
    fn fetch(
        &mut self,
        task: types::TaskId,
        artifact: artifacts::Artifact,
    ) -> wasmtime::Result<Result<String, String>> {
        let host = match self.host("artifacts") {
            Ok(host) => host,
            Err(e) => return Ok(Err(e)),
        };
        let spec = FetchSpec {
            source: artifact.source,
            sha256: artifact.sha256,
            destination: artifact.destination,
            mode: artifact.mode,
        };
        Ok(host.fetch(&task_ref(task), spec).map_err(|e| e.to_string()))
    }
}

/// Longest container id or image reference accepted from a driver.
const MAX_CONTAINER_REF: usize = 512;

fn container_error(e: crate::CapabilityError) -> containers::ContainerError {
    match e {
        crate::CapabilityError::Denied(m) => containers::ContainerError::Denied(m),
        crate::CapabilityError::NotFound(m) => containers::ContainerError::NotFound(m),
        // The interface has no kind of its own for a request that cannot be
        // carried out as written; the message says what is wrong with it.
        crate::CapabilityError::Invalid(m) | crate::CapabilityError::Failed(m) => {
            containers::ContainerError::Failed(m)
        }
    }
}

fn port_mapping(p: containers::PortMapping) -> crate::PortMapping {
    crate::PortMapping {
        label: p.label,
        container_port: p.container_port,
        host_port: p.host_port,
        protocol: p.protocol,
    }
}

impl View<'_> {
    /// The host for a `containers` call about `what` (an id or image the
    /// driver passed), or the error the driver gets instead.
    fn containers(&self, what: &str) -> Result<Arc<dyn DriverHost>, containers::ContainerError> {
        let host = self
            .host("containers")
            .map_err(containers::ContainerError::Denied)?;
        if what.len() > MAX_CONTAINER_REF {
            return Err(containers::ContainerError::Failed(format!(
                "{:?}… is longer than {MAX_CONTAINER_REF} bytes; no engine names a container or image that long",
                printable(what, 40)
            )));
        }
        Ok(host)
    }
}

type ContainerResult<T> = wasmtime::Result<Result<T, containers::ContainerError>>;

impl containers::Host for View<'_> {
    fn engine_info(&mut self) -> ContainerResult<containers::Engine> {
        let host = match self.containers("") {
            Ok(host) => host,
            Err(e) => return Ok(Err(e)),
        };
        Ok(host
            .engine_info()
            .map(|i| containers::Engine {
                name: i.name,
                version: i.version,
                api_version: i.api_version,
                os: i.os,
                arch: i.arch,
            })
            .map_err(container_error))
    }

    fn pull(&mut self, task: types::TaskId, image: String) -> ContainerResult<String> {
        let host = match self.containers(&image) {
            Ok(host) => host,
            Err(e) => return Ok(Err(e)),
        };
        Ok(host
            .pull_image(&task_ref(task), &image)
            .map_err(container_error))
    }

    fn create(
        &mut self,
        task: types::TaskId,
        spec: containers::ContainerSpec,
    ) -> ContainerResult<String> {
        let host = match self.containers(&spec.image) {
            Ok(host) => host,
            Err(e) => return Ok(Err(e)),
        };
        let spec = crate::ContainerSpec {
            image: spec.image,
            command: spec.command,
            args: spec.args,
            env: spec.env.into_iter().map(|kv| (kv.key, kv.value)).collect(),
            ports: spec.ports.into_iter().map(port_mapping).collect(),
            mounts: spec
                .mounts
                .into_iter()
                .map(|m| crate::Mount {
                    source: m.source,
                    target: m.target,
                    read_only: m.read_only,
                })
                .collect(),
            limits: ProcessLimits {
                cpu_mhz: spec.limits.cpu_mhz,
                memory_mib: spec.limits.memory_mib,
            },
            privileged: spec.privileged,
            network_mode: spec.network_mode,
            host_pid: spec.host_pid,
            host_ipc: spec.host_ipc,
            user: spec.user,
            working_dir: spec.working_dir,
        };
        Ok(host
            .create_container(&task_ref(task), spec)
            .map_err(container_error))
    }

    fn start(&mut self, id: String) -> ContainerResult<()> {
        let host = match self.containers(&id) {
            Ok(host) => host,
            Err(e) => return Ok(Err(e)),
        };
        Ok(host.start_container(&id).map_err(container_error))
    }

    fn wait(&mut self, id: String, timeout_ms: u32) -> ContainerResult<Option<types::ExitResult>> {
        let host = match self.containers(&id) {
            Ok(host) => host,
            Err(e) => return Ok(Err(e)),
        };
        let (timeout, cut) = self.bounded(timeout_ms);
        match host.wait_container(&id, timeout) {
            // Still running at the deadline, though asked to wait longer.
            Ok(None) if cut => Err(DeadlinePassed.into()),
            outcome => Ok(outcome
                .map(|exit| exit.map(exit_result))
                .map_err(container_error)),
        }
    }

    fn kill(&mut self, id: String, signal: String) -> ContainerResult<()> {
        let host = match self.containers(&id) {
            Ok(host) => host,
            Err(e) => return Ok(Err(e)),
        };
        if signal.len() > MAX_SIGNAL_NAME {
            return Ok(Err(containers::ContainerError::Failed(format!(
                "unknown signal {:?}; use a name such as SIGHUP",
                printable(&signal, MAX_SIGNAL_NAME)
            ))));
        }
        Ok(host.kill_container(&id, &signal).map_err(container_error))
    }

    fn stop(&mut self, id: String, signal: String, timeout_ms: u32) -> ContainerResult<()> {
        let host = match self.containers(&id) {
            Ok(host) => host,
            Err(e) => return Ok(Err(e)),
        };
        if signal.len() > MAX_SIGNAL_NAME {
            return Ok(Err(containers::ContainerError::Failed(format!(
                "unknown signal {:?}; use a name such as SIGTERM",
                printable(&signal, MAX_SIGNAL_NAME)
            ))));
        }
        // Cut or not, "stopped" is true; a stop cut short returns after the
        // deadline (the kill came then), and the epoch ends the call at the
        // driver's next instruction.
        let (timeout, _cut) = self.bounded(timeout_ms);
        Ok(host
            .stop_container(&id, &signal, timeout)
            .map_err(container_error))
    }

    fn remove(&mut self, id: String, force: bool) -> ContainerResult<()> {
        let host = match self.containers(&id) {
            Ok(host) => host,
            Err(e) => return Ok(Err(e)),
        };
        Ok(host.remove_container(&id, force).map_err(container_error))
    }

    fn inspect(&mut self, id: String) -> ContainerResult<Option<bool>> {
        let host = match self.containers(&id) {
            Ok(host) => host,
            Err(e) => return Ok(Err(e)),
        };
        Ok(host.inspect_container(&id).map_err(container_error))
    }

    fn stats(&mut self, id: String) -> ContainerResult<types::TaskStats> {
        let host = match self.containers(&id) {
            Ok(host) => host,
            Err(e) => return Ok(Err(e)),
        };
        Ok(host
            .container_stats(&id)
            .map(|s| types::TaskStats {
                cpu_time_ns: s.cpu_time_ns,
                memory_bytes: s.memory_bytes,
                taken_at_ms: s.taken_at_ms,
            })
            .map_err(container_error))
    }

    fn ports(&mut self, id: String) -> ContainerResult<Vec<containers::PortMapping>> {
        let host = match self.containers(&id) {
            Ok(host) => host,
            Err(e) => return Ok(Err(e)),
        };
        Ok(host
            .container_ports(&id)
            .map(|ports| {
                ports
                    .into_iter()
                    .map(|p| containers::PortMapping {
                        label: p.label,
                        container_port: p.container_port,
                        host_port: p.host_port,
                        protocol: p.protocol,
                    })
                    .collect()
            })
            .map_err(container_error))
    }
}

impl log::Host for View<'_> {
    fn log(&mut self, level: shared::Level, message: String) -> wasmtime::Result<()> {
        let Ok(host) = self.host("log") else {
            // Nowhere to answer a log call; not granted means not heard.
            return Ok(());
        };
        let Some(ctx) = self.ctx.as_deref_mut() else {
            return Ok(());
        };
        ctx.log_lines = ctx.log_lines.saturating_add(1);
        let level = match level {
            shared::Level::Trace => LogLevel::Trace,
            shared::Level::Debug => LogLevel::Debug,
            shared::Level::Info => LogLevel::Info,
            shared::Level::Warn => LogLevel::Warn,
            shared::Level::Error => LogLevel::Error,
        };
        if ctx.log_lines <= MAX_LOG_LINES {
            host.log(&ctx.name, level, &printable(&message, MAX_LOG_LINE));
        } else if ctx.log_lines == MAX_LOG_LINES + 1 {
            host.log(
                &ctx.name,
                LogLevel::Warn,
                &format!("more than {MAX_LOG_LINES} log lines in one call; the rest of this call's lines are dropped"),
            );
        }
        Ok(())
    }
}

impl types::Host for View<'_> {}
impl shared::Host for View<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CapabilityError;
    use std::sync::Mutex;

    /// Records what reached the host; the grant check in front of it is
    /// what is tested.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    impl DriverHost for Recorder {
        fn spawn(
            &self,
            _: &TaskRef,
            spec: SpawnSpec,
        ) -> Result<Box<dyn ProcessHandle>, CapabilityError> {
            self.0
                .lock()
                .unwrap()
                .push(format!("spawn {:?}", spec.argv));
            Err(CapabilityError::Failed("recorded".into()))
        }
        fn attach(
            &self,
            _: &TaskRef,
            pid: u32,
            _: u64,
        ) -> Result<Box<dyn ProcessHandle>, CapabilityError> {
            self.0.lock().unwrap().push(format!("attach {pid}"));
            Err(CapabilityError::Failed("recorded".into()))
        }
        fn fetch(&self, _: &TaskRef, a: FetchSpec) -> Result<String, CapabilityError> {
            self.0.lock().unwrap().push(format!("fetch {}", a.source));
            Err(CapabilityError::Failed("recorded".into()))
        }
        fn log(&self, driver: &str, _: LogLevel, message: &str) {
            self.0
                .lock()
                .unwrap()
                .push(format!("log {driver}: {message}"));
        }
        fn start_container(&self, id: &str) -> Result<(), crate::CapabilityError> {
            self.0.lock().unwrap().push(format!("start {id}"));
            Err(crate::CapabilityError::Failed(format!(
                "recorded start {id}"
            )))
        }
    }

    fn task() -> types::TaskId {
        types::TaskId {
            alloc_id: "a".into(),
            task: "t".into(),
        }
    }

    #[test]
    fn every_call_checks_the_grant_again() {
        let host = Arc::new(Recorder::default());
        let mut ctx = DriverCtx::new("probe".into(), Grants::default(), host.clone());
        let mut table = ResourceTable::new();
        let mut view = View {
            ctx: Some(&mut ctx),
            table: &mut table,
            deadline: Instant::now() + Duration::from_secs(60),
        };
        let request = process::SpawnRequest {
            argv: vec!["/bin/true".into()],
            env: Vec::new(),
            cwd: ".".into(),
            limits: shared::Resources {
                cpu_mhz: 0,
                memory_mib: 0,
                disk_mib: 0,
            },
        };
        let err = process::Host::spawn(&mut view, task(), request)
            .unwrap()
            .unwrap_err();
        assert!(
            err.contains("the `process` capability is not granted"),
            "{err}"
        );
        assert!(
            process::Host::attach(&mut view, task(), 1, 1)
                .unwrap()
                .is_err()
        );
        let artifact = artifacts::Artifact {
            source: "http://127.0.0.1/x".into(),
            sha256: None,
            destination: "x".into(),
            mode: None,
        };
        let err = artifacts::Host::fetch(&mut view, task(), artifact)
            .unwrap()
            .unwrap_err();
        assert!(
            err.contains("`artifacts` capability is not granted"),
            "{err}"
        );
        log::Host::log(&mut view, shared::Level::Info, "unheard".into()).unwrap();
        let err = containers::Host::start(&mut view, "c".into())
            .unwrap()
            .unwrap_err();
        assert!(
            matches!(&err, containers::ContainerError::Denied(m) if m.contains("`containers` capability is not granted")),
            "{err:?}"
        );
        assert!(
            host.0.lock().unwrap().is_empty(),
            "nothing reached the host"
        );
    }

    #[test]
    fn granted_calls_reach_the_host_and_logs_are_capped() {
        let host = Arc::new(Recorder::default());
        let grants = Grants {
            process: true,
            log: true,
            containers: true,
            artifacts: false,
        };
        let mut ctx = DriverCtx::new("probe".into(), grants, host.clone());
        let mut table = ResourceTable::new();
        let mut view = View {
            ctx: Some(&mut ctx),
            table: &mut table,
            deadline: Instant::now() + Duration::from_secs(60),
        };
        let err = process::Host::attach(&mut view, task(), 7, 1)
            .unwrap()
            .unwrap_err();
        assert_eq!(err, "recorded");
        let err = containers::Host::start(&mut view, "c".into())
            .unwrap()
            .unwrap_err();
        assert!(
            matches!(&err, containers::ContainerError::Failed(m) if m == "recorded start c"),
            "{err:?}"
        );
        for i in 0..MAX_LOG_LINES + 10 {
            let line = if i == 0 {
                "a\x1b[2Jb".to_owned()
            } else {
                "x".repeat(5000)
            };
            log::Host::log(&mut view, shared::Level::Info, line).unwrap();
        }
        let seen = host.0.lock().unwrap();
        assert_eq!(seen[0], "attach 7");
        assert_eq!(seen[1], "start c");
        let seen = &seen[1..];
        assert_eq!(
            seen[1], "log probe: a [2Jb",
            "control characters are neutralised"
        );
        assert_eq!(
            seen[2].chars().count(),
            "log probe: ".len() + MAX_LOG_LINE + 1
        );
        assert_eq!(
            seen.len(),
            1 + MAX_LOG_LINES as usize + 1,
            "capped, with one line saying so"
        );
        assert!(seen.last().unwrap().contains("dropped"));
    }
}
