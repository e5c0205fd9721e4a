//! `/v1/jobs` and `/v1/job/{id}`: register, read, stop, plan, history.

use super::body::JsonBody;
use super::diff::{diff_type, job_diff};
use super::error::ApiError;
use super::query::{Indexed, Params, PathId};
use super::{ApiContext, blocking_io, now_ms, sorted_evals};
use crate::scheduler::SchedError;
use crate::{Op, Outcome, State};
use axum::Json;
use axum::extract::State as Ctx;
use axum::http::StatusCode;
use orch_model::{
    Allocation, ClientStatus, EvalStatus, Evaluation, Job, job_warnings, validate_job,
};
use orch_wire::{
    JobPlanResponse, JobRegisterRequest, JobRegisterResponse, JobStopResponse, JobSummary,
};
use std::collections::BTreeMap;
use std::sync::Arc;

pub async fn list(
    Ctx(ctx): Ctx<ApiContext>,
    params: Params,
) -> Result<Indexed<Json<Vec<JobSummary>>>, ApiError> {
    let state = params.block(&ctx.store).await?;
    // The state keeps jobs in id order already.
    let jobs = state.jobs().map(|job| summary(&state, job)).collect();
    Ok(Indexed(state.index(), Json(jobs)))
}

/// One line of `orch job status`. The status follows Nomad: `running`
/// while any allocation runs; otherwise `pending` while something is still
/// to happen (an allocation starting, an evaluation waiting); otherwise
/// `dead` once it was stopped or everything it ran has ended; a job with no
/// allocations and nothing queued is `pending` (its evaluation may not be
/// written yet).
fn summary(state: &State, job: &Job) -> JobSummary {
    let mut allocs: BTreeMap<String, u64> = BTreeMap::new();
    let mut running = false;
    let mut starting = false;
    let mut any = false;
    for alloc in state.allocs_of_job(&job.id) {
        any = true;
        *allocs
            .entry(alloc.client_status.as_str().to_owned())
            .or_default() += 1;
        running |= alloc.client_status == ClientStatus::Running;
        starting |= alloc.client_status == ClientStatus::Pending && alloc.holds_resources();
    }
    let queued = state
        .evals_of_job(&job.id)
        .any(|e| matches!(e.status, EvalStatus::Pending | EvalStatus::Blocked));
    let status = if running {
        "running"
    } else if job.stop || (any && !starting && !queued) {
        "dead"
    } else {
        "pending"
    };
    JobSummary {
        id: job.id.clone(),
        name: job.display_name().to_owned(),
        job_type: job.job_type.as_str().to_owned(),
        priority: job.priority,
        status: status.to_owned(),
        version: job.version,
        stop: job.stop,
        allocs,
        modify_index: job.modify_index,
    }
}

/// Validation first: a refused job never reaches the store, so nothing is
/// half-written.
fn checked(job: &Job) -> Result<(), ApiError> {
    let problems = validate_job(job);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid_job(&job.id, problems))
    }
}

pub async fn register(
    Ctx(ctx): Ctx<ApiContext>,
    params: Params,
    JsonBody(request): JsonBody<JobRegisterRequest>,
) -> Result<Indexed<Json<JobRegisterResponse>>, ApiError> {
    params.finish()?;
    let JobRegisterRequest { job, enforce_index } = request;
    checked(&job)?;
    let warnings = job_warnings(&job).iter().map(ToString::to_string).collect();
    let outcome = ctx
        .store
        .apply_async(Op::RegisterJob {
            job,
            enforce_index,
            now_ms: now_ms(),
        })
        .await?;
    let Outcome::JobRegistered {
        index,
        eval_id,
        version,
        modify_index,
    } = outcome
    else {
        return Err(ApiError::internal(format!(
            "the store answered a job registration with {outcome:?}"
        )));
    };
    Ok(Indexed(
        index,
        Json(JobRegisterResponse {
            eval_id,
            job_version: version,
            job_modify_index: modify_index,
            index,
            warnings,
        }),
    ))
}

fn job_in(state: &State, id: &str) -> Result<Arc<Job>, ApiError> {
    state
        .job(id)
        .cloned()
        .ok_or_else(|| ApiError::no_such("job", id))
}

/// The job's current version, or with `?version=N` that version (what an
/// agent runs an allocation of an older version with).
pub async fn get(
    Ctx(ctx): Ctx<ApiContext>,
    PathId(id): PathId,
    mut params: Params,
) -> Result<Indexed<Json<Job>>, ApiError> {
    let version = match params.take("version") {
        None => None,
        Some(text) => Some(text.trim().parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!(
                "version must be a whole number (a job version, as `orch job history` lists them), not {text:?}"
            ))
        })?),
    };
    let state = params.block(&ctx.store).await?;
    let job = job_in(&state, &id)?;
    let Some(version) = version.filter(|v| *v != job.version) else {
        return Ok(Indexed(state.index(), Json((*job).clone())));
    };
    let store = ctx.store.clone();
    let found =
        blocking_io(move || store.job_version(&id, version).map_err(ApiError::from)).await?;
    match found {
        Some(old) => Ok(Indexed(state.index(), Json(old))),
        None => Err(ApiError::not_found(format!(
            "job {:?} has no version {version}; its versions are 0 to {} (see `orch job history {}`)",
            job.id, job.version, job.id
        ))),
    }
}

