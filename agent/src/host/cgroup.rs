//! Resource limits for tasks through Linux control groups.
//!
//! A task's cgroup lives under the agent's own cgroup (read from
//! `/proc/self/cgroup`), at `<own>/orch/<alloc>.<task>`, so an agent run by
//! systemd, in a container or in a test harness only ever touches the part
//! of the hierarchy it was given. The agent works out *what* to create and
//! write (a [`CgroupPlan`]); the task's shim carries it out, joins the
//! cgroup before it starts the task (so the task is limited from its first
//! instruction), leaves it again, and removes it when the task has ended.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use orch_plugin_runtime::{ProcessLimits, TaskRef};
use serde::{Deserialize, Serialize};

/// The directory under the agent's own cgroup that holds every task's.
const ORCH: &str = "orch";
/// On cgroup v2, where the agent moves itself when its own cgroup must
/// become an inner node (cgroup v2 lets only leaves hold processes).
const AGENT_LEAF: &str = "orch-agent";

/// What this node can enforce, found once when the agent starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupSupport {
    mode: Mode,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    /// One hierarchy per controller; `memory` and/or `cpu` usable.
    V1 {
        memory: Option<V1Controller>,
        cpu: Option<V1Controller>,
        /// Why a controller is missing, for the fingerprint.
        missing: Vec<String>,
    },
    /// The unified hierarchy: `parent` is `<own>/orch`, `home` the cgroup
    /// the agent (and so a fresh shim) is in.
    V2 {
        parent: PathBuf,
        home: PathBuf,
        controllers: Vec<String>,
    },
    Unavailable(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct V1Controller {
    /// `<mount>/<own>/orch`.
    parent: PathBuf,
    /// `<mount>/<own>`: where the shim goes back to.
    home: PathBuf,
}

/// What the shim does for one task's cgroup: create `dirs`, write `writes`
/// in order, move itself into every dir, start the task, move back to
/// `home`; when the task has ended read `oom_file`, kill what is left in
/// `dirs` and remove them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CgroupPlan {
    pub dirs: Vec<PathBuf>,
    pub home: Vec<PathBuf>,
    pub writes: Vec<(PathBuf, String)>,
    /// v1 `memory.oom_control` or v2 `memory.events`; both have an
    /// `oom_kill N` line.
    pub oom_file: Option<PathBuf>,
}

impl CgroupSupport {
    /// Looks at this machine's cgroups and prepares `<own>/orch` in each
    /// usable hierarchy. Never fails: what cannot be used is described.
    pub fn detect() -> CgroupSupport {
        let own = match fs::read_to_string("/proc/self/cgroup") {
            Ok(text) => text,
            Err(e) => {
                return CgroupSupport::unavailable(format!("cannot read /proc/self/cgroup: {e}"));
            }
        };
        let mounts = match fs::read_to_string("/proc/self/mountinfo") {
            Ok(text) => text,
            Err(e) => {
                return CgroupSupport::unavailable(format!(
                    "cannot read /proc/self/mountinfo: {e}"
                ));
            }
        };
        let mounts = parse_mountinfo(&mounts);
        let own = parse_proc_cgroup(&own);
        if let Some(v2) = detect_v2(&own, &mounts) {
            return v2;
        }
        detect_v1(&own, &mounts)
    }

    /// No limits on this node, for the given reason.
    pub fn unavailable(reason: impl Into<String>) -> CgroupSupport {
        CgroupSupport {
            mode: Mode::Unavailable(reason.into()),
        }
    }

    /// Whether tasks get a cgroup (and so limits) at all.
    pub fn is_available(&self) -> bool {
        match &self.mode {
            Mode::V1 { memory, cpu, .. } => memory.is_some() || cpu.is_some(),
            Mode::V2 { .. } => true,
            Mode::Unavailable(_) => false,
        }
    }

    /// The cgroup directories a task gets (one per v1 hierarchy, or one on
    /// v2), whether or not the task runs now: for stats and for tests.
    pub fn task_cgroup_dirs(&self, task: &TaskRef) -> Vec<PathBuf> {
        let name = cgroup_name(task);
        match &self.mode {
            Mode::V1 { memory, cpu, .. } => [memory, cpu]
                .into_iter()
                .flatten()
                .map(|c| c.parent.join(&name))
                .collect(),
            Mode::V2 { parent, .. } => vec![parent.join(&name)],
            Mode::Unavailable(_) => Vec::new(),
        }
    }

