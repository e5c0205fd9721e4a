//! Verified components on disk, by digest: `<store>/sha256/<hex>.wasm`
//! holds a component, `<store>/manifests/sha256/<hex>` the component digest
//! a manifest digest stands for (references pin manifests; the runtime and
//! the file name go by the component's own digest).

use crate::{Artifact, Digest, RegistryError};
use std::io::Write as _;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the component with digest `component` is (or would be) kept.
    pub fn component_path(&self, component: &Digest) -> PathBuf {
        self.dir
            .join("sha256")
            .join(format!("{}.wasm", component.hex()))
    }

    fn manifest_path(&self, manifest: &Digest) -> PathBuf {
        self.dir.join("manifests/sha256").join(manifest.hex())
    }

    /// Keeps a verified artifact; each file is written to a temporary name
    /// and renamed, so a reader never sees half a component. Returns the
    /// component's path.
    pub fn put(&self, artifact: &Artifact) -> Result<PathBuf, RegistryError> {
        let path = self.component_path(&artifact.component_digest);
        write_atomically(&path, &artifact.bytes)?;
        write_atomically(
            &self.manifest_path(&artifact.manifest_digest),
            artifact.component_digest.to_string().as_bytes(),
        )?;
        Ok(path)
    }

    /// The component a manifest digest stands for, if it is here and its
    /// bytes still hash to its name; a damaged copy counts as absent (and
    /// is pulled again by the caller).
    pub fn get(
        &self,
        manifest: &Digest,
    ) -> Result<Option<(Digest, PathBuf, Vec<u8>)>, RegistryError> {
        self.get_at_most(manifest, crate::client::MAX_LAYER_BYTES)
    }

    /// [`Self::get`], refusing a component larger than `max_bytes` without
    /// reading more of it than that.
    pub fn get_at_most(
        &self,
        manifest: &Digest,
        max_bytes: u64,
    ) -> Result<Option<(Digest, PathBuf, Vec<u8>)>, RegistryError> {
        let link = self.manifest_path(manifest);
        let component = match std::fs::read_to_string(&link) {
            Ok(text) => match text.trim().parse::<Digest>() {
                Ok(d) => d,
                Err(_) => return Ok(None),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(RegistryError::file(link, format!("cannot read: {e}"))),
        };
        let path = self.component_path(&component);
        let bytes = match read_at_most(&path, max_bytes) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                return Err(RegistryError::TooLarge {
                    plugin: path.display().to_string(),
                    found: format!("the stored component is more than {max_bytes} bytes"),
                    limit: max_bytes,
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(RegistryError::file(path, format!("cannot read: {e}"))),
        };
        if Digest::of(&bytes) != component {
            tracing::warn!(path = %path.display(), "a stored component does not match its digest; pulling it again");
            return Ok(None);
        }
        Ok(Some((component, path, bytes)))
    }
}

/// The whole of `path`, or `None` when it holds more than `max` bytes (of
/// which no more than `max + 1` are read).
pub fn read_at_most(path: &Path, max: u64) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read as _;
    // A FIFO or a device would block the open or never end: only regular
    // files are read (checked before the open and again on what opened).
    let not_a_file = || std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file");
    if !std::fs::metadata(path)?.is_file() {
        return Err(not_a_file());
    }
    let file = std::fs::File::open(path)?;
    if !file.metadata()?.is_file() {
        return Err(not_a_file());
    }
    let mut bytes = Vec::new();
    file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= max).then_some(bytes))
}

pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), RegistryError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| RegistryError::file(dir, format!("cannot create: {e}")))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .map_err(|e| RegistryError::file(dir, format!("cannot write in: {e}")))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| RegistryError::file(tmp.path(), format!("cannot write: {e}")))?;
    tmp.persist(path)
        .map_err(|e| RegistryError::file(path, format!("cannot write: {}", e.error)))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests may")]
    use super::*;

    #[test]
    fn keeps_by_digest_and_refuses_a_damaged_copy() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let bytes = b"\0asm component".to_vec();
        let artifact = Artifact {
            manifest_digest: Digest::of(b"manifest"),
            component_digest: Digest::of(&bytes),
            bytes,
        };
        let path = store.put(&artifact).unwrap();
        assert!(path.ends_with(format!("sha256/{}.wasm", artifact.component_digest.hex())));
        let (digest, _, got) = store.get(&artifact.manifest_digest).unwrap().unwrap();
        assert_eq!((digest, got), (artifact.component_digest, artifact.bytes));
        std::fs::write(&path, b"tampered").unwrap();
        assert!(store.get(&artifact.manifest_digest).unwrap().is_none());
        assert!(store.get(&Digest::of(b"other")).unwrap().is_none());
    }
}
