//! Where polls may connect: the egress policy every poller applies to the address it is about to
//! dial — after DNS, so a name that resolves to the metadata service is refused like the literal
//! address would be — for declarative fetches and every I/O call of a scripted poll alike.
//!
//! A target is configured by an operator, but the connection leaves from the server, which sits
//! where an operator's own machine does not: next to the cloud metadata service, the database's
//! loopback port, other services bound to 127.0.0.1. Those addresses are refused unless the
//! configuration allows them (`[poll] allow = ["127.0.0.0/8"]`). Private (RFC 1918, ULA)
//! ranges stay reachable: that is where the devices being monitored live.
//!
//! Pure code: the pollers resolve, call [`EgressPolicy::check`] on each address and dial only one
//! that passed, so there is no window between the check and the connection for DNS to change its
//! answer.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use serde::Deserialize;

/// The AWS metadata service's IPv6 address, which sits in the unique-local range that the
/// policy otherwise leaves reachable.
const AWS_METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254);

/// `[poll]` in the configuration: what polls may reach beyond the default policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EgressPolicy {
    /// Networks polls may reach although the policy would refuse them: e.g. `127.0.0.0/8` for a
    /// device simulator on the same host, `169.254.0.0/16` for devices with link-local
    /// management addresses. Empty by default.
    pub allow: Vec<IpNet>,
}

/// A refused connection, naming the address, why, and how to allow it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the egress policy refuses {ip} ({class} address); an administrator can allow it with [poll] allow = [\"{suggested}\"]"
)]
pub struct EgressDenied {
    pub ip: IpAddr,
    pub class: &'static str,
    suggested: IpNet,
}

impl EgressPolicy {
    /// The default policy plus `nets`.
    pub fn allowing(nets: impl IntoIterator<Item = IpNet>) -> EgressPolicy {
        EgressPolicy {
            allow: nets.into_iter().collect(),
        }
    }

    /// The default policy plus loopback (`127.0.0.0/8`, `::1`): what device simulators on the
    /// same host, and the tests' peers, need.
    pub fn allowing_loopback() -> EgressPolicy {
        EgressPolicy::allowing([
            IpNet::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)), 8).expect("a valid prefix"),
            IpNet::from(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        ])
    }

    /// Whether a poll may connect to `ip`.
    pub fn check(&self, ip: IpAddr) -> Result<(), EgressDenied> {
        let Some(class) = refused_class(ip) else {
            return Ok(());
        };
        let canonical = canonical(ip);
        if self
            .allow
            .iter()
            .any(|net| net.contains(&ip) || net.contains(&canonical))
        {
            return Ok(());
        }
        Err(EgressDenied {
            ip,
            class,
            suggested: IpNet::from(canonical),
        })
    }

    /// The addresses of `candidates` a poll may connect to, in order; when there are none, the
    /// refusal of the first.
    pub fn filter<T: Copy>(
        &self,
        candidates: impl IntoIterator<Item = T>,
        ip: impl Fn(T) -> IpAddr,
    ) -> Result<Vec<T>, Option<EgressDenied>> {
        let mut allowed = Vec::new();
        let mut first_refusal = None;
        for candidate in candidates {
            match self.check(ip(candidate)) {
                Ok(()) => allowed.push(candidate),
                Err(e) => {
                    first_refusal.get_or_insert(e);
                }
            }
        }
        if allowed.is_empty() {
            Err(first_refusal)
        } else {
            Ok(allowed)
        }
    }
}

