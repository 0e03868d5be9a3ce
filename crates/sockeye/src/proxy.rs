//! Proxies for the client: HTTP proxies tunnel with `CONNECT host:port` (RFC 9110 §9.3.6),
//! SOCKS5 proxies with their CONNECT command (RFC 1928, username/password auth of RFC 1929),
//! for `ws://` and `wss://` alike (as browsers do), TLS running end to end through the tunnel.
//!
//! Unless the request says otherwise ([`ClientRequest::proxy`](crate::ClientRequest::proxy),
//! [`ClientRequest::no_proxy`](crate::ClientRequest::no_proxy)), the proxy comes from the
//! environment like curl's: `https_proxy`/`HTTPS_PROXY` for `wss://`, `http_proxy`/
//! `HTTP_PROXY` for `ws://`, else `all_proxy`/`ALL_PROXY` (lowercase first), minus the hosts
//! matched by `no_proxy`/`NO_PROXY`. Credentials in the proxy URL (`http://user:pass@host:port`)
//! are sent as `Proxy-Authorization: Basic`, or to a SOCKS5 proxy as its username and password.
//! `socks5://` resolves the host name here and sends the proxy an address; `socks5h://` sends
//! the name, for the proxy to resolve (as curl does). Other schemes (`https://`, `socks4://`)
//! are errors, never a silent direct connection.

use std::fmt;
use std::net::IpAddr;

use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use url::Url;

use crate::error::{Error, Result};
use crate::forwarded::Cidr;

/// A proxy: HTTP (tunnels with CONNECT) or SOCKS5.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    kind: Kind,
    /// The host to open a TCP connection to (IPv6 without brackets).
    host: String,
    port: u16,
    /// Percent-decoded user and password.
    credentials: Option<(String, String)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Http,
    /// `remote_dns`: `socks5h://`, the proxy resolves host names.
    Socks5 {
        remote_dns: bool,
    },
}

impl fmt::Debug for Proxy {
    /// Credentials are not shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("kind", &self.kind)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("auth", &self.credentials.is_some())
            .finish()
    }
}

impl fmt::Display for Proxy {
    /// The URL without credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.kind {
            Kind::Http => "http",
            Kind::Socks5 { remote_dns: false } => "socks5",
            Kind::Socks5 { remote_dns: true } => "socks5h",
        };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

impl Proxy {
    /// Parses a proxy URL: `http://`, `socks5://` or `socks5h://`, then
    /// `[user[:password]@]host[:port]` (port 80 for http, 1080 for SOCKS when absent;
    /// `host:port` alone means `http://host:port`). User and password are percent-decoded.
    pub fn parse(url: &str) -> Result<Proxy> {
        Self::http(url)
    }

    /// The same as [`parse`](Self::parse) (named when HTTP proxies were the only kind).
    pub fn http(url: &str) -> Result<Proxy> {
        let with_scheme;
        let url = if url.contains("://") {
            url
        } else {
            with_scheme = format!("http://{url}");
            &with_scheme
        };
        let parsed =
            Url::parse(url).map_err(|e| Error::Proxy(format!("invalid proxy URL: {e}")))?;
        let (kind, default_port) = match parsed.scheme() {
            "http" => (Kind::Http, 80),
            "socks5" => (Kind::Socks5 { remote_dns: false }, 1080),
            "socks5h" => (Kind::Socks5 { remote_dns: true }, 1080),
            other => {
                return Err(Error::Proxy(format!(
                    "proxy scheme {other:?} is not supported (http://, socks5://, socks5h://)"
                )))
            }
        };
        let host = match parsed.host() {
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            Some(host) => host.to_string(),
            None => return Err(Error::Proxy("proxy URL has no host".into())),
        };
        let port = parsed.port().unwrap_or(default_port);
        let credentials = if parsed.username().is_empty() && parsed.password().is_none() {
            None
        } else {
            let user = percent_decode(parsed.username());
            let password = percent_decode(parsed.password().unwrap_or(""));
            // RFC 1929: one length byte each.
            if kind != Kind::Http && (user.len() > 255 || password.len() > 255) {
                return Err(Error::Proxy(
                    "SOCKS5 user and password are at most 255 bytes each".into(),
                ));
            }
            Some((user, password))
        };
        Ok(Proxy {
            kind,
            host,
            port,
            credentials,
        })
    }

