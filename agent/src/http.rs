//! The agent's own small HTTP API: task logs, read by the server (which
//! proxies them to `orch alloc logs`).
//!
//! `GET /v1/agent/logs/{alloc}/{task}?type=stdout|stderr&file=N&offset=N`
//! answers the bytes from that cursor (from the oldest file kept without
//! one) with `X-Orch-Log-File` and `X-Orch-Log-Offset`, the cursor to ask
//! from next.

use crate::dirs::LogStream;
use crate::host::{LogCursor, read_log};
use axum::Router;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use orch_wire::ErrorBody;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Most bytes one answer carries; the reader asks again from the cursor.
const CHUNK: usize = 1 << 20;

/// Binds `listen` and serves on a thread of its own; returns the address
/// bound (the port is chosen when `listen` asks for port 0).
pub fn serve(listen: SocketAddr, data_dir: PathBuf) -> std::io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind(listen)?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("orch-agent-http".into())
        .spawn(move || {
            runtime.block_on(async move {
                let app = Router::new()
                    .route(orch_wire::routes::AGENT_LOGS.path, get(logs))
                    .with_state(data_dir);
                match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => {
                        if let Err(e) = axum::serve(listener, app).await {
                            tracing::error!("agent HTTP stopped: {e}");
                        }
                    }
                    Err(e) => tracing::error!("agent HTTP: {e}"),
                }
            });
        })?;
    Ok(addr)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogQuery {
    #[serde(rename = "type", default)]
    stream: Option<String>,
    file: Option<u64>,
    offset: Option<u64>,
}

async fn logs(
    State(data_dir): State<PathBuf>,
    UrlPath((alloc, task)): UrlPath<(String, String)>,
    Query(query): Query<LogQuery>,
) -> Response {
    let stream = match query.stream.as_deref() {
        None | Some("stdout") => LogStream::Stdout,
        Some("stderr") => LogStream::Stderr,
        Some(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("type {other:?} is not a log stream: use stdout or stderr"),
            );
        }
    };
    let cursor = match (query.file, query.offset) {
        (Some(file), offset) => Some(LogCursor {
            file,
            offset: offset.unwrap_or(0),
        }),
        (None, _) => None,
    };
    let read = tokio::task::spawn_blocking(move || {
        read_log(&data_dir, &alloc, &task, stream, cursor, CHUNK)
    })
    .await;
    match read {
        Ok(Ok(chunk)) => {
            let mut res = chunk.data.into_response();
            let headers = res.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            headers.insert(
                orch_wire::LOG_FILE_HEADER,
                HeaderValue::from(chunk.next.file),
            );
            headers.insert(
                orch_wire::LOG_OFFSET_HEADER,
                HeaderValue::from(chunk.next.offset),
            );
            res
        }
        Ok(Err(e)) => error(StatusCode::NOT_FOUND, "not_found", e.to_string()),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("reading logs: {e}"),
        ),
    }
}

fn error(status: StatusCode, code: &str, message: String) -> Response {
    let body = ErrorBody {
        code: code.to_owned(),
        message,
        details: Vec::new(),
    };
    (status, axum::Json(body)).into_response()
}
