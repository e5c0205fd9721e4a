//! Image references, registry credentials and what a failed pull means.

use std::path::Path;

use bollard::auth::DockerCredentials;
use orch_plugin_runtime::CapabilityError;

use super::settings::ContainerSettings;

/// An image reference split the way the engine's pull wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageRef {
    /// The registry host (`docker.io` when the reference names none).
    pub registry: String,
    /// Everything before the tag or digest, as given.
    pub repository: String,
    /// A tag, or a digest `sha256:…`.
    pub tag: String,
    /// Whether `tag` is a digest.
    pub digest: bool,
}

impl ImageRef {
    pub(crate) fn parse(image: &str) -> Result<ImageRef, CapabilityError> {
        let bad = |why: &str| {
            CapabilityError::Failed(format!(
                "image {image:?} is not a valid reference: {why}; e.g. registry.example:5000/app:1.2"
            ))
        };
        if image.is_empty() || image.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("it is empty or contains whitespace"));
        }
        let (name, tag, digest) = match image.split_once('@') {
            Some((name, digest)) => {
                if !digest.starts_with("sha256:") {
                    return Err(bad("the digest must start with sha256:"));
                }
                // A reference may carry both a tag and a digest: the digest wins.
                let name = strip_tag(name).0;
                (name, digest.to_owned(), true)
            }
            None => {
                let (name, tag) = strip_tag(image);
                (name, tag.unwrap_or("latest").to_owned(), false)
            }
        };
        if name.is_empty() || name.ends_with('/') || name.starts_with('/') {
            return Err(bad("the repository name is missing"));
        }
        let registry = match name.split_once('/') {
            Some((first, _))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                first.to_owned()
            }
            _ => "docker.io".to_owned(),
        };
        Ok(ImageRef {
            registry,
            repository: name.to_owned(),
            tag,
            digest,
        })
    }

    /// The reference with its tag or digest, for the engine's image lookup.
    pub(crate) fn full(&self) -> String {
        let sep = if self.digest { '@' } else { ':' };
        format!("{}{sep}{}", self.repository, self.tag)
    }
}

/// `name[:tag]` → (name, tag); a colon in the registry's `host:port` is not
/// a tag.
fn strip_tag(name: &str) -> (&str, Option<&str>) {
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[last_slash..].rfind(':') {
        Some(i) => (&name[..last_slash + i], Some(&name[last_slash + i + 1..])),
        None => (name, None),
    }
}

/// Credentials for a registry and where they came from (for messages; never
/// the secret itself).
pub(crate) struct Credentials {
    pub docker: DockerCredentials,
    pub source: String,
}

/// Credentials for `registry`: agent.toml first, then the Docker config
/// file, else none (anonymous).
pub(crate) fn credentials(
    settings: &ContainerSettings,
    registry: &str,
) -> Result<Option<Credentials>, CapabilityError> {
    if let Some(auth) = settings.auth.get(registry) {
        let source = format!("[containers.auth.\"{registry}\"] in agent.toml");
        let password = auth.password(&source).map_err(CapabilityError::Failed)?;
        return Ok(Some(Credentials {
            docker: docker_credentials(registry, &auth.username, &password),
            source,
        }));
    }
    let Some(path) = settings.docker_config_path() else {
        return Ok(None);
    };
    docker_config_credentials(&path, registry)
}

fn docker_credentials(registry: &str, username: &str, password: &str) -> DockerCredentials {
    DockerCredentials {
        username: Some(username.to_owned()),
        password: Some(password.to_owned()),
        serveraddress: Some(registry.to_owned()),
        ..Default::default()
    }
}

/// `auths.HOST` of a Docker CLI config file, read the way orch reads it for
/// plugins (orch_registry).
fn docker_config_credentials(
    path: &Path,
    registry: &str,
) -> Result<Option<Credentials>, CapabilityError> {
    let auth = orch_registry::Auth::from_docker_config(path, registry)
        .map_err(|e| CapabilityError::Failed(e.to_string()))?;
    Ok(auth.credentials().map(|c| Credentials {
        docker: docker_credentials(registry, c.username(), c.password()),
        source: format!(
            "auths.\"{registry}\" in the Docker config file {}",
            path.display()
        ),
    }))
}

