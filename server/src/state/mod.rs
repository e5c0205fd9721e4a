//! The state store: SQLite on disk, an immutable snapshot in memory.
//!
//! One writer thread owns the SQLite connection. Every change — a job
//! registered, a node's heartbeat status, a plan from a scheduler worker —
//! is an [`Op`] sent to it; it takes as many as are waiting, applies each to
//! a working copy of the state (checking it first: a plan is re-checked
//! node by node against the latest state), writes them all in one
//! transaction (group commit), and only after the commit publishes the new
//! state and answers the callers. Readers never see uncommitted data, and a
//! kill -9 loses nothing that was answered.
//!
//! Each applied op raises the global index by one; readers can wait for the
//! index to pass a value (blocking queries).

mod memory;
mod record;
mod sql;
mod writer;

pub use memory::{ByStatus, State, Usage};
pub use record::{PackedDecision, pack_plan};
pub use sql::{DecisionRow, Durability, PackedShadow, ShadowRow};
pub use writer::{AllocUpdate, CommitEvents, NodeChange, Op, Outcome, WriterStats};

use orch_model::{Decision, Job};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, mpsc};
use std::time::Duration;
use tokio::sync::{oneshot, watch};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the state database {path}: {detail}")]
    Open { path: String, detail: String },
    #[error("cannot migrate the state database {path}: {detail}")]
    Migrate { path: String, detail: String },
    #[error("the state database is damaged: {detail}")]
    Corrupt { detail: String },
    #[error("state database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("the state store has stopped")]
    Closed,
    #[error("{0}")]
    Internal(String),
    /// The op was refused; nothing was written.
    #[error("{0}")]
    Refused(#[from] Refusal),
}

impl StoreError {
    fn open(path: &Path, e: rusqlite::Error) -> Self {
        StoreError::Open {
            path: path.display().to_string(),
            detail: e.to_string(),
        }
    }
}

/// Why an op was refused; the API turns these into 404 and 409 answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{kind} {id:?} not found")]
    NotFound { kind: &'static str, id: String },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub sync: Durability,
    /// Most ops committed in one transaction.
    pub max_batch: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            sync: Durability::Full,
            max_batch: 1024,
        }
    }
}

/// Called on the writer thread after each commit, with what the commit
/// means for the evaluation broker.
pub type CommitListener = Box<dyn Fn(&CommitEvents) + Send + Sync>;

/// A handle on the store; clones share it.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    current: Arc<RwLock<Arc<State>>>,
    requests: mpsc::SyncSender<writer::Request>,
    index: watch::Receiver<u64>,
    /// Set when the server shuts down: blocking queries answer at once.
    closing: watch::Sender<bool>,
    listener: Arc<RwLock<Option<CommitListener>>>,
    reader: Mutex<Connection>,
    /// `shadows.db`: written by the shadow answers' thread, read by the API.
    shadow_writer: Mutex<Connection>,
    shadow_reader: Mutex<Connection>,
    stats: Arc<WriterStats>,
}

/// A page of decision records, each with its row number (the cursor of the
/// next page); and, for the first page, how many match in all.
pub type DecisionRows = (Vec<(u64, Decision)>, Option<u64>);

