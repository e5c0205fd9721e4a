//! The `[containers]` section of agent.toml: where the engine is, what the
//! operator allows containers to do, and registry credentials.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::host::HostError;

/// The operator's container policy and engine settings. Everything a
/// container could use to reach the host (privileged mode, host
/// namespaces, host paths) is off unless allowed here.
///
/// ```toml
/// [containers]
/// endpoint = "unix:///var/run/docker.sock"
/// allow_privileged = false
/// allowed_host_paths = ["/srv/shared"]
/// port_bind_address = "127.0.0.1"
///
/// [containers.auth."registry.example:5000"]
/// username = "ci"
/// password_env = "REGISTRY_PASSWORD"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContainerSettings {
    /// `unix:///path`, `tcp://host:port` or a socket path; the default is
    /// `DOCKER_HOST`, else the local socket.
    pub endpoint: Option<String>,
    pub allow_privileged: bool,
    pub allow_host_network: bool,
    pub allow_host_pid: bool,
    pub allow_host_ipc: bool,
    /// Absolute host directories a mount source may be under.
    pub allowed_host_paths: Vec<PathBuf>,
    /// The host address container ports are published on.
    pub port_bind_address: String,
    /// Credentials by registry host (`HOST:PORT`).
    pub auth: BTreeMap<String, RegistryAuth>,
    /// A Docker CLI config file to take credentials from (`auths.HOST.auth`);
    /// the default is `$DOCKER_CONFIG/config.json`, else
    /// `~/.docker/config.json`.
    pub docker_config: Option<PathBuf>,
}

impl Default for ContainerSettings {
    fn default() -> Self {
        ContainerSettings {
            endpoint: None,
            allow_privileged: false,
            allow_host_network: false,
            allow_host_pid: false,
            allow_host_ipc: false,
            allowed_host_paths: Vec::new(),
            port_bind_address: "0.0.0.0".to_owned(),
            auth: BTreeMap::new(),
            docker_config: None,
        }
    }
}

/// One registry's credentials. The password is never printed: `Debug`
/// redacts it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryAuth {
    pub username: String,
    pub password: Option<String>,
    /// The environment variable that holds the password.
    pub password_env: Option<String>,
}

impl RegistryAuth {
    /// The password, from the file or the environment variable it names;
    /// the error names `source` (where these credentials were written).
    pub fn password(&self, source: &str) -> Result<String, String> {
        match (&self.password, &self.password_env) {
            (Some(password), _) => Ok(password.clone()),
            (None, Some(var)) => std::env::var(var).map_err(|_| {
                format!(
                    "{source} takes the password from the environment variable {var}, which is not set"
                )
            }),
            (None, None) => Err(format!("{source} has no password or password_env")),
        }
    }
}

impl fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryAuth")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("password_env", &self.password_env)
            .finish()
    }
}

impl ContainerSettings {
    /// The engine address to connect to, with its scheme.
    pub(crate) fn endpoint(&self) -> String {
        let given = self
            .endpoint
            .clone()
            .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()))
            .unwrap_or_else(|| "unix:///var/run/docker.sock".to_owned());
        if given.starts_with('/') {
            format!("unix://{given}")
        } else {
            given
        }
    }

    /// The Docker CLI config file credentials may come from.
    pub(crate) fn docker_config_path(&self) -> Option<PathBuf> {
        if let Some(path) = &self.docker_config {
            return Some(path.clone());
        }
        if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
            return Some(Path::new(&dir).join("config.json"));
        }
        std::env::var_os("HOME").map(|home| Path::new(&home).join(".docker").join("config.json"))
    }

    /// Refuses settings that cannot work, naming the key.
    pub(crate) fn check(&self) -> Result<(), HostError> {
        let bad = |why: String| Err(HostError::Config(format!("[containers] {why}")));
        let endpoint = self.endpoint();
        if !["unix://", "tcp://", "http://"]
            .iter()
            .any(|scheme| endpoint.starts_with(scheme))
        {
            return bad(format!(
                "endpoint {endpoint:?}: give unix:///PATH, tcp://HOST:PORT or a socket path"
            ));
        }
        for path in &self.allowed_host_paths {
            if !path.is_absolute() {
                return bad(format!(
                    "allowed_host_paths: {:?} is not absolute; give absolute host directories",
                    path.display()
                ));
            }
        }
        if self.port_bind_address.parse::<std::net::IpAddr>().is_err() {
            return bad(format!(
                "port_bind_address {:?} is not an IP address, e.g. \"127.0.0.1\"",
                self.port_bind_address
            ));
        }
        for (host, auth) in &self.auth {
            match (&auth.password, &auth.password_env) {
                (Some(_), None) | (None, Some(_)) => {}
                _ => {
                    return bad(format!(
                        "auth.{host:?}: give exactly one of password and password_env"
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_a_password() {
        let auth = RegistryAuth {
            username: "ci".into(),
            password: Some("hunter2".into()),
            password_env: None,
        };
        let mut settings = ContainerSettings::default();
        settings.auth.insert("r:5000".into(), auth);
        let text = format!("{settings:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
    }

    #[test]
    fn parses_and_checks() {
        let s: ContainerSettings = toml::from_str(
            "allow_privileged = true\nport_bind_address = \"127.0.0.1\"\n[auth.\"r:5000\"]\nusername = \"u\"\npassword_env = \"P\"\n",
        )
        .unwrap();
        assert!(s.allow_privileged && !s.allow_host_network);
        assert!(s.check().is_ok());
        let both: ContainerSettings =
            toml::from_str("[auth.r]\nusername = \"u\"\npassword = \"x\"\npassword_env = \"P\"\n")
                .unwrap();
        assert!(
            both.check()
                .unwrap_err()
                .to_string()
                .contains("exactly one")
        );
        let relative: ContainerSettings =
            toml::from_str("allowed_host_paths = [\"srv\"]\n").unwrap();
        assert!(relative.check().is_err());
        assert!(toml::from_str::<ContainerSettings>("allow_priviledged = true\n").is_err());
    }
}
