//! The server side of the opening handshake, and a listener helper.

use std::future::Future;
use std::net::SocketAddr;

use bytes::BytesMut;
use http::{HeaderValue, Request, Response, StatusCode};
use sockeye_proto::handshake::{self, ClientOffer};
use sockeye_proto::{Connection, PerMessageDeflate, Role};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::socket::WebSocket;

/// A request read from a new connection, not yet answered. The application looks at it (path,
/// query, headers, `Origin`, offered subprotocols), then accepts, rejects, or answers it as
/// plain HTTP.
#[derive(Debug)]
pub struct Upgrade<S> {
    io: S,
    request: Request<()>,
    leftover: BytesMut,
    config: Config,
}

/// Reads a request head and answers malformed ones with 400 or 431 itself.
pub async fn read_request<S>(mut io: S, config: Config) -> Result<Upgrade<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let deadline = config.handshake_timeout;
    let read = async {
        let mut buf = BytesMut::with_capacity(1024);
        loop {
            match handshake::parse_request(&buf, config.max_handshake_size) {
                Ok(Some((request, len))) => {
                    let _ = buf.split_to(len);
                    return Ok((request, buf));
                }
                Ok(None) => {}
                Err(e) => return Err(e.into()),
            }
            if io.read_buf(&mut buf).await? == 0 {
                return Err(Error::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
        }
    };
    let result = match tokio::time::timeout(deadline, read).await {
        Ok(result) => result,
        Err(_) => Err(Error::Timeout("opening handshake")),
    };
    match result {
        Ok((request, leftover)) => Ok(Upgrade {
            io,
            request,
            leftover,
            config,
        }),
        Err(Error::Handshake(e)) => {
            let (resp, body) = e.response();
            let _ = io
                .write_all(&handshake::write_response(&resp, body.as_bytes()))
                .await;
            let _ = io.shutdown().await;
            Err(Error::Handshake(e))
        }
        Err(e) => Err(e),
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
    /// tells the SNI name, the ALPN protocol and the client's certificates.
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// The same request over a wrapped stream, such as `upgrade.map_io(MaybeTlsStream::from)`
    /// to give plain and TLS connections to one handler.
    pub fn map_io<T>(self, f: impl FnOnce(S) -> T) -> Upgrade<T> {
        Upgrade {
            io: f(self.io),
            request: self.request,
            leftover: self.leftover,
            config: self.config,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Upgrade<S> {
    pub fn request(&self) -> &Request<()> {
        &self.request
    }

    pub fn path(&self) -> &str {
        self.request.uri().path()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
    }

    /// Whether the request asks for a WebSocket (`Upgrade: websocket`).
    pub fn is_websocket(&self) -> bool {
        handshake::is_upgrade_request(&self.request)
    }

    /// The subprotocols the client offered, in its order (empty if the request is invalid).
    pub fn offered_protocols(&self) -> Vec<String> {
        handshake::validate_request(&self.request)
            .map(|o| o.protocols)
            .unwrap_or_default()
    }

    pub fn config_mut(&mut self) -> &mut Config {
        &mut self.config
    }

    /// Completes the handshake with `protocol` (which must be one the client offered), or
    /// answers 400/426 if the request is not a valid WebSocket handshake.
    pub async fn accept(mut self, protocol: Option<String>) -> Result<WebSocket<S>> {
        let offer: ClientOffer = match handshake::validate_request(&self.request) {
            Ok(offer) => offer,
            Err(e) => {
                let (resp, body) = e.response();
                self.write_and_close(&resp, body.as_bytes()).await;
                return Err(Error::Handshake(e));
            }
        };
        let protocol = protocol.filter(|p| offer.protocols.contains(p));
        let negotiated = offer.negotiate(protocol, self.config.deflate.as_ref());
        let resp = handshake::accept_response(&offer, &negotiated);
        self.io
            .write_all(&handshake::write_response(&resp, b""))
            .await?;
        Ok(server_socket(
            self.io,
            self.config,
            negotiated,
            &self.leftover,
        ))
    }

    /// Refuses the request with `status` and a short text body.
    pub async fn reject(mut self, status: StatusCode, body: &str) -> Result<()> {
        let mut resp = Response::new(());
        *resp.status_mut() = status;
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        self.write_and_close(&resp, body.as_bytes()).await;
        Ok(())
    }

    /// Answers the request as plain HTTP (a page, a health check) and closes the connection.
    pub async fn respond(mut self, resp: Response<()>, body: &[u8]) -> Result<()> {
        let mut resp = resp;
        resp.headers_mut()
            .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        self.io
            .write_all(&handshake::write_response(&resp, body))
            .await?;
        self.io.shutdown().await?;
        Ok(())
    }

    async fn write_and_close(&mut self, resp: &Response<()>, body: &[u8]) {
        let _ = self
            .io
            .write_all(&handshake::write_response(resp, body))
            .await;
        let _ = self.io.shutdown().await;
    }
}

/// The server's side of an accepted handshake, whichever HTTP version carried it. `leftover` is
/// what the peer sent after its request head.
pub(crate) fn server_socket<S: AsyncRead + AsyncWrite + Unpin>(
    io: S,
    config: Config,
    negotiated: handshake::Negotiated,
    leftover: &[u8],
) -> WebSocket<S> {
    let deflate = match (negotiated.deflate, &config.deflate) {
        (Some(params), Some(cfg)) => Some(PerMessageDeflate::new(Role::Server, params, cfg)),
        _ => None,
    };
    let mut conn = Connection::new(Role::Server, config.protocol.clone()).with_deflate(deflate);
    if !leftover.is_empty() {
        conn.receive_data(leftover);
    }
    WebSocket::new(io, conn, config, negotiated.protocol, negotiated.extensions)
}

/// Accepts TCP connections forever, reading each request head in its own task and handing it
/// to `handler`.
pub async fn serve<F, Fut>(listener: TcpListener, config: Config, handler: F) -> std::io::Result<()>
where
    F: Fn(Upgrade<TcpStream>, SocketAddr) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let config = config.clone();
        tokio::spawn(async move {
            match read_request(stream, config).await {
                Ok(upgrade) => handler(upgrade, peer).await,
                Err(e) => tracing::debug!(%peer, "handshake failed: {e}"),
            }
        });
    }
}
