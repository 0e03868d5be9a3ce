//! Many `sockeye serve` nodes as one.
//!
//! A node joins the others through a [`Backplane`]: [`InProcess`] when there is one node (or
//! several in one process, for tests), [`Nats`] (feature `nats`) when there are many. Sockeye
//! writes no cluster protocol of its own: NATS carries the traffic, JetStream keeps the room logs.
//!
//! What is decided here is sans-I/O and reads no clock:
//! - [`room`]: room names, what a room's log stores, the messages a chat client receives, and
//!   whether a reconnecting client can be given what it missed ([`room::recovery`]);
//! - [`presence`]: who is in which room across the nodes, from join and leave notices and
//!   periodic full reports, with nodes that went silent forgotten;
//! - [`subject`]: NATS subject matching (`*` and `>`), used by the in-process backplane so that it
//!   routes exactly as NATS does.
//!
//! The backplanes are the I/O: a thin layer that moves bytes.

#![warn(missing_docs)]

mod backplane;
#[cfg(feature = "nats")]
mod nats;
pub mod presence;
pub mod room;
pub mod subject;
#[cfg(feature = "test-support")]
#[doc(hidden)]
pub mod test_support;

pub use backplane::{
    Backplane, BoxFuture, Entry, Error, Feed, InProcess, Kept, Latest, Listener, Log, Received,
};
#[cfg(feature = "nats")]
pub use nats::Nats;

/// The subject prefix every Sockeye subject starts with.
pub const PREFIX: &str = "sockeye";
