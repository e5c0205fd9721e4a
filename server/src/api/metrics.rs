//! `GET /v1/metrics`: the control plane's figures in the Prometheus text
//! format (version 0.0.4, what every Prometheus scrapes). A read like the
//! others — it takes `index` and `wait` and says its index — answered from
//! one snapshot and from counters: it never waits on the store's writer.

use super::query::{Indexed, Params};
use super::{ApiContext, ApiError, blocking_io};
use crate::metrics::{CONTENT_TYPE, Scrape};
use axum::extract::State as Ctx;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

pub async fn metrics(Ctx(ctx): Ctx<ApiContext>, params: Params) -> Result<Response, ApiError> {
    let state = params.block(&ctx.store).await?;
    let index = state.index();
    let broker = ctx.broker.stats();
    let (store, metrics) = (ctx.store.clone(), ctx.metrics.clone());
    // Counting a large state's evaluations and allocations is work: off
    // the async threads.
    let text = blocking_io(move || {
        metrics
            .render(&Scrape {
                state: &state,
                broker,
                writer: store.writer_stats(),
            })
            .map_err(|e| ApiError::internal(format!("cannot write the metrics: {e}")))
    })
    .await?;
    let mut response = text.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    Ok(Indexed(index, response).into_response())
}
