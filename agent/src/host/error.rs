use std::path::{Path, PathBuf};

/// What went wrong in one of the node's host capabilities. Each message says
/// what failed and where; drivers pass them on to the user in task events.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("{what} {value:?} cannot be used as a directory name: {why}")]
    BadName {
        what: &'static str,
        value: String,
        why: &'static str,
    },
    #[error(
        "{what} {path:?} leaves the task directory; give a path inside it (no absolute paths, no '..')"
    )]
    Escapes { what: &'static str, path: String },
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The task could not be started; the message comes from the shim or
    /// names the step that failed.
    #[error("{0}")]
    Spawn(String),
    #[error("{0}")]
    Process(String),
    #[error("{0}")]
    Artifact(String),
    /// A [`crate::HostConfig`] value that cannot work.
    #[error("agent host config: {0}")]
    Config(String),
}

impl HostError {
    pub(crate) fn io(action: &'static str, path: &Path, source: std::io::Error) -> HostError {
        HostError::Io {
            action,
            path: path.to_owned(),
            source,
        }
    }
}
