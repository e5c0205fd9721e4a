//! Placing the slots reconcile asked for, one stage after the other:
//! feasibility (`feasible.rs`) → limit by sampling (`sample.rs`) → the one
//! batched scorer call (`score.rs`) → host adjustments for affinity and
//! spread (`adjust.rs`) → select (`select.rs`). Each placement leaves a
//! [`Decision`] behind; each one that finds no node adds to its group's
//! [`AllocMetric`].

use super::SchedError;
use super::adjust::Preferences;
use super::feasible::Feasibility;
use super::reconcile::Slot;
use super::sample::{self, Overlay, Sampling};
use super::score::{self, Answered, Named};
use super::select;
use crate::{AllocStop, State};
use orch_model::{
    AllocMetric, Allocation, ClientStatus, Decision, DesiredStatus, Evaluation, Job, Node,
    Resources, TaskGroup,
};
use orch_plugin_runtime::{NodeColumns, ScoreRequest, ScoreResponse};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// What placing came to.
#[derive(Debug, Default)]
pub struct Placed {
    pub allocs: Vec<Allocation>,
    /// Stops of the allocations that placed replacements take over from.
    pub stops: Vec<AllocStop>,
    pub decisions: Vec<Decision>,
    /// For each decision, who of the chain answered (0: the policy).
    pub answered_by: Vec<usize>,
    pub failed: BTreeMap<String, AllocMetric>,
    pub queued: BTreeMap<String, u64>,
}

pub struct Placer<'a> {
    pub state: &'a State,
    pub job: &'a Job,
    pub eval: &'a Evaluation,
    /// Who scores, in order: the policy placing this job, then what stands
    /// in when it fails.
    pub chain: Vec<Named<'a>>,
    /// Whether the policy is a split candidate rather than the primary.
    pub split: bool,
    pub sampling: Sampling,
    /// The placement number; shared by every worker, so sampling starts
    /// somewhere new each time and a replay can give the scorer the same
    /// number.
    pub counter: &'a AtomicU64,
    pub now_ms: u64,
}

/// Per node, what the plan's stops give back.
type Freed = HashMap<String, (Resources, u32)>;

impl Placer<'_> {
    pub fn place(&self, slots: Vec<Slot>, stops: &[AllocStop]) -> Result<Placed, SchedError> {
        let mut freed: Freed = HashMap::new();
        let mut job_freed: HashMap<String, u32> = HashMap::new();
        for stop in stops {
            if let Some(alloc) = self.state.alloc(&stop.alloc_id)
                && alloc.holds_resources()
            {
                let entry = freed.entry(alloc.node_id.clone()).or_default();
                entry.0 = entry.0.saturating_add(alloc.resources);
                entry.1 += 1;
                *job_freed.entry(alloc.node_id.clone()).or_default() += 1;
            }
        }
        let mut job_on_node: HashMap<String, u32> = HashMap::new();
        for alloc in self.state.allocs_of_job(&self.job.id) {
            if alloc.holds_resources() {
                *job_on_node.entry(alloc.node_id.clone()).or_default() += 1;
            }
        }
        for (node, n) in job_freed {
            if let Some(count) = job_on_node.get_mut(&node) {
                *count = count.saturating_sub(n);
            }
        }
        let mut by_group: BTreeMap<String, Vec<Slot>> = BTreeMap::new();
        for slot in slots {
            by_group.entry(slot.group.clone()).or_default().push(slot);
        }
        let mut run = Run {
            placer: self,
            freed,
            stopping: stops.iter().map(|s| s.alloc_id.clone()).collect(),
            job_on_node,
            overlay: Overlay::default(),
            out: Placed::default(),
        };
        for (name, slots) in by_group {
            let Some(group) = self.job.group(&name) else {
                continue;
            };
            let feasibility =
                Feasibility::new(self.job, group).map_err(|detail| SchedError::Job {
                    job: self.job.id.clone(),
                    detail,
                })?;
            let prefs = Preferences::new(self.job, group).map_err(|detail| SchedError::Job {
                job: self.job.id.clone(),
                detail,
            })?;
            let (system, counted): (Vec<Slot>, Vec<Slot>) =
                slots.into_iter().partition(|s| s.node.is_some());
            run.counted(group, &feasibility, &prefs, counted)?;
            run.system(group, system)?;
        }
        Ok(run.out)
    }
}

struct Run<'p, 'a> {
    placer: &'p Placer<'a>,
    freed: Freed,
    stopping: HashSet<String>,
    job_on_node: HashMap<String, u32>,
    overlay: Overlay,
    out: Placed,
}

