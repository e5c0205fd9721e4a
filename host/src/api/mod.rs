//! The HTTP API: `/v1`, JSON in snake_case, what the CLI and agents speak.
//!
//! Reads answer from one immutable snapshot of the store and can block
//! until the state moves past an index (`?index=N&wait=D`); writes are ops
//! sent to the store's single writer, answered once committed. Every
//! answer carries `X-Orch-Index`, and every error is an
//! [`ErrorBody`](orch_model::ErrorBody) — never a plain-text rejection —
//! with a status from the contract.
//!
//! The routes live in one table ([`routes`]); the router is built from it
//! and the OpenAPI document (`openapi.json`) is checked against it.

mod allocs;
mod body;
mod diff;
mod error;
mod evals;
mod jobs;
mod logs;
mod nodes;
mod query;

pub use error::ApiError;
pub use logs::{LOG_FILE_HEADER, LOG_OFFSET_HEADER};
pub use query::{DEFAULT_WAIT, INDEX_HEADER, MAX_WAIT};

use crate::Store;
use crate::broker::Broker;
use crate::scheduler::Current;
use axum::Json;
use axum::extract::{DefaultBodyLimit, Request, State as Ctx};
use axum::handler::Handler;
use axum::http::{HeaderValue, Method, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use orch_model::Evaluation;
use query::{Indexed, Params};
use serde::Serialize;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// What every handler reads and writes through.
#[derive(Clone)]
pub struct ApiContext {
    pub store: Store,
    pub broker: Arc<Broker>,
    /// The scheduler in use; `orch job plan` dry-runs with it.
    pub scheduler: Current,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Dry runs (`orch job plan`) allowed at once: each may hold a scorer
    /// instance, so a burst of them must not crowd out the workers.
    pub dry_runs: Arc<tokio::sync::Semaphore>,
    /// Node deadlines: registering and `/heartbeat` push them on.
    pub heartbeats: Arc<crate::heartbeat::Heartbeats>,
}

impl ApiContext {
    /// Dry runs allowed at once by default.
    pub const DRY_RUNS: usize = 4;
}

/// One URL path segment, percent-encoded (ids and task names come from
/// people); the CLI builds its paths with it too.
pub fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The OpenAPI 3.1 description of every route, served at
/// `/v1/openapi.json`.
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Get,
    Post,
    Delete,
}

impl Verb {
    fn method(self) -> Method {
        match self {
            Verb::Get => Method::GET,
            Verb::Post => Method::POST,
            Verb::Delete => Method::DELETE,
        }
    }

    fn filter(self) -> MethodFilter {
        match self {
            Verb::Get => MethodFilter::GET,
            Verb::Post => MethodFilter::POST,
            Verb::Delete => MethodFilter::DELETE,
        }
    }
}

struct Route {
    verb: Verb,
    path: &'static str,
    endpoint: MethodRouter<ApiContext>,
}

