//! `/v1/nodes` and `/v1/node/{id}`.

use super::ApiContext;
use super::body::JsonBody;
use super::error::ApiError;
use super::query::{Indexed, Params, PathId, resolve};
use crate::{NodeChange, Op, State};
use axum::Json;
use axum::extract::State as Ctx;
use orch_model::{Allocation, Eligibility, Node, NodeStatus, Problem, Resources};
use orch_wire::{Alive, DrainRequest, EligibilityRequest, NodeUpdated};
use std::sync::Arc;

pub async fn list(
    Ctx(ctx): Ctx<ApiContext>,
    params: Params,
) -> Result<Indexed<Json<Vec<Node>>>, ApiError> {
    let state = params.block(&ctx.store).await?;
    // In id order: the state keeps nodes sorted.
    let nodes = state.nodes().map(|n| (**n).clone()).collect();
    Ok(Indexed(state.index(), Json(nodes)))
}

/// Registers or updates a node; registering is also its first heartbeat:
/// the node is marked ready and must beat within the TTL. The server's own
/// fields of a known node (eligibility, drain, indexes) are kept by the
/// store.
pub async fn register(
    Ctx(ctx): Ctx<ApiContext>,
    params: Params,
    JsonBody(mut node): JsonBody<Node>,
) -> Result<Indexed<Json<Alive>>, ApiError> {
    params.finish()?;
    let problems = node_problems(&node);
    if !problems.is_empty() {
        let n = problems.len();
        return Err(ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "invalid_node",
            format!(
                "node {:?} has {n} problem{}",
                node.id,
                if n == 1 { "" } else { "s" }
            ),
        )
        .with_details(problems));
    }
    node.status = NodeStatus::Ready;
    node.status_description = String::new();
    let id = node.id.clone();
    let index = ctx.store.apply_async(Op::UpsertNode(node)).await?.index();
    ctx.heartbeats.beat(&id, std::time::Instant::now());
    Ok(Indexed(index, Json(alive(&ctx, index))))
}

/// `POST /v1/node/{id}/heartbeat`: the agent is alive. A node marked down
/// (it missed its TTL) that beats again is ready again; otherwise nothing
/// is written.
pub async fn heartbeat(
    Ctx(ctx): Ctx<ApiContext>,
    PathId(id): PathId,
    params: Params,
    // Read, though nothing is in it yet: a body left unread makes hyper
    // close the keep-alive connection, and the agent's next beat fails.
    _body: axum::body::Bytes,
) -> Result<Indexed<Json<Alive>>, ApiError> {
    params.finish()?;
    let state = ctx.store.snapshot();
    let Some(node) = state.node(&id) else {
        return Err(ApiError::not_found(format!(
            "node {id:?} is not registered; register it with POST /v1/nodes first"
        )));
    };
    let mut index = state.index();
    if node.status != NodeStatus::Ready {
        let change = NodeChange::Status {
            status: NodeStatus::Ready,
            description: "heartbeating".into(),
        };
        index = ctx
            .store
            .apply_async(Op::UpdateNode {
                node_id: id.clone(),
                change,
            })
            .await?
            .index();
    }
    ctx.heartbeats.beat(&id, std::time::Instant::now());
    Ok(Indexed(index, Json(alive(&ctx, index))))
}

fn alive(ctx: &ApiContext, index: u64) -> Alive {
    Alive {
        index,
        heartbeat_ttl_ms: u64::try_from(ctx.heartbeats.ttl().as_millis()).unwrap_or(u64::MAX),
    }
}

/// What is wrong with a node an agent (or an operator) registers.
fn node_problems(node: &Node) -> Vec<Problem> {
    let mut problems = Vec::new();
    let id_ok = !node.id.is_empty()
        && node.id.len() <= 128
        && node
            .id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !id_ok {
        problems.push(
            Problem::new("id", format!("{:?} is not a node id", node.id))
                .hint("1 to 128 letters, digits, '-', '_' or '.'; agents use a UUID"),
        );
    }
    if !node.http_addr.is_empty() && !is_http_addr(&node.http_addr) {
        problems.push(
            Problem::new(
                "http_addr",
                format!("{:?} is not an http://HOST:PORT address", node.http_addr),
            )
            .hint("where the agent serves logs, e.g. http://10.0.0.5:4647; leave it out if it serves none"),
        );
    }
    if node.name.trim().is_empty() {
        problems.push(Problem::new("name", "is empty").hint("the hostname is usual"));
    }
    if node.datacenter.trim().is_empty() {
        problems.push(Problem::new("datacenter", "is empty").hint("leave it out for dc1"));
    }
    if node.resources.cpu == 0 || node.resources.memory == 0 {
        problems.push(
            Problem::new(
                "resources",
                "a node needs some cpu and memory to run anything",
            )
            .hint("give resources.cpu in MHz and resources.memory in MiB"),
        );
    }
    if node
        .resources
        .exhausted(node.reserved, Resources::ZERO)
        .is_some()
    {
        problems.push(
            Problem::new("reserved", "reserves more than the node has")
                .hint("reserved is what the OS and the agent keep back from resources"),
        );
    }
    problems
}

