//! The `artifacts` capability: fetch a file into a task's directory from
//! `http(s)://`, `file://` or a path in the task directory.
//!
//! Remote downloads must name their sha256: the digest is checked while the
//! bytes stream in, and a verified download is kept in
//! `<data_dir>/cache/artifacts/<sha256>`, so the same artifact is never
//! downloaded twice on a node and a mismatch never leaves a file behind.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use orch_plugin_runtime::FetchSpec;
use sha2::{Digest as _, Sha256};

use crate::dirs;
use crate::host::HostError;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// From the request to the response's headers.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);
/// A body that stalls this long is given up; a slow but moving one is not.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Whether this build speaks TLS (ureq's `rustls` feature).
pub(crate) const HTTPS: bool = cfg!(feature = "https");

pub(crate) fn http_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_recv_response(Some(RESPONSE_TIMEOUT))
        .timeout_per_read(Some(READ_TIMEOUT))
        .http_status_as_error(false)
        .build()
        .into()
}

enum Source<'a> {
    Remote(&'a str),
    Local(PathBuf),
}

pub(crate) struct Fetcher<'a> {
    pub http: &'a ureq::Agent,
    pub data_dir: &'a Path,
    pub max_bytes: u64,
}

impl Fetcher<'_> {
    pub(crate) fn fetch(
        &self,
        alloc_id: &str,
        task: &str,
        spec: &FetchSpec,
    ) -> Result<PathBuf, HostError> {
        let task_dir = dirs::create_task_dirs(self.data_dir, alloc_id, task)?.task;
        let source = classify(&spec.source, &task_dir)?;
        let expected = spec.sha256.as_deref().map(parse_sha256).transpose()?;
        let dest = destination(&task_dir, &spec.destination, &spec.source)?;
        let parent = dest.parent().unwrap_or(&task_dir);
        match source {
            Source::Remote(url) => {
                let Some(expected) = expected else {
                    return Err(artifact(format!(
                        "{url}: a sha256 is required for http(s) artifacts; add the file's sha256 \
                         (e.g. from `sha256sum`) to the artifact"
                    )));
                };
                let cached = self.cached(url, &expected)?;
                let tmp = temp_path(parent, &dest);
                let result = fs::copy(&cached, &tmp)
                    .map_err(|e| HostError::io("copy the cached artifact to", &tmp, e))
                    .and_then(|_| finish(&tmp, &dest, spec.mode));
                if result.is_err() {
                    let _ = fs::remove_file(&tmp);
                }
                result?;
            }
            Source::Local(path) => {
                let mut file =
                    File::open(&path).map_err(|e| HostError::io("open the artifact", &path, e))?;
                let tmp = temp_path(parent, &dest);
                let result = copy_verified(
                    &mut file,
                    &tmp,
                    self.max_bytes,
                    &spec.source,
                    expected.as_deref(),
                )
                .and_then(|()| finish(&tmp, &dest, spec.mode));
                if result.is_err() {
                    let _ = fs::remove_file(&tmp);
                }
                result?;
            }
        }
        Ok(dest)
    }

    /// The cache entry for `expected`, downloaded from `url` if missing.
    fn cached(&self, url: &str, expected: &str) -> Result<PathBuf, HostError> {
        let cache = dirs::artifact_cache_dir(self.data_dir);
        let path = cache.join(expected);
        if path.is_file() {
            return Ok(path);
        }
        if url.starts_with("https://") && !HTTPS {
            return Err(artifact(format!(
                "{url}: this agent was built without TLS, so https artifacts cannot be downloaded; \
                 serve it over http (the sha256 still protects it) or build with the `https` feature"
            )));
        }
        fs::create_dir_all(&cache)
            .map_err(|e| HostError::io("create the artifact cache", &cache, e))?;
        let response = self
            .http
            .get(url)
            .call()
            .map_err(|e| artifact(format!("GET {url}: {}", describe_http_error(&e))))?;
        let status = response.status();
        if !status.is_success() {
            return Err(artifact(format!(
                "GET {url}: HTTP {} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            )));
        }
        let mut body = response.into_body().into_reader();
        let tmp = temp_path(&cache, &path);
        let result =
            copy_verified(&mut body, &tmp, self.max_bytes, url, Some(expected)).and_then(|()| {
                fs::rename(&tmp, &path)
                    .map_err(|e| HostError::io("move the download into", &path, e))
            });
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map(|()| path)
    }
}

fn artifact(message: String) -> HostError {
    HostError::Artifact(message)
}

fn classify<'a>(source: &'a str, task_dir: &Path) -> Result<Source<'a>, HostError> {
    if source.starts_with("http://") || source.starts_with("https://") {
        return Ok(Source::Remote(source));
    }
    if let Some(rest) = source.strip_prefix("file://") {
        let path = rest.strip_prefix("localhost").unwrap_or(rest);
        if !path.starts_with('/') {
            return Err(artifact(format!(
                "{source}: a file:// URL needs an absolute path, e.g. file:///srv/app.tar"
            )));
        }
        return Ok(Source::Local(PathBuf::from(path)));
    }
    if let Some((scheme, _)) = source.split_once("://") {
        return Err(artifact(format!(
            "{source}: unsupported scheme {scheme:?}; use http://, https://, file:// or a path in the task directory"
        )));
    }
    Ok(Source::Local(inside(task_dir, source, "artifact source")?))
}

