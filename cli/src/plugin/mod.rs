//! `orch plugin …`: the front door of the conformance suite and the runtime's
//! inspector, what a scorer costs (`bench`), and the way plugins travel
//! through OCI registries (`add`, `push`; see orch-registry).

mod bench;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use orch_conformance::{Options, test_component};
use orch_plugin_runtime::{Limits, Runtime, RuntimeConfig};
use orch_registry::{
    Auth, Client, CredentialSource, Credentials, LockEntry, LockFile, Progress, Reference, Store,
    default_store_dir,
};
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Subcommand)]
pub enum PluginCommand {
    /// Run the conformance suite of the plugin's world; exit 0 only if every
    /// check passes, 1 if any fails, 2 if the plugin could not be read.
    Test(TestArgs),
    /// Show a plugin's world, version, imports, exports, size and digest.
    Inspect(InspectArgs),
    /// Measure a scorer against the built-in binpack (or `--against`) and
    /// against its native build where orch has one, on the same requests.
    Bench(bench::BenchArgs),
    /// List the built-in plugins.
    List(ListArgs),
    /// Pull a plugin from an OCI registry, verify its digests, check it is a
    /// component of a world orch speaks, keep it in the plugin store and pin
    /// its digest in the lock file.
    Add(AddArgs),
    /// Publish a component to an OCI registry as a Wasm OCI artifact
    /// (config application/vnd.wasm.config.v0+json, layer application/wasm).
    Push(PushArgs),
}

impl PluginCommand {
    pub fn run(self) -> Result<ExitCode> {
        match self {
            Self::Test(args) => args.run(),
            Self::Inspect(args) => args.run(),
            Self::Bench(args) => args.run(),
            Self::List(args) => args.run(),
            Self::Add(args) => args.run(),
            Self::Push(args) => args.run(),
        }
    }
}

#[derive(Args)]
pub struct TestArgs {
    /// A `.wasm` component, or `builtin:NAME` for a built-in plugin.
    pub plugin: String,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub limits: LimitArgs,
    /// How many generated edge-case requests to send.
    #[arg(long, default_value_t = 48)]
    pub cases: u32,
}

impl TestArgs {
    pub fn run(self) -> Result<ExitCode> {
        let (name, bytes) = read_plugin(&self.plugin)?;
        let runtime = runtime()?;
        if std::io::stderr().is_terminal() {
            // Compiling a large component (a Python one is ~18 MB) takes
            // seconds the first time; say what is happening.
            eprintln!("testing {name} ({} KiB)…", bytes.len() >> 10);
        }
        let options = Options {
            limits: self.limits.limits(),
            generated_cases: self.cases,
        };
        let report = test_component(&runtime, &name, &bytes, &options);
        if self.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}", report.table());
        }
        Ok(if report.passed {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    }
}

