//! `orch server` (placeholder).

use std::process::ExitCode;

#[derive(clap::Args)]
pub struct ServerArgs {}

pub fn run(args: ServerArgs) -> anyhow::Result<ExitCode> {
    let _ = args;
    Ok(ExitCode::SUCCESS)
}
