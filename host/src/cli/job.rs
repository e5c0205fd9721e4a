//! `orch job …` (placeholder).

use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum JobCommand {}

pub fn run(cmd: JobCommand) -> anyhow::Result<ExitCode> {
    match cmd {}
}
