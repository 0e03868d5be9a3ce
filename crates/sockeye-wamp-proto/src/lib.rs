//! WAMP v2 without I/O: everything a WAMP router is, except sockets, tasks and clocks.
//!
//! In the manner of `sockeye-proto` (and of quinn-proto and python-websockets), this crate
//! takes bytes and messages in and gives bytes and messages out. It never imports tokio or a
//! WebSocket type; `sockeye-wamp` puts it on Sockeye's WebSockets.
//!
//! - [`value`] and [`message`]: the value model every serializer shares, and the typed messages
//!   with the validation of every field (ids in `[1, 2^53]`, option and detail types; unknown
//!   keys ignored).
//! - [`serializer`]: `wamp.2.json`, `wamp.2.msgpack` and `wamp.2.cbor`, all into the same
//!   [`Value`], and the WebSocket [`FrameType`] each one travels in.
//! - [`uri`]: URI rules and the exact, prefix and wildcard match policies.
//! - [`auth`]: ticket, WAMP-CRA and cryptosign, and authorization by role.
//! - [`id`]: the ids the router hands out.
//! - [`config`]: the router's settings, and the `[wamp]` section of a settings file they are
//!   read from (serde, validated).
//! - [`cluster`]: the broker across several routers (nodes): the events they forward, their
//!   wire format, and the NATS subjects that carry them; [`cluster::rpc`] does the same for
//!   the dealer (calls, answers, cancels).
//! - [`router`]: the router as a state machine that takes `(ConnId, Message)` and emits
//!   [`Action`]s, told the time and asked for its next deadline. Sessions, publish/subscribe,
//!   RPC and the meta API each have their module there.
//!
//! WAMP is specified at <https://wamp-proto.org/> ("The Web Application Messaging Protocol").
#![warn(missing_docs)]

pub mod auth;
pub mod cluster;
pub mod config;
pub mod id;
pub mod message;
pub mod router;
pub mod serializer;
pub mod uri;
pub mod value;

pub use cluster::{ClusterConfig, ClusterEvent};
pub use config::{RealmConfig, RouterConfig, Settings};
pub use message::{Message, Payload, ProtocolViolation};
pub use router::{
    error_uri, Action, ConnId, RemoteAnswer, RemoteCall, RemoteCancel, Router, RouterStats, TRUSTED,
};
pub use serializer::{FrameType, Serializer};
pub use uri::{MatchPolicy, UriCheck};
pub use value::{Dict, Value};
