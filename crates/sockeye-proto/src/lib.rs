//! Sans-I/O WebSocket protocol core: RFC 6455 framing, handshake, close codes and UTF-8 rules,
//! and RFC 7692 permessage-deflate.
//!
//! This crate contains no networking code, no async runtime and no clock. It turns bytes into
//! events and commands into bytes; an I/O layer (the `sockeye` crate, or your own) moves those
//! bytes and runs the timers. See [`connection::Connection`] for the calling contract.

#![warn(missing_docs)]

pub mod close;
pub mod connection;
pub mod deflate;
pub mod error;
pub mod extensions;
pub mod frame;
pub mod handshake;
pub mod mask;
pub mod message;
pub mod utf8;

pub use close::{CloseCode, CloseFrame};
pub use connection::{CloseEvent, Config, Connection, DataKind, DeflateStats, Event, Role, State};
#[cfg(feature = "deflate")]
pub use deflate::DeflateMemory;
pub use deflate::{CompressionPolicy, DeflateConfig, DeflateParams, PerMessageDeflate};
pub use error::{ProtocolError, UsageError};
pub use frame::{FrameHeader, OpCode};
pub use message::{Message, PreparedMessage, Utf8Bytes};

pub use bytes;
pub use http;
