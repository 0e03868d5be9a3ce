use sockeye_proto::handshake::HandshakeError;
use sockeye_proto::{ProtocolError, UsageError};

/// Everything that can fail in the client and the server.
///
/// `Protocol` is the peer's fault (the connection was failed with the matching close code);
/// `Usage` is the caller's (for example a close code browsers would refuse); `Io` and
/// `Timeout` are the network's. The `Display` text is for people, not for matching.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("opening handshake failed: {0}")]
    Handshake(#[from] HandshakeError),
    #[error("the peer violated the protocol: {0}")]
    Protocol(#[from] ProtocolError),
    #[error(transparent)]
    Usage(#[from] UsageError),
    /// A request header the caller gave cannot be sent: a name that is not a token, or a value
    /// with CR, LF or another control character.
    #[error("invalid request header: {0}")]
    InvalidHeader(String),
    #[error("invalid URL: {0}")]
    Url(String),
    #[error("timed out: {0}")]
    Timeout(&'static str),
    #[error("request refused: {0}")]
    Refused(String),
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
    /// The close code this error failed the connection with, if it did.
    pub fn close_code(&self) -> Option<sockeye_proto::CloseCode> {
        match self {
            Error::Protocol(e) => Some(e.close_code()),
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
