//! The scorer world, `orch:scheduler/scorer-plugin@0.1.0`, on the host side.

use crate::breaker::Breaker;
use crate::error::printable;
use crate::inspect::{SCORER_INTERFACE, check_export, is_linked_wasi, same_minor, split_version};
use crate::runtime::{CallStats, Pool};
use crate::sandbox::MemoryBudget;
use crate::{Component, Digest, Limits, OutputProblem, PluginError, Runtime};
use std::sync::Arc;
use std::time::Instant;

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit/scheduler",
        world: "orch:scheduler/scorer-plugin",
    });
}

pub use bindings::exports::orch::scheduler::scorer::{NodeColumns, ScoreRequest, ScoreResponse};
pub use bindings::orch::types::types::Resources;

/// One candidate node as the host describes it; requests carry nodes as
/// [`NodeColumns`], made with [`NodeColumns::from_nodes`].
#[derive(Debug, Clone, Copy)]
pub struct Node {
    /// What the node offers to allocations: its total less what is reserved.
    pub capacity: Resources,
    /// What the allocations already on the node use.
    pub allocated: Resources,
    /// Allocations of the job being placed already on the node.
    pub job_allocs: u32,
    /// Allocations of any job already on the node.
    pub total_allocs: u32,
}

impl NodeColumns {
    /// No nodes, with room for `n`.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            cpu_capacity: Vec::with_capacity(n),
            memory_capacity: Vec::with_capacity(n),
            disk_capacity: Vec::with_capacity(n),
            cpu_allocated: Vec::with_capacity(n),
            memory_allocated: Vec::with_capacity(n),
            disk_allocated: Vec::with_capacity(n),
            job_allocs: Vec::with_capacity(n),
            total_allocs: Vec::with_capacity(n),
        }
    }

    /// Appends a node.
    pub fn push(&mut self, node: Node) {
        self.cpu_capacity.push(node.capacity.cpu_mhz);
        self.memory_capacity.push(node.capacity.memory_mib);
        self.disk_capacity.push(node.capacity.disk_mib);
        self.cpu_allocated.push(node.allocated.cpu_mhz);
        self.memory_allocated.push(node.allocated.memory_mib);
        self.disk_allocated.push(node.allocated.disk_mib);
        self.job_allocs.push(node.job_allocs);
        self.total_allocs.push(node.total_allocs);
    }

    /// The rows `keep` (indices; those out of range are left out), in that
    /// order.
    pub fn select(&self, keep: &[usize]) -> Self {
        fn pick<T: Copy>(v: &[T], keep: &[usize]) -> Vec<T> {
            keep.iter().filter_map(|&i| v.get(i).copied()).collect()
        }
        Self {
            cpu_capacity: pick(&self.cpu_capacity, keep),
            memory_capacity: pick(&self.memory_capacity, keep),
            disk_capacity: pick(&self.disk_capacity, keep),
            cpu_allocated: pick(&self.cpu_allocated, keep),
            memory_allocated: pick(&self.memory_allocated, keep),
            disk_allocated: pick(&self.disk_allocated, keep),
            job_allocs: pick(&self.job_allocs, keep),
            total_allocs: pick(&self.total_allocs, keep),
        }
    }

    /// Lays `nodes` out as columns, in order.
    pub fn from_nodes(nodes: &[Node]) -> Self {
        Self {
            cpu_capacity: nodes.iter().map(|n| n.capacity.cpu_mhz).collect(),
            memory_capacity: nodes.iter().map(|n| n.capacity.memory_mib).collect(),
            disk_capacity: nodes.iter().map(|n| n.capacity.disk_mib).collect(),
            cpu_allocated: nodes.iter().map(|n| n.allocated.cpu_mhz).collect(),
            memory_allocated: nodes.iter().map(|n| n.allocated.memory_mib).collect(),
            disk_allocated: nodes.iter().map(|n| n.allocated.disk_mib).collect(),
            job_allocs: nodes.iter().map(|n| n.job_allocs).collect(),
            total_allocs: nodes.iter().map(|n| n.total_allocs).collect(),
        }
    }

    /// Node `i`, if every column has it.
    pub fn node(&self, i: usize) -> Option<Node> {
        Some(Node {
            capacity: Resources {
                cpu_mhz: *self.cpu_capacity.get(i)?,
                memory_mib: *self.memory_capacity.get(i)?,
                disk_mib: *self.disk_capacity.get(i)?,
            },
            allocated: Resources {
                cpu_mhz: *self.cpu_allocated.get(i)?,
                memory_mib: *self.memory_allocated.get(i)?,
                disk_mib: *self.disk_allocated.get(i)?,
            },
            job_allocs: *self.job_allocs.get(i)?,
            total_allocs: *self.total_allocs.get(i)?,
        })
    }

    /// How many nodes there are, or `None` when the columns disagree (a
    /// bug in the caller, refused before any plugin sees it).
    pub fn len(&self) -> Option<usize> {
        let n = self.cpu_capacity.len();
        [
            self.memory_capacity.len(),
            self.disk_capacity.len(),
            self.cpu_allocated.len(),
            self.memory_allocated.len(),
            self.disk_allocated.len(),
            self.job_allocs.len(),
            self.total_allocs.len(),
        ]
        .iter()
        .all(|&len| len == n)
        .then_some(n)
    }
}
use bindings::{ScorerPlugin as Bindings, ScorerPluginPre};

