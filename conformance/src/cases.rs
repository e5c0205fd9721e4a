//! The requests the checks send, read from `cases/<kind>/*.toml` (embedded
//! at build time). A case either lists its nodes or asks for `nodes`
//! generated ones from a `seed`.

use orch_plugin_runtime::{Node, NodeColumns, Resources, ScoreRequest};
use serde::Deserialize;

/// (kind, file stem, TOML text) of every case file.
const FILES: &[(&str, &str, &str)] = include!(concat!(env!("OUT_DIR"), "/cases.rs"));

/// One request to send, and which check it serves.
#[derive(Debug, Clone)]
pub(crate) struct Case {
    pub check: String,
    pub name: String,
    pub budget: bool,
    pub request: ScoreRequest,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    check: String,
    name: String,
    #[serde(default)]
    budget: bool,
    #[serde(default)]
    placement: u64,
    #[serde(default = "default_priority")]
    job_priority: u8,
    #[serde(default)]
    ask: Option<ResourcesFile>,
    /// Generate this many typical nodes…
    #[serde(default)]
    nodes: Option<usize>,
    #[serde(default)]
    seed: u64,
    /// …or list them.
    #[serde(default, rename = "node")]
    node_list: Vec<NodeFile>,
    #[serde(default)]
    attribute_names: Vec<String>,
    #[serde(default)]
    strings: Vec<String>,
    #[serde(default)]
    attributes: Vec<u32>,
}

fn default_priority() -> u8 {
    50
}

#[derive(Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
struct ResourcesFile {
    cpu_mhz: u32,
    memory_mib: u64,
    disk_mib: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeFile {
    capacity: ResourcesFile,
    allocated: ResourcesFile,
    #[serde(default)]
    job_allocs: u32,
    #[serde(default)]
    total_allocs: u32,
}

impl From<ResourcesFile> for Resources {
    fn from(r: ResourcesFile) -> Self {
        Resources {
            cpu_mhz: r.cpu_mhz,
            memory_mib: r.memory_mib,
            disk_mib: r.disk_mib,
        }
    }
}

/// Every case of plugin kind `kind`, in file order. A case file that does
/// not parse is a bug in this build, reported as a case error.
pub(crate) fn load(kind: &str) -> Result<Vec<Case>, String> {
    FILES
        .iter()
        .filter(|(k, _, _)| *k == kind)
        .map(|(_, stem, text)| {
            let file: CaseFile = toml::from_str(text)
                .map_err(|e| format!("conformance/cases/{kind}/{stem}.toml: {e}"))?;
            Ok(file.into_case())
        })
        .collect()
}

impl CaseFile {
    fn into_case(self) -> Case {
        let mut nodes: Vec<Node> = self
            .node_list
            .into_iter()
            .map(|n| Node {
                capacity: n.capacity.into(),
                allocated: n.allocated.into(),
                job_allocs: n.job_allocs,
                total_allocs: n.total_allocs,
            })
            .collect();
        if let Some(count) = self.nodes {
            nodes.extend(typical_nodes(count, self.seed));
        }
        let ask = self.ask.map_or(
            Resources {
                cpu_mhz: 500,
                memory_mib: 256,
                disk_mib: 100,
            },
            Resources::from,
        );
        Case {
            check: self.check,
            name: self.name,
            budget: self.budget,
            request: ScoreRequest {
                placement: self.placement,
                job_priority: self.job_priority,
                ask,
                nodes: NodeColumns::from_nodes(&nodes),
                attribute_names: self.attribute_names,
                strings: self.strings,
                attributes: self.attributes,
            },
        }
    }
}

/// `count` nodes of the sizes clusters have (2 to 64 cores, 4 to 512 GiB),
/// between empty and nearly full, from a fixed seed.
pub(crate) fn typical_nodes(count: usize, seed: u64) -> Vec<Node> {
    let mut state = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut next = move || {
        // splitmix64: small, fast and the same on every platform.
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    (0..count)
        .map(|_| {
            let cores = 2u32 << (next() % 6);
            let memory_mib = 4096u64 << (next() % 8);
            let disk_mib = 20_480u64 << (next() % 6);
            let capacity = Resources {
                cpu_mhz: cores * 2400,
                memory_mib,
                disk_mib,
            };
            let load = next() % 90;
            let allocated = Resources {
                cpu_mhz: capacity.cpu_mhz / 100 * u32::try_from(load).unwrap_or(0),
                memory_mib: memory_mib / 100 * load,
                disk_mib: disk_mib / 100 * (next() % 90),
            };
            let total_allocs = u32::try_from(next() % 40).unwrap_or(0);
            Node {
                capacity,
                allocated,
                job_allocs: total_allocs.min(u32::try_from(next() % 3).unwrap_or(0)),
                total_allocs,
            }
        })
        .collect()
}
