//! The client's address behind reverse proxies.
//!
//! A request's peer is its client unless the peer is one of `http.trusted_proxies`: then the
//! forwarding header the proxies maintain (`http.forwarded_header`: `X-Forwarded-For` by
//! default, or RFC 7239 `Forwarded`) names the hops, and the client is the rightmost hop that
//! is not itself a trusted proxy. Everything left of it was written by the client and is not
//! believed. Only the configured header is read: a proxy that appends to one header passes
//! the other through untouched, so reading both would let a client choose its own address.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;

use crate::config::{ForwardedHeader, ProxyNet};

/// Hops read from the right of a forwarding header at most; any more are not looked at.
const MAX_HOPS: usize = 64;

/// How the edge finds a request's client address.
#[derive(Clone, Debug, Default)]
pub struct ClientAddressing {
    trusted: Vec<ProxyNet>,
    header: ForwardedHeader,
}

impl ClientAddressing {
    /// Trusts the forwarding `header` from peers in `trusted` (none: the peer is the client).
    pub fn new(trusted: &[ProxyNet], header: ForwardedHeader) -> ClientAddressing {
        ClientAddressing {
            trusted: trusted.to_vec(),
            header,
        }
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(ip))
    }

    /// The client's address for a request from `peer` carrying `headers`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let hops = match self.header {
            ForwardedHeader::XForwardedFor => list(headers, "x-forwarded-for", xff_hop),
            ForwardedHeader::Forwarded => list(headers, "forwarded", forwarded_hop),
        };
        let mut client = peer;
        for hop in hops.iter().rev().take(MAX_HOPS) {
            match hop {
                Some(ip) => {
                    client = ip.to_canonical();
                    if !self.trusts(client) {
                        return client;
                    }
                }
                // An unknown or obfuscated hop: the last proxy we trust is as far as we see.
                None => return client,
            }
        }
        client
    }
}

/// The comma-separated elements of every `name` header line, in order, each parsed by `hop`.
fn list(headers: &HeaderMap, name: &str, hop: fn(&str) -> Option<IpAddr>) -> Vec<Option<IpAddr>> {
    headers
        .get_all(name)
        .iter()
        .flat_map(|value| match value.to_str() {
            Ok(text) => text.split(',').map(hop).collect::<Vec<_>>(),
            Err(_) => vec![None],
        })
        .collect()
}

/// An address as hops write it: `192.0.2.7`, `192.0.2.7:4711`, `2001:db8::1`, `[2001:db8::1]:4711`.
fn address(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            text.strip_prefix('[')
                .and_then(|rest| rest.split_once(']'))
                .and_then(|(inside, _)| inside.parse::<IpAddr>().ok())
        })
}

fn xff_hop(element: &str) -> Option<IpAddr> {
    address(element)
}

/// The `for=` of one `Forwarded` element (`for=192.0.2.7;proto=https`, `for="[2001:db8::1]:80"`).
fn forwarded_hop(element: &str) -> Option<IpAddr> {
    element.split(';').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        if !key.trim().eq_ignore_ascii_case("for") {
            return None;
        }
        address(value.trim().trim_matches('"'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn behind(trusted: &[&str], header: ForwardedHeader) -> ClientAddressing {
        let nets: Vec<ProxyNet> = trusted.iter().map(|t| t.parse().unwrap()).collect();
        ClientAddressing::new(&nets, header)
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client() {
        let none = ClientAddressing::default();
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=203.0.113.9"),
        ]);
        assert_eq!(none.client(ip("10.0.0.2"), &h), ip("10.0.0.2"));
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let proxies = behind(&["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
        // The client claims 1.2.3.4; the proxy appended the address it saw.
        let h = headers(&[("x-forwarded-for", "1.2.3.4, 203.0.113.9")]);
        assert_eq!(proxies.client(ip("10.0.0.2"), &h), ip("203.0.113.9"));
        // Two proxies in a row, the header split over two lines.
        let h = headers(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-for", "203.0.113.9, 10.1.1.1"),
        ]);
        assert_eq!(proxies.client(ip("10.0.0.2"), &h), ip("203.0.113.9"));
        // From an untrusted peer the header is ignored.
        assert_eq!(proxies.client(ip("198.51.100.1"), &h), ip("198.51.100.1"));
        // No header: the proxy itself.
        assert_eq!(
            proxies.client(ip("10.0.0.2"), &HeaderMap::new()),
            ip("10.0.0.2")
        );
        // Garbage at the rightmost hop stops at the proxy.
        let h = headers(&[("x-forwarded-for", "1.2.3.4, nonsense")]);
        assert_eq!(proxies.client(ip("10.0.0.2"), &h), ip("10.0.0.2"));
        // Every hop trusted: the leftmost.
        let h = headers(&[("x-forwarded-for", "10.9.9.9, 10.1.1.1")]);
        assert_eq!(proxies.client(ip("10.0.0.2"), &h), ip("10.9.9.9"));
    }

    #[test]
    fn only_the_configured_header_is_read() {
        let xff = behind(&["10.0.0.2"], ForwardedHeader::XForwardedFor);
        let h = headers(&[
            ("forwarded", "for=1.2.3.4"),
            ("x-forwarded-for", "203.0.113.9"),
        ]);
        assert_eq!(xff.client(ip("10.0.0.2"), &h), ip("203.0.113.9"));
        let rfc = behind(&["10.0.0.2"], ForwardedHeader::Forwarded);
        let h = headers(&[
            ("x-forwarded-for", "1.2.3.4"),
            (
                "forwarded",
                "for=1.2.3.4, for=\"[2001:db8::7]:4711\";proto=https",
            ),
        ]);
        assert_eq!(rfc.client(ip("10.0.0.2"), &h), ip("2001:db8::7"));
        let h = headers(&[("forwarded", "for=unknown")]);
        assert_eq!(rfc.client(ip("10.0.0.2"), &h), ip("10.0.0.2"));
    }

    #[test]
    fn networks_parse_and_match_mapped_addresses() {
        let net: ProxyNet = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains(ip("10.200.1.1")));
        assert!(net.contains(ip("::ffff:10.200.1.1")));
        assert!(!net.contains(ip("11.0.0.1")));
        let one: ProxyNet = "192.0.2.7".parse().unwrap();
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        assert!("2001:db8::/32".parse::<ProxyNet>().is_ok());
        assert!("10.0.0.0/33".parse::<ProxyNet>().is_err());
        assert!("proxy.internal".parse::<ProxyNet>().is_err());
    }
}
