//! The operator's policy, checked before the engine sees a request: the
//! Docker socket is root-equivalent, so a driver gets only what agent.toml
//! allows.

use std::path::{Path, PathBuf};

use orch_plugin_runtime::{CapabilityError, ContainerSpec};

use super::settings::ContainerSettings;
use crate::dirs::TaskDirs;

/// A bind mount that passed the policy: its source resolved on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CheckedMount {
    pub source: PathBuf,
    pub target: String,
    pub read_only: bool,
}

/// The network modes this node knows.
pub(crate) fn network_mode(spec: &ContainerSpec) -> &str {
    if spec.network_mode.is_empty() {
        "bridge"
    } else {
        &spec.network_mode
    }
}

fn denied(what: &str, setting: &str) -> CapabilityError {
    CapabilityError::Denied(format!(
        "{what} is not allowed on this node; an operator can allow it with {setting} = true in the [containers] section of agent.toml"
    ))
}

/// Checks `spec` against `settings`. A relative mount source names a
/// directory as the task sees it: `alloc` (the allocation's shared
/// directory, as a whole) or `local/…` (the task's own directory, or a
/// directory under it). Nothing else of the allocation is mountable: its
/// root holds every task's logs, secrets and supervisor files, which the
/// agent writes. Only the task's own directory may be named below its top
/// because only this task's container writes there, and it is not running
/// while its next container is created; a directory a running sibling can
/// write could be swapped for a symlink between this check and the mount.
pub(crate) fn check(
    settings: &ContainerSettings,
    dirs: &TaskDirs,
    spec: &ContainerSpec,
) -> Result<Vec<CheckedMount>, CapabilityError> {
    if spec.privileged && !settings.allow_privileged {
        return Err(denied("privileged mode", "allow_privileged"));
    }
    match network_mode(spec) {
        "bridge" | "none" => {}
        "host" if settings.allow_host_network => {}
        "host" => return Err(denied("network_mode \"host\"", "allow_host_network")),
        other => {
            return Err(CapabilityError::Denied(format!(
                "network_mode {other:?} is not one this node knows; use \"bridge\", \"none\" or \"host\""
            )));
        }
    }
    if spec.host_pid && !settings.allow_host_pid {
        return Err(denied("the host's PID namespace", "allow_host_pid"));
    }
    if spec.host_ipc && !settings.allow_host_ipc {
        return Err(denied("the host's IPC namespace", "allow_host_ipc"));
    }
    let canonical = |dir: &Path| {
        dir.canonicalize()
            .map_err(|e| CapabilityError::Failed(format!("cannot resolve {}: {e}", dir.display())))
    };
    let shared = canonical(&dirs.shared)?;
    let local = canonical(&dirs.local)?;
    spec.mounts
        .iter()
        .map(|mount| {
            if !mount.target.starts_with('/') {
                return Err(CapabilityError::Denied(format!(
                    "mount target {:?} is not absolute; give an absolute path inside the container",
                    mount.target
                )));
            }
            let source = Path::new(&mount.source);
            let resolve = |path: &Path| {
                path.canonicalize().map_err(|e| {
                    CapabilityError::Failed(format!(
                        "mount source {:?} ({}): {e}",
                        mount.source,
                        path.display()
                    ))
                })
            };
            let resolved = if source.is_absolute() {
                let resolved = resolve(source)?;
                let allowed = settings
                    .allowed_host_paths
                    .iter()
                    .filter_map(|p| p.canonicalize().ok())
                    .any(|allowed| resolved.starts_with(allowed));
                if !allowed {
                    return Err(CapabilityError::Denied(format!(
                        "mount source {:?} is a host path; name a directory of the task instead (\"alloc\" or \"local/…\"), \
                         or an operator can allow host directories with allowed_host_paths in the [containers] section of agent.toml",
                        mount.source
                    )));
                }
                resolved
            } else {
                let mut parts = source.components();
                let first = parts.next().map(|c| c.as_os_str().to_string_lossy().into_owned());
                let rest = parts.as_path();
                let resolved = match first.as_deref() {
                    Some("alloc") if rest.as_os_str().is_empty() => shared.clone(),
                    Some("local") => resolve(&local.join(rest))?,
                    _ => {
                        return Err(CapabilityError::Denied(format!(
                            "mount source {:?} is not a directory a task may mount; use \"alloc\" (the allocation's \
                             shared directory) or \"local\" or a directory under \"local/\" (the task's own)",
                            mount.source
                        )));
                    }
                };
                if !resolved.starts_with(&local) && resolved != shared {
                    return Err(CapabilityError::Denied(format!(
                        "mount source {:?} resolves to {}, outside the task's directory; give a directory under \"local/\"",
                        mount.source,
                        resolved.display()
                    )));
                }
                resolved
            };
            Ok(CheckedMount {
                source: resolved,
                target: mount.target.clone(),
                read_only: mount.read_only,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use orch_plugin_runtime::Mount;

    fn mount(source: &str, target: &str) -> Mount {
        Mount {
            source: source.into(),
            target: target.into(),
            read_only: false,
        }
    }

    #[test]
    fn refusals_name_the_setting_and_allowed_counterparts_pass() {
        let dir = tempfile::tempdir().unwrap();
        let alloc = crate::dirs::create_task_dirs(dir.path(), "a1", "web").unwrap();
        std::fs::create_dir_all(alloc.local.join("data")).unwrap();
        std::fs::create_dir_all(alloc.shared.join("data")).unwrap();
        std::os::unix::fs::symlink("/etc", alloc.local.join("sneaky")).unwrap();
        let host = dir.path().join("shared");
        std::fs::create_dir_all(&host).unwrap();
        let closed = ContainerSettings::default();
        let open = ContainerSettings {
            allow_privileged: true,
            allow_host_network: true,
            allow_host_pid: true,
            allow_host_ipc: true,
            allowed_host_paths: vec![host.clone()],
            ..ContainerSettings::default()
        };
        let cases: Vec<(ContainerSpec, &str)> = vec![
            (
                ContainerSpec {
                    privileged: true,
                    ..Default::default()
                },
                "allow_privileged",
            ),
            (
                ContainerSpec {
                    network_mode: "host".into(),
                    ..Default::default()
                },
                "allow_host_network",
            ),
            (
                ContainerSpec {
                    host_pid: true,
                    ..Default::default()
                },
                "allow_host_pid",
            ),
            (
                ContainerSpec {
                    host_ipc: true,
                    ..Default::default()
                },
                "allow_host_ipc",
            ),
            (
                ContainerSpec {
                    mounts: vec![mount(host.to_str().unwrap(), "/data")],
                    ..Default::default()
                },
                "allowed_host_paths",
            ),
        ];
        for (spec, setting) in cases {
            match check(&closed, &alloc, &spec) {
                Err(CapabilityError::Denied(m)) => assert!(m.contains(setting), "{m}"),
                other => panic!("{setting}: {other:?}"),
            }
            check(&open, &alloc, &spec).unwrap();
        }
        let inside = ContainerSpec {
            mounts: vec![mount("local/data", "/data"), mount("alloc", "/shared")],
            ..Default::default()
        };
        let checked = check(&closed, &alloc, &inside).unwrap();
        assert_eq!(
            checked[0].source,
            alloc.local.canonicalize().unwrap().join("data")
        );
        assert_eq!(checked[1].source, alloc.shared.canonicalize().unwrap());
        for escape in [
            "local/sneaky",
            "local/../secrets",
            "local/data/../../..",
            "alloc/data",
            "alloc/..",
            "logs",
            ".orch",
            "web",
            "secrets",
            "../shared",
            "data",
        ] {
            let spec = ContainerSpec {
                mounts: vec![mount(escape, "/x")],
                ..Default::default()
            };
            assert!(
                matches!(check(&open, &alloc, &spec), Err(CapabilityError::Denied(_))),
                "{escape}"
            );
        }
        let relative_target = ContainerSpec {
            mounts: vec![mount("local/data", "data")],
            ..Default::default()
        };
        assert!(matches!(
            check(&open, &alloc, &relative_target),
            Err(CapabilityError::Denied(m)) if m.contains("absolute")
        ));
        let unknown = ContainerSpec {
            network_mode: "container:abc".into(),
            ..Default::default()
        };
        assert!(matches!(
            check(&open, &alloc, &unknown),
            Err(CapabilityError::Denied(_))
        ));
    }
}