fn route<H, T>(verb: Verb, path: &'static str, handler: H) -> Route
where
    H: Handler<T, ApiContext>,
    T: 'static,
{
    Route {
        verb,
        path,
        endpoint: on(verb.filter(), handler),
    }
}

/// Every route of the API. The router is built from this table and from
/// nothing else, so [`routes`] is exactly what is served, and a test holds
/// `openapi.json` to it in both directions.
fn table() -> Vec<Route> {
    use Verb::{Delete, Get, Post};
    vec![
        route(Get, "/v1/status", status),
        route(Get, "/v1/jobs", jobs::list),
        route(Post, "/v1/jobs", jobs::register),
        route(Get, "/v1/job/{id}", jobs::get),
        route(Delete, "/v1/job/{id}", jobs::stop),
        route(Post, "/v1/job/{id}/plan", jobs::plan),
        route(Get, "/v1/job/{id}/versions", jobs::versions),
        route(Get, "/v1/job/{id}/allocations", jobs::allocations),
        route(Get, "/v1/job/{id}/evaluations", jobs::evaluations),
        route(Get, "/v1/nodes", nodes::list),
        route(Post, "/v1/nodes", nodes::register),
        route(Get, "/v1/node/{id}", nodes::get),
        route(Get, "/v1/node/{id}/allocations", nodes::allocations),
        route(Post, "/v1/node/{id}/heartbeat", nodes::heartbeat),
        route(Post, "/v1/node/{id}/drain", nodes::drain),
        route(Post, "/v1/node/{id}/eligibility", nodes::eligibility),
        route(Get, "/v1/evaluations", evals::list),
        route(Get, "/v1/evaluation/{id}", evals::get),
        route(Get, "/v1/allocations", allocs::list),
        route(Get, "/v1/allocation/{id}", allocs::get),
        route(Get, "/v1/allocation/{id}/logs/{task}", logs::logs),
        route(Post, "/v1/allocations/status", allocs::update_status),
        route(Get, "/v1/openapi.json", openapi),
    ]
}

/// `(method, path)` of every route served, paths written as in OpenAPI
/// (`/v1/job/{id}`).
pub fn routes() -> Vec<(Method, &'static str)> {
    table()
        .into_iter()
        .map(|r| (r.verb.method(), r.path))
        .collect()
}

/// The routes of `/v1`.
pub fn router(ctx: ApiContext) -> axum::Router {
    let mut router = axum::Router::new();
    for Route { path, endpoint, .. } in table() {
        router = router.route(path, endpoint);
    }
    router
        .fallback(no_route)
        // After the routes: axum sets it on the routes present.
        .method_not_allowed_fallback(wrong_method)
        .layer(middleware::from_fn_with_state(ctx.clone(), stamp_index))
        // JSON bodies are read (and limited) by `body::JsonBody`; this limit
        // holds for any other extractor that reads a body.
        .layer(DefaultBodyLimit::max(ctx.max_body_bytes))
        .with_state(ctx)
}

/// Gives every response an `X-Orch-Index`: errors and writes that did not
/// set one get the store's index when they are answered.
async fn stamp_index(Ctx(ctx): Ctx<ApiContext>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    if !response.headers().contains_key(INDEX_HEADER) {
        response
            .headers_mut()
            .insert(INDEX_HEADER, HeaderValue::from(ctx.store.index()));
    }
    response
}

async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(format!(
        "no route {method} {}; the routes are listed at /v1/openapi.json",
        uri.path()
    ))
}

async fn wrong_method(method: Method, uri: Uri) -> ApiError {
    let path = uri.path();
    let allowed: Vec<String> = table()
        .iter()
        .filter(|r| path_matches(r.path, path))
        .map(|r| r.verb.method().to_string())
        .collect();
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{path} does not take {method}; it takes {}",
            allowed.join(", ")
        ),
    )
}

/// Whether `path` fits `pattern`, `{x}` matching one segment.
fn path_matches(pattern: &str, path: &str) -> bool {
    let (a, b): (Vec<&str>, Vec<&str>) = (pattern.split('/').collect(), path.split('/').collect());
    a.len() == b.len()
        && a.iter()
            .zip(&b)
            .all(|(p, s)| p == s || (p.starts_with('{') && !s.is_empty()))
}

/// Now, in milliseconds since the epoch: read here, at the edge, and
/// passed into the store so nothing deeper reads a clock.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Runs blocking work (SQLite reads, a scheduler dry run) off the async
/// threads.
async fn blocking_io<T, F>(work: F) -> Result<T, ApiError>
where
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal(format!("a background task failed: {e}")))?
}

/// Evaluations newest first: by the index that created them, then id.
fn sorted_evals<'a>(evals: impl Iterator<Item = &'a Arc<Evaluation>>) -> Vec<Evaluation> {
    let mut out: Vec<Evaluation> = evals.map(|e| (**e).clone()).collect();
    out.sort_by(|a, b| {
        b.create_index
            .cmp(&a.create_index)
            .then_with(|| a.id.cmp(&b.id))
    });
    out
}

#[derive(Debug, Serialize)]
struct StatusBody {
    index: u64,
    version: &'static str,
    scorer: ScorerInfo,
    /// The built-in that scores when the scorer fails; absent: fail closed.
    #[serde(skip_serializing_if = "Option::is_none")]
    fallback: Option<ScorerInfo>,
    sampling: crate::scheduler::sample::Sampling,
    nodes: usize,
    jobs: usize,
    allocations: usize,
    broker: BrokerInfo,
}

#[derive(Debug, Serialize)]
struct ScorerInfo {
    label: String,
    digest: String,
}

#[derive(Debug, Serialize)]
struct BrokerInfo {
    ready: usize,
    waiting: usize,
    inflight: usize,
    delayed: usize,
    blocked: usize,
}