fn parse_sha256(value: &str) -> Result<String, HostError> {
    let value = value.trim().to_ascii_lowercase();
    let value = value.strip_prefix("sha256:").unwrap_or(&value).to_owned();
    if value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(value)
    } else {
        Err(artifact(format!(
            "sha256 {value:?} is not a sha256: give 64 hexadecimal digits"
        )))
    }
}

/// `relative` joined to `root`, refused if it is absolute, has `..`, or
/// (once it exists) resolves through a symlink to outside `root`.
pub(crate) fn inside(
    root: &Path,
    relative: &str,
    what: &'static str,
) -> Result<PathBuf, HostError> {
    let escapes = || HostError::Escapes {
        what,
        path: relative.to_owned(),
    };
    let rel = Path::new(relative);
    if rel
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(escapes());
    }
    let path = root.join(rel);
    // Check the longest part that exists for a symlink pointing out.
    let mut probe = path.as_path();
    while !probe.exists() {
        match probe.parent() {
            Some(parent) => probe = parent,
            None => break,
        }
    }
    if let (Ok(real), Ok(real_root)) = (probe.canonicalize(), root.canonicalize())
        && !real.starts_with(&real_root)
    {
        return Err(escapes());
    }
    Ok(path)
}

/// The file to write: a destination ending in `/` (or empty) is a
/// directory, and the file keeps the source's name.
fn destination(task_dir: &Path, destination: &str, source: &str) -> Result<PathBuf, HostError> {
    let is_dir = destination.is_empty() || destination.ends_with('/');
    let mut dest = inside(task_dir, destination, "artifact destination")?;
    if is_dir || dest.is_dir() {
        let name = file_name(source)?;
        dest = dest.join(name);
    }
    let parent = dest.parent().unwrap_or(task_dir).to_owned();
    fs::create_dir_all(&parent).map_err(|e| HostError::io("create directory", &parent, e))?;
    // Created now, so a symlink on the way is visible to the check.
    let relative = dest
        .strip_prefix(task_dir)
        .unwrap_or(&dest)
        .to_string_lossy()
        .into_owned();
    inside(task_dir, &relative, "artifact destination")
}

