//! Decision records as the store keeps them.
//!
//! A record holds every input of a placement, so it grows with the
//! candidates: at 64 it is a few KB, but with every node of a 5,000-node
//! cluster scored it is ~5,000 node ids, eight columns, the scores and the
//! parts — written at every placement. Written as JSON that took longer
//! than the placement itself. So a record is packed in two parts:
//!
//! - a JSON *header*: everything but the per-candidate arrays;
//! - the arrays in binary, little-endian, column after column.
//!
//! The placements of one plan score nearly the same candidates with nearly
//! the same inputs: the same feasible nodes (each placement starts its walk
//! somewhere else, so in another rotation), and only the nodes earlier
//! placements went to changed. So a large record refers to a **frame**,
//! another record's arrays (the first of the plan that fits), kept once in
//! `decision_frames`: it stores its rotation against the frame's candidates
//! and its arrays XOR the frame's, which are zeros but where it differs and
//! pack to almost nothing. Small records (sampled candidates) are
//! self-contained. Either way LZ4 packs the bytes, and the record read back
//! is the same [`Decision`] that was written.

use super::StoreError;
use orch_model::Decision;
use std::collections::HashMap;

/// Records with at least this many candidates share frames.
const FRAME_FROM: usize = 256;

/// The `format` of rows written here (1: the whole record as JSON, as
/// written before).
pub(super) const FORMAT: i64 = 2;
/// What follows the first byte of a packed record: the record as JSON
/// (one whose arrays do not fit the layout, which the scheduler never
/// writes), or a header and the arrays.
const JSON: u8 = 1;
const BINARY: u8 = 2;

/// A decision record packed for its row, and the columns queries filter
/// on. Packed by the scheduler worker that made the decision, in parallel
/// with the others, so the store's single writer only inserts it.
#[derive(Debug, Clone)]
pub struct PackedDecision {
    pub(super) alloc_id: String,
    pub(super) eval_id: String,
    pub(super) job_id: String,
    pub(super) time_ms: u64,
    pub(super) scorer_name: String,
    pub(super) policy: String,
    pub(super) scorer_micros: u64,
    pub(super) fallback: bool,
    pub(super) picked: Option<String>,
    /// The frame it is stored against; written with it.
    pub(super) frame: Option<std::sync::Arc<PackedFrame>>,
    pub(super) packed: Vec<u8>,
}

/// The arrays of one record that others of its plan are stored against.
#[derive(Debug)]
pub struct PackedFrame {
    pub(super) id: String,
    pub(super) packed: Vec<u8>,
}

impl PackedDecision {
    /// The allocation it placed.
    pub fn alloc_id(&self) -> &str {
        &self.alloc_id
    }

    /// The frame it is stored against, if any.
    pub(super) fn frame(&self) -> Option<&PackedFrame> {
        self.frame.as_deref()
    }
}

impl PackedFrame {
    pub(super) fn id(&self) -> &str {
        &self.id
    }
}

/// Packs the records of one plan, in placement order; large ones share
/// frames.
pub fn pack_plan(decisions: &[Decision]) -> Result<Vec<PackedDecision>, StoreError> {
    let mut out = Vec::with_capacity(decisions.len());
    let mut frame: Option<Base<'_>> = None;
    for d in decisions {
        let rotation = frame.as_ref().and_then(|f| f.rotation_of(d));
        let (base, rotation) = match (frame.as_ref(), rotation) {
            (Some(f), Some(r)) => (Some(f), r),
            _ if d.candidates.len() >= FRAME_FROM => match Base::of(d) {
                Some(base) => {
                    frame = Some(base);
                    (frame.as_ref(), 0)
                }
                // Kept whole as JSON; the frame stays for those after it.
                None => (None, 0),
            },
            _ => (None, 0),
        };
        out.push(PackedDecision {
            alloc_id: d.alloc_id.clone(),
            eval_id: d.eval_id.clone(),
            job_id: d.job_id.clone(),
            time_ms: d.time_ms,
            scorer_name: d.scorer_name.clone(),
            policy: d.policy.clone(),
            scorer_micros: d.scorer_micros,
            fallback: d.scorer_failure.is_some(),
            picked: d.picked_node().map(str::to_owned),
            frame: base.map(|f| f.packed.clone()),
            packed: pack_record(d, base.map(|f| (&f.arrays, rotation)))?,
        });
    }
    Ok(out)
}

