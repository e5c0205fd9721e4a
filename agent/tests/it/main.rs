//! orch-agent's integration tests, one binary (each test binary links
//! wasmtime): the host capabilities against real processes, files, cgroups
//! and an artifact server, and the containers capability against the real
//! Docker engine and a registry on 127.0.0.1.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests may"
)]

mod containers;
mod host;
