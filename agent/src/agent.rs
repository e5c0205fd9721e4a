//! The agent: loads its drivers, picks up the allocations it ran before a
//! restart, registers its node, heartbeats at the TTL the server hands
//! out, long-polls for its allocations and runs them.

use crate::config::{DriverConfig, LogSettings};
use crate::fingerprint;
use crate::host::{HostConfig, NodeHost, ShimCommand};
use crate::record::Records;
use crate::report::Reporter;
use crate::runner::{AllocRunner, RunContext};
use orch_model::{Allocation, ClientStatus, DesiredStatus, DriverInfo, Job, Node, Resources};
use orch_plugin_runtime::{DriverHost, DriverPlugin, Limits, Runtime, RuntimeConfig};
use orch_wire::{Client, ClientOptions};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Everything `orch agent` (or `orch dev`) starts an agent with.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The server's HTTP address.
    pub server: String,
    pub data_dir: PathBuf,
    /// Node name; the hostname when `None`.
    pub name: Option<String>,
    pub datacenter: String,
    pub node_class: String,
    pub meta: BTreeMap<String, String>,
    /// What the OS and the agent keep back from the machine.
    pub reserved: Resources,
    /// Where task logs are served (to the server, which proxies them).
    pub listen: SocketAddr,
    /// The address the server should use for `listen`, when it differs
    /// (NAT, a wildcard listen address).
    pub advertise: Option<String>,
    pub drivers: Vec<DriverConfig>,
    /// How tasks are supervised: the `orch` binary's `shim` command.
    pub shim: ShimCommand,
    pub logs: LogSettings,
    /// The containers capability: engine, the operator's policy, registry
    /// credentials.
    pub containers: crate::host::ContainerSettings,
}

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("agent data dir {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("driver {name} ({plugin}): {detail}")]
    Driver {
        name: String,
        plugin: String,
        detail: String,
    },
    #[error("{0}")]
    Other(String),
}

/// A running agent.
pub struct Agent {
    node_id: String,
    http_addr: String,
    runners: Arc<Mutex<HashMap<String, AllocRunner>>>,
    /// Set (under the runners' lock) when the agent stops its tasks: no
    /// new allocation starts after that.
    closing: Arc<std::sync::atomic::AtomicBool>,
    /// Set once the server has taken the node's registration.
    registered: Arc<(Mutex<bool>, std::sync::Condvar)>,
}