/// A frame while its plan is packed.
struct Base<'d> {
    ids: &'d [String],
    position: HashMap<&'d str, usize>,
    arrays: Vec<u8>,
    shape: Shape,
    packed: std::sync::Arc<PackedFrame>,
}

impl<'d> Base<'d> {
    /// `None` when `d`'s arrays do not fit the layout (it is kept as JSON).
    fn of(d: &'d Decision) -> Option<Self> {
        let shape = Shape::of(d)?;
        let arrays = arrays(d, 0);
        let mut bytes = Vec::with_capacity(arrays.len() + d.candidates.len() * 40);
        put_u32(&mut bytes, d.candidates.len());
        for id in &d.candidates {
            put_u32(&mut bytes, id.len());
            bytes.extend_from_slice(id.as_bytes());
        }
        put_shape(&mut bytes, shape);
        bytes.extend_from_slice(&arrays);
        Some(Self {
            ids: &d.candidates,
            position: d
                .candidates
                .iter()
                .enumerate()
                .map(|(i, id)| (id.as_str(), i))
                .collect(),
            arrays,
            shape,
            packed: std::sync::Arc::new(PackedFrame {
                id: d.alloc_id.clone(),
                packed: lz4_flex::compress_prepend_size(&bytes),
            }),
        })
    }

    /// `r` such that `d.candidates[j]` is the frame's `(j + r) % n`th, when
    /// `d` has the frame's candidates and the shape of its arrays.
    fn rotation_of(&self, d: &Decision) -> Option<usize> {
        let n = self.ids.len();
        if d.candidates.len() != n || Shape::of(d) != Some(self.shape) {
            return None;
        }
        let r = *self.position.get(d.candidates.first()?.as_str())?;
        d.candidates
            .iter()
            .eq(self.ids[r..].iter().chain(&self.ids[..r]))
            .then_some(r)
    }
}

/// How many values per candidate each optional array has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shape {
    parts: usize,
    adjusted: bool,
}

impl Shape {
    /// `None` when an array does not have one entry (or `parts`) per
    /// candidate: such a record is kept as JSON.
    fn of(d: &Decision) -> Option<Self> {
        let n = d.candidates.len();
        let i = &d.inputs;
        let columns = [
            i.cpu_capacity.len(),
            i.memory_capacity.len(),
            i.disk_capacity.len(),
            i.cpu_allocated.len(),
            i.memory_allocated.len(),
            i.disk_allocated.len(),
            i.job_allocs.len(),
            i.total_allocs.len(),
            d.scores.len(),
        ];
        if columns.iter().any(|&len| len != n) {
            return None;
        }
        let parts = d.part_names.len();
        if d.parts.len() != n * parts {
            return None;
        }
        let adjusted = !d.host_adjustments.is_empty();
        if adjusted && d.host_adjustments.len() != n {
            return None;
        }
        Some(Self { parts, adjusted })
    }
}

