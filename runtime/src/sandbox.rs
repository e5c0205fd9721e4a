//! The store every plugin call runs in: WASI linked but granting nothing,
//! deterministic clocks and randomness, capped output and memory, and the
//! call's deadline for the host functions it may wait in.

use crate::Limits;
use crate::driver::DriverCtx;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
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
    /// When the current call must end; every wait the plugin starts in the
    /// host ends here (see `crate::deadline`).
    deadline: Instant,
}

impl Sandbox {
    /// A sandbox that grants nothing: no preopened directories, no
    /// environment, no arguments, no network, empty stdin; stdout is
    /// dropped and stderr kept (capped) for error messages; clocks are
    /// stopped and random numbers a fixed sequence, so a plugin that uses
    /// them anyway is caught by the conformance suite's determinism check
    /// rather than passing by luck.
    ///
    /// Its memory counts against `budget`, the plugin's total, until the
    /// store is dropped. The deadline is set by [`Self::set_deadline`]
    /// before each call; until then it is `limits.deadline` from now.
    pub(crate) fn deny_all(limits: &Limits, budget: Arc<MemoryBudget>, now: Instant) -> Self {
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
            limiter: Limiter::new(limits.memory_bytes, budget),
            stderr,
            stderr_mark: 0,
            stderr_cap: limits.output_bytes,
            driver: None,
            deadline: crate::deadline::after(now, limits.deadline),
        }
    }

    /// Sets when the next call (or the instantiation) must end.
    pub(crate) fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = deadline;
    }

    /// When the current call must end.
    pub(crate) fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The table WASI's and the capabilities' resources live in.
    pub(crate) fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    /// Gives a driver's store what its capabilities act on. Called before
    /// the instance is made, so even a start function sees it.
    pub(crate) fn set_driver(&mut self, driver: DriverCtx) {
        self.driver = Some(driver);
    }

    /// The driver's context, the table its `child` resources live in and
    /// the call's deadline, borrowed together for the capability
    /// implementations.
    pub(crate) fn driver_parts(&mut self) -> (Option<&mut DriverCtx>, &mut ResourceTable, Instant) {
        (self.driver.as_mut(), &mut self.table, self.deadline)
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

/// What all instances of one plugin may hold together
/// ([`Limits::total_memory_bytes`]), and what they hold now. Shared by the
/// plugin's clones and its fresh copies; every store of the plugin takes its
/// share as its memory grows and gives it back when it is dropped.
pub(crate) struct MemoryBudget {
    total: usize,
    held: AtomicUsize,
    /// The plugin's pools, whose idle instances are dropped to make room
    /// before a growth is refused.
    pools: Mutex<Vec<Weak<dyn Reclaim>>>,
}

/// Something holding idle instances that can be let go.
pub(crate) trait Reclaim: Send + Sync {
    /// Drops one idle instance, giving its memory back to the budget;
    /// `false` if there was none.
    fn drop_idle(&self) -> bool;
}

impl MemoryBudget {
    pub(crate) fn new(total: usize) -> Arc<Self> {
        Arc::new(Self {
            total,
            held: AtomicUsize::new(0),
            pools: Mutex::new(Vec::new()),
        })
    }

    /// What the plugin's instances hold now, in bytes.
    pub(crate) fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }

    /// The budget, in bytes.
    pub(crate) fn total(&self) -> usize {
        self.total
    }

    /// Lets `pool`'s idle instances be dropped when room is needed.
    pub(crate) fn watch(&self, pool: Weak<dyn Reclaim>) {
        let mut pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        pools.retain(|p| p.strong_count() > 0);
        pools.push(pool);
    }

    /// Takes `bytes` more, dropping idle instances while that would pass the
    /// total. `Err` carries what all instances would have held.
    fn take(&self, bytes: usize) -> Result<(), usize> {
        loop {
            let held = self.held();
            let after = held.saturating_add(bytes);
            if after > self.total {
                if self.drop_one_idle() {
                    continue;
                }
                return Err(after);
            }
            if self
                .held
                .compare_exchange(held, after, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return Ok(());
            }
        }
    }

    fn give_back(&self, bytes: usize) {
        // Never below zero, even if a share were given back twice.
        let _ = self
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                Some(held.saturating_sub(bytes))
            });
    }

    fn drop_one_idle(&self) -> bool {
        // Upgraded under the lock, used after it: dropping an instance gives
        // its share back, and must not wait on this lock.
        let pools: Vec<Arc<dyn Reclaim>> = {
            let mut pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
            pools.retain(|p| p.strong_count() > 0);
            pools.iter().filter_map(Weak::upgrade).collect()
        };
        pools.iter().any(|pool| pool.drop_idle())
    }
}

/// Which limit refused a growth, and what was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The instance would have passed its own cap.
    Instance { requested: usize },
    /// All the plugin's instances together would have held `together`,
    /// over its total budget of `total`.
    Plugin {
        requested: usize,
        together: usize,
        total: usize,
    },
}

/// Caps linear memory and tables, holds the instance's share of the
/// plugin's [`MemoryBudget`], and remembers the total and any refusal so the
/// caller can tell a memory-limit trap from any other.
pub(crate) struct Limiter {
    pub(crate) cap: usize,
    budget: Arc<MemoryBudget>,
    /// All memories of the instance together, which is also its share of
    /// the budget; memories only grow, so it is also the peak.
    pub(crate) peak: usize,
    /// `peak` before the last growth, to give back if that growth fails
    /// after it was allowed.
    before_growth: usize,
    pub(crate) refused: Option<Refusal>,
}

