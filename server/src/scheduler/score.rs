//! The one batched scorer call: every candidate of a placement in one
//! request, to a component loaded by the plugin runtime or — for benchmarks
//! and as a baseline — the same crate compiled natively. The answer is
//! checked (one finite score in [-1, 1] per node) before the scheduler uses
//! it; a scorer that fails hands the request to the fallback, if the
//! config names one.

use super::SchedError;
use crate::metrics::Tally;
use orch_plugin_runtime::{OutputProblem, PluginError, ScoreRequest, ScoreResponse, ScorerPlugin};
use std::time::Instant;

/// Why a scorer gave no answer the scheduler can use.
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    /// The component could not answer: it trapped, ran past its deadline or
    /// memory, refused the request, answered badly, or its breaker is open.
    /// The error names the plugin and its digest.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// A native scorer refused the request; its own words.
    #[error("{0}")]
    Refused(String),
    /// The answer is not one finite score in [-1, 1] per node.
    #[error("{0}")]
    BadOutput(#[from] OutputProblem),
}

/// Ranks candidates. Answers are validated (one finite score in [-1, 1]
/// per node) before the scheduler uses them.
pub trait Scorer: Send + Sync {
    /// Name and version, as decision records show it.
    fn label(&self) -> &str;
    /// `sha256:HEX` of the component, or `native:NAME` for a native build.
    fn digest(&self) -> &str;
    fn score(&self, request: &ScoreRequest) -> Result<ScoreResponse, ScoreError>;
}

/// A scorer, its name in the scheduler settings and its counters in the
/// role it has there.
#[derive(Clone, Copy)]
pub(super) struct Named<'s> {
    pub name: &'s str,
    pub scorer: &'s dyn Scorer,
    pub tally: &'s Tally,
}

/// Which scorer answered a request, and why not the first one asked.
pub(super) struct Answered<'s> {
    pub scorer: Named<'s>,
    pub failure: Option<String>,
    /// Its place in the chain: 0 is the policy placing the job.
    pub at: usize,
    /// How long its call took: not the failed calls before it (those are
    /// the failed scorers' latency, counted in their tallies).
    pub micros: u64,
}

/// Scores `request` (`nodes` candidates) with the first scorer of `chain`
/// that answers: the policy placing the job, then what stands in when it
/// fails (the primary behind a split, the configured fallback). Fails with
/// the first scorer's error when none answers.
pub(super) fn score<'s>(
    chain: &[Named<'s>],
    request: &ScoreRequest,
    nodes: usize,
) -> Result<(ScoreResponse, Answered<'s>), SchedError> {
    let mut first: Option<SchedError> = None;
    for (i, named) in chain.iter().enumerate() {
        let started = Instant::now();
        let answer = ask(named.scorer, request, nodes);
        let took = started.elapsed();
        named.tally.called(took, answer.is_ok());
        match answer {
            Ok(response) => {
                return Ok((
                    response,
                    Answered {
                        scorer: *named,
                        failure: first.map(|e| e.to_string()),
                        at: i,
                        micros: u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
                    },
                ));
            }
            Err(e) => {
                if let Some(next) = chain.get(i + 1) {
                    tracing::warn!("{e}; scoring with {}", next.scorer.label());
                }
                first.get_or_insert(e);
            }
        }
    }
    Err(first.unwrap_or_else(|| SchedError::Scorer {
        scorer: "none".to_owned(),
        detail: "no scorer to ask (a bug: the chain is empty)".to_owned(),
    }))
}

/// One scorer's answer, checked.
fn ask(
    scorer: &dyn Scorer,
    request: &ScoreRequest,
    nodes: usize,
) -> Result<ScoreResponse, SchedError> {
    let fault = |detail: String| SchedError::Scorer {
        scorer: format!("{} ({})", scorer.label(), scorer.digest()),
        detail,
    };
    let response = scorer.score(request).map_err(|e| fault(e.to_string()))?;
    orch_plugin_runtime::validate_response(&response, nodes)
        .map_err(|problem| fault(ScoreError::from(problem).to_string()))?;
    Ok(response)
}

/// A scorer component behind the plugin runtime's limits and breaker.
pub struct Component {
    plugin: ScorerPlugin,
    label: String,
    digest: String,
}

impl Component {
    /// Wraps a loaded scorer; asks it for its name and version once.
    pub fn new(plugin: ScorerPlugin) -> Result<Self, PluginError> {
        let info = plugin.info()?;
        Ok(Self {
            label: format!("{} {}", info.name, info.version),
            digest: plugin.digest().to_string(),
            plugin,
        })
    }
}

impl Scorer for Component {
    fn label(&self) -> &str {
        &self.label
    }
    fn digest(&self) -> &str {
        &self.digest
    }
    fn score(&self, request: &ScoreRequest) -> Result<ScoreResponse, ScoreError> {
        Ok(self.plugin.score(request)?.response)
    }
}

/// A scorer crate compiled into the host: the baseline the component is
/// measured against, on the same requests.
pub struct Native<S> {
    scorer: S,
    label: String,
    digest: String,
}

