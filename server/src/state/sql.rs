//! The SQLite side of the store: schema, migrations, loading the state at
//! start, and the row writes of each commit.
//!
//! Each object is one row: its id and the columns queries filter on, and
//! the object itself as JSON. The JSON is what the API serves, so adding a
//! field to the model needs no migration.

use super::StoreError;
use super::memory::State;
use super::record::{self, PackedDecision, PackedFrame};
use orch_model::{Allocation, Decision, Evaluation, Job, Node, SchedulerOverrides, ShadowDecision};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use rusqlite_migration::{M, Migrations};
use serde::de::DeserializeOwned;
use std::path::Path;
use std::sync::Arc;

const MIGRATIONS: &[M<'static>] = &[
    M::up(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) STRICT;
     INSERT INTO meta (key, value) VALUES ('index', 0);
     CREATE TABLE nodes (
         id TEXT PRIMARY KEY,
         modify_index INTEGER NOT NULL,
         body TEXT NOT NULL) STRICT;
     CREATE TABLE jobs (
         id TEXT PRIMARY KEY,
         version INTEGER NOT NULL,
         modify_index INTEGER NOT NULL,
         body TEXT NOT NULL) STRICT;
     CREATE TABLE job_versions (
         job_id TEXT NOT NULL,
         version INTEGER NOT NULL,
         modify_index INTEGER NOT NULL,
         body TEXT NOT NULL,
         PRIMARY KEY (job_id, version)) STRICT;
     CREATE TABLE allocations (
         id TEXT PRIMARY KEY,
         job_id TEXT NOT NULL,
         node_id TEXT NOT NULL,
         eval_id TEXT NOT NULL,
         modify_index INTEGER NOT NULL,
         body TEXT NOT NULL) STRICT;
     CREATE INDEX allocations_by_job ON allocations (job_id);
     CREATE INDEX allocations_by_node ON allocations (node_id);
     CREATE TABLE evaluations (
         id TEXT PRIMARY KEY,
         job_id TEXT NOT NULL,
         status TEXT NOT NULL,
         modify_index INTEGER NOT NULL,
         body TEXT NOT NULL) STRICT;
     CREATE INDEX evaluations_by_job ON evaluations (job_id);
     CREATE TABLE plans (
         seq INTEGER PRIMARY KEY,
         eval_id TEXT NOT NULL,
         applied_index INTEGER NOT NULL,
         placed INTEGER NOT NULL,
         stopped INTEGER NOT NULL,
         rejected_nodes TEXT NOT NULL) STRICT;
     CREATE TABLE decisions (
         alloc_id TEXT PRIMARY KEY,
         eval_id TEXT NOT NULL,
         body TEXT NOT NULL) STRICT;",
    ),
    // Decision records are the largest rows by far (every candidate's
    // inputs, scores and parts: ~9 KB of JSON at 64 candidates), written at
    // every placement: they are kept LZ4-compressed in `packed`, `body`
    // left empty. Rows written before keep their JSON in `body`.
    M::up("ALTER TABLE decisions ADD COLUMN packed BLOB;"),
    // Scheduler A/B: what `orch scheduler compare` aggregates is kept in
    // columns beside each packed record, so a comparison reads no JSON;
    // shadow candidates' answers have a table of their own, and settings
    // changed at run time a row each.
    M::up(
        "ALTER TABLE decisions ADD COLUMN job_id TEXT;
     ALTER TABLE decisions ADD COLUMN time_ms INTEGER;
     ALTER TABLE decisions ADD COLUMN scorer_name TEXT;
     ALTER TABLE decisions ADD COLUMN policy TEXT;
     ALTER TABLE decisions ADD COLUMN scorer_micros INTEGER;
     ALTER TABLE decisions ADD COLUMN fallback INTEGER;
     ALTER TABLE decisions ADD COLUMN picked TEXT;
     CREATE INDEX decisions_by_time ON decisions (time_ms);
     CREATE INDEX decisions_by_job ON decisions (job_id);
     CREATE TABLE shadow_decisions (
         alloc_id TEXT NOT NULL,
         candidate TEXT NOT NULL,
         digest TEXT NOT NULL,
         job_id TEXT NOT NULL,
         time_ms INTEGER NOT NULL,
         agrees INTEGER NOT NULL,
         fault INTEGER NOT NULL,
         scorer_micros INTEGER NOT NULL,
         cluster_node TEXT,
         packed BLOB NOT NULL,
         PRIMARY KEY (alloc_id, candidate)) STRICT;
     CREATE INDEX shadow_decisions_by_time ON shadow_decisions (candidate, time_ms);
     CREATE TABLE settings (
         key TEXT PRIMARY KEY,
         modify_index INTEGER NOT NULL,
         body TEXT NOT NULL) STRICT;",
    ),
    // Records with every node scored hold thousands of candidates: their
    // arrays are kept in binary (`format` 2, see record.rs), large ones
    // against a frame shared by the placements of one plan.
    M::up(
        "ALTER TABLE decisions ADD COLUMN format INTEGER NOT NULL DEFAULT 1;
     ALTER TABLE decisions ADD COLUMN frame_id TEXT;
     CREATE TABLE decision_frames (
         id TEXT PRIMARY KEY,
         packed BLOB NOT NULL) STRICT;",
    ),
];

