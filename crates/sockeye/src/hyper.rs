//! WebSockets on requests that hyper 1.x served: an HTTP/1.1 upgrade (`Upgrade: websocket`,
//! answered with 101) or an HTTP/2 extended CONNECT (RFC 8441, `:protocol = websocket`,
//! answered with 200). Both negotiate through the same code as [`crate::serve`], in
//! `sockeye_proto::handshake`, and give the same [`WebSocket`].
//!
//! ```no_run
//! # use http_body_util::Full;
//! # use sockeye::Bytes;
//! async fn handle(
//!     mut req: http::Request<hyper::body::Incoming>,
//! ) -> Result<http::Response<Full<Bytes>>, std::convert::Infallible> {
//!     let upgrade = match sockeye::hyper::UpgradeRequest::new(&mut req, sockeye::Config::default()) {
//!         Ok(upgrade) => upgrade,
//!         Err(rejection) => return Ok(rejection.into_response()),
//!     };
//!     let protocol = upgrade.select_protocol(&["wamp", "soap"]);
//!     let (response, socket) = upgrade.accept(protocol);
//!     tokio::spawn(async move {
//!         let Ok(mut ws) = socket.await else { return };
//!         while let Some(Ok(msg)) = ws.recv().await {
//!             if ws.send(msg).await.is_err() {
//!                 break;
//!             }
//!         }
//!     });
//!     Ok(response)
//! }
//! ```
//!
//! HTTP/2 needs extended CONNECT switched on in the server
//! (`hyper::server::conn::http2::Builder::enable_connect_protocol`), and the route must take
//! `CONNECT` as well as `GET`.

/// The hyper and http-body-util crates whose types appear in this module's signatures
/// ([`Http2Sender`]), re-exported so that a dependent names the versions Sockeye uses.
pub use ::hyper;
pub use http_body_util;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
#[cfg(any(feature = "rustls-ring", feature = "rustls-aws-lc"))]
use std::sync::Arc;
use std::task::{Context, Poll};
#[cfg(any(feature = "rustls-ring", feature = "rustls-aws-lc"))]
use std::time::Duration;

use ::hyper::body::Incoming;
use ::hyper::ext::Protocol;
use ::hyper::service::service_fn;
use ::hyper::upgrade::OnUpgrade;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use sockeye_proto::handshake::{self, ClientHandshake, ClientOffer, HandshakeError};
use sockeye_proto::Role;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
#[cfg(any(feature = "rustls-ring", feature = "rustls-aws-lc"))]
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

#[cfg(any(feature = "rustls-ring", feature = "rustls-aws-lc"))]
use crate::client::open_stream_in_time;
use crate::client::{ClientRequest, MAX_REFUSAL_BODY};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::server::Upgrade;
use crate::socket::WebSocket;
#[cfg(any(feature = "rustls-ring", feature = "rustls-aws-lc"))]
use crate::stream::MaybeTlsStream;
#[cfg(any(feature = "rustls-ring", feature = "rustls-aws-lc"))]
use crate::tls::rustls;

/// A WebSocket request that hyper has read and Sockeye has validated, not yet answered.
#[derive(Debug)]
pub struct UpgradeRequest {
    offer: ClientOffer,
    version: Version,
    on_upgrade: OnUpgrade,
    config: Config,
}

/// Why a request cannot become a WebSocket, with the answer it gets: 400 for a malformed
/// handshake, 426 for a wrong `Sec-WebSocket-Version`, as the native server answers.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct Rejection {
    error: HandshakeError,
    version: Version,
}

impl Rejection {
    /// The handshake error behind the rejection.
    pub fn error(&self) -> &HandshakeError {
        &self.error
    }

    /// The HTTP status the response carries.
    pub fn status(&self) -> StatusCode {
        self.error.response_for(self.version).0.status()
    }

    /// The response to send: the status, a short text body, and for 426 the supported version.
    pub fn into_response<B: From<String>>(self) -> Response<B> {
        let (head, body) = self.error.response_for(self.version);
        let (mut parts, ()) = head.into_parts();
        parts.headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        Response::from_parts(parts, B::from(body))
    }
}