pub async fn stop(
    Ctx(ctx): Ctx<ApiContext>,
    PathId(id): PathId,
    params: Params,
) -> Result<Indexed<Json<JobStopResponse>>, ApiError> {
    params.finish()?;
    let outcome = ctx
        .store
        .apply_async(Op::StopJob {
            job_id: id,
            now_ms: now_ms(),
        })
        .await?;
    let index = outcome.index();
    let eval_id = match outcome {
        Outcome::Applied { evals, .. } => evals.into_iter().next(),
        _ => None,
    };
    let eval_id = eval_id.ok_or_else(|| {
        ApiError::internal("the store stopped the job but made no evaluation for it")
    })?;
    Ok(Indexed(index, Json(JobStopResponse { eval_id, index })))
}

pub async fn plan(
    Ctx(ctx): Ctx<ApiContext>,
    PathId(id): PathId,
    mut params: Params,
    JsonBody(request): JsonBody<JobRegisterRequest>,
) -> Result<Indexed<Json<JobPlanResponse>>, ApiError> {
    let why_not = params.take("why_not");
    params.finish()?;
    let job = request.job;
    if job.id != id {
        return Err(ApiError::bad_request(format!(
            "the path names job {id:?} but the body's job is {:?}",
            job.id
        )));
    }
    checked(&job)?;
    let state = ctx.store.snapshot();
    // `?why_not=NODE`: what became of that node, asked of the same dry run.
    let watched = match &why_not {
        Some(wanted) => Some(super::nodes::find_by_id_or_name(&state, wanted)?),
        None => None,
    };
    let old = state.job(&id).cloned();
    let diff = job_diff(old.as_deref(), &job);
    let diff_type = diff_type(old.as_deref(), &diff).to_owned();
    let scheduler = ctx.scheduler.get();
    let now = now_ms();
    // A dry run scores nodes (maybe in a wasm component): keep it off the
    // threads that serve requests.
    let snapshot = state.clone();
    let Ok(_permit) = ctx.dry_runs.clone().try_acquire_owned() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            format!(
                "{} plans are being computed already; try again in a moment",
                ApiContext::DRY_RUNS
            ),
        ));
    };
    let dry = blocking_io(move || {
        Ok(scheduler.dry_run(&snapshot, &job, now).and_then(|dry| {
            let why_not = match watched {
                Some(node) => Some(dry.why_not(&snapshot, &job, &node)?),
                None => None,
            };
            Ok((dry, why_not))
        }))
    })
    .await?;
    let (dry, why_not) = dry.map_err(|e| match e {
        // The job cannot be scheduled as written: the client's to fix.
        SchedError::Job { .. } => ApiError::bad_request(format!("cannot plan: {e}")),
        // The scorer (a plugin) failed: the server's problem, maybe passing.
        SchedError::Scorer { .. } => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "scorer_unavailable",
            format!("cannot plan: {e}"),
        ),
    })?;
    Ok(Indexed(
        state.index(),
        Json(JobPlanResponse {
            diff_type,
            diff,
            groups: dry.groups,
            placements: dry.placements,
            failed_tg_allocs: dry.failed_tg_allocs,
            job_modify_index: old.map_or(0, |j| j.modify_index),
            why_not,
        }),
    ))
}

pub async fn versions(
    Ctx(ctx): Ctx<ApiContext>,
    PathId(id): PathId,
    params: Params,
) -> Result<Indexed<Json<Vec<Job>>>, ApiError> {
    let state = params.block(&ctx.store).await?;
    job_in(&state, &id)?;
    // The versions come from SQLite, which may already hold a later commit
    // than the snapshot; the snapshot's index is the safe one to report,
    // since a client blocking on it then wakes early rather than missing a
    // change.
    let store = ctx.store.clone();
    let versions = blocking_io(move || store.job_versions(&id).map_err(ApiError::from)).await?;
    Ok(Indexed(state.index(), Json(versions)))
}

pub async fn allocations(
    Ctx(ctx): Ctx<ApiContext>,
    PathId(id): PathId,
    params: Params,
) -> Result<Indexed<Json<Vec<Allocation>>>, ApiError> {
    let state = params.block(&ctx.store).await?;
    job_in(&state, &id)?;
    let mut allocs: Vec<Allocation> = state.allocs_of_job(&id).map(|a| (**a).clone()).collect();
    super::allocs::sort(&mut allocs);
    Ok(Indexed(state.index(), Json(allocs)))
}

pub async fn evaluations(
    Ctx(ctx): Ctx<ApiContext>,
    PathId(id): PathId,
    params: Params,
) -> Result<Indexed<Json<Vec<Evaluation>>>, ApiError> {
    let state = params.block(&ctx.store).await?;
    job_in(&state, &id)?;
    let evals = sorted_evals(state.evals_of_job(&id));
    Ok(Indexed(state.index(), Json(evals)))
}
