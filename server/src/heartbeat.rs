//! Heartbeats: every node's agent must check in within the TTL the server
//! hands out, or the node is marked down, its allocations lost and
//! replaced elsewhere (the store's writer does that part).
//!
//! Deadlines live in memory only: after a restart of the control plane no
//! agent has had the chance to check in yet, so every node that was ready
//! gets the TTL plus a grace period before it can be marked down (Nomad's
//! heartbeat grace).

use crate::{NodeChange, Op, Store};
use orch_model::NodeStatus;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The node deadlines.
pub struct Heartbeats {
    ttl: Duration,
    grace: Duration,
    deadlines: Mutex<HashMap<String, Instant>>,
}

impl Heartbeats {
    pub fn new(ttl: Duration, grace: Duration) -> Self {
        Self {
            ttl,
            grace,
            deadlines: Mutex::new(HashMap::new()),
        }
    }

    /// The TTL agents are told to beat within.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Instant>> {
        self.deadlines.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `node` checked in at `now`; it has until `now + ttl`.
    pub fn beat(&self, node: &str, now: Instant) {
        self.lock().insert(node.to_owned(), now + self.ttl);
    }

    /// After a restart: every ready node gets the TTL plus the grace period
    /// to check in.
    pub fn start_grace(&self, nodes: impl IntoIterator<Item = String>, now: Instant) {
        let mut deadlines = self.lock();
        for node in nodes {
            deadlines.insert(node, now + self.ttl + self.grace);
        }
    }

    /// The nodes whose deadline has passed at `now`; they are forgotten
    /// until they beat again.
    pub fn expired(&self, now: Instant) -> Vec<String> {
        let mut deadlines = self.lock();
        let gone: Vec<String> = deadlines
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(node, _)| node.clone())
            .collect();
        for node in &gone {
            deadlines.remove(node);
        }
        gone
    }

    /// Nodes being watched.
    pub fn watched(&self) -> usize {
        self.lock().len()
    }

    /// Whether `node` has a deadline (it beat since it last expired).
    pub fn is_watched(&self, node: &str) -> bool {
        self.lock().contains_key(node)
    }

    /// Starts the thread that marks down the nodes whose TTL ran out; it
    /// looks four times per TTL (at least every 100 ms) and stops with
    /// `stop`.
    pub fn spawn_reaper(
        self: &Arc<Self>,
        store: Store,
        stop: Arc<AtomicBool>,
    ) -> std::io::Result<JoinHandle<()>> {
        let beats = self.clone();
        let every = (self.ttl / 4).clamp(Duration::from_millis(10), Duration::from_millis(100));
        std::thread::Builder::new()
            .name("orch-heartbeats".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(every);
                    for node in beats.expired(Instant::now()) {
                        // It may have beaten since it was found silent.
                        if !beats.is_watched(&node) {
                            mark_down(&store, &node, beats.ttl);
                        }
                    }
                }
            })
    }
}

fn mark_down(store: &Store, node: &str, ttl: Duration) {
    // A node already down (or gone) needs nothing.
    let ready = store
        .snapshot()
        .node(node)
        .is_some_and(|n| n.status != NodeStatus::Down);
    if !ready {
        return;
    }
    let description = format!("missed its heartbeat: nothing for {} ms", ttl.as_millis());
    tracing::warn!("node {node} {description}; marking it down");
    let change = NodeChange::Status {
        status: NodeStatus::Down,
        description,
    };
    if let Err(e) = store.apply(Op::UpdateNode {
        node_id: node.to_owned(),
        change,
    }) {
        tracing::error!("node {node}: cannot mark it down: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_expires_once_its_ttl_passes_without_a_beat() {
        let h = Heartbeats::new(Duration::from_secs(10), Duration::from_secs(30));
        let t0 = Instant::now();
        h.beat("a", t0);
        h.beat("b", t0);
        h.beat("b", t0 + Duration::from_secs(8));
        assert!(h.expired(t0 + Duration::from_secs(9)).is_empty());
        assert_eq!(h.expired(t0 + Duration::from_secs(10)), ["a"]);
        assert!(h.expired(t0 + Duration::from_secs(11)).is_empty(), "once");
        assert_eq!(h.expired(t0 + Duration::from_secs(18)), ["b"]);
        assert_eq!(h.watched(), 0);
    }

    #[test]
    fn after_a_restart_nodes_get_the_grace_period_too() {
        let h = Heartbeats::new(Duration::from_secs(10), Duration::from_secs(30));
        let t0 = Instant::now();
        h.start_grace(["a".to_owned()], t0);
        assert!(h.expired(t0 + Duration::from_secs(39)).is_empty());
        assert_eq!(h.expired(t0 + Duration::from_secs(40)), ["a"]);
    }
}