/// `shadows.db`, beside the state database: shadow candidates' answers.
/// They are observations, not state: written by their own thread on their
/// own connection, they never queue behind or ahead of a plan in the
/// state's single writer, and their commits are not fsynced (a crash may
/// lose the last ones; the shadow cluster is rebuilt from what is there).
const SHADOW_MIGRATIONS: &[M<'static>] = &[M::up(
    "CREATE TABLE shadow_decisions (
         alloc_id TEXT NOT NULL,
         candidate TEXT NOT NULL,
         digest TEXT NOT NULL,
         job_id TEXT NOT NULL,
         time_ms INTEGER NOT NULL,
         agrees INTEGER NOT NULL,
         fault INTEGER NOT NULL,
         scorer_micros INTEGER NOT NULL,
         cluster_node TEXT,
         packed BLOB NOT NULL,
         PRIMARY KEY (alloc_id, candidate)) STRICT;
     CREATE INDEX shadow_decisions_by_time ON shadow_decisions (candidate, time_ms);",
)];

/// Opens (or creates) the shadow answers' database at `path` for writing.
pub(super) fn open_shadows(path: &Path) -> Result<Connection, StoreError> {
    let mut conn = Connection::open(path).map_err(|e| StoreError::open(path, e))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;",
    )
    .map_err(|e| StoreError::open(path, e))?;
    Migrations::from_slice(SHADOW_MIGRATIONS)
        .to_latest(&mut conn)
        .map_err(|e| StoreError::Migrate {
            path: path.display().to_string(),
            detail: e.to_string(),
        })?;
    Ok(conn)
}

/// Moves shadow answers a state database kept itself (before they had
/// their own file) into `shadows`, once.
pub(super) fn move_shadows(conn: &Connection, shadows: &Path) -> Result<(), StoreError> {
    let any: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM main.shadow_decisions)",
        [],
        |r| r.get(0),
    )?;
    if !any {
        return Ok(());
    }
    conn.execute(
        "ATTACH DATABASE ?1 AS shadows",
        params![shadows.display().to_string()],
    )?;
    let moved = conn.execute_batch(
        "BEGIN;
         INSERT OR IGNORE INTO shadows.shadow_decisions SELECT * FROM main.shadow_decisions;
         DELETE FROM main.shadow_decisions;
         COMMIT;",
    );
    if moved.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    conn.execute_batch("DETACH DATABASE shadows")?;
    Ok(moved?)
}

/// How hard a commit is pushed to disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// fsync at every commit: nothing acknowledged is lost, even on power
    /// loss.
    #[default]
    Full,
    /// fsync at WAL checkpoints: survives a crash of orch (kill -9), may
    /// lose the last commits on power loss.
    Normal,
}

pub(super) fn open(path: &Path, sync: Durability) -> Result<Connection, StoreError> {
    let mut conn = Connection::open(path).map_err(|e| StoreError::open(path, e))?;
    let sync = match sync {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {sync}; PRAGMA foreign_keys = ON;
         PRAGMA busy_timeout = 5000;"
    ))
    .map_err(|e| StoreError::open(path, e))?;
    Migrations::from_slice(MIGRATIONS)
        .to_latest(&mut conn)
        .map_err(|e| StoreError::Migrate {
            path: path.display().to_string(),
            detail: e.to_string(),
        })?;
    Ok(conn)
}

/// A read-only connection for queries the in-memory state does not answer
/// (job history, decision records).
pub(super) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| StoreError::open(path, e))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|e| StoreError::open(path, e))?;
    Ok(conn)
}

