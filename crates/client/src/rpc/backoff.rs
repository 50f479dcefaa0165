//! Exponential backoff with full jitter: what every retry loop of the client (and the worker
//! built on it) waits between attempts, so a crowd of clients does not retry in lockstep.

use std::time::Duration;

use rand::Rng;

/// Delays that double from `initial` up to `max`, each drawn uniformly from `[d/2, d]`.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// The worker's default: 100 ms growing to 30 s.
    pub fn standard() -> Self {
        Self::new(Duration::from_millis(100), Duration::from_secs(30))
    }

    pub fn new(initial: Duration, max: Duration) -> Self {
        let initial = initial.max(Duration::from_millis(1));
        Self {
            initial,
            max: max.max(initial),
            next: initial,
        }
    }

    /// The next delay to wait (and doubles the one after, up to the cap).
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.next;
        self.next = (self.next * 2).min(self.max);
        let floor = ceiling / 2;
        let spread = (ceiling - floor).as_millis() as u64;
        floor + Duration::from_millis(rand::rng().random_range(0..=spread))
    }

    /// Waits the next delay.
    pub async fn wait(&mut self) {
        tokio::time::sleep(self.next_delay()).await;
    }

    /// Back to the initial delay after a success.
    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_within_jitter_and_stop_at_the_cap() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        let mut ceiling = 100u64;
        for _ in 0..10 {
            let d = b.next_delay().as_millis() as u64;
            assert!(
                d >= ceiling / 2 && d <= ceiling,
                "{d} outside [{}, {ceiling}]",
                ceiling / 2
            );
            ceiling = (ceiling * 2).min(1000);
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }
}
