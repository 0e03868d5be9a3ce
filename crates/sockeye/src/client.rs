//! The client side: URLs, the opening handshake, `connect`.
//!
//! [`client_handshake`] over a stream you opened is always compiled; [`connect`] (TCP, proxies,
//! then TLS for `wss://` with a rustls feature) needs the `client` feature.

#[cfg(feature = "client")]
use std::time::Duration;

use bytes::BytesMut;
use sockeye_proto::handshake::{self, ClientHandshake};
use sockeye_proto::Role;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
#[cfg(feature = "client")]
use tokio::net::TcpStream;
use url::Url;

use crate::config::Config;
use crate::error::{Error, Result};
#[cfg(feature = "client")]
use crate::proxy::{Proxy, ProxySetting};
use crate::server::read_head;
use crate::socket::WebSocket;
#[cfg(feature = "client")]
use crate::stream::MaybeTlsStream;

/// What to connect to and how: URL, subprotocols, extra headers, TLS, proxy, connect timeout.
#[derive(Debug, Clone)]
pub struct ClientRequest {
    url: Url,
    pub(crate) protocols: Vec<String>,
    pub(crate) headers: Vec<(String, String)>,
    #[cfg(all(
        feature = "client",
        any(feature = "rustls-ring", feature = "rustls-aws-lc")
    ))]
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    #[cfg(feature = "client")]
    proxy: ProxySetting,
    #[cfg(feature = "client")]
    connect_timeout: Option<Duration>,
}

impl ClientRequest {
    /// A request for a `ws://` or `wss://` URL; anything else fails with [`Error::Url`].
    pub fn new(url: &str) -> Result<Self> {
        let url = Url::parse(url).map_err(|e| Error::Url(e.to_string()))?;
        match url.scheme() {
            "ws" | "wss" => {}
            other => return Err(Error::Url(format!("scheme {other:?} is not ws or wss"))),
        }
        if url.host().is_none() {
            return Err(Error::Url("no host".into()));
        }
        if url.fragment().is_some() {
            // RFC 6455 §3: "Fragment identifiers are meaningless in the context of WebSocket
            // URIs and MUST NOT be used on these URIs" (browsers throw SyntaxError).
            return Err(Error::Url("URL has a fragment".into()));
        }
        Ok(ClientRequest {
            url,
            protocols: Vec::new(),
            headers: Vec::new(),
            #[cfg(all(
                feature = "client",
                any(feature = "rustls-ring", feature = "rustls-aws-lc")
            ))]
            tls: None,
            #[cfg(feature = "client")]
            proxy: ProxySetting::default(),
            #[cfg(feature = "client")]
            connect_timeout: None,
        })
    }

    /// The TLS configuration for `wss://` (roots, client certificate), usually made with
    /// [`ClientTls::build`](crate::ClientTls::build). Without it, `wss://` trusts the bundled
    /// Mozilla roots and the platform's ([`crate::tls::default_client_config`]).
    #[cfg(all(
        feature = "client",
        any(feature = "rustls-ring", feature = "rustls-aws-lc")
    ))]
    pub fn tls(mut self, config: std::sync::Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// Tunnels through this HTTP proxy, whatever the environment says.
    #[cfg(feature = "client")]
    pub fn proxy(mut self, proxy: Proxy) -> Self {
        self.proxy = ProxySetting::Explicit(proxy);
        self
    }

    /// Connects directly, ignoring `HTTPS_PROXY` and friends.
    #[cfg(feature = "client")]
    pub fn no_proxy(mut self) -> Self {
        self.proxy = ProxySetting::Direct;
        self
    }

    /// Time allowed for the TCP connection, the proxy tunnel and the TLS handshake together
    /// (default: `Config::handshake_timeout`). The opening handshake has its own
    /// `Config::handshake_timeout` after that.
    #[cfg(feature = "client")]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Whether the URL is `wss://`.
    pub fn is_secure(&self) -> bool {
        self.url.scheme() == "wss"
    }

    /// Offers a subprotocol; call again for more, most preferred first.
    pub fn protocol(mut self, protocol: impl Into<String>) -> Self {
        self.protocols.push(protocol.into());
        self
    }

    /// Adds a request header such as `Origin` or `Authorization`. A name that is not an HTTP
    /// token, or a value with CR, LF or another control character (which would inject headers
    /// of its own), makes the connection fail with [`Error::InvalidHeader`] before anything is
    /// sent.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub(crate) fn check_headers(&self) -> Result<()> {
        for (name, value) in &self.headers {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(Error::InvalidHeader(format!(
                    "invalid header name {name:?}"
                )));
            }
            if http::HeaderValue::from_str(value).is_err() {
                return Err(Error::InvalidHeader(format!(
                    "invalid value for header {name}: {value:?}"
                )));
            }
        }
        Ok(())
    }

    /// The URL being connected to.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// A request from an `http::Request`: its URI (`ws://` or `wss://`) and headers, such as
    /// `Authorization` or `Cookie`. A `Sec-WebSocket-Protocol` header becomes the offered
    /// subprotocols; the handshake's own headers (`Upgrade`, `Sec-WebSocket-Key`, …) are made
    /// by Sockeye and ignored here.
    pub fn from_request<B>(request: &http::Request<B>) -> Result<Self> {
        let mut out = ClientRequest::new(&request.uri().to_string())?;
        for (name, value) in request.headers() {
            let value = value
                .to_str()
                .map_err(|_| Error::InvalidHeader(format!("header {name} is not visible ASCII")))?;
            if name == "sec-websocket-protocol" {
                out.protocols.extend(
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                        .map(str::to_owned),
                );
            } else {
                out.headers
                    .push((name.as_str().to_owned(), value.to_owned()));
            }
        }
        Ok(out)
    }

    #[cfg(feature = "client")]
    fn port(&self) -> u16 {
        self.url.port_or_known_default().unwrap_or(80)
    }

    /// The `Host` header of the request: the URL's host, and its port when the URL names one.
    pub fn host_header(&self) -> String {
        let host = self.url.host_str().unwrap_or_default();
        match self.url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        }
    }

    /// The request target of the request line: the URL's path and query.
    pub fn target(&self) -> String {
        match self.url.query() {
            Some(q) => format!("{}?{q}", self.url.path()),
            None => self.url.path().to_owned(),
        }
    }
}

