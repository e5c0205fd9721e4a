//! `orch scheduler compare`: every scorer that runs, side by side, over a
//! window of decisions — how many it made, how often a shadow agrees with
//! the primary, how long its calls take, how often it failed (and the
//! fallback answered for it) — and how packed its cluster is now: the real
//! one for the primary, its shadow cluster for a shadow.

use super::Current;
use super::shadow::{Delta, Shadows};
use crate::Store;
use crate::state::{DecisionRow, ShadowRow, State};
use orch_model::{Node, Resources, now_ms};
use orch_wire::{Packing, ResourcePacking, ScorerFigures, SpreadCount, UsageSample};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// A dimension counts as exhausted on a node when less than this share of
/// its capacity is free; what is free on the node's other dimensions is
/// then stranded.
pub const EXHAUSTED: f64 = 0.05;

/// A scorer in force and its role.
pub struct Role<'a> {
    /// Its name in the settings, as decision records name it.
    pub name: &'a str,
    /// `primary`, `split`, `shadow` or `fallback`.
    pub role: &'a str,
    pub label: &'a str,
    /// Shadow decisions dropped since its lane started.
    pub drops: u64,
}

/// The figures of each scorer: those in `roles` first, in that order, then
/// any other that made decisions in the window (`past`). A name in two
/// roles (a fallback that is the primary's built-in) is shown once, in the
/// first: the records name who answered, not in which role.
///
/// A policy's (the primary's, a split's) faults are the placements it
/// failed on, and its fallbacks those another scorer answered for it, as
/// the records say: the same number, since a placement no one answered
/// leaves no record. The fallback's decisions are those it answered; it
/// stands in for no one, so it has neither.
pub fn figures(
    roles: &[Role<'_>],
    decisions: &[DecisionRow],
    shadows: &[ShadowRow],
) -> Vec<ScorerFigures> {
    let mut names: Vec<String> = Vec::new();
    let known = roles
        .iter()
        .map(|r| r.name)
        .chain(decisions.iter().map(|d| d.scorer_name.as_str()));
    for name in known {
        if !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
    }
    names
        .into_iter()
        .map(|name| {
            let role = roles.iter().find(|r| r.name == name);
            let role_name = role.map_or("past", |r| r.role);
            if role_name == "shadow" {
                let mine: Vec<&ShadowRow> =
                    shadows.iter().filter(|s| s.candidate == name).collect();
                let answered: Vec<u64> = mine
                    .iter()
                    .filter(|s| !s.fault)
                    .map(|s| s.scorer_micros)
                    .collect();
                let agreed = mine.iter().filter(|s| s.agrees).count();
                let (p50, p99) = percentiles(answered.clone());
                ScorerFigures {
                    name,
                    role: role_name.to_owned(),
                    label: role.map_or_else(String::new, |r| r.label.to_owned()),
                    decisions: mine.len() as u64,
                    agreement: (!answered.is_empty())
                        .then(|| agreed as f64 / answered.len() as f64),
                    latency_p50_us: p50,
                    latency_p99_us: p99,
                    faults: mine.iter().filter(|s| s.fault).count() as u64,
                    fallbacks: 0,
                    drops: role.map_or(0, |r| r.drops),
                    packing: None,
                }
            } else {
                let answered: Vec<u64> = decisions
                    .iter()
                    .filter(|d| d.scorer_name == name)
                    .map(|d| d.scorer_micros)
                    .collect();
                let failed = decisions
                    .iter()
                    .filter(|d| d.policy == name && d.fallback)
                    .count() as u64;
                let (p50, p99) = percentiles(answered.clone());
                ScorerFigures {
                    name,
                    role: role_name.to_owned(),
                    label: role.map_or_else(String::new, |r| r.label.to_owned()),
                    decisions: answered.len() as u64,
                    agreement: None,
                    latency_p50_us: p50,
                    latency_p99_us: p99,
                    faults: failed,
                    fallbacks: failed,
                    drops: 0,
                    packing: None,
                }
            }
        })
        .collect()
}

/// p50 and p99 (nearest rank) of `values`; 0 when there are none.
fn percentiles(mut values: Vec<u64>) -> (u64, u64) {
    if values.is_empty() {
        return (0, 0);
    }
    values.sort_unstable();
    let rank = |p: f64| {
        let i = ((p * values.len() as f64).ceil() as usize).clamp(1, values.len());
        values[i - 1]
    };
    (rank(0.50), rank(0.99))
}

/// How the schedulable nodes of `state` are packed, with `delta` (a
/// shadow cluster's difference from the real one) applied, and the
/// allocations counted per value of `spread_by` (`${node.datacenter}`…).
pub fn packing(
    state: &State,
    delta: Option<&HashMap<String, Delta>>,
    unplaced: u64,
    spread_by: &str,
) -> Packing {
    let nodes: Vec<&std::sync::Arc<Node>> = state.schedulable_nodes().iter().collect();
    let mut rows = Vec::with_capacity(nodes.len());
    for node in &nodes {
        let usage = state.usage(&node.id);
        let (used, allocs) = match delta.and_then(|d| d.get(&node.id)) {
            Some(d) => (
                d.apply(usage.resources),
                u64::try_from(i64::from(usage.allocs) + d.allocs).unwrap_or(0),
            ),
            None => (usage.resources, u64::from(usage.allocs)),
        };
        rows.push((node, node.allocatable(), used, allocs));
    }
    let mut spread: BTreeMap<String, u64> = BTreeMap::new();
    for (node, _, _, allocs) in &rows {
        if *allocs > 0 && !spread_by.is_empty() {
            let value = node.lookup(spread_by).unwrap_or("(none)").to_owned();
            *spread.entry(value).or_default() += allocs;
        }
    }
    let mut spread: Vec<SpreadCount> = spread
        .into_iter()
        .map(|(value, allocations)| SpreadCount { value, allocations })
        .collect();
    spread.sort_by(|a, b| {
        b.allocations
            .cmp(&a.allocations)
            .then_with(|| a.value.cmp(&b.value))
    });
    let used: Vec<&(_, Resources, Resources, u64)> = rows.iter().filter(|r| r.3 > 0).collect();
    let dims: [Dim; 3] = [
        ("cpu", |r| f64::from(r.cpu)),
        ("memory", |r| r.memory as f64),
        ("disk", |r| r.disk as f64),
    ];
    let exhausted = |cap: Resources, held: Resources, dim: usize| {
        let c = dims[dim].1(cap);
        c > 0.0 && (c - dims[dim].1(held)) < EXHAUSTED * c
    };
    let resources = dims
        .iter()
        .enumerate()
        .map(|(i, (name, get))| {
            let utilization: Vec<f64> = used
                .iter()
                .filter(|r| get(r.1) > 0.0)
                .map(|r| (get(r.2) / get(r.1)).min(1.0))
                .collect();
            let total: f64 = rows.iter().map(|r| get(r.1)).sum();
            let stranded: f64 = rows
                .iter()
                .filter(|r| (0..dims.len()).any(|j| j != i && exhausted(r.1, r.2, j)))
                .map(|r| (get(r.1) - get(r.2)).max(0.0))
                .sum();
            ResourcePacking {
                resource: (*name).to_owned(),
                mean: mean(&utilization),
                p90: p90(utilization),
                stranded: if total > 0.0 { stranded / total } else { 0.0 },
            }
        })
        .collect();
    let mut per_node: Vec<f64> = used
        .iter()
        .map(|r| {
            let u = |get: fn(Resources) -> f64| {
                if get(r.1) > 0.0 {
                    (get(r.2) / get(r.1)).min(1.0)
                } else {
                    0.0
                }
            };
            (u(dims[0].1) + u(dims[1].1)) / 2.0
        })
        .collect();
    per_node.sort_by(|a, b| b.total_cmp(a));
    Packing {
        nodes: rows.len() as u64,
        nodes_used: used.len() as u64,
        allocations: rows.iter().map(|r| r.3).sum(),
        unplaced,
        resources,
        spread,
        per_node,
    }
}

/// A resource dimension: its name and how to read it.
type Dim = (&'static str, fn(Resources) -> f64);

/// How often the packing of each cluster is sampled for the picture over
/// time, and how many samples are kept (two hours' worth).
pub const HISTORY_EVERY: Duration = Duration::from_secs(10);
const HISTORY_KEPT: usize = 720;

/// The packing of the primary's and each shadow's cluster over time, in
/// memory (it starts again at a restart).
#[derive(Default)]
pub struct History {
    samples: Mutex<VecDeque<Vec<UsageSample>>>,
}

impl History {
    /// A history sampled every [`HISTORY_EVERY`] by a thread that ends
    /// when the history is dropped. Without the thread (it could not be
    /// started, which is logged), samples are only taken when asked for.
    pub fn start(store: Store, current: Current, shadows: Arc<Shadows>) -> Arc<Self> {
        let history = Arc::new(Self::default());
        let weak: Weak<Self> = Arc::downgrade(&history);
        let started = std::thread::Builder::new()
            .name("orch-packing-history".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(HISTORY_EVERY);
                    let Some(history) = weak.upgrade() else {
                        return;
                    };
                    history.record_if_due(&store, &current, &shadows, HISTORY_EVERY);
                }
            });
        if let Err(e) = started {
            tracing::error!(
                "cannot start the packing history's thread: {e}; compare samples only when asked"
            );
        }
        history
    }

    /// Takes a sample unless the last one is younger than `every`.
    pub fn record_if_due(
        &self,
        store: &Store,
        current: &Current,
        shadows: &Shadows,
        every: Duration,
    ) {
        let now = now_ms();
        let last = {
            let samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
            samples
                .back()
                .and_then(|s| s.first())
                .map_or(0, |s| s.time_ms)
        };
        if now.saturating_sub(last) < u64::try_from(every.as_millis()).unwrap_or(u64::MAX) {
            return;
        }
        let state = store.snapshot();
        let primary = current.get().name().to_owned();
        let mut sample = vec![usage_sample(now, &primary, &packing(&state, None, 0, ""))];
        for lane in shadows.stats() {
            if let Some((delta, unplaced)) = shadows.cluster_delta(&lane.name) {
                let p = packing(&state, Some(&delta), unplaced, "");
                sample.push(usage_sample(now, &lane.name, &p));
            }
        }
        let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        samples.push_back(sample);
        while samples.len() > HISTORY_KEPT {
            samples.pop_front();
        }
    }

    /// The samples taken at or after `since_ms`, oldest first.
    pub fn since(&self, since_ms: u64) -> Vec<UsageSample> {
        let samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        samples
            .iter()
            .flatten()
            .filter(|s| s.time_ms >= since_ms)
            .cloned()
            .collect()
    }
}

