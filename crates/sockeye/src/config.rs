use std::time::Duration;

use sockeye_proto::{CompressionPolicy, DeflateConfig};

/// Settings of a client or server connection.
///
/// Start from `Config::default()` and change what you need, with the setters or by assigning
/// fields; new fields may be added, so the struct cannot be built with a literal.
///
/// ```
/// let config = sockeye::Config::default()
///     .max_message_size(1 << 20)
///     .ping_interval(Some(std::time::Duration::from_secs(20)))
///     .receive_pongs(true);
/// assert_eq!(config.protocol.max_message_size, 1 << 20);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Frame and message size limits, auto-pong.
    pub protocol: sockeye_proto::ConnectionConfig,
    /// permessage-deflate: offered by a client, accepted by a server. `None` disables it; so
    /// does a build without the `deflate` feature, whose default is `None` and which ignores
    /// any value set here.
    pub deflate: Option<DeflateConfig>,
    /// The largest opening-handshake head accepted.
    pub max_handshake_size: usize,
    /// Time allowed for the whole opening handshake (slow-loris guard).
    pub handshake_timeout: Duration,
    /// Time allowed for the peer to finish the closing handshake.
    pub close_timeout: Duration,
    /// Send a ping this often while the connection is idle; `None` disables keepalive.
    pub ping_interval: Option<Duration>,
    /// A pong must arrive this soon after a keepalive ping, or the peer is declared dead.
    pub ping_timeout: Duration,
    /// Sending waits (backpressure) while more than this many bytes are queued, and reading
    /// stops until they drain: a peer that does not read what it is sent cannot make us queue
    /// more (answers to its pings included).
    pub write_buffer_limit: usize,
    /// A connection whose queued bytes make no progress for this long fails with
    /// [`Error::Timeout`](crate::Error::Timeout): the peer stopped reading. This runs while a
    /// send waits, when keepalive cannot. `None` waits for ever.
    pub write_timeout: Option<Duration>,
    /// Deliver received pongs to the application as [`Message::Pong`](crate::Message::Pong)
    /// (off by default: keepalive consumes them).
    pub receive_pongs: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            protocol: sockeye_proto::ConnectionConfig::default(),
            deflate: sockeye_proto::deflate::AVAILABLE.then(DeflateConfig::default),
            max_handshake_size: 16 << 10,
            handshake_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(5),
            ping_interval: None,
            ping_timeout: Duration::from_secs(20),
            write_buffer_limit: 128 << 10,
            write_timeout: Some(Duration::from_secs(30)),
            receive_pongs: false,
        }
    }
}

impl Config {
    /// No permessage-deflate: not offered by a client, not accepted by a server.
    pub fn without_compression(mut self) -> Self {
        self.deflate = None;
        self
    }

    /// permessage-deflate with a [`CompressionPolicy`]'s settings (the default is
    /// `Balanced`).
    pub fn compression(mut self, policy: CompressionPolicy) -> Self {
        self.deflate = Some(DeflateConfig::with_policy(policy));
        self
    }

    /// The largest message (after decompression) and frame accepted; larger ones fail the
    /// connection with 1009 (RFC 6455 §7.4.1).
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.protocol.max_message_size = bytes;
        self.protocol.max_frame_size = bytes;
        self
    }

    /// Keepalive: ping this often while idle (`None`: never).
    pub fn ping_interval(mut self, every: Option<Duration>) -> Self {
        self.ping_interval = every;
        self
    }

    /// How long keepalive waits for a pong before the peer is declared dead.
    pub fn ping_timeout(mut self, timeout: Duration) -> Self {
        self.ping_timeout = timeout;
        self
    }

    /// The time allowed for the whole opening handshake.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// The time allowed for the peer to finish the closing handshake.
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// The largest opening-handshake head accepted.
    pub fn max_handshake_size(mut self, bytes: usize) -> Self {
        self.max_handshake_size = bytes;
        self
    }

    /// Bytes queued for the peer above which sending waits and reading pauses.
    pub fn write_buffer_limit(mut self, bytes: usize) -> Self {
        self.write_buffer_limit = bytes;
        self
    }

    /// How long queued bytes may make no progress before the connection fails (`None`: for
    /// ever).
    pub fn write_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// Deliver received pongs as [`Message::Pong`](crate::Message::Pong).
    pub fn receive_pongs(mut self, on: bool) -> Self {
        self.receive_pongs = on;
        self
    }
}
