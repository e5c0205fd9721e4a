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
    /// The process a handle names has ended without a recorded exit, or its
    /// pid belongs to another process now.
    #[error("{0}")]
    Gone(String),
    #[error("{0}")]
    Artifact(String),
    /// A [`crate::HostConfig`] value that cannot work.
    #[error("agent host config: {0}")]
    Config(String),
}

/// What a driver learns of a failed call: the message, and whether the
/// request was at fault or what it names is gone.
impl From<HostError> for orch_plugin_runtime::CapabilityError {
    fn from(e: HostError) -> Self {
        use orch_plugin_runtime::CapabilityError as E;
        let message = e.to_string();
        match e {
            HostError::BadName { .. } | HostError::Escapes { .. } => E::Invalid(message),
            HostError::Gone(_) => E::NotFound(message),
            HostError::Io { .. }
            | HostError::Spawn(_)
            | HostError::Process(_)
            | HostError::Artifact(_)
            | HostError::Config(_) => E::Failed(message),
        }
    }
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