/// Connects to a `ws://` or `wss://` URL with the default configuration.
#[cfg(feature = "client")]
pub async fn connect(url: &str) -> Result<WebSocket<MaybeTlsStream>> {
    connect_with(ClientRequest::new(url)?, Config::default()).await
}

/// Connects with a request and configuration of your own.
#[cfg(feature = "client")]
pub async fn connect_with(
    request: ClientRequest,
    config: Config,
) -> Result<WebSocket<MaybeTlsStream>> {
    request.check_headers()?;
    let stream = open_stream_in_time(&request, &config, None).await?;
    client_handshake(stream, &request, config).await
}

/// [`open_stream_with_alpn`] within the request's connect timeout.
#[cfg(feature = "client")]
pub(crate) async fn open_stream_in_time(
    request: &ClientRequest,
    config: &Config,
    alpn: Option<&[&[u8]]>,
) -> Result<MaybeTlsStream> {
    let limit = request.connect_timeout.unwrap_or(config.handshake_timeout);
    tokio::time::timeout(limit, open_stream_with_alpn(request, alpn))
        .await
        .map_err(|_| Error::Timeout("connecting (TCP, proxy, TLS)"))?
}

/// TCP (directly or through a proxy tunnel), then TLS for `wss://`, offering `alpn` if given
/// instead of the TLS configuration's protocols. Without a rustls feature `wss://` is refused.
#[cfg(feature = "client")]
async fn open_stream_with_alpn(
    request: &ClientRequest,
    alpn: Option<&[&[u8]]>,
) -> Result<MaybeTlsStream> {
    let host = request
        .url
        .host()
        .ok_or_else(|| Error::Url("no host".into()))?;
    let port = request.port();
    let tcp = match request.proxy.resolve(&request.url)? {
        Some(proxy) => {
            tracing::debug!(%proxy, url = %request.url, "connecting through proxy");
            proxy
                .tunnel(request.url.host_str().unwrap_or_default(), port)
                .await?
        }
        None => {
            let tcp = match host {
                url::Host::Domain(name) => TcpStream::connect((name, port)).await?,
                url::Host::Ipv4(ip) => TcpStream::connect((ip, port)).await?,
                url::Host::Ipv6(ip) => TcpStream::connect((ip, port)).await?,
            };
            let _ = tcp.set_nodelay(true);
            tcp
        }
    };
    if !request.is_secure() {
        return Ok(MaybeTlsStream::Plain(tcp));
    }
    #[cfg(any(feature = "rustls-ring", feature = "rustls-aws-lc"))]
    {
        let mut config = match &request.tls {
            Some(config) => config.clone(),
            None => crate::tls::default_client_config()?,
        };
        if let Some(alpn) = alpn {
            let mut custom = (*config).clone();
            custom.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
            config = std::sync::Arc::new(custom);
        }
        crate::tls::connect_tls(tcp, &host, config).await
    }
    #[cfg(not(any(feature = "rustls-ring", feature = "rustls-aws-lc")))]
    {
        let _ = (host, alpn);
        Err(Error::Url(
            "wss:// needs TLS: build sockeye with rustls-ring or rustls-aws-lc".into(),
        ))
    }
}

