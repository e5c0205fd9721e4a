//! `oci://HOST[:PORT]/NAME[:TAG][@sha256:HEX]`: how a config or the CLI
//! names a plugin in a registry.

use crate::Digest;
use crate::error::RegistryError;
use std::fmt;
use std::str::FromStr;

const SCHEME: &str = "oci://";
/// What a reference without a tag or digest means, as with `docker pull`.
const DEFAULT_TAG: &str = "latest";

/// A parsed plugin reference. Always names a registry host (there is no
/// default registry: a plugin from Docker Hub must say `docker.io`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses `text`; the error names the part that is wrong and shows the
    /// expected shape.
    pub fn parse(text: &str) -> Result<Self, RegistryError> {
        let invalid = |part: &'static str, problem: String| RegistryError::InvalidReference {
            reference: text.to_owned(),
            part,
            problem,
        };
        let rest = text.trim().strip_prefix(SCHEME).ok_or_else(|| {
            invalid(
                "scheme",
                "a registry reference starts with oci:// (oci://HOST[:PORT]/NAME[:TAG][@sha256:HEX])"
                    .to_owned(),
            )
        })?;
        let (rest, digest) = match rest.split_once('@') {
            Some((rest, digest)) => (
                rest,
                Some(
                    digest
                        .parse::<Digest>()
                        .map_err(|problem| invalid("digest", problem))?,
                ),
            ),
            None => (rest, None),
        };
        let (registry, path) = rest.split_once('/').ok_or_else(|| {
            invalid(
                "name",
                "no repository name after the registry host; write oci://HOST[:PORT]/NAME[:TAG]"
                    .to_owned(),
            )
        })?;
        check_host(registry).map_err(|problem| invalid("registry host", problem))?;
        // A `:` after the last `/` starts the tag; one before it is part of
        // nothing valid and the name check below says so.
        let last_segment = path.rfind('/').map_or(0, |i| i + 1);
        let (repository, tag) = match path[last_segment..].rfind(':') {
            Some(i) => (
                &path[..last_segment + i],
                Some(&path[last_segment + i + 1..]),
            ),
            None => (path, None),
        };
        check_name(repository).map_err(|problem| invalid("name", problem))?;
        if let Some(tag) = tag {
            check_tag(tag).map_err(|problem| invalid("tag", problem))?;
        }
        let tag = match (tag, &digest) {
            (Some(tag), _) => Some(tag.to_owned()),
            (None, Some(_)) => None,
            (None, None) => Some(DEFAULT_TAG.to_owned()),
        };
        Ok(Self {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            tag,
            digest,
        })
    }

    /// `HOST[:PORT]`, the key of `[registry."HOST:PORT"]` and of the Docker
    /// config's `auths`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The pinned manifest digest, if the reference has one.
    pub fn digest(&self) -> Option<Digest> {
        self.digest
    }

    /// The same reference pinned to `digest` (keeping its tag, which then
    /// only documents where the digest came from).
    pub fn with_digest(&self, digest: Digest) -> Self {
        Self {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The same reference without its digest: what the lock file is keyed by.
    pub fn without_digest(&self) -> Self {
        Self {
            digest: None,
            tag: self.tag.clone().or_else(|| Some(DEFAULT_TAG.to_owned())),
            ..self.clone()
        }
    }

    /// Loopback registries are spoken to over plain HTTP, like Docker's
    /// default for `localhost`; everything else over HTTPS.
    pub(crate) fn is_loopback(&self) -> bool {
        let host = match self.registry.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => &self.registry,
        };
        // An address, not a prefix: `127.example.com` is a name anywhere.
        host == "localhost"
            || host == "[::1]"
            || host
                .parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    pub(crate) fn oci(&self) -> oci_client::Reference {
        match (self.digest, &self.tag) {
            (Some(digest), _) => oci_client::Reference::with_digest(
                self.registry.clone(),
                self.repository.clone(),
                digest.to_string(),
            ),
            (None, tag) => oci_client::Reference::with_tag(
                self.registry.clone(),
                self.repository.clone(),
                tag.clone().unwrap_or_else(|| DEFAULT_TAG.to_owned()),
            ),
        }
    }
}

impl FromStr for Reference {
    type Err = RegistryError;

    fn from_str(s: &str) -> Result<Self, RegistryError> {
        Self::parse(s)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

fn check_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("empty; write oci://HOST[:PORT]/NAME".to_owned());
    }
    let (name, port) = if let Some(v6) = host.strip_prefix('[') {
        let (addr, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("`{host}` opens [ for an IPv6 address but never closes it"))?;
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("`{addr}` is not an IPv6 address"));
        }
        match after {
            "" => return Ok(()),
            _ => match after.strip_prefix(':') {
                Some(port) => ("", Some(port)),
                None => return Err(format!("`{host}`: only :PORT may follow the ]")),
            },
        }
    } else {
        match host.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        }
    };
    if let Some(port) = port
        && !port.parse::<u16>().is_ok_and(|p| p > 0)
    {
        return Err(format!("port `{port}` is not a number from 1 to 65535"));
    }
    if !name.is_empty()
        && !name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
    {
        return Err(format!(
            "`{name}` is not a host name (letters, digits, - and . only) or an IP address"
        ));
    }
    Ok(())
}