impl<'a> Run<'_, 'a> {
    fn usage(&self, node: &str) -> (Resources, u32) {
        let usage = self.placer.state.usage(node);
        match self.freed.get(node) {
            Some((res, n)) => (
                usage.resources.saturating_sub(*res),
                usage.allocs.saturating_sub(*n),
            ),
            None => (usage.resources, usage.allocs),
        }
    }

    /// Service and batch slots: each one scored over sampled candidates.
    fn counted(
        &mut self,
        group: &TaskGroup,
        feasibility: &Feasibility,
        prefs: &Preferences,
        slots: Vec<Slot>,
    ) -> Result<(), SchedError> {
        let p = self.placer;
        let ask = group.resources();
        let nodes = p.state.schedulable_nodes().clone();
        let mut spread_counts =
            prefs.initial_counts(p.state, &p.job.id, &group.name, &self.stopping);
        let mut failed = false;
        let hash = p.job.group_spec_hash(group);
        // The group's live allocations per node, less the plan's stops, plus
        // what this plan places: for a group's distinct_hosts.
        let mut group_on_node: HashMap<String, u32> = HashMap::new();
        for alloc in p.state.allocs_of_job(&p.job.id) {
            if alloc.group == group.name
                && alloc.holds_resources()
                && !self.stopping.contains(&alloc.id)
            {
                *group_on_node.entry(alloc.node_id.clone()).or_default() += 1;
            }
        }
        let mut pool = {
            let on_node = Counts {
                job: &self.job_on_node,
                group: &group_on_node,
            };
            sample::Pool::new(
                &nodes,
                feasibility,
                |n| self.usage(n),
                &on_node,
                &self.overlay,
            )
        };
        for slot in slots {
            if failed {
                // The same group on the same snapshot fails the same way.
                self.fail(&group.name, None);
                continue;
            }
            // A replacement may use the room of the allocation it replaces.
            let taken_over = self.take_over(&slot);
            if let Some((node, _)) = &taken_over {
                self.refresh(&mut pool, node, &group_on_node);
            }
            let started = Instant::now();
            let placement = p.counter.fetch_add(1, Ordering::Relaxed);
            let mut metric = AllocMetric::default();
            let limit = p.sampling.limit(nodes.len());
            let start = if nodes.is_empty() {
                0
            } else {
                (placement % nodes.len() as u64) as usize
            };
            let candidates = pool.collect(ask, limit, start, &mut metric);
            if candidates.nodes.is_empty() {
                failed = true;
                if let Some((node, _)) = &taken_over {
                    let node = node.clone();
                    self.give_back(taken_over);
                    self.refresh(&mut pool, &node, &group_on_node);
                }
                self.fail(&group.name, Some(metric));
                continue;
            }
            let sample::Candidates {
                nodes: candidates,
                columns,
                skipped,
            } = candidates;
            let request = prefs.request(placement, p.job.priority, ask, &candidates, columns);
            let (response, answered) = self.score(&request, candidates.len())?;
            let scorer_micros = answered.micros;
            let adjustments = prefs.adjust(&candidates, &spread_counts, &response.scores);
            let pick = select::best(&select::final_scores(&response.scores, &adjustments));
            let node = candidates[pick].clone();
            *group_on_node.entry(node.id.clone()).or_default() += 1;
            prefs.count(&node, &mut spread_counts);
            let decision = Decision {
                // The request itself becomes the record's inputs: no copy.
                inputs: super::score::inputs_of(request),
                nodes_evaluated: metric.nodes_evaluated,
                nodes_filtered: metric.nodes_filtered,
                nodes_skipped: skipped,
                candidates: candidates.iter().map(|n| n.id.clone()).collect(),
                scores: response.scores,
                host_adjustments: if prefs.is_empty() {
                    Vec::new()
                } else {
                    adjustments
                },
                host_divisor: if prefs.is_empty() {
                    0.0
                } else {
                    prefs.divisor()
                },
                part_names: response.part_names,
                parts: response.parts,
                pick: pick as u32,
                scorer_micros,
                total_micros: micros(started),
                ..self.base_decision(group, &answered, placement, ask)
            };
            self.commit(group, &hash, slot, &node, ask, decision);
            self.refresh(&mut pool, &node.id, &group_on_node);
            self.out.answered_by.push(answered.at);
        }
        Ok(())
    }

    /// Tells `pool` that `node`'s figures changed.
    fn refresh(
        &self,
        pool: &mut sample::Pool<'_>,
        node: &str,
        group_on_node: &HashMap<String, u32>,
    ) {
        let on_node = Counts {
            job: &self.job_on_node,
            group: group_on_node,
        };
        pool.refresh(node, |n| self.usage(n), &on_node, &self.overlay);
    }

    /// Counts the room of the allocation `slot` replaces as free while the
    /// slot is placed; returns what to give back if it is not.
    fn take_over(&mut self, slot: &Slot) -> Option<(String, Resources)> {
        slot.replaces.as_ref()?;
        let old = slot.previous.as_ref()?;
        if !old.holds_resources() {
            return None;
        }
        let entry = self.freed.entry(old.node_id.clone()).or_default();
        entry.0 = entry.0.saturating_add(old.resources);
        entry.1 += 1;
        if let Some(n) = self.job_on_node.get_mut(&old.node_id) {
            *n = n.saturating_sub(1);
        }
        Some((old.node_id.clone(), old.resources))
    }

    fn give_back(&mut self, taken: Option<(String, Resources)>) {
        let Some((node, resources)) = taken else {
            return;
        };
        if let Some(entry) = self.freed.get_mut(&node) {
            entry.0 = entry.0.saturating_sub(resources);
            entry.1 = entry.1.saturating_sub(1);
        }
        *self.job_on_node.entry(node).or_default() += 1;
    }

    /// System slots: each belongs on its node; the scorer is called once
    /// for all of them so every decision still carries its score.
    fn system(&mut self, group: &TaskGroup, slots: Vec<Slot>) -> Result<(), SchedError> {
        let p = self.placer;
        let ask = group.resources();
        let started = Instant::now();
        let hash = p.job.group_spec_hash(group);
        let mut fitting = Vec::new();
        for slot in slots {
            let Some(node) = slot.node.clone() else {
                continue;
            };
            let taken_over = self.take_over(&slot);
            let (held, _) = self.usage(&node.id);
            // What this plan already put there counts too (another group
            // of the same job, say).
            let held = held.saturating_add(self.overlay.added(&node.id));
            if let Some(dim) = node.allocatable().exhausted(held, ask) {
                self.give_back(taken_over);
                let mut metric = AllocMetric {
                    nodes_evaluated: 1,
                    ..AllocMetric::default()
                };
                metric.exhaust(dim.as_str());
                self.fail(&group.name, Some(metric));
                continue;
            }
            // Later slots of this group see this one's ask.
            self.overlay.place(&node.id, ask);
            fitting.push((slot, node));
        }
        if fitting.is_empty() {
            return Ok(());
        }
        let placement = p.counter.fetch_add(1, Ordering::Relaxed);
        // Scored as they were before this group's own placements.
        for (_, node) in &fitting {
            self.overlay.remove(&node.id, ask);
        }
        let scorer_nodes: Vec<_> = fitting
            .iter()
            .map(|(_, node)| {
                let (held, allocs) = self.usage(&node.id);
                let held = held.saturating_add(self.overlay.added(&node.id));
                orch_plugin_runtime::Node {
                    capacity: sample::scorer_resources(node.allocatable()),
                    allocated: sample::scorer_resources(held),
                    job_allocs: self.job_on_node.get(&node.id).copied().unwrap_or(0),
                    total_allocs: allocs,
                }
            })
            .collect();
        let request = ScoreRequest {
            placement,
            job_priority: p.job.priority,
            ask: sample::scorer_resources(ask),
            nodes: NodeColumns::from_nodes(&scorer_nodes),
            attribute_names: Vec::new(),
            strings: Vec::new(),
            attributes: Vec::new(),
        };
        let (response, answered) = self.score(&request, fitting.len())?;
        let scorer_micros = answered.micros;
        let parts_per = response.part_names.len();
        let total_micros = micros(started);
        for (i, (slot, node)) in fitting.into_iter().enumerate() {
            // The scorer saw every fitting node in one request; the record
            // keeps this node's row of it.
            let decision = Decision {
                inputs: row_inputs(&request, i),
                nodes_evaluated: 1,
                nodes_filtered: BTreeMap::new(),
                nodes_skipped: 0,
                candidates: vec![node.id.clone()],
                scores: response.scores.get(i).copied().into_iter().collect(),
                host_adjustments: Vec::new(),
                host_divisor: 0.0,
                part_names: response.part_names.clone(),
                parts: response
                    .parts
                    .get(i * parts_per..(i + 1) * parts_per)
                    .map(<[f64]>::to_vec)
                    .unwrap_or_default(),
                pick: 0,
                scorer_micros,
                total_micros,
                ..self.base_decision(group, &answered, placement, ask)
            };
            self.commit(group, &hash, slot, &node, ask, decision);
            self.out.answered_by.push(answered.at);
        }
        Ok(())
    }

    /// What every decision of this group's placements says about who
    /// scored it and what for; the caller fills in the candidates.
    fn base_decision(
        &self,
        group: &TaskGroup,
        answered: &Answered<'_>,
        placement: u64,
        ask: Resources,
    ) -> Decision {
        let p = self.placer;
        Decision {
            alloc_id: new_id(),
            eval_id: p.eval.id.clone(),
            job_id: p.job.id.clone(),
            group: group.name.clone(),
            scorer: answered.scorer.scorer.label().to_owned(),
            scorer_digest: answered.scorer.scorer.digest().to_owned(),
            scorer_name: answered.scorer.name.to_owned(),
            policy: p
                .chain
                .first()
                .map_or_else(String::new, |n| n.name.to_owned()),
            split: p.split,
            time_ms: p.now_ms,
            scorer_failure: answered.failure.clone(),
            placement,
            snapshot_index: p.state.index(),
            job_priority: p.job.priority,
            ask,
            inputs: orch_model::CandidateInputs::default(),
            nodes_evaluated: 0,
            nodes_filtered: BTreeMap::new(),
            nodes_skipped: 0,
            candidates: Vec::new(),
            scores: Vec::new(),
            host_adjustments: Vec::new(),
            host_divisor: 0.0,
            part_names: Vec::new(),
            parts: Vec::new(),
            pick: 0,
            scorer_micros: 0,
            total_micros: 0,
        }
    }

    /// The one batched scorer call, with the fallback when the scorer fails.
    fn score(
        &self,
        request: &ScoreRequest,
        nodes: usize,
    ) -> Result<(ScoreResponse, Answered<'a>), SchedError> {
        score::score(&self.placer.chain, request, nodes)
    }

    fn commit(
        &mut self,
        group: &TaskGroup,
        hash: &str,
        slot: Slot,
        node: &Arc<Node>,
        ask: Resources,
        decision: Decision,
    ) {
        let p = self.placer;
        self.overlay.place(&node.id, ask);
        if let Some(stop) = slot.replaces {
            self.out.stops.push(stop);
        }
        self.out.allocs.push(Allocation {
            id: decision.alloc_id.clone(),
            name: format!("{}.{}[{}]", p.job.id, group.name, slot.index),
            job_id: p.job.id.clone(),
            job_version: p.job.version,
            group: group.name.clone(),
            index: slot.index,
            node_id: node.id.clone(),
            eval_id: p.eval.id.clone(),
            resources: ask,
            spec_hash: hash.to_owned(),
            desired_status: DesiredStatus::Run,
            desired_description: String::new(),
            client_status: ClientStatus::Pending,
            client_description: String::new(),
            previous_allocation: slot.previous.map(|a| a.id.clone()),
            reschedule_times_ms: slot.reschedule_times_ms,
            create_index: 0,
            modify_index: 0,
            create_time_ms: p.now_ms,
            client_time_ms: 0,
            task_states: Default::default(),
        });
        self.out.decisions.push(decision);
    }

    fn fail(&mut self, group: &str, metric: Option<AllocMetric>) {
        *self.out.queued.entry(group.to_owned()).or_default() += 1;
        let entry = self.out.failed.entry(group.to_owned());
        match (entry, metric) {
            (std::collections::btree_map::Entry::Vacant(v), Some(m)) => {
                v.insert(m);
            }
            (std::collections::btree_map::Entry::Vacant(v), None) => {
                v.insert(AllocMetric::default()).coalesced_failures += 1;
            }
            (std::collections::btree_map::Entry::Occupied(mut o), Some(m)) => {
                merge(o.get_mut(), m);
            }
            (std::collections::btree_map::Entry::Occupied(mut o), None) => {
                o.get_mut().coalesced_failures += 1;
            }
        }
    }
}