/// The world a scorer targets, as `orch plugin inspect` prints it.
pub const SCORER_WORLD: &str = "orch:scheduler/scorer-plugin@0.1.0";

/// Imports the scorer world itself brings: interfaces of types only, which
/// give a component no capability.
const WORLD_IMPORTS: &[&str] = &["orch:types/types"];

/// Most parts a score may be made of.
const MAX_PARTS: usize = 32;
/// Longest part name.
const MAX_PART_NAME: usize = 64;

/// What a scorer says about itself.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ScorerInfo {
    pub name: String,
    pub version: String,
    pub description: String,
}

/// A scorer's answer with what the call cost.
#[derive(Debug, Clone)]
pub struct Scored {
    pub response: ScoreResponse,
    pub stats: CallStats,
}

/// A loaded scorer that passed the world and import checks. Calls run with
/// the plugin's limits on instances kept warm between calls; an instance
/// that faults is thrown away. Clones share the warm instances.
#[derive(Clone)]
pub struct ScorerPlugin {
    runtime: Runtime,
    component: Component,
    limits: Limits,
    pre: ScorerPluginPre<crate::sandbox::Sandbox>,
    pool: Arc<Pool<Bindings>>,
    breaker: Arc<Breaker>,
}

impl Runtime {
    /// Checks that `component` is a scorer this host can run, and prepares
    /// it. Fails when it exports another world or version, or imports
    /// anything beyond WASI 0.2.
    pub fn scorer(
        &self,
        component: &Component,
        limits: Limits,
    ) -> Result<ScorerPlugin, PluginError> {
        let inspection = self.inspect(component);
        let wrong_world = |detail: String| PluginError::WrongWorld {
            plugin: component.name.clone(),
            digest: component.digest,
            detail,
        };
        check_export(
            component,
            &inspection,
            SCORER_INTERFACE,
            "a scorer",
            "wit/scheduler",
        )?;
        let allowed = |import: &str| {
            let (name, version) = split_version(import);
            is_linked_wasi(import)
                || (WORLD_IMPORTS.contains(&name)
                    && version.is_some_and(|v| same_minor(v, "0.1.0")))
        };
        if let Some(import) = inspection.imports.iter().find(|i| !allowed(i)) {
            return Err(PluginError::ForbiddenImport {
                plugin: component.name.clone(),
                digest: component.digest,
                world: SCORER_WORLD,
                import: import.clone(),
            });
        }
        let instance_pre = self
            .linker()
            .instantiate_pre(&component.component)
            .map_err(|e| wrong_world(format!("cannot be linked: {e:#}")))?;
        let pre = ScorerPluginPre::new(instance_pre)
            .map_err(|e| wrong_world(format!("does not match {SCORER_WORLD}: {e:#}")))?;
        Ok(ScorerPlugin {
            runtime: self.clone(),
            component: component.clone(),
            pre,
            pool: Pool::new(MemoryBudget::new(limits.total_memory_bytes)),
            breaker: Arc::new(Breaker::new(
                limits.breaker_threshold,
                limits.breaker_cooldown,
            )),
            limits,
        })
    }
}

