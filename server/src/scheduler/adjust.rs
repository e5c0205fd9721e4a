//! Host adjustments: the job's soft preferences — affinities and spreads —
//! scored by the host on top of the scorer's ranking. A scorer plugin only
//! ranks by fit; the final score of a node is the mean of the scorer's score
//! and each kind of preference the group has, as Nomad averages its rankers.
//! The adjustment a decision record keeps is that mean less the scorer's
//! score, so `orch alloc status --verbose` can show both.

use super::feasible::meets;
use super::sample;
use crate::State;
use orch_model::{Constraint, Job, Node, Resources, Spread, TaskGroup};
use orch_plugin_runtime::{NodeColumns, ScoreRequest};
use regex::Regex;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// The job's soft preferences for one group: affinities and spreads.
pub(super) struct Preferences {
    affinities: Vec<(Constraint, Option<Regex>, f64)>,
    affinity_total: f64,
    spreads: Vec<SpreadRule>,
    spread_total: f64,
    /// Attributes sent to the scorer: the ones the preferences read.
    attribute_names: Vec<String>,
}

struct SpreadRule {
    spread: Spread,
    /// Desired allocations per value, when the spread has targets.
    desired: HashMap<String, f64>,
    /// Desired allocations of each value the targets do not name.
    other_desired: f64,
}

/// Allocations per (spread, value).
pub(super) type SpreadCounts = Vec<HashMap<String, u32>>;

impl Preferences {
    pub(super) fn new(job: &Job, group: &TaskGroup) -> Result<Self, String> {
        let mut affinities = Vec::new();
        for a in job
            .affinities
            .iter()
            .chain(&group.affinities)
            .chain(group.tasks.iter().flat_map(|t| &t.affinities))
        {
            let c = Constraint {
                attribute: a.attribute.clone(),
                operator: a.operator,
                value: a.value.clone(),
            };
            let regex = match a.operator {
                orch_model::Operator::Regexp => Some(
                    Regex::new(&a.value)
                        .map_err(|e| format!("affinity {}: bad regexp: {e}", a.attribute))?,
                ),
                _ => None,
            };
            affinities.push((c, regex, f64::from(a.weight)));
        }
        let affinity_total = affinities.iter().map(|(_, _, w)| w.abs()).sum();
        let count = f64::from(group.count);
        let spreads: Vec<SpreadRule> = job
            .spreads
            .iter()
            .chain(&group.spreads)
            .map(|s| {
                let named: f64 = s.targets.iter().map(|t| f64::from(t.percent)).sum();
                SpreadRule {
                    desired: s
                        .targets
                        .iter()
                        .map(|t| (t.value.clone(), f64::from(t.percent) * count / 100.0))
                        .collect(),
                    other_desired: (100.0 - named).max(0.0) * count / 100.0,
                    spread: s.clone(),
                }
            })
            .collect();
        let spread_total = spreads.iter().map(|s| f64::from(s.spread.weight)).sum();
        let mut attribute_names: Vec<String> = affinities
            .iter()
            .map(|(c, _, _)| c.attribute.clone())
            .chain(spreads.iter().map(|s| s.spread.attribute.clone()))
            .map(|a| strip(&a).to_owned())
            .collect();
        attribute_names.sort();
        attribute_names.dedup();
        Ok(Self {
            affinities,
            affinity_total,
            spreads,
            spread_total,
            attribute_names,
        })
    }

    pub(super) fn is_empty(&self) -> bool {
        self.affinities.is_empty() && self.spreads.is_empty()
    }

    /// What the scorer's score and the preference terms are averaged over:
    /// 1 for the score, plus one per kind of preference the job has. A
    /// final score is `(score + preferences) / divisor`.
    pub(super) fn divisor(&self) -> f64 {
        1.0 + f64::from(u8::from(!self.affinities.is_empty()))
            + f64::from(u8::from(!self.spreads.is_empty()))
    }

    /// Live allocations of the group per spread value, less those the plan
    /// stops.
    pub(super) fn initial_counts(
        &self,
        state: &State,
        job: &str,
        group: &str,
        stopping: &HashSet<String>,
    ) -> SpreadCounts {
        let mut counts: SpreadCounts = vec![HashMap::new(); self.spreads.len()];
        if self.spreads.is_empty() {
            return counts;
        }
        for alloc in state.allocs_of_job(job) {
            if alloc.group != group || !alloc.holds_resources() || stopping.contains(&alloc.id) {
                continue;
            }
            if let Some(node) = state.node(&alloc.node_id) {
                self.count(node, &mut counts);
            }
        }
        counts
    }

