//! `GET /v1/allocation/{id}/why-not/{node}`: why an allocation is not on
//! that node (`orch alloc status ID --why-not NODE`). The plan's own
//! why-not is a parameter of `POST /v1/job/{id}/plan` (`jobs.rs`).

use super::allocs::job_of;
use super::error::ApiError;
use super::query::{Indexed, Params, resolve};
use super::{ApiContext, blocking_io};
use crate::scheduler::alloc_why_not;
use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State as Ctx};
use orch_wire::AllocWhyNot;

/// From the allocation's decision record when the node was a candidate;
/// otherwise the group's checks (of the job version the allocation runs)
/// against the node as it is now, which the answer says.
pub async fn alloc(
    Ctx(ctx): Ctx<ApiContext>,
    path: Result<Path<(String, String)>, PathRejection>,
    params: Params,
) -> Result<Indexed<Json<AllocWhyNot>>, ApiError> {
    let Path((wanted, node)) =
        path.map_err(|e| ApiError::bad_request(format!("bad path: {}", e.body_text())))?;
    let state = params.block(&ctx.store).await?;
    let id = resolve("allocation", &wanted, state.allocs().map(|a| a.id.as_str()))?;
    let alloc = state
        .alloc(&id)
        .cloned()
        .ok_or_else(|| ApiError::no_such("allocation", &id))?;
    let node = super::nodes::find_by_id_or_name(&state, &node)?;
    let job = job_of(&ctx, &state, &alloc).await?;
    let store = ctx.store.clone();
    let decision = blocking_io(move || store.decision(&id).map_err(ApiError::from)).await?;
    let recorded = decision
        .as_ref()
        .is_some_and(|d| d.candidates.contains(&node.id));
    if node.id == alloc.node_id && !recorded {
        return Err(ApiError::bad_request(format!(
            "allocation {} is on node {} ({}), and no decision record is kept to show its \
             score there; ask about another node",
            alloc.id, node.name, node.id
        )));
    }
    // Only the job version the allocation runs can fail here (it lacks
    // the allocation's group, or no longer compiles): the server's record
    // is at fault, not the request.
    let why = alloc_why_not(&state, &job, &alloc, decision.as_ref(), &node)
        .map_err(|e| ApiError::internal(format!("cannot explain allocation {}: {e}", alloc.id)))?;
    Ok(Indexed(state.index(), Json(why)))
}
