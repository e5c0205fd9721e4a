//! The calls a node's agent makes to the server, typed: the real agent
//! (orch-agent) and the simulated ones of tests and benchmarks
//! (orch-testkit) both make them through these.

use crate::{Alive, Client, ClientError, StatusUpdate, StatusUpdated, StatusUpdates, routes};
use orch_model::{Allocation, Job, Node};
use std::time::Duration;

impl Client {
    /// Registers `node` (or updates what its agent reports); also its
    /// first heartbeat.
    pub fn register_node(&self, node: &Node) -> Result<Alive, ClientError> {
        self.post(&routes::NODE_REGISTER, &[], node).map(|r| r.body)
    }

    /// One heartbeat of node `node_id`.
    pub fn heartbeat(&self, node_id: &str) -> Result<Alive, ClientError> {
        self.post(&routes::NODE_HEARTBEAT, &[node_id], &serde_json::json!({}))
            .map(|r| r.body)
    }

    /// The node's allocations once the server's state moves past `index`
    /// (or `wait` runs out), with the index they were read at: an agent's
    /// long poll.
    pub fn node_allocations(
        &self,
        node_id: &str,
        index: u64,
        wait: Duration,
    ) -> Result<(Vec<Allocation>, u64), ClientError> {
        self.get_blocking(&routes::NODE_ALLOCATIONS, &[node_id], index, wait)
            .map(|r| (r.body, r.index))
    }

    /// Version `version` of job `job_id`.
    pub fn job_version(&self, job_id: &str, version: u64) -> Result<Job, ClientError> {
        let version = version.to_string();
        self.get(&routes::JOB, &[job_id], &[("version", &version)])
            .map(|r| r.body)
    }

    /// Allocations' statuses, in one batch.
    pub fn report_status(&self, updates: &[StatusUpdate]) -> Result<StatusUpdated, ClientError> {
        let body = StatusUpdates {
            updates: updates.to_vec(),
        };
        self.post(&routes::ALLOCATION_STATUS, &[], &body)
            .map(|r| r.body)
    }
}
