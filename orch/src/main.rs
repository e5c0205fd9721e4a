//! `orch`: the one binary. It parses the command line (orch-cli) and hands
//! each command to the code that runs it: `server` the control plane
//! (orch-server), `agent` the node agent (orch-agent), `dev` both in one
//! process, `shim` the per-task supervisor; `job`, `node`, `eval` and
//! `alloc` talk to a server over HTTP; `plugin` works on plugins locally
//! and with OCI registries.

use clap::Parser;
use orch_cli::{Cli, Command, EXIT_ERROR};
use std::process::ExitCode;

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Server(args) => args.run(),
        Command::Agent(args) => orch_cli::agent::run(args),
        Command::Dev(args) => orch_cli::agent::dev(args),
        Command::Shim { args } => {
            let code = orch_agent::shim_main(args);
            return ExitCode::from(u8::try_from(code).unwrap_or(1));
        }
        Command::Job(cmd) => orch_cli::job::run(cmd),
        Command::Node(cmd) => orch_cli::node::run(cmd),
        Command::Eval(cmd) => orch_cli::eval::run(cmd),
        Command::Alloc(cmd) => orch_cli::alloc::run(cmd),
        Command::Plugin(cmd) => orch_cli::plugin::run(cmd),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}
