//! Real parts for orch's tests and benchmarks, shared so that each exists
//! once. A dev-dependency of the product's crates (and a dependency of
//! `orch-bench`, which is outside the product); it depends on orch-model
//! and orch-wire but never on orch-server, orch-cli or orch-agent, which
//! dev-depend on it. What the bench calls returns errors; what only tests
//! call (`logged`, `signal`, the snapshots) panics with what went wrong.
//!
//! - Processes ([`Process`]): `orch server` and `orch agent` as the
//!   end-to-end tests and `orch-bench` start them: up at their first line
//!   of stdout, stderr kept as a [`Log`] (echoed with a tag, or kept
//!   quietly), signalled, killed when dropped; what `/proc` says of a
//!   process ([`cpu_ticks`], [`clock_ticks`], [`resident`], [`pid_alive`]);
//!   the tasks a killed agent left ([`kill_agent_tasks`]).
//! - Simulated agents ([`SimAgent`]): a node's side of the API (register,
//!   heartbeat, its allocations, status reports) over orch-wire's client,
//!   for tests that need nodes without agents and for the heartbeat bench's
//!   thousands; the [`node`] they register; [`sim_node_id`] and
//!   [`sim_agent_index`], so a node id names its agent.
//! - Snapshots ([`assert_snapshot`], [`check_snapshot`]): what users see,
//!   compared with a file, rewritten under `ORCH_BLESS=1`.
//! - A container registry (Debian's `docker-registry`) on 127.0.0.1 and
//!   images built `FROM scratch` ([`Registry`], [`build_image`],
//!   [`push_busybox`]).
//! - [`FakeAgent`], the log-serving side of an agent, for the server's log
//!   relay without a real agent.
//! - [`parse_duration`]: how long a load generator measures, as the
//!   benchmarks' flags take it (`60`, `60s`, `2m`, `500ms`).
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "test support: a failure here is a failed test, said where it happened"
)]

mod agent_tasks;
mod fake_agent;
mod process;
mod registry;
mod sim_agent;
mod snapshot;
mod window;

pub use agent_tasks::kill_agent_tasks;
pub use fake_agent::{CHUNK as FAKE_AGENT_CHUNK, FakeAgent, Log as FakeLog};
pub use process::{
    Echo, Log, Process, Resident, StartError, clock_ticks, cpu_ticks, pid_alive, resident,
};
pub use registry::{
    LOCAL_BUSYBOX, Registry, build_image, docker, docker_available, free_port, push_busybox,
};
pub use sim_agent::{SimAgent, node, sim_agent_index, sim_node_id};
pub use snapshot::{SnapshotDiff, assert_snapshot, check_snapshot};
pub use window::parse_duration;
