//! `orch`: the one binary. Today it tests, inspects and benchmarks plugins;
//! the control plane (`orch server`), the agent and `orch dev` join it as
//! their issues land.

mod bench;
mod plugin;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "orch",
    version,
    about = "A workload orchestrator whose policy is pluggable as sandboxed WebAssembly components"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Test, inspect and list plugins.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Measure plugin performance against native baselines.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Plugin(cmd) => plugin::run(cmd),
        Command::Bench(cmd) => bench::run(cmd),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// The command could not do its work (bad input, unreadable file); distinct
/// from 1, which a check command uses for "ran, and the answer is no".
pub const EXIT_ERROR: u8 = 2;