/// `http://` and a host, with no path, query or spaces: the server appends
/// the agent's routes to it.
fn is_http_addr(addr: &str) -> bool {
    addr.strip_prefix("http://")
        .map(|rest| rest.trim_end_matches('/'))
        .is_some_and(|host| {
            !host.is_empty()
                && !host.contains(['/', '?', '#', '@'])
                && !host.chars().any(char::is_whitespace)
        })
}

/// The node whose id is `wanted` or starts with it.
pub fn find(state: &State, wanted: &str) -> Result<Arc<Node>, ApiError> {
    let id = resolve("node", wanted, state.nodes().map(|n| n.id.as_str()))?;
    state
        .node(&id)
        .cloned()
        .ok_or_else(|| ApiError::no_such("node", wanted))
}

/// The node `wanted` names, for a person who may know it by name: its id,
/// its name, or a prefix of its id. A name several nodes share and a
/// prefix several ids start with are refused, naming them; a node not
/// found is a 404 with the closest name, if one is close.
pub fn find_by_id_or_name(state: &State, wanted: &str) -> Result<Arc<Node>, ApiError> {
    if let Some(node) = state.node(wanted) {
        return Ok(node.clone());
    }
    let named: Vec<&Arc<Node>> = state.nodes().filter(|n| n.name == wanted).collect();
    match named[..] {
        [] => {}
        [one] => return Ok(one.clone()),
        ref several => {
            let ids: Vec<&str> = several.iter().map(|n| n.id.as_str()).collect();
            return Err(ApiError::bad_request(format!(
                "{} nodes are named {wanted:?}: {}; give the id of the one you mean",
                several.len(),
                ids.join(", ")
            )));
        }
    }
    match find(state, wanted) {
        Err(e) if e.status == axum::http::StatusCode::NOT_FOUND => {
            let hint = orch_model::closest(wanted, state.nodes().map(|n| n.name.as_str()))
                .map(|name| format!("; did you mean {name:?}?"))
                .unwrap_or_default();
            Err(ApiError::not_found(format!(
                "node {wanted:?} not found: no node has that id, id prefix or name{hint}"
            )))
        }
        found => found,
    }
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

/// Starts or ends a drain: a draining node takes nothing new and its
/// allocations are moved elsewhere by the evaluations the store makes;
/// ending a drain makes the node eligible again.
pub async fn drain(
    Ctx(ctx): Ctx<ApiContext>,
    PathId(id): PathId,
    params: Params,
    JsonBody(body): JsonBody<DrainRequest>,
) -> Result<Indexed<Json<NodeUpdated>>, ApiError> {
    params.finish()?;
    update(&ctx, &id, NodeChange::Drain(body.enable)).await
}

/// Marks a node eligible or not for new allocations; what runs there stays.
pub async fn eligibility(
    Ctx(ctx): Ctx<ApiContext>,
    PathId(id): PathId,
    params: Params,
    JsonBody(body): JsonBody<EligibilityRequest>,
) -> Result<Indexed<Json<NodeUpdated>>, ApiError> {
    params.finish()?;
    let eligibility = if body.eligible {
        Eligibility::Eligible
    } else {
        Eligibility::Ineligible
    };
    update(&ctx, &id, NodeChange::Eligibility(eligibility)).await
}

/// Applies an operator's change to the node `wanted` names (an id or a
/// prefix of one).
async fn update(
    ctx: &ApiContext,
    wanted: &str,
    change: NodeChange,
) -> Result<Indexed<Json<NodeUpdated>>, ApiError> {
    let node_id = find(&ctx.store.snapshot(), wanted)?.id.clone();
    let outcome = ctx
        .store
        .apply_async(Op::UpdateNode { node_id, change })
        .await?;
    let index = outcome.index();
    let eval_ids = match outcome {
        crate::Outcome::Applied { evals, .. } => evals,
        _ => Vec::new(),
    };
    Ok(Indexed(index, Json(NodeUpdated { index, eval_ids })))
}