    /// The file that holds the task's memory limit, where there is one.
    pub fn memory_limit_file(&self, task: &TaskRef) -> Option<PathBuf> {
        let name = cgroup_name(task);
        match &self.mode {
            Mode::V1 {
                memory: Some(memory),
                ..
            } => Some(memory.parent.join(name).join("memory.limit_in_bytes")),
            Mode::V2 {
                parent,
                controllers,
                ..
            } if controllers.iter().any(|c| c == "memory") => {
                Some(parent.join(name).join("memory.max"))
            }
            _ => None,
        }
    }

    pub(crate) fn plan(&self, task: &TaskRef, limits: ProcessLimits) -> Option<CgroupPlan> {
        let name = cgroup_name(task);
        match &self.mode {
            Mode::V1 { memory, cpu, .. } => {
                let mut plan = CgroupPlan {
                    dirs: Vec::new(),
                    home: Vec::new(),
                    writes: Vec::new(),
                    oom_file: None,
                };
                if let Some(memory) = memory {
                    let dir = memory.parent.join(&name);
                    if limits.memory_mib > 0 {
                        plan.writes.push((
                            dir.join("memory.limit_in_bytes"),
                            mib_to_bytes(limits.memory_mib).to_string(),
                        ));
                    }
                    plan.oom_file = Some(dir.join("memory.oom_control"));
                    plan.dirs.push(dir);
                    plan.home.push(memory.home.clone());
                }
                if let Some(cpu) = cpu {
                    let dir = cpu.parent.join(&name);
                    if limits.cpu_mhz > 0 {
                        plan.writes.push((
                            dir.join("cpu.shares"),
                            cpu_shares(limits.cpu_mhz).to_string(),
                        ));
                    }
                    plan.dirs.push(dir);
                    plan.home.push(cpu.home.clone());
                }
                (!plan.dirs.is_empty()).then_some(plan)
            }
            Mode::V2 {
                parent,
                home,
                controllers,
            } => {
                let dir = parent.join(&name);
                let has = |c: &str| controllers.iter().any(|x| x == c);
                let mut writes = Vec::new();
                if has("memory") && limits.memory_mib > 0 {
                    writes.push((
                        dir.join("memory.max"),
                        mib_to_bytes(limits.memory_mib).to_string(),
                    ));
                }
                if has("cpu") && limits.cpu_mhz > 0 {
                    writes.push((
                        dir.join("cpu.weight"),
                        cpu_weight(limits.cpu_mhz).to_string(),
                    ));
                }
                Some(CgroupPlan {
                    oom_file: has("memory").then(|| dir.join("memory.events")),
                    dirs: vec![dir],
                    home: vec![home.clone()],
                    writes,
                })
            }
            Mode::Unavailable(_) => None,
        }
    }
}

/// For the node's fingerprint: `v1 (cpu, memory)`, `v2 (cpu, memory)` or
/// `unavailable: <why>`.
impl fmt::Display for CgroupSupport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.mode {
            Mode::V1 {
                memory,
                cpu,
                missing,
            } => {
                if memory.is_none() && cpu.is_none() {
                    return write!(f, "unavailable: {}", missing.join("; "));
                }
                let names: Vec<&str> = [("cpu", cpu.is_some()), ("memory", memory.is_some())]
                    .into_iter()
                    .filter_map(|(n, ok)| ok.then_some(n))
                    .collect();
                write!(f, "v1 ({})", names.join(", "))?;
                if !missing.is_empty() {
                    write!(f, "; {}", missing.join("; "))?;
                }
                Ok(())
            }
            Mode::V2 { controllers, .. } => write!(f, "v2 ({})", controllers.join(", ")),
            Mode::Unavailable(why) => write!(f, "unavailable: {why}"),
        }
    }
}

fn cgroup_name(task: &TaskRef) -> String {
    format!("{}.{}", task.alloc_id, task.task)
}

fn mib_to_bytes(mib: u64) -> u64 {
    mib.saturating_mul(1024 * 1024)
}

/// Nomad's rule: one share per MHz, at least the kernel's minimum of 2.
fn cpu_shares(cpu_mhz: u32) -> u64 {
    u64::from(cpu_mhz).clamp(2, 262_144)
}

/// The shares-to-weight mapping runc and systemd use, so a task weighs
/// against others as it would under v1.
fn cpu_weight(cpu_mhz: u32) -> u64 {
    let shares = cpu_shares(cpu_mhz);
    1 + ((shares - 2) * 9999) / 262_142
}

/// One line of `/proc/self/cgroup`: `id:controllers:path`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OwnCgroup {
    controllers: Vec<String>,
    path: String,
}

