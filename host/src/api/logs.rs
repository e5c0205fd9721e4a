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
use orch_model::{ErrorBody, Node};
use std::io::Read as _;
use std::sync::OnceLock;
use std::time::Duration;

/// The header naming the log file to ask from next.
pub const LOG_FILE_HEADER: &str = "x-orch-log-file";
/// The header naming the offset in that file to ask from next.
pub const LOG_OFFSET_HEADER: &str = "x-orch-log-offset";

/// How long connecting to an agent may take: an agent that does not
/// answer this fast is not there, and the client should hear so soon.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the whole exchange with an agent may take.
const AGENT_TIMEOUT: Duration = Duration::from_secs(30);
/// The most bytes relayed in one answer; an agent answers far less, this
/// only bounds what a misbehaving one can make the server hold.
const MAX_CHUNK: u64 = 16 << 20;

/// One HTTP client for every agent, so connections are reused between the
/// polls of `orch alloc logs -f`. Kept here rather than in [`ApiContext`]:
/// only this route talks to agents.
fn agents() -> &'static ureq::Agent {
    static AGENT: OnceLock<ureq::Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        ureq::Agent::config_builder()
            // An agent's error answer carries an ErrorBody worth relaying.
            .http_status_as_error(false)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_global(Some(AGENT_TIMEOUT))
            .user_agent(concat!("orch-server/", env!("CARGO_PKG_VERSION")))
            .build()
            .into()
    })
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
    let url = format!(
        "{}/v1/agent/logs/{}/{}",
        node.http_addr.trim_end_matches('/'),
        super::path_segment(&alloc.id),
        super::path_segment(&task)
    );
    let response = blocking_io(move || fetch(&node, &url, &query)).await?;
    Ok(Indexed(state.index(), response).into_response())
}

/// Asks `node`'s agent for the chunk at `url`; its answer, or an error that
/// names the node and its address.
fn fetch(node: &Node, url: &str, query: &[(&str, String)]) -> Result<Response, ApiError> {
    let mut request = agents().get(url);
    for (k, v) in query {
        request = request.query(*k, v);
    }
    let mut answer = request.call().map_err(|e| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "agent_unreachable",
            format!(
                "cannot reach the agent of node {} ({}) at {}: {e}; is `orch agent` running there, and can the server reach that address?",
                node.name, node.id, node.http_addr
            ),
        )
    })?;
    let status = answer.status();
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
    let mut body = Vec::new();
    answer
        .body_mut()
        .as_reader()
        .take(MAX_CHUNK + 1)
        .read_to_end(&mut body)
        .map_err(|e| bad_answer(format!("broke off its answer: {e}")))?;
    if !status.is_success() {
        let Ok(error) = serde_json::from_slice::<ErrorBody>(&body) else {
            return Err(bad_answer(format!(
                "answered HTTP {} without an orch error body",
                status.as_u16()
            )));
        };
        // What the agent says of the allocation or task (not found there
        // yet, say) is the client's to read; its own failures are the
        // gateway's.
        let status = if status.is_client_error() {
            StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY)
        } else {
            StatusCode::BAD_GATEWAY
        };
        return Err(ApiError::new(
            status,
            &error.code,
            format!(
                "the agent of node {} ({}): {}",
                node.name, node.id, error.message
            ),
        )
        .with_details(error.details));
    }
    if body.len() as u64 > MAX_CHUNK {
        return Err(bad_answer(format!(
            "answered more than {MAX_CHUNK} bytes at once"
        )));
    }
    let cursor = |name: &str| {
        answer
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .ok_or_else(|| bad_answer(format!("answered without a valid {name} header")))
    };
    let (file, offset) = (cursor(LOG_FILE_HEADER)?, cursor(LOG_OFFSET_HEADER)?);
    let mut response = Body::from(body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(LOG_FILE_HEADER, HeaderValue::from(file));
    headers.insert(LOG_OFFSET_HEADER, HeaderValue::from(offset));
    Ok(response)
}