/// The `:protocol` pseudo-header of an HTTP/2 request, which hyper keeps in the extensions.
fn connect_protocol(extensions: &http::Extensions) -> Option<&str> {
    extensions.get::<Protocol>().map(Protocol::as_str)
}

impl UpgradeRequest {
    /// Validates `req` as a WebSocket handshake over HTTP/1.1 or HTTP/2 and takes its upgrade
    /// handle. A request hyper did not serve (no upgrade handle) is refused like a malformed one.
    pub fn new<B>(req: &mut Request<B>, config: Config) -> Result<Self, Rejection> {
        let offer = validate(req, connect_protocol(req.extensions()));
        Self::with_upgrade(offer, req.version(), req.extensions_mut(), config)
    }

    /// [`UpgradeRequest::new`] for a request already split into parts (as extractors see it).
    pub fn from_parts(parts: &mut http::request::Parts, config: Config) -> Result<Self, Rejection> {
        // The validators take a `Request`; lend them the parts' URI and headers without a copy.
        let mut probe = Request::new(());
        *probe.method_mut() = parts.method.clone();
        *probe.version_mut() = parts.version;
        *probe.uri_mut() = std::mem::take(&mut parts.uri);
        *probe.headers_mut() = std::mem::take(&mut parts.headers);
        let offer = validate(&probe, connect_protocol(&parts.extensions));
        let (probe, ()) = probe.into_parts();
        parts.uri = probe.uri;
        parts.headers = probe.headers;
        Self::with_upgrade(offer, parts.version, &mut parts.extensions, config)
    }

    /// A validated offer and the upgrade handle hyper left in the request's extensions.
    fn with_upgrade(
        offer: Result<ClientOffer, HandshakeError>,
        version: Version,
        extensions: &mut http::Extensions,
        config: Config,
    ) -> Result<Self, Rejection> {
        let offer = offer.map_err(|error| Rejection { error, version })?;
        // A request hyper did not serve has no upgrade handle: refused like a malformed one.
        let on_upgrade = extensions.remove::<OnUpgrade>().ok_or(Rejection {
            error: HandshakeError::BadRequest("connection cannot be upgraded"),
            version,
        })?;
        Ok(UpgradeRequest {
            offer,
            version,
            on_upgrade,
            config,
        })
    }

    /// The subprotocols the client offered, in its order.
    pub fn offered_protocols(&self) -> &[String] {
        &self.offer.protocols
    }

    /// The first of `supported` (the server's order of preference) that the client offered.
    pub fn select_protocol(&self, supported: &[impl AsRef<str>]) -> Option<String> {
        self.offer.select_protocol(supported)
    }

    /// `HTTP/1.1` for an upgrade, `HTTP/2` for an extended CONNECT.
    pub fn http_version(&self) -> Version {
        self.version
    }

    /// The settings the accepted socket will run with, to change before accepting.
    pub fn config_mut(&mut self) -> &mut Config {
        &mut self.config
    }

    /// Accepts with `protocol` (ignored unless the client offered it). Returns the response for
    /// hyper to send (101 over HTTP/1.1, 200 over HTTP/2; add headers such as `Set-Cookie` to it
    /// freely) and the socket, ready once hyper has sent the response.
    pub fn accept<B: Default>(self, protocol: Option<String>) -> (Response<B>, PendingWebSocket) {
        let protocol = protocol.filter(|p| self.offer.protocols.contains(p));
        let negotiated = self.offer.negotiate(protocol, self.config.deflate.as_ref());
        let (parts, ()) = handshake::accept_response(&self.offer, &negotiated).into_parts();
        let config = self.config;
        let on_upgrade = self.on_upgrade;
        let pending = PendingWebSocket {
            inner: Box::pin(async move {
                let upgraded = on_upgrade.await.map_err(io::Error::other)?;
                let stream = UpgradedStream(TokioIo::new(upgraded));
                Ok(WebSocket::negotiated(
                    Role::Server,
                    stream,
                    config,
                    negotiated,
                    &[],
                ))
            }),
        };
        (Response::from_parts(parts, B::default()), pending)
    }
}

fn validate<B>(req: &Request<B>, protocol: Option<&str>) -> Result<ClientOffer, HandshakeError> {
    if req.version() == Version::HTTP_2 {
        handshake::validate_extended_connect(req, protocol)
    } else {
        handshake::validate_request(req)
    }
}