    /// The proxy's host name or address.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The proxy's port (the scheme's default when the URL had none).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Opens a TCP connection to the proxy and asks it for a tunnel to `host:port` (`host` as
    /// in a URL: IPv6 in brackets).
    pub(crate) async fn tunnel(&self, host: &str, port: u16) -> Result<TcpStream> {
        let mut tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| Error::Proxy(format!("cannot connect to proxy {self}: {e}")))?;
        let _ = tcp.set_nodelay(true);
        if let Kind::Socks5 { remote_dns } = self.kind {
            return self.socks5_connect(tcp, host, port, remote_dns).await;
        }
        let target = format!("{host}:{port}");
        let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
        if let Some((user, password)) = &self.credentials {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            request.push_str(&format!("Proxy-Authorization: Basic {token}\r\n"));
        }
        request.push_str("\r\n");
        tcp.write_all(request.as_bytes()).await?;
        // Byte by byte: nothing past the response head may be consumed, it belongs to the tunnel.
        // Hand-written on purpose: only the status line matters, and an HTTP client crate
        // would bring a second HTTP stack to read it.
        let mut head = Vec::with_capacity(256);
        while !head.ends_with(b"\r\n\r\n") {
            if head.len() > 16 << 10 {
                return Err(Error::Proxy(format!(
                    "proxy {self} sent a response head over 16 KiB"
                )));
            }
            let mut byte = [0u8];
            if tcp.read(&mut byte).await? == 0 {
                return Err(Error::Proxy(format!(
                    "proxy {self} closed the connection before answering CONNECT {target}"
                )));
            }
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head);
        let status_line = head.lines().next().unwrap_or_default();
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        let status = parts.next().and_then(|s| s.parse::<u16>().ok());
        match status {
            Some(200..=299) if version.starts_with("HTTP/1.") => Ok(tcp),
            // 407 per RFC 9110; tinyproxy answers wrong credentials with 401.
            Some(401 | 407) => Err(Error::Proxy(format!(
                "proxy {self} requires authentication ({status_line}){}",
                if self.credentials.is_some() {
                    ": the credentials in the proxy URL were refused"
                } else {
                    ": put them in the proxy URL, http://user:password@host:port"
                }
            ))),
            _ => Err(Error::Proxy(format!(
                "proxy {self} refused CONNECT {target}: {status_line:?}"
            ))),
        }
    }

    /// RFC 1928 CONNECT to `host:port` through the proxy at the other end of `tcp`, with the
    /// RFC 1929 username and password when the URL has them (tokio-socks speaks the protocol);
    /// on success the stream is the tunnel.
    async fn socks5_connect(
        &self,
        tcp: TcpStream,
        host: &str,
        port: u16,
        remote_dns: bool,
    ) -> Result<TcpStream> {
        use tokio_socks::tcp::Socks5Stream;
        use tokio_socks::{Error as Socks, TargetAddr};
        let fail = |what: String| Error::Proxy(format!("SOCKS5 proxy {self}: {what}"));
        // The destination: an address, or for socks5h a name the proxy resolves.
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let target = match host.parse::<IpAddr>() {
            Ok(ip) => TargetAddr::Ip((ip, port).into()),
            Err(_) if remote_dns => TargetAddr::Domain(host.into(), port),
            Err(_) => TargetAddr::Ip(
                tokio::net::lookup_host((host, port))
                    .await
                    .map_err(|e| fail(format!("cannot resolve {host}: {e}")))?
                    .next()
                    .ok_or_else(|| fail(format!("{host} has no address")))?,
            ),
        };
        let tunnel = match &self.credentials {
            Some((user, password)) => {
                Socks5Stream::connect_with_password_and_socket(tcp, target, user, password).await
            }
            None => Socks5Stream::connect_with_socket(tcp, target).await,
        };
        tunnel.map(Socks5Stream::into_inner).map_err(|e| match e {
            Socks::PasswordAuthFailure(_) => fail("refused the username and password".into()),
            Socks::NoAcceptableAuthMethods | Socks::UnknownAuthMethod
                if self.credentials.is_none() =>
            {
                fail(
                    "requires authentication: put the credentials in the proxy URL, \
                     socks5://user:password@host:port"
                        .into(),
                )
            }
            Socks::NoAcceptableAuthMethods => {
                fail("accepts no authentication method we offer".into())
            }
            Socks::InvalidResponseVersion => fail("not a SOCKS5 server".into()),
            Socks::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                fail("closed the connection before the tunnel was open".into())
            }
            Socks::Io(e) => Error::Io(e),
            // The CONNECT reply's failure codes (general failure, host unreachable, ...).
            other => fail(format!("CONNECT {host}:{port} failed: {other}")),
        })
    }
}

/// Which proxy a request uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum ProxySetting {
    /// From the environment variables (the default).
    #[default]
    Environment,
    /// None, whatever the environment says.
    Direct,
    Explicit(Proxy),
}

impl ProxySetting {
    pub(crate) fn resolve(&self, target: &Url) -> Result<Option<Proxy>> {
        match self {
            ProxySetting::Environment => proxy_for(target, |name| std::env::var(name).ok()),
            ProxySetting::Direct => Ok(None),
            ProxySetting::Explicit(proxy) => Ok(Some(proxy.clone())),
        }
    }
}

