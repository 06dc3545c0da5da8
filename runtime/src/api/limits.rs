//! Rate limits and the API's IP allowlist.
//!
//! - Logins: per client IP and per username, so that one address cannot guess many passwords
//!   and many addresses cannot guess one user's. Checked before the password is (hashing costs
//!   CPU an attacker should not get for free).
//! - API requests: per authenticated caller (`user:alice`, `key:ci-bot`), so that one runaway
//!   script cannot starve the others.
//!
//! Limits are GCRA (`governor`), per node: with N nodes behind a balancer, a caller gets up to N
//! times the rate, which still bounds guessing. A refusal carries how long to wait, which the
//! guard sends as `Retry-After`.

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;
use serde::Deserialize;

use crate::client_addr::{client_key, ip_allowed};

/// `[limits]` in the configuration file. A rate of 0 turns that limit off.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Login attempts per minute from one IP address (burst: the same number).
    pub login_per_ip_per_minute: u32,
    /// Login attempts per minute for one username from one client address: someone guessing
    /// `admin`'s password from elsewhere does not lock `admin` out.
    pub login_per_user_per_minute: u32,
    /// Token refreshes per minute from one client address.
    pub refresh_per_ip_per_minute: u32,
    /// WebSocket connections opened per minute from one client address (a console reconnects
    /// with backoff; this only stops a loop).
    pub websocket_per_ip_per_minute: u32,
    /// Authenticated API requests per second per caller.
    pub api_per_second: u32,
    /// Requests a caller may make at once above the steady rate.
    pub api_burst: u32,
    /// Webhook requests per second to one addon on this node, once they pass the addon's
    /// authentication (burst: twice as many); beyond, 429 with `Retry-After`. One loud or
    /// hostile sender cannot take the sandbox and the writer from the others. 0: no limit.
    pub webhook_per_addon_per_second: u32,
    /// When not empty, API and WebSocket requests are answered only for client addresses in one
    /// of these networks (`10.0.0.0/8`, `192.0.2.7/32`, `::1/128`); others get 403. Webhooks
    /// have allowlists of their own, per addon.
    pub api_allow: Vec<IpNet>,
}

impl Default for LimitsConfig {
    fn default() -> LimitsConfig {
        LimitsConfig {
            login_per_ip_per_minute: 20,
            login_per_user_per_minute: 10,
            refresh_per_ip_per_minute: 60,
            websocket_per_ip_per_minute: 120,
            api_per_second: 100,
            api_burst: 400,
            webhook_per_addon_per_second: 2_000,
            api_allow: Vec::new(),
        }
    }
}

/// A refusal: the caller may try again after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub Duration);

impl RetryAfter {
    /// Whole seconds, at least 1, for the `Retry-After` header.
    pub fn seconds(self) -> u64 {
        self.0.as_secs() + u64::from(self.0.subsec_nanos() > 0)
    }
}

/// One keyed limiter, or none when its rate is 0.
struct Keyed<K: Hash + Eq + Clone>(Option<DefaultKeyedRateLimiter<K>>);

impl<K: Hash + Eq + Clone> Keyed<K> {
    fn new(quota: Option<Quota>) -> Keyed<K> {
        Keyed(quota.map(RateLimiter::keyed))
    }

    fn check(&self, key: &K) -> Result<(), RetryAfter> {
        match &self.0 {
            None => Ok(()),
            // The limiter's own clock: creating one calibrates it (CPUID, a VM exit on
            // virtual machines), which cost more than the request under a flood of refusals.
            Some(limiter) => limiter
                .check_key(key)
                .map_err(|not_until| RetryAfter(not_until.wait_time_from(limiter.clock().now()))),
        }
    }

