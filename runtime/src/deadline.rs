//! Every wait a plugin starts in the host ends at its call's deadline.
//!
//! Epoch interruption stops wasm code, but not a host function the guest is
//! blocked in: a scorer sleeping 30 s in a 1 s budget would hold its caller
//! for 30 s. So each host function a guest can wait in knows the call's
//! deadline (kept in the [`Sandbox`], set when the call is armed) and ends
//! the call there with [`DeadlinePassed`], which `Runtime::classify` reports
//! as [`crate::PluginError::Deadline`], the same as a deadline hit in wasm.
//!
//! What can wait, with the sandbox granting nothing:
//!
//! - `wasi:io/poll`'s `poll` and `[method]pollable.block`: every WASI sleep
//!   (`std::thread::sleep`, a `monotonic-clock` subscription) ends in one of
//!   them. Both are replaced here, in every linker. They are linked through
//!   the same generated bindings as wasmtime-wasi's, so they replace its
//!   functions under the very name it registered, and an import of an older
//!   WASI 0.2 version (which the linker resolves to that name by semver)
//!   reaches them too.
//! - `wasi:io/streams`' blocking reads, writes, flushes and splices could
//!   wait, but the only streams a plugin can get are its stdio: a closed
//!   stdin, a sink stdout and an in-memory stderr, all always ready. No file
//!   (no preopened directory) and no socket (TCP, UDP and name lookup are
//!   refused before any is made) can be opened. Give a plugin a real stream
//!   and those functions need the same treatment.
//! - A driver's capabilities with a timeout the guest chooses (`process`'s
//!   `child.wait`, `containers`' `wait` and `stop`): the host is asked for at
//!   most the time left ([`clamp`]). A wait the guest asked to outlast the
//!   deadline that ends with "still running" ends the call as a deadline
//!   fault, rather than telling the guest its wait ran its course (it might
//!   act on that, e.g. kill the task, in the moment before the epoch stops
//!   it). A `stop` cut short has the host kill at the deadline; its answer
//!   ("stopped") is true either way and is passed on, and the epoch ends the
//!   call when the guest resumes after the deadline.
//! - Host calls with no timeout of their own (spawn, an artifact fetch, an
//!   image pull, the kill phase of a stop) are bounded by the host, not
//!   here: a host call cannot be abandoned half done (a spawned process
//!   nobody supervises). The call ends at the guest's first instruction
//!   after one returns past the deadline.

use crate::sandbox::Sandbox;
use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::p2::bindings::io::poll as wasi_poll;
use wasmtime_wasi::p2::bindings::sync::io::poll as sync_poll;
use wasmtime_wasi::runtime::in_tokio;

/// How a host call ends a call whose deadline passed while the guest waited
/// in it.
#[derive(Debug)]
pub(crate) struct DeadlinePassed;

impl fmt::Display for DeadlinePassed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the call's deadline passed while the plugin waited in the host")
    }
}

impl std::error::Error for DeadlinePassed {}

/// Whether `error`, what a failed call left, is its deadline passing while
/// it waited in the host.
pub(crate) fn passed_in_host(error: &wasmtime::Error) -> bool {
    error.is::<DeadlinePassed>()
}

/// The instant `wait` after `now`; a wait too long to represent as an
/// instant (centuries) ends in about a century instead.
pub(crate) fn after(now: Instant, wait: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    now.checked_add(wait)
        .or_else(|| now.checked_add(CENTURY))
        .unwrap_or(now)
}

/// What to ask the host to wait when the guest asked for `asked` and the
/// call must end at `deadline`: at most the time left. The flag says
/// whether the guest's wait was cut.
pub(crate) fn clamp(asked: Duration, deadline: Instant, now: Instant) -> (Duration, bool) {
    let left = deadline.saturating_duration_since(now);
    if asked > left {
        (left, true)
    } else {
        (asked, false)
    }
}

/// Replaces wasmtime-wasi's `wasi:io/poll` in `linker` (which must already
/// have WASI) with one whose waits end at the call's deadline.
pub(crate) fn link_bounded_poll(linker: &mut Linker<Sandbox>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let linked = sync_poll::add_to_linker::<Sandbox, BoundedPoll>(linker, bounded);
    linker.allow_shadowing(false);
    linked
}

/// Projects a [`Sandbox`] onto what a bounded poll needs.
struct BoundedPoll;

impl HasData for BoundedPoll {
    type Data<'a> = Bounded<'a>;
}

struct Bounded<'a> {
    table: &'a mut ResourceTable,
    deadline: Instant,
}

fn bounded(sandbox: &mut Sandbox) -> Bounded<'_> {
    let deadline = sandbox.deadline();
    Bounded {
        table: sandbox.table(),
        deadline,
    }
}

/// Runs `wait` (one of wasmtime-wasi's own async waits) until it is done or
/// `deadline` comes, whichever is first.
fn until<T>(
    deadline: Instant,
    wait: impl Future<Output = wasmtime::Result<T>>,
) -> wasmtime::Result<T> {
    in_tokio(async move {
        match tokio::time::timeout_at(deadline.into(), wait).await {
            Ok(done) => done,
            Err(_elapsed) => Err(DeadlinePassed.into()),
        }
    })
}

impl sync_poll::Host for Bounded<'_> {
    fn poll(&mut self, pollables: Vec<Resource<DynPollable>>) -> wasmtime::Result<Vec<u32>> {
        let table = &mut *self.table;
        until(self.deadline, wasi_poll::Host::poll(table, pollables))
    }
}

impl sync_poll::HostPollable for Bounded<'_> {
    fn ready(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<bool> {
        // Never waits: it only looks.
        sync_poll::HostPollable::ready(&mut *self.table, pollable)
    }

    fn block(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        let table = &mut *self.table;
        until(
            self.deadline,
            wasi_poll::HostPollable::block(table, pollable),
        )
    }

    fn drop(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        sync_poll::HostPollable::drop(&mut *self.table, pollable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_is_cut_to_the_time_left() {
        let now = Instant::now();
        let deadline = now + Duration::from_millis(300);
        assert_eq!(
            clamp(Duration::from_millis(100), deadline, now),
            (Duration::from_millis(100), false)
        );
        assert_eq!(
            clamp(Duration::from_millis(300), deadline, now),
            (Duration::from_millis(300), false),
            "exactly the time left is not cut"
        );
        assert_eq!(
            clamp(Duration::from_millis(u64::from(u32::MAX)), deadline, now),
            (Duration::from_millis(300), true)
        );
        // Past the deadline: nothing is left, and any wait at all is cut.
        let late = deadline + Duration::from_secs(1);
        assert_eq!(
            clamp(Duration::from_millis(1), deadline, late),
            (Duration::ZERO, true)
        );
        assert_eq!(
            clamp(Duration::ZERO, deadline, late),
            (Duration::ZERO, false)
        );
    }

    #[test]
    fn a_deadline_in_the_host_is_recognised_through_context() {
        let error = wasmtime::Error::from(DeadlinePassed).context("in wasi:io/poll.poll");
        assert!(passed_in_host(&error));
        assert!(!passed_in_host(&wasmtime::format_err!("something else")));
    }
}
