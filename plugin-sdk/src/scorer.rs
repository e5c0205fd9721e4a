//! The scorer side of `orch:scheduler@0.1.0`, in plain Rust types.

use std::iter::Zip;

/// Attribute value id meaning "this node does not have the attribute".
pub const ABSENT: u32 = u32::MAX;

/// What a scorer says about itself; shown in decision records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Info {
    /// Short name, e.g. `binpack`.
    pub name: &'static str,
    /// The scorer's own version.
    pub version: &'static str,
    /// One sentence on what it prefers.
    pub description: &'static str,
}

/// An amount of each resource the scheduler accounts for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    /// CPU in MHz.
    pub cpu_mhz: u32,
    /// Memory in MiB.
    pub memory_mib: u64,
    /// Disk in MiB.
    pub disk_mib: u64,
}

/// One candidate node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
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

/// The candidate nodes, kept as columns the way they cross into the
/// component (one copy per column, no per-node work); iterate them to get
/// [`Node`]s.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeColumns {
    pub cpu_capacity: Vec<u32>,
    pub memory_capacity: Vec<u64>,
    pub disk_capacity: Vec<u64>,
    pub cpu_allocated: Vec<u32>,
    pub memory_allocated: Vec<u64>,
    pub disk_allocated: Vec<u64>,
    pub job_allocs: Vec<u32>,
    pub total_allocs: Vec<u32>,
}

impl NodeColumns {
    /// How many nodes there are.
    pub fn len(&self) -> usize {
        self.cpu_capacity.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.cpu_capacity.is_empty()
    }

    /// Node `i`, if there is one.
    pub fn get(&self, i: usize) -> Option<Node> {
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

    /// The nodes, in order.
    pub fn iter(&self) -> Nodes<'_> {
        // Zipped slice iterators: the compiler sees every column's bounds
        // once, so the loop is as tight as over a `Vec<Node>`.
        Nodes {
            zip: self
                .cpu_capacity
                .iter()
                .zip(&self.memory_capacity)
                .zip(&self.disk_capacity)
                .zip(&self.cpu_allocated)
                .zip(&self.memory_allocated)
                .zip(&self.disk_allocated)
                .zip(&self.job_allocs)
                .zip(&self.total_allocs),
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

    /// Whether every column has the same length.
    pub fn is_rectangular(&self) -> bool {
        let n = self.len();
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
    }
}

impl FromIterator<Node> for NodeColumns {
    fn from_iter<T: IntoIterator<Item = Node>>(nodes: T) -> Self {
        let mut columns = Self::default();
        for node in nodes {
            columns.push(node);
        }
        columns
    }
}

impl From<Vec<Node>> for NodeColumns {
    fn from(nodes: Vec<Node>) -> Self {
        nodes.into_iter().collect()
    }
}

impl<'a> IntoIterator for &'a NodeColumns {
    type Item = Node;
    type IntoIter = Nodes<'a>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

type Column<'a, T> = std::slice::Iter<'a, T>;
type Zipped<'a> = Zip<
    Zip<
        Zip<
            Zip<
                Zip<Zip<Zip<Column<'a, u32>, Column<'a, u64>>, Column<'a, u64>>, Column<'a, u32>>,
                Column<'a, u64>,
            >,
            Column<'a, u64>,
        >,
        Column<'a, u32>,
    >,
    Column<'a, u32>,
>;

/// Iterator over the nodes of [`NodeColumns`]; stops at the shortest column.
#[derive(Debug, Clone)]
pub struct Nodes<'a> {
    zip: Zipped<'a>,
}

impl Iterator for Nodes<'_> {
    type Item = Node;

    fn next(&mut self) -> Option<Node> {
        let (((((((cpu_c, mem_c), disk_c), cpu_a), mem_a), disk_a), job), total) =
            self.zip.next()?;
        Some(Node {
            capacity: Resources {
                cpu_mhz: *cpu_c,
                memory_mib: *mem_c,
                disk_mib: *disk_c,
            },
            allocated: Resources {
                cpu_mhz: *cpu_a,
                memory_mib: *mem_a,
                disk_mib: *disk_a,
            },
            job_allocs: *job,
            total_allocs: *total,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.zip.size_hint()
    }
}

impl ExactSizeIterator for Nodes<'_> {}

/// Everything a scorer needs for one placement decision.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScoreRequest {
    /// Number of this placement decision; the same again when it is replayed.
    pub placement: u64,
    /// Priority of the job being placed, 1 to 100.
    pub job_priority: u8,
    /// Resources the allocation being placed asks for.
    pub ask: Resources,
    /// The candidates; scores are returned in this order.
    pub nodes: NodeColumns,
    /// Names of the node attributes sent.
    pub attribute_names: Vec<String>,
    /// Interned attribute values.
    pub strings: Vec<String>,
    /// `nodes.len() * attribute_names.len()` ids into `strings`, row-major,
    /// [`ABSENT`] where a node lacks the attribute.
    pub attributes: Vec<u32>,
}

impl ScoreRequest {
    /// Node `node`'s value of the attribute called `name`, if it has one.
    pub fn attribute(&self, node: usize, name: &str) -> Option<&str> {
        let column = self.attribute_names.iter().position(|n| n == name)?;
        let id = *self
            .attributes
            .get(node * self.attribute_names.len() + column)?;
        self.strings
            .get(usize::try_from(id).ok()?)
            .map(String::as_str)
    }
}

/// A scorer's answer: one score per node, each made of named parts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scores {
    part_names: Vec<String>,
    scores: Vec<f64>,
    parts: Vec<f64>,
}

impl Scores {
    /// An empty answer whose scores are made of the parts `names`, with room
    /// for `nodes` nodes.
    pub fn with_parts(names: &[&str], nodes: usize) -> Self {
        Self {
            part_names: names.iter().map(|n| (*n).to_owned()).collect(),
            scores: Vec::with_capacity(nodes),
            parts: Vec::with_capacity(nodes * names.len()),
        }
    }

