//! Rate limits (GCRA, via governor): notices per sender and per client IP (urgent notices are
//! exempt, spec 8.2), and REST receipts per user. Each replica enforces its own.

use crate::LimitSettings;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitScope {
    /// Too many notices from this sender.
    Sender,
    /// Too many notices from this client address.
    ClientIp,
    /// Too many receipts from this user.
    Receipts,
}

/// The limiters of one replica.
pub struct SendLimits {
    sender: Option<DefaultKeyedRateLimiter<i64>>,
    ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    receipts: Option<DefaultKeyedRateLimiter<i64>>,
    clock: DefaultClock,
}

fn limiter<K: std::hash::Hash + Eq + Clone>(per_second: u32, burst: u32) -> Option<DefaultKeyedRateLimiter<K>> {
    let rate = NonZeroU32::new(per_second)?;
    let burst = NonZeroU32::new(burst).unwrap_or(rate);
    Some(RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)))
}

impl SendLimits {
    /// Limiters for `settings`; a rate of 0 turns its limit off.
    pub fn new(settings: &LimitSettings) -> Self {
        Self {
            sender: limiter(settings.sender_per_second, settings.sender_burst),
            ip: limiter(settings.ip_per_second, settings.ip_burst),
            receipts: limiter(settings.receipts_per_second, settings.receipts_burst),
            clock: DefaultClock::default(),
        }
    }

    /// Takes one notice from the IP's and the sender's allowance, or says how long to wait.
    pub fn check(&self, sender: i64, ip: Option<IpAddr>) -> Result<(), (LimitScope, Duration)> {
        if let (Some(limiter), Some(ip)) = (&self.ip, ip) {
            limiter.check_key(&ip).map_err(|denied| (LimitScope::ClientIp, denied.wait_time_from(self.clock.now())))?;
        }
        if let Some(limiter) = &self.sender {
            limiter
                .check_key(&sender)
                .map_err(|denied| (LimitScope::Sender, denied.wait_time_from(self.clock.now())))?;
        }
        Ok(())
    }

    /// Takes one receipt from the user's allowance, or says how long to wait.
    pub fn check_receipt(&self, user: i64) -> Result<(), (LimitScope, Duration)> {
        match &self.receipts {
            Some(limiter) => limiter
                .check_key(&user)
                .map_err(|denied| (LimitScope::Receipts, denied.wait_time_from(self.clock.now()))),
            None => Ok(()),
        }
    }

    /// Forgets keys whose allowance is full again, so the maps do not grow without bound.
    pub fn forget_idle(&self) {
        if let Some(limiter) = &self.receipts {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        if let Some(limiter) = &self.sender {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        if let Some(limiter) = &self.ip {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sender_past_its_burst_is_told_how_long_to_wait() {
        let limits =
            SendLimits::new(&LimitSettings { sender_per_second: 1, sender_burst: 2, ..LimitSettings::default() });
        assert!(limits.check(7, None).is_ok() && limits.check(7, None).is_ok());
        let (scope, wait) = limits.check(7, None).unwrap_err();
        assert_eq!(scope, LimitScope::Sender);
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1), "{wait:?}");
        assert!(limits.check(8, None).is_ok(), "another sender has its own allowance");
    }

    #[test]
    fn one_address_is_limited_across_senders() {
        let limits = SendLimits::new(&LimitSettings { ip_per_second: 1, ip_burst: 2, ..LimitSettings::default() });
        let ip = Some("192.0.2.1".parse().unwrap());
        assert!(limits.check(1, ip).is_ok() && limits.check(2, ip).is_ok());
        assert_eq!(limits.check(3, ip).unwrap_err().0, LimitScope::ClientIp);
    }

    #[test]
    fn a_zero_rate_turns_the_limit_off() {
        let limits =
            SendLimits::new(&LimitSettings { sender_per_second: 0, ip_per_second: 0, ..LimitSettings::default() });
        for _ in 0..1000 {
            assert!(limits.check(1, Some("192.0.2.1".parse().unwrap())).is_ok());
        }
    }
}
