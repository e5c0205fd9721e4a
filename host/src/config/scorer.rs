//! Loading the scorer `[scheduler]` names, and refusing one that would
//! fail the first placement: the same load and world checks as
//! `orch plugin test`, then `info()` and one typical request, under the
//! configured limits. The full suite stays with `orch plugin test`; this is
//! what a server can afford at start and at every reload.

use super::{Config, SchedulerConfig};
use crate::scheduler::Scheduler;
use crate::scheduler::score::{Component, Scorer};
use orch_model::closest;
use orch_plugin_runtime::{Digest, Limits, PluginError, Runtime};
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Nodes in the request a scorer must answer before it is accepted: enough
/// to be typical, few enough to cost nothing next to compiling.
const BASIC_NODES: usize = 16;

/// Why a scorer was not accepted. Each variant names the scorer (its path,
/// or `builtin:NAME`) and, once its bytes were read, its digest.
#[derive(Debug, thiserror::Error)]
pub enum ScorerLoadError {
    #[error("no scorer is named; set [scheduler] scorer to a built-in ({}) or a path to a .wasm component", builtin_names().join(", "))]
    Empty,
    #[error(
        "there is no built-in scorer `{name}`{}, and no file {} either; the built-in scorers are {}, or give a path to a .wasm component",
        suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default(),
        path.display(),
        builtin_names().join(", ")
    )]
    UnknownBuiltin {
        name: String,
        suggestion: Option<String>,
        /// Where a file of that name was looked for.
        path: PathBuf,
    },
    #[error("cannot read scorer {}: {source}; check the path in [scheduler] scorer (relative paths start at the config file's folder)", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not a component, not a scorer of the supported world, forbidden
    /// imports, compile timeout: the runtime's own error, which names the
    /// plugin and its digest.
    #[error("{source}; `orch plugin test {scorer}` shows every check")]
    Plugin {
        scorer: String,
        digest: Digest,
        // Boxed: the runtime's error is large, and this one is returned by
        // value on every path.
        source: Box<PluginError>,
    },
    /// It loaded but did not answer `info()` or a typical request properly.
    #[error(
        "scorer {scorer}@{digest:?}: failed the basic checks: {check}: {detail}; `orch plugin test {scorer}` shows every check"
    )]
    Basics {
        scorer: String,
        digest: Digest,
        check: &'static str,
        detail: String,
    },
    #[error(
        "scorer {scorer}: [scheduler.limits] sets fuel, but this server's plugin runtime does not meter fuel; restart orch to turn metering on, or remove the fuel limit"
    )]
    FuelNotMetered { scorer: String },
}

impl ScorerLoadError {
    /// The digest of the refused scorer, when its bytes were read.
    pub fn digest(&self) -> Option<Digest> {
        match self {
            Self::Plugin { digest, .. } | Self::Basics { digest, .. } => Some(*digest),
            _ => None,
        }
    }
}

/// Where a scorer's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScorerSource {
    /// Embedded in the binary, by name (`binpack`).
    Builtin(&'static str),
    /// A component file; absolute once resolved.
    File(PathBuf),
}

impl ScorerSource {
    /// Reads `[scheduler] scorer`: `builtin:NAME`, a built-in's bare name,
    /// or a path relative to `base_dir`. A bare word that is neither a
    /// built-in nor an existing file is taken for a misspelt built-in.
    pub fn resolve(scorer: &str, base_dir: &Path) -> Result<Self, ScorerLoadError> {
        let unknown = |name: &str| {
            let suggestion = closest(name, builtin_names()).map(str::to_owned);
            ScorerLoadError::UnknownBuiltin {
                name: name.to_owned(),
                suggestion,
                path: base_dir.join(name),
            }
        };
        let scorer = scorer.trim();
        if scorer.is_empty() {
            return Err(ScorerLoadError::Empty);
        }
        if let Some(name) = scorer.strip_prefix("builtin:") {
            return builtin(name)
                .map(Self::Builtin)
                .ok_or_else(|| unknown(name));
        }
        if let Some(name) = builtin(scorer) {
            return Ok(Self::Builtin(name));
        }
        let path = base_dir.join(scorer);
        let looks_like_a_name = !scorer.contains(['/', '\\']) && !scorer.ends_with(".wasm");
        if looks_like_a_name && !path.exists() {
            return Err(unknown(scorer));
        }
        Ok(Self::File(path))
    }

    /// The name the scorer goes by in errors and logs: `builtin:NAME` or
    /// its path.
    pub fn name(&self) -> String {
        match self {
            Self::Builtin(name) => format!("builtin:{name}"),
            Self::File(path) => path.display().to_string(),
        }
    }

