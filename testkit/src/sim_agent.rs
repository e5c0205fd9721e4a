//! A simulated agent: what a node's agent says to the server (register,
//! heartbeat, read its allocations, report their status), through the same
//! typed calls of orch-wire's client the real agent makes, without running
//! anything. The end-to-end
//! tests register their nodes with it; `orch-bench heartbeats` runs
//! thousands, numbered so that a node id names its agent.

use orch_model::{Allocation, DriverInfo, Eligibility, Node, NodeStatus, Resources};
use orch_wire::{Alive, Client, ClientError, StatusUpdate, StatusUpdated};
use std::time::Duration;

/// A node as an agent fingerprints one: named as its id, `cpu` MHz,
/// `memory` MiB, 20 GB of disk, `os` as both `os.name` and `kernel.name`,
/// and a healthy `exec` driver. The server sets its status.
pub fn node(id: &str, cpu: u32, memory: u64, os: &str) -> Node {
    Node {
        id: id.to_owned(),
        name: id.to_owned(),
        datacenter: "dc1".to_owned(),
        node_class: String::new(),
        attributes: [("os.name", os), ("kernel.name", os)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        meta: Default::default(),
        resources: Resources::new(cpu, memory, 20_000),
        reserved: Resources::ZERO,
        drivers: [("exec".to_owned(), DriverInfo::default())].into(),
        http_addr: String::new(),
        status: NodeStatus::default(),
        status_description: String::new(),
        eligibility: Eligibility::default(),
        drain: false,
        create_index: 0,
        modify_index: 0,
    }
}

/// The node id of simulated agent `i`: a UUID whose last group is the
/// index, so that a node the server names (marked down, say) tells which
/// agent it was; see [`sim_agent_index`].
pub fn sim_node_id(i: usize) -> String {
    format!("{SIM_PREFIX}{i:012x}")
}

/// Which simulated agent a node id of [`sim_node_id`] names; `None` for
/// any other node.
pub fn sim_agent_index(node_id: &str) -> Option<usize> {
    let last = node_id.strip_prefix(SIM_PREFIX)?;
    usize::from_str_radix(last, 16).ok()
}

const SIM_PREFIX: &str = "0000beef-0000-4000-8000-";

/// One node's agent, simulated: the calls a real agent makes, each
/// answered as the server answers it.
#[derive(Clone)]
pub struct SimAgent {
    client: Client,
    node: Node,
}

impl SimAgent {
    /// The agent of `node`, talking through `client` (whose connection
    /// pool it shares: one client per thread keeps one connection each).
    pub fn new(client: &Client, node: Node) -> SimAgent {
        SimAgent {
            client: client.clone(),
            node,
        }
    }

    /// Simulated agent number `i` of a cluster: node [`sim_node_id`]`(i)`,
    /// `agent-I`, 4000 MHz and 8 GiB of linux on x86_64.
    pub fn numbered(client: &Client, i: usize) -> SimAgent {
        let mut node = node(&sim_node_id(i), 4000, 8192, "linux");
        node.name = format!("agent-{i}");
        node.attributes
            .insert("cpu.arch".to_owned(), "x86_64".to_owned());
        SimAgent::new(client, node)
    }

    pub fn node(&self) -> &Node {
        &self.node
    }

    pub fn id(&self) -> &str {
        &self.node.id
    }

    /// Registers the node, which also counts as its first heartbeat.
    pub fn register(&self) -> Result<Alive, ClientError> {
        self.client.register_node(&self.node)
    }

    /// One heartbeat.
    pub fn heartbeat(&self) -> Result<Alive, ClientError> {
        self.client.heartbeat(&self.node.id)
    }

    /// The node's allocations once the server's state passes `index` (or
    /// `wait` runs out), with the index they were read at: the agent's
    /// long poll.
    pub fn allocations(
        &self,
        index: u64,
        wait: Duration,
    ) -> Result<(Vec<Allocation>, u64), ClientError> {
        self.client.node_allocations(&self.node.id, index, wait)
    }

    /// Reports allocations' statuses, as the agent batches them.
    pub fn report(&self, updates: &[StatusUpdate]) -> Result<StatusUpdated, ClientError> {
        self.client.report_status(updates)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_id_names_its_agent() {
        assert_eq!(sim_agent_index(&sim_node_id(12_345)), Some(12_345));
        assert_eq!(sim_agent_index("someone-else"), None);
    }

    /// The builder's node is what the tests registered as JSON before.
    #[test]
    fn the_node_reads_as_the_json_the_tests_sent() {
        let sent: Node = serde_json::from_value(serde_json::json!({
            "id": "n1", "name": "n1",
            "resources": {"cpu": 4000, "memory": 8192, "disk": 20000},
            "attributes": {"os.name": "linux", "kernel.name": "linux"},
            "drivers": {"exec": {"detected": true, "healthy": true}},
        }))
        .unwrap();
        assert_eq!(node("n1", 4000, 8192, "linux"), sent);
    }
}