/// The record `d` as its row keeps it: a JSON header and the arrays,
/// against `base` (a frame's arrays and `d`'s rotation against it) or on
/// their own. A record whose arrays do not fit the layout (which the
/// scheduler never writes) is kept whole as JSON.
fn pack_record(d: &Decision, base: Option<(&Vec<u8>, usize)>) -> Result<Vec<u8>, StoreError> {
    let Some(shape) = Shape::of(d) else {
        let mut bytes = vec![JSON];
        bytes.extend_from_slice(encode(d)?.as_bytes());
        return Ok(lz4_flex::compress_prepend_size(&bytes));
    };
    let header = encode(&header(d))?;
    let mut bytes = Vec::with_capacity(header.len() + 64);
    bytes.push(BINARY);
    put_u32(&mut bytes, header.len());
    bytes.extend_from_slice(header.as_bytes());
    put_u32(&mut bytes, d.candidates.len());
    put_shape(&mut bytes, shape);
    match base {
        Some((frame, rotation)) => {
            put_u32(&mut bytes, rotation);
            let mine = arrays(d, rotation);
            bytes.extend(mine.iter().zip(frame).map(|(a, b)| a ^ b));
        }
        None => {
            for id in &d.candidates {
                put_u32(&mut bytes, id.len());
                bytes.extend_from_slice(id.as_bytes());
            }
            bytes.extend_from_slice(&arrays(d, 0));
        }
    }
    Ok(lz4_flex::compress_prepend_size(&bytes))
}

/// The record without its per-candidate arrays (written apart). Only the
/// small fields are copied.
fn header(d: &Decision) -> Decision {
    Decision {
        alloc_id: d.alloc_id.clone(),
        eval_id: d.eval_id.clone(),
        job_id: d.job_id.clone(),
        group: d.group.clone(),
        scorer: d.scorer.clone(),
        scorer_digest: d.scorer_digest.clone(),
        scorer_name: d.scorer_name.clone(),
        policy: d.policy.clone(),
        split: d.split,
        time_ms: d.time_ms,
        scorer_failure: d.scorer_failure.clone(),
        placement: d.placement,
        snapshot_index: d.snapshot_index,
        job_priority: d.job_priority,
        ask: d.ask,
        inputs: orch_model::CandidateInputs {
            attribute_names: d.inputs.attribute_names.clone(),
            strings: d.inputs.strings.clone(),
            attributes: d.inputs.attributes.clone(),
            ..orch_model::CandidateInputs::default()
        },
        nodes_evaluated: d.nodes_evaluated,
        nodes_filtered: d.nodes_filtered.clone(),
        nodes_skipped: d.nodes_skipped,
        candidates: Vec::new(),
        scores: Vec::new(),
        host_adjustments: Vec::new(),
        host_divisor: d.host_divisor,
        part_names: d.part_names.clone(),
        parts: Vec::new(),
        pick: d.pick,
        scorer_micros: d.scorer_micros,
        total_micros: d.total_micros,
    }
}

/// A value of an array, as bytes.
trait Le: Copy + Default {
    const SIZE: usize;
    fn put(self, out: &mut Vec<u8>);
    fn get(bytes: &[u8]) -> Self;
}

impl Le for u32 {
    const SIZE: usize = 4;
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn get(bytes: &[u8]) -> Self {
        let mut a = [0; 4];
        a.copy_from_slice(bytes);
        Self::from_le_bytes(a)
    }
}

impl Le for u64 {
    const SIZE: usize = 8;
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn get(bytes: &[u8]) -> Self {
        let mut a = [0; 8];
        a.copy_from_slice(bytes);
        Self::from_le_bytes(a)
    }
}

impl Le for f64 {
    const SIZE: usize = 8;
    fn put(self, out: &mut Vec<u8>) {
        self.to_bits().put(out);
    }
    fn get(bytes: &[u8]) -> Self {
        Self::from_bits(u64::get(bytes))
    }
}

/// Writes `values` (`width` per candidate) in the frame's order: candidate
/// `j` of a record rotated by `r` sits at position `(j + r) % n`, so the
/// last `r` candidates come first.
fn put_rotated<T: Le>(out: &mut Vec<u8>, values: &[T], width: usize, r: usize) {
    // An absent array (no adjustments) is empty whatever the rotation.
    let split = values.len().saturating_sub(r * width);
    for v in values[split..].iter().chain(&values[..split]) {
        v.put(out);
    }
}

