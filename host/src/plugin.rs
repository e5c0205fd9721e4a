//! `orch plugin …`: the front door of the conformance suite and the runtime's
//! inspector.

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use orch_conformance::{Options, test_component};
use orch_plugin_runtime::{Limits, Runtime, RuntimeConfig};
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Subcommand)]
pub enum PluginCommand {
    /// Run the conformance suite of the plugin's world; exit 0 only if every
    /// check passes, 1 if any fails, 2 if the plugin could not be read.
    Test {
        /// A `.wasm` component, or `builtin:NAME` for a built-in plugin.
        plugin: String,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        limits: LimitArgs,
        /// How many generated edge-case requests to send.
        #[arg(long, default_value_t = 48)]
        cases: u32,
    },
    /// Show a plugin's world, version, imports, exports, size and digest.
    Inspect {
        /// A `.wasm` component, or `builtin:NAME` for a built-in plugin.
        plugin: String,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the built-in plugins.
    List {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
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

pub fn run(cmd: PluginCommand) -> Result<ExitCode> {
    match cmd {
        PluginCommand::Test {
            plugin,
            json,
            limits,
            cases,
        } => {
            let (name, bytes) = read_plugin(&plugin)?;
            let runtime = runtime()?;
            if std::io::stderr().is_terminal() {
                // Compiling a large component (a Python one is ~18 MB) takes
                // seconds the first time; say what is happening.
                eprintln!("testing {name} ({} KiB)…", bytes.len() >> 10);
            }
            let options = Options {
                limits: limits.limits(),
                generated_cases: cases,
            };
            let report = test_component(&runtime, &name, &bytes, &options);
            if json {
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
        PluginCommand::Inspect { plugin, json } => {
            let (name, bytes) = read_plugin(&plugin)?;
            let runtime = runtime()?;
            let component = runtime.load(&name, &bytes, &Limits::default())?;
            let i = runtime.inspect(&component);
            if json {
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
        PluginCommand::List { json } => {
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
            if json {
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
