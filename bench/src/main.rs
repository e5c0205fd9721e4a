//! `orch-bench`: cluster benchmarks of orch, outside the product binary.
//!
//! - `placements`: placements per second end to end on simulated clusters
//!   (store, broker, workers, plan applier, SQLite), the binpack component
//!   and the same crate native in the same run.
//! - `heartbeats`: how many simulated agents one `orch server` process keeps
//!   alive at their TTL, at what CPU, with no false node-down.
//! - `submit-to-running`: submit-to-running latency of a trivial task on a
//!   real server and agent (`orch` processes).
//!
//! What a plugin author needs stays in the product: `orch plugin bench`.
//! Build both binaries with `cargo build --release -p orch -p orch-bench`;
//! the benchmarks that start processes run the `orch` beside this binary
//! (or `$ORCH_BIN`).

mod heartbeats;
mod placements;
mod submit_to_running;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use orch_wire::{Client, ClientOptions};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "orch-bench", about = "Cluster benchmarks of orch")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Placements per second end to end (store, broker, workers, plan
    /// applier, SQLite commit) at 1,000, 5,000 and 10,000 simulated nodes,
    /// with the binpack component and natively in the same run.
    Placements(placements::PlacementArgs),
    /// How many simulated agents one `orch server` (its own process) keeps
    /// alive at their TTL, at what CPU, and whether any node is marked down
    /// while its agent beats on time.
    Heartbeats(heartbeats::HeartbeatArgs),
    /// Submit-to-running latency of a trivial exec task on a local agent
    /// (a real server and agent, as processes): p50 and p99.
    SubmitToRunning(submit_to_running::RunningArgs),
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Placements(args) => placements::run(args),
        Command::Heartbeats(args) => heartbeats::run(args),
        Command::SubmitToRunning(args) => submit_to_running::run(args).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// The `orch` binary the process benchmarks start: `$ORCH_BIN`, else the
/// one built beside this program.
fn orch_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("ORCH_BIN") {
        return Ok(PathBuf::from(path));
    }
    let me = std::env::current_exe().context("cannot find this program")?;
    let orch = me.with_file_name("orch");
    anyhow::ensure!(
        orch.exists(),
        "no orch binary at {}; build it (`cargo build --release -p orch -p orch-bench`) or set ORCH_BIN",
        orch.display()
    );
    Ok(orch)
}

/// A client of the server under test, over orch-wire's one client. Each
/// has its own connection pool (clones share theirs), so a thread that
/// makes its own keeps one keep-alive connection, as an agent does. The
/// timeouts are an agent's, but longer, so a loaded server shows as slow
/// beats rather than as errors; and a whole cluster's node list runs to
/// hundreds of MiB.
fn client(addr: &str) -> Result<Client> {
    let options = ClientOptions {
        user_agent: concat!("orch-bench/", env!("CARGO_PKG_VERSION")),
        connect_timeout: Duration::from_secs(5),
        timeout: Duration::from_secs(60),
        body_limit: 1 << 30,
        unreachable_hint: "",
    };
    Ok(Client::new(addr, options)?)
}
