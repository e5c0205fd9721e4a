//! Loading the scorer `[scheduler]` names, and refusing one that would
//! fail the first placement: the same load and world checks as
//! `orch plugin test`, then `info()` and one typical request, under the
//! configured limits. The full suite stays with `orch plugin test`; this is
//! what a server can afford at start and at every reload.
//!
//! A scorer may also come from an OCI registry (`oci://…`): a reference
//! pinned with `@sha256:` is served from the plugin store or pulled and
//! verified; a tag only through the digest `orch plugin add` pinned in the
//! `orch.lock` beside the config.

use crate::scheduler::score::Component;
use orch_model::closest;
use orch_plugin_runtime::{Digest, Limits, PluginError, Runtime};
use orch_registry::{CredentialSource, Credentials, Reference, RegistryError, Resolver, Store};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Nodes in the request a scorer must answer before it is accepted: enough
/// to be typical, few enough to cost nothing next to compiling.
const BASIC_NODES: usize = 16;

/// The largest scorer component read, from a file or a registry: far above
/// any real one (a componentize-py scorer, the largest seen, is ~18 MB),
/// and a bound on what naming a file or a reference can make the server
/// hold in memory.
pub const MAX_SCORER_BYTES: u64 = 64 << 20;

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
    #[error(
        "scorer {}: larger than {} MiB, the most a scorer component may be; check that the path names a .wasm scorer component",
        path.display(),
        MAX_SCORER_BYTES >> 20
    )]
    TooLarge { path: PathBuf },
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
    /// An `oci://` scorer that could not be resolved: a bad reference, a
    /// tag not in the lock file, or a pull that failed.
    #[error("scorer {scorer}: {source}")]
    Registry {
        scorer: String,
        source: Box<RegistryError>,
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
    /// A component in an OCI registry, resolved through the lock file (the
    /// `orch.lock` beside the config) and the plugin store.
    Oci { reference: Reference, lock: PathBuf },
}

/// The lock file the server reads `oci://` tags through.
pub(crate) const LOCK_FILE: &str = "orch.lock";

/// `[registry."HOST:PORT"]`: the credentials to pull plugins from one
/// registry with. Registries without one use the Docker config file's
/// (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`), else none.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryAuthConfig {
    pub username: String,
    /// The password itself; prefer `password_env`. Never written back out.
    #[serde(default, skip_serializing)]
    pub password: Option<String>,
    /// The environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
}

impl std::fmt::Debug for RegistryAuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryAuthConfig")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("password_env", &self.password_env)
            .finish()
    }
}

impl RegistryAuthConfig {
    /// The credentials, or what is wrong with the table (for the config
    /// check; never quoting a password).
    pub fn credentials(&self) -> Result<Credentials, String> {
        if self.username.trim().is_empty() {
            return Err("username is empty".to_owned());
        }
        let password = match (&self.password, &self.password_env) {
            (Some(_), Some(_)) => {
                return Err("set password or password_env, not both".to_owned());
            }
            (Some(p), None) => p.clone(),
            (None, Some(var)) => std::env::var(var).map_err(|_| {
                format!("password_env names ${var}, which is not set in the server's environment")
            })?,
            (None, None) => return Err("no password: set password_env (or password)".to_owned()),
        };
        Ok(Credentials::new(&self.username, password))
    }
}

/// The resolver for `oci://` plugins named in the config in `base_dir`:
/// its lock file, the shared plugin store, and the `[registry]`
/// credentials (those that are valid; the config check reports the rest).
pub(crate) fn resolver(
    lock: &Path,
    registries: &BTreeMap<String, RegistryAuthConfig>,
) -> Result<Resolver, RegistryError> {
    let store = orch_registry::default_store_dir().ok_or_else(|| RegistryError::File {
        path: PathBuf::from("$ORCH_PLUGIN_STORE"),
        detail: "no plugin store: set $ORCH_PLUGIN_STORE or $HOME".to_owned(),
    })?;
    let mut resolver = Resolver::new(Store::new(store), lock).at_most(MAX_SCORER_BYTES);
    for (host, auth) in registries {
        if let Ok(credentials) = auth.credentials() {
            resolver = resolver.with_credentials(
                host,
                credentials,
                CredentialSource::Config(format!("[registry.\"{host}\"] in the config")),
            );
        }
    }
    Ok(resolver)
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
        if scorer.starts_with("oci://") {
            let reference = Reference::parse(scorer).map_err(|e| ScorerLoadError::Registry {
                scorer: scorer.to_owned(),
                source: Box::new(e),
            })?;
            return Ok(Self::Oci {
                reference,
                lock: base_dir.join(LOCK_FILE),
            });
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
            Self::Oci { reference, .. } => reference.to_string(),
        }
    }

    /// The component's bytes; an `oci://` scorer pulls with the Docker
    /// config's credentials or none (see [`Self::read_with`]).
    pub fn read(&self) -> Result<Cow<'static, [u8]>, ScorerLoadError> {
        self.read_with(&BTreeMap::new())
    }

    /// The component's bytes, pulling an `oci://` scorer that is not in
    /// the store with `registries`' credentials.
    pub fn read_with(
        &self,
        registries: &BTreeMap<String, RegistryAuthConfig>,
    ) -> Result<Cow<'static, [u8]>, ScorerLoadError> {
        match self {
            Self::Oci { reference, lock } => {
                let fail = |e| ScorerLoadError::Registry {
                    scorer: reference.to_string(),
                    source: Box::new(e),
                };
                let resolved = resolver(lock, registries)
                    .and_then(|r| r.resolve(reference))
                    .map_err(fail)?;
                if resolved.pulled {
                    tracing::info!(
                        "scorer {reference}: pulled {} ({})",
                        resolved.reference,
                        resolved.component_digest
                    );
                }
                Ok(Cow::Owned(resolved.bytes))
            }
            Self::Builtin(name) => builtin_bytes(name).map(Cow::Borrowed).ok_or_else(|| {
                ScorerLoadError::UnknownBuiltin {
                    name: (*name).to_owned(),
                    suggestion: None,
                    path: PathBuf::from(name),
                }
            }),
            Self::File(path) => match orch_registry::read_at_most(path, MAX_SCORER_BYTES) {
                Ok(Some(bytes)) => Ok(Cow::Owned(bytes)),
                Ok(None) => Err(ScorerLoadError::TooLarge { path: path.clone() }),
                Err(source) => Err(ScorerLoadError::Read {
                    path: path.clone(),
                    source,
                }),
            },
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

pub(crate) fn accept(
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
    Component::new(plugin).map_err(|e| basics("info", e.to_string()))
}