/// Resolves to the [`WebSocket`] once hyper has handed over the connection (HTTP/1.1) or the
/// stream (HTTP/2); fails if the client went away first.
pub struct PendingWebSocket {
    inner: Pin<Box<dyn Future<Output = Result<WebSocket<UpgradedStream>>> + Send>>,
}

impl std::fmt::Debug for PendingWebSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingWebSocket").finish_non_exhaustive()
    }
}

impl Future for PendingWebSocket {
    type Output = Result<WebSocket<UpgradedStream>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

/// The byte stream under a WebSocket that hyper upgraded: the TCP or TLS connection for
/// HTTP/1.1, one stream's DATA frames for HTTP/2 (where HTTP/2 flow control is the
/// backpressure that `buffered_amount` sees).
#[derive(Debug)]
pub struct UpgradedStream(TokioIo<::hyper::upgrade::Upgraded>);

impl AsyncRead for UpgradedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for UpgradedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl From<Rejection> for Error {
    fn from(r: Rejection) -> Self {
        Error::Handshake(r.error)
    }
}

// ---------------------------------------------------------------- client

/// The HTTP/2 connection a client opens WebSockets on: hyper's request sender, which can be
/// cloned so that several sockets to one origin share the connection.
pub type Http2Sender = ::hyper::client::conn::http2::SendRequest<Empty<Bytes>>;

/// Opens a WebSocket as one stream of an HTTP/2 connection (RFC 8441 §5): an extended CONNECT
/// with `:protocol = websocket` and the request's subprotocols, extensions and headers. The
/// server must have advertised `SETTINGS_ENABLE_CONNECT_PROTOCOL`; otherwise hyper refuses to
/// send the request and this fails without touching other streams.
///
/// Make `sender` with `hyper::client::conn::http2::handshake` over a TLS stream whose ALPN
/// picked `h2` (or over plain TCP for h2c with prior knowledge).
pub async fn connect_h2(
    sender: &mut Http2Sender,
    request: &ClientRequest,
    config: Config,
) -> Result<WebSocket<UpgradedStream>> {
    connect_h2_as(sender, request, config).await
}

/// Connects like [`crate::connect_with`], preferring HTTP/2 for `wss://`: TLS offers ALPN `h2`
/// and `http/1.1`, and when the server picks `h2` the WebSocket is an extended CONNECT stream of
/// that connection (RFC 8441). When it picks `http/1.1`, or speaks HTTP/2 without extended
/// CONNECT (which costs a second connection, with ALPN `http/1.1` only), it is the classic
/// upgrade. A refusal (a 403, say) is final either way. `ws://` is always HTTP/1.1: the
/// automatic choice is this function's, and [`crate::connect`] never makes it.
#[cfg(any(feature = "rustls-ring", feature = "rustls-aws-lc"))]
pub async fn connect(request: ClientRequest, config: Config) -> Result<WebSocket<MaybeTlsStream>> {
    request.check_headers()?;
    if !request.is_secure() {
        return crate::connect_with(request, config).await;
    }
    let alpn: &[&[u8]] = &[b"h2", crate::tls::ALPN_HTTP_1_1];
    let stream = open_stream_in_time(&request, &config, Some(alpn)).await?;
    if stream.alpn_protocol() != Some(b"h2") {
        return crate::client_handshake(stream, &request, config).await;
    }
    let over_h2 = async {
        let (mut sender, conn) =
            ::hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .map_err(io::Error::other)?;
        tokio::spawn(conn);
        connect_h2_as(&mut sender, &request, config.clone()).await
    };
    match over_h2.await {
        Ok(ws) => Ok(ws),
        Err(e @ (Error::Rejected(_) | Error::Handshake(_) | Error::Timeout(_))) => Err(e),
        Err(e) => {
            tracing::debug!("no WebSocket over HTTP/2 ({e}); trying HTTP/1.1");
            let stream =
                open_stream_in_time(&request, &config, Some(&[crate::tls::ALPN_HTTP_1_1])).await?;
            crate::client_handshake(stream, &request, config).await
        }
    }
}

async fn connect_h2_as<S>(
    sender: &mut Http2Sender,
    request: &ClientRequest,
    config: Config,
) -> Result<WebSocket<S>>
where
    S: From<UpgradedStream> + AsyncRead + AsyncWrite + Unpin,
{
    request.check_headers()?;
    let hs = ClientHandshake {
        key: String::new(),
        protocols: request.protocols.clone(),
        deflate: config.deflate.clone(),
    };
    let url = request.url();
    let scheme = if request.is_secure() { "https" } else { "http" };
    let authority = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_owned(),
    };
    let target = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    let uri = http::Uri::builder()
        .scheme(scheme)
        .authority(authority)
        .path_and_query(target)
        .build()
        .map_err(|e| Error::Url(e.to_string()))?;
    let mut req = Request::builder()
        .method(Method::CONNECT)
        .version(Version::HTTP_2)
        .uri(uri)
        .body(Empty::<Bytes>::new())
        .map_err(|e| Error::Url(e.to_string()))?;
    req.extensions_mut()
        .insert(Protocol::from_static("websocket"));
    let headers = req.headers_mut();
    for (name, value) in &request.headers {
        let reserved = ["sec-websocket-version", "sec-websocket-extensions"];
        if reserved.iter().any(|r| name.eq_ignore_ascii_case(r)) {
            continue;
        }
        // Checked above; a failure here would be a bug, so skip rather than panic.
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.append(name, value);
        }
    }
    headers.extend(hs.extended_connect_headers());
    let exchange = async {
        sender.ready().await.map_err(io::Error::other)?;
        let mut resp = sender.send_request(req).await.map_err(io::Error::other)?;
        if !resp.status().is_success() {
            let (parts, body) = resp.into_parts();
            let body = http_body_util::Limited::new(body, MAX_REFUSAL_BODY)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            return Err(Error::Rejected(Box::new(Response::from_parts(parts, body))));
        }
        let negotiated = hs.validate_extended_connect_response(&resp)?;
        let upgraded = ::hyper::upgrade::on(&mut resp)
            .await
            .map_err(io::Error::other)?;
        let (head, _) = resp.into_parts();
        Ok::<_, Error>((negotiated, upgraded, Response::from_parts(head, ())))
    };
    let (negotiated, upgraded, head) = tokio::time::timeout(config.handshake_timeout, exchange)
        .await
        .map_err(|_| Error::Timeout("opening handshake"))??;
    let mut ws = WebSocket::negotiated(
        Role::Client,
        S::from(UpgradedStream(TokioIo::new(upgraded))),
        config,
        negotiated,
        &[],
    );
    ws.set_response(head);
    Ok(ws)
}

