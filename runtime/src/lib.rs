//! The sandboxed plugin runtime of `orch`, shared by the control plane and
//! the agent.
//!
//! Everything that is policy in `orch` is a WebAssembly component: scheduler
//! scorers and task drivers today, secret providers later. This
//! crate is the one place that loads them. Each plugin kind follows the same
//! lifecycle:
//!
//! 1. **load**: read the bytes, hash them (sha256), compile once; compiled
//!    code is cached by digest in memory and on disk ([`Runtime::load`]);
//! 2. **validate**: check the component exports its world at the version
//!    this host speaks and imports nothing beyond WASI 0.2 and what the world
//!    allows ([`Runtime::scorer`]; for a driver, only the capabilities it
//!    was granted: [`Runtime::driver`]);
//! 3. **instantiate with limits**: every call runs on an instance (warm
//!    from an earlier call, or new) in a store with a memory cap, a share of
//!    the plugin's total memory budget, a deadline (epoch interruption for
//!    wasm code; every wait in the host ends at it too), optional fuel and a
//!    wasm stack cap; WASI is linked but grants nothing;
//! 4. **call** and **check**: output is validated, never trusted; a trap, a
//!    timeout or a limit hit is a [`PluginError`] naming the plugin and its
//!    digest, and the instance is thrown away.
//!
//! The server (scheduler workers), the agent (task drivers, through
//! [`Runtime::driver`] and its [`DriverHost`]) and `orch plugin test` (the
//! conformance suite) are the callers.

mod breaker;
mod cache;
mod deadline;
mod driver;
mod driver_host;
mod error;
mod inspect;
mod limits;
mod runtime;
mod sandbox;
mod scheduler;

pub use driver::{
    ConfigProblem, DRIVER_WORLD, DriverCallError, DriverFingerprint, DriverInfo, DriverPlugin,
    TaskHandle, TaskRunState, TaskStart, TaskStats,
};
pub use driver_host::{
    CapabilityError, ContainerSpec, DriverHost, EngineInfo, ExitStatus, FetchSpec, Grants,
    LogLevel, Mount, PortMapping, ProcessHandle, ProcessLimits, SpawnSpec, TaskRef, UsageStats,
};
pub use error::{MemoryScope, OutputProblem, PluginError};
pub use inspect::{Inspection, WorldKind};
pub use limits::Limits;
pub use orch_model::Digest;
pub use runtime::{CallStats, Component, Runtime, RuntimeConfig};
pub use scheduler::{
    Node, NodeColumns, Resources, SCORER_WORLD, ScoreRequest, ScoreResponse, Scored, ScorerInfo,
    ScorerPlugin, validate_response,
};