fn decode<T: DeserializeOwned>(table: &str, id: &str, body: &str) -> Result<T, StoreError> {
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt {
        detail: format!("{table} row {id:?} does not decode: {e}"),
    })
}

fn encode<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Internal(format!("encoding a row: {e}")))
}

fn rows<T: DeserializeOwned>(conn: &Connection, table: &str) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare(&format!("SELECT id, body FROM {table}"))?;
    let mut out = Vec::new();
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let id: String = row.get(0)?;
        let body: String = row.get(1)?;
        out.push(decode(table, &id, &body)?);
    }
    Ok(out)
}

/// Reads everything into memory: the state readers see at start.
pub(super) fn load(conn: &Connection) -> Result<State, StoreError> {
    let index = conn.query_row("SELECT value FROM meta WHERE key = 'index'", [], |r| {
        r.get::<_, i64>(0)
    })? as u64;
    let mut state = State {
        index,
        ..State::default()
    };
    state.put_nodes(rows::<Node>(conn, "nodes")?);
    for job in rows::<Job>(conn, "jobs")? {
        state.put_job(job);
    }
    for alloc in rows::<Allocation>(conn, "allocations")? {
        state.put_alloc(alloc);
    }
    for eval in rows::<Evaluation>(conn, "evaluations")? {
        state.put_eval(eval);
    }
    let overrides: Option<String> = conn
        .query_row(
            "SELECT body FROM settings WHERE key = ?1",
            params![SCHEDULER_KEY],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(body) = overrides {
        state.scheduler = Arc::new(decode("settings", SCHEDULER_KEY, &body)?);
    }
    Ok(state)
}

/// The `settings` row of the scheduler settings set at run time.
const SCHEDULER_KEY: &str = "scheduler";

pub(super) fn put_scheduler(
    tx: &Transaction<'_>,
    overrides: &SchedulerOverrides,
    index: u64,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO settings (key, modify_index, body) VALUES (?1, ?2, ?3)
         ON CONFLICT (key) DO UPDATE SET modify_index = ?2, body = ?3",
    )?
    .execute(params![SCHEDULER_KEY, index as i64, encode(overrides)?])?;
    Ok(())
}

/// A shadow answer encoded for its row: the columns queries read and the
/// LZ4-packed JSON. Packed off the store's writer (by the shadow answers'
/// thread), so the writer, which every plan waits on, only inserts it.
#[derive(Debug, Clone)]
pub struct PackedShadow {
    alloc_id: String,
    candidate: String,
    digest: String,
    job_id: String,
    time_ms: u64,
    agrees: bool,
    fault: bool,
    scorer_micros: u64,
    cluster_node: Option<String>,
    packed: Vec<u8>,
}

impl PackedShadow {
    pub fn of(s: &ShadowDecision) -> Result<Self, StoreError> {
        Ok(Self {
            alloc_id: s.alloc_id.clone(),
            candidate: s.candidate.clone(),
            digest: s.scorer_digest.clone(),
            job_id: s.job_id.clone(),
            time_ms: s.time_ms,
            agrees: s.agrees,
            fault: s.fault.is_some(),
            scorer_micros: s.scorer_micros,
            cluster_node: s.cluster_node.clone(),
            packed: lz4_flex::compress_prepend_size(encode(s)?.as_bytes()),
        })
    }

    /// Roughly what it takes to write, in bytes.
    pub fn size(&self) -> usize {
        self.packed.len() + self.alloc_id.len() + self.job_id.len() + 128
    }
}

pub(super) fn put_shadow(tx: &Transaction<'_>, s: &PackedShadow) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO shadow_decisions
             (alloc_id, candidate, digest, job_id, time_ms, agrees, fault, scorer_micros, cluster_node, packed)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (alloc_id, candidate) DO UPDATE SET digest = ?3, job_id = ?4, time_ms = ?5,
             agrees = ?6, fault = ?7, scorer_micros = ?8, cluster_node = ?9, packed = ?10",
    )?
    .execute(params![
        s.alloc_id,
        s.candidate,
        s.digest,
        s.job_id,
        s.time_ms.min(i64::MAX as u64) as i64,
        s.agrees,
        s.fault,
        s.scorer_micros.min(i64::MAX as u64) as i64,
        s.cluster_node,
        s.packed
    ])?;
    Ok(())
}

