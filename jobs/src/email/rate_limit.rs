//! The process-wide limit on how fast emails are sent.
//!
//! A GCRA rate limiter from governor: one permit per send, a steady rate in emails per second and a
//! burst of the whole-number rate (at least 1). A send over the limit waits for its permit instead
//! of failing, so a busy queue slows down rather than retrying jobs. The limit is per process, so
//! each worker process has its own.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::DefaultClock;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

/// Paces email sends to a fixed rate.
#[derive(Debug)]
pub struct SendRateLimiter {
    limiter: RateLimiter<NotKeyed, InMemoryState, DefaultClock>,
}

impl SendRateLimiter {
    /// Creates a limiter for `rate` emails per second, which may be fractional (0.5 is one email
    /// every 2 seconds). The burst is the whole-number part of `rate`, or 1 when `rate` is below 1.
    ///
    /// # Panics
    ///
    /// Panics when `rate` is not a finite number above 0, or so large that one email would take
    /// less than a nanosecond. Validate the configured rate before calling this.
    pub fn per_second(rate: f64) -> SendRateLimiter {
        let quota = quota_for(rate).unwrap_or_else(|| {
            panic!("invalid email send rate {rate}: expected a finite number of emails per second above 0")
        });
        SendRateLimiter {
            limiter: RateLimiter::direct(quota),
        }
    }

    /// Waits until a send is allowed and takes its permit.
    pub async fn until_ready(&self) {
        let started = std::time::Instant::now();
        self.limiter.until_ready().await;
        crate::metrics::job_metrics().waited_since("smtp", started);
    }
}

/// Returns the quota for `rate` emails per second, or `None` for a rate that is not a finite number
/// above 0 or whose interval rounds to 0 nanoseconds.
fn quota_for(rate: f64) -> Option<Quota> {
    if !rate.is_finite() || rate <= 0.0 {
        return None;
    }
    let interval = Duration::try_from_secs_f64(1.0 / rate).ok()?;
    // The float-to-integer cast saturates, so a huge rate gives a burst of u32::MAX.
    let burst = NonZeroU32::new(rate.floor() as u32).unwrap_or(NonZeroU32::MIN);
    Some(Quota::with_period(interval)?.allow_burst(burst))
}

#[cfg(test)]
mod tests {
    use governor::clock::{Clock, FakeRelativeClock};
    use governor::middleware::NoOpMiddleware;

    use super::*;

    type FakeLimiter = RateLimiter<
        NotKeyed,
        InMemoryState,
        FakeRelativeClock,
        NoOpMiddleware<<FakeRelativeClock as Clock>::Instant>,
    >;

    fn fake_limiter(rate: f64) -> (FakeLimiter, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        let limiter = RateLimiter::direct_with_clock(quota_for(rate).unwrap(), clock.clone());
        (limiter, clock)
    }

    #[test]
    fn fractional_rate_allows_one_send_per_interval() {
        let (limiter, clock) = fake_limiter(0.5);

        assert!(limiter.check().is_ok(), "first send");
        assert!(limiter.check().is_err(), "second send right away");

        clock.advance(Duration::from_millis(1_999));
        assert!(limiter.check().is_err(), "second send before 2 s");

        clock.advance(Duration::from_millis(1));
        assert!(limiter.check().is_ok(), "second send after 2 s");
    }

    #[test]
    fn whole_rate_allows_a_burst_of_that_size() {
        let (limiter, clock) = fake_limiter(10.0);

        for send in 1..=10 {
            assert!(limiter.check().is_ok(), "send {send} of the burst");
        }
        assert!(limiter.check().is_err(), "send beyond the burst");

        clock.advance(Duration::from_millis(100));
        assert!(limiter.check().is_ok(), "send after one interval");
        assert!(limiter.check().is_err(), "second send after one interval");
    }

    #[test]
    fn quota_for_fractional_rate() {
        let quota = quota_for(2.5).unwrap();
        assert_eq!(quota.replenish_interval(), Duration::from_millis(400));
        assert_eq!(quota.burst_size().get(), 2);

        let quota = quota_for(0.25).unwrap();
        assert_eq!(quota.replenish_interval(), Duration::from_secs(4));
        assert_eq!(quota.burst_size().get(), 1);
    }

    #[test]
    fn quota_for_invalid_rates_is_none() {
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e12] {
            assert!(quota_for(rate).is_none(), "{rate}");
        }
    }

    #[test]
    fn limiter_is_not_ready_right_after_a_permit() {
        let limiter = SendRateLimiter::per_second(0.5);

        assert!(limiter.limiter.check().is_ok());
        assert!(limiter.limiter.check().is_err());
    }

    #[tokio::test]
    async fn until_ready_returns_when_a_permit_is_free() {
        let limiter = SendRateLimiter::per_second(1.0);

        limiter.until_ready().await;

        assert!(limiter.limiter.check().is_err(), "the permit was taken");
    }

    #[test]
    #[should_panic(expected = "invalid email send rate")]
    fn zero_rate_panics() {
        SendRateLimiter::per_second(0.0);
    }
}