impl<S: orch_plugin_sdk::Scorer> Native<S> {
    pub fn new(scorer: S) -> Self {
        Self {
            scorer,
            label: format!("{} {} (native)", S::INFO.name, S::INFO.version),
            digest: format!("native:{}", S::INFO.name),
        }
    }
}

impl<S: orch_plugin_sdk::Scorer + Send + Sync> Scorer for Native<S> {
    fn label(&self) -> &str {
        &self.label
    }
    fn digest(&self) -> &str {
        &self.digest
    }
    fn score(&self, request: &ScoreRequest) -> Result<ScoreResponse, ScoreError> {
        let scores = self
            .scorer
            .score(&to_sdk(request))
            .map_err(ScoreError::Refused)?;
        let (part_names, scores, parts) = scores.into_parts();
        let response = ScoreResponse {
            part_names,
            scores,
            parts,
        };
        let nodes = request.nodes.len().unwrap_or_default();
        orch_plugin_runtime::validate_response(&response, nodes)?;
        Ok(response)
    }
}

/// What a decision record keeps of a request: the candidates' columns
/// and attributes, moved out of it.
pub fn inputs_of(r: ScoreRequest) -> orch_model::CandidateInputs {
    let n = r.nodes;
    orch_model::CandidateInputs {
        cpu_capacity: n.cpu_capacity,
        memory_capacity: n.memory_capacity,
        disk_capacity: n.disk_capacity,
        cpu_allocated: n.cpu_allocated,
        memory_allocated: n.memory_allocated,
        disk_allocated: n.disk_allocated,
        job_allocs: n.job_allocs,
        total_allocs: n.total_allocs,
        attribute_names: r.attribute_names,
        strings: r.strings,
        attributes: r.attributes,
    }
}

/// The request a decision was made with, to send again: a replay of the
/// decision against the same scorer gives the same scores, against another
/// one shows how it would have ranked the same candidates.
pub fn request_of(d: &orch_model::Decision) -> ScoreRequest {
    let i = &d.inputs;
    ScoreRequest {
        placement: d.placement,
        job_priority: d.job_priority,
        ask: super::sample::scorer_resources(d.ask),
        nodes: orch_plugin_runtime::NodeColumns {
            cpu_capacity: i.cpu_capacity.clone(),
            memory_capacity: i.memory_capacity.clone(),
            disk_capacity: i.disk_capacity.clone(),
            cpu_allocated: i.cpu_allocated.clone(),
            memory_allocated: i.memory_allocated.clone(),
            disk_allocated: i.disk_allocated.clone(),
            job_allocs: i.job_allocs.clone(),
            total_allocs: i.total_allocs.clone(),
        },
        attribute_names: i.attribute_names.clone(),
        strings: i.strings.clone(),
        attributes: i.attributes.clone(),
    }
}

/// The request as the SDK types it: the same columns, copied once each, as
/// lowering them into a component copies them.
pub fn to_sdk(r: &ScoreRequest) -> orch_plugin_sdk::ScoreRequest {
    let res = |x: &orch_plugin_runtime::Resources| orch_plugin_sdk::Resources {
        cpu_mhz: x.cpu_mhz,
        memory_mib: x.memory_mib,
        disk_mib: x.disk_mib,
    };
    let n = &r.nodes;
    orch_plugin_sdk::ScoreRequest {
        placement: r.placement,
        job_priority: r.job_priority,
        ask: res(&r.ask),
        nodes: orch_plugin_sdk::NodeColumns {
            cpu_capacity: n.cpu_capacity.clone(),
            memory_capacity: n.memory_capacity.clone(),
            disk_capacity: n.disk_capacity.clone(),
            cpu_allocated: n.cpu_allocated.clone(),
            memory_allocated: n.memory_allocated.clone(),
            disk_allocated: n.disk_allocated.clone(),
            job_allocs: n.job_allocs.clone(),
            total_allocs: n.total_allocs.clone(),
        },
        attribute_names: r.attribute_names.clone(),
        strings: r.strings.clone(),
        attributes: r.attributes.clone(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests may")]
    use super::*;

    #[test]
    fn native_and_component_binpack_agree() {
        let runtime = orch_plugin_runtime::Runtime::new(Default::default()).unwrap();
        let limits = orch_plugin_runtime::Limits::default();
        let wasm = orch_builtins::get("binpack").unwrap().wasm;
        let component = runtime.load("builtin:binpack", wasm, &limits).unwrap();
        let component = Component::new(runtime.scorer(&component, limits).unwrap()).unwrap();
        let native = Native::new(orch_scorer_binpack::Binpack);
        let request = orch_conformance::typical_request(200, 3);
        let a = component.score(&request).unwrap();
        let b = native.score(&request).unwrap();
        assert_eq!(a.scores, b.scores);
        assert_eq!(a.part_names, b.part_names);
        assert!(component.label().starts_with("binpack "));
        assert_eq!(native.digest(), "native:binpack");
        assert!(
            component.digest().starts_with("sha256:"),
            "{}",
            component.digest()
        );
    }
}
