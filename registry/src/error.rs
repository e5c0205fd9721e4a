//! What can go wrong between a plugin reference and its bytes on disk.
//! Each message names the reference or registry, and says what to do.

use crate::Digest;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("`{reference}`: the {part} is wrong: {problem}")]
    InvalidReference {
        reference: String,
        /// `scheme`, `registry host`, `name`, `tag` or `digest`.
        part: &'static str,
        problem: String,
    },
    #[error(
        "registry {registry} is unreachable: {detail}; check that it runs and that the host and port in the reference are right"
    )]
    Unreachable { registry: String, detail: String },
    /// The tag, digest or repository is not in the registry.
    #[error("{reference}: {what}")]
    NotFound { reference: String, what: String },
    #[error(
        "registry {registry} wants credentials and none were found; set [registry.\"{registry}\"] username and password (or password_env) in the server config ([containers.auth.\"{registry}\"] in an agent.toml), or run `docker login {registry}`"
    )]
    CredentialsNeeded { registry: String },
    #[error(
        "registry {registry} refused the credentials of user `{username}` (from {source_of}); check them, or run `docker login {registry}` again"
    )]
    CredentialsRefused {
        registry: String,
        username: String,
        source_of: String,
    },
    #[error(
        "{reference}: the {what} does not match its digest: expected {expected}, got {actual}; the registry's copy is corrupt or was replaced, so nothing was stored"
    )]
    WrongDigest {
        reference: String,
        /// `manifest` or `component layer`.
        what: &'static str,
        expected: Digest,
        actual: Digest,
    },
    #[error(
        "{reference} is not a WASM component artifact: {found}; orch loads artifacts with a config of media type application/vnd.wasm.config.v0+json and one layer of application/wasm (`orch plugin push FILE REF` makes one)"
    )]
    NotWasm { reference: String, found: String },
    /// A component larger than the reader accepts; nothing was kept.
    #[error(
        "{plugin}: {found}, more than the {} MiB a plugin may be here; build it smaller (a release build, stripped of debug info)",
        limit >> 20
    )]
    TooLarge {
        /// The reference, or the stored file.
        plugin: String,
        found: String,
        limit: u64,
    },
    #[error(
        "{reference} is not in the lock file {}; run `orch plugin add {reference}` to pull it and pin its digest, or pin the digest in the reference (…@sha256:HEX)",
        lock.display()
    )]
    NotLocked { reference: String, lock: PathBuf },
    #[error("{reference}: the lock file pins {digest}, but the plugin store {} does not hold it; run `orch plugin add {reference}` again", store.display())]
    NotInStore {
        reference: String,
        digest: Digest,
        store: PathBuf,
    },
    #[error("{}: {detail}", path.display())]
    File { path: PathBuf, detail: String },
    #[error("registry {registry}: {detail}")]
    Registry { registry: String, detail: String },
}

impl RegistryError {
    pub(crate) fn file(path: impl Into<PathBuf>, detail: impl ToString) -> Self {
        Self::File {
            path: path.into(),
            detail: detail.to_string(),
        }
    }
}
