//! Logging a failure that repeats (an RPC node down, a websocket refused) once, not on every
//! retry: the first failure and a reminder every few minutes at WARN, the attempts between
//! them at DEBUG, and the recovery at INFO with how long it lasted. A daemon left running
//! against a dead node keeps a readable log.

use std::time::{Duration, Instant};

/// How often a failure that goes on is logged again at WARN.
pub const REMIND_EVERY: Duration = Duration::from_secs(300);

/// One repeating operation's failures (`what`: "job sweep", "listing markets", …).
#[derive(Debug)]
pub struct Outage {
    what: String,
    remind_every: Duration,
    /// When the current run of failures started, how many so far, and when last logged.
    current: Option<(Instant, u64, Instant)>,
}

/// What [`Outage::failed`] logged, for callers and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logged {
    Warn,
    Debug,
}

impl Outage {
    pub fn new(what: impl Into<String>) -> Self {
        Self::with_reminder(what, REMIND_EVERY)
    }

    pub fn with_reminder(what: impl Into<String>, remind_every: Duration) -> Self {
        Self {
            what: what.into(),
            remind_every,
            current: None,
        }
    }

    /// Records a failure and logs it if it is the first or a reminder is due.
    pub fn failed(&mut self, error: &dyn std::fmt::Display) -> Logged {
        let now = Instant::now();
        match &mut self.current {
            None => {
                self.current = Some((now, 1, now));
                tracing::warn!(error = %error, "{}: failed; retrying (repeats are logged every {} min)", self.what, self.remind_every.as_secs() / 60);
                Logged::Warn
            }
            Some((since, count, last)) => {
                *count += 1;
                if now.duration_since(*last) >= self.remind_every {
                    *last = now;
                    tracing::warn!(error = %error, attempts = *count, "{}: still failing after {} s", self.what, now.duration_since(*since).as_secs());
                    Logged::Warn
                } else {
                    tracing::debug!(error = %error, attempts = *count, "{}: failed again", self.what);
                    Logged::Debug
                }
            }
        }
    }

    /// Records a success; logs the recovery if it ends a run of failures.
    pub fn succeeded(&mut self) -> bool {
        match self.current.take() {
            Some((since, count, _)) => {
                tracing::info!(
                    attempts = count,
                    "{}: working again after {} s",
                    self.what,
                    since.elapsed().as_secs()
                );
                true
            }
            None => false,
        }
    }

    /// Whether the operation is failing now.
    pub fn is_failing(&self) -> bool {
        self.current.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failure_and_reminders_are_warnings_the_rest_debug() {
        let mut o = Outage::with_reminder("probe", Duration::from_millis(50));
        assert_eq!(o.failed(&"down"), Logged::Warn);
        for _ in 0..20 {
            assert_eq!(o.failed(&"down"), Logged::Debug);
        }
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(o.failed(&"down"), Logged::Warn);
        assert_eq!(o.failed(&"down"), Logged::Debug);
        assert!(o.is_failing());
        assert!(o.succeeded());
        assert!(!o.succeeded());
        assert_eq!(o.failed(&"down again"), Logged::Warn);
    }
}
