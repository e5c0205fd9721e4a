//! Snapshot files of what users see (CLI tables, `orch job validate`'s
//! messages): a test compares what it rendered with the file, and
//! `ORCH_BLESS=1` rewrites the file instead, for a deliberate change whose
//! diff is then reviewed.

use std::fmt;
use std::path::{Path, PathBuf};

/// Panics, showing both texts, unless `actual` is what the file at `path`
/// holds; with `ORCH_BLESS=1`, writes `actual` there instead.
pub fn assert_snapshot(path: impl AsRef<Path>, actual: &str) {
    if let Err(diff) = check_snapshot(path, actual) {
        panic!("{diff}");
    }
}

/// [`assert_snapshot`] without the panic, for a test of many cases that
/// reports every case that differs at once.
pub fn check_snapshot(path: impl AsRef<Path>, actual: &str) -> Result<(), SnapshotDiff> {
    let path = path.as_ref();
    if blessing() {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        }
        std::fs::write(path, actual)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        return Ok(());
    }
    let expected = match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("cannot read {}: {e}", path.display()),
    };
    if expected.as_deref() == Some(actual) {
        return Ok(());
    }
    Err(SnapshotDiff {
        path: path.to_owned(),
        expected,
        actual: actual.to_owned(),
    })
}

/// `ORCH_BLESS=1`: rewrite snapshots rather than compare.
fn blessing() -> bool {
    std::env::var_os("ORCH_BLESS").is_some_and(|v| v == "1")
}

/// A snapshot that is not what the test rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotDiff {
    pub path: PathBuf,
    /// The file's text; `None` when there is no file yet.
    pub expected: Option<String>,
    pub actual: String,
}

impl fmt::Display for SnapshotDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (path, actual) = (self.path.display(), &self.actual);
        match &self.expected {
            None => write!(
                f,
                "no snapshot at {path}; run with ORCH_BLESS=1 to write it, then review it\n\
                 --- actual\n{actual}"
            ),
            Some(expected) => write!(
                f,
                "{path} differs; if the change is deliberate, rerun with ORCH_BLESS=1\n\
                 --- expected\n{expected}--- actual\n{actual}"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Under `ORCH_BLESS=1` every check passes by writing the file; what
    /// is tested here is the comparison, so it runs without.
    #[test]
    fn a_snapshot_that_differs_shows_both_texts() {
        if blessing() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("table.txt");
        let e = check_snapshot(&path, "a\n").unwrap_err();
        assert!(e.to_string().starts_with("no snapshot at "), "{e}");
        std::fs::write(&path, "a\n").unwrap();
        assert_eq!(check_snapshot(&path, "a\n"), Ok(()));
        let e = check_snapshot(&path, "b\n").unwrap_err();
        assert_eq!(e.expected.as_deref(), Some("a\n"));
        assert!(
            e.to_string()
                .ends_with("rerun with ORCH_BLESS=1\n--- expected\na\n--- actual\nb\n"),
            "{e}"
        );
    }
}
