//! `orch alloc …` (placeholder).

use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum AllocCommand {}

pub fn run(cmd: AllocCommand) -> anyhow::Result<ExitCode> {
    match cmd {}
}