impl Store {
    /// Opens (or creates) the database at `path`, migrates it, loads it into
    /// memory and starts the writer.
    pub fn open(path: &Path, options: StoreOptions) -> Result<Store, StoreError> {
        let conn = sql::open(path, options.sync)?;
        let state = sql::load(&conn)?;
        let reader = sql::open_reader(path)?;
        let shadows = path.with_file_name("shadows.db");
        let shadow_writer = sql::open_shadows(&shadows)?;
        sql::move_shadows(&conn, &shadows)?;
        let shadow_reader = sql::open_reader(&shadows)?;
        let (index_tx, index_rx) = watch::channel(state.index());
        let current = Arc::new(RwLock::new(Arc::new(state)));
        let listener: Arc<RwLock<Option<CommitListener>>> = Arc::new(RwLock::new(None));
        let (requests, rx) = mpsc::sync_channel(4 * options.max_batch);
        let stats = Arc::new(WriterStats::default());
        writer::spawn(
            conn,
            rx,
            writer::Shared {
                current: current.clone(),
                index: index_tx,
                listener: listener.clone(),
                stats: stats.clone(),
            },
            options.max_batch,
        )?;
        Ok(Store {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                current,
                requests,
                index: index_rx,
                closing: watch::channel(false).0,
                listener,
                reader: Mutex::new(reader),
                shadow_writer: Mutex::new(shadow_writer),
                shadow_reader: Mutex::new(shadow_reader),
                stats,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Sets the function told about every commit (the broker's feed).
    pub fn set_listener(&self, listener: CommitListener) {
        if let Ok(mut slot) = self.inner.listener.write() {
            *slot = Some(listener);
        }
    }

    /// The latest committed state.
    pub fn snapshot(&self) -> Arc<State> {
        match self.inner.current.read() {
            Ok(state) => state.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn index(&self) -> u64 {
        *self.inner.index.borrow()
    }

    /// The writer's queue and commits, as `/v1/metrics` shows them.
    pub fn writer_stats(&self) -> &WriterStats {
        &self.inner.stats
    }

    /// Waits until the index is above `after` or `timeout` passes (or the
    /// server starts shutting down); returns the index then. The heart of
    /// blocking queries.
    pub async fn wait_past(&self, after: u64, timeout: Duration) -> u64 {
        let mut rx = self.inner.index.clone();
        let mut closing = self.inner.closing.subscribe();
        tokio::select! {
            _ = tokio::time::timeout(timeout, rx.wait_for(|&i| i > after)) => {}
            _ = closing.wait_for(|&c| c) => {}
        }
        self.index()
    }

    /// Answers every blocking query now and any later one at once: the
    /// server is shutting down and should not wait minutes for them.
    pub fn release_waiters(&self) {
        self.inner.closing.send_replace(true);
    }

    /// Sends `op` to the writer; the answer arrives once it is committed.
    pub fn submit(&self, op: Op) -> oneshot::Receiver<Result<Outcome, StoreError>> {
        let (reply, rx) = oneshot::channel();
        self.inner.stats.sending(&op);
        if let Err(mpsc::SendError(request)) =
            self.inner.requests.send(writer::Request { op, reply })
        {
            self.inner.stats.taken(&request.op);
            let _ = request.reply.send(Err(StoreError::Closed));
        }
        rx
    }

    /// Applies `op` and waits for its commit (from a thread that may block).
    pub fn apply(&self, op: Op) -> Result<Outcome, StoreError> {
        self.submit(op)
            .blocking_recv()
            .map_err(|_| StoreError::Closed)?
    }

    /// Applies `op` and waits for its commit (from async code). When the
    /// writer's queue is full the wait for room happens on a blocking
    /// thread, never on the async threads that serve every request.
    pub async fn apply_async(&self, op: Op) -> Result<Outcome, StoreError> {
        let (reply, rx) = oneshot::channel();
        let stats = &self.inner.stats;
        stats.sending(&op);
        match self.inner.requests.try_send(writer::Request { op, reply }) {
            Ok(()) => {}
            Err(mpsc::TrySendError::Full(request)) => {
                let requests = self.inner.requests.clone();
                let stats = self.inner.stats.clone();
                let sent = tokio::task::spawn_blocking(move || match requests.send(request) {
                    Ok(()) => true,
                    Err(mpsc::SendError(request)) => {
                        stats.taken(&request.op);
                        false
                    }
                })
                .await;
                if !matches!(sent, Ok(true)) {
                    return Err(StoreError::Closed);
                }
            }
            Err(mpsc::TrySendError::Disconnected(request)) => {
                stats.taken(&request.op);
                return Err(StoreError::Closed);
            }
        }
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Every version of a job, newest first.
    pub fn job_versions(&self, job_id: &str) -> Result<Vec<Job>, StoreError> {
        let conn = self.reader()?;
        sql::job_versions(&conn, job_id)
    }

    /// One version of a job, `None` when the job never had it.
    pub fn job_version(&self, job_id: &str, version: u64) -> Result<Option<Job>, StoreError> {
        let conn = self.reader()?;
        sql::job_version(&conn, job_id, version)
    }

    /// The decision record of an allocation's placement.
    pub fn decision(&self, alloc_id: &str) -> Result<Option<Decision>, StoreError> {
        let conn = self.reader()?;
        sql::decision(&conn, alloc_id)
    }

    /// Writes shadow candidates' answers, in one transaction of
    /// `shadows.db` (never through the state's writer).
    pub fn record_shadows(&self, rows: &[PackedShadow]) -> Result<(), StoreError> {
        let mut conn = lock(&self.inner.shadow_writer, "shadow writer")?;
        let tx = conn.transaction()?;
        for row in rows {
            sql::put_shadow(&tx, row)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Every shadow candidate's answer for an allocation's placement.
    pub fn shadows(&self, alloc_id: &str) -> Result<Vec<orch_model::ShadowDecision>, StoreError> {
        let conn = lock(&self.inner.shadow_reader, "shadow reader")?;
        sql::shadows_of(&conn, alloc_id)
    }

    /// Where shadow candidate `name` at `digest` put each allocation it
    /// saw: `(alloc_id, node or none, faulted)`.
    pub fn shadow_cluster(
        &self,
        name: &str,
        digest: &str,
    ) -> Result<Vec<(String, Option<String>, bool)>, StoreError> {
        let conn = lock(&self.inner.shadow_reader, "shadow reader")?;
        sql::shadow_cluster(&conn, name, digest)
    }

    /// What `orch scheduler compare` aggregates, since `since_ms`.
    pub fn compare_rows(
        &self,
        since_ms: u64,
    ) -> Result<(Vec<DecisionRow>, Vec<ShadowRow>), StoreError> {
        let decisions = sql::decision_rows(&*self.reader()?, since_ms)?;
        let shadows = sql::shadow_rows(
            &*lock(&self.inner.shadow_reader, "shadow reader")?,
            since_ms,
        )?;
        Ok((decisions, shadows))
    }

    /// Decision records since `since_ms` (of `job` only, if given) stored
    /// after row `after`, oldest first, at most `limit`, each with its row
    /// number (the next page's cursor); and, for the first page (`after`
    /// 0), how many match in all.
    pub fn decisions_since(
        &self,
        since_ms: u64,
        job: Option<&str>,
        after: u64,
        limit: usize,
    ) -> Result<DecisionRows, StoreError> {
        let conn = self.reader()?;
        sql::decisions_since(&conn, since_ms, job, after, limit)
    }

    fn reader(&self) -> Result<std::sync::MutexGuard<'_, Connection>, StoreError> {
        lock(&self.inner.reader, "reader")
    }
}

fn lock<'a>(
    conn: &'a Mutex<Connection>,
    what: &str,
) -> Result<std::sync::MutexGuard<'a, Connection>, StoreError> {
    conn.lock()
        .map_err(|_| StoreError::Internal(format!("the {what} connection is poisoned")))
}
