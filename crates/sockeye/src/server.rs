//! The server side of the opening handshake, and a listener helper.
//!
//! [`read_request`] and [`accept`] over a stream you accepted are always compiled; [`serve`], the
//! accept loop on a `TcpListener`, needs the `server` feature.

#[cfg(feature = "server")]
use std::convert::Infallible;
#[cfg(feature = "server")]
use std::future::Future;
#[cfg(feature = "server")]
use std::net::SocketAddr;

use bytes::BytesMut;
use http::{HeaderValue, Request, Response, StatusCode};
use sockeye_proto::handshake::{self, ClientOffer};
use sockeye_proto::Role;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
#[cfg(feature = "server")]
use tokio::net::{TcpListener, TcpStream};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::socket::WebSocket;

/// A request read from a new connection, not yet answered. The application looks at it (path,
/// query, headers, `Origin`, offered subprotocols), then accepts, rejects, or answers it as
/// plain HTTP. It arrived either on its own HTTP/1.1 connection, or (with the `hyper` feature)
/// as one stream of an HTTP/2 connection that many requests share.
#[derive(Debug)]
pub struct Upgrade<S> {
    request: Request<()>,
    config: Config,
    transport: Transport<S>,
    response_headers: http::HeaderMap,
}

#[derive(Debug)]
enum Transport<S> {
    Http1 {
        io: S,
        leftover: BytesMut,
    },
    #[cfg(feature = "hyper")]
    Http2(crate::hyper::Http2Stream<S>),
}

impl<S> Upgrade<S> {
    #[cfg(feature = "hyper")]
    pub(crate) fn http2(
        request: Request<()>,
        config: Config,
        stream: crate::hyper::Http2Stream<S>,
    ) -> Self {
        Upgrade {
            request,
            config,
            transport: Transport::Http2(stream),
            response_headers: http::HeaderMap::new(),
        }
    }
}

/// Reads a request head and answers malformed ones with 400 or 431 itself.
pub async fn read_request<S>(mut io: S, config: Config) -> Result<Upgrade<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let deadline = config.handshake_timeout;
    let mut buf = BytesMut::with_capacity(1024);
    let max = config.max_handshake_size;
    let read = read_head(&mut io, &mut buf, max, handshake::parse_request);
    let result = match tokio::time::timeout(deadline, read).await {
        Ok(result) => result,
        Err(_) => Err(Error::Timeout("opening handshake")),
    };
    match result {
        Ok(request) => Ok(Upgrade {
            request,
            config,
            transport: Transport::Http1 { io, leftover: buf },
            response_headers: http::HeaderMap::new(),
        }),
        Err(Error::Handshake(e)) => {
            let (resp, body) = e.response();
            let _ = io
                .write_all(&handshake::write_response(&resp, body.as_bytes()))
                .await;
            linger(&mut io).await;
            Err(Error::Handshake(e))
        }
        // A client that started a request and did not finish it in time is told so; one that
        // sent nothing (a browser's preconnect) is not.
        Err(Error::Timeout(what)) if !buf.is_empty() => {
            let mut resp = Response::new(());
            *resp.status_mut() = StatusCode::REQUEST_TIMEOUT;
            resp.headers_mut()
                .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
            let _ = io
                .write_all(&handshake::write_response(&resp, b"Request Timeout\n"))
                .await;
            let _ = io.shutdown().await;
            Err(Error::Timeout(what))
        }
        Err(e) => Err(e),
    }
}

/// A head parser of sockeye-proto: the head and its length once `buf` holds all of it.
type ParseHead<T> = fn(
    buf: &[u8],
    max_size: usize,
) -> std::result::Result<Option<(T, usize)>, handshake::HandshakeError>;

