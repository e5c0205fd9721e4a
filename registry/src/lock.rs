//! `orch.lock`: which digest each tag reference was pinned to, kept beside
//! the config that names the plugins, so a tag that moves in the registry
//! does not change what a server or agent runs.

use crate::store::write_atomically;
use crate::{Digest, Reference, RegistryError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const HEADER: &str = "# orch.lock: plugin references pinned to digests by `orch plugin add`.\n# Commit it beside the config; edit it only through `orch plugin add`.\n\n";
const VERSION: u32 = 1;

/// One pinned reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockEntry {
    /// The manifest digest the tag pointed to when it was added.
    pub digest: Digest,
    /// The component's own digest (what `orch plugin inspect` shows).
    pub component: Digest,
    /// The world it exports, e.g. `orch:scheduler/scorer@0.1.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub world: Option<String>,
    /// When it was added, RFC 3339 UTC.
    pub added: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    version: u32,
    #[serde(default)]
    plugin: BTreeMap<String, LockEntry>,
}

/// The lock file at a path; a missing file is an empty lock.
#[derive(Debug, Clone)]
pub struct LockFile {
    path: PathBuf,
    doc: Document,
}

impl LockFile {
    pub fn load(path: &Path) -> Result<Self, RegistryError> {
        let doc = match std::fs::read_to_string(path) {
            Ok(text) => {
                let doc: Document = toml::from_str(&text).map_err(|e| {
                    RegistryError::file(
                        path,
                        format!(
                            "not a lock file orch can read: {}; restore it from version control or delete it and `orch plugin add` again",
                            e.message()
                        ),
                    )
                })?;
                if doc.version != VERSION {
                    return Err(RegistryError::file(
                        path,
                        format!(
                            "lock file version {} is not one this orch reads ({VERSION})",
                            doc.version
                        ),
                    ));
                }
                doc
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Document {
                version: VERSION,
                plugin: BTreeMap::new(),
            },
            Err(e) => return Err(RegistryError::file(path, format!("cannot read: {e}"))),
        };
        Ok(Self {
            path: path.to_path_buf(),
            doc,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The entry of `reference` (looked up without its digest).
    pub fn get(&self, reference: &Reference) -> Option<&LockEntry> {
        self.doc.plugin.get(&key(reference))
    }

    pub fn insert(&mut self, reference: &Reference, entry: LockEntry) {
        self.doc.plugin.insert(key(reference), entry);
    }

    pub fn entries(&self) -> impl Iterator<Item = (&str, &LockEntry)> {
        self.doc.plugin.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Writes the file atomically.
    pub fn save(&self) -> Result<(), RegistryError> {
        let body = toml::to_string(&self.doc)
            .map_err(|e| RegistryError::file(&self.path, format!("cannot serialize: {e}")))?;
        write_atomically(&self.path, format!("{HEADER}{body}").as_bytes())
    }
}

fn key(reference: &Reference) -> String {
    reference.without_digest().to_string()
}

/// Now, as RFC 3339 UTC to the second.
pub(crate) fn now_rfc3339() -> String {
    orch_model::rfc3339(orch_model::now_ms())
}

impl LockEntry {
    /// An entry added now.
    pub fn new(digest: Digest, component: Digest, world: Option<String>) -> Self {
        Self {
            digest,
            component,
            world,
            added: now_rfc3339(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests may")]
    use super::*;

    #[test]
    fn round_trips_keyed_by_the_tag_reference() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orch.lock");
        let mut lock = LockFile::load(&path).unwrap();
        let r = Reference::parse("oci://127.0.0.1:5000/scorers/x:1").unwrap();
        let entry = LockEntry::new(Digest::of(b"m"), Digest::of(b"c"), Some("w".into()));
        lock.insert(&r, entry.clone());
        lock.save().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("[plugin.\"oci://127.0.0.1:5000/scorers/x:1\"]"),
            "{text}"
        );
        let again = LockFile::load(&path).unwrap();
        assert_eq!(again.get(&r.with_digest(Digest::of(b"z"))), Some(&entry));
        assert!(
            entry.added.len() == 20 && entry.added.ends_with('Z'),
            "{}",
            entry.added
        );
    }
}
