//! Compiled components, cached by the digest of their bytes: in memory for
//! the life of the process, on disk across restarts.

use crate::Digest;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use wasmtime::Engine;
use wasmtime::component::Component;

pub(crate) struct Cache {
    memory: Mutex<HashMap<Digest, Component>>,
    dir: Option<PathBuf>,
    /// Tells apart compiled code from engines with other settings or
    /// another wasmtime: such files are simply not found.
    engine_tag: String,
}

impl Cache {
    pub(crate) fn new(engine: &Engine, dir: Option<PathBuf>) -> Self {
        let mut h = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        Self {
            memory: Mutex::new(HashMap::new()),
            dir,
            engine_tag: format!("{:016x}", h.finish()),
        }
    }

    pub(crate) fn get(&self, engine: &Engine, digest: &Digest) -> Option<Component> {
        if let Some(c) = self.lock().get(digest) {
            return Some(c.clone());
        }
        let path = self.path(digest)?;
        if !path.exists() {
            return None;
        }
        let component = load_compiled(engine, &path)?;
        self.lock().insert(*digest, component.clone());
        Some(component)
    }

    pub(crate) fn put(&self, digest: Digest, component: &Component) {
        self.lock().insert(digest, component.clone());
        let Some(path) = self.path(&digest) else {
            return;
        };
        // A failure to write the disk cache only costs a recompile next
        // start; it is not worth failing the load for.
        if let Ok(bytes) = component.serialize() {
            let _ = write_atomically(&path, &bytes);
        }
    }

    fn path(&self, digest: &Digest) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        Some(dir.join(format!("{}-{}.cwasm", digest.hex(), self.engine_tag)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Digest, Component>> {
        // A panic elsewhere while holding the lock leaves the map usable.
        self.memory.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Loads code this cache compiled and wrote. Anything unreadable or from
/// another engine is ignored and recompiled.
#[allow(
    unsafe_code,
    reason = "wasmtime's deserialize trusts the file; see SAFETY below"
)]
fn load_compiled(engine: &Engine, path: &Path) -> Option<Component> {
    // SAFETY: `deserialize_file` trusts the file to be wasmtime's own output.
    // Only this cache writes into its directory (the operator's data dir),
    // file names carry the engine's compatibility hash, and wasmtime checks
    // the header and engine settings before using the code.
    unsafe { Component::deserialize_file(engine, path) }.ok()
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
