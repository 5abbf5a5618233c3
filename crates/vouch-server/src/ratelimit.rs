//! Failed verifications per key in fixed one-minute windows, in memory: one
//! SQLite node owns its data, so its counters need not be shared.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::model::Ts;

/// The window every failure limit counts in.
pub const WINDOW: Ts = 60;
const MAX_ENTRIES: usize = 100_000;

/// The start of `now`'s window.
pub fn window_start(now: Ts) -> Ts {
    now - now.rem_euclid(WINDOW)
}

/// Seconds until `now`'s window ends (at least 1), for `Retry-After`.
pub fn retry_after(now: Ts) -> u64 {
    u64::try_from(window_start(now) + WINDOW - now)
        .unwrap_or(1)
        .max(1)
}

#[derive(Debug, Default)]
pub struct RateLimiter {
    counts: Mutex<HashMap<String, (Ts, u32)>>,
}

impl RateLimiter {
    /// Records one failure for `key`; its failures in this window.
    pub fn fail(&self, key: &str, now: Ts) -> u32 {
        let window = window_start(now);
        let Ok(mut map) = self.counts.lock() else {
            return 0;
        };
        if map.len() >= MAX_ENTRIES {
            map.retain(|_, (w, _)| *w == window);
            // Still full of this minute's keys (a flood of distinct ones):
            // start over rather than grow without bound.
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
        }
        let e = map.entry(key.to_string()).or_insert((window, 0));
        if e.0 != window {
            *e = (window, 0);
        }
        e.1 = e.1.saturating_add(1);
        e.1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_key_and_window() {
        let r = RateLimiter::default();
        assert_eq!(r.fail("u", 120), 1);
        assert_eq!(r.fail("u", 130), 2);
        assert_eq!(r.fail("other", 130), 1);
        assert_eq!(r.fail("u", 180), 1);
        assert_eq!(retry_after(130), 50);
        assert_eq!(retry_after(179), 1);
        assert_eq!(retry_after(180), 60);
    }
}
