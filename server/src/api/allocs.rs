//! `/v1/allocations`, `/v1/allocation/{id}` and the status agents report.

use super::body::JsonBody;
use super::error::ApiError;
use super::query::{Indexed, Params, PathId, resolve};
use super::{ApiContext, blocking_io, now_ms};
use crate::{AllocUpdate, Op, State};
use axum::Json;
use axum::extract::State as Ctx;
use orch_model::{Allocation, ClientStatus, Job, Problem, TaskState};
use orch_wire::{AllocationDetail, StatusUpdate, StatusUpdated, StatusUpdates};
use std::sync::Arc;

/// Lists read by people: by job, then group, then slot, oldest first.
pub fn sort(allocs: &mut [Allocation]) {
    allocs.sort_by(|a, b| {
        (&a.job_id, &a.group, a.index, a.create_index, &a.id).cmp(&(
            &b.job_id,
            &b.group,
            b.index,
            b.create_index,
            &b.id,
        ))
    });
}

pub async fn list(
    Ctx(ctx): Ctx<ApiContext>,
    mut params: Params,
) -> Result<Indexed<Json<Vec<Allocation>>>, ApiError> {
    let job = params.take("job");
    let node = params.take("node");
    let state = params.block(&ctx.store).await?;
    // A node filter takes a prefix like every node id; an unknown node is a
    // 404 rather than an empty list, so a typo is not read as "nothing runs".
    let node = match node {
        Some(wanted) => Some(super::nodes::find(&state, &wanted)?.id.clone()),
        None => None,
    };
    let mut allocs: Vec<Allocation> = match (&job, &node) {
        (Some(job), _) => state
            .allocs_of_job(job)
            .filter(|a| node.as_ref().is_none_or(|n| &a.node_id == n))
            .map(|a| (**a).clone())
            .collect(),
        (None, Some(node)) => state.allocs_on_node(node).map(|a| (**a).clone()).collect(),
        (None, None) => state.allocs().map(|a| (**a).clone()).collect(),
    };
    sort(&mut allocs);
    Ok(Indexed(state.index(), Json(allocs)))
}

pub async fn get(
    Ctx(ctx): Ctx<ApiContext>,
    PathId(id): PathId,
    mut params: Params,
) -> Result<Indexed<Json<AllocationDetail>>, ApiError> {
    let verbose = params.flag("verbose")?;
    let state = params.block(&ctx.store).await?;
    let id = resolve("allocation", &id, state.allocs().map(|a| a.id.as_str()))?;
    let alloc = state
        .alloc(&id)
        .cloned()
        .ok_or_else(|| ApiError::no_such("allocation", &id))?;
    let (decision, shadows) = if verbose {
        let store = ctx.store.clone();
        blocking_io(move || {
            Ok((
                store.decision(&id).map_err(ApiError::from)?,
                store.shadows(&id).map_err(ApiError::from)?,
            ))
        })
        .await?
    } else {
        (None, Vec::new())
    };
    Ok(Indexed(
        state.index(),
        Json(AllocationDetail {
            allocation: (*alloc).clone(),
            decision,
            shadows,
        }),
    ))
}

/// The longest description or event message kept, in bytes: enough for
/// an error and an exit status, not for a task's output (that is in its
/// logs).
pub const MAX_MESSAGE_BYTES: usize = 4096;

pub async fn update_status(
    Ctx(ctx): Ctx<ApiContext>,
    params: Params,
    JsonBody(body): JsonBody<StatusUpdates>,
) -> Result<Indexed<Json<StatusUpdated>>, ApiError> {
    params.finish()?;
    if body.updates.is_empty() {
        return Err(ApiError::bad_request("updates is empty: nothing to change"));
    }
    if let Some(i) = body
        .updates
        .iter()
        .position(|u| u.client_status == ClientStatus::Lost)
    {
        return Err(ApiError::bad_request(
            "lost is the server's to say, when a node misses its heartbeats",
        )
        .with_details(vec![
            Problem::new(
                format!("updates[{i}].client_status"),
                "lost is not reported",
            )
            .hint("report pending, running, complete or failed"),
        ]));
    }
    // An agent's batch may name an allocation the server no longer has;
    // the rest of the batch still counts.
    let state = ctx.store.snapshot();
    let (known, unknown): (Vec<StatusUpdate>, Vec<StatusUpdate>) = body
        .updates
        .into_iter()
        .partition(|u| state.alloc(&u.alloc_id).is_some());
    if known.is_empty() {
        let ids: Vec<&str> = unknown.iter().map(|u| u.alloc_id.as_str()).collect();
        return Err(ApiError::not_found(format!(
            "no such allocation: {}",
            ids.join(", ")
        )));
    }
    let problems = report_problems(&ctx, &state, &known).await?;
    if !problems.is_empty() {
        let n = problems.len();
        return Err(ApiError::bad_request(format!(
            "the status report has {n} problem{}; nothing was applied",
            if n == 1 { "" } else { "s" }
        ))
        .with_details(problems));
    }
    let updates = known
        .into_iter()
        .map(|u| AllocUpdate {
            alloc_id: u.alloc_id,
            client_status: u.client_status,
            description: u.description,
            task_states: u.task_states,
        })
        .collect();
    let index = ctx
        .store
        .apply_async(Op::UpdateAllocs {
            updates,
            now_ms: now_ms(),
        })
        .await?
        .index();
    Ok(Indexed(
        index,
        Json(StatusUpdated {
            index,
            unknown: unknown.into_iter().map(|u| u.alloc_id).collect(),
        }),
    ))
}