impl Agent {
    /// Waits up to `timeout` for the server to take the node's first
    /// registration (the heartbeat thread makes it); whether it did. Until
    /// then the node is not schedulable, so `orch dev` waits before saying
    /// the agent runs.
    pub fn wait_registered(&self, timeout: Duration) -> bool {
        let (flag, changed) = &*self.registered;
        let guard = flag.lock().unwrap_or_else(|p| p.into_inner());
        match changed.wait_timeout_while(guard, timeout, |done| !*done) {
            Ok((done, _)) => *done,
            Err(p) => *p.into_inner().0,
        }
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Where the agent serves task logs.
    pub fn http_addr(&self) -> &str {
        &self.http_addr
    }

    /// Stops every task the agent runs (`orch dev` at exit: its data dir
    /// goes away) and waits up to `timeout` for them to end.
    pub fn stop_all(&self, timeout: Duration) {
        let deadline = std::time::Instant::now() + timeout;
        let runners = self.runners.lock().unwrap_or_else(|p| p.into_inner());
        self.closing
            .store(true, std::sync::atomic::Ordering::SeqCst);
        for runner in runners.values() {
            runner.stop("The agent is shutting down");
        }
        while runners.values().any(|r| !r.finished()) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the agent's threads; they run until the process exits. Tasks
    /// outlive the agent (they are re-attached by the next one).
    pub fn start(config: AgentConfig) -> Result<Agent, AgentError> {
        let data_dir = &config.data_dir;
        let io = |source| AgentError::DataDir {
            path: data_dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(data_dir).map_err(io)?;
        let node_id = node_identity(data_dir).map_err(io)?;
        let host = Arc::new(
            NodeHost::with_containers(
                HostConfig {
                    data_dir: data_dir.clone(),
                    shim: config.shim.clone(),
                    log_max_bytes: config.logs.max_bytes,
                    log_max_files: config.logs.max_files,
                    artifact_max_bytes: 1 << 30,
                },
                &node_id,
                config.containers.clone(),
            )
            .map_err(|e| AgentError::Other(format!("setting up the node's host: {e}")))?,
        );
        let runtime = Runtime::new(RuntimeConfig {
            cache_dir: Some(data_dir.join("cache").join("plugins")),
            ..RuntimeConfig::default()
        })
        .map_err(|e| AgentError::Other(e.to_string()))?;
        let (drivers, driver_infos) =
            load_drivers(&runtime, &config.drivers, &host, &config.containers)?;

        let records = Records::open(data_dir).map_err(io)?;
        let reporter = Arc::new(Reporter::default());
        let ctx = Arc::new(RunContext {
            drivers,
            host: Arc::clone(&host),
            records: records.clone(),
            reporter: Arc::clone(&reporter),
        });

        let http_addr = crate::http::serve(config.listen, data_dir.clone())
            .map_err(|e| AgentError::Other(format!("serving logs on {}: {e}", config.listen)))?;
        let advertised = config
            .advertise
            .clone()
            .unwrap_or_else(|| format!("http://{http_addr}"));

        // Pick up what ran before a restart before anything else: its tasks
        // are re-attached, never started twice.
        let runners: Arc<Mutex<HashMap<String, AllocRunner>>> = Arc::default();
        {
            let mut map = runners.lock().unwrap_or_else(|p| p.into_inner());
            for record in records.load_all() {
                let id = record.alloc.id.clone();
                tracing::info!(alloc = %id, "recovering allocation");
                map.insert(id, AllocRunner::recover(Arc::clone(&ctx), record));
            }
        }

        let machine = fingerprint::machine(data_dir);
        let mut attributes = machine.attributes;
        attributes.insert("unique.cgroups".into(), host.cgroups().to_string());
        for (name, info) in &driver_infos {
            attributes.insert(format!("driver.{name}"), u8::from(info.healthy).to_string());
            for (k, v) in &info.attributes {
                attributes.insert(format!("driver.{name}.{k}"), v.clone());
            }
        }
        let node = Node {
            id: node_id.clone(),
            name: config.name.clone().unwrap_or(machine.hostname),
            datacenter: config.datacenter.clone(),
            node_class: config.node_class.clone(),
            attributes,
            meta: config.meta.clone(),
            resources: machine.resources,
            reserved: config.reserved,
            drivers: driver_infos,
            http_addr: advertised.clone(),
            status: Default::default(),
            status_description: String::new(),
            eligibility: Default::default(),
            drain: false,
            create_index: 0,
            modify_index: 0,
        };
        let client = Client::new(&config.server, ClientOptions::agent()).map_err(|e| {
            AgentError::Other(format!(
                "the server address {:?}: {e}; give --server http://HOST:PORT",
                config.server
            ))
        })?;
        reporter
            .spawn(client.clone())
            .map_err(|e| AgentError::Other(format!("starting the reporter: {e}")))?;
        let closing = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let watch = Watcher {
            closing: Arc::clone(&closing),
            client: client.clone(),
            node_id: node_id.clone(),
            ctx,
            runners: Arc::clone(&runners),
            jobs: HashMap::new(),
        };
        let registered: Arc<(Mutex<bool>, std::sync::Condvar)> = Arc::default();
        let told = Arc::clone(&registered);
        std::thread::Builder::new()
            .name("orch-agent-heartbeat".into())
            .spawn(move || heartbeat_forever(&client, &node, &told))
            .map_err(|e| AgentError::Other(format!("starting the heartbeat: {e}")))?;
        std::thread::Builder::new()
            .name("orch-agent-watch".into())
            .spawn(move || watch.run())
            .map_err(|e| AgentError::Other(format!("starting the watcher: {e}")))?;
        Ok(Agent {
            node_id,
            http_addr: advertised,
            runners,
            closing,
            registered,
        })
    }
}

/// The node's id, made at first start and kept in the data dir.
fn node_identity(data_dir: &std::path::Path) -> std::io::Result<String> {
    let path = data_dir.join("node-id");
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => Ok(id.trim().to_owned()),
        // Unreadable is not "new": a new identity would orphan the tasks
        // recorded under the old one.
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        Ok(_) | Err(_) => {
            let id = uuid::Uuid::new_v4().to_string();
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, &id)?;
            std::fs::rename(&tmp, &path)?;
            Ok(id)
        }
    }
}

type LoadedDrivers = (BTreeMap<String, DriverPlugin>, BTreeMap<String, DriverInfo>);

fn load_drivers(
    runtime: &Runtime,
    configs: &[DriverConfig],
    host: &Arc<NodeHost>,
    containers: &crate::host::ContainerSettings,
) -> Result<LoadedDrivers, AgentError> {
    let mut drivers = BTreeMap::new();
    let mut infos = BTreeMap::new();
    for config in configs {
        let fail = |detail: String| AgentError::Driver {
            name: config.name.clone(),
            plugin: config.plugin.clone(),
            detail,
        };
        // The runtime's defaults; the ceiling they set is stated in
        // config.rs's docs.
        let limits = Limits::default();
        let component = match config.plugin.strip_prefix("builtin:") {
            Some(name) => {
                let builtin = orch_builtins::get(name)
                    .filter(|b| b.kind == "driver")
                    .ok_or_else(|| {
                        let known: Vec<&str> = orch_builtins::BUILTINS
                            .iter()
                            .filter(|b| b.kind == "driver")
                            .map(|b| b.name)
                            .collect();
                        fail(format!(
                            "no built-in driver {name:?} (built-in drivers: {})",
                            known.join(", ")
                        ))
                    })?;
                runtime.load(&config.plugin, builtin.wasm, &limits)
            }
            // A driver from an OCI registry. Only a pinned reference: a
            // tag would be read through the lock file beside agent.toml,
            // whose path this function is not given.
            None if config.plugin.starts_with("oci://") => {
                let reference = orch_registry::Reference::parse(&config.plugin)
                    .map_err(|e| fail(e.to_string()))?;
                if reference.digest().is_none() {
                    return Err(fail(format!(
                        "an agent loads registry plugins pinned by digest; run `orch plugin add {reference}` and use the reference it prints (…@sha256:…)"
                    )));
                }
                let store = orch_registry::default_store_dir().ok_or_else(|| {
                    fail("no plugin store: set $ORCH_PLUGIN_STORE or $HOME".to_owned())
                })?;
                // Registry credentials: agent.toml's [containers.auth] (the
                // node's registry credentials, for images and plugins alike),
                // else the Docker config file's, else none.
                let mut resolver = orch_registry::Resolver::new(
                    orch_registry::Store::new(store),
                    std::path::PathBuf::new(),
                );
                if let Some(auth) = containers.auth.get(reference.registry()) {
                    let source = format!(
                        "[containers.auth.\"{}\"] in agent.toml",
                        reference.registry()
                    );
                    let password = auth.password(&source).map_err(fail)?;
                    resolver = resolver.with_credentials(
                        reference.registry(),
                        orch_registry::Credentials::new(auth.username.clone(), password),
                        orch_registry::CredentialSource::Config(source),
                    );
                }
                let resolved = resolver
                    .resolve(&reference)
                    .map_err(|e| fail(e.to_string()))?;
                if resolved.pulled {
                    tracing::info!(
                        driver = %config.name,
                        "pulled {} ({})",
                        resolved.reference,
                        resolved.component_digest
                    );
                }
                runtime.load(&config.plugin, &resolved.bytes, &limits)
            }
            None => runtime.load_file(std::path::Path::new(&config.plugin), &limits),
        }
        .map_err(|e| fail(e.to_string()))?;
        let shared: Arc<dyn DriverHost> = Arc::clone(host) as Arc<dyn DriverHost>;
        let mut driver = runtime
            .driver(&component, config.grants, limits, shared)
            .map_err(|e| fail(e.to_string()))?;
        if let Some(timeout) = config.start_timeout {
            driver = driver.with_start_allowance(timeout);
        }
        let fingerprint = driver.fingerprint().map_err(|e| fail(e.to_string()))?;
        infos.insert(
            config.name.clone(),
            DriverInfo {
                detected: true,
                healthy: fingerprint.healthy,
                health_description: fingerprint.health_description.clone(),
                attributes: fingerprint.attributes.iter().cloned().collect(),
            },
        );
        drivers.insert(config.name.clone(), driver);
    }
    Ok((drivers, infos))
}

/// Registers, then heartbeats at a third of the TTL; a server that forgot
/// the node (404) gets it registered again; a server that is away is
/// retried every second.
fn heartbeat_forever(client: &Client, node: &Node, told: &(Mutex<bool>, std::sync::Condvar)) {
    let mut registered = false;
    let mut ttl = Duration::from_secs(10);
    loop {
        let answer = if registered {
            client.heartbeat(&node.id)
        } else {
            client.register_node(node)
        };
        match answer {
            Ok(alive) => {
                if !registered {
                    tracing::info!(node = %node.id, server = client.address(), "registered");
                    let (flag, changed) = told;
                    *flag.lock().unwrap_or_else(|p| p.into_inner()) = true;
                    changed.notify_all();
                }
                registered = true;
                ttl = Duration::from_millis(alive.heartbeat_ttl_ms.max(300));
                std::thread::sleep(ttl / 3);
            }
            Err(e) if e.is_not_found() => {
                if !registered {
                    tracing::error!(
                        "{e}: is {} the orch server's API address?",
                        client.address()
                    );
                    std::thread::sleep(Duration::from_secs(1));
                }
                // A server that lost the node: register it again.
                registered = false;
            }
            Err(e) => {
                tracing::warn!("heartbeat: {e}");
                std::thread::sleep(Duration::from_secs(1).min(ttl / 3));
            }
        }
    }
}

struct Watcher {
    closing: Arc<std::sync::atomic::AtomicBool>,
    client: Client,
    node_id: String,
    ctx: Arc<RunContext>,
    runners: Arc<Mutex<HashMap<String, AllocRunner>>>,
    jobs: HashMap<(String, u64), Job>,
}

/// How long one long-poll waits for a change.
const POLL_WAIT: Duration = Duration::from_secs(30);

impl Watcher {
    fn run(mut self) {
        let mut index = 0;
        let mut backoff = Duration::from_millis(200);
        loop {
            match self
                .client
                .node_allocations(&self.node_id, index, POLL_WAIT)
            {
                Ok((allocs, at)) => {
                    backoff = Duration::from_millis(200);
                    let retry = self.reconcile(allocs);
                    // Something failed to start: look again soon even if
                    // nothing changes on the server.
                    index = if retry { 0 } else { at };
                    if retry {
                        std::thread::sleep(Duration::from_secs(1));
                    }
                }
                Err(e) => {
                    if !e.is_not_found() {
                        tracing::warn!("watching allocations: {e}");
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Starts what the server wants here and stops what it no longer
    /// wants; `true` if something could not be started yet.
    fn reconcile(&mut self, allocs: Vec<Allocation>) -> bool {
        let mut retry = false;
        let mut seen = std::collections::HashSet::new();
        let mut wanted_versions = std::collections::HashSet::new();
        for alloc in allocs {
            if alloc.node_id != self.node_id {
                continue;
            }
            seen.insert(alloc.id.clone());
            if alloc.desired_status == DesiredStatus::Run {
                wanted_versions.insert((alloc.job_id.clone(), alloc.job_version));
            }
            let wanted =
                alloc.desired_status == DesiredStatus::Run && !alloc.client_status.is_terminal();
            let mut runners = self.runners.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(runner) = runners.get(&alloc.id) {
                if !wanted {
                    runner.stop(&stop_reason(&alloc));
                }
                if runner.finished() && !alloc.client_status.is_terminal() {
                    runner.report_again();
                }
                // Done, and the server has the final word: forget it.
                if runner.finished() && alloc.client_status.is_terminal() {
                    runners.remove(&alloc.id);
                    if let Err(e) = self.ctx.records.remove(&alloc.id) {
                        tracing::warn!(alloc = %alloc.id, "cannot remove its record: {e}");
                    }
                }
                continue;
            }
            if !wanted {
                continue;
            }
            drop(runners);
            let key = (alloc.job_id.clone(), alloc.job_version);
            let job = match self.jobs.get(&key) {
                Some(job) => job.clone(),
                None => match self.client.job_version(&alloc.job_id, alloc.job_version) {
                    Ok(job) => {
                        self.jobs.insert(key, job.clone());
                        job
                    }
                    Err(e) => {
                        tracing::warn!(alloc = %alloc.id, "cannot fetch its job: {e}");
                        retry = true;
                        continue;
                    }
                },
            };
            let mut runners = self.runners.lock().unwrap_or_else(|p| p.into_inner());
            if self.closing.load(std::sync::atomic::Ordering::SeqCst) {
                continue;
            }
            tracing::info!(alloc = %alloc.id, name = %alloc.name, "starting allocation");
            let id = alloc.id.clone();
            runners.insert(id, AllocRunner::start(Arc::clone(&self.ctx), alloc, job));
        }
        // Job versions no allocation here runs any more are forgotten.
        let versions: std::collections::HashSet<(String, u64)> = wanted_versions;
        self.jobs.retain(|k, _| versions.contains(k));
        let mut runners = self.runners.lock().unwrap_or_else(|p| p.into_inner());
        runners.retain(|id, runner| {
            if seen.contains(id) {
                return true;
            }
            runner.stop("The allocation is no longer on the server");
            if runner.finished() {
                let _ = self.ctx.records.remove(id);
                return false;
            }
            true
        });
        retry
    }
}

fn stop_reason(alloc: &Allocation) -> String {
    if alloc.client_status == ClientStatus::Lost {
        return "The server marked the allocation lost (its node missed heartbeats)".into();
    }
    match alloc.desired_description.as_str() {
        "" => "The server stopped the allocation".into(),
        d => format!("The server stopped the allocation: {d}"),
    }
}
