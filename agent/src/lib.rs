//! The `orch` node agent.
//!
//! The agent dials out to the control plane ([`Agent`]: register, heartbeat
//! at the server's TTL, long-poll for its allocations, report their status),
//! and runs their tasks through driver plugins (WebAssembly components), one
//! allocation runner per allocation with the group's restart policy, keeping
//! a record of each so that an agent restart re-attaches running tasks
//! instead of starting them again. Drivers touch the node only through the host capabilities
//! this crate implements ([`NodeHost`], the runtime's `DriverHost`): spawn
//! and supervise a process (one [`shim_main`] supervisor per task, so tasks
//! survive an agent restart), fetch artifacts, and log. Everything lives in
//! the on-disk layout of [`alloc_dir`] and friends, which the log API
//! ([`read_log`]) reads back.

mod agent;
mod config;
mod dirs;
mod fingerprint;
mod host;
mod http;
mod record;
mod report;
mod restart;
mod runner;

pub use agent::{Agent, AgentConfig, AgentError};
pub use config::{
    AgentFile, DriverConfig, DriverFile, LogSettings, drivers as driver_configs,
    read_file as read_agent_file,
};

pub use dirs::{
    LogStream, TaskDirs, alloc_dir, artifact_cache_dir, check_name, create_task_dirs, local_dir,
    log_file, logs_dir, secrets_dir, shim_dir, task_dir,
};
pub use host::{
    CgroupSupport, ContainerSettings, HostConfig, HostError, LogChunk, LogCursor, NodeHost,
    RegistryAuth, ShimCommand, read_log, shim_main,
};
