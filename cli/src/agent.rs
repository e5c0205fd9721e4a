//! `orch agent` and `orch dev`: the node agent (orch-agent) as a command,
//! and the agent with a control plane in one process.

use anyhow::{Context, Result};
use orch_agent::{AgentConfig, DriverConfig, LogSettings, ShimCommand};
use orch_model::Resources;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct AgentArgs {
    /// The agent's config file (`agent.toml`); flags override its keys.
    #[arg(long, short = 'c', env = "ORCH_AGENT_CONFIG")]
    pub config: Option<PathBuf>,
    /// The orch server to register with.
    #[arg(long, env = "ORCH_ADDR", value_name = "URL")]
    pub server: Option<String>,
    /// Where the agent keeps its identity, allocations and task logs.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Node name (default: the hostname).
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long)]
    pub datacenter: Option<String>,
    #[arg(long)]
    pub node_class: Option<String>,
    /// Where task logs are served to the server (default 127.0.0.1:0, a
    /// free port).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// The URL the server should use to reach `--listen`, e.g. behind NAT.
    #[arg(long)]
    pub advertise: Option<String>,
    /// Node metadata, `KEY=VALUE`, repeatable; read as `${meta.KEY}`.
    #[arg(long = "meta", value_parser = key_value)]
    pub meta: Vec<(String, String)>,
}

fn key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

/// The `orch` binary itself supervises tasks (`orch shim`).
fn shim() -> Result<ShimCommand> {
    Ok(ShimCommand {
        program: std::env::current_exe()
            .context("cannot find the orch binary to supervise tasks")?,
        args: vec!["shim".into()],
    })
}

fn agent_config(args: AgentArgs) -> Result<AgentConfig> {
    let file = match &args.config {
        Some(path) => Some(orch_agent::read_agent_file(path).map_err(anyhow::Error::msg)?),
        None => None,
    };
    let file_drivers = file.as_ref().map(|f| f.driver.clone()).unwrap_or_default();
    let mut drivers = orch_agent::driver_configs(&file_drivers).map_err(anyhow::Error::msg)?;
    // The built-in drivers are there unless the config names its own
    // driver of that name.
    for default in DriverConfig::defaults() {
        if !drivers.iter().any(|d| d.name == default.name) {
            drivers.push(default);
        }
    }
    let server = args
        .server
        .or_else(|| file.as_ref().and_then(|f| f.server.clone()))
        .context("no server to register with: give --server URL (or ORCH_ADDR, or server in the agent config)")?;
    let data_dir = args
        .data_dir
        .or_else(|| file.as_ref().and_then(|f| f.data_dir.clone()))
        .context("no data dir: give --data-dir DIR (or data_dir in the agent config)")?;
    let mut meta: BTreeMap<String, String> =
        file.as_ref().map(|f| f.meta.clone()).unwrap_or_default();
    meta.extend(args.meta);
    let reserved = file.as_ref().map(|f| f.reserved).unwrap_or_default();
    Ok(AgentConfig {
        server,
        data_dir,
        name: args
            .name
            .or_else(|| file.as_ref().and_then(|f| f.name.clone())),
        datacenter: args
            .datacenter
            .or_else(|| file.as_ref().and_then(|f| f.datacenter.clone()))
            .unwrap_or_else(|| "dc1".into()),
        node_class: args
            .node_class
            .or_else(|| file.as_ref().and_then(|f| f.node_class.clone()))
            .unwrap_or_default(),
        meta,
        reserved,
        listen: args
            .listen
            .or_else(|| file.as_ref().and_then(|f| f.listen))
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0))),
        advertise: args
            .advertise
            .or_else(|| file.as_ref().and_then(|f| f.advertise.clone())),
        drivers,
        shim: shim()?,
        logs: file.as_ref().and_then(|f| f.logs).unwrap_or_default(),
        containers: file.map(|f| f.containers).unwrap_or_default(),
    })
}

impl AgentArgs {
    pub fn run(self) -> Result<ExitCode> {
        crate::init_logging();
        let config = agent_config(self)?;
        let server = config.server.clone();
        let agent = orch_agent::Agent::start(config).map_err(|e| anyhow::anyhow!("{e}"))?;
        // Tests and scripts read this line.
        println!(
            "orch agent: node {} reports to {server}; task logs served on {}",
            agent.node_id(),
            agent.http_addr()
        );
        // The agent runs until it is killed; its tasks outlive it and are
        // re-attached by the next start.
        loop {
            std::thread::park();
        }
    }
}

#[derive(clap::Args)]
pub struct DevArgs {
    /// Address of the API (default 127.0.0.1:4646; port 0 picks one).
    #[arg(long, default_value = "127.0.0.1:4646")]
    pub listen: SocketAddr,
}

impl DevArgs {
    pub fn run(self) -> Result<ExitCode> {
        let dir = tempfile::Builder::new()
            .prefix("orch-dev-")
            .tempdir()
            .context("cannot make a temporary data dir")?;
        let server_dir = dir.path().join("server");
        let agent_dir = dir.path().join("agent");
        let shim = shim()?;
        let stopper: std::sync::Arc<std::sync::Mutex<Option<orch_agent::Agent>>> =
            Default::default();
        let started = std::sync::Arc::clone(&stopper);
        let on_listening: orch_server::OnListening = Box::new(move |addr| {
            let config = AgentConfig {
                server: format!("http://{addr}"),
                data_dir: agent_dir,
                name: None,
                datacenter: "dc1".into(),
                node_class: String::new(),
                meta: BTreeMap::new(),
                reserved: Resources::ZERO,
                listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                advertise: None,
                drivers: DriverConfig::defaults(),
                shim,
                logs: LogSettings::default(),
                // A dev machine publishes container ports on loopback only.
                containers: orch_agent::ContainerSettings {
                    port_bind_address: "127.0.0.1".into(),
                    ..Default::default()
                },
            };
            let agent = orch_agent::Agent::start(config).map_err(|e| e.to_string())?;
            // Jobs submitted before the node is registered would find no
            // node at all: say it runs once the server has it.
            if !agent.wait_registered(std::time::Duration::from_secs(30)) {
                eprintln!(
                    "orch dev: the agent has not registered its node after 30 s; jobs wait for it"
                );
            }
            println!(
                "orch dev: agent running as node {}; export ORCH_ADDR=http://{addr}",
                agent.node_id()
            );
            *started.lock().unwrap_or_else(|p| p.into_inner()) = Some(agent);
            Ok(())
        });
        let options = orch_server::ServerOptions {
            config: None,
            data_dir: Some(server_dir),
            listen: Some(self.listen),
        };
        crate::init_logging();
        let code = orch_server::run(options, on_listening)
            .map(|()| ExitCode::SUCCESS)
            .map_err(anyhow::Error::from);
        // A dev agent's tasks go with it: its data dir is about to be removed.
        if let Some(agent) = stopper.lock().unwrap_or_else(|p| p.into_inner()).take() {
            eprintln!("orch dev: stopping tasks");
            agent.stop_all(std::time::Duration::from_secs(10));
        }
        code
    }
}
