//! Nodes: machines that run allocations, as their agents describe them.

use crate::Resources;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeStatus {
    /// Registered, not yet heartbeating.
    #[default]
    Initializing,
    Ready,
    /// Missed its heartbeat TTL; its allocations are lost.
    Down,
}

impl NodeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeStatus::Initializing => "initializing",
            NodeStatus::Ready => "ready",
            NodeStatus::Down => "down",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Eligibility {
    #[default]
    Eligible,
    /// Keeps what runs there, takes nothing new.
    Ineligible,
}

/// What a driver reported when the agent fingerprinted it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriverInfo {
    pub detected: bool,
    pub healthy: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub health_description: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
}

impl Default for DriverInfo {
    fn default() -> Self {
        Self {
            detected: true,
            healthy: true,
            health_description: String::new(),
            attributes: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    /// Stable identity, kept by the agent across restarts.
    pub id: String,
    /// Display name, usually the hostname.
    pub name: String,
    #[serde(default = "default_datacenter")]
    pub datacenter: String,
    /// Free-form class for grouping similar nodes.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node_class: String,
    /// Fingerprinted facts: `kernel.name`, `cpu.arch`, `os.name`, ...;
    /// constraints read them as `${attr.NAME}`.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Operator-set facts, read as `${meta.NAME}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: BTreeMap<String, String>,
    /// Everything the machine has.
    pub resources: Resources,
    /// What allocations may not use (the OS, the agent).
    #[serde(default)]
    pub reserved: Resources,
    #[serde(default)]
    pub drivers: BTreeMap<String, DriverInfo>,
    /// Where the node's agent serves task logs (`http://HOST:PORT`), for
    /// the server to fetch them from; empty for nodes without an agent.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub http_addr: String,

    /// Set by the server.
    #[serde(default)]
    pub status: NodeStatus,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status_description: String,
    /// Set by the server (`orch node eligibility`).
    #[serde(default)]
    pub eligibility: Eligibility,
    /// Set by the server (`orch node drain`): allocations are moved off.
    #[serde(default)]
    pub drain: bool,
    #[serde(default)]
    pub create_index: u64,
    #[serde(default)]
    pub modify_index: u64,
}

impl Node {
    /// What allocations may use: the total less what is reserved.
    pub fn allocatable(&self) -> Resources {
        self.resources.saturating_sub(self.reserved)
    }

    /// Whether new allocations may be placed here.
    pub fn schedulable(&self) -> bool {
        self.status == NodeStatus::Ready && self.eligibility == Eligibility::Eligible && !self.drain
    }

    /// Whether `driver` was detected and is healthy here.
    pub fn has_driver(&self, driver: &str) -> bool {
        self.drivers
            .get(driver)
            .is_some_and(|d| d.detected && d.healthy)
    }

    /// The value a constraint's `${...}` target reads on this node:
    /// `attr.X`, `meta.X`, `node.id`, `node.name`, `node.datacenter`,
    /// `node.class`. `None` when the node does not have it.
    pub fn lookup(&self, target: &str) -> Option<&str> {
        let key = target
            .strip_prefix("${")
            .and_then(|t| t.strip_suffix('}'))
            .unwrap_or(target);
        if let Some(attr) = key.strip_prefix("attr.") {
            return self.attributes.get(attr).map(String::as_str);
        }
        if let Some(meta) = key.strip_prefix("meta.") {
            return self.meta.get(meta).map(String::as_str);
        }
        match key {
            "node.id" | "node.unique.id" => Some(&self.id),
            "node.name" | "node.unique.name" => Some(&self.name),
            "node.datacenter" => Some(&self.datacenter),
            "node.class" => Some(&self.node_class),
            _ => None,
        }
    }
}

fn default_datacenter() -> String {
    "dc1".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_reads_attributes_meta_and_node_fields() {
        let node = Node {
            id: "n1".into(),
            name: "box".into(),
            datacenter: "home".into(),
            node_class: String::new(),
            attributes: [("kernel.name".to_owned(), "linux".to_owned())].into(),
            meta: [("rack".to_owned(), "r1".to_owned())].into(),
            resources: Resources::new(1000, 1000, 1000),
            reserved: Resources::ZERO,
            drivers: BTreeMap::new(),
            http_addr: String::new(),
            status: NodeStatus::Ready,
            status_description: String::new(),
            eligibility: Eligibility::Eligible,
            drain: false,
            create_index: 0,
            modify_index: 0,
        };
        assert_eq!(node.lookup("${attr.kernel.name}"), Some("linux"));
        assert_eq!(node.lookup("${meta.rack}"), Some("r1"));
        assert_eq!(node.lookup("${node.datacenter}"), Some("home"));
        assert_eq!(node.lookup("${node.unique.name}"), Some("box"));
        assert_eq!(node.lookup("${attr.missing}"), None);
        assert_eq!(node.lookup("${nonsense}"), None);
    }
}
