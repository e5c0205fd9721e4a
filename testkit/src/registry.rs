//! A container registry (Debian's `docker-registry`) listening on
//! 127.0.0.1, optionally behind a password, and container images built
//! locally `FROM scratch` around Debian's static busybox, since this machine
//! has a Docker engine but nothing to pull from.
//!
//! Everything here fails with a message that says what to install rather
//! than skipping: `scripts/setup` installs both packages.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The registry binary from Debian's `docker-registry` package.
const REGISTRY_BIN: &str = "docker-registry";
/// Debian's `busybox-static`: one static binary, so an image needs nothing else.
const BUSYBOX: &str = "/bin/busybox";

/// A `docker-registry` serving on 127.0.0.1 from a temporary directory;
/// killed when dropped.
pub struct Registry {
    addr: SocketAddr,
    child: Child,
    dir: tempfile::TempDir,
    credentials: Option<(String, String)>,
}

impl Registry {
    /// A registry anyone may push to and pull from.
    pub fn start() -> Registry {
        Self::launch(None)
    }

    /// A registry that wants HTTP basic credentials for everything.
    pub fn start_with_password(user: &str, password: &str) -> Registry {
        Self::launch(Some((user.to_owned(), password.to_owned())))
    }

    /// `127.0.0.1:PORT`, the host part of image references.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The user and password a password registry wants.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials
            .as_ref()
            .map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// Stops the registry process (its port stops answering); the local
    /// tags of its images go when it is dropped.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Where the registry keeps blobs, to look at or corrupt in a test.
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Logs the docker CLI into this registry (for pushing images to a
    /// password registry); `docker logout` runs on drop.
    pub fn docker_login(&self) {
        let (user, password) = self.credentials().expect("registry has no password");
        let mut child = Command::new("docker")
            .args([
                "login",
                "--username",
                user,
                "--password-stdin",
                &self.host(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running docker login");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(password.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "docker login {}: {}",
            self.host(),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn launch(credentials: Option<(String, String)>) -> Registry {
        let mut dir = tempfile::tempdir().expect("temp dir for the registry");
        let mut last_error = String::new();
        // A port picked by binding :0 may be taken again before the
        // registry binds it; try a few.
        for _ in 0..5 {
            let port = free_port();
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let config = dir.path().join("config.yml");
            let mut yaml = format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
                dir.path().join("data").display()
            );
            if let Some((user, password)) = &credentials {
                let hash = bcrypt::hash(password, 5).expect("bcrypt");
                let htpasswd = dir.path().join("htpasswd");
                std::fs::write(&htpasswd, format!("{user}:{hash}\n")).unwrap();
                yaml.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: orch-test\n    path: {}\n",
                    htpasswd.display()
                ));
            }
            std::fs::write(&config, yaml).unwrap();
            let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
            let child = match Command::new(REGISTRY_BIN)
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
            {
                Ok(child) => child,
                Err(e) => panic!(
                    "cannot run {REGISTRY_BIN} ({e}); install Debian's docker-registry package (scripts/setup does)"
                ),
            };
            let mut registry = Registry {
                addr,
                child,
                dir,
                credentials: credentials.clone(),
            };
            match registry.wait_ready() {
                Ok(()) => return registry,
                Err(e) => {
                    last_error = e;
                    let _ = registry.child.kill();
                    let _ = registry.child.wait();
                    dir = registry.take_dir();
                }
            }
        }
        panic!("the test registry did not start: {last_error}");
    }

    fn take_dir(mut self) -> tempfile::TempDir {
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        drop(self);
        dir
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(self.dir.path().join("registry.log"))
                    .unwrap_or_default();
                return Err(format!("{REGISTRY_BIN} exited ({status}): {log}"));
            }
            if let Some(status) = http_status(self.addr, "/v2/")
                && (status == 200 || status == 401)
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("{REGISTRY_BIN} did not answer on {}", self.addr));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if self.credentials.is_some() {
            let _ = Command::new("docker")
                .args(["logout", &self.addr.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Local tags of this registry's images (pushed or pulled by the
        // test) would pile up on the engine run after run.
        let prefix = format!("{}/", self.addr);
        if let Ok(out) = Command::new("docker")
            .args(["images", "--format", "{{.Repository}}:{{.Tag}}"])
            .output()
        {
            let tags: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|t| t.starts_with(&prefix))
                .map(str::to_owned)
                .collect();
            if !tags.is_empty() {
                let _ = Command::new("docker")
                    .arg("rmi")
                    .args(&tags)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}

/// A port on 127.0.0.1 nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding 127.0.0.1:0")
}

/// The status code of `GET path`, or `None` when nothing answers.
fn http_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// Runs `docker ARGS`, panicking with its output when it fails.
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run docker ({e}); this test needs the Docker engine"));
    assert!(
        out.status.success(),
        "docker {}: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether the Docker engine answers.
pub fn docker_available() -> bool {
    Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Builds an image tagged `tag`, `FROM scratch`: busybox with its applets
/// linked in `/bin`, `/tmp`, and, when `payload_mib` > 0, a layer holding
/// that many MiB of random bytes at `/payload` (for pull throughput).
/// `PATH` is `/bin`; the default command is `/bin/sh`.
pub fn build_image(tag: &str, payload_mib: usize) {
    static BUILDS: Mutex<()> = Mutex::new(());
    let _one_at_a_time = BUILDS.lock().unwrap_or_else(|p| p.into_inner());
    assert!(
        Path::new(BUSYBOX).exists(),
        "{BUSYBOX} is missing; install Debian's busybox-static package (scripts/setup does)"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(BUSYBOX, dir.path().join("busybox")).unwrap();
    let mut dockerfile = String::from(
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nRUN [\"/bin/busybox\", \"mkdir\", \"-p\", \"/tmp\", \"/www\"]\n",
    );
    if payload_mib > 0 {
        let mut bytes = vec![0u8; payload_mib << 20];
        let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ payload_mib as u64;
        for chunk in bytes.chunks_mut(8) {
            // xorshift: incompressible, so the registry moves every byte.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let n = chunk.len();
            chunk.copy_from_slice(&state.to_le_bytes()[..n]);
        }
        std::fs::write(dir.path().join("payload"), bytes).unwrap();
        dockerfile.push_str("COPY payload /payload\n");
    }
    // An image PATH of its own, so tests can tell it from the engine's or
    // the agent's default.
    dockerfile.push_str("ENV PATH=/bin\nCMD [\"/bin/sh\"]\n");
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    docker(&[
        "build",
        "--quiet",
        "--tag",
        tag,
        dir.path().to_str().unwrap(),
    ]);
}

/// Builds (once per test process) and pushes the busybox image to
/// `registry` as `NAME:TAG`; returns the full reference.
pub fn push_busybox(registry: &Registry, name_tag: &str) -> String {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| build_image(LOCAL_BUSYBOX, 0));
    let reference = format!("{}/{name_tag}", registry.host());
    docker(&["tag", LOCAL_BUSYBOX, &reference]);
    docker(&["push", &reference]);
    reference
}

/// The tag `push_busybox` builds the image under, before pushing.
pub const LOCAL_BUSYBOX: &str = "orch-test/busybox:latest";