    /// Appends the next node's score and its parts, in the order of the names
    /// given to [`Scores::with_parts`]. Missing parts are recorded as 0 and
    /// extra ones dropped, so the answer always stays well formed.
    pub fn push(&mut self, score: f64, parts: &[f64]) {
        self.scores.push(score);
        let width = self.part_names.len();
        self.parts
            .extend((0..width).map(|i| parts.get(i).copied().unwrap_or(0.0)));
    }

    /// Names of the parts.
    pub fn part_names(&self) -> &[String] {
        &self.part_names
    }

    /// One score per node pushed.
    pub fn scores(&self) -> &[f64] {
        &self.scores
    }

    /// The parts of node `node`, in the order of [`Scores::part_names`].
    pub fn parts_of(&self, node: usize) -> &[f64] {
        let width = self.part_names.len();
        self.parts
            .get(node * width..(node + 1) * width)
            .unwrap_or(&[])
    }

    /// Takes the answer apart: part names, scores, and the row-major parts.
    pub fn into_parts(self) -> (Vec<String>, Vec<f64>, Vec<f64>) {
        (self.part_names, self.scores, self.parts)
    }
}

/// A scheduler scorer: ranks the nodes that can take an allocation.
///
/// The host has already removed every node that cannot take the allocation;
/// the scorer orders the rest. Return one score per node of
/// `request.nodes`, in order, each finite and in `[-1.0, 1.0]` (higher is
/// better), made of named parts that by convention add up to it.
pub trait Scorer {
    /// What the scorer says about itself.
    const INFO: Info;

    /// Scores every node of the request, or refuses it with a message for
    /// the operator.
    fn score(&self, request: &ScoreRequest) -> Result<Scores, String>;
}

#[cfg(target_arch = "wasm32")]
pub(crate) mod wasm {
    use super::{Info, NodeColumns, Resources, ScoreRequest, Scorer};
    use crate::bindings::exports::orch::scheduler::scorer as wit;
    use crate::bindings::orch::types::types::Resources as WitResources;

    fn resources(r: WitResources) -> Resources {
        Resources {
            cpu_mhz: r.cpu_mhz,
            memory_mib: r.memory_mib,
            disk_mib: r.disk_mib,
        }
    }

    pub fn info<S: Scorer>() -> wit::ScorerInfo {
        let Info {
            name,
            version,
            description,
        } = S::INFO;
        wit::ScorerInfo {
            name: name.to_owned(),
            version: version.to_owned(),
            description: description.to_owned(),
        }
    }

    pub fn score<S: Scorer + Default>(
        request: wit::ScoreRequest,
    ) -> Result<wit::ScoreResponse, String> {
        let c = request.nodes;
        let nodes = NodeColumns {
            cpu_capacity: c.cpu_capacity,
            memory_capacity: c.memory_capacity,
            disk_capacity: c.disk_capacity,
            cpu_allocated: c.cpu_allocated,
            memory_allocated: c.memory_allocated,
            disk_allocated: c.disk_allocated,
            job_allocs: c.job_allocs,
            total_allocs: c.total_allocs,
        };
        if !nodes.is_rectangular() {
            return Err("the host sent node columns of different lengths".to_owned());
        }
        let request = ScoreRequest {
            placement: request.placement,
            job_priority: request.job_priority,
            ask: resources(request.ask),
            nodes,
            attribute_names: request.attribute_names,
            strings: request.strings,
            attributes: request.attributes,
        };
        let (part_names, scores, parts) = S::default().score(&request)?.into_parts();
        Ok(wit::ScoreResponse {
            part_names,
            scores,
            parts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_keeps_parts_rectangular() {
        let mut s = Scores::with_parts(&["a", "b"], 2);
        s.push(0.5, &[0.25]);
        s.push(1.0, &[0.5, 0.5, 9.0]);
        assert_eq!(s.parts_of(0), &[0.25, 0.0]);
        assert_eq!(s.parts_of(1), &[0.5, 0.5]);
        assert_eq!(s.scores(), &[0.5, 1.0]);
    }

    #[test]
    fn attribute_lookup_by_name() {
        let req = ScoreRequest {
            nodes: vec![Node::default(), Node::default()].into(),
            attribute_names: vec!["os".into(), "rack".into()],
            strings: vec!["linux".into(), "r1".into()],
            attributes: vec![0, ABSENT, 0, 1],
            ..ScoreRequest::default()
        };
        assert_eq!(req.attribute(0, "os"), Some("linux"));
        assert_eq!(req.attribute(0, "rack"), None);
        assert_eq!(req.attribute(1, "rack"), Some("r1"));
        assert_eq!(req.attribute(1, "zone"), None);
        assert_eq!(req.attribute(7, "os"), None);
    }
}