/// Every shadow answer recorded for `alloc_id`, by candidate name.
pub(super) fn shadows_of(
    conn: &Connection,
    alloc_id: &str,
) -> Result<Vec<ShadowDecision>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT candidate, packed FROM shadow_decisions WHERE alloc_id = ?1 ORDER BY candidate",
    )?;
    let mut rows = stmt.query(params![alloc_id])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let candidate: String = row.get(0)?;
        let packed: Vec<u8> = row.get(1)?;
        out.push(unpack(
            "shadow_decisions",
            &format!("{alloc_id}/{candidate}"),
            &packed,
        )?);
    }
    Ok(out)
}

/// Where candidate `name` (at `digest`) put each allocation in its shadow
/// cluster: `(alloc_id, cluster_node)`, `None` where it had no room or
/// faulted. The lane rebuilds its cluster from these at start.
pub(super) fn shadow_cluster(
    conn: &Connection,
    name: &str,
    digest: &str,
) -> Result<Vec<(String, Option<String>, bool)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT alloc_id, cluster_node, fault FROM shadow_decisions WHERE candidate = ?1 AND digest = ?2",
    )?;
    let rows = stmt.query_map(params![name, digest], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A decision's columns that `orch scheduler compare` aggregates.
#[derive(Debug, Clone)]
pub struct DecisionRow {
    /// Who answered.
    pub scorer_name: String,
    /// Who was meant to.
    pub policy: String,
    pub scorer_micros: u64,
    pub fallback: bool,
}

/// Every decision made at or after `since_ms` (records from before the
/// columns existed are left out).
pub(super) fn decision_rows(
    conn: &Connection,
    since_ms: u64,
) -> Result<Vec<DecisionRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT scorer_name, policy, scorer_micros, fallback FROM decisions
         WHERE time_ms >= ?1 AND scorer_name IS NOT NULL",
    )?;
    let rows = stmt.query_map(params![since_ms as i64], |r| {
        Ok(DecisionRow {
            scorer_name: r.get(0)?,
            policy: r.get(1)?,
            scorer_micros: r.get::<_, i64>(2)?.max(0) as u64,
            fallback: r.get::<_, i64>(3)? != 0,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A shadow answer's columns that `orch scheduler compare` aggregates.
#[derive(Debug, Clone)]
pub struct ShadowRow {
    pub candidate: String,
    pub agrees: bool,
    pub fault: bool,
    pub scorer_micros: u64,
}

pub(super) fn shadow_rows(conn: &Connection, since_ms: u64) -> Result<Vec<ShadowRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT candidate, agrees, fault, scorer_micros FROM shadow_decisions WHERE time_ms >= ?1",
    )?;
    let rows = stmt.query_map(params![since_ms as i64], |r| {
        Ok(ShadowRow {
            candidate: r.get(0)?,
            agrees: r.get::<_, i64>(1)? != 0,
            fault: r.get::<_, i64>(2)? != 0,
            scorer_micros: r.get::<_, i64>(3)?.max(0) as u64,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Decision records made at or after `since_ms` (of `job` only, if
/// given) and stored after row `after`, oldest first, at most `limit`, each
/// with its row number (the cursor of the next page); and, on the first
/// page (`after` 0), how many match in all (a count the later pages of one
/// read need not pay for again).
pub(super) fn decisions_since(
    conn: &Connection,
    since_ms: u64,
    job: Option<&str>,
    after: u64,
    limit: usize,
) -> Result<super::DecisionRows, StoreError> {
    let since = since_ms.min(i64::MAX as u64) as i64;
    let total = if after == 0 {
        let n: i64 = conn
            .prepare_cached(
                "SELECT COUNT(*) FROM decisions WHERE time_ms >= ?1 AND (?2 IS NULL OR job_id = ?2)",
            )?
            .query_row(params![since, job], |r| r.get(0))?;
        Some(n.max(0) as u64)
    } else {
        None
    };
    let mut stmt = conn.prepare_cached(
        "SELECT rowid, alloc_id, body, packed, format, frame_id FROM decisions
         WHERE time_ms >= ?1 AND (?2 IS NULL OR job_id = ?2) AND rowid > ?3
         ORDER BY rowid LIMIT ?4",
    )?;
    let mut rows = stmt.query(params![
        since,
        job,
        after.min(i64::MAX as u64) as i64,
        limit.min(i64::MAX as usize) as i64
    ])?;
    let mut out = Vec::new();
    let mut frames = Frames::default();
    while let Some(row) = rows.next()? {
        let rowid: i64 = row.get(0)?;
        let alloc_id: String = row.get(1)?;
        let stored = StoredDecision {
            body: row.get(2)?,
            packed: row.get(3)?,
            format: row.get(4)?,
            frame_id: row.get(5)?,
        };
        let decision = read_decision(conn, &alloc_id, stored, &mut frames)?;
        out.push((rowid.max(0) as u64, decision));
    }
    Ok((out, total))
}

pub(super) fn set_index(tx: &Transaction<'_>, index: u64) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'index'",
        params![index as i64],
    )?;
    Ok(())
}

pub(super) fn put_node(tx: &Transaction<'_>, node: &Node) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO nodes (id, modify_index, body) VALUES (?1, ?2, ?3)
         ON CONFLICT (id) DO UPDATE SET modify_index = ?2, body = ?3",
    )?
    .execute(params![node.id, node.modify_index as i64, encode(node)?])?;
    Ok(())
}

/// Writes the job's current row; `new_version` also records it in the
/// history.
pub(super) fn put_job(
    tx: &Transaction<'_>,
    job: &Job,
    new_version: bool,
) -> Result<(), StoreError> {
    let body = encode(job)?;
    tx.prepare_cached(
        "INSERT INTO jobs (id, version, modify_index, body) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (id) DO UPDATE SET version = ?2, modify_index = ?3, body = ?4",
    )?
    .execute(params![
        job.id,
        job.version as i64,
        job.modify_index as i64,
        body
    ])?;
    if new_version {
        tx.prepare_cached(
            "INSERT INTO job_versions (job_id, version, modify_index, body) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![job.id, job.version as i64, job.modify_index as i64, body])?;
    }
    Ok(())
}

pub(super) fn put_alloc(tx: &Transaction<'_>, alloc: &Allocation) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO allocations (id, job_id, node_id, eval_id, modify_index, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (id) DO UPDATE SET node_id = ?3, eval_id = ?4, modify_index = ?5, body = ?6",
    )?
    .execute(params![
        alloc.id,
        alloc.job_id,
        alloc.node_id,
        alloc.eval_id,
        alloc.modify_index as i64,
        encode(alloc)?
    ])?;
    Ok(())
}

pub(super) fn put_eval(tx: &Transaction<'_>, eval: &Evaluation) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO evaluations (id, job_id, status, modify_index, body) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (id) DO UPDATE SET status = ?3, modify_index = ?4, body = ?5",
    )?
    .execute(params![
        eval.id,
        eval.job_id,
        eval.status.as_str(),
        eval.modify_index as i64,
        encode(eval)?
    ])?;
    Ok(())
}

/// The frame records of a plan are stored against; the writer writes it
/// once per plan, with the first of them accepted.
pub(super) fn put_frame(tx: &Transaction<'_>, frame: &PackedFrame) -> Result<(), StoreError> {
    tx.prepare_cached("INSERT OR IGNORE INTO decision_frames (id, packed) VALUES (?1, ?2)")?
        .execute(params![frame.id, frame.packed])?;
    Ok(())
}

/// A record; its frame, if any, is written with [`put_frame`].
pub(super) fn put_decision(tx: &Transaction<'_>, d: &PackedDecision) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO decisions (alloc_id, eval_id, body, packed, job_id, time_ms, scorer_name,
                                policy, scorer_micros, fallback, picked, format, frame_id)
         VALUES (?1, ?2, '', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
         ON CONFLICT (alloc_id) DO UPDATE SET eval_id = ?2, body = '', packed = ?3, job_id = ?4,
             time_ms = ?5, scorer_name = ?6, policy = ?7, scorer_micros = ?8, fallback = ?9,
             picked = ?10, format = ?11, frame_id = ?12",
    )?
    .execute(params![
        d.alloc_id,
        d.eval_id,
        d.packed,
        d.job_id,
        d.time_ms.min(i64::MAX as u64) as i64,
        d.scorer_name,
        d.policy,
        d.scorer_micros.min(i64::MAX as u64) as i64,
        d.fallback,
        d.picked,
        record::FORMAT,
        d.frame.as_ref().map(|f| f.id.as_str())
    ])?;
    Ok(())
}

pub(super) fn put_plan(
    tx: &Transaction<'_>,
    eval_id: &str,
    index: u64,
    placed: usize,
    stopped: usize,
    rejected_nodes: &[String],
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO plans (eval_id, applied_index, placed, stopped, rejected_nodes)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        eval_id,
        index as i64,
        placed as i64,
        stopped as i64,
        rejected_nodes.join(",")
    ])?;
    Ok(())
}

pub(super) fn job_versions(conn: &Connection, job_id: &str) -> Result<Vec<Job>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT version, body FROM job_versions WHERE job_id = ?1 ORDER BY version DESC",
    )?;
    let mut rows = stmt.query(params![job_id])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let version: i64 = row.get(0)?;
        let body: String = row.get(1)?;
        out.push(decode(
            "job_versions",
            &format!("{job_id}@{version}"),
            &body,
        )?);
    }
    Ok(out)
}

