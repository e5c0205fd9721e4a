//! Reloading `orch.toml` while the server runs: on SIGHUP (the server calls
//! [`Reloader::reload_now`]) and when the file changes (a thread polls its
//! modification time and size, and the scorer file's, every second).
//!
//! Only `[scheduler]` is applied. A new scorer must pass the same checks as
//! at start before it replaces the old one; if anything is wrong the old
//! scheduler keeps running and the log says why. Polling rather than
//! inotify keeps this free of new dependencies and works on every platform
//! and file system the server runs on; a second of delay does not matter
//! for a config edit.

use super::scorer::ScorerLoadError;
use super::{Config, ConfigError, Lineup};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

/// How often the watch thread looks at the files.
const POLL: Duration = Duration::from_secs(1);

/// What one reload did.
#[derive(Debug)]
pub enum Reloaded {
    /// Nothing the scheduler uses changed; the callback was not called.
    Unchanged,
    /// A new scheduler went to the callback.
    Applied {
        /// The scorer's name and version.
        label: String,
        /// `sha256:HEX` of the scorer.
        digest: String,
    },
    /// The file could not be read or is invalid; the old scheduler stays.
    ConfigRefused(ConfigError),
    /// The scorer it names was refused; the old scheduler stays.
    ScorerRefused(ScorerLoadError),
}

/// Re-reads the config on demand or when it changes, and hands its
/// `[scheduler]` to the [`Lineup`], which puts it in force (with what was
/// set at run time on top) when its scorers pass the checks. Dropping it
/// stops the watch thread.
pub struct Reloader {
    inner: Arc<Inner>,
    watch: Mutex<Option<Watch>>,
}

struct Inner {
    path: PathBuf,
    lineup: Arc<Lineup>,
    /// The file as last read: restart-only settings are compared with it,
    /// not with the running config, so CLI overrides are not reported as
    /// changes, and a change is reported once.
    file: Mutex<Config>,
    /// The files' stamps the watch thread last saw; taken first in `new`,
    /// so an edit made before the thread starts is still noticed.
    seen: Mutex<Stamps>,
    /// The file's `[scheduler]` already differed from the running one when
    /// the reloader was made: an edit during start-up.
    stale_at_start: bool,
}

struct Watch {
    stop: Arc<Stop>,
    thread: JoinHandle<()>,
}

impl Reloader {
    /// `config` is what the server runs with (CLI overrides applied), and
    /// `lineup` what it loaded from it.
    pub fn new(path: impl Into<PathBuf>, config: Config, lineup: Arc<Lineup>) -> Self {
        let path = path.into();
        let mut seen = vec![stamp(&path)];
        // The file's own values, for telling later edits from overrides;
        // if it cannot be read now, the next successful read is compared
        // with what the server runs.
        let file = Config::load(&path).unwrap_or_else(|_| config.clone());
        // CLI overrides never touch `[scheduler]`, so a difference there is
        // an edit made while the server was starting.
        let stale_at_start = file.scheduler != config.scheduler;
        seen.extend(lineup.scorer_files().iter().map(|p| stamp(p)));
        let inner = Arc::new(Inner {
            path,
            lineup,
            file: Mutex::new(file),
            seen: Mutex::new(seen),
            stale_at_start,
        });
        Self {
            inner,
            watch: Mutex::new(None),
        }
    }

    /// Re-reads the config now (SIGHUP). Blocks while a new scorer
    /// compiles (seconds for a large one): call it off the async threads.
    pub fn reload_now(&self) -> Reloaded {
        self.inner.reload()
    }

    /// Starts the thread that reloads when the config file or the scorer
    /// file changes (checked every second). A second call does nothing.
    pub fn spawn_watch(&self) -> std::io::Result<()> {
        let mut watch = lock(&self.watch);
        if watch.is_some() {
            return Ok(());
        }
        let stop = Arc::new(Stop::default());
        let inner = self.inner.clone();
        let thread = std::thread::Builder::new()
            .name("config watch".into())
            .spawn({
                let stop = stop.clone();
                move || {
                    // The file on disk already differs from what the
                    // server runs (edited while it started): reload soon.
                    let mut settling = inner.stale_at_start;
                    while !stop.wait(POLL) {
                        let now = inner.stamps();
                        let changed = {
                            let mut seen = lock(&inner.seen);
                            let changed = *seen != now;
                            *seen = now;
                            changed
                        };
                        // Reload once a change has held still for a poll,
                        // so a file caught mid-write (empty, or missing its
                        // later keys) is never applied.
                        if changed {
                            settling = true;
                        } else if settling {
                            settling = false;
                            inner.reload();
                        }
                    }
                }
            })?;
        *watch = Some(Watch { stop, thread });
        Ok(())
    }

    /// Stops the watch thread and waits for it (for a reload in progress
    /// to finish, if there is one).
    pub fn stop_watch(&self) {
        let watch = lock(&self.watch).take();
        if let Some(watch) = watch {
            watch.stop.stop();
            // A panic in the thread has already been reported by the
            // panic hook; there is nothing more to do with it here.
            let _ = watch.thread.join();
        }
    }
}

impl Drop for Reloader {
    /// Tells the thread to stop without waiting for it: a drop should not
    /// block on a component compiling.
    fn drop(&mut self) {
        if let Some(watch) = lock(&self.watch).take() {
            watch.stop.stop();
        }
    }
}

impl Inner {
    fn reload(&self) -> Reloaded {
        let config = match Config::load(&self.path) {
            Ok(c) => c,
            Err(e) => {
                // One log line, however many problems the file has.
                let e_line = e.to_string().replace('\n', "; ");
                tracing::error!(
                    "config reload refused: {e_line}; still scoring with {}",
                    self.lineup.current().get().scorer().label()
                );
                return Reloaded::ConfigRefused(e);
            }
        };
        {
            let mut file = lock(&self.file);
            let restart = file.restart_needed(&config);
            if !restart.is_empty() {
                tracing::warn!(
                    "config {}: {} changed; not applied: a restart is needed to apply it",
                    self.path.display(),
                    restart.join(", ")
                );
            }
            *file = config.clone();
        }
        let reloaded = self.lineup.set_file(&config);
        if matches!(reloaded, Reloaded::Unchanged) {
            tracing::debug!("config {}: the scheduler is unchanged", self.path.display());
        }
        reloaded
    }

    /// What the watch thread compares: the config file's and the scorer
    /// files' modification time and size.
    fn stamps(&self) -> Stamps {
        let mut stamps = vec![stamp(&self.path)];
        stamps.extend(self.lineup.scorer_files().iter().map(|p| stamp(p)));
        stamps
    }
}

type Stamp = (Option<SystemTime>, u64);
/// The config file's, then each scorer file's.
type Stamps = Vec<Option<Stamp>>;

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok(), meta.len()))
}

/// A flag the watch thread sleeps on, so that stopping it does not wait out
/// the poll interval.
#[derive(Default)]
struct Stop {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl Stop {
    fn stop(&self) {
        *lock(&self.stopped) = true;
        self.wake.notify_all();
    }

    /// Sleeps up to `timeout`; whether it was stopped.
    fn wait(&self, timeout: Duration) -> bool {
        let stopped = lock(&self.stopped);
        match self.wake.wait_timeout_while(stopped, timeout, |s| !*s) {
            Ok((s, _)) => *s,
            Err(p) => *p.into_inner().0,
        }
    }
}

/// A poisoned lock means a callback panicked mid-reload; the state it
/// guards is still consistent (it is only replaced whole), so carry on.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
