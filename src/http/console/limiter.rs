//! Sign-in attempts per client address: a keyed GCRA limiter (governor), so guessing
//! operator keys through the console costs time. Kept in this one module so a general rate
//! limiter can take it over later.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Attempts an address may make at once.
pub const BURST: u32 = 10;
/// Then one attempt every this many seconds.
pub const REFILL_SECONDS: u64 = 6;

/// The console's sign-in limiter.
pub struct SignInLimiter {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
}

impl std::fmt::Debug for SignInLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInLimiter")
            .field("addresses", &self.limiter.len())
            .finish()
    }
}

impl Default for SignInLimiter {
    fn default() -> Self {
        Self::new(BURST, Duration::from_secs(REFILL_SECONDS))
    }
}

impl SignInLimiter {
    /// `burst` attempts at once, then one every `refill`.
    pub fn new(burst: u32, refill: Duration) -> Self {
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(refill)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst);
        Self {
            limiter: RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
        }
    }

    /// Counts an attempt from `address`: `Err(wait)` when it is over the limit.
    pub fn attempt(&self, address: IpAddr) -> Result<(), Duration> {
        // Forget addresses that have been quiet long enough to be back at a full burst.
        if self.limiter.len() > 10_000 {
            self.limiter.retain_recent();
        }
        self.limiter
            .check_key(&address)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

/// The client's address: the connection's peer when the server records it, otherwise one
/// shared key (every such client then shares one budget).
pub fn client_address(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_its_burst_then_waits() {
        let limiter = SignInLimiter::new(3, Duration::from_secs(60));
        let a = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let b = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
        for _ in 0..3 {
            assert!(limiter.attempt(a).is_ok());
        }
        let wait = limiter.attempt(a).unwrap_err();
        assert!(wait > Duration::from_secs(50), "{wait:?}");
        assert!(
            limiter.attempt(b).is_ok(),
            "another address has its own budget"
        );
    }
}