    pub(super) fn count(&self, node: &Node, counts: &mut SpreadCounts) {
        for (rule, counts) in self.spreads.iter().zip(counts.iter_mut()) {
            if let Some(v) = node.lookup(&rule.spread.attribute) {
                *counts.entry(v.to_owned()).or_default() += 1;
            }
        }
    }

    /// What the host adds to each candidate's score: with `s` the scorer's
    /// score, the final score is the mean of `s` and each kind of
    /// preference the group has, and the adjustment is that less `s`.
    pub(super) fn adjust(
        &self,
        nodes: &[Arc<Node>],
        counts: &SpreadCounts,
        scores: &[f64],
    ) -> Vec<f64> {
        if self.is_empty() {
            return vec![0.0; nodes.len()];
        }
        let kinds = self.divisor();
        // Per spread: allocations so far, and how many values share them
        // (the values already used and the candidates' values).
        let even: Vec<(f64, usize)> = self
            .spreads
            .iter()
            .zip(counts)
            .map(|(rule, counts)| {
                let mut values: std::collections::HashSet<&str> =
                    counts.keys().map(String::as_str).collect();
                values.extend(
                    nodes
                        .iter()
                        .filter_map(|n| n.lookup(&rule.spread.attribute)),
                );
                let total: u32 = counts.values().sum();
                (f64::from(total), values.len().max(1))
            })
            .collect();
        nodes
            .iter()
            .zip(scores)
            .map(|(node, s)| {
                let mut sum = *s;
                if !self.affinities.is_empty() && self.affinity_total > 0.0 {
                    let matched: f64 = self
                        .affinities
                        .iter()
                        .filter(|(c, re, _)| meets(node, c, re.as_ref()))
                        .map(|(_, _, w)| w)
                        .sum();
                    sum += matched / self.affinity_total;
                }
                if !self.spreads.is_empty() && self.spread_total > 0.0 {
                    for ((rule, counts), (total, values)) in
                        self.spreads.iter().zip(counts).zip(&even)
                    {
                        let weight = f64::from(rule.spread.weight) / self.spread_total;
                        sum += weight * rule.score(node, counts, *total, *values);
                    }
                }
                sum / kinds - s
            })
            .collect()
    }

    /// The request for the scorer: the candidates' columns and the
    /// attributes the preferences read, interned.
    pub(super) fn request(
        &self,
        placement: u64,
        priority: u8,
        ask: Resources,
        candidates: &[Arc<Node>],
        columns: NodeColumns,
    ) -> ScoreRequest {
        let mut strings: Vec<String> = Vec::new();
        let mut ids: HashMap<String, u32> = HashMap::new();
        let mut attributes = Vec::with_capacity(candidates.len() * self.attribute_names.len());
        for node in candidates {
            for name in &self.attribute_names {
                let id = match node.lookup(name) {
                    Some(v) => *ids.entry(v.to_owned()).or_insert_with(|| {
                        strings.push(v.to_owned());
                        (strings.len() - 1) as u32
                    }),
                    None => u32::MAX,
                };
                attributes.push(id);
            }
        }
        ScoreRequest {
            placement,
            job_priority: priority,
            ask: sample::scorer_resources(ask),
            nodes: columns,
            attribute_names: self.attribute_names.clone(),
            strings,
            attributes,
        }
    }
}

impl SpreadRule {
    /// In [-1, 1]: how much placing on `node` moves the group toward the
    /// spread's targets (or toward an even spread without targets). A node
    /// without the attribute scores -1.
    fn score(&self, node: &Node, counts: &HashMap<String, u32>, total: f64, values: usize) -> f64 {
        let Some(value) = node.lookup(&self.spread.attribute) else {
            return -1.0;
        };
        let current = f64::from(counts.get(value).copied().unwrap_or(0));
        if self.desired.is_empty() {
            let even = total / values as f64;
            return ((even - current) / even.max(1.0)).clamp(-1.0, 1.0);
        }
        let desired = self
            .desired
            .get(value)
            .copied()
            .unwrap_or(self.other_desired);
        if desired <= 0.0 {
            return -1.0;
        }
        ((desired - current) / desired).clamp(-1.0, 1.0)
    }
}

/// `${attr.x}` → `attr.x`.
fn strip(attribute: &str) -> &str {
    attribute
        .strip_prefix("${")
        .and_then(|a| a.strip_suffix('}'))
        .unwrap_or(attribute)
}