impl ScorerPlugin {
    /// The name the plugin was loaded under.
    pub fn name(&self) -> &str {
        &self.component.name
    }

    /// The sha256 of the component's bytes.
    pub fn digest(&self) -> Digest {
        self.component.digest
    }

    /// The limits every call runs with.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Linear memory all of this plugin's instances hold now, warm and in
    /// calls, in bytes: what counts against
    /// [`Limits::total_memory_bytes`].
    pub fn memory_held(&self) -> usize {
        self.pool.memory_held()
    }

    /// The same plugin with no warm instances: its first call instantiates.
    /// Replays use it, and the conformance suite, to compare a fresh
    /// instance's answer with a reused one's. Its instances count against
    /// the same total memory budget.
    pub fn fresh(&self) -> Self {
        Self {
            pool: self.pool.sibling(),
            breaker: Arc::new(Breaker::new(
                self.limits.breaker_threshold,
                self.limits.breaker_cooldown,
            )),
            ..self.clone()
        }
    }

    /// Asks the scorer to describe itself.
    pub fn info(&self) -> Result<ScorerInfo, PluginError> {
        let (info, _) = self.runtime.call(
            &self.component,
            &self.limits,
            &self.pool,
            |store| self.pre.instantiate(store),
            |plugin: &Bindings, store| plugin.orch_scheduler_scorer().call_info(store),
        )?;
        Ok(ScorerInfo {
            name: printable(&info.name, 64),
            version: printable(&info.version, 32),
            description: printable(&info.description, 200),
        })
    }

    /// Scores the request's nodes and checks the answer: one finite score in
    /// [-1, 1] per node, and well-formed parts. A plugin that faulted
    /// `breaker_threshold` times in a row is not called until its cooldown
    /// is over.
    pub fn score(&self, request: &ScoreRequest) -> Result<Scored, PluginError> {
        if let Err((faults, retry_in)) = self.breaker.admit(Instant::now()) {
            return Err(PluginError::BreakerOpen {
                plugin: self.component.name.clone(),
                digest: self.component.digest,
                faults,
                retry_in,
            });
        }
        let result = self.score_unchecked(request).and_then(|scored| {
            let nodes = request.nodes.len().unwrap_or_default();
            validate_response(&scored.response, nodes).map_err(|problem| {
                PluginError::BadOutput {
                    plugin: self.component.name.clone(),
                    digest: self.component.digest,
                    problem,
                }
            })?;
            Ok(scored)
        });
        let fault = result.as_ref().is_err_and(PluginError::is_fault);
        self.breaker.record(fault, Instant::now());
        result
    }

    /// Scores without checking the answer and without the breaker, for the
    /// conformance suite, which checks each property on its own and must see
    /// every fault. Everything else calls [`Self::score`].
    pub fn score_unchecked(&self, request: &ScoreRequest) -> Result<Scored, PluginError> {
        if request.nodes.len().is_none() {
            return Err(PluginError::Runtime(
                "score request with node columns of different lengths (a bug in the caller)".into(),
            ));
        }
        let (result, stats) = self.runtime.call(
            &self.component,
            &self.limits,
            &self.pool,
            |store| self.pre.instantiate(store),
            |plugin: &Bindings, store| plugin.orch_scheduler_scorer().call_score(store, request),
        )?;
        match result {
            Ok(response) => Ok(Scored { response, stats }),
            Err(message) => Err(PluginError::Refused {
                plugin: self.component.name.clone(),
                digest: self.component.digest,
                message: printable(&message, 500),
            }),
        }
    }
}

/// Checks a scorer's answer for `nodes` nodes; the first problem found.
pub fn validate_response(response: &ScoreResponse, nodes: usize) -> Result<(), OutputProblem> {
    if response.scores.len() != nodes {
        return Err(OutputProblem::WrongLength {
            expected: nodes,
            got: response.scores.len(),
        });
    }
    for (node, &value) in response.scores.iter().enumerate() {
        if !value.is_finite() {
            return Err(OutputProblem::NotFinite { node, value });
        }
        if !(-1.0..=1.0).contains(&value) {
            return Err(OutputProblem::OutOfRange { node, value });
        }
    }
    validate_parts(response).map_err(OutputProblem::BadParts)
}

