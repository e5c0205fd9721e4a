//! The HTTP API (placeholder until the API lands).

use crate::Store;
use crate::broker::Broker;
use crate::scheduler::Current;
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
}

/// The routes of `/v1`.
pub fn router(ctx: ApiContext) -> axum::Router {
    let _ = ctx;
    axum::Router::new()
}
