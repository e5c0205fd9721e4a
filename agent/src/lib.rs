//! The `orch` node agent.
//!
//! The agent dials out to the control plane, learns which allocations it
//! runs, and runs their tasks through driver plugins (WebAssembly
//! components). Drivers touch the node only through the host capabilities
//! this crate implements ([`NodeHost`], the runtime's `DriverHost`): spawn
//! and supervise a process (one [`shim_main`] supervisor per task, so tasks
//! survive an agent restart), fetch artifacts, and log. Everything lives in
//! the on-disk layout of [`alloc_dir`] and friends, which the log API
//! ([`read_log`]) reads back.

mod dirs;
mod host;

pub use dirs::{
    LogStream, TaskDirs, alloc_dir, artifact_cache_dir, check_name, create_task_dirs, local_dir,
    log_file, logs_dir, secrets_dir, shim_dir, task_dir,
};
pub use host::{
    CgroupSupport, HostConfig, HostError, LogChunk, LogCursor, NodeHost, ShimCommand, read_log,
    shim_main,
};
