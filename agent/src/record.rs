//! The agent's own record of each allocation it runs, one JSON file per
//! allocation under `<data_dir>/agent/allocs/`, rewritten (atomically) on
//! every change: after a restart the agent knows which job version each
//! allocation runs, each task's driver handle, and its restart count.

use crate::restart::RestartTracker;
use orch_model::{Allocation, Job, TaskState};
use orch_plugin_runtime::TaskHandle;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AllocRecord {
    pub alloc: Allocation,
    /// The job at the version the allocation runs.
    pub job: Job,
    pub tasks: BTreeMap<String, TaskRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskRecord {
    pub state: TaskState,
    /// The driver's handle while the task runs.
    pub handle: Option<TaskHandle>,
    pub restarts: RestartTracker,
}

/// Where the records live.
#[derive(Debug, Clone)]
pub struct Records {
    data_dir: PathBuf,
    dir: PathBuf,
}

impl Records {
    pub fn open(data_dir: &Path) -> io::Result<Records> {
        let dir = data_dir.join("agent").join("allocs");
        std::fs::create_dir_all(&dir)?;
        Ok(Records {
            data_dir: data_dir.to_owned(),
            dir,
        })
    }

    /// The agent's data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    fn path(&self, alloc_id: &str) -> PathBuf {
        self.dir.join(format!("{alloc_id}.json"))
    }

    /// Writes the record: to a temporary file, then renamed over the old
    /// one, so a crash leaves the old record or the new, never half of one.
    pub fn save(&self, record: &AllocRecord) -> io::Result<()> {
        let path = self.path(&record.alloc.id);
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec(record).map_err(io::Error::other)?;
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, &path)
    }

    pub fn remove(&self, alloc_id: &str) -> io::Result<()> {
        match std::fs::remove_file(self.path(alloc_id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Every record that reads; one that does not is logged and set aside
    /// (renamed `.bad`), so it cannot stop the agent from starting.
    pub fn load_all(&self) -> Vec<AllocRecord> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut records = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let parsed = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()));
            match parsed {
                Ok(record) => records.push(record),
                Err(e) => {
                    tracing::error!(path = %path.display(), "unreadable allocation record, set aside: {e}");
                    let _ = std::fs::rename(&path, path.with_extension("bad"));
                }
            }
        }
        records
    }
}
