//! The tasks an `orch agent` process left running. Killing an agent with
//! SIGKILL leaves its tasks' supervisors (by design: a restarted agent
//! takes them back); a test or a bench that is done with the agent kills
//! them from what the agent's records on disk say.

use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// The pids of the tasks the records under the agent's data dir (`DATA/agent/allocs`) say it runs.
fn agent_task_pids(data: &Path) -> Vec<i64> {
    let mut pids = Vec::new();
    let Ok(entries) = std::fs::read_dir(data.join("agent").join("allocs")) else {
        return pids;
    };
    for entry in entries.flatten() {
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        let Ok(record) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        for task in record["tasks"]
            .as_object()
            .into_iter()
            .flat_map(|m| m.values())
        {
            // The driver's handle state is JSON text of its own.
            if let Some(state) = task["handle"]["state"].as_str()
                && let Ok(state) = serde_json::from_str::<Value>(state)
                && let Some(pid) = state["pid"].as_i64()
            {
                pids.push(pid);
            }
        }
    }
    pids
}

/// Kills (SIGKILL) the process group of every task the agent's records
/// list whose process still works inside `data`; call it once the agent
/// itself is gone.
pub fn kill_agent_tasks(data: &Path) {
    for pid in agent_task_pids(data) {
        // Only a process still working in this agent's data dir: a pid of
        // a task that ended may belong to anything by now.
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_default();
        if cwd.starts_with(data) {
            let _ = Command::new("kill")
                .args(["-9", "--", &format!("-{pid}")])
                .status();
        }
    }
}
