//! `/v1/nodes` and `/v1/node/{id}`.

use super::ApiContext;
use super::body::JsonBody;
use super::error::ApiError;
use super::query::{Indexed, Params, PathId, resolve};
use crate::{Op, State};
use axum::Json;
use axum::extract::State as Ctx;
use orch_model::{Allocation, Node, NodeStatus};
use serde::Serialize;
use std::sync::Arc;

/// `{"index"}`: the commit a write landed in.
#[derive(Debug, Serialize)]
pub struct IndexBody {
    pub index: u64,
}

pub async fn list(
    Ctx(ctx): Ctx<ApiContext>,
    params: Params,
) -> Result<Indexed<Json<Vec<Node>>>, ApiError> {
    let state = params.block(&ctx.store).await?;
    // In id order: the state keeps nodes sorted.
    let nodes = state.nodes().map(|n| (**n).clone()).collect();
    Ok(Indexed(state.index(), Json(nodes)))
}

/// Registers or updates a node. Until agents heartbeat, registering is the
/// heartbeat: the node is marked ready. The server's own fields of a known
/// node (eligibility, drain, indexes) are kept by the store.
pub async fn register(
    Ctx(ctx): Ctx<ApiContext>,
    params: Params,
    JsonBody(mut node): JsonBody<Node>,
) -> Result<Indexed<Json<IndexBody>>, ApiError> {
    params.finish()?;
    if node.id.trim().is_empty() {
        return Err(ApiError::bad_request("the node needs an id"));
    }
    node.status = NodeStatus::Ready;
    node.status_description = String::new();
    let index = ctx.store.apply_async(Op::UpsertNode(node)).await?.index();
    Ok(Indexed(index, Json(IndexBody { index })))
}

/// The node whose id is `wanted` or starts with it.
pub fn find(state: &State, wanted: &str) -> Result<Arc<Node>, ApiError> {
    let id = resolve("node", wanted, state.nodes().map(|n| n.id.as_str()))?;
    state
        .node(&id)
        .cloned()
        .ok_or_else(|| ApiError::no_such("node", wanted))
}

pub async fn get(
    Ctx(ctx): Ctx<ApiContext>,
    PathId(id): PathId,
    params: Params,
) -> Result<Indexed<Json<Node>>, ApiError> {
    let state = params.block(&ctx.store).await?;
    let node = find(&state, &id)?;
    Ok(Indexed(state.index(), Json((*node).clone())))
}

pub async fn allocations(
    Ctx(ctx): Ctx<ApiContext>,
    PathId(id): PathId,
    params: Params,
) -> Result<Indexed<Json<Vec<Allocation>>>, ApiError> {
    let state = params.block(&ctx.store).await?;
    let node = find(&state, &id)?;
    let mut allocs: Vec<Allocation> = state
        .allocs_on_node(&node.id)
        .map(|a| (**a).clone())
        .collect();
    super::allocs::sort(&mut allocs);
    Ok(Indexed(state.index(), Json(allocs)))
}
