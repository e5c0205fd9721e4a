//! `/v1/allocations`, `/v1/allocation/{id}` and the status agents report.

use super::body::JsonBody;
use super::error::ApiError;
use super::query::{Indexed, Params, PathId, resolve};
use super::{ApiContext, blocking_io, now_ms};
use crate::{AllocUpdate, Op};
use axum::Json;
use axum::extract::State as Ctx;
use orch_model::{Allocation, AllocationDetail, ClientStatus, Problem};
use serde::{Deserialize, Serialize};

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
    let decision = if verbose {
        let store = ctx.store.clone();
        blocking_io(move || store.decision(&id).map_err(ApiError::from)).await?
    } else {
        None
    };
    Ok(Indexed(
        state.index(),
        Json(AllocationDetail {
            allocation: (*alloc).clone(),
            decision,
        }),
    ))
}

/// The answer to `POST /v1/allocations/status`.
#[derive(Debug, Serialize)]
pub struct StatusUpdated {
    pub index: u64,
    /// Allocations of the batch the server does not have; not applied.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unknown: Vec<String>,
}

/// `POST /v1/allocations/status`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusUpdates {
    pub updates: Vec<StatusUpdate>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusUpdate {
    pub alloc_id: String,
    pub client_status: ClientStatus,
    #[serde(default)]
    pub description: String,
}

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
    let updates = known
        .into_iter()
        .map(|u| AllocUpdate {
            alloc_id: u.alloc_id,
            client_status: u.client_status,
            description: u.description,
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