fn parse_proc_cgroup(text: &str) -> Vec<OwnCgroup> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let _id = parts.next()?;
            let controllers = parts.next()?;
            let path = parts.next()?;
            Some(OwnCgroup {
                controllers: controllers
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned)
                    .collect(),
                path: path.to_owned(),
            })
        })
        .collect()
}

/// A cgroup mount from `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CgroupMount {
    /// The cgroup path at the mount point (not `/` inside a namespace).
    root: String,
    mount_point: PathBuf,
    v2: bool,
    /// v1 controllers named in the super options.
    options: Vec<String>,
}

fn parse_mountinfo(text: &str) -> Vec<CgroupMount> {
    text.lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let fields: Vec<&str> = before.split(' ').collect();
            let mut after = after.split(' ');
            let fstype = after.next()?;
            let _source = after.next()?;
            let options = after.next().unwrap_or("");
            if fstype != "cgroup" && fstype != "cgroup2" {
                return None;
            }
            Some(CgroupMount {
                root: unescape_mount(fields.get(3)?),
                mount_point: PathBuf::from(unescape_mount(fields.get(4)?)),
                v2: fstype == "cgroup2",
                options: options.split(',').map(str::to_owned).collect(),
            })
        })
        .collect()
}

/// mountinfo writes a space, tab, newline and backslash as octal escapes.
fn unescape_mount(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// Where the cgroup `path` (as `/proc/self/cgroup` names it) is on disk.
fn cgroup_dir(mount: &CgroupMount, path: &str) -> PathBuf {
    let relative = path
        .strip_prefix(mount.root.as_str())
        .filter(|_| mount.root != "/")
        .unwrap_or(path);
    let relative = relative.trim_start_matches('/');
    if relative.is_empty() {
        mount.mount_point.clone()
    } else {
        mount.mount_point.join(relative)
    }
}

fn detect_v1(own: &[OwnCgroup], mounts: &[CgroupMount]) -> CgroupSupport {
    let mut missing = Vec::new();
    let mut prepare = |controller: &str| -> Option<V1Controller> {
        let Some(mount) = mounts
            .iter()
            .find(|m| !m.v2 && m.options.iter().any(|o| o == controller))
        else {
            missing.push(format!(
                "no cgroup v1 hierarchy has the {controller} controller"
            ));
            return None;
        };
        let Some(line) = own
            .iter()
            .find(|l| l.controllers.iter().any(|c| c == controller))
        else {
            missing.push(format!("/proc/self/cgroup has no {controller} line"));
            return None;
        };
        let home = cgroup_dir(mount, &line.path);
        let parent = home.join(ORCH);
        match fs::create_dir_all(&parent) {
            Ok(()) => Some(V1Controller { parent, home }),
            Err(e) => {
                missing.push(format!(
                    "{controller}: cannot create {}: {e}",
                    parent.display()
                ));
                None
            }
        }
    };
    let memory = prepare("memory");
    let cpu = prepare("cpu");
    CgroupSupport {
        mode: Mode::V1 {
            memory,
            cpu,
            missing,
        },
    }
}

/// `None` when this is not a v2 machine with the memory or cpu controller
/// (a hybrid machine's unified hierarchy usually has neither).
fn detect_v2(own: &[OwnCgroup], mounts: &[CgroupMount]) -> Option<CgroupSupport> {
    let mount = mounts.iter().find(|m| m.v2)?;
    let line = own.iter().find(|l| l.controllers.is_empty())?;
    let own_dir = cgroup_dir(mount, &line.path);
    // Already moved into our leaf by an earlier NodeHost in this process.
    let (base, mut home) = if own_dir.file_name().is_some_and(|n| n == AGENT_LEAF) {
        let base = own_dir.parent().unwrap_or(&own_dir).to_path_buf();
        (base, own_dir.clone())
    } else {
        (own_dir.clone(), own_dir.clone())
    };
    let available = fs::read_to_string(base.join("cgroup.controllers")).ok()?;
    let controllers: Vec<String> = ["cpu", "memory"]
        .into_iter()
        .filter(|c| available.split_whitespace().any(|a| a == *c))
        .map(str::to_owned)
        .collect();
    if controllers.is_empty() {
        return None;
    }
    let fail = |why: String| Some(CgroupSupport::unavailable(format!("cgroup v2: {why}")));
    let enable = controllers
        .iter()
        .map(|c| format!("+{c}"))
        .collect::<Vec<_>>()
        .join(" ");
    if let Err(e) = enable_controllers(&base, &controllers, &enable) {
        // cgroup v2 lets only leaves hold processes: move the agent into a
        // leaf of its own, then its cgroup can delegate controllers.
        if e.raw_os_error() != Some(rustix::io::Errno::BUSY.raw_os_error()) {
            return fail(format!("cannot enable {enable} in {}: {e}", base.display()));
        }
        let leaf = base.join(AGENT_LEAF);
        if let Err(e) = fs::create_dir_all(&leaf)
            .and_then(|()| fs::write(leaf.join("cgroup.procs"), std::process::id().to_string()))
        {
            return fail(format!(
                "cannot move the agent into {}: {e}",
                leaf.display()
            ));
        }
        home = leaf;
        if let Err(e) = enable_controllers(&base, &controllers, &enable) {
            return fail(format!(
                "cannot enable {enable} in {} (other processes share the agent's cgroup; \
                 run the agent in a cgroup of its own, e.g. systemd's Delegate=yes): {e}",
                base.display()
            ));
        }
    }
    let parent = base.join(ORCH);
    if let Err(e) = fs::create_dir_all(&parent)
        .and_then(|()| enable_controllers(&parent, &controllers, &enable))
    {
        return fail(format!("cannot prepare {}: {e}", parent.display()));
    }
    Some(CgroupSupport {
        mode: Mode::V2 {
            parent,
            home,
            controllers,
        },
    })
}

fn enable_controllers(dir: &Path, controllers: &[String], enable: &str) -> io::Result<()> {
    let file = dir.join("cgroup.subtree_control");
    let current = fs::read_to_string(&file)?;
    if controllers
        .iter()
        .all(|c| current.split_whitespace().any(|a| a == c))
    {
        return Ok(());
    }
    fs::write(&file, enable)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn v1_paths_follow_the_agents_own_cgroup() {
        let mounts = parse_mountinfo(MOUNTINFO);
        assert_eq!(mounts.len(), 3);
        let own = parse_proc_cgroup("4:memory:/svc/agent\n1:cpu,cpuacct:/\n0::/\n");
        let memory = mounts
            .iter()
            .find(|m| m.options.iter().any(|o| o == "memory"))
            .unwrap();
        assert_eq!(
            cgroup_dir(memory, &own[0].path),
            Path::new("/sys/fs/cgroup/memory/svc/agent")
        );
        assert_eq!(own[1].controllers, ["cpu", "cpuacct"]);
        let cpu = mounts
            .iter()
            .find(|m| m.options.iter().any(|o| o == "cpu"))
            .unwrap();
        assert_eq!(
            cgroup_dir(cpu, &own[1].path),
            Path::new("/sys/fs/cgroup/cpu,cpuacct")
        );
    }

    #[test]
    fn a_namespaced_mount_root_is_stripped() {
        let mount = CgroupMount {
            root: "/kubepods/pod1".into(),
            mount_point: "/sys/fs/cgroup".into(),
            v2: true,
            options: vec![],
        };
        assert_eq!(
            cgroup_dir(&mount, "/kubepods/pod1/c"),
            Path::new("/sys/fs/cgroup/c")
        );
        assert_eq!(cgroup_dir(&mount, "/"), Path::new("/sys/fs/cgroup"));
    }

    #[test]
    fn cpu_conversions() {
        assert_eq!(cpu_shares(0), 2);
        assert_eq!(cpu_shares(500), 500);
        assert_eq!(cpu_weight(0), 1);
        assert_eq!(cpu_weight(1024), 39);
        assert_eq!(cpu_weight(u32::MAX), 10_000);
    }

    #[test]
    fn plans_write_limits_only_when_asked() {
        let support = CgroupSupport {
            mode: Mode::V1 {
                memory: Some(V1Controller {
                    parent: "/m/a/orch".into(),
                    home: "/m/a".into(),
                }),
                cpu: None,
                missing: vec!["cpu: gone".into()],
            },
        };
        let task = TaskRef {
            alloc_id: "a1".into(),
            task: "web".into(),
        };
        let plan = support
            .plan(
                &task,
                ProcessLimits {
                    cpu_mhz: 100,
                    memory_mib: 64,
                },
            )
            .unwrap();
        assert_eq!(plan.dirs, [PathBuf::from("/m/a/orch/a1.web")]);
        assert_eq!(
            plan.writes,
            [(
                PathBuf::from("/m/a/orch/a1.web/memory.limit_in_bytes"),
                "67108864".to_owned()
            )]
        );
        let plan = support.plan(&task, ProcessLimits::default()).unwrap();
        assert!(plan.writes.is_empty());
        assert_eq!(support.to_string(), "v1 (memory); cpu: gone");
    }
}
