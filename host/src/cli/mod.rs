//! The client commands: they talk to `orch server` over HTTP.

pub mod alloc;
pub mod eval;
pub mod job;
pub mod node;
