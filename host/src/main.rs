//! `orch`: the one binary. `orch server` runs the control plane; `job`,
//! `node`, `eval` and `alloc` talk to it over HTTP (`--address` or
//! `ORCH_ADDR`); `plugin` and `bench` work on plugins locally.

mod bench;
mod bench_heartbeats;
mod bench_placements;
mod bench_running;
mod cli;
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
    /// Run the control plane: state, evaluations, scheduler and HTTP API.
    Server(orch::server::ServerArgs),
    /// Run a node agent: registers this machine with a server and runs the
    /// allocations placed on it.
    Agent(orch::agent::AgentArgs),
    /// Run a control plane and an agent in one process, on a temporary
    /// data dir, with the built-in plugins: jobs run on this machine now.
    Dev(orch::agent::DevArgs),
    /// The per-task supervisor the agent starts (not for people).
    #[command(hide = true)]
    Shim {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
    /// Run, plan, inspect and stop jobs.
    #[command(subcommand)]
    Job(cli::job::JobCommand),
    /// Inspect nodes.
    #[command(subcommand)]
    Node(cli::node::NodeCommand),
    /// Inspect evaluations: why placement failed.
    #[command(subcommand)]
    Eval(cli::eval::EvalCommand),
    /// Inspect allocations and the decisions that placed them.
    #[command(subcommand)]
    Alloc(cli::alloc::AllocCommand),
    /// Test, inspect and list plugins.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Measure performance against native baselines.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Server(args) => orch::server::run(args),
        Command::Agent(args) => orch::agent::run(args),
        Command::Dev(args) => orch::agent::dev(args),
        Command::Shim { args } => {
            let code = orch_agent::shim_main(args);
            return ExitCode::from(u8::try_from(code).unwrap_or(1));
        }
        Command::Job(cmd) => cli::job::run(cmd),
        Command::Node(cmd) => cli::node::run(cmd),
        Command::Eval(cmd) => cli::eval::run(cmd),
        Command::Alloc(cmd) => cli::alloc::run(cmd),
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

/// The command could not do its work (bad input, unreadable file, server
/// unreachable); distinct from 1, which a check command uses for "ran, and
/// the answer is no".
pub const EXIT_ERROR: u8 = 2;
