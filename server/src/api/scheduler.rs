//! `/v1/scheduler…`: the scheduler settings in force and the changes an
//! operator makes to them at run time (Nomad's `operator scheduler
//! set-config` habit), and the comparison of the scorers that run.
//!
//! A change is checked, its scorers loaded (and, given a role, put through
//! the conformance suite), stored, and only then put in force; any failure
//! leaves both the store and the running scheduler as they were.

use super::body::JsonBody;
use super::error::ApiError;
use super::query::{Indexed, Params, PathId};
use super::{ApiContext, blocking_io};
use crate::config::{Change, Lineup, LineupError, LineupStatus};
use crate::scheduler::compare::{Role, figures, packing};
use axum::Json;
use axum::extract::State as Ctx;
use axum::http::StatusCode;
use orch_model::{Candidate, Dur, ScorerSpec, now_ms};
use orch_wire::{
    CandidateStatus, Comparison, DecisionPage, NamedScorer, SchedulerStatus, ScorerRole,
    ShadowCounters,
};
use std::sync::Arc;
use std::time::Duration;

pub async fn status(
    Ctx(ctx): Ctx<ApiContext>,
    params: Params,
) -> Result<Indexed<Json<SchedulerStatus>>, ApiError> {
    let lineup = lineup(&ctx)?;
    let state = params.block(&ctx.store).await?;
    let body = view(&lineup, &lineup.status(), state.index());
    Ok(Indexed(state.index(), Json(body)))
}

pub async fn put_scorer(
    ctx: Ctx<ApiContext>,
    PathId(name): PathId,
    params: Params,
    JsonBody(spec): JsonBody<ScorerSpec>,
) -> Result<Indexed<Json<SchedulerStatus>>, ApiError> {
    params.finish()?;
    change(ctx, Change::PutScorer { name, spec }).await
}

pub async fn delete_scorer(
    ctx: Ctx<ApiContext>,
    PathId(name): PathId,
    params: Params,
) -> Result<Indexed<Json<SchedulerStatus>>, ApiError> {
    params.finish()?;
    change(ctx, Change::RemoveScorer { name }).await
}

pub async fn put_candidate(
    ctx: Ctx<ApiContext>,
    PathId(name): PathId,
    params: Params,
    JsonBody(candidate): JsonBody<Candidate>,
) -> Result<Indexed<Json<SchedulerStatus>>, ApiError> {
    params.finish()?;
    change(ctx, Change::PutCandidate { name, candidate }).await
}

pub async fn delete_candidate(
    ctx: Ctx<ApiContext>,
    PathId(name): PathId,
    params: Params,
) -> Result<Indexed<Json<SchedulerStatus>>, ApiError> {
    params.finish()?;
    change(ctx, Change::RemoveCandidate { name }).await
}

pub async fn promote(
    ctx: Ctx<ApiContext>,
    PathId(name): PathId,
    params: Params,
) -> Result<Indexed<Json<SchedulerStatus>>, ApiError> {
    params.finish()?;
    change(ctx, Change::Promote { name }).await
}

pub async fn reset(
    ctx: Ctx<ApiContext>,
    params: Params,
) -> Result<Indexed<Json<SchedulerStatus>>, ApiError> {
    params.finish()?;
    change(ctx, Change::Reset).await
}

/// Changes made one at a time, off the async threads (a scorer may
/// compile, and the conformance suite runs).
async fn change(
    Ctx(ctx): Ctx<ApiContext>,
    change: Change,
) -> Result<Indexed<Json<SchedulerStatus>>, ApiError> {
    let lineup = lineup(&ctx)?;
    let store = ctx.store.clone();
    let done = lineup.clone();
    let status = blocking_io(move || done.change(&store, change).map_err(refused)).await?;
    let index = ctx.store.index();
    Ok(Indexed(index, Json(view(&lineup, &status, index))))
}

fn lineup(ctx: &ApiContext) -> Result<Arc<Lineup>, ApiError> {
    ctx.lineup.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_scheduler_settings",
            "this server runs a fixed scheduler (an embedded test server); its settings cannot be read or changed",
        )
    })
}

