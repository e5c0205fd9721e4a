//! `orch node …` (placeholder).

use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum NodeCommand {}

pub fn run(cmd: NodeCommand) -> anyhow::Result<ExitCode> {
    match cmd {}
}
