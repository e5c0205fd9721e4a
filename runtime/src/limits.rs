use serde::Deserialize;
use std::time::Duration;

/// What one plugin call may use. Every field has a safe default; the
/// operator tightens or loosens them per plugin in the config.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Linear memory one instance may grow to, in bytes (all memories together).
    pub memory_bytes: usize,
    /// Linear memory all instances of one plugin may hold together, in
    /// bytes: the warm ones kept between calls and those in calls at once.
    /// Without it the ceiling would be `memory_bytes` times the number of
    /// calls in flight (scheduler workers, tasks a driver waits on), plus
    /// the warm pool; with it, this is the plugin's ceiling whatever the
    /// concurrency. Idle warm instances are dropped to make room before a
    /// call is refused. A call refused by it is a
    /// [`crate::PluginError::MemoryLimit`] that says so.
    ///
    /// The default, 1 GiB, holds four instances at the default per-instance
    /// cap (four scheduler workers each at its full 256 MiB), or hundreds of
    /// the small instances a typical scorer or driver makes (a Rust
    /// component starts at about 1 MiB). A `memory_bytes` above it can never
    /// be reached: raise both.
    pub total_memory_bytes: usize,
    /// Wall-clock deadline of one call: epoch interruption stops wasm code
    /// at it, and any wait the plugin starts in the host (a WASI sleep or
    /// poll, a driver capability's timeout) ends at it, so a call ends
    /// within about a tick of its deadline whatever the plugin does. Host
    /// work with no timeout of its own (a driver's spawn or image pull) is
    /// bounded by the host, not by this deadline.
    #[serde(with = "millis", rename = "deadline_ms")]
    pub deadline: Duration,
    /// Fuel (roughly, wasm instructions) one call may burn. `None` leaves it
    /// unmetered; metering needs [`crate::RuntimeConfig::fuel`].
    pub fuel: Option<u64>,
    /// How much a plugin may write to stdout and stderr per call, in bytes;
    /// the rest is dropped.
    pub output_bytes: usize,
    /// How long compiling the component may take.
    #[serde(with = "millis", rename = "compile_timeout_ms")]
    pub compile_timeout: Duration,
    /// Faults in a row (traps, deadlines, limits, bad output) after which
    /// the plugin is not called for `breaker_cooldown`; 0 never stops it.
    pub breaker_threshold: u32,
    /// How long a tripped plugin is left alone before one call is tried.
    #[serde(with = "millis", rename = "breaker_cooldown_ms")]
    pub breaker_cooldown: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 256 << 20,
            total_memory_bytes: 1 << 30,
            deadline: Duration::from_secs(1),
            fuel: None,
            output_bytes: 64 << 10,
            compile_timeout: Duration::from_secs(60),
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_secs(30),
        }
    }
}

mod millis {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}
