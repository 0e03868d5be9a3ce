//! [`MaybeTlsStream`]: what [`connect`](crate::connect) returns and what the TLS and HTTP/2
//! servers hand to their handlers. Its `Tls` variant and TLS accessors exist with a rustls
//! feature (`rustls-ring` or `rustls-aws-lc`).

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

#[cfg(any(feature = "rustls-ring", feature = "rustls-aws-lc"))]
use crate::tls::{rustls, tokio_rustls, CertificateDer};

/// A TCP stream, plain or inside TLS: what [`connect`](crate::connect) returns and what
/// [`serve_tls`](crate::serve_tls) hands to its handler. With the `hyper` feature it can also be one stream of an
/// HTTP/2 connection, for handlers that serve HTTP/1.1 and HTTP/2 alike
/// (`sockeye::hyper::serve_connection`).
#[non_exhaustive]
pub enum MaybeTlsStream {
    /// Plain TCP (`ws://`).
    Plain(TcpStream),
    /// A client or server TLS session over TCP.
    #[cfg(any(feature = "rustls-ring", feature = "rustls-aws-lc"))]
    Tls(Box<tokio_rustls::TlsStream<TcpStream>>),
    /// One stream of an HTTP/2 connection (RFC 8441), plain or TLS underneath, which other
    /// streams share: it has no TCP or TLS state of its own.
    #[cfg(feature = "hyper")]
    Http2(Box<crate::hyper::UpgradedStream>),
}

impl fmt::Debug for MaybeTlsStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            MaybeTlsStream::Plain(_) => "Plain",
            #[cfg(any(feature = "rustls-ring", feature = "rustls-aws-lc"))]
            MaybeTlsStream::Tls(_) => "Tls",
            #[cfg(feature = "hyper")]
            MaybeTlsStream::Http2(_) => "Http2",
        };
        let mut f = f.debug_struct("MaybeTlsStream");
        f.field("kind", &kind)
            .field("peer", &self.tcp().and_then(|tcp| tcp.peer_addr().ok()));
        #[cfg(any(feature = "rustls-ring", feature = "rustls-aws-lc"))]
        f.field("alpn", &self.alpn_protocol().map(String::from_utf8_lossy));
        f.finish()
    }
}

#[cfg(feature = "hyper")]
impl From<crate::hyper::UpgradedStream> for MaybeTlsStream {
    fn from(stream: crate::hyper::UpgradedStream) -> Self {
        MaybeTlsStream::Http2(Box::new(stream))
    }
}

impl From<TcpStream> for MaybeTlsStream {
    fn from(tcp: TcpStream) -> Self {
        MaybeTlsStream::Plain(tcp)
    }
}

#[cfg(any(feature = "rustls-ring", feature = "rustls-aws-lc"))]
impl From<tokio_rustls::client::TlsStream<TcpStream>> for MaybeTlsStream {
    fn from(tls: tokio_rustls::client::TlsStream<TcpStream>) -> Self {
        MaybeTlsStream::Tls(Box::new(tokio_rustls::TlsStream::Client(tls)))
    }
}

#[cfg(any(feature = "rustls-ring", feature = "rustls-aws-lc"))]
impl From<tokio_rustls::server::TlsStream<TcpStream>> for MaybeTlsStream {
    fn from(tls: tokio_rustls::server::TlsStream<TcpStream>) -> Self {
        MaybeTlsStream::Tls(Box::new(tokio_rustls::TlsStream::Server(tls)))
    }
}

impl MaybeTlsStream {
    /// Whether the stream runs over TLS.
    pub fn is_tls(&self) -> bool {
        match self {
            #[cfg(any(feature = "rustls-ring", feature = "rustls-aws-lc"))]
            MaybeTlsStream::Tls(_) => true,
            _ => false,
        }
    }

