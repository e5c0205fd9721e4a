//! The on-disk layout of a node's allocations, in one place, so the
//! allocation runner, the drivers' host capabilities, the shim and the log
//! API all agree on where things are:
//!
//! ```text
//! <data_dir>/allocs/<alloc>/                     the allocation directory
//! <data_dir>/allocs/<alloc>/<task>/              the task directory: the process's cwd
//! <data_dir>/allocs/<alloc>/<task>/local/        artifacts and other task-local files
//! <data_dir>/allocs/<alloc>/<task>/secrets/      secrets (0700)
//! <data_dir>/allocs/<alloc>/logs/<task>.<stdout|stderr>.<N>   rotated log files
//! <data_dir>/allocs/<alloc>/.orch/<task>/        the shim's private files (0700)
//! <data_dir>/cache/artifacts/<sha256>            downloaded artifacts, by digest
//! ```
//!
//! Allocation ids and task names come from the server, so every function
//! here refuses a name that would leave its directory.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::host::HostError;

/// The directory for the allocation's log files.
const LOGS: &str = "logs";
/// The allocation's shared directory, the one containers see at `/alloc`.
const SHARED: &str = "alloc";
/// The directory for the shims' private files, hidden from a casual `ls`.
const SHIM_ROOT: &str = ".orch";

/// Which of a task's output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    Stdout,
    Stderr,
}

impl LogStream {
    pub fn as_str(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
        }
    }
}

/// The directories of one task, all created by [`create_task_dirs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskDirs {
    pub alloc: PathBuf,
    /// `<alloc>/alloc`: shared by the allocation's tasks (`/alloc` in a
    /// container).
    pub shared: PathBuf,
    pub task: PathBuf,
    pub local: PathBuf,
    pub secrets: PathBuf,
    pub logs: PathBuf,
    pub shim: PathBuf,
}

/// Refuses an allocation id or task name that is not a single, ordinary
/// path component, or that would collide with the allocation's own
/// directories.
pub fn check_name(what: &'static str, value: &str) -> Result<(), HostError> {
    let why = if value.is_empty() {
        Some("it is empty")
    } else if value.contains('/') {
        Some("it contains '/'")
    } else if value.contains('\0') {
        Some("it contains a NUL byte")
    } else if value == "." || value == ".." {
        Some("it names a directory above or at the allocation")
    } else if value.starts_with('.') {
        Some("names starting with '.' are reserved for the agent's own files")
    } else if value == LOGS {
        Some("\"logs\" is reserved for the allocation's log directory")
    } else if value == SHARED {
        Some("\"alloc\" is reserved for the allocation's shared directory")
    } else if value.len() > 200 {
        Some("it is longer than 200 bytes")
    } else {
        None
    };
    match why {
        Some(why) => Err(HostError::BadName {
            what,
            value: value.to_owned(),
            why,
        }),
        None => Ok(()),
    }
}

/// `<data_dir>/allocs/<alloc>/`.
pub fn alloc_dir(data_dir: &Path, alloc_id: &str) -> Result<PathBuf, HostError> {
    check_name("allocation id", alloc_id)?;
    Ok(data_dir.join("allocs").join(alloc_id))
}

/// `<alloc>/<task>/`: the task's working directory.
pub fn task_dir(data_dir: &Path, alloc_id: &str, task: &str) -> Result<PathBuf, HostError> {
    check_name("task name", task)?;
    Ok(alloc_dir(data_dir, alloc_id)?.join(task))
}

/// `<alloc>/<task>/local/`: where artifacts usually go.
pub fn local_dir(data_dir: &Path, alloc_id: &str, task: &str) -> Result<PathBuf, HostError> {
    Ok(task_dir(data_dir, alloc_id, task)?.join("local"))
}

/// `<alloc>/<task>/secrets/`, readable by the task's user only.
pub fn secrets_dir(data_dir: &Path, alloc_id: &str, task: &str) -> Result<PathBuf, HostError> {
    Ok(task_dir(data_dir, alloc_id, task)?.join("secrets"))
}