// ---------------------------------------------------------------- HTTP/2 connections

/// One request stream of an HTTP/2 connection that [`serve_connection`] handed to an
/// [`Upgrade`]: how to answer it, and how to turn its stream into the handler's `S`.
pub(crate) struct Http2Stream<S> {
    protocol: Option<String>,
    on_upgrade: Option<OnUpgrade>,
    respond: oneshot::Sender<Response<Full<Bytes>>>,
    wrap: Box<dyn FnOnce(UpgradedStream) -> S + Send + Sync>,
}

impl<S> std::fmt::Debug for Http2Stream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http2Stream")
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

impl<S> Http2Stream<S> {
    pub(crate) fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    pub(crate) fn map_io<T>(self, f: impl FnOnce(S) -> T + Send + Sync + 'static) -> Http2Stream<T>
    where
        S: 'static,
    {
        let wrap = self.wrap;
        Http2Stream {
            protocol: self.protocol,
            on_upgrade: self.on_upgrade,
            respond: self.respond,
            wrap: Box::new(move |stream| f(wrap(stream))),
        }
    }

    /// Sends the 200 and waits for hyper to hand over the stream.
    pub(crate) async fn open(self, resp: Response<()>) -> Result<S> {
        let on_upgrade = self.on_upgrade.ok_or_else(|| {
            Error::Io(io::Error::new(
                io::ErrorKind::Unsupported,
                "this HTTP/2 request cannot be upgraded",
            ))
        })?;
        let (parts, ()) = resp.into_parts();
        self.respond
            .send(Response::from_parts(parts, Full::default()))
            .map_err(|_| Error::Io(io::ErrorKind::ConnectionReset.into()))?;
        let upgraded = on_upgrade.await.map_err(io::Error::other)?;
        Ok((self.wrap)(UpgradedStream(TokioIo::new(upgraded))))
    }

    /// A final answer: a page, or a refusal.
    pub(crate) fn respond(self, resp: Response<()>, body: &[u8]) {
        let (parts, ()) = resp.into_parts();
        let body = Full::new(Bytes::copy_from_slice(body));
        let _ = self.respond.send(Response::from_parts(parts, body));
    }
}

/// Serves one HTTP/2 connection (after TLS with ALPN `h2`, or h2c with prior knowledge): each
/// request becomes an [`Upgrade`] for `handler`, in its own task, exactly as
/// [`crate::serve`] hands HTTP/1.1 requests over. Extended CONNECT is advertised
/// (`SETTINGS_ENABLE_CONNECT_PROTOCOL`), so browsers open their WebSockets here (RFC 8441).
///
/// Each WebSocket is one stream: HTTP/2 flow control is its backpressure, a `RST_STREAM` ends it
/// as an abrupt close (1006), and the other streams carry on. With `config.ping_interval`, the
/// connection itself sends HTTP/2 PINGs that often and is dropped when one goes unanswered for
/// `config.ping_timeout`.
pub async fn serve_connection<I, S, F, Fut>(
    io: I,
    peer: SocketAddr,
    config: Config,
    handler: F,
) -> Result<()>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: From<UpgradedStream> + Send + 'static,
    F: Fn(Upgrade<S>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let keepalive = config.clone();
    let service = service_fn(move |mut req: Request<Incoming>| {
        let handler = handler.clone();
        let config = config.clone();
        async move {
            let (respond, answer) = oneshot::channel();
            let on_upgrade = req.extensions_mut().remove::<OnUpgrade>();
            let protocol = connect_protocol(req.extensions()).map(str::to_owned);
            let (parts, _body) = req.into_parts();
            let stream = Http2Stream {
                protocol,
                on_upgrade,
                respond,
                wrap: Box::new(S::from),
            };
            let upgrade = Upgrade::http2(Request::from_parts(parts, ()), config, stream);
            tokio::spawn(handler(upgrade, peer));
            Ok::<_, std::convert::Infallible>(answer.await.unwrap_or_else(|_| {
                // The handler ended without answering.
                let mut resp = Response::new(Full::default());
                *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                resp
            }))
        }
    });
    let mut builder = ::hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .enable_connect_protocol()
        // A stream's window well under the connection's: a WebSocket whose handler has stopped
        // reading (blocked sending to a peer that does not read) holds at most its own window
        // of the connection's, and the other streams keep flowing. hyper's defaults give a
        // stream the whole connection window.
        .initial_stream_window_size(HTTP2_STREAM_WINDOW)
        .initial_connection_window_size(HTTP2_CONNECTION_WINDOW);
    // The connection's keepalive, as each WebSocket's: a peer that stops answering HTTP/2 PINGs
    // is dropped even when it has no stream open, which no WebSocket's own ping would notice.
    if let Some(every) = keepalive.ping_interval {
        builder
            .keep_alive_interval(every)
            .keep_alive_timeout(keepalive.ping_timeout);
    }
    builder
        .serve_connection(TokioIo::new(io), service)
        .await
        .map_err(|e| Error::Io(io::Error::other(e)))
}

/// The receive window of each HTTP/2 stream that [`serve_connection`] serves: what a WebSocket
/// can have in flight towards the server before its handler reads it.
pub const HTTP2_STREAM_WINDOW: u32 = 1 << 20;

/// The receive window of a whole HTTP/2 connection: the most it buffers unread across streams.
pub const HTTP2_CONNECTION_WINDOW: u32 = 8 << 20;

/// The first bytes of every HTTP/2 connection (RFC 9113 §3.4); a plain listener that sees them
/// speaks h2c with prior knowledge.
pub const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Accepts connections forever and serves each as HTTP/1.1 or HTTP/2, handing every request to
/// `handler` as an [`Upgrade`] (check [`Upgrade::http_version`] to tell them apart): what
/// [`crate::serve`] and [`crate::serve_tls`] do, plus HTTP/2. With `tls`, ALPN offers `h2` and
/// `http/1.1` (the configuration's own list is replaced); without, a connection that opens with
/// the HTTP/2 preface is h2c with prior knowledge and any other is HTTP/1.1. A connection that
/// fails (a bad TLS handshake, a stall past `config.handshake_timeout`) loses only itself.
#[cfg(any(feature = "rustls-ring", feature = "rustls-aws-lc"))]
pub async fn serve<F, Fut>(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    config: Config,
    handler: F,
) -> std::io::Result<()>
where
    F: Fn(Upgrade<MaybeTlsStream>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let tls_config = tls.map(|config| {
        let mut config = (*config).clone();
        config.alpn_protocols = vec![b"h2".to_vec(), crate::tls::ALPN_HTTP_1_1.to_vec()];
        Arc::new(config)
    });
    let never = crate::server::accept_loop(listener, move |tcp, peer| {
        // What only the handshakes need travels boxed: a value an async block captures keeps its
        // room in the task for the task's whole life, here the WebSocket's.
        let setup = Box::new((tcp, tls_config.clone(), config.clone()));
        let handler = handler.clone();
        async move {
            let (tcp, tls_config, config) = *setup;
            match Box::pin(handshakes(tcp, tls_config, config)).await {
                Ok(Handshaken::Http1(upgrade)) => handler(upgrade, peer).await,
                // Boxed: hyper's HTTP/2 connection is a large future, which inline would size
                // every connection's task, HTTP/1.1 ones included.
                Ok(Handshaken::Http2(stream, config)) => {
                    let served = Box::pin(serve_connection(stream, peer, config, handler)).await;
                    if let Err(e) = served {
                        tracing::debug!(%peer, "HTTP/2 connection failed: {e}");
                    }
                }
                Err(e) => tracing::debug!(%peer, "handshake failed: {e}"),
            }
        }
    })
    .await;
    match never {}
}

/// A connection after its handshakes: one HTTP/1.1 request, or an HTTP/2 connection to serve.
// Returned once per connection and taken apart at once: boxing the request would cost an
// allocation for nothing.
#[cfg(any(feature = "rustls-ring", feature = "rustls-aws-lc"))]
#[allow(clippy::large_enum_variant)]
enum Handshaken {
    Http1(Upgrade<MaybeTlsStream>),
    Http2(MaybeTlsStream, Config),
}

/// TLS, the look for the HTTP/2 preface and the request head. The caller boxes this future so
/// that its state is freed once done rather than sizing the task for the WebSocket's life.
#[cfg(any(feature = "rustls-ring", feature = "rustls-aws-lc"))]
async fn handshakes(
    tcp: TcpStream,
    tls_config: Option<Arc<rustls::ServerConfig>>,
    config: Config,
) -> Result<Handshaken> {
    let http2 = match &tls_config {
        Some(_) => false,
        None => tokio::time::timeout(config.handshake_timeout, starts_with_h2_preface(&tcp))
            .await
            .map_err(|_| Error::Timeout("opening handshake"))??,
    };
    let stream = match tls_config {
        Some(tls_config) => {
            crate::tls::accept_tls(tcp, tls_config, config.handshake_timeout).await?
        }
        None => MaybeTlsStream::from(tcp),
    };
    if http2 || stream.alpn_protocol() == Some(b"h2") {
        return Ok(Handshaken::Http2(stream, config));
    }
    Ok(Handshaken::Http1(
        crate::read_request(stream, config).await?,
    ))
}

/// Whether a plain connection opens with the HTTP/2 preface (h2c with prior knowledge). Peeks,
/// so that an HTTP/1.1 request stays unread; waits only while what came so far is a prefix of
/// the preface, within the caller's handshake timeout.
#[cfg(any(feature = "rustls-ring", feature = "rustls-aws-lc"))]
async fn starts_with_h2_preface(tcp: &TcpStream) -> std::io::Result<bool> {
    let preface = HTTP2_PREFACE;
    let mut buf = [0u8; 24];
    loop {
        let n = tcp.peek(&mut buf).await?;
        if n == 0 || buf[..n] != preface[..n] {
            return Ok(false);
        }
        if n == preface.len() {
            return Ok(true);
        }
        // A preface split across segments: rare, so a short wait beats a busy peek loop.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