/// The proxy the environment asks for to reach `target` (a `ws://` or `wss://` URL), with
/// `env` reading a variable: `https_proxy`, `HTTPS_PROXY` (for `wss`) or `http_proxy`,
/// `HTTP_PROXY` (for `ws`), then `all_proxy`, `ALL_PROXY`, the first one set and not empty;
/// `None` when none is set or `no_proxy`/`NO_PROXY` matches the host.
pub fn proxy_for(target: &Url, env: impl Fn(&str) -> Option<String>) -> Result<Option<Proxy>> {
    let get = |names: &[&str]| {
        names
            .iter()
            .filter_map(|name| env(name))
            .find(|v| !v.trim().is_empty())
    };
    let scheme_vars: &[&str] = match target.scheme() {
        "wss" | "https" => &["https_proxy", "HTTPS_PROXY"],
        _ => &["http_proxy", "HTTP_PROXY"],
    };
    let Some(proxy) = get(scheme_vars).or_else(|| get(&["all_proxy", "ALL_PROXY"])) else {
        return Ok(None);
    };
    if let (Some(no_proxy), Some(host)) = (get(&["no_proxy", "NO_PROXY"]), target.host()) {
        let port = target.port_or_known_default().unwrap_or(0);
        if no_proxy_matches(&no_proxy, &host, port) {
            return Ok(None);
        }
    }
    Proxy::parse(proxy.trim()).map(Some)
}

/// curl's `NO_PROXY` rules: comma-separated entries; `*` matches everything; a domain matches
/// itself and its subdomains (a leading `.` or `*.` is ignored); an IP address matches itself,
/// and `a.b.c.d/n` a CIDR block ([`Cidr`]); `entry:port` only matches that port. Hand-written:
/// behaving as curl does is the product here; the CIDR part is ipnet's.
fn no_proxy_matches(list: &str, host: &url::Host<&str>, port: u16) -> bool {
    let host_ip: Option<IpAddr> = match host {
        url::Host::Ipv4(ip) => Some((*ip).into()),
        url::Host::Ipv6(ip) => Some((*ip).into()),
        url::Host::Domain(_) => None,
    };
    let host_name = match host {
        url::Host::Domain(d) => d.trim_end_matches('.').to_ascii_lowercase(),
        _ => String::new(),
    };
    list.split([',', ' ', '\t'])
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|entry| {
            if entry == "*" {
                return true;
            }
            let (pattern, entry_port) = split_port(entry);
            if entry_port.is_some_and(|p| p != port) {
                return false;
            }
            if let Some(ip) = host_ip {
                return pattern.parse::<Cidr>().is_ok_and(|c| c.contains(ip));
            }
            let pattern = pattern
                .trim_start_matches("*.")
                .trim_start_matches('.')
                .trim_end_matches('.')
                .to_ascii_lowercase();
            !pattern.is_empty()
                && (host_name == pattern || host_name.ends_with(&format!(".{pattern}")))
        })
}

/// `host:port`, `[v6]:port`, `[v6]`, bare IPv6 (`::1`, no port), `host`.
fn split_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(rest) = entry.strip_prefix('[') {
        if let Some((ip, after)) = rest.split_once(']') {
            return (ip, after.strip_prefix(':').and_then(|p| p.parse().ok()));
        }
    }
    match entry.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => match port.parse() {
            Ok(port) => (host, Some(port)),
            Err(_) => (entry, None),
        },
        _ => (entry, None),
    }
}