/// Turns the engine's answer to a failed pull into an error that says what
/// to do. `status` is the HTTP status when the engine refused up front.
pub(crate) fn pull_error(
    image: &ImageRef,
    credentials: Option<&Credentials>,
    status: Option<u16>,
    message: &str,
) -> CapabilityError {
    let lower = message.to_ascii_lowercase();
    let registry = &image.registry;
    let full = image.full();
    let has = |needles: &[&str]| needles.iter().any(|n| lower.contains(n));
    if has(&[
        "unauthorized",
        "authentication required",
        "no basic auth credentials",
        "incorrect username or password",
    ]) {
        return CapabilityError::Failed(match credentials {
            Some(c) => format!(
                "pulling {full}: the registry {registry} refused the credentials from {}: {message}",
                c.source
            ),
            None => format!(
                "pulling {full}: the registry {registry} wants credentials and this node has none for it; \
                 add [containers.auth.\"{registry}\"] username and password (or password_env) to agent.toml, \
                 or log in with docker login {registry}: {message}"
            ),
        });
    }
    if status == Some(404)
        || has(&[
            "manifest unknown",
            "not found",
            "name unknown",
            "repository does not exist",
        ])
    {
        return CapabilityError::NotFound(format!(
            "image {full} was not found in the registry {registry}: {message}"
        ));
    }
    if has(&[
        "connection refused",
        "no such host",
        "dial tcp",
        "i/o timeout",
        "network is unreachable",
        "no route to host",
        "tls handshake",
        "server gave http response to https client",
    ]) {
        return CapabilityError::Failed(format!(
            "pulling {full}: cannot reach the registry {registry}: {message}"
        ));
    }
    CapabilityError::Failed(format!("pulling {full} from {registry}: {message}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        let r = ImageRef::parse("127.0.0.1:5000/team/app:1.2").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "127.0.0.1:5000/team/app");
        assert_eq!(r.tag, "1.2");
        let r = ImageRef::parse("127.0.0.1:5000/app").unwrap();
        assert_eq!(
            (r.repository.as_str(), r.tag.as_str()),
            ("127.0.0.1:5000/app", "latest")
        );
        let r = ImageRef::parse("busybox").unwrap();
        assert_eq!(r.registry, "docker.io");
        let d = format!("sha256:{}", "a".repeat(64));
        let r = ImageRef::parse(&format!("reg.io/app:1@{d}")).unwrap();
        assert_eq!(r.full(), format!("reg.io/app@{d}"));
        assert!(ImageRef::parse("").is_err());
        assert!(ImageRef::parse("reg.io/app@md5:x").is_err());
    }

    #[test]
    fn docker_config_credentials_by_host() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        use base64::Engine as _;
        let auth = base64::engine::general_purpose::STANDARD.encode("ann:s3cret");
        std::fs::write(
            &path,
            format!(r#"{{"auths":{{"http://127.0.0.1:5000":{{"auth":"{auth}"}}}}}}"#),
        )
        .unwrap();
        let settings = ContainerSettings {
            docker_config: Some(path.clone()),
            ..Default::default()
        };
        let c = credentials(&settings, "127.0.0.1:5000").unwrap().unwrap();
        assert_eq!(c.docker.username.as_deref(), Some("ann"));
        assert_eq!(c.docker.password.as_deref(), Some("s3cret"));
        assert!(!c.source.contains("s3cret"));
        assert!(credentials(&settings, "127.0.0.1:5001").unwrap().is_none());
    }

    #[test]
    fn agent_toml_wins_and_a_missing_password_variable_is_named() {
        let mut settings = ContainerSettings::default();
        settings.auth.insert(
            "r:5000".into(),
            super::super::RegistryAuth {
                username: "u".into(),
                password: None,
                password_env: Some("ORCH_TEST_SURELY_UNSET_PASSWORD".into()),
            },
        );
        let err = credentials(&settings, "r:5000").err().unwrap();
        assert!(
            err.to_string().contains("ORCH_TEST_SURELY_UNSET_PASSWORD"),
            "{err}"
        );
        settings.auth.get_mut("r:5000").unwrap().password = Some("pw".into());
        settings.auth.get_mut("r:5000").unwrap().password_env = None;
        let c = credentials(&settings, "r:5000").unwrap().unwrap();
        assert!(c.source.contains("agent.toml"), "{}", c.source);
    }
}
