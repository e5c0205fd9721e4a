//! The client commands: they talk to `orch server` over HTTP.
//!
//! Each command module holds its clap definitions, a thin `run` that makes
//! the requests, and pure view functions (model values and "now" in, text
//! out) that the snapshot tests under `host/tests/snapshots/cli-*.txt` pin.

pub mod alloc;
mod client;
pub mod eval;
mod format;
pub mod job;
pub mod node;
mod table;
