//! The scorer world, `orch:scheduler/scorer-plugin@0.1.0`, on the host side.

use crate::inspect::{KNOWN_WORLDS, is_linked_wasi, same_minor, split_version};
use crate::runtime::CallStats;
use crate::{Component, Digest, Limits, OutputProblem, PluginError, Runtime};

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit/scheduler",
        world: "orch:scheduler/scorer-plugin",
    });
}

pub use bindings::exports::orch::scheduler::scorer::{Node, ScoreRequest, ScoreResponse};
pub use bindings::orch::types::types::Resources;
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

/// A loaded scorer that passed the world and import checks. Every call runs
/// in a fresh instance with the plugin's limits.
#[derive(Clone)]
pub struct ScorerPlugin {
    runtime: Runtime,
    component: Component,
    limits: Limits,
    pre: ScorerPluginPre<crate::sandbox::Sandbox>,
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
        let (iface, supported, _) = KNOWN_WORLDS[0];
        let export = inspection
            .exports
            .iter()
            .find(|e| split_version(e).0 == iface);
        match export.map(|e| split_version(e).1) {
            None => {
                let found = inspection.world_export.as_deref().map_or_else(
                    || format!("exports [{}]", inspection.exports.join(", ")),
                    |w| format!("targets {w}"),
                );
                return Err(wrong_world(format!(
                    "is not a scorer: it does not export {iface}@{supported} ({found})"
                )));
            }
            Some(version) if !version.is_some_and(|v| same_minor(v, supported)) => {
                return Err(wrong_world(format!(
                    "exports {iface}@{}, but this orch speaks @{supported}; rebuild it against wit/scheduler of this release",
                    version.unwrap_or("(no version)")
                )));
            }
            Some(_) => {}
        }
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
            limits,
            pre,
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

    /// Asks the scorer to describe itself.
    pub fn info(&self) -> Result<ScorerInfo, PluginError> {
        let (info, _) = self.runtime.call(
            &self.component,
            &self.limits,
            |store| self.pre.instantiate(store),
            |plugin: &Bindings, store| plugin.orch_scheduler_scorer().call_info(store),
        )?;
        Ok(ScorerInfo {
            name: info.name,
            version: info.version,
            description: info.description,
        })
    }

    /// Scores the request's nodes and checks the answer: one finite score in
    /// [-1, 1] per node, and well-formed parts.
    pub fn score(&self, request: &ScoreRequest) -> Result<Scored, PluginError> {
        let scored = self.score_unchecked(request)?;
        validate_response(&scored.response, request.nodes.len()).map_err(|problem| {
            PluginError::BadOutput {
                plugin: self.component.name.clone(),
                digest: self.component.digest,
                problem,
            }
        })?;
        Ok(scored)
    }

    /// Scores without checking the answer, for the conformance suite, which
    /// checks each property on its own. Everything else calls [`Self::score`].
    pub fn score_unchecked(&self, request: &ScoreRequest) -> Result<Scored, PluginError> {
        let (result, stats) = self.runtime.call(
            &self.component,
            &self.limits,
            |store| self.pre.instantiate(store),
            |plugin: &Bindings, store| plugin.orch_scheduler_scorer().call_score(store, request),
        )?;
        match result {
            Ok(response) => Ok(Scored { response, stats }),
            Err(message) => Err(PluginError::Refused {
                plugin: self.component.name.clone(),
                digest: self.component.digest,
                message: message.chars().take(500).collect(),
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
                "part name {name:?} is not snake_case (1 to {MAX_PART_NAME} of a-z, 0-9, _)"
            ));
        }
        if names[..i].contains(name) {
            return Err(format!("part name {name:?} appears twice"));
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