/// Candidate `i`'s row of a request's columns (system jobs score all their
/// nodes in one request; each decision keeps its own node's inputs).
fn row_inputs(request: &ScoreRequest, i: usize) -> orch_model::CandidateInputs {
    super::score::inputs_of(ScoreRequest {
        nodes: request.nodes.select(&[i]),
        attribute_names: Vec::new(),
        strings: Vec::new(),
        attributes: Vec::new(),
        ..*request
    })
}

/// The job's and the group's allocations per node, as sampling counts them.
struct Counts<'a> {
    job: &'a HashMap<String, u32>,
    group: &'a HashMap<String, u32>,
}

impl sample::JobAllocs for Counts<'_> {
    fn on_node(&self, node: &str) -> u32 {
        self.job.get(node).copied().unwrap_or(0)
    }

    fn group_on_node(&self, node: &str) -> u32 {
        self.group.get(node).copied().unwrap_or(0)
    }
}

/// Adds a further failure's metric (system jobs fail node by node).
fn merge(into: &mut AllocMetric, m: AllocMetric) {
    into.nodes_evaluated += m.nodes_evaluated;
    into.nodes_exhausted += m.nodes_exhausted;
    for (k, v) in m.nodes_filtered {
        *into.nodes_filtered.entry(k).or_default() += v;
    }
    for (k, v) in m.dimension_exhausted {
        *into.dimension_exhausted.entry(k).or_default() += v;
    }
}

fn micros(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX)
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