    /// The component's bytes.
    pub fn read(&self) -> Result<Cow<'static, [u8]>, ScorerLoadError> {
        match self {
            Self::Builtin(name) => builtin_bytes(name).map(Cow::Borrowed).ok_or_else(|| {
                ScorerLoadError::UnknownBuiltin {
                    name: (*name).to_owned(),
                    suggestion: None,
                    path: PathBuf::from(name),
                }
            }),
            Self::File(path) => {
                std::fs::read(path)
                    .map(Cow::Owned)
                    .map_err(|source| ScorerLoadError::Read {
                        path: path.clone(),
                        source,
                    })
            }
        }
    }
}

/// The built-in scorers' names, as the config accepts them.
pub(crate) fn builtin_names() -> Vec<&'static str> {
    orch_builtins::BUILTINS
        .iter()
        .filter(|b| b.kind == "scorer")
        .map(|b| b.name)
        .collect()
}

fn builtin(name: &str) -> Option<&'static str> {
    orch_builtins::get(name)
        .filter(|b| b.kind == "scorer")
        .map(|b| b.name)
}

fn builtin_bytes(name: &str) -> Option<&'static [u8]> {
    orch_builtins::get(name)
        .filter(|b| b.kind == "scorer")
        .map(|b| b.wasm)
}

/// Loads the scorer `config` names (paths relative to `base_dir`) and
/// accepts it only if it passes the basic checks under `config`'s limits:
/// it compiles, is a scorer of the world this host speaks with nothing
/// imported beyond WASI, answers `info()` with a name and a version, and
/// scores a typical request with one finite score in [-1, 1] per node.
pub fn load_scorer(
    config: &SchedulerConfig,
    base_dir: &Path,
    runtime: &Runtime,
) -> Result<Arc<dyn Scorer>, ScorerLoadError> {
    let source = ScorerSource::resolve(&config.scorer, base_dir)?;
    let bytes = source.read()?;
    let scorer = accept(runtime, &source.name(), &bytes, config.limits.limits())?;
    Ok(Arc::new(scorer))
}

/// The scheduler `config` describes: its scorer, loaded and checked by
/// [`load_scorer`], with its sampling.
pub fn load_scheduler(config: &Config, runtime: &Runtime) -> Result<Scheduler, ScorerLoadError> {
    let scorer = load_scorer(&config.scheduler, &config.base_dir, runtime)?;
    let scheduler = Scheduler::new(scorer, config.scheduler.sampling.sampling());
    match &config.scheduler.fallback {
        None => Ok(scheduler),
        Some(name) => {
            let fallback = SchedulerConfig {
                scorer: name.clone(),
                fallback: None,
                ..config.scheduler.clone()
            };
            let fallback = load_scorer(&fallback, &config.base_dir, runtime)?;
            Ok(scheduler.with_fallback(fallback))
        }
    }
}

fn accept(
    runtime: &Runtime,
    name: &str,
    bytes: &[u8],
    limits: Limits,
) -> Result<Component, ScorerLoadError> {
    // The runtime would refuse the first call for this; saying so before
    // compiling gives the reason that matters (a restart is needed).
    if limits.fuel.is_some() && !runtime.config().fuel {
        return Err(ScorerLoadError::FuelNotMetered {
            scorer: name.to_owned(),
        });
    }
    let digest = Digest::of(bytes);
    let plugin_error = |source| ScorerLoadError::Plugin {
        scorer: name.to_owned(),
        digest,
        source: Box::new(source),
    };
    let basics = |check, detail: String| ScorerLoadError::Basics {
        scorer: name.to_owned(),
        digest,
        check,
        detail,
    };
    let component = runtime.load(name, bytes, &limits).map_err(plugin_error)?;
    let plugin = runtime.scorer(&component, limits).map_err(plugin_error)?;
    let info = plugin.info().map_err(|e| basics("info", e.to_string()))?;
    if info.name.trim().is_empty() || info.version.trim().is_empty() {
        return Err(basics(
            "info",
            "info() returned an empty name or version".to_owned(),
        ));
    }
    let request = orch_conformance::typical_request(BASIC_NODES, 1);
    // `score` validates the answer: one finite score in [-1, 1] per node,
    // well-formed parts. It also warms an instance for the first placement.
    plugin.score(&request).map_err(|e| {
        basics(
            "scoring a typical request",
            format!("{BASIC_NODES} nodes: {e}"),
        )
    })?;
    Component::new(plugin).map_err(|detail| basics("info", detail))
}