fn refused(e: LineupError) -> ApiError {
    match e {
        LineupError::Invalid { problems } => {
            let n = problems.len();
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_scheduler_settings",
                format!(
                    "the change would leave the scheduler settings with {n} problem{}: {}",
                    if n == 1 { "" } else { "s" },
                    problems
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            )
            .with_details(problems)
        }
        LineupError::NotFound { .. } => ApiError::not_found(e.to_string()),
        LineupError::Scorer(_) | LineupError::NotConforming { .. } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "scorer_refused",
            e.to_string(),
        ),
        LineupError::Store(e) => ApiError::from(e),
        LineupError::Stale { why, error } => {
            let mut e = refused(*error);
            e.body.message = format!(
                "{}; note: the settings changed at run time are not in force ({why}), and every change is checked with them; `orch scheduler reset` drops them",
                e.body.message
            );
            e
        }
    }
}

/// The status body: settings, the scorers behind them, lane counters.
fn view(lineup: &Lineup, status: &LineupStatus, index: u64) -> SchedulerStatus {
    let s = &status.settings;
    let running = |name: &str| {
        status
            .running
            .get(name)
            .cloned()
            .unwrap_or_else(|| (String::new(), String::new()))
    };
    let lanes = lineup.shadows().stats();
    let (label, digest) = running(&s.primary.value);
    let candidates = s
        .candidates
        .iter()
        .map(|(name, entry)| {
            let (label, digest) = running(name);
            let shadow = lanes
                .iter()
                .find(|l| l.name == *name)
                .map(|l| ShadowCounters {
                    started_ms: l.started_ms,
                    offered: l.offered,
                    scored: l.scored,
                    faults: l.faults,
                    dropped: l.dropped,
                    agreed: l.agreed,
                    unplaced: l.unplaced,
                    queued: l.queued as u64,
                });
            CandidateStatus {
                name: name.clone(),
                mode: entry.value.mode,
                weight: entry.value.weight(),
                jobs: entry.value.jobs.clone(),
                label,
                digest,
                origin: entry.origin,
                shadow,
            }
        })
        .collect();
    let scorers = s
        .scorers
        .iter()
        .map(|(name, entry)| NamedScorer {
            name: name.clone(),
            spec: entry.value.clone(),
            origin: entry.origin,
            role: if s.primary.value == *name {
                Some("primary".to_owned())
            } else {
                s.candidates
                    .get(name)
                    .map(|c| c.value.mode.as_str().to_owned())
            },
        })
        .collect();
    SchedulerStatus {
        index,
        primary: ScorerRole {
            name: s.primary.value.clone(),
            label,
            digest,
            origin: s.primary.origin,
        },
        fallback: s.fallback.clone(),
        sampling: s.sampling.sampling(),
        candidates,
        scorers,
        stale: status.stale.clone(),
    }
}

/// Most records per page of `/v1/scheduler/decisions`.
const MAX_PAGE: usize = 1000;

/// How far back `compare` looks unless asked otherwise.
const COMPARE_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// `GET /v1/scheduler/decisions?since=1h&job=ID&after=CURSOR&limit=N`:
/// decision records oldest first, a page at a time, for a replay. The
/// first page (no `after`) counts the records in all and says where the
/// window starts (`since_ms`), for the later pages to ask with, so a replay
/// reads one window however long it takes.
pub async fn decisions(
    Ctx(ctx): Ctx<ApiContext>,
    mut params: Params,
) -> Result<Indexed<Json<DecisionPage>>, ApiError> {
    let since_ms = window(&mut params, None)?;
    let job = params.take("job");
    let number = |params: &mut Params, name: &str, default: u64| -> Result<u64, ApiError> {
        match params.take(name) {
            None => Ok(default),
            Some(text) => text.trim().parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!("{name} must be a whole number, not {text:?}"))
            }),
        }
    };
    let after = number(&mut params, "after", 0)?;
    let limit = number(&mut params, "limit", 200)?;
    if limit == 0 || limit > MAX_PAGE as u64 {
        return Err(ApiError::bad_request(format!(
            "limit must be 1 to {MAX_PAGE}, not {limit}"
        )));
    }
    // A blocking query like every read: with `index`, it answers once the
    // state moved past it (new decisions, say).
    let index = params.block(&ctx.store).await?.index();
    let store = ctx.store.clone();
    let (page, total) = blocking_io(move || {
        store
            .decisions_since(since_ms, job.as_deref(), after, limit as usize)
            .map_err(ApiError::from)
    })
    .await?;
    let next = (page.len() as u64 == limit)
        .then(|| page.last().map(|(rowid, _)| *rowid))
        .flatten();
    Ok(Indexed(
        index,
        Json(DecisionPage {
            decisions: page.into_iter().map(|(_, d)| d).collect(),
            total: total.unwrap_or(0),
            since_ms,
            next,
        }),
    ))
}

