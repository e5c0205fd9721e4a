//! End to end through the `orch` binary, one test binary (each links
//! wasmtime): real `orch server`, `orch agent` and `orch dev` processes on
//! loopback, the CLI as a user runs it, containers on the Docker engine,
//! plugins through a real registry, the Python example scorer, and
//! `/v1/metrics` read by a Prometheus text parser.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests may"
)]

mod agent;
mod cli;
mod cli_client;
mod common;
mod e2e;
mod metrics;
mod oci;
mod plugin_registry;
mod python_example;
mod scheduler_ab;
mod why_not;
