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

use super::scorer::{ScorerLoadError, ScorerSource, load_scorer_with};
use super::{Config, ConfigError, SchedulerConfig};
use crate::scheduler::Scheduler;
use crate::scheduler::score::Scorer;
use orch_plugin_runtime::{Digest, Runtime};
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

/// Re-reads the config on demand or when it changes, and hands a new
/// [`Scheduler`] to its callback when `[scheduler]` (or the scorer file it
/// names) changed and the new scorer was accepted. Dropping it stops the
/// watch thread.
pub struct Reloader {
    inner: Arc<Inner>,
    watch: Mutex<Option<Watch>>,
}

type OnChange = Box<dyn Fn(Scheduler) + Send + Sync>;

struct Inner {
    path: PathBuf,
    runtime: Runtime,
    on_change: OnChange,
    state: Mutex<State>,
    /// The files' stamps the watch thread last saw; taken first in `new`,
    /// so an edit made before the thread starts is still noticed.
    seen: Mutex<Stamps>,
    /// The file's `[scheduler]` already differed from the running one when
    /// the reloader was made: an edit during start-up.
    stale_at_start: bool,
}

struct State {
    /// The scheduler section in use.
    running: SchedulerConfig,
    /// The scorer in use.
    scorer: Arc<dyn Scorer>,
    /// The fallback in use, if the config names one.
    fallback: Option<Arc<dyn Scorer>>,
    /// The file as last read: restart-only settings are compared with it,
    /// not with the running config, so CLI overrides are not reported as
    /// changes, and a change is reported once.
    file: Config,
}

struct Watch {
    stop: Arc<Stop>,
    thread: JoinHandle<()>,
}

