//! The control plane in one process, as `orch server` runs it: the store
//! (SQLite and its single writer), the plan applier, the evaluation broker
//! fed by the store's commits, scheduler workers on their own threads, the
//! config reloader, and the HTTP API.
//!
//! [`ControlPlane`] is everything but the API and the config; the
//! placement benchmark drives it directly.

use crate::api::{ApiContext, router};
use crate::broker::{Broker, BrokerOptions};
use crate::config::{Config, Lineup, Reloaded, Reloader};
use crate::heartbeat::Heartbeats;
use crate::metrics::Metrics;
use crate::scheduler::{Current, Shadows, Worker, WorkerOptions};
use crate::{Store, StoreOptions};
use orch_model::EvalStatus;
use orch_plugin_runtime::Runtime;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

/// Why the control plane did not start, or stopped on its own.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Config(#[from] crate::ConfigError),
    #[error(
        "cannot create the data dir {path}: {source}; set data_dir in the config or --data-dir"
    )]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot start the plugin runtime: {0}")]
    Runtime(#[from] orch_plugin_runtime::PluginError),
    #[error("{0}")]
    Scorer(#[from] crate::ScorerLoadError),
    #[error("{0}")]
    Store(#[from] crate::StoreError),
    #[error(
        "cannot listen on {addr}: {source}; is another orch server running there? set listen in the config or --listen"
    )]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// A thread, the async runtime or a signal handler could not be set up.
    #[error("cannot start {what}: {source}")]
    Start {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("the API server failed: {0}")]
    Serve(std::io::Error),
    /// What the caller runs beside the API ([`OnListening`]) failed.
    #[error("{0}")]
    Beside(String),
}

/// A setup step that failed with an I/O error, named.
fn start(what: &'static str) -> impl FnOnce(std::io::Error) -> ServeError {
    move |source| ServeError::Start { what, source }
}

/// How `orch server` was asked to run: a config file and what overrides it.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// The config file (`orch.toml`); without one, every default applies.
    /// Reloaded when it changes and on SIGHUP.
    pub config: Option<PathBuf>,
    /// Where the state database lives (overrides the config's `data_dir`).
    pub data_dir: Option<PathBuf>,
    /// Address the HTTP API listens on (overrides the config's `listen`).
    pub listen: Option<SocketAddr>,
}

/// The store, the broker and the workers, wired together, and the
/// heartbeat reaper when nodes are held to a TTL.
pub struct ControlPlane {
    pub store: Store,
    pub broker: Arc<Broker>,
    pub scheduler: Current,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
}

impl ControlPlane {
    /// Feeds the broker from the store's commits, hands it the evaluations
    /// a previous run left pending or blocked, and starts `workers` worker
    /// threads.
    pub fn start(
        store: Store,
        scheduler: impl Into<Current>,
        workers: usize,
        heartbeats: Option<&Arc<Heartbeats>>,
    ) -> Result<Self, ServeError> {
        let broker = Arc::new(Broker::new(BrokerOptions::default()));
        let feed = broker.clone();
        store.set_listener(Box::new(move |events| {
            for eval in &events.evals {
                enqueue(&feed, eval.clone());
            }
            if events.capacity_freed {
                feed.unblock(events.index);
            }
        }));
        let state = store.snapshot();
        let mut resumed: Vec<&Arc<orch_model::Evaluation>> = state
            .evals()
            .filter(|e| matches!(e.status, EvalStatus::Pending | EvalStatus::Blocked))
            .collect();
        // Oldest first, as the broker would have had them.
        resumed.sort_by_key(|e| e.create_index);
        for eval in &resumed {
            enqueue(&broker, (*eval).clone());
        }
        if !resumed.is_empty() {
            tracing::info!("resuming {} pending or blocked evaluations", resumed.len());
            // What freed capacity before the restart is not known: blocked
            // evaluations look once more at the state as it is.
            broker.unblock(state.index());
        }
        let scheduler = scheduler.into();
        let stop = Arc::new(AtomicBool::new(false));
        let mut handles = Vec::with_capacity(workers);
        for i in 0..workers.max(1) {
            let worker = Worker {
                store: store.clone(),
                broker: broker.clone(),
                scheduler: scheduler.clone(),
                options: WorkerOptions::default(),
            };
            handles.push(
                worker
                    .spawn(format!("orch-worker-{i}"), stop.clone())
                    .map_err(start("a scheduler worker thread"))?,
            );
        }
        if let Some(heartbeats) = heartbeats {
            // No agent has checked in with this process yet.
            heartbeats.start_grace(
                state
                    .nodes()
                    .filter(|n| n.status != orch_model::NodeStatus::Down)
                    .map(|n| n.id.clone()),
                std::time::Instant::now(),
            );
            handles.push(
                heartbeats
                    .spawn_reaper(store.clone(), stop.clone())
                    .map_err(start("the heartbeat thread"))?,
            );
        }
        Ok(Self {
            store,
            broker,
            scheduler,
            stop,
            workers: handles,
        })
    }

