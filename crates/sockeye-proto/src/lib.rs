//! Sans-I/O WebSocket protocol core: RFC 6455 framing, handshake, close codes and UTF-8 rules,
//! and RFC 7692 permessage-deflate.
//!
//! This crate contains no networking code, no async runtime and no clock. It turns bytes into
//! events and commands into bytes; an I/O layer (the `sockeye` crate, or your own) moves those
//! bytes and runs the timers. See [`connection::Connection`] for the calling contract.
//!
//! # Example
//!
//! A server accepts a handshake and echoes a message, with the network replaced by byte
//! slices:
//!
//! ```
//! use sockeye_proto::bytes::Buf;
//! use sockeye_proto::{handshake, ConnectionConfig, Connection, Event, Role};
//!
//! // The client's request, and its first frame right behind it: a masked text frame
//! // "Hello" (RFC 6455 §5.7).
//! let mut input = b"GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
//!     Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
//!     Sec-WebSocket-Version: 13\r\n\r\n"
//!     .to_vec();
//! input.extend_from_slice(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
//!
//! let (request, head_len) = handshake::parse_request(&input, 8192)?.expect("a whole head");
//! let offer = handshake::validate_request(&request)?;
//! let negotiated = offer.negotiate(None, None);
//! let response = handshake::write_response(&handshake::accept_response(&offer, &negotiated), b"");
//! assert!(response.starts_with(b"HTTP/1.1 101"));
//!
//! // What followed the head already belongs to the WebSocket.
//! let mut conn = Connection::new(Role::Server, ConnectionConfig::default());
//! conn.receive_data(&input[head_len..]);
//! while let Some(event) = conn.poll_event() {
//!     if let Event::Message(message) = event {
//!         conn.send_owned(message)?;
//!     }
//! }
//! // A server's frames are not masked.
//! let out = conn.write_buf();
//! assert_eq!(&out[..], b"\x81\x05Hello");
//! let written = out.len(); // as if the socket took it all
//! out.advance(written);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

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
pub use connection::{
    CloseEvent, Connection, ConnectionConfig, DataKind, DeflateStats, Event, Role, State,
};
#[cfg(feature = "deflate")]
pub use deflate::DeflateMemory;
pub use deflate::{CompressionPolicy, DeflateConfig, DeflateParams, PerMessageDeflate};
pub use error::{ProtocolError, UsageError};
pub use frame::{FrameHeader, OpCode};
pub use message::{DataMessage, PreparedMessage, Utf8Bytes};

pub use bytes;
pub use http;