fn validate_parts(response: &ScoreResponse) -> Result<(), String> {
    let names = &response.part_names;
    if names.len() > MAX_PARTS {
        return Err(format!(
            "{} part names, at most {MAX_PARTS} allowed",
            names.len()
        ));
    }
    for (i, name) in names.iter().enumerate() {
        let well_formed = !name.is_empty()
            && name.len() <= MAX_PART_NAME
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !well_formed {
            return Err(format!(
                "part name {:?} is not snake_case (1 to {MAX_PART_NAME} of a-z, 0-9, _)",
                printable(name, 80)
            ));
        }
        if names[..i].contains(name) {
            return Err(format!("part name {:?} appears twice", printable(name, 80)));
        }
    }
    let expected = response.scores.len() * names.len();
    if response.parts.len() != expected {
        return Err(format!(
            "{} part values for {} nodes × {} names (expected {expected})",
            response.parts.len(),
            response.scores.len(),
            names.len()
        ));
    }
    if let Some(i) = response.parts.iter().position(|v| !v.is_finite()) {
        let width = names.len().max(1);
        return Err(format!(
            "part {:?} of node {} is {} (parts must be finite)",
            names.get(i % width).map_or("?", String::as_str),
            i / width,
            response.parts[i]
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests may")]
    use super::*;

    fn response(scores: Vec<f64>, names: &[&str], parts: Vec<f64>) -> ScoreResponse {
        ScoreResponse {
            part_names: names.iter().map(|n| (*n).to_owned()).collect(),
            scores,
            parts,
        }
    }

    #[test]
    fn a_well_formed_answer_passes() {
        let r = response(vec![0.5, -1.0, 1.0], &["cpu", "mem_2"], vec![0.25; 6]);
        assert_eq!(validate_response(&r, 3), Ok(()));
        assert_eq!(validate_response(&response(vec![], &[], vec![]), 0), Ok(()));
    }

    #[test]
    fn each_problem_is_named() {
        let kind = |r: ScoreResponse, n| validate_response(&r, n).unwrap_err().kind();
        assert_eq!(kind(response(vec![0.5], &[], vec![]), 2), "wrong-length");
        assert_eq!(
            kind(response(vec![0.5, f64::NAN], &[], vec![]), 2),
            "not-finite"
        );
        assert_eq!(
            kind(response(vec![f64::INFINITY], &[], vec![]), 1),
            "not-finite"
        );
        assert_eq!(kind(response(vec![1.5], &[], vec![]), 1), "out-of-range");
        assert_eq!(
            kind(response(vec![0.5], &["a", "a"], vec![0.1, 0.1]), 1),
            "bad-parts"
        );
        assert_eq!(
            kind(response(vec![0.5], &["Cpu"], vec![0.1]), 1),
            "bad-parts"
        );
        assert_eq!(kind(response(vec![0.5], &[""], vec![0.1]), 1), "bad-parts");
        assert_eq!(kind(response(vec![0.5], &["cpu"], vec![]), 1), "bad-parts");
        assert_eq!(
            kind(response(vec![0.5], &["cpu"], vec![f64::NAN]), 1),
            "bad-parts"
        );
        let many: Vec<String> = (0..33).map(|i| format!("p{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(
            kind(response(vec![0.5], &many, vec![0.0; 33]), 1),
            "bad-parts"
        );
    }

    #[test]
    fn messages_say_what_and_where() {
        let r = response(vec![0.5, f64::NAN], &["cpu"], vec![0.1, 0.2]);
        let msg = validate_response(&r, 2).unwrap_err().to_string();
        assert_eq!(msg, "score of node 1 is NaN (scores must be finite)");
        let r = response(vec![0.5], &["cpu", "memory"], vec![0.1, f64::NEG_INFINITY]);
        let msg = validate_response(&r, 1).unwrap_err().to_string();
        assert_eq!(
            msg,
            "explanation parts: part \"memory\" of node 0 is -inf (parts must be finite)"
        );
    }
}
