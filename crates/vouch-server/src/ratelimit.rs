//! Counting of failed verifications per user id and per client address, in
//! fixed one-minute windows.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::model::Ts;

const WINDOW: Ts = 60;
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Default)]
pub struct RateLimiter {
    counts: Mutex<HashMap<String, (Ts, u32)>>,
}

impl RateLimiter {
    /// Seconds to wait when `key` has reached `limit` failures in this window.
    pub fn blocked(&self, key: &str, limit: u32, now: Ts) -> Option<u64> {
        let window = now - now.rem_euclid(WINDOW);
        let map = self.counts.lock().ok()?;
        match map.get(key) {
            Some((w, n)) if *w == window && *n >= limit => {
                Some(u64::try_from(window + WINDOW - now).unwrap_or(1).max(1))
            }
            _ => None,
        }
    }

    /// Records one failure for `key`.
    pub fn fail(&self, key: &str, now: Ts) {
        let window = now - now.rem_euclid(WINDOW);
        let Ok(mut map) = self.counts.lock() else {
            return;
        };
        if map.len() >= MAX_ENTRIES {
            map.retain(|_, (w, _)| *w == window);
        }
        let e = map.entry(key.to_string()).or_insert((window, 0));
        if e.0 != window {
            *e = (window, 0);
        }
        e.1 = e.1.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_limit_until_the_window_ends() {
        let r = RateLimiter::default();
        for _ in 0..3 {
            assert!(r.blocked("u", 3, 120).is_none());
            r.fail("u", 120);
        }
        assert_eq!(r.blocked("u", 3, 130), Some(50));
        assert!(r.blocked("u", 3, 180).is_none());
        assert!(r.blocked("other", 3, 130).is_none());
    }
}
