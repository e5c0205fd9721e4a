//! The one wall clock of orch: milliseconds since the Unix epoch, the unit
//! every stored time is in. It is read at the edges (a request arriving, an
//! agent's report, a worker taking an evaluation) and passed inward, so
//! nothing deeper reads a clock and tests can give any time they like.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in milliseconds since the epoch (0 for a clock set before it).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
