//! Real parts for orch's tests and benchmarks, shared so that each exists
//! once:
//!
//! - a container registry (Debian's `docker-registry`) on 127.0.0.1 and
//!   images built `FROM scratch` ([`Registry`], [`build_image`],
//!   [`push_busybox`]);
//! - [`FakeAgent`], the log-serving side of an agent, for the server's log
//!   relay without a real agent.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "test support: a failure here is a failed test, said where it happened"
)]

mod fake_agent;
mod registry;

pub use fake_agent::{CHUNK as FAKE_AGENT_CHUNK, FakeAgent, Log as FakeLog};
pub use registry::{
    LOCAL_BUSYBOX, Registry, build_image, docker, docker_available, free_port, push_busybox,
};