fn usage_sample(time_ms: u64, scorer: &str, p: &Packing) -> UsageSample {
    let mean_of = |name: &str| {
        p.resources
            .iter()
            .find(|r| r.resource == name)
            .map_or(0.0, |r| r.mean)
    };
    UsageSample {
        time_ms,
        scorer: scorer.to_owned(),
        nodes_used: p.nodes_used,
        cpu: mean_of("cpu"),
        memory: mean_of("memory"),
    }
}

fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        0.0
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

fn p90(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let i = ((0.9 * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values[i - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        assert_eq!(percentiles(vec![]), (0, 0));
        assert_eq!(percentiles(vec![7]), (7, 7));
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentiles(v), (50, 99));
        assert!((p90((1..=10).map(f64::from).collect()) - 9.0).abs() < 1e-9);
    }

    fn row(name: &str, policy: &str, micros: u64, fallback: bool) -> DecisionRow {
        DecisionRow {
            scorer_name: name.into(),
            policy: policy.into(),
            scorer_micros: micros,
            fallback,
        }
    }

    #[test]
    fn figures_count_each_scorer_by_its_role() {
        let roles = [
            Role {
                name: "binpack",
                role: "primary",
                label: "binpack 0.1.0",
                drops: 0,
            },
            Role {
                name: "spread",
                role: "shadow",
                label: "spread 0.1.0",
                drops: 3,
            },
            Role {
                name: "epvm",
                role: "fallback",
                label: "epvm 0.1.0",
                drops: 0,
            },
        ];
        let decisions = [
            row("binpack", "binpack", 10, false),
            row("binpack", "binpack", 30, false),
            // The primary failed; the fallback answered.
            row("epvm", "binpack", 20, true),
            // A split candidate since removed.
            row("round-robin", "round-robin", 5, false),
        ];
        let shadow = |agrees, fault| ShadowRow {
            candidate: "spread".into(),
            agrees,
            fault,
            scorer_micros: 5,
        };
        let shadows = [
            shadow(true, false),
            shadow(false, false),
            shadow(false, true),
        ];
        let f = figures(&roles, &decisions, &shadows);
        assert_eq!(f.len(), 4);
        // The primary failed once: a fault, and a fallback the fallback
        // answered.
        assert_eq!((f[0].decisions, f[0].faults, f[0].fallbacks), (2, 1, 1));
        assert_eq!((f[0].latency_p50_us, f[0].latency_p99_us), (10, 30));
        assert_eq!((f[1].decisions, f[1].faults, f[1].drops), (3, 1, 3));
        assert_eq!(f[1].agreement, Some(0.5));
        let fallback = &f[2];
        assert_eq!(
            (fallback.name.as_str(), fallback.role.as_str()),
            ("epvm", "fallback")
        );
        assert_eq!(fallback.label, "epvm 0.1.0");
        assert_eq!(
            (fallback.decisions, fallback.faults, fallback.fallbacks),
            (1, 0, 0)
        );
        assert_eq!((fallback.latency_p50_us, fallback.latency_p99_us), (20, 20));
        assert_eq!(
            (f[3].name.as_str(), f[3].role.as_str(), f[3].decisions),
            ("round-robin", "past", 1)
        );
    }

    #[test]
    fn a_name_in_two_roles_is_shown_once_in_the_first() {
        let role = |name, role| Role {
            name,
            role,
            label: "",
            drops: 0,
        };
        // The built-in binpack as the primary and as the fallback.
        let roles = [role("binpack", "primary"), role("binpack", "fallback")];
        let decisions = [
            row("binpack", "binpack", 10, false),
            row("binpack", "binpack", 20, true),
        ];
        let f = figures(&roles, &decisions, &[]);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].role, "primary");
        assert_eq!((f[0].decisions, f[0].fallbacks), (2, 1));
    }
}
