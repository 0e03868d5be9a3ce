//! WAMP v2 on Sockeye WebSockets: the router's transport, and a small client.
//!
//! Everything WAMP is without I/O — values, messages, serializers, URIs, authentication and
//! the router's state machine — lives in [`sockeye_wamp_proto`] (re-exported as [`proto`]).
//! This crate is the thin tokio layer on top:
//!
//! - [`transport`]: [`WampRouter`] mounts the router core on Sockeye WebSockets: subprotocol
//!   choice by the server's preference, a bounded outbound queue per session and a
//!   [`SlowPolicy`] for subscribers that cannot keep up. [`serve_session`] is what
//!   `sockeye serve` mounts at `/wamp`.
//! - [`client`]: join (anonymous, ticket, wampcra, cryptosign), subscribe/publish,
//!   register/call, progressive results, cancel.
//! - [`framing`]: which WebSocket frame carries a message of each serializer, for both.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use sockeye_wamp::{RouterConfig, TransportConfig, WampRouter};
//!
//! let router = WampRouter::new(RouterConfig::default(), TransportConfig::default());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! sockeye::serve(listener, sockeye::Config::default(), move |upgrade, _peer| {
//!     let router = router.clone();
//!     async move {
//!         let _ = router.serve(upgrade).await;
//!     }
//! })
//! .await
//! # }
//! ```
#![warn(missing_docs)]

pub mod client;
pub mod framing;
pub mod transport;

pub use sockeye_wamp_proto as proto;
pub use sockeye_wamp_proto::dict;
/// A WAMP message, named apart from the WebSocket [`sockeye::Message`] it travels in.
pub use sockeye_wamp_proto::Message as WampMessage;
pub use sockeye_wamp_proto::{
    ClusterConfig, ClusterEvent, Dict, MatchPolicy, Payload, ProtocolViolation, RemoteAnswer,
    RemoteCall, RemoteCancel, RouterConfig, Serializer, Settings, UriCheck, Value,
};
pub use transport::{
    serve_session, serve_session_until, ClusterLink, ClusterOut, LocalSession, SlowPolicy,
    TransportConfig, WampRouter,
};