/// `<alloc>/logs/`: every task's rotated log files.
pub fn logs_dir(data_dir: &Path, alloc_id: &str) -> Result<PathBuf, HostError> {
    Ok(alloc_dir(data_dir, alloc_id)?.join(LOGS))
}

/// `<alloc>/logs/<task>.<stream>.<index>`.
pub fn log_file(
    data_dir: &Path,
    alloc_id: &str,
    task: &str,
    stream: LogStream,
    index: u64,
) -> Result<PathBuf, HostError> {
    check_name("task name", task)?;
    Ok(logs_dir(data_dir, alloc_id)?.join(log_file_name(task, stream, index)))
}

pub(crate) fn log_file_name(task: &str, stream: LogStream, index: u64) -> String {
    format!("{task}.{}.{index}", stream.as_str())
}

/// `<alloc>/.orch/<task>/`: the task's shim keeps its spec, its state, the
/// recorded exit and its own log here.
pub fn shim_dir(data_dir: &Path, alloc_id: &str, task: &str) -> Result<PathBuf, HostError> {
    check_name("task name", task)?;
    Ok(alloc_dir(data_dir, alloc_id)?.join(SHIM_ROOT).join(task))
}

/// `<data_dir>/cache/artifacts/`: verified downloads named by their sha256.
pub fn artifact_cache_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("cache").join("artifacts")
}

/// Creates every directory of a task (idempotent): the allocation, task,
/// `local/`, `secrets/` (0700), `logs/` and the shim's directory (0700).
pub fn create_task_dirs(
    data_dir: &Path,
    alloc_id: &str,
    task: &str,
) -> Result<TaskDirs, HostError> {
    let dirs = TaskDirs {
        alloc: alloc_dir(data_dir, alloc_id)?,
        shared: alloc_dir(data_dir, alloc_id)?.join(SHARED),
        task: task_dir(data_dir, alloc_id, task)?,
        local: local_dir(data_dir, alloc_id, task)?,
        secrets: secrets_dir(data_dir, alloc_id, task)?,
        logs: logs_dir(data_dir, alloc_id)?,
        shim: shim_dir(data_dir, alloc_id, task)?,
    };
    for dir in [
        &dirs.alloc,
        &dirs.shared,
        &dirs.task,
        &dirs.local,
        &dirs.logs,
    ] {
        create_dir(dir, None)?;
    }
    create_dir(&dirs.secrets, Some(0o700))?;
    create_dir(&dirs.shim, Some(0o700))?;
    Ok(dirs)
}

fn create_dir(dir: &Path, mode: Option<u32>) -> Result<(), HostError> {
    fs::create_dir_all(dir).map_err(|source| HostError::io("create directory", dir, source))?;
    if let Some(mode) = mode {
        fs::set_permissions(dir, fs::Permissions::from_mode(mode))
            .map_err(|source| HostError::io("set the permissions of", dir, source))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_would_escape_or_collide_are_refused() {
        for bad in ["", "a/b", "..", ".", ".orch", "logs", "alloc", "x\0y"] {
            assert!(check_name("task name", bad).is_err(), "{bad:?} accepted");
        }
        for good in ["web", "9f1c-22", "redis.cache", "a..b"] {
            assert!(check_name("task name", good).is_ok(), "{good:?} refused");
        }
        let err = task_dir(Path::new("/d"), "a1", "../x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("task name \"../x\""), "{err}");
    }

    #[test]
    fn layout() {
        let d = Path::new("/data");
        assert_eq!(
            task_dir(d, "a1", "web").unwrap(),
            Path::new("/data/allocs/a1/web")
        );
        assert_eq!(
            log_file(d, "a1", "web", LogStream::Stderr, 3).unwrap(),
            Path::new("/data/allocs/a1/logs/web.stderr.3")
        );
        assert_eq!(
            shim_dir(d, "a1", "web").unwrap(),
            Path::new("/data/allocs/a1/.orch/web")
        );
    }
}
