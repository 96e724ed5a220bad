//! When sessions start. A [`BoundarySource`] yields session boundaries: multiples of
//! the interval on the wall clock ([`WallClockBoundaries`]), or block numbers divisible
//! by the interval with that block's timestamp (the chain source). Every node of a
//! session must derive the same boundary, so the session timestamp comes from the
//! source, never from the node's own clock at the moment it notices the boundary.

use std::sync::Arc;
use std::time::Duration;

use crate::node::Clock;
use crate::peering::BoxFuture;

/// One session boundary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Boundary {
    /// The session timestamp (Unix seconds) every node uses for this session.
    pub session_timestamp: u64,
    /// The block the operator set is read at (chain mode), if any.
    pub block: Option<u64>,
}

/// Yields session boundaries, one at a time, in increasing order.
pub trait BoundarySource: Send + Sync {
    /// Waits for the next boundary after `after` (a session timestamp; 0 at start).
    /// `None` when the source is gone for good (the scheduler stops).
    fn next_boundary(&self, after: u64) -> BoxFuture<'_, Option<Boundary>>;
}

/// Every multiple of `interval_secs` of Unix time.
pub struct WallClockBoundaries {
    clock: Arc<dyn Clock>,
    interval_ms: u64,
}

impl WallClockBoundaries {
    /// Boundaries every `interval_secs` on `clock`.
    pub fn new(clock: Arc<dyn Clock>, interval_secs: u64) -> Self {
        Self {
            clock,
            interval_ms: interval_secs.max(1) * 1000,
        }
    }
}

impl BoundarySource for WallClockBoundaries {
    fn next_boundary(&self, after: u64) -> BoxFuture<'_, Option<Boundary>> {
        Box::pin(async move {
            let now = self.clock.now_ms();
            let from = now.max(after.saturating_mul(1000));
            let next = (from / self.interval_ms + 1) * self.interval_ms;
            tokio::time::sleep(Duration::from_millis(next.saturating_sub(now))).await;
            Some(Boundary {
                session_timestamp: next / 1000,
                block: None,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    struct Fixed(AtomicU64);
    impl Clock for Fixed {
        fn now_ms(&self) -> u64 {
            self.0.load(Ordering::Relaxed)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn wall_clock_boundaries_are_interval_multiples_after_the_last_one() {
        let clock = Arc::new(Fixed(AtomicU64::new(1_000_000_500)));
        let b = WallClockBoundaries::new(clock.clone(), 30);
        let first = b.next_boundary(0).await.unwrap();
        assert_eq!(first.session_timestamp, 1_000_020);
        assert_eq!(first.block, None);
        // Asked again before the clock moved past it: the one after, never the same.
        let second = b.next_boundary(first.session_timestamp).await.unwrap();
        assert_eq!(second.session_timestamp, 1_000_050);
        clock.0.store(1_000_100_000, Ordering::Relaxed);
        let third = b.next_boundary(second.session_timestamp).await.unwrap();
        assert_eq!(third.session_timestamp, 1_000_110);
    }
}
