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
        Command::Agent(args) => args.run(),
        Command::Dev(args) => args.run(),
        Command::Shim { args } => {
            let code = orch_agent::shim_main(args);
            return ExitCode::from(u8::try_from(code).unwrap_or(1));
        }
        Command::Job(cmd) => cmd.run(),
        Command::Node(cmd) => cmd.run(),
        Command::Eval(cmd) => cmd.run(),
        Command::Alloc(cmd) => cmd.run(),
        Command::Plugin(cmd) => cmd.run(),
        Command::Scheduler(cmd) => cmd.run(),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}