/// Where the window of a read starts, in ms since the epoch:
/// `since_ms=MS` as it is; `since=DURATION` back from now, `since=all`
/// (or 0) from the first record; without either, `default` back from now,
/// or from the first record.
fn window(params: &mut Params, default: Option<Duration>) -> Result<u64, ApiError> {
    let back =
        |d: Duration| now_ms().saturating_sub(u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    match (params.take("since"), params.take("since_ms")) {
        (Some(_), Some(_)) => Err(ApiError::bad_request(
            "give since (a duration back from now) or since_ms (a time), not both",
        )),
        (None, Some(ms)) => ms.trim().parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!(
                "since_ms must be a time in ms since the epoch (the since_ms of an earlier answer), not {ms:?}"
            ))
        }),
        (Some(text), None) if text.trim() == "all" => Ok(0),
        (Some(text), None) => {
            let d = text
                .parse::<Dur>()
                .map_err(|e| ApiError::bad_request(format!("since: {e}; or since=all for every record")))?
                .0;
            Ok(if d.is_zero() { 0 } else { back(d) })
        }
        (None, None) => Ok(default.map_or(0, back)),
    }
}

/// `GET /v1/scheduler/compare?since=1h&spread_by=${node.datacenter}`: the
/// last 24 hours unless `since` says otherwise. Reading the records and
/// measuring each cluster take a while on a big cluster: done off the async
/// threads.
pub async fn compare(
    Ctx(ctx): Ctx<ApiContext>,
    mut params: Params,
) -> Result<Indexed<Json<Comparison>>, ApiError> {
    let lineup = lineup(&ctx)?;
    let since_ms = window(&mut params, Some(COMPARE_WINDOW))?;
    let spread_by = params
        .take("spread_by")
        .unwrap_or_else(|| "${node.datacenter}".to_owned());
    if !(spread_by.starts_with("${") && spread_by.ends_with('}')) {
        return Err(ApiError::bad_request(format!(
            "spread_by: {spread_by:?} is not a node attribute; write e.g. ${{node.datacenter}}, ${{attr.kernel.name}} or ${{meta.rack}}"
        )));
    }
    let state = params.block(&ctx.store).await?;
    let store = ctx.store.clone();
    let comparison = blocking_io(move || {
        // The picture over time has a point for now too.
        lineup.history().record_if_due(
            &store,
            lineup.current(),
            lineup.shadows(),
            std::time::Duration::from_secs(1),
        );
        let (decisions, shadows) = store.compare_rows(since_ms).map_err(ApiError::from)?;
        let status = lineup.status();
        let lanes = lineup.shadows().stats();
        let s = &status.settings;
        let label_of = |name: &str| status.running.get(name).map_or("", |(l, _)| l.as_str());
        let mut roles = vec![Role {
            name: &s.primary.value,
            role: "primary",
            label: label_of(&s.primary.value),
            drops: 0,
        }];
        for (name, entry) in &s.candidates {
            roles.push(Role {
                name,
                role: entry.value.mode.as_str(),
                label: label_of(name),
                drops: lanes
                    .iter()
                    .find(|l| l.name == *name)
                    .map_or(0, |l| l.dropped),
            });
        }
        // Named in the records as the scheduler in force names it.
        let scheduler = lineup.current().get();
        if let (Some(name), Some(fallback)) = (scheduler.fallback_name(), scheduler.fallback()) {
            roles.push(Role {
                name,
                role: "fallback",
                label: fallback.label(),
                drops: 0,
            });
        }
        let mut scorers = figures(&roles, &decisions, &shadows);
        for f in &mut scorers {
            f.packing = match f.role.as_str() {
                "primary" => Some(packing(&state, None, 0, &spread_by)),
                "shadow" => lineup
                    .shadows()
                    .cluster_delta(&f.name)
                    .map(|(delta, unplaced)| packing(&state, Some(&delta), unplaced, &spread_by)),
                _ => None,
            };
        }
        Ok(Comparison {
            since_ms,
            index: state.index(),
            scorers,
            history: lineup.history().since(since_ms),
        })
    })
    .await?;
    Ok(Indexed(comparison.index, Json(comparison)))
}
