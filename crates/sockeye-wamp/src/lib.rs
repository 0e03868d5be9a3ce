//! A WAMP v2 router for Sockeye, and a small client.
//!
//! The layering follows the rest of Sockeye (and the style guide's advice for WAMP): a
//! sans-I/O core, and a thin transport on top.
//!
//! - [`value`] and [`message`]: the value model every serializer shares, and the typed messages
//!   with the validation of every field (ids in `[1, 2^53]`, option and detail types; unknown
//!   keys ignored).
//! - [`core`]: the router — realms, session lifecycle, broker, dealer, authentication,
//!   authorization by role, meta API, call timeouts — as a state machine that takes
//!   `(ConnId, Message)` and emits `(ConnId, Message)`, told the time and asked for its next
//!   deadline (`handle_timeout`, `poll_timeout`). No tokio, no WebSocket types, no clock;
//!   tested message by message.
//! - [`serializer`]: `wamp.2.json` (text frames; byte strings as `"\0"` + base64),
//!   `wamp.2.msgpack` and `wamp.2.cbor` (binary frames), all into the same [`Value`], so sessions
//!   on different serializers talk to each other.
//! - [`transport`]: [`WampRouter`] mounts the core on Sockeye WebSockets: subprotocol choice by
//!   the server's preference, a bounded outbound queue per session and a [`SlowPolicy`] for
//!   subscribers that cannot keep up. [`serve_session`] is what `sockeye serve` mounts at
//!   `/wamp`.
//! - [`client`]: join (anonymous, ticket, wampcra, cryptosign), subscribe/publish,
//!   register/call, progressive results, cancel.
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
//!
//! WAMP is specified at <https://wamp-proto.org/> ("The Web Application Messaging Protocol").

pub mod auth;
pub mod client;
pub mod core;
pub mod message;
pub mod serializer;
pub mod transport;
pub mod uri;
pub mod value;

pub use crate::core::{Action, ConnId, Router, RouterConfig};
pub use message::{Message, Payload, ProtocolViolation};
pub use serializer::Serializer;
pub use transport::{
    serve_session, serve_session_until, LocalSession, SlowPolicy, TransportConfig, WampRouter,
};
pub use uri::{MatchPolicy, UriCheck};
pub use value::{Dict, Value};
