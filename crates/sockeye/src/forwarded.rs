//! The client's address behind reverse proxies: `Forwarded` (RFC 7239) and `X-Forwarded-For`,
//! believed only when the TCP peer is a proxy the server was told to trust.
//!
//! ```
//! use sockeye::forwarded::{client_addr, Cidr};
//! let request = sockeye::http::Request::builder()
//!     .header("x-forwarded-for", "203.0.113.7, 10.0.0.2")
//!     .body(())
//!     .unwrap();
//! let trusted: Vec<Cidr> = vec!["127.0.0.1".parse().unwrap(), "10.0.0.0/8".parse().unwrap()];
//! let peer = "127.0.0.1:5000".parse().unwrap();
//! assert_eq!(client_addr(&request, peer, &trusted), "203.0.113.7".parse::<std::net::IpAddr>().unwrap());
//! // Anyone else's headers are ignored: the peer is the client.
//! let stranger = "198.51.100.9:5000".parse().unwrap();
//! assert_eq!(client_addr(&request, stranger, &trusted), stranger.ip());
//! ```
//!
//! The rules:
//! - Nothing is trusted by default: with an empty `trusted` list the TCP peer is the client.
//! - When the peer is trusted, the hops of `Forwarded` (every `for=` of every element, in order),
//!   or of `X-Forwarded-For` if there is no `Forwarded` header, are walked from the right: the
//!   right-most hop that is not a trusted proxy is the client. Hops to its left were written by
//!   someone we do not trust and are ignored.
//! - A hop that is not an IP address (`unknown`, an obfuscated `_node`, garbage) stops the walk:
//!   the address is then the last trusted proxy seen, since nothing better can be believed.
//! - If every hop is trusted, the left-most one is the client.
//! - IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) count as IPv4.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use http::Request;
use ipnet::IpNet;

/// An IP address or a CIDR block (`127.0.0.1`, `10.0.0.0/8`, `::1`, `fd00::/8`): the one
/// matcher for trusted proxies here and for `NO_PROXY` entries in [`crate::proxy`]. An
/// [`IpNet`] that also parses a bare address (as a /32 or /128) and counts IPv4-mapped IPv6
/// addresses (`::ffff:a.b.c.d`) as IPv4, in the block and in the addresses it is asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr(IpNet);