    /// The TCP stream underneath (addresses, socket options); `None` for an HTTP/2 stream.
    pub fn tcp(&self) -> Option<&TcpStream> {
        match self {
            MaybeTlsStream::Plain(tcp) => Some(tcp),
            #[cfg(any(feature = "rustls-ring", feature = "rustls-aws-lc"))]
            MaybeTlsStream::Tls(tls) => Some(tls.get_ref().0),
            #[cfg(feature = "hyper")]
            MaybeTlsStream::Http2(_) => None,
        }
    }
}

#[cfg(any(feature = "rustls-ring", feature = "rustls-aws-lc"))]
impl MaybeTlsStream {
    /// The rustls session state: protocol version, cipher suite, and more.
    pub fn tls_state(&self) -> Option<&rustls::CommonState> {
        match self {
            MaybeTlsStream::Tls(tls) => Some(tls.get_ref().1),
            _ => None,
        }
    }

    /// The certificate chain the peer presented, end-entity first: the server's on a client,
    /// the client's on a server that asked for one (mutual TLS).
    pub fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        self.tls_state()?.peer_certificates()
    }

    /// The ALPN protocol agreed on (`http/1.1`), if any.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.tls_state()?.alpn_protocol()
    }

    /// The TLS version agreed on, if TLS.
    pub fn protocol_version(&self) -> Option<rustls::ProtocolVersion> {
        self.tls_state()?.protocol_version()
    }

    /// The cipher suite agreed on, if TLS.
    pub fn cipher_suite(&self) -> Option<rustls::SupportedCipherSuite> {
        self.tls_state()?.negotiated_cipher_suite()
    }

    /// On a server: the host name the client sent in SNI. `None` on a client, for plain
    /// streams, and for clients that sent none (connecting to an IP address).
    pub fn sni_hostname(&self) -> Option<&str> {
        match self {
            MaybeTlsStream::Tls(tls) => match &**tls {
                tokio_rustls::TlsStream::Server(s) => s.get_ref().1.server_name(),
                tokio_rustls::TlsStream::Client(_) => None,
            },
            _ => None,
        }
    }
}

impl AsyncRead for MaybeTlsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(any(feature = "rustls-ring", feature = "rustls-aws-lc"))]
            MaybeTlsStream::Tls(s) => Pin::new(&mut **s).poll_read(cx, buf),
            #[cfg(feature = "hyper")]
            MaybeTlsStream::Http2(s) => Pin::new(&mut **s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MaybeTlsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            #[cfg(any(feature = "rustls-ring", feature = "rustls-aws-lc"))]
            MaybeTlsStream::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
            #[cfg(feature = "hyper")]
            MaybeTlsStream::Http2(s) => Pin::new(&mut **s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            #[cfg(any(feature = "rustls-ring", feature = "rustls-aws-lc"))]
            MaybeTlsStream::Tls(s) => Pin::new(&mut **s).poll_write_vectored(cx, bufs),
            #[cfg(feature = "hyper")]
            MaybeTlsStream::Http2(s) => Pin::new(&mut **s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            MaybeTlsStream::Plain(s) => s.is_write_vectored(),
            #[cfg(any(feature = "rustls-ring", feature = "rustls-aws-lc"))]
            MaybeTlsStream::Tls(s) => s.is_write_vectored(),
            #[cfg(feature = "hyper")]
            MaybeTlsStream::Http2(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(s) => Pin::new(s).poll_flush(cx),
            #[cfg(any(feature = "rustls-ring", feature = "rustls-aws-lc"))]
            MaybeTlsStream::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
            #[cfg(feature = "hyper")]
            MaybeTlsStream::Http2(s) => Pin::new(&mut **s).poll_flush(cx),
        }
    }

    /// For TLS: sends close_notify, then shuts the TCP write side down.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            #[cfg(any(feature = "rustls-ring", feature = "rustls-aws-lc"))]
            MaybeTlsStream::Tls(s) => Pin::new(&mut **s).poll_shutdown(cx),
            #[cfg(feature = "hyper")]
            MaybeTlsStream::Http2(s) => Pin::new(&mut **s).poll_shutdown(cx),
        }
    }
}
