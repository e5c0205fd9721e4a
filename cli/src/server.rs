//! `orch server`: the control plane (orch-server) as a command.

use anyhow::Result;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct ServerArgs {
    /// The config file (`orch.toml`); without one, every default applies.
    /// Reloaded when it changes and on SIGHUP.
    #[arg(long, short = 'c', env = "ORCH_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where the state database lives (overrides the config's `data_dir`).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Address the HTTP API listens on (overrides the config's `listen`);
    /// port 0 picks a free port, printed at start.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
}

impl ServerArgs {
    pub fn run(self) -> Result<ExitCode> {
        crate::init_logging();
        orch_server::run(self.into(), Box::new(|_| Ok(())))?;
        Ok(ExitCode::SUCCESS)
    }
}

impl From<ServerArgs> for orch_server::ServerOptions {
    fn from(args: ServerArgs) -> Self {
        Self {
            config: args.config,
            data_dir: args.data_dir,
            listen: args.listen,
        }
    }
}
