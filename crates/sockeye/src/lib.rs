//! Sockeye: a WebSocket client and server on tokio, with the API a browser developer knows.
//!
//! ```no_run
//! # async fn demo() -> sockeye::Result<()> {
//! let mut ws = sockeye::connect("ws://127.0.0.1:8080/echo").await?;
//! ws.send("hello").await?;
//! while let Some(msg) = ws.recv().await {
//!     match msg? {
//!         sockeye::Message::Text(text) => println!("message: {text}"),
//!         sockeye::Message::Binary(data) => println!("{} bytes", data.len()),
//!         sockeye::Message::Close(event) => println!("close: {} {}", event.code, event.reason),
//!         _ => {} // pings and pongs, when asked for
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! The protocol itself lives in the sans-I/O crate `sockeye-proto`, re-exported as [`proto`].
//!
//! # Features
//!
//! The defaults are `client`, `server`, `deflate`, `rustls-ring`, `webpki-roots` and
//! `native-roots`: everything but the hyper and axum integrations.
//!
//! - `client`: [`connect`] and [`connect_with`], which resolve, dial TCP, tunnel through HTTP
//!   CONNECT or SOCKS5 proxies (`proxy`, from `HTTPS_PROXY` / `NO_PROXY`) and, for `wss://`,
//!   run TLS.
//! - `server`: [`serve`], the accept loop on a `TcpListener` (with TLS, `serve_tls`), and the
//!   `forwarded` module, which finds a client's address behind trusted proxies.
//! - `deflate`: permessage-deflate (RFC 7692) through flate2, in `sockeye-proto`. Without it the
//!   extension is never offered or accepted, [`Config::deflate`] is ignored, and a compressed
//!   (RSV1) frame fails the connection with 1002 (RFC 6455 §5.2).
//! - `rustls-ring`, `rustls-aws-lc`: TLS through rustls with the ring or the aws-lc-rs crypto
//!   provider (aws-lc-rs wins when both are on). They bring the `tls` module (`ClientTls`,
//!   `serve_tls`, `CertResolver`, the `rustls` re-export), `MaybeTlsStream::Tls`, `Error::Tls`
//!   and `Error::TlsConfig`, `ClientRequest::tls`, and `hyper::serve` / `hyper::connect`.
//!   With neither, there is no rustls in the build and `wss://` fails with [`Error::Url`].
//! - `webpki-roots`, `native-roots`: the roots a TLS client trusts by default, the Mozilla
//!   bundle and the platform's.
//! - `hyper` (implies `client` and `server`): `sockeye::hyper`, WebSockets on requests hyper 1.x
//!   served, over HTTP/1.1 and HTTP/2 (RFC 8441). `axum` (implies `hyper`):
//!   `sockeye::axum::WebSocketUpgrade`.
//!
//! With no feature at all, [`client_handshake`] and [`accept`] / [`read_request`] still speak
//! `ws://` over any `AsyncRead + AsyncWrite` stream: no TLS, proxies or compression in the
//! build.

#![warn(missing_docs)]

#[cfg(feature = "axum")]
pub mod axum;
pub mod client;
/// [`Config`]: the limits, timeouts and switches of a connection.
pub mod config;
/// [`Error`] and its predicates.
pub mod error;
#[cfg(any(feature = "client", feature = "server"))]
pub mod forwarded;
#[doc = include_str!("guide.md")]
pub mod guide {}
#[cfg(feature = "hyper")]
pub mod hyper;
#[cfg(feature = "client")]
pub mod proxy;
pub mod server;
pub mod socket;
pub mod split;
pub mod stream;
#[cfg(any(feature = "rustls-ring", feature = "rustls-aws-lc"))]
pub mod tls;

pub use client::{client_handshake, ClientRequest};
#[cfg(feature = "client")]
pub use client::{connect, connect_with};
pub use config::Config;
pub use error::{Error, Result};
#[cfg(feature = "client")]
pub use proxy::Proxy;
#[cfg(feature = "server")]
pub use server::serve;
pub use server::{accept, read_request, Upgrade};
pub use socket::{Message, MessageCounts, MessageStats, ReadyState, WebSocket};
pub use split::{ReuniteError, WebSocketReader, WebSocketWriter};
pub use stream::MaybeTlsStream;
#[cfg(all(
    feature = "server",
    any(feature = "rustls-ring", feature = "rustls-aws-lc")
))]
pub use tls::serve_tls;
#[cfg(any(feature = "rustls-ring", feature = "rustls-aws-lc"))]
pub use tls::ClientTls;

pub use sockeye_proto as proto;
// The crates whose types and traits appear in this crate's signatures, so that a dependent can
// name the very versions Sockeye uses (README, "API policy").
pub use futures_core;
pub use futures_sink;
pub use sockeye_proto::bytes::Bytes;
pub use sockeye_proto::http;
pub use sockeye_proto::{
    CloseCode, CloseEvent, CompressionPolicy, DataKind, DeflateConfig, PreparedMessage, Utf8Bytes,
};
pub use url;