fn file_name(source: &str) -> Result<String, HostError> {
    let path = source.split(['?', '#']).next().unwrap_or(source);
    let after_scheme = path.split_once("://").map(|(_, rest)| rest).unwrap_or(path);
    // For a URL, the first segment is the host, never a file name.
    let segments: Vec<&str> = after_scheme.split('/').collect();
    let name = if source.contains("://") && segments.len() < 2 {
        ""
    } else {
        segments.last().copied().unwrap_or("")
    };
    if name.is_empty() || name == "." || name == ".." || name.contains('\0') {
        return Err(artifact(format!(
            "{source}: cannot take a file name from it; give the destination a file name"
        )));
    }
    Ok(name.to_owned())
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn temp_path(dir: &Path, target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".{name}.partial-{}-{n}", std::process::id()))
}

/// Streams `reader` into `tmp`, hashing as it goes, and refuses more than
/// `max_bytes` or a digest other than `expected`.
fn copy_verified(
    reader: &mut dyn Read,
    tmp: &Path,
    max_bytes: u64,
    source: &str,
    expected: Option<&str>,
) -> Result<(), HostError> {
    let mut file = File::create(tmp).map_err(|e| HostError::io("create", tmp, e))?;
    let mut hasher = Sha256::new();
    let mut total: u64 = 0;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(artifact(format!(
                    "{source}: reading failed after {total} bytes: {e}"
                )));
            }
        };
        total += n as u64;
        if total > max_bytes {
            return Err(artifact(format!(
                "{source}: larger than the agent's artifact limit of {max_bytes} bytes"
            )));
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n])
            .map_err(|e| HostError::io("write", tmp, e))?;
    }
    file.sync_all()
        .map_err(|e| HostError::io("write", tmp, e))?;
    let actual = orch_model::Digest::from_sha256(hasher.finalize().into()).hex();
    match expected {
        Some(expected) if expected != actual => Err(artifact(format!(
            "{source}: sha256 mismatch: expected {expected}, got {actual}; nothing was kept"
        ))),
        _ => Ok(()),
    }
}

fn finish(tmp: &Path, dest: &Path, mode: Option<u32>) -> Result<(), HostError> {
    if let Some(mode) = mode {
        fs::set_permissions(tmp, fs::Permissions::from_mode(mode & 0o7777))
            .map_err(|e| HostError::io("set the mode of", tmp, e))?;
    }
    fs::rename(tmp, dest).map_err(|e| HostError::io("move the artifact to", dest, e))
}

fn describe_http_error(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Io(io) if io.kind() == io::ErrorKind::ConnectionRefused => {
            "cannot connect: connection refused (is the server up?)".to_owned()
        }
        ureq::Error::Io(io) => format!("cannot connect: {io}"),
        ureq::Error::ConnectionFailed => "cannot connect".to_owned(),
        ureq::Error::HostNotFound => {
            "host not found (check the name and the node's DNS)".to_owned()
        }
        ureq::Error::Timeout(which) => format!("timed out ({which})"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_come_from_the_last_path_segment() {
        assert_eq!(
            file_name("http://h:1/a/b/app.tar.gz?x=1").unwrap(),
            "app.tar.gz"
        );
        assert_eq!(file_name("file:///srv/x.bin").unwrap(), "x.bin");
        assert_eq!(file_name("sub/conf.toml").unwrap(), "conf.toml");
        assert!(file_name("http://host").is_err());
        assert!(file_name("http://host/dir/").is_err());
    }

    #[test]
    fn sha256_must_be_64_hex_digits() {
        let good = "AB".repeat(32);
        assert_eq!(parse_sha256(&good).unwrap(), "ab".repeat(32));
        assert!(parse_sha256("abc").is_err());
        assert!(parse_sha256(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn paths_may_not_leave_the_root() {
        let root = tempfile::tempdir().unwrap();
        assert!(inside(root.path(), "local/x", "t").is_ok());
        assert!(inside(root.path(), "../x", "t").is_err());
        assert!(inside(root.path(), "/etc/passwd", "t").is_err());
        std::os::unix::fs::symlink("/etc", root.path().join("link")).unwrap();
        assert!(inside(root.path(), "link/passwd", "t").is_err());
    }
}
