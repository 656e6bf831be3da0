//! The browser's address, for the control plane's login throttle.
//!
//! The control plane counts failed logins per source address, and admin-web
//! calls it from its own address: without this every sign-in through the UI
//! would count as coming from one place, and twenty wrong passwords a minute
//! from anyone would lock every admin out of the UI. So admin-web says where
//! the browser is in `x-aigw-client-ip`, which the control plane believes
//! only from the peers in its `AIGW_TRUSTED_PROXIES`.
//!
//! The browser's address is the TCP peer's, unless that peer is one of the
//! proxies in `AIGW_ADMIN_TRUSTED_PROXIES` (none by default): then it is the
//! rightmost hop of `X-Forwarded-For` that is not one of them. Hops further
//! left were written by the client itself and prove nothing.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use tonic::metadata::AsciiMetadataValue;

use crate::AppState;

/// The metadata the control plane reads the browser's address from.
pub const CLIENT_IP_METADATA: &str = "x-aigw-client-ip";

/// The browser's address; unknown only when the router runs without a
/// socket (in-process tests).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

impl ClientIp {
    /// `req` carrying the browser's address for the control plane. Whatever
    /// the browser itself sent as `x-aigw-client-ip` is never forwarded:
    /// only this value is.
    pub fn tag<T>(self, mut req: tonic::Request<T>) -> tonic::Request<T> {
        if let Some(ip) = self.0
            && let Ok(v) = ip.to_string().parse::<AsciiMetadataValue>()
        {
            req.metadata_mut().insert(CLIENT_IP_METADATA, v);
        }
        req
    }
}

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Infallible> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        Ok(ClientIp(
            peer.map(|p| client_ip(p, &parts.headers, &s.trusted_proxies)),
        ))
    }
}

/// The client's address: `peer`, or when `peer` is in `trusted`, the
/// rightmost `X-Forwarded-For` hop not in `trusted`. A hop that is not an
/// address ends the walk at the trusted hop that wrote it. The header is
/// split as bytes, so a client's non-ASCII junk in a hop left of the
/// proxy's cannot make the proxy's own entry unreadable. `trusted` holds
/// canonical addresses (IPv4-mapped IPv6 as IPv4).
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    let mut client = peer.to_canonical();
    if !trusted.contains(&client) {
        return client;
    }
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .rev();
    for hop in hops {
        let Some(ip) = parse_hop(hop) else { break };
        client = ip;
        if !trusted.contains(&ip) {
            break;
        }
    }
    client
}

/// One `X-Forwarded-For` entry: `1.2.3.4`, `2001:db8::1`, `[2001:db8::1]`,
/// or either with a port.
fn parse_hop(hop: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(hop).ok()?.trim();
    let ip = s
        .parse::<IpAddr>()
        .ok()
        .or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| s.strip_prefix('[')?.strip_suffix(']')?.parse().ok())?;
    Some(ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn xff(values: &[&[u8]]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_bytes(v).unwrap());
        }
        h
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_says() {
        let h = xff(&[b"203.0.113.9"]);
        assert_eq!(client_ip(ip("198.51.100.7"), &h, &[]), ip("198.51.100.7"));
        assert_eq!(
            client_ip(ip("198.51.100.7"), &h, &[ip("10.0.0.1")]),
            ip("198.51.100.7")
        );
        // IPv4-mapped (a dual-stack listener) is the IPv4 address.
        assert_eq!(
            client_ip(ip("::ffff:198.51.100.7"), &h, &[]),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_rightmost_untrusted_hop_is_the_client() {
        let trusted = [ip("10.0.0.1"), ip("10.0.0.2")];
        let proxy = ip("10.0.0.1");
        // The client's own claim (left) is skipped.
        let h = xff(&[b"192.0.2.1, 203.0.113.9, 10.0.0.2"]);
        assert_eq!(client_ip(proxy, &h, &trusted), ip("203.0.113.9"));
        // Several headers are one list, in order.
        let h = xff(&[b"192.0.2.1", b"203.0.113.9:4711", b"10.0.0.2"]);
        assert_eq!(client_ip(proxy, &h, &trusted), ip("203.0.113.9"));
        let h = xff(&[b"[2001:db8::7]:443"]);
        assert_eq!(client_ip(proxy, &h, &trusted), ip("2001:db8::7"));
        let h = xff(&[b"[2001:db8::7]"]);
        assert_eq!(client_ip(proxy, &h, &trusted), ip("2001:db8::7"));
        // Junk from the client left of the proxy's entry changes nothing.
        let h = xff(&[b"\xff\xfe, unknown, 203.0.113.9"]);
        assert_eq!(client_ip(proxy, &h, &trusted), ip("203.0.113.9"));
    }

    #[test]
    fn without_a_usable_hop_it_is_the_last_trusted_one() {
        let trusted = [ip("10.0.0.1"), ip("10.0.0.2")];
        let proxy = ip("10.0.0.1");
        assert_eq!(client_ip(proxy, &HeaderMap::new(), &trusted), proxy);
        assert_eq!(client_ip(proxy, &xff(&[b"unknown"]), &trusted), proxy);
        assert_eq!(
            client_ip(proxy, &xff(&[b"192.0.2.1, unknown, 10.0.0.2"]), &trusted),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn the_address_goes_in_the_metadata_the_control_plane_reads() {
        let r = ClientIp(Some(ip("2001:db8::7"))).tag(tonic::Request::new(()));
        assert_eq!(r.metadata().get(CLIENT_IP_METADATA).unwrap(), "2001:db8::7");
        let r = ClientIp(None).tag(tonic::Request::new(()));
        assert!(r.metadata().get(CLIENT_IP_METADATA).is_none());
    }
}
