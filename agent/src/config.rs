//! The agent's settings: flags of `orch agent`, or an `agent.toml` whose
//! keys are the same; flags win.
//!
//! ```toml
//! server = "http://10.0.0.5:4646"
//! data_dir = "/var/lib/orch-agent"
//! datacenter = "home"
//! listen = "0.0.0.0:4647"          # where task logs are served to the server
//! meta = { rack = "shelf-2" }
//! reserved = { cpu = 500, memory = 512 }
//!
//! [driver.exec]                    # the built-in exec driver (on by default)
//! plugin = "builtin:exec"
//! grants = ["process", "artifacts", "log"]
//!
//! [driver.oci]                     # the built-in oci driver (on by default)
//! plugin = "builtin:oci"
//! grants = ["containers", "log"]
//! start_timeout = "5m"             # a start may pull an image
//!
//! [logs]
//! max_bytes = 10485760
//! max_files = 5
//!
//! [containers]                     # the containers capability (see ContainerSettings)
//! allow_privileged = false
//! allowed_host_paths = []
//! port_bind_address = "0.0.0.0"
//!
//! [containers.auth."registry.example:5000"]   # images and registry plugins
//! username = "ci"
//! password_env = "REGISTRY_PASSWORD"
//! ```
//!
//! Drivers run with the runtime's default limits (`orch_plugin_runtime::Limits`),
//! which this file does not set. A call may take the 1 s deadline plus what
//! its verb waits on (a start's `start_timeout`, a wait's or a stop's own
//! timeout), and every wait the driver starts in the host ends there. Memory:
//! 256 MiB per instance, and 1 GiB for all instances of one driver together
//! (an instance per call in flight, such as one per task being waited on, plus
//! up to eight kept warm), so the drivers' ceiling is 1 GiB per loaded driver,
//! whatever the number of tasks. A call that would pass it fails as a memory
//! fault saying so.

use crate::host::ContainerSettings;
use orch_model::Resources;
use orch_plugin_runtime::Grants;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentFile {
    pub server: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub name: Option<String>,
    pub datacenter: Option<String>,
    pub node_class: Option<String>,
    pub listen: Option<SocketAddr>,
    pub advertise: Option<String>,
    #[serde(default)]
    pub meta: BTreeMap<String, String>,
    #[serde(default)]
    /// What the node keeps for itself (MHz, MiB), as a task's resources.
    pub reserved: Resources,
    #[serde(default)]
    pub driver: BTreeMap<String, DriverFile>,
    #[serde(default)]
    pub logs: Option<LogSettings>,
    /// The operator's container policy, engine and registry credentials.
    #[serde(default)]
    pub containers: ContainerSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriverFile {
    /// `builtin:NAME` or a path to a `.wasm` component.
    pub plugin: String,
    /// Host capabilities the driver may import: `process`, `artifacts`,
    /// `containers`, `log`.
    #[serde(default)]
    pub grants: Vec<String>,
    /// How long a task's start may take in the driver and the host, e.g.
    /// `"5m"` for a driver that pulls images (default 30s; the built-in oci
    /// driver 5m).
    #[serde(default)]
    pub start_timeout: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// A task's log file is rotated past this size.
    pub max_bytes: u64,
    /// Files kept per task and stream.
    pub max_files: u32,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            max_bytes: 10 << 20,
            max_files: 5,
        }
    }
}

/// One driver the agent loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverConfig {
    /// The name jobs use in `driver = "…"`.
    pub name: String,
    /// `builtin:NAME` or a path.
    pub plugin: String,
    pub grants: Grants,
    /// What a start may take; `None` keeps the runtime's default.
    pub start_timeout: Option<Duration>,
}

impl DriverConfig {
    /// The built-in exec driver with what it needs: processes, artifacts,
    /// log lines.
    pub fn builtin_exec() -> DriverConfig {
        DriverConfig {
            name: "exec".into(),
            plugin: "builtin:exec".into(),
            grants: Grants {
                process: true,
                artifacts: true,
                containers: false,
                log: true,
            },
            start_timeout: None,
        }
    }

    /// The built-in oci driver: containers on the node's engine, log lines;
    /// a start may take five minutes (it may pull an image).
    pub fn builtin_oci() -> DriverConfig {
        DriverConfig {
            name: "oci".into(),
            plugin: "builtin:oci".into(),
            grants: Grants {
                process: false,
                artifacts: false,
                containers: true,
                log: true,
            },
            start_timeout: Some(DEFAULT_OCI_START),
        }
    }

    /// The drivers an agent loads when its config names none of them:
    /// exec and oci (an oci driver whose engine does not answer reports
    /// itself unhealthy, and the scheduler places no container there).
    pub fn defaults() -> Vec<DriverConfig> {
        vec![Self::builtin_exec(), Self::builtin_oci()]
    }
}

/// Start timeout of the built-in oci driver: pulling an image can take a
/// while (Nomad's docker driver allows 5 minutes).
const DEFAULT_OCI_START: Duration = Duration::from_secs(300);

/// Reads `path`; errors say which file, where and what to do.
pub fn read_file(path: &Path) -> Result<AgentFile, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the agent config {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("agent config {}: {e}", path.display()))
}

/// Turns the file's driver tables into driver configs; grants must be
/// capability names.
pub fn drivers(file: &BTreeMap<String, DriverFile>) -> Result<Vec<DriverConfig>, String> {
    file.iter()
        .map(|(name, d)| {
            let mut grants = Grants::default();
            for g in &d.grants {
                match g.as_str() {
                    "process" => grants.process = true,
                    "artifacts" => grants.artifacts = true,
                    "containers" => grants.containers = true,
                    "log" => grants.log = true,
                    other => {
                        return Err(format!(
                            "driver.{name}.grants: unknown capability {other:?}; \
                             the capabilities are process, artifacts, containers and log"
                        ));
                    }
                }
            }
            let start_timeout = match &d.start_timeout {
                None if d.plugin == "builtin:oci" => Some(DEFAULT_OCI_START),
                None => None,
                Some(text) => {
                    let dur: orch_model::Dur = text.parse().map_err(|e| {
                        format!("driver.{name}.start_timeout: {e}; write it like \"30s\" or \"5m\"")
                    })?;
                    if dur.0.is_zero() {
                        return Err(format!(
                            "driver.{name}.start_timeout: must be more than 0; write it like \"30s\" or \"5m\""
                        ));
                    }
                    Some(dur.0)
                }
            };
            Ok(DriverConfig {
                name: name.clone(),
                plugin: d.plugin.clone(),
                grants,
                start_timeout,
            })
        })
        .collect()
}
