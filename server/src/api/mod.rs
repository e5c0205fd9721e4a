//! The HTTP API: `/v1`, JSON in snake_case, what the CLI and agents speak.
//!
//! Reads answer from one immutable snapshot of the store and can block
//! until the state moves past an index (`?index=N&wait=D`); writes are ops
//! sent to the store's single writer, answered once committed. Every
//! answer carries `X-Orch-Index`, and every error is an
//! [`ErrorBody`](orch_model::ErrorBody) — never a plain-text rejection —
//! with a status from the contract.
//!
//! The routes are orch-wire's table: [`table`] gives each one its handler,
//! the router is built from that and nothing else, and a test holds it to
//! the wire's [`ROUTES`](orch_wire::ROUTES) (which `openapi.json` is held to
//! in its turn).

mod allocs;
mod body;
mod diff;
mod error;
mod evals;
mod jobs;
mod logs;
mod metrics;
mod nodes;
mod query;
mod scheduler;
mod why_not;

pub use error::ApiError;
pub use query::{DEFAULT_WAIT, MAX_WAIT};

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
pub(crate) use orch_model::now_ms;
use orch_wire::{
    BrokerInfo, INDEX_HEADER, OPENAPI_JSON, Route, ScorerInfo, ServerStatus, routes as r,
};
use query::{Indexed, Params};
use std::sync::Arc;

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
    /// The scheduler settings and the one place they change; `None` on a
    /// server embedded with a fixed scheduler (the `/v1/scheduler` routes
    /// then answer 503).
    pub lineup: Option<Arc<crate::config::Lineup>>,
    /// The counters `/v1/metrics` shows (the scheduler's and the shadow
    /// lanes' count into the same).
    pub metrics: crate::metrics::Metrics,
}

impl ApiContext {
    /// Dry runs allowed at once by default.
    pub const DRY_RUNS: usize = 4;
}

/// A route of the wire's table with the handler that serves it.
struct Served {
    route: Route,
    endpoint: MethodRouter<ApiContext>,
}

fn route<H, T>(route: Route, handler: H) -> Served
where
    H: Handler<T, ApiContext>,
    T: 'static,
{
    let filter = match route.method {
        orch_wire::Method::Get => MethodFilter::GET,
        orch_wire::Method::Post => MethodFilter::POST,
        orch_wire::Method::Delete => MethodFilter::DELETE,
    };
    Served {
        route,
        endpoint: on(filter, handler),
    }
}

/// Every route of the API with its handler. The router is built from this
/// table and from nothing else, so [`routes`] is exactly what is served.
fn table() -> Vec<Served> {
    vec![
        route(r::STATUS, status),
        route(r::JOBS, jobs::list),
        route(r::JOB_REGISTER, jobs::register),
        route(r::JOB, jobs::get),
        route(r::JOB_STOP, jobs::stop),
        route(r::JOB_PLAN, jobs::plan),
        route(r::JOB_VERSIONS, jobs::versions),
        route(r::JOB_ALLOCATIONS, jobs::allocations),
        route(r::JOB_EVALUATIONS, jobs::evaluations),
        route(r::NODES, nodes::list),
        route(r::NODE_REGISTER, nodes::register),
        route(r::NODE, nodes::get),
        route(r::NODE_ALLOCATIONS, nodes::allocations),
        route(r::NODE_HEARTBEAT, nodes::heartbeat),
        route(r::NODE_DRAIN, nodes::drain),
        route(r::NODE_ELIGIBILITY, nodes::eligibility),
        route(r::EVALUATIONS, evals::list),
        route(r::EVALUATION, evals::get),
        route(r::ALLOCATIONS, allocs::list),
        route(r::ALLOCATION, allocs::get),
        route(r::ALLOCATION_LOGS, logs::logs),
        route(r::ALLOCATION_WHY_NOT, why_not::alloc),
        route(r::ALLOCATION_STATUS, allocs::update_status),
        route(r::OPENAPI, openapi),
        route(r::METRICS, metrics::metrics),
        route(r::SCHEDULER, scheduler::status),
        route(r::SCHEDULER_SCORER, scheduler::put_scorer),
        route(r::SCHEDULER_SCORER_DELETE, scheduler::delete_scorer),
        route(r::SCHEDULER_CANDIDATE, scheduler::put_candidate),
        route(r::SCHEDULER_CANDIDATE_DELETE, scheduler::delete_candidate),
        route(r::SCHEDULER_PROMOTE, scheduler::promote),
        route(r::SCHEDULER_RESET, scheduler::reset),
        route(r::SCHEDULER_COMPARE, scheduler::compare),
        route(r::SCHEDULER_DECISIONS, scheduler::decisions),
    ]
}

/// Every route served, as the wire names them.
pub fn routes() -> Vec<Route> {
    table().into_iter().map(|s| s.route).collect()
}

/// The routes of `/v1`.
pub fn router(ctx: ApiContext) -> axum::Router {
    let mut router = axum::Router::new();
    for Served { route, endpoint } in table() {
        router = router.route(route.path, endpoint);
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
    // The wire's table: what is served (a test holds the two equal),
    // without building every handler again for one error.
    let allowed: Vec<String> = orch_wire::ROUTES
        .iter()
        .filter(|r| r.matches(path))
        .map(|r| r.method.to_string())
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

async fn status(
    Ctx(ctx): Ctx<ApiContext>,
    params: Params,
) -> Result<Indexed<Json<ServerStatus>>, ApiError> {
    let state = params.block(&ctx.store).await?;
    let scheduler = ctx.scheduler.get();
    let broker = ctx.broker.stats();
    Ok(Indexed(
        state.index(),
        Json(ServerStatus {
            index: state.index(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
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
    use super::*;

    /// Every route of the wire's table is served, and nothing else: a route
    /// added to the wire without a handler, or served without being in the
    /// wire (and so in openapi.json), fails here.
    #[test]
    fn serves_exactly_the_wire_routes() {
        let served = routes();
        assert_eq!(served, orch_wire::ROUTES.to_vec());
    }
}
