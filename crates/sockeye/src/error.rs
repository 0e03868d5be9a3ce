use std::io;

use sockeye_proto::handshake::HandshakeError;
use sockeye_proto::{CloseCode, ProtocolError, UsageError};

/// Everything that can fail in the client and the server.
///
/// Match on the predicates rather than on the variants, in hyper's manner: whose fault it was
/// ([`is_protocol`](Error::is_protocol) for the peer's, [`is_io`](Error::is_io) and
/// [`is_timeout`](Error::is_timeout) for the network's, [`is_usage`](Error::is_usage) for the
/// caller's), and [`is_closed`](Error::is_closed) for a connection that was already closed.
/// The `Display` text is for people, not for matching.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The network failed: the connection was reset, a write found the peer gone, the address
    /// could not be reached. A send on a connection the network broke fails with this error
    /// and its cause, and so does every later send on it.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// The opening handshake could not be completed: a malformed request or response, a
    /// missing or wrong `Sec-WebSocket-Accept`, an extension or subprotocol nobody offered.
    #[error("opening handshake failed: {0}")]
    Handshake(#[from] HandshakeError),
    /// The peer broke RFC 6455 or RFC 7692; the connection was failed with the close code in
    /// [`Error::close_code`].
    #[error("the peer violated the protocol: {0}")]
    Protocol(#[from] ProtocolError),
    /// The caller asked for something the protocol or the connection's state forbids: sending
    /// on a closed connection, a close code browsers refuse, a control payload over 125 bytes.
    #[error(transparent)]
    Usage(#[from] UsageError),
    /// A request header the caller gave cannot be sent: a name that is not a token, or a value
    /// with CR, LF or another control character.
    #[error("invalid request header: {0}")]
    InvalidHeader(String),
    /// The URL given to a client is not a `ws://` or `wss://` URL it can use.
    #[error("invalid URL: {0}")]
    Url(String),
    /// A deadline passed: connecting, the opening or closing handshake, a keepalive pong, or
    /// a write the peer stopped reading (`Config::write_timeout`). The text says which.
    #[error("timed out: {0}")]
    Timeout(&'static str),
    /// The server answered the opening handshake with something other than 101 (or 2xx over
    /// HTTP/2): its status, headers and the start of its body (up to 64 KiB), such as a 401
    /// with a `WWW-Authenticate` header or a 403 page.
    #[error("the server refused the WebSocket: {}", .0.status())]
    Rejected(Box<http::Response<bytes::Bytes>>),
    /// The TLS handshake failed: an untrusted, expired or wrong-host certificate, no common
    /// protocol version or cipher suite, an alert from the peer.
    #[error("TLS handshake failed: {0}")]
    #[cfg(any(feature = "rustls-ring", feature = "rustls-aws-lc"))]
    Tls(rustls::Error),
    /// A certificate, key or CA file could not be used.
    #[error("TLS configuration: {0}")]
    #[cfg(any(feature = "rustls-ring", feature = "rustls-aws-lc"))]
    TlsConfig(String),
    /// An HTTP proxy could not be parsed, reached, or refused the tunnel.
    #[error("proxy: {0}")]
    #[cfg(feature = "client")]
    Proxy(String),
}

impl Error {
    /// The peer's fault: it broke the protocol, and the connection was failed with
    /// [`close_code`](Error::close_code) (1002, 1007, 1009, …).
    pub fn is_protocol(&self) -> bool {
        matches!(self, Error::Protocol(_))
    }

    /// The network's fault: an I/O error, whose cause [`io_error`](Error::io_error) returns.
    pub fn is_io(&self) -> bool {
        matches!(self, Error::Io(_))
    }

    /// A deadline passed, ours ([`Error::Timeout`]) or the operating system's
    /// (`io::ErrorKind::TimedOut`).
    pub fn is_timeout(&self) -> bool {
        match self {
            Error::Timeout(_) => true,
            Error::Io(e) => e.kind() == io::ErrorKind::TimedOut,
            _ => false,
        }
    }

    /// The connection was already closing or closed (by either side's close frame) when the
    /// caller tried to use it.
    pub fn is_closed(&self) -> bool {
        matches!(self, Error::Usage(UsageError::Closed))
    }

    /// The caller's own mistake: a forbidden close code or reason, an oversized control
    /// payload, a fragment out of order, an invalid header or URL, or a closed connection.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Error::Usage(_) | Error::InvalidHeader(_) | Error::Url(_)
        )
    }

    /// The opening handshake failed or the server refused it (see
    /// [`rejection`](Error::rejection)).
    pub fn is_handshake(&self) -> bool {
        matches!(self, Error::Handshake(_) | Error::Rejected(_))
    }

    /// TLS failed: the handshake, or the certificates and keys it was given.
    pub fn is_tls(&self) -> bool {
        #[cfg(any(feature = "rustls-ring", feature = "rustls-aws-lc"))]
        if matches!(self, Error::Tls(_) | Error::TlsConfig(_)) {
            return true;
        }
        false
    }

    /// The I/O error underneath, for its `kind()` and OS error code.
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            Error::Io(e) => Some(e),
            _ => None,
        }
    }

    /// The close code this error failed the connection with, if it did.
    pub fn close_code(&self) -> Option<CloseCode> {
        match self {
            Error::Protocol(e) => Some(e.close_code()),
            _ => None,
        }
    }

    /// The server's answer when it refused the WebSocket: its status, headers and the start
    /// of its body.
    pub fn rejection(&self) -> Option<&http::Response<bytes::Bytes>> {
        match self {
            Error::Rejected(response) => Some(response),
            _ => None,
        }
    }
}

/// `Result` with Sockeye's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