/// Reads from `io` into `buf` until `parse` finds a whole head, and returns it; `buf` keeps what
/// came after the head. Both sides of the HTTP/1.1 handshake read with this: the server its
/// request ([`handshake::parse_request`]), the client its response
/// ([`handshake::parse_response`]).
pub(crate) async fn read_head<S, T>(
    io: &mut S,
    buf: &mut BytesMut,
    max_size: usize,
    parse: ParseHead<T>,
) -> Result<T>
where
    S: AsyncRead + Unpin,
{
    loop {
        if let Some((head, len)) = parse(buf, max_size)? {
            let _ = buf.split_to(len);
            return Ok(head);
        }
        if io.read_buf(buf).await? == 0 {
            return Err(Error::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
    }
}

/// How long, and how much, a server keeps reading after refusing a request, so that its
/// answer is not lost.
const LINGER: std::time::Duration = std::time::Duration::from_secs(2);
const LINGER_BYTES: usize = 1 << 20;

/// Ends an HTTP/1.1 exchange the server refused while the client may still be sending: closes
/// the writing side, then reads and drops what arrives until the client closes, for at most
/// [`LINGER`] and [`LINGER_BYTES`]. Closing a socket with unread data makes the kernel send a
/// reset, and a client still sending would then lose the answer (a lingering close, as Apache
/// and nginx do).
async fn linger<S: AsyncRead + AsyncWrite + Unpin>(io: &mut S) {
    if io.shutdown().await.is_err() {
        return;
    }
    let drain = async {
        // On the heap: an array here would sit in the state of every future that may reject,
        // 4 KiB more in the task of each connection a server keeps (massif: `sockeye serve`'s
        // idle connections held 7.9 KB of task each before).
        let mut scratch = vec![0u8; 4096];
        let mut dropped = 0;
        while dropped < LINGER_BYTES {
            match io.read(&mut scratch).await {
                Ok(0) | Err(_) => return,
                Ok(n) => dropped += n,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}

/// Accept errors (EMFILE when file descriptors run out, ENOBUFS, ...) are retried after
/// [`ACCEPT_RETRY`] and logged at most once per [`ACCEPT_LOG_EVERY`], with how many there were.
#[cfg(feature = "server")]
#[derive(Debug, Default)]
struct AcceptErrors {
    unlogged: u64,
    last_logged: Option<std::time::Instant>,
}

#[cfg(feature = "server")]
const ACCEPT_RETRY: std::time::Duration = std::time::Duration::from_millis(50);
#[cfg(feature = "server")]
const ACCEPT_LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

#[cfg(feature = "server")]
impl AcceptErrors {
    /// Counts one error; true when it should be logged now.
    fn note(&mut self, now: std::time::Instant) -> bool {
        self.unlogged += 1;
        if self
            .last_logged
            .is_some_and(|at| now.duration_since(at) < ACCEPT_LOG_EVERY)
        {
            return false;
        }
        self.last_logged = Some(now);
        true
    }
}

/// The next connection on `listener`, retrying accept errors (see [`AcceptErrors`]).
#[cfg(feature = "server")]
async fn accept_next(listener: &TcpListener, errors: &mut AcceptErrors) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(conn) => return conn,
            Err(e) => {
                if errors.note(std::time::Instant::now()) {
                    tracing::warn!(
                        "accept failed: {e} ({} times since the last report)",
                        errors.unlogged
                    );
                    errors.unlogged = 0;
                }
                tokio::time::sleep(ACCEPT_RETRY).await;
            }
        }
    }
}

/// Accepts a WebSocket on `io` with the default configuration, without a subprotocol.
pub async fn accept<S>(io: S) -> Result<WebSocket<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    read_request(io, Config::default())
        .await?
        .accept(None)
        .await
}

impl<S> Upgrade<S> {
    /// The stream the request came on: with TLS, [`MaybeTlsStream`](crate::MaybeTlsStream)
    /// tells the SNI name, the ALPN protocol and the client's certificates. `None` for a
    /// request that came over HTTP/2, whose connection other requests share.
    pub fn get_ref(&self) -> Option<&S> {
        match &self.transport {
            Transport::Http1 { io, .. } => Some(io),
            #[cfg(feature = "hyper")]
            Transport::Http2(_) => None,
        }
    }

    /// The same request over a wrapped stream, such as `upgrade.map_io(MaybeTlsStream::from)`
    /// to give plain and TLS connections to one handler.
    pub fn map_io<T>(self, f: impl FnOnce(S) -> T + Send + Sync + 'static) -> Upgrade<T>
    where
        S: 'static,
    {
        let transport = match self.transport {
            Transport::Http1 { io, leftover } => Transport::Http1 {
                io: f(io),
                leftover,
            },
            #[cfg(feature = "hyper")]
            Transport::Http2(stream) => Transport::Http2(stream.map_io(f)),
        };
        Upgrade {
            request: self.request,
            config: self.config,
            transport,
            response_headers: self.response_headers,
        }
    }

    /// The client's request head: method, URI, version and headers.
    pub fn request(&self) -> &Request<()> {
        &self.request
    }

    /// The request's path, without the query.
    pub fn path(&self) -> &str {
        self.request.uri().path()
    }

    /// The value of the request header `name` (case-insensitive), if present and readable as
    /// text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
    }

    /// `HTTP/1.1` (or 1.0) for a request on its own connection, `HTTP/2` for one stream of an
    /// HTTP/2 connection.
    pub fn http_version(&self) -> http::Version {
        self.request.version()
    }

    /// Whether the request asks for a WebSocket: `Upgrade: websocket` over HTTP/1.1, an
    /// extended CONNECT with `:protocol = websocket` over HTTP/2 (RFC 8441).
    pub fn is_websocket(&self) -> bool {
        match &self.transport {
            Transport::Http1 { .. } => handshake::is_upgrade_request(&self.request),
            #[cfg(feature = "hyper")]
            Transport::Http2(stream) => {
                self.request.method() == http::Method::CONNECT
                    && stream
                        .protocol()
                        .is_some_and(|p| p.eq_ignore_ascii_case("websocket"))
            }
        }
    }

    fn validate(&self) -> std::result::Result<ClientOffer, handshake::HandshakeError> {
        match &self.transport {
            Transport::Http1 { .. } => handshake::validate_request(&self.request),
            #[cfg(feature = "hyper")]
            Transport::Http2(stream) => {
                handshake::validate_extended_connect(&self.request, stream.protocol())
            }
        }
    }

    /// The subprotocols the client offered, in its order (empty if the request is invalid).
    pub fn offered_protocols(&self) -> Vec<String> {
        self.validate().map(|o| o.protocols).unwrap_or_default()
    }

    /// The settings the accepted socket will run with, to change before accepting (a larger
    /// message limit for one path, say).
    pub fn config_mut(&mut self) -> &mut Config {
        &mut self.config
    }

    /// Headers to add to the answer: the one that accepts the WebSocket (101 over HTTP/1.1,
    /// 200 over HTTP/2), such as a `Set-Cookie` after authenticating on the handshake, or a
    /// [`reject`](Upgrade::reject), such as the `WWW-Authenticate` of a 401. The handshake's
    /// own headers (`Upgrade`, `Connection`, `Sec-WebSocket-*`) are Sockeye's and are not
    /// replaced by these.
    pub fn response_headers_mut(&mut self) -> &mut http::HeaderMap {
        &mut self.response_headers
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Upgrade<S> {
    /// Completes the handshake with `protocol` (which must be one the client offered), or
    /// answers 400/426 if the request is not a valid WebSocket handshake.
    pub async fn accept(self, protocol: Option<String>) -> Result<WebSocket<S>> {
        let offer = match self.validate() {
            Ok(offer) => offer,
            Err(e) => {
                let (resp, body) = e.response_for(self.request.version());
                // Boxed, like the HTTP/2 path below: a future inlines every path's state, and
                // the caller's task keeps that size for the WebSocket's whole life.
                Box::pin(self.answer(resp, body.as_bytes())).await;
                return Err(Error::Handshake(e));
            }
        };
        let protocol = protocol.filter(|p| offer.protocols.contains(p));
        let negotiated = offer.negotiate(protocol, self.config.deflate.as_ref());
        let mut resp = handshake::accept_response(&offer, &negotiated);
        for (name, value) in &self.response_headers {
            let own = name == http::header::UPGRADE
                || name == http::header::CONNECTION
                || name.as_str().starts_with("sec-websocket-");
            if !own {
                resp.headers_mut().append(name, value.clone());
            }
        }
        match self.transport {
            Transport::Http1 { mut io, leftover } => {
                io.write_all(&handshake::write_response(&resp, b"")).await?;
                Ok(WebSocket::negotiated(
                    Role::Server,
                    io,
                    self.config,
                    negotiated,
                    &leftover,
                ))
            }
            #[cfg(feature = "hyper")]
            Transport::Http2(stream) => {
                let io = Box::pin(stream.open(resp)).await?;
                Ok(WebSocket::negotiated(
                    Role::Server,
                    io,
                    self.config,
                    negotiated,
                    &[],
                ))
            }
        }
    }

    /// Refuses the request with `status`, the headers of
    /// [`response_headers_mut`](Upgrade::response_headers_mut) and a short text body. Over
    /// HTTP/1.1 the connection then half-closes and drains what the client still sends for a
    /// moment, so that the answer is not lost to a reset.
    pub async fn reject(mut self, status: StatusCode, body: &str) -> Result<()> {
        let mut resp = Response::new(());
        *resp.status_mut() = status;
        *resp.headers_mut() = std::mem::take(&mut self.response_headers);
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        self.answer(resp, body.as_bytes()).await;
        Ok(())
    }

    /// Answers the request as plain HTTP (a page, a health check). Over HTTP/1.1 the
    /// connection is closed after it; over HTTP/2 only this request's stream ends.
    pub async fn respond(self, resp: Response<()>, body: &[u8]) -> Result<()> {
        let mut resp = resp;
        match self.transport {
            Transport::Http1 { mut io, .. } => {
                resp.headers_mut()
                    .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
                io.write_all(&handshake::write_response(&resp, body))
                    .await?;
                io.shutdown().await?;
            }
            #[cfg(feature = "hyper")]
            Transport::Http2(stream) => stream.respond(resp, body),
        }
        Ok(())
    }

    /// Sends a final answer and ends the exchange, ignoring a peer that has gone.
    async fn answer(self, resp: Response<()>, body: &[u8]) {
        match self.transport {
            Transport::Http1 { mut io, .. } => {
                let _ = io.write_all(&handshake::write_response(&resp, body)).await;
                linger(&mut io).await;
            }
            #[cfg(feature = "hyper")]
            Transport::Http2(stream) => stream.respond(resp, body),
        }
    }
}

/// Accepts TCP connections forever, reading each request head in its own task and handing it
/// to `handler`.
#[cfg(feature = "server")]
pub async fn serve<F, Fut>(listener: TcpListener, config: Config, handler: F) -> std::io::Result<()>
where
    F: Fn(Upgrade<TcpStream>, SocketAddr) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let never = accept_loop(listener, move |stream, peer| {
        let handler = handler.clone();
        let config = config.clone();
        async move {
            match read_request(stream, config).await {
                Ok(upgrade) => handler(upgrade, peer).await,
                Err(e) => tracing::debug!(%peer, "handshake failed: {e}"),
            }
        }
    })
    .await;
    match never {}
}

/// The accept loop of [`serve`], [`serve_tls`](crate::serve_tls) and
/// [`hyper::serve`](crate::hyper::serve): takes connections forever (see [`accept_next`]), turns
/// Nagle's algorithm off on each, and runs `connection` on it in a task of its own, so that a
/// connection that fails or stalls (in TLS, in its request head, in its handler) holds up
/// nothing but itself. The future of `connection` is the task's whole state: what it captures
/// stays for the connection's life.
#[cfg(feature = "server")]
pub(crate) async fn accept_loop<C, Fut>(listener: TcpListener, connection: C) -> Infallible
where
    C: Fn(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut errors = AcceptErrors::default();
    loop {
        let (stream, peer) = accept_next(&listener, &mut errors).await;
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(stream, peer));
    }
}

#[cfg(all(test, feature = "server"))]
mod accept_tests {
    use super::*;

    #[test]
    fn a_storm_of_accept_errors_is_logged_once_per_period_with_its_count() {
        let mut errors = AcceptErrors::default();
        let start = std::time::Instant::now();
        // 20 a second (one every 50 ms) for a minute.
        let logged: Vec<u64> = (0..1200u64)
            .filter(|i| errors.note(start + ACCEPT_RETRY * *i as u32))
            .collect();
        assert_eq!(logged, [0, 200, 400, 600, 800, 1000]);
    }
}
