//! The client side: URLs, the opening handshake, `connect`.

use bytes::BytesMut;
use sockeye_proto::handshake::{self, ClientHandshake};
use sockeye_proto::{Connection, PerMessageDeflate, Role};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use url::Url;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::socket::WebSocket;

/// What to connect to and how: URL, subprotocols, extra headers.
#[derive(Debug, Clone)]
pub struct ClientRequest {
    url: Url,
    protocols: Vec<String>,
    headers: Vec<(String, String)>,
}

impl ClientRequest {
    pub fn new(url: &str) -> Result<Self> {
        let url = Url::parse(url).map_err(|e| Error::Url(e.to_string()))?;
        match url.scheme() {
            "ws" => {}
            "wss" => return Err(Error::Url("wss:// is not supported yet".into())),
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
        })
    }

    /// Offers a subprotocol; call again for more, most preferred first.
    pub fn protocol(mut self, protocol: impl Into<String>) -> Self {
        self.protocols.push(protocol.into());
        self
    }

    /// Adds a request header such as `Origin` or `Authorization`.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    fn port(&self) -> u16 {
        self.url.port_or_known_default().unwrap_or(80)
    }

    fn host_header(&self) -> String {
        let host = self.url.host_str().unwrap_or_default();
        match self.url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        }
    }

    fn target(&self) -> String {
        match self.url.query() {
            Some(q) => format!("{}?{q}", self.url.path()),
            None => self.url.path().to_owned(),
        }
    }
}

/// Connects to a `ws://` URL with the default configuration.
pub async fn connect(url: &str) -> Result<WebSocket<TcpStream>> {
    connect_with(ClientRequest::new(url)?, Config::default()).await
}

/// Connects with a request and configuration of your own.
pub async fn connect_with(request: ClientRequest, config: Config) -> Result<WebSocket<TcpStream>> {
    let host = match request.url.host() {
        Some(url::Host::Ipv6(addr)) => addr.to_string(),
        Some(host) => host.to_string(),
        None => return Err(Error::Url("no host".into())),
    };
    let port = request.port();
    let stream = tokio::time::timeout(
        config.handshake_timeout,
        TcpStream::connect((host.as_str(), port)),
    )
    .await
    .map_err(|_| Error::Timeout("TCP connect"))??;
    let _ = stream.set_nodelay(true);
    client_handshake(stream, &request, config).await
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
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce).map_err(|e| Error::Io(std::io::Error::other(e.to_string())))?;
    let hs = ClientHandshake {
        key: handshake::encode_key(nonce),
        protocols: request.protocols.clone(),
        deflate: config.deflate.clone(),
    };
    let bytes = hs.request(&request.host_header(), &request.target(), &request.headers);
    let exchange = async {
        io.write_all(&bytes).await?;
        let mut buf = BytesMut::with_capacity(1024);
        loop {
            if let Some((resp, len)) = handshake::parse_response(&buf, config.max_handshake_size)? {
                let _ = buf.split_to(len);
                return Ok::<_, Error>((resp, buf));
            }
            if io.read_buf(&mut buf).await? == 0 {
                return Err(Error::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
        }
    };
    let (resp, leftover) = tokio::time::timeout(config.handshake_timeout, exchange)
        .await
        .map_err(|_| Error::Timeout("opening handshake"))??;
    let negotiated = hs.validate_response(&resp)?;
    let deflate = match (negotiated.deflate, &config.deflate) {
        (Some(params), Some(cfg)) => Some(PerMessageDeflate::new(Role::Client, params, cfg)),
        _ => None,
    };
    let mut conn = Connection::new(Role::Client, config.protocol.clone()).with_deflate(deflate);
    if !leftover.is_empty() {
        conn.receive_data(&leftover);
    }
    Ok(WebSocket::new(
        io,
        conn,
        config,
        negotiated.protocol,
        negotiated.extensions,
    ))
}
