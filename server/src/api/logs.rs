//! `GET /v1/allocation/{id}/logs/{task}`: a task's output, read from the
//! agent of the allocation's node and passed through.
//!
//! Agents dial out to the server, but logs stay where they are written;
//! each agent serves them at the `http_addr` it registered, and the server
//! relays so that a client needs to reach only the server. The bytes and
//! the cursor to ask from next (`X-Orch-Log-File`, `X-Orch-Log-Offset`)
//! pass through unchanged.

use super::allocs::{job_of, task_names};
use super::error::ApiError;
use super::query::{Indexed, Params, resolve};
use super::{ApiContext, blocking_io};
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State as Ctx};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use orch_model::Node;
use orch_wire::{
    Client, ClientError, ClientOptions, LOG_FILE_HEADER, LOG_OFFSET_HEADER, routes as r,
};
use std::sync::OnceLock;

/// One HTTP client for every agent, so connections are reused between the
/// polls of `orch alloc logs -f`. Kept here rather than in [`ApiContext`]:
/// only this route talks to agents. Its options bound what a misbehaving
/// agent can make the server hold (16 MiB; an agent answers 1 MiB at most).
fn agents() -> Result<&'static Client, ApiError> {
    static AGENTS: OnceLock<Result<Client, String>> = OnceLock::new();
    AGENTS
        .get_or_init(|| {
            Client::new("http://127.0.0.1", ClientOptions::server()).map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| ApiError::internal(format!("the client for agents: {e}")))
}

/// The stream asked for, checked before it is sent on.
fn stream(params: &mut Params) -> Result<&'static str, ApiError> {
    match params.take("type").as_deref() {
        None | Some("stdout") => Ok("stdout"),
        Some("stderr") => Ok("stderr"),
        Some(other) => Err(ApiError::bad_request(format!(
            "type must be stdout or stderr, not {other:?}"
        ))),
    }
}

fn number(params: &mut Params, name: &str) -> Result<Option<u64>, ApiError> {
    params
        .take(name)
        .map(|text| {
            text.trim().parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!(
                    "{name} must be a whole number (from the {} header of an earlier answer), not {text:?}",
                    if name == "file" {
                        "X-Orch-Log-File"
                    } else {
                        "X-Orch-Log-Offset"
                    }
                ))
            })
        })
        .transpose()
}

pub async fn logs(
    Ctx(ctx): Ctx<ApiContext>,
    path: Result<Path<(String, String)>, PathRejection>,
    mut params: Params,
) -> Result<Response, ApiError> {
    let Path((wanted, task)) =
        path.map_err(|e| ApiError::bad_request(format!("bad path: {}", e.body_text())))?;
    let stream = stream(&mut params)?;
    let file = number(&mut params, "file")?;
    let offset = number(&mut params, "offset")?;
    let state = params.block(&ctx.store).await?;
    let id = resolve("allocation", &wanted, state.allocs().map(|a| a.id.as_str()))?;
    let alloc = state
        .alloc(&id)
        .cloned()
        .ok_or_else(|| ApiError::no_such("allocation", &id))?;
    let job = job_of(&ctx, &state, &alloc).await?;
    let tasks = task_names(&job, &alloc);
    if !tasks.contains(&task.as_str()) {
        return Err(ApiError::bad_request(format!(
            "allocation {} (group {:?} of job {:?}) has no task {task:?}; its tasks are: {}",
            alloc.id,
            alloc.group,
            alloc.job_id,
            tasks.join(", ")
        )));
    }
    let node = state.node(&alloc.node_id).cloned().ok_or_else(|| {
        ApiError::not_found(format!(
            "node {:?} of allocation {} is not registered",
            alloc.node_id, alloc.id
        ))
    })?;
    if node.http_addr.is_empty() {
        return Err(ApiError::conflict(format!(
            "node {} ({}) has no agent to read logs from: it registered without an http_addr",
            node.name, node.id
        )));
    }
    let mut query = vec![("type", stream.to_owned())];
    query.extend(file.map(|f| ("file", f.to_string())));
    query.extend(offset.map(|o| ("offset", o.to_string())));
    let alloc_id = alloc.id.clone();
    let response = blocking_io(move || fetch(&node, &alloc_id, &task, &query)).await?;
    Ok(Indexed(state.index(), response).into_response())
}

/// Asks `node`'s agent for a chunk of `task`'s log; its answer, or an
/// error that names the node and its address.
fn fetch(
    node: &Node,
    alloc_id: &str,
    task: &str,
    query: &[(&str, String)],
) -> Result<Response, ApiError> {
    let agent = agents()?.at(&node.http_addr).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "agent_unreachable",
            format!(
                "cannot reach the agent of node {} ({}) at {}: {e}",
                node.name, node.id, node.http_addr
            ),
        )
    })?;
    let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let bad_answer = |detail: String| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "bad_gateway",
            format!(
                "the agent of node {} ({}) at {} {detail}",
                node.name, node.id, node.http_addr
            ),
        )
    };
    let answer = match agent.get_bytes(&r::AGENT_LOGS, &[alloc_id, task], &query) {
        Ok(answer) => answer,
        Err(ClientError::Unreachable { cause, .. }) => {
            return Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                "agent_unreachable",
                format!(
                    "cannot reach the agent of node {} ({}) at {}: {cause}; is `orch agent` running there, and can the server reach that address?",
                    node.name, node.id, node.http_addr
                ),
            ));
        }
        Err(ClientError::Api { status, body, .. }) => {
            // What the agent says of the allocation or task (not found there
            // yet, say) is the client's to read; its own failures are the
            // gateway's.
            let status = StatusCode::from_u16(status)
                .ok()
                .filter(StatusCode::is_client_error)
                .unwrap_or(StatusCode::BAD_GATEWAY);
            return Err(ApiError::new(
                status,
                &body.code,
                format!(
                    "the agent of node {} ({}): {}",
                    node.name, node.id, body.message
                ),
            )
            .with_details(body.details));
        }
        // What the agent said is not passed on: it is not an orch error,
        // and the person reading this should not read arbitrary text.
        Err(ClientError::Unexpected { status, detail, .. }) if (200..300).contains(&status) => {
            return Err(bad_answer(detail));
        }
        Err(ClientError::Unexpected { status, .. }) => {
            return Err(bad_answer(format!(
                "answered HTTP {status} without an orch error body"
            )));
        }
        Err(ClientError::BrokeOff { cause, .. }) => {
            return Err(bad_answer(format!("broke off its answer: {cause}")));
        }
        Err(e @ ClientError::Address { .. }) => return Err(bad_answer(e.to_string())),
    };
    let cursor = |name: &str| {
        answer
            .number_header(name)
            .ok_or_else(|| bad_answer(format!("answered without a valid {name} header")))
    };
    let (file, offset) = (cursor(LOG_FILE_HEADER)?, cursor(LOG_OFFSET_HEADER)?);
    let mut response = Body::from(answer.body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(LOG_FILE_HEADER, HeaderValue::from(file));
    headers.insert(LOG_OFFSET_HEADER, HeaderValue::from(offset));
    Ok(response)
}
