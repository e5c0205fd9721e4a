//! orch-plugin-runtime's integration tests, one binary (each test binary
//! links wasmtime): the WIT packages, the runtime against the embedded
//! built-in components, and the exec and oci drivers running in it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests may"
)]

mod driver;
mod oci_driver;
mod runtime;
mod wit;