/// The distribution spec's repository name: lowercase path components of
/// `[a-z0-9]` joined by `.`, `_`, `__` or `-`, separated by `/`.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the repository name is empty".to_owned());
    }
    for component in name.split('/') {
        if component.is_empty() {
            return Err(format!(
                "`{name}` has an empty path component (`//` or a trailing /)"
            ));
        }
        if let Some(bad) = component.chars().find(|c| {
            !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
        }) {
            return Err(format!(
                "`{name}` contains `{bad}`; repository names are lowercase letters, digits and . _ - between them, components separated by /"
            ));
        }
        let first_last = [component.chars().next(), component.chars().last()];
        if first_last
            .iter()
            .any(|c| c.is_some_and(|c| !c.is_ascii_alphanumeric()))
        {
            return Err(format!(
                "`{component}` in `{name}` starts or ends with a separator; each component starts and ends with a letter or digit"
            ));
        }
    }
    Ok(())
}

fn check_tag(tag: &str) -> Result<(), String> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{tag}` is not a tag; a tag is 1 to 128 letters, digits, _ . - (not starting with . or -)"
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests may")]
    use super::*;

    fn part(text: &str) -> &'static str {
        match Reference::parse(text) {
            Err(RegistryError::InvalidReference { part, .. }) => part,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn parses_every_shape() {
        let d = Digest::of(b"x");
        let r = Reference::parse("oci://127.0.0.1:5000/scorers/binpack:1.0").unwrap();
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.repository(), "scorers/binpack");
        assert_eq!(r.tag(), Some("1.0"));
        assert!(r.is_loopback());
        let r = Reference::parse(&format!("oci://ghcr.io/a/b@{d}")).unwrap();
        assert_eq!((r.tag(), r.digest()), (None, Some(d)));
        assert!(!r.is_loopback());
        let r = Reference::parse(&format!("oci://localhost:80/b:v1@{d}")).unwrap();
        assert_eq!((r.tag(), r.digest()), (Some("v1"), Some(d)));
        assert_eq!(r.to_string(), format!("oci://localhost:80/b:v1@{d}"));
        let r = Reference::parse("oci://[::1]:5000/x").unwrap();
        assert_eq!(r.tag(), Some("latest"));
    }

    #[test]
    fn names_the_part_that_is_wrong() {
        assert_eq!(part("ghcr.io/a:b"), "scheme");
        assert_eq!(part("oci://ghcr.io"), "name");
        assert_eq!(part("oci:///a"), "registry host");
        assert_eq!(part("oci://host:99999/a"), "registry host");
        assert_eq!(part("oci://host/Upper"), "name");
        assert_eq!(part("oci://host/a//b"), "name");
        assert_eq!(part("oci://host/a:-bad"), "tag");
        assert_eq!(part("oci://host/a@sha256:1234"), "digest");
        assert_eq!(part("oci://host/a@md5:1234"), "digest");
    }
}