async fn status(
    Ctx(ctx): Ctx<ApiContext>,
    params: Params,
) -> Result<Indexed<Json<StatusBody>>, ApiError> {
    let state = params.block(&ctx.store).await?;
    let scheduler = ctx.scheduler.get();
    let broker = ctx.broker.stats();
    Ok(Indexed(
        state.index(),
        Json(StatusBody {
            index: state.index(),
            version: env!("CARGO_PKG_VERSION"),
            scorer: ScorerInfo {
                label: scheduler.scorer().label().to_owned(),
                digest: scheduler.scorer().digest().to_owned(),
            },
            fallback: scheduler.fallback().map(|f| ScorerInfo {
                label: f.label().to_owned(),
                digest: f.digest().to_owned(),
            }),
            sampling: scheduler.sampling(),
            nodes: state.node_count(),
            jobs: state.jobs().count(),
            allocations: state.alloc_count(),
            broker: BrokerInfo {
                ready: broker.ready,
                waiting: broker.waiting,
                inflight: broker.inflight,
                delayed: broker.delayed,
                blocked: broker.blocked,
            },
        }),
    ))
}

async fn openapi(Ctx(ctx): Ctx<ApiContext>, params: Params) -> Result<Response, ApiError> {
    // It never changes, but it is a read like the others and takes the
    // same parameters.
    let state = params.block(&ctx.store).await?;
    let mut response = OPENAPI_JSON.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(Indexed(state.index(), response).into_response())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::Value;
    use std::collections::BTreeSet;

    fn spec() -> Value {
        serde_json::from_str(OPENAPI_JSON).expect("openapi.json is JSON")
    }

    /// Every route served is documented and every documented route served.
    #[test]
    fn openapi_matches_the_routes() {
        let spec = spec();
        assert_eq!(spec["openapi"].as_str().unwrap(), "3.1.0");
        let served: BTreeSet<(String, String)> = routes()
            .into_iter()
            .map(|(m, p)| (m.as_str().to_lowercase(), p.to_owned()))
            .collect();
        let mut documented = BTreeSet::new();
        for (path, item) in spec["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                if ["get", "post", "put", "delete", "patch", "head", "options"]
                    .contains(&method.as_str())
                {
                    documented.insert((method.clone(), path.clone()));
                }
            }
        }
        let missing: Vec<_> = served.difference(&documented).collect();
        let extra: Vec<_> = documented.difference(&served).collect();
        assert!(
            missing.is_empty(),
            "served but not in openapi.json: {missing:?}"
        );
        assert!(
            extra.is_empty(),
            "in openapi.json but not served: {extra:?}"
        );
    }

    /// Each `{param}` of a path is declared, every operation says what it
    /// answers, and every `$ref` points at a schema that exists.
    #[test]
    fn openapi_is_complete_and_consistent() {
        let spec = spec();
        for (path, item) in spec["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if method == "parameters" {
                    continue;
                }
                let mut declared: Vec<String> = Vec::new();
                for list in [&item["parameters"], &op["parameters"]] {
                    for p in list.as_array().into_iter().flatten() {
                        let p = resolve_ref(&spec, p);
                        declared.push(p["name"].as_str().unwrap().to_owned());
                    }
                }
                for segment in path.split('/') {
                    if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}'))
                    {
                        assert!(
                            declared.iter().any(|d| d == name),
                            "{method} {path}: path parameter {name} not declared"
                        );
                    }
                }
                if method == "get" {
                    for name in ["index", "wait"] {
                        assert!(
                            declared.iter().any(|d| d == name),
                            "{method} {path}: blocking parameter {name} not declared"
                        );
                    }
                }
                assert!(
                    op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                    "{method} {path}: no responses"
                );
                assert!(
                    op["operationId"].is_string(),
                    "{method} {path}: no operationId"
                );
            }
        }
        let mut refs = Vec::new();
        collect_refs(&spec, &mut refs);
        assert!(!refs.is_empty());
        for r in refs {
            let target = r
                .strip_prefix("#/")
                .unwrap_or_else(|| panic!("non-local $ref {r}"))
                .split('/')
                .fold(&spec, |v, k| &v[k]);
            assert!(!target.is_null(), "$ref {r} points nowhere");
        }
    }

    fn resolve_ref<'a>(spec: &'a Value, v: &'a Value) -> &'a Value {
        match v["$ref"].as_str() {
            Some(r) => r
                .trim_start_matches("#/")
                .split('/')
                .fold(spec, |v, k| &v[k]),
            None => v,
        }
    }

    fn collect_refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    if k == "$ref" {
                        out.push(v.as_str().unwrap().to_owned());
                    } else {
                        collect_refs(v, out);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn path_patterns() {
        assert!(path_matches("/v1/job/{id}", "/v1/job/web"));
        assert!(!path_matches("/v1/job/{id}", "/v1/job/web/plan"));
        assert!(!path_matches("/v1/job/{id}", "/v1/job/"));
    }
}
