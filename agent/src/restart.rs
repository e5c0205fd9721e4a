//! The restart policy of a task group, applied in place by the agent: how
//! many restarts an `interval` allows, how long to wait before each, and
//! what happens when they run out (`fail`, or `delay` until the interval
//! is over).

use orch_model::{RestartMode, RestartPolicy};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What to do after a task ended when it should not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Start it again after this long.
    Restart(Duration),
    /// No restarts left: the task is dead and failed.
    Fail,
}

/// Restarts counted in the current interval. Kept in the agent's record of
/// the allocation, so an agent restart does not hand a crashing task a
/// fresh allowance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartTracker {
    /// When the current interval began, in milliseconds since the epoch.
    pub window_start_ms: u64,
    /// Restarts within it.
    pub count: u32,
}

impl RestartTracker {
    /// Decides, at `now_ms`, what follows an unwanted end of the task.
    pub fn next(&mut self, policy: &RestartPolicy, now_ms: u64) -> Next {
        let interval = millis(policy.interval.0);
        let delay = policy.delay.0;
        if self.count == 0 || now_ms.saturating_sub(self.window_start_ms) >= interval {
            self.window_start_ms = now_ms;
            self.count = 0;
        }
        if self.count < policy.attempts {
            self.count += 1;
            return Next::Restart(delay);
        }
        match policy.mode {
            RestartMode::Fail => Next::Fail,
            RestartMode::Delay => {
                // Wait out what is left of the interval, then start a new one.
                let left = (self.window_start_ms + interval).saturating_sub(now_ms);
                self.window_start_ms = now_ms + left;
                self.count = 1;
                Next::Restart(Duration::from_millis(left).max(delay))
            }
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests may")]
    use super::*;
    use orch_model::Dur;

    fn policy(attempts: u32, interval_s: u64, delay_ms: u64, mode: RestartMode) -> RestartPolicy {
        RestartPolicy {
            attempts,
            interval: Dur::secs(interval_s),
            delay: Dur::millis(delay_ms),
            mode,
        }
    }

    #[test]
    fn fail_mode_allows_attempts_per_interval() {
        let p = policy(2, 60, 100, RestartMode::Fail);
        let mut t = RestartTracker::default();
        assert_eq!(t.next(&p, 1_000), Next::Restart(Duration::from_millis(100)));
        assert_eq!(t.next(&p, 2_000), Next::Restart(Duration::from_millis(100)));
        assert_eq!(t.next(&p, 3_000), Next::Fail);
        // A new interval brings a new allowance.
        assert_eq!(
            t.next(&p, 1_000 + 60_000),
            Next::Restart(Duration::from_millis(100))
        );
    }

    #[test]
    fn zero_attempts_fails_at_once() {
        let p = policy(0, 60, 100, RestartMode::Fail);
        assert_eq!(RestartTracker::default().next(&p, 5), Next::Fail);
    }

    #[test]
    fn delay_mode_waits_out_the_interval() {
        let p = policy(1, 10, 100, RestartMode::Delay);
        let mut t = RestartTracker::default();
        assert_eq!(t.next(&p, 0), Next::Restart(Duration::from_millis(100)));
        assert_eq!(t.next(&p, 4_000), Next::Restart(Duration::from_secs(6)));
        // The wait started a new interval with its restart used.
        assert_eq!(
            t.next(&p, 10_500),
            Next::Restart(Duration::from_millis(9_500))
        );
    }
}