/// `d`'s arrays in the frame's order (see [`put_rotated`]), one after the
/// other.
fn arrays(d: &Decision, rotation: usize) -> Vec<u8> {
    let n = d.candidates.len();
    let i = &d.inputs;
    let parts = d.part_names.len();
    let adjusted = usize::from(!d.host_adjustments.is_empty());
    let mut out = Vec::with_capacity(n * (60 + 8 * parts + 8 * adjusted));
    put_rotated(&mut out, &i.cpu_capacity, 1, rotation);
    put_rotated(&mut out, &i.memory_capacity, 1, rotation);
    put_rotated(&mut out, &i.disk_capacity, 1, rotation);
    put_rotated(&mut out, &i.cpu_allocated, 1, rotation);
    put_rotated(&mut out, &i.memory_allocated, 1, rotation);
    put_rotated(&mut out, &i.disk_allocated, 1, rotation);
    put_rotated(&mut out, &i.job_allocs, 1, rotation);
    put_rotated(&mut out, &i.total_allocs, 1, rotation);
    put_rotated(&mut out, &d.scores, 1, rotation);
    put_rotated(&mut out, &d.parts, parts, rotation);
    put_rotated(&mut out, &d.host_adjustments, 1, rotation);
    out
}

/// A frame as read back.
pub(super) struct Frame {
    ids: Vec<String>,
    shape: Shape,
    arrays: Vec<u8>,
}

/// Reads a frame back (`id`: the record that refers to it, for errors).
pub(super) fn unpack_frame(id: &str, packed: &[u8]) -> Result<Frame, StoreError> {
    let bytes = unpack_bytes(packed).map_err(|e| corrupt(id, &e))?;
    let mut r = Reader::new(id, &bytes);
    let ids = r.ids()?;
    let shape = r.shape()?;
    Ok(Frame {
        ids,
        shape,
        arrays: r.rest().to_vec(),
    })
}

/// Reads a record back; `frame` is the one it was stored against, if any.
pub(super) fn unpack_record(
    id: &str,
    packed: &[u8],
    frame: Option<&Frame>,
) -> Result<Decision, StoreError> {
    let bytes = unpack_bytes(packed).map_err(|e| corrupt(id, &e))?;
    let mut r = Reader::new(id, &bytes);
    match r.u8()? {
        JSON => serde_json::from_slice(r.rest()).map_err(|e| corrupt(id, &e)),
        BINARY => {
            let header_len = r.u32()?;
            let mut d: Decision =
                serde_json::from_slice(r.take(header_len)?).map_err(|e| corrupt(id, &e))?;
            let n = r.u32()?;
            let shape = r.shape()?;
            match frame {
                Some(frame) => {
                    let rotation = r.u32()?;
                    if frame.ids.len() != n || frame.shape != shape || rotation >= n.max(1) {
                        return Err(corrupt(id, &"the record does not fit its frame"));
                    }
                    let xored = r.rest();
                    if xored.len() != frame.arrays.len() {
                        return Err(corrupt(id, &"the record's arrays do not fit its frame"));
                    }
                    let arrays: Vec<u8> = xored
                        .iter()
                        .zip(&frame.arrays)
                        .map(|(a, b)| a ^ b)
                        .collect();
                    d.candidates = frame.ids[rotation..]
                        .iter()
                        .chain(&frame.ids[..rotation])
                        .cloned()
                        .collect();
                    fill(&mut d, n, shape, rotation, &mut Reader::new(id, &arrays))?;
                }
                None => {
                    d.candidates = r.ids_of(n)?;
                    fill(&mut d, n, shape, 0, &mut r)?;
                }
            }
            Ok(d)
        }
        other => Err(corrupt(id, &format!("unknown record format {other}"))),
    }
}

/// Reads `n × width` values written by [`put_rotated`] back into the
/// record's order.
fn get_rotated<T: Le>(
    r: &mut Reader<'_>,
    n: usize,
    width: usize,
    rotation: usize,
) -> Result<Vec<T>, StoreError> {
    let len = n
        .checked_mul(width)
        .and_then(|v| v.checked_mul(T::SIZE))
        .ok_or_else(|| corrupt(r.id, &"its arrays' sizes overflow"))?;
    let bytes = r.take(len)?;
    let mut values: Vec<T> = bytes.chunks_exact(T::SIZE).map(T::get).collect();
    // Position k holds candidate (k - rotation) mod n: candidate 0 is at
    // position `rotation`.
    values.rotate_left(rotation * width);
    Ok(values)
}