/// Runs the client handshake over a stream you opened yourself (a TLS stream, a proxy tunnel).
pub async fn client_handshake<S>(
    mut io: S,
    request: &ClientRequest,
    config: Config,
) -> Result<WebSocket<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    request.check_headers()?;
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce).map_err(|e| Error::Io(std::io::Error::other(e.to_string())))?;
    let hs = ClientHandshake {
        key: handshake::encode_key(nonce),
        protocols: request.protocols.clone(),
        deflate: config.deflate.clone(),
    };
    let bytes = hs.request(&request.host_header(), &request.target(), &request.headers);
    let mut leftover = BytesMut::with_capacity(1024);
    let max = config.max_handshake_size;
    let exchange = async {
        io.write_all(&bytes).await?;
        read_head(&mut io, &mut leftover, max, handshake::parse_response).await
    };
    let deadline = tokio::time::Instant::now() + config.handshake_timeout;
    let resp = tokio::time::timeout_at(deadline, exchange)
        .await
        .map_err(|_| Error::Timeout("opening handshake"))??;
    if resp.status() != http::StatusCode::SWITCHING_PROTOCOLS {
        let body = tokio::time::timeout_at(deadline, refusal_body(&mut io, &resp, leftover))
            .await
            .unwrap_or_default();
        let (parts, ()) = resp.into_parts();
        return Err(Error::Rejected(Box::new(http::Response::from_parts(
            parts, body,
        ))));
    }
    let negotiated = hs.validate_response(&resp)?;
    let mut ws = WebSocket::negotiated(Role::Client, io, config, negotiated, &leftover);
    ws.set_response(resp);
    Ok(ws)
}

/// The most of a refusal's body kept for [`Error::Rejected`].
pub(crate) const MAX_REFUSAL_BODY: usize = 64 << 10;

/// Reads the body of a refusal, by its `Content-Length` or up to the end of the connection,
/// keeping at most [`MAX_REFUSAL_BODY`]; whatever arrived is kept if the read fails.
async fn refusal_body<S: AsyncRead + Unpin>(
    io: &mut S,
    resp: &http::Response<()>,
    mut body: BytesMut,
) -> bytes::Bytes {
    let length = resp
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.trim().parse::<usize>().ok());
    let want = length.unwrap_or(MAX_REFUSAL_BODY).min(MAX_REFUSAL_BODY);
    while body.len() < want {
        match io.read_buf(&mut body).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    body.truncate(want);
    body.freeze()
}
