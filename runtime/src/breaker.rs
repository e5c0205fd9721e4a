//! A circuit breaker per plugin: a plugin that keeps faulting stops being
//! called for a while, so a scorer that always runs into its deadline costs
//! the scheduler one deadline per cooldown, not one per decision.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Trips after `threshold` faults in a row; while open, calls are refused at
/// once. After `cooldown` one call is let through: success closes the
/// breaker, another fault opens it again. A threshold of 0 never trips.
pub(crate) struct Breaker {
    threshold: u32,
    cooldown: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    faults: u32,
    open_until: Option<Instant>,
}

impl Breaker {
    pub(crate) fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold,
            cooldown,
            state: Mutex::new(State::default()),
        }
    }

    /// `Err((faults, remaining))` while the breaker is open at `now`.
    pub(crate) fn admit(&self, now: Instant) -> Result<(), (u32, Duration)> {
        let state = self.lock();
        match state.open_until {
            Some(until) if now < until => Err((state.faults, until - now)),
            _ => Ok(()),
        }
    }

    /// Records how a call that started at or before `now` ended.
    pub(crate) fn record(&self, fault: bool, now: Instant) {
        let mut state = self.lock();
        if !fault {
            *state = State::default();
            return;
        }
        state.faults = state.faults.saturating_add(1);
        if self.threshold > 0 && state.faults >= self.threshold {
            state.open_until = Some(now + self.cooldown);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_and_half_opens_after_cooldown() {
        let t0 = Instant::now();
        let b = Breaker::new(3, Duration::from_secs(10));
        for _ in 0..2 {
            b.record(true, t0);
        }
        assert!(b.admit(t0).is_ok(), "two faults are below the threshold");
        b.record(true, t0);
        assert_eq!(
            b.admit(t0 + Duration::from_secs(4)),
            Err((3, Duration::from_secs(6)))
        );
        // Cooldown over: one call goes through; a fault opens it again at once.
        let t1 = t0 + Duration::from_secs(10);
        assert!(b.admit(t1).is_ok());
        b.record(true, t1);
        assert!(b.admit(t1).is_err());
        // A success closes it and forgets the faults.
        let t2 = t1 + Duration::from_secs(10);
        b.record(false, t2);
        b.record(true, t2);
        assert!(b.admit(t2).is_ok());
    }

    #[test]
    fn a_zero_threshold_never_trips() {
        let t0 = Instant::now();
        let b = Breaker::new(0, Duration::from_secs(10));
        for _ in 0..100 {
            b.record(true, t0);
        }
        assert!(b.admit(t0).is_ok());
    }
}
