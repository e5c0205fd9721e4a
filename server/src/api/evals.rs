//! `/v1/evaluations` and `/v1/evaluation/{id}`.

use super::error::ApiError;
use super::query::{Indexed, Params, PathId, resolve};
use super::{ApiContext, sorted_evals};
use axum::Json;
use axum::extract::State as Ctx;
use orch_model::Evaluation;
use orch_wire::EvaluationDetail;

pub async fn list(
    Ctx(ctx): Ctx<ApiContext>,
    mut params: Params,
) -> Result<Indexed<Json<Vec<Evaluation>>>, ApiError> {
    let job = params.take("job");
    let state = params.block(&ctx.store).await?;
    let evals = match &job {
        Some(job) => sorted_evals(state.evals_of_job(job)),
        None => sorted_evals(state.evals()),
    };
    Ok(Indexed(state.index(), Json(evals)))
}

pub async fn get(
    Ctx(ctx): Ctx<ApiContext>,
    PathId(id): PathId,
    params: Params,
) -> Result<Indexed<Json<EvaluationDetail>>, ApiError> {
    let state = params.block(&ctx.store).await?;
    let id = resolve("evaluation", &id, state.evals().map(|e| e.id.as_str()))?;
    let eval = state
        .eval(&id)
        .cloned()
        .ok_or_else(|| ApiError::no_such("evaluation", &id))?;
    // An evaluation's placements are allocations of its job that name it.
    let mut placed: Vec<String> = state
        .allocs_of_job(&eval.job_id)
        .filter(|a| a.eval_id == eval.id)
        .map(|a| a.id.clone())
        .collect();
    placed.sort_unstable();
    Ok(Indexed(
        state.index(),
        Json(EvaluationDetail {
            evaluation: (*eval).clone(),
            placed,
        }),
    ))
}