/// Reads the arrays [`arrays`] wrote into `d`.
fn fill(
    d: &mut Decision,
    n: usize,
    shape: Shape,
    rotation: usize,
    r: &mut Reader<'_>,
) -> Result<(), StoreError> {
    let i = &mut d.inputs;
    i.cpu_capacity = get_rotated(r, n, 1, rotation)?;
    i.memory_capacity = get_rotated(r, n, 1, rotation)?;
    i.disk_capacity = get_rotated(r, n, 1, rotation)?;
    i.cpu_allocated = get_rotated(r, n, 1, rotation)?;
    i.memory_allocated = get_rotated(r, n, 1, rotation)?;
    i.disk_allocated = get_rotated(r, n, 1, rotation)?;
    i.job_allocs = get_rotated(r, n, 1, rotation)?;
    i.total_allocs = get_rotated(r, n, 1, rotation)?;
    d.scores = get_rotated(r, n, 1, rotation)?;
    d.parts = get_rotated(r, n, shape.parts, rotation)?;
    d.host_adjustments = if shape.adjusted {
        get_rotated(r, n, 1, rotation)?
    } else {
        Vec::new()
    };
    if !r.rest().is_empty() {
        return Err(corrupt(r.id, &"bytes left after the arrays"));
    }
    Ok(())
}

/// What `lz4_flex::compress_prepend_size` packed. The size it claims is
/// checked before anything is allocated for it: LZ4 never packs better than
/// 255 to 1, and no record comes near 1 GiB, so a larger claim is damage.
pub(super) fn unpack_bytes(packed: &[u8]) -> Result<Vec<u8>, String> {
    const MAX: usize = 1 << 30;
    let (size, body) = packed
        .split_first_chunk::<4>()
        .ok_or("it is shorter than its size")?;
    let size = u32::from_le_bytes(*size) as usize;
    if size > body.len().saturating_mul(255).saturating_add(16) || size > MAX {
        return Err(format!(
            "it says it unpacks to {size} bytes from {}, which LZ4 cannot",
            body.len()
        ));
    }
    lz4_flex::block::decompress(body, size).map_err(|e| e.to_string())
}

fn put_u32(out: &mut Vec<u8>, v: usize) {
    out.extend_from_slice(&u32::try_from(v).unwrap_or(u32::MAX).to_le_bytes());
}

fn put_shape(out: &mut Vec<u8>, shape: Shape) {
    put_u32(out, shape.parts);
    out.push(u8::from(shape.adjusted));
}

struct Reader<'b> {
    id: &'b str,
    bytes: &'b [u8],
}

impl<'b> Reader<'b> {
    fn new(id: &'b str, bytes: &'b [u8]) -> Self {
        Self { id, bytes }
    }

