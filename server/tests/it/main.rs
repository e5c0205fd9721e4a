//! orch-server's integration tests, one binary (each test binary links
//! wasmtime): the store on real SQLite files, the scheduler through the
//! store and the plan applier, the HTTP API over real HTTP, and `orch.toml`
//! with real scorer components.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests may"
)]

mod api;
mod config;
mod lineup;
mod scheduler;
mod store;
