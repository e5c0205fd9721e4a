//! Registry credentials: from the config, else the Docker config file,
//! else none. A password is never shown: `Debug` redacts it, and errors
//! name only the user and where the credentials came from.

use crate::RegistryError;
use base64::Engine as _;
use std::fmt;
use std::path::{Path, PathBuf};

/// A user name and password for HTTP basic authentication.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    username: String,
    password: String,
}

impl Credentials {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
        }
    }

    pub fn username(&self) -> &str {
        &self.username
    }

    /// The secret itself, for the one place that presents it (a request's
    /// authorization, or the container engine's pull).
    pub fn password(&self) -> &str {
        &self.password
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Where a registry's credentials came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// The orch config (`[registry."HOST"]`), described by the caller
    /// (e.g. the file name).
    Config(String),
    /// `auths` of a Docker config file.
    DockerConfig(PathBuf),
    Anonymous,
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(what) => f.write_str(what),
            Self::DockerConfig(path) => write!(f, "the Docker config {}", path.display()),
            Self::Anonymous => f.write_str("no credentials"),
        }
    }
}

/// The credentials to present to one registry, and their origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    credentials: Option<Credentials>,
    source: CredentialSource,
}

impl Auth {
    pub fn anonymous() -> Self {
        Self {
            credentials: None,
            source: CredentialSource::Anonymous,
        }
    }

    pub fn basic(credentials: Credentials, source: CredentialSource) -> Self {
        Self {
            credentials: Some(credentials),
            source,
        }
    }

    /// `explicit` credentials for `registry` when given, else those the
    /// Docker config file holds for it, else none. A Docker config that
    /// cannot be read or parsed is an error (naming the file), not a
    /// silent anonymous pull.
    pub fn for_registry(
        registry: &str,
        explicit: Option<(Credentials, CredentialSource)>,
    ) -> Result<Self, RegistryError> {
        if let Some((credentials, source)) = explicit {
            return Ok(Self::basic(credentials, source));
        }
        match docker_config_path() {
            Some(path) => Self::from_docker_config(&path, registry),
            None => Ok(Self::anonymous()),
        }
    }

    /// The credentials the Docker config at `path` holds for `registry`
    /// (`auths.REGISTRY.auth`, base64 of `user:password`); anonymous when
    /// the file does not exist or has no entry for it.
    pub fn from_docker_config(path: &Path, registry: &str) -> Result<Self, RegistryError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::anonymous()),
            Err(e) => return Err(RegistryError::file(path, format!("cannot read: {e}"))),
        };
        // Deliberately no serde error text: it may quote the file's content.
        let config: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            RegistryError::file(
                path,
                format!("not valid JSON (line {}); fix or remove it", e.line()),
            )
        })?;
        // Docker Hub is filed under its old index address.
        let hosts: &[&str] = if registry == "docker.io" {
            &["docker.io", "index.docker.io", "registry-1.docker.io"]
        } else {
            &[registry]
        };
        let entry = config
            .get("auths")
            .and_then(|a| a.as_object())
            .and_then(|auths| {
                auths
                    .iter()
                    .find_map(|(key, value)| hosts.contains(&docker_key_host(key)).then_some(value))
            });
        let Some(entry) = entry else {
            // `docker login` on a desktop keeps the secret in a helper
            // program, which orch does not run: say so rather than pull
            // anonymously in silence.
            let helper = config
                .get("credHelpers")
                .and_then(|h| h.get(registry))
                .or_else(|| config.get("credsStore"))
                .and_then(|h| h.as_str());
            if let Some(helper) = helper {
                tracing::warn!(
                    registry,
                    file = %path.display(),
                    "the Docker config keeps credentials in the helper docker-credential-{helper}, which orch does not run; \
                     give this registry's username and password_env in orch's config instead"
                );
            }
            return Ok(Self::anonymous());
        };
        let bad = |what: &str| {
            RegistryError::file(
                path,
                format!("auths.\"{registry}\": {what}; run `docker login {registry}` again"),
            )
        };
        let credentials = match entry.get("auth").and_then(|a| a.as_str()) {
            Some(encoded) => {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(encoded.trim())
                    .map_err(|_| bad("`auth` is not base64"))?;
                let decoded =
                    String::from_utf8(decoded).map_err(|_| bad("`auth` is not UTF-8 text"))?;
                let (user, password) = decoded
                    .split_once(':')
                    .ok_or_else(|| bad("`auth` is not user:password"))?;
                Credentials::new(user, password)
            }
            None => match (
                entry.get("username").and_then(|u| u.as_str()),
                entry.get("password").and_then(|p| p.as_str()),
            ) {
                (Some(user), Some(password)) => Credentials::new(user, password),
                // An entry with only an identity token or a helper: nothing
                // orch can present.
                _ => return Ok(Self::anonymous()),
            },
        };
        Ok(Self::basic(
            credentials,
            CredentialSource::DockerConfig(path.to_path_buf()),
        ))
    }

    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    pub fn source(&self) -> &CredentialSource {
        &self.source
    }

    pub(crate) fn oci(&self) -> oci_client::secrets::RegistryAuth {
        match &self.credentials {
            Some(c) => {
                oci_client::secrets::RegistryAuth::Basic(c.username.clone(), c.password.clone())
            }
            None => oci_client::secrets::RegistryAuth::Anonymous,
        }
    }
}

/// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn docker_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker/config.json"))
}

/// `auths` keys are `HOST[:PORT]`, or a URL such as
/// `https://index.docker.io/v1/` written by older clients.
fn docker_key_host(key: &str) -> &str {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or(key)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests may")]
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let auth = Auth::basic(
            Credentials::new("alice", "hunter2"),
            CredentialSource::Config("orch.toml".into()),
        );
        let shown = format!("{auth:?}");
        assert!(
            shown.contains("alice") && !shown.contains("hunter2"),
            "{shown}"
        );
    }

    #[test]
    fn reads_docker_config_auths() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("bob:s3cret");
        std::fs::write(
            &path,
            format!(r#"{{"auths":{{"https://127.0.0.1:5000/v1/":{{"auth":"{auth}"}}}}}}"#),
        )
        .unwrap();
        let found = Auth::from_docker_config(&path, "127.0.0.1:5000").unwrap();
        assert_eq!(
            found.credentials(),
            Some(&Credentials::new("bob", "s3cret"))
        );
        let other = Auth::from_docker_config(&path, "127.0.0.1:5001").unwrap();
        assert_eq!(other, Auth::anonymous());
        let missing = Auth::from_docker_config(&dir.path().join("none.json"), "x").unwrap();
        assert_eq!(missing, Auth::anonymous());
        std::fs::write(&path, "{\"auths\": {\"x\": {\"auth\": \"hunter2\"").unwrap();
        let e = Auth::from_docker_config(&path, "x")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn docker_hub_is_found_under_its_index_address_and_helpers_mean_anonymous() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("hub:pw");
        std::fs::write(
            &path,
            format!(
                r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}}}},"credsStore":"desktop"}}"#
            ),
        )
        .unwrap();
        let hub = Auth::from_docker_config(&path, "docker.io").unwrap();
        assert_eq!(hub.credentials(), Some(&Credentials::new("hub", "pw")));
        // Kept by the helper: orch cannot read it (and says so in its log).
        let other = Auth::from_docker_config(&path, "ghcr.io").unwrap();
        assert_eq!(other, Auth::anonymous());
    }
}