    /// Stops the workers once they finish the evaluation in hand.
    pub fn shutdown(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for handle in self.workers.drain(..) {
            let _ = handle.join();
        }
    }
}

/// Hands `eval` to the broker, holding back one whose `wait_until_ms` is
/// still ahead (a delayed reschedule) until then.
fn enqueue(broker: &Broker, eval: Arc<orch_model::Evaluation>) {
    let now = orch_model::now_ms();
    match eval.wait_until_ms {
        Some(at) if at > now => {
            let wait = std::time::Duration::from_millis(at - now);
            broker.enqueue_at(eval, std::time::Instant::now() + wait);
        }
        _ => broker.enqueue(eval),
    }
}

/// Called once the API listens, with its address; `orch dev` starts its
/// agent here. An error (said as a person should read it) stops the server.
pub type OnListening = Box<dyn FnOnce(SocketAddr) -> Result<(), String> + Send>;

/// Runs the control plane until SIGTERM or SIGINT; `on_listening` is called
/// once the API listens.
pub fn run(args: ServerOptions, on_listening: OnListening) -> Result<(), ServeError> {
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    std::fs::create_dir_all(&config.data_dir).map_err(|source| ServeError::DataDir {
        path: config.data_dir.display().to_string(),
        source,
    })?;
    let runtime = Runtime::new(config.runtime_config())?;
    let db = config.data_dir.join("state.db");
    let store = Store::open(
        &db,
        StoreOptions {
            sync: config.state.durability,
            ..StoreOptions::default()
        },
    )?;
    tracing::info!("state: {} at index {}", db.display(), store.index());
    // This control plane's counters: the scorers' (through the lineup and
    // the shadow lanes); the API reads the rest at each scrape.
    let metrics = Metrics::new();
    let shadows =
        Shadows::start(store.clone(), &metrics).map_err(start("the shadow answers' writer"))?;
    let lineup = Arc::new(Lineup::start(&config, runtime, &store, shadows, &metrics)?);
    {
        let scheduler = lineup.current().get();
        tracing::info!(
            "scheduler: {}",
            match scheduler.fallback() {
                Some(f) => format!("falls back to {} if a scorer fails", f.label()),
                None => "fails closed if a scorer fails".to_owned(),
            }
        );
    }
    let heartbeats = Arc::new(Heartbeats::new(
        config.heartbeat.ttl(),
        config.heartbeat.grace(),
    ));
    let plane = ControlPlane::start(
        store,
        lineup.current().clone(),
        config.workers,
        Some(&heartbeats),
    )?;
    let reloader = args
        .config
        .as_ref()
        .map(|path| Arc::new(Reloader::new(path, config.clone(), lineup.clone())));
    if let Some(reloader) = &reloader {
        reloader
            .spawn_watch()
            .map_err(start("watching the config file"))?;
    }
    let shadows = lineup.shadows().clone();
    let ctx = ApiContext {
        store: plane.store.clone(),
        broker: plane.broker.clone(),
        scheduler: plane.scheduler.clone(),
        max_body_bytes: config.api.max_body_bytes,
        dry_runs: Arc::new(tokio::sync::Semaphore::new(ApiContext::DRY_RUNS)),
        heartbeats,
        lineup: Some(lineup),
        metrics,
    };
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(start("the async runtime"))?;
    let served = tokio.block_on(serve(config.listen, ctx, reloader, on_listening));
    // Blocking queries were answered at shutdown; a stuck connection is
    // not waited for.
    tokio.shutdown_timeout(std::time::Duration::from_secs(2));
    plane.shutdown();
    // The answers shadow candidates gave are written before the store
    // closes; what they had not scored yet is dropped.
    shadows.shutdown(std::time::Duration::from_secs(5));
    served
}

