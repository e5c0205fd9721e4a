//! Task artifacts: the `artifacts` capability (`orch:driver/artifacts`).
//! Only inside a component: built natively, [`fetch`] returns an error.

use crate::TaskId;

/// A file to fetch into the task directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Artifact {
    /// `http://` or `https://` URL, or a path relative to the task dir.
    pub source: String,
    /// Hex sha256 of the content; the host requires it for remote sources.
    pub sha256: Option<String>,
    /// Where to put it, relative to the task directory.
    pub destination: String,
    /// Unix permission bits for the file, e.g. 0o755.
    pub mode: Option<u32>,
}

/// Fetches `artifact` for `task`; returns the absolute path it was written to.
pub fn fetch(task: &TaskId, artifact: &Artifact) -> Result<String, String> {
    #[cfg(target_arch = "wasm32")]
    {
        use crate::driver_bindings::orch::driver::artifacts as wit;
        wit::fetch(
            &crate::driver::wasm::wit_task_id(task),
            &wit::Artifact {
                source: artifact.source.clone(),
                sha256: artifact.sha256.clone(),
                destination: artifact.destination.clone(),
                mode: artifact.mode,
            },
        )
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = (task, artifact);
        Err(
            "the artifacts capability exists only inside a component run by an orch agent"
                .to_owned(),
        )
    }
}