impl Reloader {
    /// `config` is what the server runs with (CLI overrides applied) and
    /// `scheduler` the one it loaded from it; `on_change` receives each
    /// accepted scheduler (the server's `Current::set`). It is called with
    /// the reloader's lock held, so reloads apply in order; it must not
    /// call back into the reloader.
    pub fn new(
        path: impl Into<PathBuf>,
        config: Config,
        runtime: Runtime,
        scheduler: &Scheduler,
        on_change: impl Fn(Scheduler) + Send + Sync + 'static,
    ) -> Self {
        let path = path.into();
        let seen = Mutex::new([stamp(&path), None]);
        // The file's own values, for telling later edits from overrides;
        // if it cannot be read now, the next successful read is compared
        // with what the server runs.
        let file = Config::load(&path).unwrap_or_else(|_| config.clone());
        // CLI overrides never touch `[scheduler]`, so a difference there is
        // an edit made while the server was starting.
        let stale_at_start = file.scheduler != config.scheduler;
        let inner = Arc::new(Inner {
            path,
            runtime,
            on_change: Box::new(on_change),
            state: Mutex::new(State {
                running: config.scheduler,
                scorer: scheduler.scorer().clone(),
                fallback: scheduler.fallback().cloned(),
                file,
            }),
            seen,
            stale_at_start,
        });
        let scorer_stamp = inner.stamps()[1];
        lock(&inner.seen)[1] = scorer_stamp;
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
                            std::mem::replace(&mut *seen, now) != now
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
        let mut state = lock(&self.state);
        let old = format!("{} ({})", state.scorer.label(), state.scorer.digest());
        let config = match Config::load(&self.path) {
            Ok(c) => c,
            Err(e) => {
                // One log line, however many problems the file has.
                let e_line = e.to_string().replace('\n', "; ");
                tracing::error!("config reload refused: {e_line}; still scoring with {old}");
                return Reloaded::ConfigRefused(e);
            }
        };
        let restart = state.file.restart_needed(&config);
        if !restart.is_empty() {
            tracing::warn!(
                "config {}: {} changed; not applied: a restart is needed to apply it",
                self.path.display(),
                restart.join(", ")
            );
        }
        state.file = config.clone();

        let new = &config.scheduler;
        let same_scorer = new.scorer == state.running.scorer
            && new.limits == state.running.limits
            && match scorer_file_digest(new, &config.base_dir, &config.registry) {
                // The same path with new bytes is a new scorer (rebuilt in
                // place, then SIGHUP).
                Ok(Some(digest)) => digest.to_string() == state.scorer.digest(),
                Ok(None) => true,
                Err(e) => {
                    tracing::error!("config reload refused: {e}; still scoring with {old}");
                    return Reloaded::ScorerRefused(e);
                }
            };
        let same_fallback =
            new.fallback == state.running.fallback && new.limits == state.running.limits;
        if same_scorer && same_fallback && new.sampling == state.running.sampling {
            tracing::debug!("config {}: the scheduler is unchanged", self.path.display());
            return Reloaded::Unchanged;
        }
        let scorer = if same_scorer {
            state.scorer.clone()
        } else {
            match load_scorer_with(new, &config.base_dir, &config.registry, &self.runtime) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!("config reload refused: {e}; still scoring with {old}");
                    return Reloaded::ScorerRefused(e);
                }
            }
        };
        let fallback = if same_fallback {
            state.fallback.clone()
        } else {
            match &new.fallback {
                None => None,
                Some(name) => {
                    let fallback = SchedulerConfig {
                        scorer: name.clone(),
                        fallback: None,
                        ..new.clone()
                    };
                    match load_scorer_with(
                        &fallback,
                        &config.base_dir,
                        &config.registry,
                        &self.runtime,
                    ) {
                        Ok(s) => Some(s),
                        Err(e) => {
                            tracing::error!(
                                "config reload refused: the fallback: {e}; still scoring with {old}"
                            );
                            return Reloaded::ScorerRefused(e);
                        }
                    }
                }
            }
        };
        let sampling = new.sampling.sampling();
        if same_scorer {
            tracing::info!(
                "scheduler: now sampling {} candidates or {}% of the nodes; still scoring with {old}",
                sampling.candidates,
                sampling.percent
            );
        } else {
            tracing::info!(
                "scheduler: now scoring with {} ({})",
                scorer.label(),
                scorer.digest()
            );
        }
        let applied = Reloaded::Applied {
            label: scorer.label().to_owned(),
            digest: scorer.digest().to_owned(),
        };
        if !same_fallback {
            match &fallback {
                Some(f) => {
                    tracing::info!("scheduler: falls back to {} ({})", f.label(), f.digest())
                }
                None => tracing::info!("scheduler: no fallback; a failing scorer fails closed"),
            }
        }
        state.running = new.clone();
        state.scorer = scorer.clone();
        state.fallback = fallback.clone();
        let scheduler = Scheduler::new(scorer, sampling);
        (self.on_change)(match fallback {
            Some(f) => scheduler.with_fallback(f),
            None => scheduler,
        });
        applied
    }

    /// What the watch thread compares: the config file's and the scorer
    /// file's modification time and size.
    fn stamps(&self) -> Stamps {
        let scorer = {
            let state = lock(&self.state);
            match ScorerSource::resolve(&state.file.scheduler.scorer, &state.file.base_dir) {
                Ok(ScorerSource::File(path)) => Some(path),
                _ => None,
            }
        };
        [stamp(&self.path), scorer.as_deref().and_then(stamp)]
    }
}

/// The digest of the scorer file `config` names, or `None` for a built-in
/// (whose bytes cannot change while the server runs).
fn scorer_file_digest(
    config: &SchedulerConfig,
    base_dir: &Path,
    registries: &std::collections::BTreeMap<String, super::RegistryAuthConfig>,
) -> Result<Option<Digest>, ScorerLoadError> {
    match ScorerSource::resolve(&config.scorer, base_dir)? {
        ScorerSource::Builtin(_) => Ok(None),
        source => Ok(Some(Digest::of(&source.read_with(registries)?))),
    }
}

type Stamp = (Option<SystemTime>, u64);
/// The config file's and the scorer file's.
type Stamps = [Option<Stamp>; 2];

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