    /// Forgets keys whose bucket is full again, so that the maps do not grow with every
    /// address ever seen.
    fn forget_idle(&self) {
        if let Some(limiter) = &self.0 {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

/// The limiters of one node, shared by every request.
pub struct Limits {
    login_ip: Keyed<IpAddr>,
    login_user: Keyed<(String, Option<IpAddr>)>,
    refresh_ip: Keyed<Option<IpAddr>>,
    websocket_ip: Keyed<Option<IpAddr>>,
    api: Keyed<String>,
    webhook_addon: Keyed<String>,
    api_allow: Vec<IpNet>,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits")
            .field("api_allow", &self.api_allow)
            .finish_non_exhaustive()
    }
}

fn per_minute(n: u32) -> Option<Quota> {
    NonZeroU32::new(n).map(Quota::per_minute)
}

impl Limits {
    pub fn new(config: &LimitsConfig) -> Limits {
        let api = NonZeroU32::new(config.api_per_second).map(|rate| {
            let burst = NonZeroU32::new(config.api_burst.max(rate.get())).unwrap_or(rate);
            Quota::per_second(rate).allow_burst(burst)
        });
        Limits {
            login_ip: Keyed::new(per_minute(config.login_per_ip_per_minute)),
            login_user: Keyed::new(per_minute(config.login_per_user_per_minute)),
            refresh_ip: Keyed::new(per_minute(config.refresh_per_ip_per_minute)),
            websocket_ip: Keyed::new(per_minute(config.websocket_per_ip_per_minute)),
            api: Keyed::new(api),
            webhook_addon: Keyed::new(NonZeroU32::new(config.webhook_per_addon_per_second).map(
                |rate| {
                    // A burst of twice the rate.
                    let burst = NonZeroU32::new(rate.get().saturating_mul(2)).unwrap_or(rate);
                    Quota::per_second(rate).allow_burst(burst)
                },
            )),
            api_allow: config.api_allow.clone(),
        }
    }

    /// A login attempt from `ip` (unknown when served without connection info) for
    /// `username`. The client's limit is charged first and always; the (user, client) limit
    /// only for a name that can be a user (`valid_name`), so made-up names do not fill its map.
    /// A refused attempt still counts against them.
    pub fn check_login(
        &self,
        ip: Option<IpAddr>,
        username: &str,
        valid_name: bool,
    ) -> Result<(), RetryAfter> {
        let ip = ip.map(client_key);
        let by_ip = ip.map_or(Ok(()), |ip| self.login_ip.check(&ip));
        let by_user = match valid_name {
            true => self.login_user.check(&(username.trim().to_lowercase(), ip)),
            false => Ok(()),
        };
        by_ip.and(by_user)
    }

    /// A token refresh from `ip`.
    pub fn check_refresh(&self, ip: Option<IpAddr>) -> Result<(), RetryAfter> {
        self.refresh_ip.check(&ip.map(client_key))
    }

    /// A WebSocket connection opened from `ip`.
    pub fn check_websocket(&self, ip: Option<IpAddr>) -> Result<(), RetryAfter> {
        self.websocket_ip.check(&ip.map(client_key))
    }

    /// An authenticated API request by `actor`.
    pub fn check_api(&self, actor: &str) -> Result<(), RetryAfter> {
        self.api.check(&actor.to_owned())
    }

    /// A webhook request to `addon` that passed the addon's authentication.
    pub fn check_webhook(&self, addon: &str) -> Result<(), RetryAfter> {
        self.webhook_addon.check(&addon.to_owned())
    }

    /// Whether the API answers a client at `ip`. An unknown address is refused when there is
    /// an allowlist: it cannot be shown to be in it.
    pub fn api_allows(&self, ip: Option<IpAddr>) -> bool {
        self.api_allow.is_empty() || ip.is_some_and(|ip| ip_allowed(&self.api_allow, ip))
    }

    /// Drops idle keys; called every minute by the server.
    pub fn forget_idle(&self) {
        self.login_ip.forget_idle();
        self.login_user.forget_idle();
        self.refresh_ip.forget_idle();
        self.websocket_ip.forget_idle();
        self.api.forget_idle();
        self.webhook_addon.forget_idle();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> LimitsConfig {
        LimitsConfig {
            login_per_ip_per_minute: 3,
            login_per_user_per_minute: 2,
            refresh_per_ip_per_minute: 2,
            websocket_per_ip_per_minute: 2,
            api_per_second: 1,
            api_burst: 2,
            webhook_per_addon_per_second: 1,
            api_allow: Vec::new(),
        }
    }

    #[test]
    fn webhooks_are_limited_per_addon() {
        let limits = Limits::new(&config());
        // A burst of twice the rate, then refused; another addon has its own allowance.
        assert!(limits.check_webhook("a").is_ok());
        assert!(limits.check_webhook("a").is_ok());
        assert!(limits.check_webhook("a").is_err());
        assert!(limits.check_webhook("b").is_ok());
        let off = Limits::new(&LimitsConfig {
            webhook_per_addon_per_second: 0,
            ..config()
        });
        assert!((0..100).all(|_| off.check_webhook("a").is_ok()));
    }

    #[test]
    fn logins_are_limited_per_user_and_client_and_per_client() {
        let limits = Limits::new(&config());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(limits.check_login(Some(a), "alice", true).is_ok());
        assert!(limits.check_login(Some(a), "Alice ", true).is_ok());
        // Two attempts for alice from a use up that pair's minute...
        let refused = limits.check_login(Some(a), "alice", true).unwrap_err();
        assert!((1..=60).contains(&refused.seconds()), "{refused:?}");
        // ...but not alice's: b may still try (an attacker at a cannot lock her out).
        assert!(limits.check_login(Some(b), "alice", true).is_ok());
        // a used its three attempts; then a is out whatever the user.
        assert!(limits.check_login(Some(a), "bob", true).is_err());
        assert!(limits.check_login(None, "dave", true).is_ok());
        // Names that cannot be users charge only the client's limit.
        let c: IpAddr = "192.0.2.3".parse().unwrap();
        for _ in 0..3 {
            assert!(limits.check_login(Some(c), "x\u{0}y", false).is_ok());
        }
        assert!(limits.check_login(Some(c), "x\u{0}y", false).is_err());
    }

    #[test]
    fn ipv6_clients_are_counted_per_64() {
        let limits = Limits::new(&config());
        let one: IpAddr = "2001:db8:0:1::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8:0:1:ffff::2".parse().unwrap();
        let other_64: IpAddr = "2001:db8:0:2::1".parse().unwrap();
        assert!(limits.check_refresh(Some(one)).is_ok());
        assert!(limits.check_refresh(Some(same_64)).is_ok());
        assert!(limits.check_refresh(Some(one)).is_err());
        assert!(limits.check_refresh(Some(other_64)).is_ok());
        assert_eq!(
            client_key("::ffff:192.0.2.7".parse().unwrap()),
            "192.0.2.7".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn api_requests_are_limited_per_caller_with_a_burst() {
        let limits = Limits::new(&config());
        assert!(limits.check_api("key:a").is_ok());
        assert!(limits.check_api("key:a").is_ok());
        assert!(limits.check_api("key:a").is_err());
        assert!(limits.check_api("user:b").is_ok());
    }

    #[test]
    fn zero_turns_a_limit_off() {
        let limits = Limits::new(&LimitsConfig {
            login_per_ip_per_minute: 0,
            login_per_user_per_minute: 0,
            refresh_per_ip_per_minute: 0,
            websocket_per_ip_per_minute: 0,
            api_per_second: 0,
            ..config()
        });
        for _ in 0..1000 {
            assert!(
                limits
                    .check_login(Some([10, 0, 0, 1].into()), "x", true)
                    .is_ok()
            );
            assert!(limits.check_refresh(Some([10, 0, 0, 1].into())).is_ok());
            assert!(limits.check_api("key:a").is_ok());
        }
    }

    #[test]
    fn the_allowlist_matches_networks_and_mapped_addresses() {
        let limits = Limits::new(&LimitsConfig {
            api_allow: vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()],
            ..config()
        });
        assert!(limits.api_allows(Some("10.20.30.40".parse().unwrap())));
        assert!(limits.api_allows(Some("::ffff:10.1.1.1".parse().unwrap())));
        assert!(limits.api_allows(Some("::1".parse().unwrap())));
        assert!(!limits.api_allows(Some("127.0.0.1".parse().unwrap())));
        assert!(!limits.api_allows(None));
        assert!(Limits::new(&config()).api_allows(None));
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(RetryAfter(Duration::from_millis(1)).seconds(), 1);
        assert_eq!(RetryAfter(Duration::from_secs(2)).seconds(), 2);
        assert_eq!(RetryAfter(Duration::from_millis(2001)).seconds(), 3);
    }
}