/// The job version `alloc` runs: from the snapshot when it is the current
/// one, else from the store's history.
pub async fn job_of(
    ctx: &ApiContext,
    state: &State,
    alloc: &Allocation,
) -> Result<Arc<Job>, ApiError> {
    if let Some(job) = state.job(&alloc.job_id)
        && job.version == alloc.job_version
    {
        return Ok(job.clone());
    }
    let store = ctx.store.clone();
    let (job_id, version) = (alloc.job_id.clone(), alloc.job_version);
    let found =
        blocking_io(move || store.job_version(&job_id, version).map_err(ApiError::from)).await?;
    found.map(Arc::new).ok_or_else(|| {
        ApiError::internal(format!(
            "allocation {} runs version {} of job {:?}, which the store does not have",
            alloc.id, alloc.job_version, alloc.job_id
        ))
    })
}

/// The names of the tasks of `alloc`'s group, in the job's order.
pub fn task_names<'a>(job: &'a Job, alloc: &Allocation) -> Vec<&'a str> {
    job.group(&alloc.group)
        .map(|g| g.tasks.iter().map(|t| t.name.as_str()).collect())
        .unwrap_or_default()
}

/// What is wrong with the descriptions and task states of a report: a task
/// that is not one of the allocation's group, more events than are kept, a
/// message over [`MAX_MESSAGE_BYTES`].
async fn report_problems(
    ctx: &ApiContext,
    state: &State,
    updates: &[StatusUpdate],
) -> Result<Vec<Problem>, ApiError> {
    let too_long = |field: String, text: &str| {
        (text.len() > MAX_MESSAGE_BYTES).then(|| {
            Problem::new(
                field,
                format!(
                    "is {} bytes, over the limit of {MAX_MESSAGE_BYTES}",
                    text.len()
                ),
            )
            .hint("say what happened in a line; the task's output belongs in its logs")
        })
    };
    let mut problems = Vec::new();
    for (i, update) in updates.iter().enumerate() {
        problems.extend(too_long(
            format!("updates[{i}].description"),
            &update.description,
        ));
        let Some(tasks) = &update.task_states else {
            continue;
        };
        let Some(alloc) = state.alloc(&update.alloc_id) else {
            continue;
        };
        let job = job_of(ctx, state, alloc).await?;
        let names = task_names(&job, alloc);
        for (name, task) in tasks {
            let at = format!("updates[{i}].task_states.{name}");
            if !names.contains(&name.as_str()) {
                problems.push(
                    Problem::new(
                        &at,
                        format!(
                            "group {:?} of job {:?} has no task {name:?}",
                            alloc.group, alloc.job_id
                        ),
                    )
                    .hint(format!("its tasks are: {}", names.join(", "))),
                );
            }
            if task.events.len() > TaskState::MAX_EVENTS {
                problems.push(
                    Problem::new(
                        format!("{at}.events"),
                        format!(
                            "has {} events; at most {} are kept",
                            task.events.len(),
                            TaskState::MAX_EVENTS
                        ),
                    )
                    .hint("send the most recent ones (TaskState::push drops the oldest)"),
                );
            }
            for (k, event) in task.events.iter().enumerate() {
                problems.extend(too_long(
                    format!("{at}.events[{k}].message"),
                    &event.message,
                ));
            }
        }
    }
    Ok(problems)
}