/// Table elements an instance may have; generous for any toolchain's
/// function tables, small enough that a runaway table cannot hurt the host.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

impl Limiter {
    fn new(cap: usize, budget: Arc<MemoryBudget>) -> Self {
        Self {
            cap,
            budget,
            peak: 0,
            before_growth: 0,
            refused: None,
        }
    }
}

impl Drop for Limiter {
    /// The store is gone, and its memory with it.
    fn drop(&mut self) {
        self.budget.give_back(self.peak);
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
            self.refused = Some(Refusal::Instance { requested: total });
            return Err(wasmtime::format_err!(
                "memory limit: growing to {total} bytes would pass the cap of {} bytes",
                self.cap
            ));
        }
        let more = total.saturating_sub(self.peak);
        if let Err(together) = self.budget.take(more) {
            self.refused = Some(Refusal::Plugin {
                requested: total,
                together,
                total: self.budget.total(),
            });
            return Err(wasmtime::format_err!(
                "memory limit: growing to {total} bytes would bring the plugin's instances together to {together} bytes, over its total budget of {} bytes",
                self.budget.total()
            ));
        }
        self.before_growth = self.peak;
        self.peak += more;
        Ok(true)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        // Allowed, then failed (the host had no memory to give): the share
        // taken for it goes back. The guest sees the failed `memory.grow`.
        self.budget
            .give_back(self.peak.saturating_sub(self.before_growth));
        self.peak = self.before_growth;
        Ok(())
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests may")]
    use super::*;

    const MIB: usize = 1 << 20;

    fn grow(limiter: &mut Limiter, to: usize) -> bool {
        let current = limiter.peak;
        limiter.memory_growing(current, to, None).is_ok()
    }

    #[test]
    fn instances_of_a_plugin_share_its_total_budget() {
        let budget = MemoryBudget::new(10 * MIB);
        let mut a = Limiter::new(8 * MIB, Arc::clone(&budget));
        let mut b = Limiter::new(8 * MIB, Arc::clone(&budget));
        let mut c = Limiter::new(8 * MIB, Arc::clone(&budget));
        assert!(grow(&mut a, 4 * MIB));
        assert!(grow(&mut b, 4 * MIB));
        assert_eq!(budget.held(), 8 * MIB);

        // Each is well under its own cap; together they would pass the total.
        assert!(!grow(&mut c, 4 * MIB));
        assert_eq!(
            c.refused,
            Some(Refusal::Plugin {
                requested: 4 * MIB,
                together: 12 * MIB,
                total: 10 * MIB,
            })
        );
        assert_eq!(budget.held(), 8 * MIB, "a refused growth takes nothing");

        // A dropped store gives its share back.
        drop(a);
        assert_eq!(budget.held(), 4 * MIB);
        let mut d = Limiter::new(8 * MIB, Arc::clone(&budget));
        assert!(grow(&mut d, 6 * MIB));
        assert_eq!(budget.held(), 10 * MIB);

        // The instance's own cap is checked first, and says so.
        let mut e = Limiter::new(2 * MIB, Arc::clone(&budget));
        assert!(!grow(&mut e, 3 * MIB));
        assert_eq!(e.refused, Some(Refusal::Instance { requested: 3 * MIB }));

        drop((b, c, d, e));
        assert_eq!(budget.held(), 0, "every share came back");
    }

    #[test]
    fn growth_counts_only_what_is_added_and_a_failed_growth_is_given_back() {
        let budget = MemoryBudget::new(10 * MIB);
        let mut a = Limiter::new(8 * MIB, Arc::clone(&budget));
        assert!(grow(&mut a, MIB));
        assert!(grow(&mut a, 3 * MIB));
        assert_eq!(budget.held(), 3 * MIB);
        assert!(grow(&mut a, 5 * MIB));
        a.memory_grow_failed(wasmtime::format_err!("no memory"))
            .unwrap();
        assert_eq!((a.peak, budget.held()), (3 * MIB, 3 * MIB));
    }

    /// Idle instances, as a pool holds them.
    struct Idle(Mutex<Vec<Limiter>>);

    impl Reclaim for Idle {
        fn drop_idle(&self) -> bool {
            let one = self.0.lock().unwrap().pop();
            one.is_some()
        }
    }

    #[test]
    fn idle_instances_are_dropped_to_make_room_before_a_refusal() {
        let budget = MemoryBudget::new(10 * MIB);
        let mut idle = Vec::new();
        for _ in 0..3 {
            let mut warm = Limiter::new(8 * MIB, Arc::clone(&budget));
            assert!(grow(&mut warm, 3 * MIB));
            idle.push(warm);
        }
        let pool: Arc<dyn Reclaim> = Arc::new(Idle(Mutex::new(idle)));
        budget.watch(Arc::downgrade(&pool));
        assert_eq!(budget.held(), 9 * MIB);

        let mut busy = Limiter::new(16 * MIB, Arc::clone(&budget));
        assert!(grow(&mut busy, 5 * MIB), "two idle instances made room");
        assert_eq!(budget.held(), 8 * MIB);
        assert!(grow(&mut busy, 8 * MIB), "and then the last one");
        assert_eq!(budget.held(), 8 * MIB);
        // With nothing idle left to drop, the total holds.
        assert!(!grow(&mut busy, 11 * MIB));
        assert!(matches!(busy.refused, Some(Refusal::Plugin { .. })));
    }
}
