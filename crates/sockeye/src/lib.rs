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
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! The protocol itself lives in the sans-I/O crate `sockeye-proto`, re-exported as [`proto`].

#[cfg(feature = "axum")]
pub mod axum;
pub mod client;
pub mod config;
pub mod error;
pub mod forwarded;
#[cfg(feature = "hyper")]
pub mod hyper;
pub mod proxy;
pub mod server;
pub mod socket;
pub mod tls;

pub use client::{client_handshake, connect, connect_with, ClientRequest};
pub use config::Config;
pub use error::{Error, Result};
pub use proxy::Proxy;
pub use server::{accept, read_request, serve, Upgrade};
pub use socket::{Message, MessageCounts, MessageStats, ReadyState, WebSocket};
pub use tls::{serve_tls, ClientTls, MaybeTlsStream};

pub use sockeye_proto as proto;
pub use sockeye_proto::bytes::Bytes;
pub use sockeye_proto::http;
pub use sockeye_proto::{
    CloseCode, CloseEvent, CompressionPolicy, DataKind, DeflateConfig, PreparedMessage, Utf8Bytes,
};