pub(super) fn job_version(
    conn: &Connection,
    job_id: &str,
    version: u64,
) -> Result<Option<Job>, StoreError> {
    // A version past i64 (asked for in a URL) was never written.
    let Ok(stored) = i64::try_from(version) else {
        return Ok(None);
    };
    let body: Option<String> = conn
        .prepare_cached("SELECT body FROM job_versions WHERE job_id = ?1 AND version = ?2")?
        .query_row(params![job_id, stored], |row| row.get(0))
        .optional()?;
    body.map(|body| decode("job_versions", &format!("{job_id}@{version}"), &body))
        .transpose()
}

pub(super) fn decision(conn: &Connection, alloc_id: &str) -> Result<Option<Decision>, StoreError> {
    let row = conn
        .prepare_cached("SELECT body, packed, format, frame_id FROM decisions WHERE alloc_id = ?1")?
        .query_row(params![alloc_id], |r| {
            Ok(StoredDecision {
                body: r.get(0)?,
                packed: r.get(1)?,
                format: r.get(2)?,
                frame_id: r.get(3)?,
            })
        })
        .optional()?;
    row.map(|row| read_decision(conn, alloc_id, row, &mut Frames::default()))
        .transpose()
}

/// A `decisions` row's record, in any format it was written in.
struct StoredDecision {
    body: String,
    packed: Option<Vec<u8>>,
    format: i64,
    frame_id: Option<String>,
}