#[derive(Args)]
pub struct InspectArgs {
    /// A `.wasm` component, or `builtin:NAME` for a built-in plugin.
    pub plugin: String,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

impl InspectArgs {
    pub fn run(self) -> Result<ExitCode> {
        let (name, bytes) = read_plugin(&self.plugin)?;
        let runtime = runtime()?;
        let component = runtime.load(&name, &bytes, &Limits::default())?;
        let i = runtime.inspect(&component);
        if self.json {
            println!("{}", serde_json::to_string_pretty(&i)?);
            return Ok(ExitCode::SUCCESS);
        }
        println!("plugin   {}", i.name);
        println!("digest   {}", i.digest);
        println!("size     {} bytes", i.size);
        match (&i.world, &i.world_export) {
            (Some(w), Some(e)) => println!(
                "world    {} (exports {e}{})",
                w.world(),
                if i.version_supported {
                    ""
                } else {
                    "; a version this orch does not speak"
                }
            ),
            _ => println!("world    none of orch's (not a plugin orch can load)"),
        }
        println!("imports  {}", list(&i.imports));
        println!("exports  {}", list(&i.exports));
        Ok(ExitCode::SUCCESS)
    }
}

#[derive(Args)]
pub struct ListArgs {
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

impl ListArgs {
    pub fn run(self) -> Result<ExitCode> {
        let builtins: Vec<_> = orch_builtins::BUILTINS
            .iter()
            .map(|b| {
                serde_json::json!({
                    "name": b.name,
                    "kind": b.kind,
                    "size": b.wasm.len(),
                    "digest": orch_plugin_runtime::Digest::of(b.wasm).to_string(),
                })
            })
            .collect();
        if self.json {
            println!("{}", serde_json::to_string_pretty(&builtins)?);
        } else {
            println!("{:<12}  {:<6}  {:>8}  DIGEST", "NAME", "KIND", "SIZE");
            for b in orch_builtins::BUILTINS {
                println!(
                    "{:<12}  {:<6}  {:>8}  {}",
                    b.name,
                    b.kind,
                    b.wasm.len(),
                    orch_plugin_runtime::Digest::of(b.wasm)
                );
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

#[derive(Args)]
pub struct AddArgs {
    /// `oci://HOST[:PORT]/NAME[:TAG][@sha256:HEX]`.
    pub reference: String,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

impl AddArgs {
    pub fn run(self) -> Result<ExitCode> {
        let reference = Reference::parse(&self.reference)?;
        let auth = self.registry.auth(reference.registry())?;
        let store = self.registry.store()?;
        let bar = progress_bar(&format!("pulling {reference}"));
        let artifact = Client::new()?.pull(&reference, &auth, &mut |p| advance(&bar, p))?;
        finish(bar);
        // Refuse what no orch world would load before it reaches the store
        // or the lock file.
        let runtime = runtime()?;
        let name = reference.to_string();
        let component = runtime
            .load(&name, &artifact.bytes, &Limits::default())
            .with_context(|| {
                format!("{reference} is not a component orch can load; nothing was added")
            })?;
        let inspection = runtime.inspect(&component);
        let world = match (&inspection.world_export, inspection.version_supported) {
            (Some(w), true) => w.clone(),
            (Some(w), false) => anyhow::bail!(
                "{reference} exports {w}, a version this orch does not speak; nothing was added"
            ),
            (None, _) => anyhow::bail!(
                "{reference} is a component of none of orch's worlds (exports: {}); nothing was added",
                inspection.exports.join(", ")
            ),
        };
        let path = store.put(&artifact)?;
        let pinned = reference.with_digest(artifact.manifest_digest);
        // A reference that names only a digest is pinned by itself; the
        // lock file is for tags.
        let locked = match reference.tag() {
            Some(_) => {
                let mut lock = LockFile::load(&self.registry.lock)?;
                lock.insert(
                    &reference,
                    LockEntry::new(
                        artifact.manifest_digest,
                        artifact.component_digest,
                        Some(world.clone()),
                    ),
                );
                lock.save()?;
                Some(self.registry.lock.clone())
            }
            None => None,
        };
        if self.json {
            let out = serde_json::json!({
                "reference": reference.to_string(),
                "pinned": pinned.to_string(),
                "digest": artifact.manifest_digest.to_string(),
                "component": artifact.component_digest.to_string(),
                "world": world,
                "size": artifact.bytes.len(),
                "path": path,
                "lock": locked,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
            return Ok(ExitCode::SUCCESS);
        }
        println!("added      {reference}");
        println!("digest     {}", artifact.manifest_digest);
        println!("component  {}", artifact.component_digest);
        println!("world      {world}");
        println!("stored     {}", path.display());
        match locked {
            Some(lock) => println!("locked in  {}", lock.display()),
            None => println!("locked in  (not needed: the reference pins its digest)"),
        }
        println!("config     \"{pinned}\"");
        Ok(ExitCode::SUCCESS)
    }
}

#[derive(Args)]
pub struct PushArgs {
    /// A `.wasm` component, or `builtin:NAME` for a built-in plugin.
    pub plugin: String,
    /// `oci://HOST[:PORT]/NAME:TAG`.
    pub reference: String,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

impl PushArgs {
    pub fn run(self) -> Result<ExitCode> {
        let reference = Reference::parse(&self.reference)?;
        let (name, bytes) = read_plugin(&self.plugin)?;
        let runtime = runtime()?;
        let component = runtime
            .load(&name, &bytes, &Limits::default())
            .with_context(|| format!("{} is not a component; nothing was pushed", self.plugin))?;
        let world = runtime.inspect(&component).world_export;
        let auth = self.registry.auth(reference.registry())?;
        let bar = progress_bar(&format!("pushing {reference}"));
        let pushed = Client::new()?.push(&reference, &auth, &bytes, &mut |p| advance(&bar, p))?;
        finish(bar);
        if self.json {
            let out = serde_json::json!({
                "reference": reference.to_string(),
                "pinned": pushed.reference.to_string(),
                "digest": pushed.manifest_digest.to_string(),
                "component": pushed.component_digest.to_string(),
                "world": world,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
            return Ok(ExitCode::SUCCESS);
        }
        println!("pushed     {reference}");
        println!("digest     {}", pushed.manifest_digest);
        println!("component  {}", pushed.component_digest);
        if let Some(world) = world {
            println!("world      {world}");
        }
        println!("pinned     {}", pushed.reference);
        Ok(ExitCode::SUCCESS)
    }
}

/// Where `add` keeps what it pulls, and how `add` and `push` log in.
#[derive(Args)]
pub struct RegistryArgs {
    /// The lock file to pin digests in (kept beside the config that names
    /// the plugins).
    #[arg(long, default_value = "orch.lock")]
    lock: PathBuf,
    /// The plugin store [default: $ORCH_PLUGIN_STORE, else
    /// ~/.local/share/orch/plugins].
    #[arg(long)]
    store: Option<PathBuf>,
    /// Log in as this user; the password is read from
    /// $ORCH_REGISTRY_PASSWORD (never from the command line). Without it,
    /// the Docker config file's credentials for the registry, else none.
    #[arg(long)]
    username: Option<String>,
}

impl RegistryArgs {
    pub(crate) fn auth(&self, registry: &str) -> Result<Auth> {
        let explicit = match &self.username {
            None => None,
            Some(user) => {
                let password = std::env::var("ORCH_REGISTRY_PASSWORD").map_err(|_| {
                    anyhow::anyhow!(
                        "--username {user} needs the password in $ORCH_REGISTRY_PASSWORD"
                    )
                })?;
                Some((
                    Credentials::new(user, password),
                    CredentialSource::Config("--username and $ORCH_REGISTRY_PASSWORD".to_owned()),
                ))
            }
        };
        Ok(Auth::for_registry(registry, explicit)?)
    }

    fn store(&self) -> Result<Store> {
        let dir = match &self.store {
            Some(dir) => dir.clone(),
            None => default_store_dir()
                .context("no plugin store: set --store, $ORCH_PLUGIN_STORE or $HOME")?,
        };
        Ok(Store::new(dir))
    }
}

/// Per-call limits, as the `[scheduler.limits]` config table sets them.
#[derive(Args)]
pub struct LimitArgs {
    /// Deadline of one call, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    deadline_ms: u64,
    /// Memory cap of one instance, in MiB.
    #[arg(long, default_value_t = 256)]
    memory_mib: usize,
}

impl LimitArgs {
    fn limits(&self) -> Limits {
        Limits {
            deadline: Duration::from_millis(self.deadline_ms),
            memory_bytes: self.memory_mib << 20,
            ..Limits::default()
        }
    }
}

/// A byte progress bar on stderr, only when stderr is a terminal (scripts
/// and tests get the result lines alone).
pub(crate) fn progress_bar(message: &str) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message.to_owned());
    Some(bar)
}

pub(crate) fn advance(bar: &Option<ProgressBar>, p: Progress) {
    if let Some(bar) = bar {
        if let Some(total) = p.total {
            bar.set_length(total);
        }
        bar.set_position(p.done);
    }
}

pub(crate) fn finish(bar: Option<ProgressBar>) {
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".to_owned()
    } else {
        items.join("\n         ")
    }
}

/// Reads `builtin:NAME` from the binary, anything else from the filesystem.
pub fn read_plugin(plugin: &str) -> Result<(String, Vec<u8>)> {
    if let Some(name) = plugin.strip_prefix("builtin:") {
        let b = orch_builtins::get(name).with_context(|| {
            format!(
                "there is no built-in plugin `{name}`; the built-ins are: {}",
                orch_builtins::BUILTINS
                    .iter()
                    .map(|b| b.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
        return Ok((plugin.to_owned(), b.wasm.to_vec()));
    }
    let path = PathBuf::from(plugin);
    let bytes = std::fs::read(&path).with_context(|| {
        format!("cannot read plugin {plugin} (give a .wasm file, or builtin:NAME for a built-in)")
    })?;
    Ok((plugin.to_owned(), bytes))
}

/// The runtime the CLI uses: compiled components cached under the user's
/// cache directory, so a second `orch plugin test` of the same file skips
/// compiling.
pub fn runtime() -> Result<Runtime> {
    let cache_dir = std::env::var_os("ORCH_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("orch/components"))
        })
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/orch/components"))
        });
    Ok(Runtime::new(RuntimeConfig {
        cache_dir,
        ..RuntimeConfig::default()
    })?)
}
