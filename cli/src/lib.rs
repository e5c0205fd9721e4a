//! The `orch` command line: every command's arguments (clap), what each
//! runs, and the views it prints.
//!
//! One module per command group (`job`, `node`, `eval`, `alloc`, `plugin`,
//! and `server`, `agent`, `dev`, which start long-running processes). As in
//! wasmtime's `src/commands`, each subcommand is an `Args` struct named after
//! it (`job::RunArgs`, `node::StatusArgs`) with its own `run`, so its flags
//! and what it does read together; a group's enum only dispatches. The
//! client commands talk to `orch server` over HTTP through [`client`]; their
//! views are pure functions (model values and "now" in, text out) pinned by
//! snapshot tests under `cli/tests/snapshots/`. The `orch` binary parses
//! [`Cli`] and calls `run` on what each [`Command`] holds.

pub mod agent;
pub mod alloc;
mod client;
pub mod eval;
mod format;
pub mod job;
pub mod node;
pub mod plugin;
pub mod scheduler;
pub mod server;
mod table;
mod why_not;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "orch",
    version,
    about = "A workload orchestrator whose policy is pluggable as sandboxed WebAssembly components"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the control plane: state, evaluations, scheduler and HTTP API.
    Server(server::ServerArgs),
    /// Run a node agent: registers this machine with a server and runs the
    /// allocations placed on it.
    Agent(agent::AgentArgs),
    /// Run a control plane and an agent in one process, on a temporary
    /// data dir, with the built-in plugins: jobs run on this machine now.
    Dev(agent::DevArgs),
    /// The per-task supervisor the agent starts (not for people).
    #[command(hide = true)]
    Shim {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
    /// Run, plan, inspect and stop jobs.
    #[command(subcommand)]
    Job(job::JobCommand),
    /// Inspect nodes.
    #[command(subcommand)]
    Node(node::NodeCommand),
    /// Inspect evaluations: why placement failed.
    #[command(subcommand)]
    Eval(eval::EvalCommand),
    /// Inspect allocations and the decisions that placed them.
    #[command(subcommand)]
    Alloc(alloc::AllocCommand),
    /// Test, inspect, benchmark, list and distribute plugins.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Try a new scheduler on the live cluster: the primary scorer, the
    /// candidates beside it in shadow or in split, compare, promote.
    #[command(subcommand)]
    Scheduler(scheduler::SchedulerCommand),
}

/// The command could not do its work (bad input, unreadable file, server
/// unreachable); distinct from 1, which a check command uses for "ran, and
/// the answer is no".
pub const EXIT_ERROR: u8 = 2;

/// Logs of the long-running commands (`server`, `agent`, `dev`) go to
/// stderr, filtered by `ORCH_LOG` (default `info`).
pub fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("ORCH_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}