    fn take(&mut self, n: usize) -> Result<&'b [u8], StoreError> {
        if self.bytes.len() < n {
            return Err(corrupt(self.id, &"the record ends early"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn rest(&mut self) -> &'b [u8] {
        std::mem::take(&mut self.bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], StoreError> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, StoreError> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<usize, StoreError> {
        Ok(u32::from_le_bytes(self.array()?) as usize)
    }

    fn shape(&mut self) -> Result<Shape, StoreError> {
        let parts = self.u32()?;
        let adjusted = self.u8()? != 0;
        Ok(Shape { parts, adjusted })
    }

    fn ids_of(&mut self, n: usize) -> Result<Vec<String>, StoreError> {
        // Never trust a count to size an allocation: each id takes at
        // least four bytes.
        let mut ids = Vec::with_capacity(n.min(self.bytes.len() / 4));
        for _ in 0..n {
            let len = self.u32()?;
            let id = std::str::from_utf8(self.take(len)?).map_err(|e| corrupt(self.id, &e))?;
            ids.push(id.to_owned());
        }
        Ok(ids)
    }

    fn ids(&mut self) -> Result<Vec<String>, StoreError> {
        let n = self.u32()?;
        self.ids_of(n)
    }
}

fn encode<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Internal(format!("encoding a row: {e}")))
}

fn corrupt(id: &str, e: &dyn std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        detail: format!("decisions row {id:?} does not decode: {e}"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests may")]
    use super::*;

    /// A record of `n` candidates starting at `start` of `ids`, with
    /// distinct values everywhere.
    fn record(ids: &[String], start: usize, n: usize, seed: u32, parts: usize) -> Decision {
        let candidates: Vec<String> = (0..n)
            .map(|j| ids[(start + j) % ids.len()].clone())
            .collect();
        let v = |k: u32| -> Vec<u32> { (0..n as u32).map(|j| j * 7 + k + seed).collect() };
        let w = |k: u64| -> Vec<u64> { (0..n as u64).map(|j| j * 11 + k).collect() };
        let mut d: Decision = serde_json::from_value(serde_json::json!({
            "alloc_id": format!("a{seed}"), "eval_id": "e", "job_id": "j", "group": "g",
            "scorer": "s", "scorer_digest": "d", "placement": seed, "nodes_evaluated": n,
            "candidates": candidates, "scores": [], "part_names": [], "parts": [],
            "pick": (seed as usize % n.max(1)), "scorer_micros": 5, "total_micros": 9,
        }))
        .unwrap();
        d.inputs = orch_model::CandidateInputs {
            cpu_capacity: v(1),
            memory_capacity: w(2),
            disk_capacity: w(3),
            cpu_allocated: v(4),
            memory_allocated: w(5),
            disk_allocated: w(6),
            job_allocs: v(7),
            total_allocs: v(8),
            attribute_names: vec!["rack".into()],
            strings: vec!["r1".into()],
            attributes: vec![0; n],
        };
        d.scores = (0..n)
            .map(|j| j as f64 / n as f64 - f64::from(seed) / 1e3)
            .collect();
        d.part_names = (0..parts).map(|p| format!("p{p}")).collect();
        d.parts = (0..n * parts).map(|k| k as f64 * 0.5).collect();
        d.nodes_filtered = [("constraint".to_owned(), 3)].into();
        d
    }

    /// `d` walked from its `by`th candidate: each node keeps its values.
    fn rotated(d: &Decision, by: usize, alloc_id: &str) -> Decision {
        fn turn<T: Clone>(v: &[T], by: usize) -> Vec<T> {
            let mut v = v.to_vec();
            v.rotate_left(by);
            v
        }
        let mut r = d.clone();
        r.alloc_id = alloc_id.to_owned();
        r.candidates = turn(&d.candidates, by);
        let i = &mut r.inputs;
        i.cpu_capacity = turn(&d.inputs.cpu_capacity, by);
        i.memory_capacity = turn(&d.inputs.memory_capacity, by);
        i.disk_capacity = turn(&d.inputs.disk_capacity, by);
        i.cpu_allocated = turn(&d.inputs.cpu_allocated, by);
        i.memory_allocated = turn(&d.inputs.memory_allocated, by);
        i.disk_allocated = turn(&d.inputs.disk_allocated, by);
        i.job_allocs = turn(&d.inputs.job_allocs, by);
        i.total_allocs = turn(&d.inputs.total_allocs, by);
        r.scores = turn(&d.scores, by);
        r.parts = turn(&d.parts, by * d.part_names.len());
        r
    }

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{i:08x}-node")).collect()
    }

    fn read(p: &PackedDecision) -> Decision {
        let frame = p
            .frame
            .as_ref()
            .map(|f| unpack_frame(&p.alloc_id, &f.packed).unwrap());
        unpack_record(&p.alloc_id, &p.packed, frame.as_ref()).unwrap()
    }

    #[test]
    fn a_plan_of_large_records_shares_one_frame_and_reads_back_the_same() {
        let all = ids(300);
        // Every node a candidate, each placement starting elsewhere; the
        // third also changed the scores and inputs of a few nodes.
        let a = record(&all, 0, 300, 1, 2);
        // The next placement: the same nodes with the same inputs, walked
        // from node 17, the node the first went to holding a bit more.
        let mut b = rotated(&a, 17, "a2");
        b.inputs.cpu_allocated[300 - 17] += 100;
        b.scores[300 - 17] -= 0.01;
        let mut c = record(&all, 299, 300, 3, 2);
        c.inputs.cpu_allocated[5] += 500;
        c.scores[9] = -0.75;
        c.host_adjustments = vec![0.25; 300];
        c.host_adjustments[0] = -1.0;
        // One candidate fewer: its own frame.
        let d = record(&all, 3, 299, 4, 2);
        let decisions = vec![a, b, c, d];
        let packed = pack_plan(&decisions).unwrap();
        let frame = |i: usize| packed[i].frame.as_ref().map(|f| f.id.clone());
        assert_eq!(frame(0), Some("a1".to_owned()));
        assert_eq!(frame(1), frame(0));
        // Adjustments change the shape of its arrays: a frame of its own.
        assert_eq!(frame(2), Some("a3".to_owned()));
        assert_eq!(frame(3), Some("a4".to_owned()));
        for (p, d) in packed.iter().zip(&decisions) {
            assert_eq!(&read(p), d, "{}", d.alloc_id);
            assert_eq!(p.picked.as_deref(), d.picked_node());
        }
        // Stored against its frame, the second is a small fraction of it.
        assert!(
            packed[1].packed.len() * 10 < packed[0].frame.as_ref().unwrap().packed.len(),
            "{} vs {}",
            packed[1].packed.len(),
            packed[0].frame.as_ref().unwrap().packed.len()
        );
    }

    #[test]
    fn small_records_stand_alone_and_odd_ones_are_kept_as_json() {
        let all = ids(64);
        let small = record(&all, 5, 64, 1, 3);
        let none = record(&all, 0, 0, 2, 0);
        let mut odd = record(&all, 0, 10, 3, 1);
        odd.scores.pop();
        let decisions = vec![small, none, odd];
        let packed = pack_plan(&decisions).unwrap();
        for (p, d) in packed.iter().zip(&decisions) {
            assert!(p.frame.is_none());
            assert_eq!(&read(p), d);
        }
    }

    #[test]
    fn a_damaged_record_is_an_error_that_names_it() {
        let all = ids(300);
        let decisions = vec![record(&all, 0, 300, 1, 1), record(&all, 4, 300, 2, 1)];
        let packed = pack_plan(&decisions).unwrap();
        let frame = unpack_frame("a2", &packed[1].frame.as_ref().unwrap().packed).unwrap();
        // Without its frame, or with a frame of another shape.
        let mut bytes = packed[1].packed.clone();
        bytes.truncate(bytes.len() / 2);
        let e = unpack_record("a2", &bytes, Some(&frame)).unwrap_err();
        assert!(e.to_string().contains("\"a2\""), "{e}");
        let other = pack_plan(&[record(&all, 0, 300, 9, 2)]).unwrap();
        let other = unpack_frame("x", &other[0].frame.as_ref().unwrap().packed).unwrap();
        let e = unpack_record("a2", &packed[1].packed, Some(&other)).unwrap_err();
        assert!(e.to_string().contains("does not fit its frame"), "{e}");
        assert!(unpack_record("a2", b"\x01\x00\x00\x00\x07", None).is_err());
        // A size no LZ4 block can unpack to is refused before anything is
        // allocated for it.
        let e = unpack_record("a2", b"\xff\xff\xff\x7f\x00", None).unwrap_err();
        assert!(e.to_string().contains("LZ4 cannot"), "{e}");
    }
}
