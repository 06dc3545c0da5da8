//! How a client's address is keyed and matched, the same for the rate limits, the HTTP
//! server's connection caps and the webhooks' allow lists. Pure.

use std::net::IpAddr;

use ipnet::IpNet;

/// The key a client is counted under, by the rate limits and the HTTP server's connection cap:
/// its address, or its /64 for IPv6, which one host usually holds whole (and can change
/// addresses within at will). An IPv4 address mapped into IPv6 counts as IPv4.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

/// Whether `ip` is in one of `networks`. An IPv4 address that arrives mapped into IPv6
/// (`::ffff:10.1.2.3`, from a dual-stack listener) is compared as IPv4.
pub fn ip_allowed(networks: &[IpNet], ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    networks.iter().any(|net| net.contains(&ip))
}
