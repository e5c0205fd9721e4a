//! The agent's side of the server's HTTP API, over orch-wire's one client.
//! The agent always dials out (register, heartbeat, a long-poll for its
//! allocations, status reports), so an agent behind NAT needs nothing
//! opened towards it.

use orch_model::{Allocation, Job, Node};
use orch_wire::{Alive, Client, ClientOptions, StatusUpdate, StatusUpdated, StatusUpdates, routes};
use std::time::Duration;

pub use orch_wire::ClientError;

/// A client of one orch server.
#[derive(Clone)]
pub struct ServerClient(Client);

impl ServerClient {
    /// `address` is `http://host:port` (a bare `host:port` gets `http://`).
    pub fn new(address: &str) -> Result<Self, ClientError> {
        Client::new(address, ClientOptions::agent()).map(Self)
    }

    pub fn address(&self) -> &str {
        self.0.address()
    }

    pub fn register(&self, node: &Node) -> Result<Alive, ClientError> {
        self.0
            .post(&routes::NODE_REGISTER, &[], node)
            .map(|r| r.body)
    }

    pub fn heartbeat(&self, node_id: &str) -> Result<Alive, ClientError> {
        self.0
            .post(&routes::NODE_HEARTBEAT, &[node_id], &serde_json::json!({}))
            .map(|r| r.body)
    }

    /// The node's allocations once the server's state moves past `index`
    /// (or `wait` runs out), with the index they were read at.
    pub fn allocations(
        &self,
        node_id: &str,
        index: u64,
        wait: Duration,
    ) -> Result<(Vec<Allocation>, u64), ClientError> {
        self.0
            .get_blocking(&routes::NODE_ALLOCATIONS, &[node_id], index, wait)
            .map(|r| (r.body, r.index))
    }

    /// Version `version` of job `job_id`.
    pub fn job_version(&self, job_id: &str, version: u64) -> Result<Job, ClientError> {
        let version = version.to_string();
        self.0
            .get(&routes::JOB, &[job_id], &[("version", &version)])
            .map(|r| r.body)
    }

    pub fn update_status(&self, updates: &[StatusUpdate]) -> Result<StatusUpdated, ClientError> {
        let body = StatusUpdates {
            updates: updates.to_vec(),
        };
        self.0
            .post(&routes::ALLOCATION_STATUS, &[], &body)
            .map(|r| r.body)
    }
}