/// Frames read so far, by id: the records of one plan share one.
#[derive(Default)]
struct Frames {
    last: Option<(String, record::Frame)>,
}

impl Frames {
    fn get(
        &mut self,
        conn: &Connection,
        alloc_id: &str,
        id: &str,
    ) -> Result<&record::Frame, StoreError> {
        if self.last.as_ref().is_none_or(|(last, _)| last != id) {
            let packed: Vec<u8> = conn
                .prepare_cached("SELECT packed FROM decision_frames WHERE id = ?1")?
                .query_row(params![id], |r| r.get(0))
                .optional()?
                .ok_or_else(|| StoreError::Corrupt {
                    detail: format!(
                        "decisions row {alloc_id:?} refers to frame {id:?}, which is not stored"
                    ),
                })?;
            self.last = Some((id.to_owned(), record::unpack_frame(alloc_id, &packed)?));
        }
        match &self.last {
            Some((_, frame)) => Ok(frame),
            None => Err(StoreError::Internal("a frame read was lost".into())),
        }
    }
}

/// One `decisions` row as the record it holds.
fn read_decision(
    conn: &Connection,
    alloc_id: &str,
    row: StoredDecision,
    frames: &mut Frames,
) -> Result<Decision, StoreError> {
    let Some(packed) = row.packed else {
        return decode("decisions", alloc_id, &row.body);
    };
    if row.format != record::FORMAT {
        return unpack("decisions", alloc_id, &packed);
    }
    let frame = match &row.frame_id {
        Some(id) => Some(frames.get(conn, alloc_id, id)?),
        None => None,
    };
    record::unpack_record(alloc_id, &packed, frame)
}

/// An LZ4-packed JSON row.
fn unpack<T: DeserializeOwned>(table: &str, id: &str, packed: &[u8]) -> Result<T, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        detail: format!("{table} row {id:?} does not decode: {detail}"),
    };
    let json = record::unpack_bytes(packed).map_err(corrupt)?;
    let json = String::from_utf8(json).map_err(|e| corrupt(e.to_string()))?;
    decode(table, id, &json)
}