impl Cidr {
    /// Whether `ip` is in the block (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip.to_canonical())
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let err = || format!("{s:?} is not an IP address or CIDR block (like 10.0.0.0/8)");
        let (addr, bits) = match s.split_once('/') {
            Some((addr, bits)) => (addr, Some(bits)),
            None => (s, None),
        };
        let net = addr.parse::<IpAddr>().map_err(|_| err())?.to_canonical();
        let bits = match bits {
            Some(bits) => bits.parse::<u8>().map_err(|_| err())?,
            None if net.is_ipv4() => 32,
            None => 128,
        };
        IpNet::new(net, bits).map(Cidr).map_err(|_| err())
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// The client's address: the TCP `peer`'s, unless the peer is in `trusted`, then the right-most
/// untrusted hop of `Forwarded` (or else `X-Forwarded-For`). See the module documentation.
pub fn client_addr<B>(request: &Request<B>, peer: SocketAddr, trusted: &[Cidr]) -> IpAddr {
    let peer = peer.ip().to_canonical();
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let headers = request.headers();
    let hops: Vec<Option<IpAddr>> = if headers.contains_key("forwarded") {
        headers
            .get_all("forwarded")
            .iter()
            .flat_map(|v| forwarded_for(v.to_str().unwrap_or("unknown")))
            .collect()
    } else {
        headers
            .get_all("x-forwarded-for")
            .iter()
            .flat_map(|v| {
                v.to_str()
                    .unwrap_or("unknown")
                    .split(',')
                    .map(|hop| parse_node(hop.trim()))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let mut client = peer;
    for hop in hops.iter().rev() {
        match hop {
            Some(ip) => {
                client = *ip;
                if !is_trusted(*ip) {
                    break;
                }
            }
            None => break,
        }
    }
    client
}

// The header parsing below is hand-written on purpose: it is the product (which hop to believe
// hangs on how each node is read), and it is small beside a general RFC 7239 parser.

/// The `for=` node of every element of one `Forwarded` header value, in order; `None` for a
/// node that is not an IP address (or an element without `for=`).
fn forwarded_for(value: &str) -> Vec<Option<IpAddr>> {
    split_outside_quotes(value, ',')
        .into_iter()
        .map(|element| {
            split_outside_quotes(element, ';')
                .into_iter()
                .filter_map(|pair| pair.split_once('='))
                .find(|(name, _)| name.trim().eq_ignore_ascii_case("for"))
                .and_then(|(_, node)| parse_node(&unquote(node.trim())))
        })
        .collect()
}

fn split_outside_quotes(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

fn unquote(s: &str) -> String {
    match s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                out.push(if c == '\\' {
                    chars.next().unwrap_or('\\')
                } else {
                    c
                });
            }
            out
        }
        None => s.to_owned(),
    }
}

/// `1.2.3.4`, `1.2.3.4:80`, `[2001:db8::1]`, `[2001:db8::1]:80`, and (X-Forwarded-For's habit)
/// a bare `2001:db8::1`.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Some(rest) = node.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.starts_with(':')) {
            return None;
        }
        return v6
            .parse::<Ipv6Addr>()
            .ok()
            .map(|ip| IpAddr::V6(ip).to_canonical());
    }
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    let (v4, port) = node.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    v4.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::builder();
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    fn trust(list: &[&str]) -> Vec<Cidr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    const PROXY: &str = "127.0.0.1:40000";

    #[test]
    fn nothing_is_trusted_by_default() {
        let r = request(&[
            ("x-forwarded-for", "203.0.113.7"),
            ("forwarded", "for=203.0.113.8"),
        ]);
        assert_eq!(
            client_addr(&r, PROXY.parse().unwrap(), &[]),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn an_untrusted_peer_cannot_forge_its_address() {
        let r = request(&[("x-forwarded-for", "10.1.2.3")]);
        let peer = "198.51.100.9:1234".parse().unwrap();
        assert_eq!(
            client_addr(&r, peer, &trust(&["127.0.0.1", "10.0.0.0/8"])),
            ip("198.51.100.9")
        );
    }

    #[test]
    fn the_right_most_untrusted_x_forwarded_for_hop_wins() {
        let trusted = trust(&["127.0.0.1", "10.0.0.0/8"]);
        let peer = PROXY.parse().unwrap();
        // The client forged 1.1.1.1; 203.0.113.7 connected to our first proxy, 10.0.0.2.
        let r = request(&[("x-forwarded-for", "1.1.1.1, 203.0.113.7, 10.0.0.2")]);
        assert_eq!(client_addr(&r, peer, &trusted), ip("203.0.113.7"));
        // Several header lines are one list.
        let r = request(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "203.0.113.7,10.0.0.2"),
        ]);
        assert_eq!(client_addr(&r, peer, &trusted), ip("203.0.113.7"));
        // IPv6, bracketed or not, with a port or not.
        let r = request(&[("x-forwarded-for", "2001:db8::1")]);
        assert_eq!(client_addr(&r, peer, &trusted), ip("2001:db8::1"));
        let r = request(&[("x-forwarded-for", "[2001:db8::2]:443, 203.0.113.9:80")]);
        assert_eq!(client_addr(&r, peer, &trusted), ip("203.0.113.9"));
        // Every hop trusted: the left-most.
        let r = request(&[("x-forwarded-for", "10.0.0.5, 10.0.0.2")]);
        assert_eq!(client_addr(&r, peer, &trusted), ip("10.0.0.5"));
        // No header: the proxy itself.
        assert_eq!(client_addr(&request(&[]), peer, &trusted), ip("127.0.0.1"));
    }

    #[test]
    fn an_unparsable_hop_stops_the_walk() {
        let trusted = trust(&["127.0.0.1", "10.0.0.0/8"]);
        let peer = PROXY.parse().unwrap();
        let r = request(&[("x-forwarded-for", "203.0.113.7, garbage, 10.0.0.2")]);
        assert_eq!(client_addr(&r, peer, &trusted), ip("10.0.0.2"));
        let r = request(&[("x-forwarded-for", "203.0.113.7, unknown")]);
        assert_eq!(client_addr(&r, peer, &trusted), ip("127.0.0.1"));
    }

    #[test]
    fn forwarded_rfc_7239() {
        let trusted = trust(&["127.0.0.1", "10.0.0.0/8"]);
        let peer = PROXY.parse().unwrap();
        // RFC 7239 section 4's examples, quoted IPv6 with a port, several elements.
        let r = request(&[(
            "forwarded",
            r#"for=192.0.2.43, for="[2001:db8:cafe::17]:4711";proto=https, for=10.0.0.2"#,
        )]);
        assert_eq!(client_addr(&r, peer, &trusted), ip("2001:db8:cafe::17"));
        let r = request(&[("forwarded", "for=192.0.2.60;proto=http;by=203.0.113.43")]);
        assert_eq!(client_addr(&r, peer, &trusted), ip("192.0.2.60"));
        let r = request(&[("forwarded", r#"proto=https;FOR="192.0.2.61:8080""#)]);
        assert_eq!(client_addr(&r, peer, &trusted), ip("192.0.2.61"));
        // A `,` or `;` inside quotes separates nothing.
        let r = request(&[("forwarded", r#"for=192.0.2.62;ext="a,b;c=d""#)]);
        assert_eq!(client_addr(&r, peer, &trusted), ip("192.0.2.62"));
        // Obfuscated and unknown nodes stop the walk at the last trusted hop.
        let r = request(&[("forwarded", "for=192.0.2.43, for=_hidden, for=10.0.0.2")]);
        assert_eq!(client_addr(&r, peer, &trusted), ip("10.0.0.2"));
        let r = request(&[("forwarded", "for=unknown")]);
        assert_eq!(client_addr(&r, peer, &trusted), ip("127.0.0.1"));
        // Forwarded wins over X-Forwarded-For.
        let r = request(&[
            ("forwarded", "for=192.0.2.43"),
            ("x-forwarded-for", "198.51.100.1"),
        ]);
        assert_eq!(client_addr(&r, peer, &trusted), ip("192.0.2.43"));
    }

    #[test]
    fn cidr_blocks_and_mapped_addresses() {
        let c: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(c.contains(ip("10.255.0.1")));
        assert!(!c.contains(ip("11.0.0.1")));
        assert!(c.contains(ip("::ffff:10.1.2.3")));
        let c: Cidr = "fd00::/8".parse().unwrap();
        assert!(c.contains(ip("fd12::1")));
        assert!(!c.contains(ip("fe80::1")));
        assert!("0.0.0.0/0".parse::<Cidr>().unwrap().contains(ip("1.2.3.4")));
        assert!(!"0.0.0.0/0".parse::<Cidr>().unwrap().contains(ip("::1")));
        assert_eq!(
            "::ffff:127.0.0.1".parse::<Cidr>().unwrap().to_string(),
            "127.0.0.1/32"
        );
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "localhost",
            "10.0.0.0/x",
            "10.0.0/8",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
        // A mapped peer is trusted by its IPv4 entry.
        let r = request(&[("x-forwarded-for", "203.0.113.7")]);
        let peer = "[::ffff:127.0.0.1]:1".parse().unwrap();
        assert_eq!(
            client_addr(&r, peer, &trust(&["127.0.0.1"])),
            ip("203.0.113.7")
        );
    }
}
