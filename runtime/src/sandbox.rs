//! The store every plugin call runs in: WASI linked but granting nothing,
//! deterministic clocks and randomness, capped output and memory.

use crate::Limits;
use crate::driver::DriverCtx;
use std::time::Duration;
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{
    Deterministic, HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder, WasiCtxView,
    WasiView,
};

/// Per-call state of a plugin store.
pub(crate) struct Sandbox {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: Limiter,
    stderr: MemoryOutputPipe,
    /// Where in `stderr` the current call's output starts.
    stderr_mark: usize,
    stderr_cap: usize,
    /// What a driver's host capabilities act on; `None` in a scorer's store,
    /// whose linker has no capabilities anyway.
    driver: Option<DriverCtx>,
}

impl Sandbox {
    /// A sandbox that grants nothing: no preopened directories, no
    /// environment, no arguments, no network, empty stdin; stdout is
    /// dropped and stderr kept (capped) for error messages; clocks are
    /// stopped and random numbers a fixed sequence, so a plugin that uses
    /// them anyway is caught by the conformance suite's determinism check
    /// rather than passing by luck.
    pub(crate) fn deny_all(limits: &Limits) -> Self {
        let stderr = MemoryOutputPipe::new(limits.output_bytes);
        let mut builder = WasiCtxBuilder::new();
        builder
            .stderr(stderr.clone())
            .wall_clock(FixedClock)
            .monotonic_clock(FixedClock)
            .secure_random(Deterministic::new(SEED.to_vec()))
            .insecure_random(Deterministic::new(SEED.to_vec()))
            .insecure_random_seed(u128::from_le_bytes(SEED))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        Self {
            wasi: builder.build(),
            table: ResourceTable::new(),
            limiter: Limiter::new(limits.memory_bytes),
            stderr,
            stderr_mark: 0,
            stderr_cap: limits.output_bytes,
            driver: None,
        }
    }

    /// Gives a driver's store what its capabilities act on. Called before
    /// the instance is made, so even a start function sees it.
    pub(crate) fn set_driver(&mut self, driver: DriverCtx) {
        self.driver = Some(driver);
    }

    /// The driver's context and the table its `child` resources live in,
    /// borrowed together for the capability implementations.
    pub(crate) fn driver_parts(&mut self) -> (Option<&mut DriverCtx>, &mut ResourceTable) {
        (self.driver.as_mut(), &mut self.table)
    }

    /// Marks the start of a call: error messages only quote what the plugin
    /// wrote from here on.
    pub(crate) fn start_call(&mut self) {
        self.stderr_mark = self.stderr.contents().len();
        if let Some(driver) = &mut self.driver {
            driver.start_call();
        }
    }

    /// Whether the instance should be retired rather than kept warm: its
    /// capped stderr buffer is more than half full, or it has grown past
    /// half its memory cap (idle instances should not hold much memory).
    pub(crate) fn worn_out(&self) -> bool {
        self.stderr.contents().len() > self.stderr_cap / 2
            || self.limiter.peak > self.limiter.cap / 2
    }

    /// The last line the plugin wrote to stderr that says something: a
    /// Rust panic's message, a Python traceback's exception. Toolchain hints
    /// (`note: run with RUST_BACKTRACE=1 …`) are skipped.
    pub(crate) fn last_stderr_line(&self) -> Option<String> {
        let bytes = self.stderr.contents();
        let text = String::from_utf8_lossy(bytes.get(self.stderr_mark..).unwrap_or_default());
        text.lines()
            .rev()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with("note: "))
            .map(|l| crate::error::printable(l, 300))
    }
}

impl WasiView for Sandbox {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Fixed bytes behind both WASI random sources. A plugin that wants
/// variety per decision should use the request's `placement` number.
const SEED: [u8; 16] = *b"orch-determinism";

/// A clock stopped at the Unix epoch (wall) and at zero (monotonic): a
/// scorer cannot make its answer depend on when it runs.
struct FixedClock;

impl HostWallClock for FixedClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FixedClock {
    fn resolution(&self) -> u64 {
        1
    }
    fn now(&self) -> u64 {
        0
    }
}

/// Caps linear memory and tables, and remembers the total and any refusal so
/// the caller can tell a memory-limit trap from any other.
pub(crate) struct Limiter {
    cap: usize,
    pub(crate) peak: usize,
    pub(crate) refused: Option<usize>,
}

/// Table elements an instance may have; generous for any toolchain's
/// function tables, small enough that a runaway table cannot hurt the host.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

impl Limiter {
    fn new(cap: usize) -> Self {
        Self {
            cap,
            peak: 0,
            refused: None,
        }
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Memories are counted together (a component may have several), and
        // they only grow, so the running total is also the peak.
        let total = self.peak.saturating_sub(current).saturating_add(desired);
        if total > self.cap {
            self.refused = Some(total);
            return Err(wasmtime::format_err!(
                "memory limit: growing to {total} bytes would pass the cap of {} bytes",
                self.cap
            ));
        }
        self.peak = self.peak.max(total);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}