/// The IPv4 address an IPv6 address carries (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible
/// `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`, 6to4 `2002:aabb:ccdd::`), or the address itself: each
/// reaches that IPv4 host on a network that routes the form.
fn canonical(ip: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = ip else { return ip };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return IpAddr::V4(v4);
    }
    let s = v6.segments();
    let embedded_low =
        || Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    // IPv4-compatible, but not `::` and `::1`, which are IPv6's own unspecified and loopback.
    if s[..6] == [0; 6] && !(s[6] == 0 && s[7] <= 1) {
        return IpAddr::V4(embedded_low());
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return IpAddr::V4(embedded_low());
    }
    if s[0] == 0x2002 {
        return IpAddr::V4(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    ip
}

/// Why the policy refuses `ip` by default, or `None` when it does not.
fn refused_class(ip: IpAddr) -> Option<&'static str> {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            if v4.is_loopback() {
                Some("loopback")
            } else if v4.is_link_local() {
                // 169.254.169.254: every cloud's metadata service.
                Some("link-local")
            } else if v4.octets()[0] == 0 {
                // 0.0.0.0/8, "this network": Linux connects 0.0.0.0 to the local host.
                Some("unspecified")
            } else if v4.is_multicast() {
                Some("multicast")
            } else if v4.is_broadcast() {
                Some("broadcast")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if v6.is_unicast_link_local() {
                Some("link-local")
            } else if v6.is_multicast() {
                Some("multicast")
            } else if v6 == AWS_METADATA_V6 {
                Some("cloud metadata")
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(policy: &EgressPolicy, ip: &str) -> Option<&'static str> {
        policy.check(ip.parse().unwrap()).err().map(|e| e.class)
    }

    #[test]
    fn the_default_policy_refuses_the_servers_own_neighbourhood() {
        let policy = EgressPolicy::default();
        for (ip, class) in [
            ("127.0.0.1", "loopback"),
            ("127.0.0.2", "loopback"),
            ("::1", "loopback"),
            ("169.254.169.254", "link-local"),
            ("fe80::1", "link-local"),
            ("fd00:ec2::254", "cloud metadata"),
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "unspecified"),
            ("::", "unspecified"),
            ("224.0.0.1", "multicast"),
            ("ff02::1", "multicast"),
            ("255.255.255.255", "broadcast"),
            // The same hosts in IPv6 clothing.
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "link-local"),
            ("::169.254.169.254", "link-local"),
            ("64:ff9b::a9fe:a9fe", "link-local"),
            ("2002:7f00:1::", "loopback"),
            ("::ffff:0.0.0.0", "unspecified"),
        ] {
            assert_eq!(refused(&policy, ip), Some(class), "{ip}");
        }
    }

    #[test]
    fn devices_on_private_and_public_networks_are_reachable() {
        let policy = EgressPolicy::default();
        for ip in [
            "10.20.30.40",
            "172.16.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "8.8.8.8",
            "fd00::1",
            "fd00:ec2::253",
            "2001:db8::1",
            "::ffff:10.0.0.1",
        ] {
            assert_eq!(refused(&policy, ip), None, "{ip}");
        }
    }

    #[test]
    fn an_allow_entry_lets_a_network_through_in_every_form() {
        let policy = EgressPolicy::allowing(["127.0.0.0/8".parse().unwrap()]);
        assert_eq!(refused(&policy, "127.0.0.2"), None);
        assert_eq!(refused(&policy, "::ffff:127.0.0.1"), None);
        assert_eq!(refused(&policy, "::1"), Some("loopback"));
        assert_eq!(refused(&policy, "169.254.169.254"), Some("link-local"));
    }

    #[test]
    fn the_refusal_says_how_to_allow_it() {
        let e = EgressPolicy::default()
            .check("::ffff:169.254.169.254".parse().unwrap())
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "the egress policy refuses ::ffff:169.254.169.254 (link-local address); an administrator can allow it with [poll] allow = [\"169.254.169.254/32\"]"
        );
    }

    #[test]
    fn filter_keeps_the_allowed_addresses_in_order() {
        let policy = EgressPolicy::default();
        let ips: Vec<IpAddr> = ["127.0.0.1", "10.0.0.1", "::1", "10.0.0.2"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(
            policy.filter(ips.clone(), |ip| ip).unwrap(),
            vec![ips[1], ips[3]]
        );
        let refused = policy.filter([ips[0], ips[2]], |ip| ip).unwrap_err();
        assert_eq!(refused.unwrap().ip, ips[0]);
        assert!(
            policy
                .filter(Vec::<IpAddr>::new(), |ip| ip)
                .unwrap_err()
                .is_none()
        );
    }
}