/// Percent-decodes a user or password from a URL; invalid UTF-8 becomes U+FFFD.
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn pick(url: &str, vars: &[(&str, &str)]) -> Option<String> {
        proxy_for(&Url::parse(url).unwrap(), env(vars))
            .unwrap()
            .map(|p| p.to_string())
    }

    #[test]
    fn parses_proxy_urls_with_credentials() {
        let p = Proxy::http("http://us%40er:p%3Ass@proxy.example:3128").unwrap();
        assert_eq!((p.host(), p.port()), ("proxy.example", 3128));
        assert_eq!(p.credentials, Some(("us@er".into(), "p:ss".into())));
        assert!(!format!("{p:?}").contains("p:ss"));
        // An escape at the very end is decoded too.
        let p = Proxy::http("http://u:pa%73@proxy.example").unwrap();
        assert_eq!(p.credentials, Some(("u".into(), "pas".into())));
        let p = Proxy::http("127.0.0.1:8888").unwrap();
        assert_eq!(
            (p.host(), p.port(), p.credentials.is_none()),
            ("127.0.0.1", 8888, true)
        );
        let p = Proxy::http("http://[::1]:3128").unwrap();
        assert_eq!(
            (p.host(), p.to_string().as_str()),
            ("::1", "http://[::1]:3128")
        );
        assert_eq!(Proxy::http("http://proxy").unwrap().port(), 80);
        let err = Proxy::parse("socks4://127.0.0.1:1080").unwrap_err();
        assert!(err.to_string().contains("not supported"), "{err}");
        let err = Proxy::parse("https://proxy.example").unwrap_err();
        assert!(err.to_string().contains("not supported"), "{err}");
    }

    #[test]
    fn parses_socks5_urls_with_and_without_remote_dns() {
        let p = Proxy::parse("socks5://u:p%40ss@127.0.0.1").unwrap();
        assert_eq!(p.kind, Kind::Socks5 { remote_dns: false });
        assert_eq!(
            (p.port(), p.to_string().as_str()),
            (1080, "socks5://127.0.0.1:1080")
        );
        assert_eq!(p.credentials, Some(("u".into(), "p@ss".into())));
        let p = Proxy::parse("socks5h://[::1]:9050").unwrap();
        assert_eq!(p.kind, Kind::Socks5 { remote_dns: true });
        assert_eq!(p.to_string(), "socks5h://[::1]:9050");
        let long = format!("socks5://{}:x@127.0.0.1", "u".repeat(256));
        assert!(Proxy::parse(&long).unwrap_err().to_string().contains("255"));
    }

    #[test]
    fn picks_the_variable_for_the_scheme_lowercase_first() {
        let vars = [
            ("https_proxy", "http://lower-s:1"),
            ("HTTPS_PROXY", "http://upper-s:2"),
            ("HTTP_PROXY", "http://upper:3"),
            ("ALL_PROXY", "http://all:4"),
        ];
        assert_eq!(
            pick("wss://example.com/", &vars).unwrap(),
            "http://lower-s:1"
        );
        assert_eq!(pick("ws://example.com/", &vars).unwrap(), "http://upper:3");
        assert_eq!(
            pick("ws://example.com/", &[("ALL_PROXY", "http://all:4")]).unwrap(),
            "http://all:4"
        );
        assert_eq!(
            pick("wss://example.com/", &[("http_proxy", "http://p:1")]),
            None,
            "http_proxy is for ws:// only"
        );
        assert_eq!(pick("wss://example.com/", &[("HTTPS_PROXY", "  ")]), None);
        assert_eq!(pick("wss://example.com/", &[]), None);
    }

    #[test]
    fn no_proxy_excludes_hosts_domains_ips_cidrs_and_ports() {
        let base = [("ALL_PROXY", "http://proxy:3128")];
        let with = |no_proxy: &str, url: &str| {
            let mut vars = base.to_vec();
            vars.push(("NO_PROXY", no_proxy));
            pick(url, &vars).is_none()
        };
        assert!(with("*", "wss://anything.example/"));
        assert!(with("example.com", "wss://example.com/"));
        assert!(with("example.com", "wss://api.Example.com/"));
        assert!(with(".example.com", "wss://api.example.com/"));
        assert!(with("*.example.com", "wss://api.example.com/"));
        assert!(!with("example.com", "wss://notexample.com/"));
        assert!(with("localhost, 127.0.0.1", "ws://127.0.0.1:8080/"));
        assert!(with("10.0.0.0/8", "ws://10.1.2.3/"));
        assert!(!with("10.0.0.0/8", "ws://11.1.2.3/"));
        assert!(with("::1", "ws://[::1]:8080/"));
        assert!(with("[::1]:8080", "ws://[::1]:8080/"));
        assert!(with("example.com:443", "wss://example.com/"));
        assert!(!with("example.com:8443", "wss://example.com/"));
        // no_proxy (lowercase) wins over NO_PROXY.
        let vars = [
            ("ALL_PROXY", "http://proxy:3128"),
            ("no_proxy", "a.example"),
            ("NO_PROXY", "b.example"),
        ];
        assert!(pick("wss://a.example/", &vars).is_none());
        assert!(pick("wss://b.example/", &vars).is_some());
    }

    #[test]
    fn unsupported_proxy_schemes_from_the_environment_are_errors() {
        let url = Url::parse("wss://example.com/").unwrap();
        let err = proxy_for(&url, env(&[("ALL_PROXY", "socks4://127.0.0.1:1080")])).unwrap_err();
        assert!(err.to_string().contains("socks4"), "{err}");
        let socks = proxy_for(&url, env(&[("HTTPS_PROXY", "socks5h://127.0.0.1:1080")])).unwrap();
        assert_eq!(socks.unwrap().to_string(), "socks5h://127.0.0.1:1080");
    }
}
