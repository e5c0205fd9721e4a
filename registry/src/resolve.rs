//! From a config's `oci://…` to a verified component on disk: a pinned
//! reference is served from the store or pulled and checked; a tag
//! reference only through the lock file's digest.

use crate::{
    Artifact, Auth, Client, CredentialSource, Credentials, Digest, LockFile, Progress, Reference,
    RegistryError, Store,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A component ready to load.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The reference pinned to its manifest digest.
    pub reference: Reference,
    pub manifest_digest: Digest,
    pub component_digest: Digest,
    /// Its file in the store.
    pub path: PathBuf,
    pub bytes: Vec<u8>,
    /// Whether it was pulled now (rather than found in the store).
    pub pulled: bool,
}

/// The store, the lock file and the registry credentials a server or agent
/// resolves its `oci://` plugins with.
#[derive(Debug, Clone)]
pub struct Resolver {
    store: Store,
    lock: PathBuf,
    credentials: BTreeMap<String, (Credentials, CredentialSource)>,
    /// The largest component it hands out, pulled or stored.
    max_bytes: u64,
}

impl Resolver {
    pub fn new(store: Store, lock: impl Into<PathBuf>) -> Self {
        Self {
            store,
            lock: lock.into(),
            credentials: BTreeMap::new(),
            max_bytes: crate::client::MAX_LAYER_BYTES,
        }
    }

    /// Refuses components larger than `bytes`, whether pulled or in the
    /// store, without reading more of one than that.
    #[must_use]
    pub fn at_most(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// Credentials for `registry` (`HOST:PORT`) from the config; the
    /// registries not given one use the Docker config file, else none.
    pub fn with_credentials(
        mut self,
        registry: &str,
        credentials: Credentials,
        source: CredentialSource,
    ) -> Self {
        self.credentials
            .insert(registry.to_owned(), (credentials, source));
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn lock_path(&self) -> &Path {
        &self.lock
    }

    pub fn auth(&self, registry: &str) -> Result<Auth, RegistryError> {
        Auth::for_registry(registry, self.credentials.get(registry).cloned())
    }

    /// Pulls `reference`, verifies it and keeps it in the store.
    pub fn pull(
        &self,
        reference: &Reference,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<(Artifact, PathBuf), RegistryError> {
        let auth = self.auth(reference.registry())?;
        let artifact = Client::new()?
            .at_most(self.max_bytes)
            .pull(reference, &auth, progress)?;
        let path = self.store.put(&artifact)?;
        Ok((artifact, path))
    }

    /// The component `reference` stands for. Pinned (`@sha256:`): from the
    /// store, else pulled and verified. A tag: the lock file's digest for
    /// it, from the store, else pulled by that digest; a tag the lock file
    /// does not hold is an error (a moving tag never decides what runs).
    pub fn resolve(&self, reference: &Reference) -> Result<Resolved, RegistryError> {
        let pinned = match reference.digest() {
            Some(_) => reference.clone(),
            None => {
                let lock = LockFile::load(&self.lock)?;
                let entry = lock
                    .get(reference)
                    .ok_or_else(|| RegistryError::NotLocked {
                        reference: reference.to_string(),
                        lock: self.lock.clone(),
                    })?;
                reference.with_digest(entry.digest)
            }
        };
        let manifest_digest = pinned
            .digest()
            .ok_or_else(|| RegistryError::InvalidReference {
                reference: pinned.to_string(),
                part: "digest",
                problem: "missing".to_owned(),
            })?;
        if let Some((component_digest, path, bytes)) =
            self.store.get_at_most(&manifest_digest, self.max_bytes)?
        {
            return Ok(Resolved {
                reference: pinned,
                manifest_digest,
                component_digest,
                path,
                bytes,
                pulled: false,
            });
        }
        tracing::info!(reference = %pinned, "pulling plugin");
        let (artifact, path) = self.pull(&pinned, &mut |_| {})?;
        Ok(Resolved {
            reference: pinned,
            manifest_digest: artifact.manifest_digest,
            component_digest: artifact.component_digest,
            path,
            bytes: artifact.bytes,
            pulled: true,
        })
    }
}

/// `$ORCH_PLUGIN_STORE`, else `$XDG_DATA_HOME/orch/plugins`, else
/// `~/.local/share/orch/plugins`: shared by `orch plugin add` and the
/// server and agent that load what it added.
pub fn default_store_dir() -> Option<PathBuf> {
    let env = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    env("ORCH_PLUGIN_STORE")
        .or_else(|| env("XDG_DATA_HOME").map(|d| d.join("orch/plugins")))
        .or_else(|| env("HOME").map(|h| h.join(".local/share/orch/plugins")))
}