async fn serve(
    listen: SocketAddr,
    ctx: ApiContext,
    reloader: Option<Arc<Reloader>>,
    on_listening: OnListening,
) -> Result<(), ServeError> {
    // Signals are taken over before the API is announced: one arriving
    // between the two would otherwise meet the default action and kill
    // the server without a word.
    let stops = stop_signals().map_err(start("listening for SIGTERM and SIGINT"))?;
    let hangups = {
        use tokio::signal::unix::{SignalKind, signal};
        signal(SignalKind::hangup()).map_err(start("listening for SIGHUP"))?
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| ServeError::Listen {
            addr: listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Listen {
        addr: listen,
        source,
    })?;
    // Tests and scripts read this line to find the API.
    println!("orch server: API listening on http://{addr}");
    tracing::info!("API listening on http://{addr}");
    tokio::task::spawn_blocking(move || on_listening(addr))
        .await
        .map_err(|e| ServeError::Beside(format!("what runs beside the API stopped: {e}")))?
        .map_err(ServeError::Beside)?;
    // Always handled: without it a SIGHUP (systemd's reload, a logrotate
    // hook) would kill the server.
    tokio::spawn(reload_on_sighup(hangups, reloader));
    let store = ctx.store.clone();
    let mut first = stops.clone();
    let graceful = async move {
        let _ = first.wait_for(|&n| n >= 1).await;
        tracing::info!("shutting down");
        // Open blocking queries answer now instead of after their wait.
        store.release_waiters();
    };
    let server = axum::serve(listener, router(ctx)).with_graceful_shutdown(graceful);
    let mut started = stops.clone();
    let mut again = stops;
    tokio::select! {
        served = server => served.map_err(ServeError::Serve),
        () = async {
            let _ = started.wait_for(|&n| n >= 1).await;
            tokio::select! {
                // Requests still in flight get a few seconds…
                () = tokio::time::sleep(SHUTDOWN_GRACE) => {
                    tracing::warn!("requests still open after {} s; closing them", SHUTDOWN_GRACE.as_secs());
                }
                // …unless the operator asks again.
                _ = again.wait_for(|&n| n >= 2) => tracing::warn!("second signal: stopping now"),
            }
        } => Ok(()),
    }
}

/// How long requests in flight get to finish once shutdown starts.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Counts SIGTERM and SIGINT: the first starts a graceful shutdown, the
/// second cuts it short.
fn stop_signals() -> std::io::Result<tokio::sync::watch::Receiver<u32>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let (count, counted) = tokio::sync::watch::channel(0u32);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            count.send_modify(|n| *n += 1);
        }
    });
    Ok(counted)
}

async fn reload_on_sighup(
    mut hangups: tokio::signal::unix::Signal,
    reloader: Option<Arc<Reloader>>,
) {
    while hangups.recv().await.is_some() {
        let Some(reloader) = &reloader else {
            tracing::info!("SIGHUP: no config file to reload (started without --config)");
            continue;
        };
        tracing::info!("SIGHUP: reloading the config");
        let reloader = reloader.clone();
        // A new scorer compiles: off the async threads.
        match tokio::task::spawn_blocking(move || reloader.reload_now()).await {
            Ok(Reloaded::Unchanged) => tracing::info!("config reload: the scheduler is unchanged"),
            Ok(_) => {}
            Err(e) => tracing::error!("config reload failed: {e}"),
        }
    }
}
