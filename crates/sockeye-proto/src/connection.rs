//! The WebSocket connection state machine (RFC 6455 §5-§7), without I/O.
//!
//! The contract, after python-websockets and quinn-proto:
//! - network input: [`Connection::read_buf`] + [`Connection::process`] (or
//!   [`Connection::receive_data`]), and [`Connection::receive_eof`];
//! - application commands: `send_*` and [`Connection::fail`];
//! - outputs, to drain after every input or command: [`Connection::poll_event`] for the
//!   application, [`Connection::write_buf`] for the network (or, without a copy of large
//!   payloads, [`Connection::write_slices`] and [`Connection::advance_written`]), and
//!   [`Connection::eof_to_send`], which asks the I/O layer to close the transport once the write
//!   buffer is empty.
//!
//! Errors by the peer never come back as `Err`: the connection maps them to a close code, starts
//! the closing handshake, keeps the error (see [`Connection::error`]) and discards further input.
//!
//! ```text
//!            send_close, or failure
//!   Open ─────────────────────────────────► Closing
//!     │                                        │ peer's close frame received,
//!     │ peer's close frame received            │ or EOF
//!     │ (the reply is queued), or EOF          │
//!     └───────────────────► Closed ◄───────────┘
//! ```
//!
//! `Closed` means the protocol is done; the I/O layer may still have to write what is
//! buffered (the reply to a close frame) and close the transport.

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes, BytesMut};

use crate::close::{CloseCode, CloseFrame, MAX_REASON_LEN};
use crate::deflate::PerMessageDeflate;
use crate::error::{ProtocolError, UsageError};
use crate::frame::{FrameHeader, OpCode, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, RSV1};
use crate::mask::apply_mask;
use crate::message::{DataMessage, PreparedMessage, Utf8Bytes};
use crate::utf8::Utf8Validator;

/// Which end of the connection this is. It decides masking (§5.3) and who closes the
/// transport first (§7.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Masks every frame it sends, and refuses masked frames.
    Client,
    /// Sends unmasked frames, refuses unmasked ones, and closes the transport first.
    Server,
}

/// The connection's state, as `WebSocket.readyState` reports it after the opening handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Messages flow both ways.
    Open,
    /// This side sent a close frame (or failed the connection) and waits for the peer's.
    /// Nothing more can be sent; the peer's data is still delivered unless the connection
    /// failed.
    Closing,
    /// Both close frames are sent or queued, or the transport ended. Input is no longer
    /// parsed; events already queued are still there to poll.
    Closed,
}

/// Limits and switches of the protocol core.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectionConfig {
    /// The largest frame payload accepted, in bytes; larger frames fail the connection with
    /// 1009. A compressed frame may be about 0.03% larger, what deflate adds to data that does
    /// not compress. Applies to received frames only. Default 64 MiB.
    pub max_frame_size: usize,
    /// The largest message accepted, in bytes, after decompression; larger ones fail with
    /// 1009. Applies to received messages only. Default 64 MiB.
    pub max_message_size: usize,
    /// Answer every ping with a pong (§5.5.2). On by default. No pong is sent once this side
    /// has sent its close frame, and while more than [`PONG_BACKLOG`] bytes wait to be
    /// written only the latest ping may get one (§5.5.3).
    pub auto_pong: bool,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        // Autobahn's 9.* cases send 16 MiB messages in one frame.
        ConnectionConfig {
            max_frame_size: 64 << 20,
            max_message_size: 64 << 20,
            auto_pong: true,
        }
    }
}

/// What the connection reports to the application.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A complete data message, reassembled, inflated and (for text) validated.
    Message(DataMessage),
    /// A ping and its payload. With [`ConnectionConfig::auto_pong`] the pong is already queued.
    Ping(Bytes),
    /// A pong and its payload: the answer to a ping, or an unsolicited heartbeat (§5.5.3).
    Pong(Bytes),
    /// The peer's close frame; `None` when it carried no status code. The connection has
    /// already queued its own close frame in reply, if it had not sent one, and ignores
    /// further input.
    CloseReceived(Option<CloseFrame>),
}

/// How the connection ended, as the browser's `CloseEvent` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CloseEvent {
    /// The peer's close code; 1005 when its close frame had none, 1006 when the connection
    /// did not close cleanly.
    pub code: CloseCode,
    /// The peer's close reason; empty when it gave none or the close was not clean.
    pub reason: String,
    /// True when the closing handshake completed: both sides sent a close frame.
    pub was_clean: bool,
}

impl CloseEvent {
    /// A clean close with `code` and `reason`, as a completed closing handshake reports it
    /// (and as a client library builds a close request).
    pub fn new(code: CloseCode, reason: impl Into<String>) -> Self {
        CloseEvent {
            code,
            reason: reason.into(),
            was_clean: true,
        }
    }

    /// The event of a connection that ended without a closing handshake, or that this side
    /// failed: code 1006, no reason, not clean.
    pub fn abnormal() -> Self {
        CloseEvent {
            code: CloseCode::ABNORMAL,
            reason: String::new(),
            was_clean: false,
        }
    }
}

/// Bytes of compressed messages before and after permessage-deflate, for both directions.
/// Messages that went uncompressed (below the threshold, or not smaller compressed) are not
/// counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateStats {
    /// Payload bytes of compressed messages sent, before compression.
    pub sent_raw: u64,
    /// The same messages' payload bytes on the wire.
    pub sent_compressed: u64,
    /// Payload bytes of compressed messages received, after inflating.
    pub received_raw: u64,
    /// The same messages' payload bytes on the wire.
    pub received_compressed: u64,
}

/// The kind of a data message being sent in fragments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataKind {
    /// A text message: the fragments together must be UTF-8.
    Text,
    /// A binary message.
    Binary,
}

enum Parse {
    Header,
    Payload {
        header: FrameHeader,
        remaining: usize,
        offset: usize,
        /// Bytes at the front of the read buffer already unmasked (and, for text, validated)
        /// in place while a whole-frame message waits for the rest of its frame.
        checked: usize,
    },
    /// After a failure or the peer's close frame: input is ignored.
    Discard,
}

/// A data message being received in pieces.
struct Incoming {
    text: bool,
    compressed: bool,
    /// Compressed bytes received so far (compressed messages only).
    compressed_len: usize,
    buf: Vec<u8>,
    utf8: Utf8Validator,
}

struct Outgoing {
    compressed: bool,
}

/// Where client masking keys come from: the OS's CSPRNG (through a per-thread batch, so a
/// frame does not cost a system call), or a fixed key for tests that compare wire bytes.
enum MaskKeys {
    Random,
    Fixed([u8; 4]),
}

impl MaskKeys {
    fn next(&self) -> [u8; 4] {
        match self {
            MaskKeys::Fixed(key) => *key,
            MaskKeys::Random => random_mask_key(),
        }
    }
}

fn random_mask_key() -> [u8; 4] {
    use std::cell::RefCell;
    thread_local! {
        static POOL: RefCell<([u8; 256], usize)> = const { RefCell::new(([0; 256], 256)) };
    }
    POOL.with(|pool| {
        let (bytes, used) = &mut *pool.borrow_mut();
        if *used + 4 > bytes.len() {
            // getrandom only fails on platforms without an entropy source; a counter-derived
            // key is still better than no masking there.
            if getrandom::fill(bytes).is_err() {
                for (i, b) in bytes.iter_mut().enumerate() {
                    *b = b.wrapping_mul(31).wrapping_add(i as u8 ^ 0x5a);
                }
            }
            *used = 0;
        }
        let key = [
            bytes[*used],
            bytes[*used + 1],
            bytes[*used + 2],
            bytes[*used + 3],
        ];
        *used += 4;
        key
    })
}

/// Single-frame messages up to this size are assembled in the read buffer and handed out
/// without a copy; larger ones stream into a message buffer as they arrive, so that a header
/// claiming a huge length never reserves memory its sender has not sent.
const WHOLE_FRAME_LIMIT: usize = 1 << 20;

/// Server payloads of at least this many bytes are not copied into the write buffer: they are
/// queued as the shared `Bytes` they are and go out behind their header in one vectored write.
/// Below it, copying is cheaper than another `iovec`.
const ZERO_COPY_MIN: usize = 1024;

/// While more than this many bytes wait to be written, the automatic pong to a ping takes the
/// place of the previous one if that one is still the last thing queued and none of it was
/// written: a peer that sends pings and never reads then costs one pong, not one per ping
/// (§5.5.3 lets an endpoint answer only the most recent ping). Below it every ping gets its
/// own pong, as peers such as Autobahn expect.
pub const PONG_BACKLOG: usize = 64 << 10;

/// One side of a WebSocket connection, after the opening handshake.
pub struct Connection {
    role: Role,
    config: ConnectionConfig,
    rbuf: BytesMut,
    wbuf: BytesMut,
    /// Shared payloads to write, in order: each entry is preceded on the wire by the next
    /// `head` bytes of `wbuf`. Whatever of `wbuf` is left after the last entry follows it.
    wqueue: VecDeque<(usize, Bytes)>,
    /// Bytes in `wqueue`'s payloads, and the sum of its `head`s.
    wqueued: usize,
    wqueued_heads: usize,
    parse: Parse,
    incoming: Option<Incoming>,
    outgoing: Option<Outgoing>,
    events: VecDeque<Event>,
    /// Boxed: most connections have none, and every connection would carry its size.
    deflate: Option<Box<PerMessageDeflate>>,
    mask_keys: MaskKeys,
    close_sent: bool,
    close_rcvd: Option<Option<CloseFrame>>,
    eof_rcvd: bool,
    eof_to_send: bool,
    error: Option<ProtocolError>,
    scratch: Vec<u8>,
    deflate_stats: DeflateStats,
    /// Header and payload of the last frame started (at most [`WHOLE_FRAME_LIMIT`]): the size
    /// of the next read between frames, since a peer's frames tend to be alike.
    last_frame_len: usize,
    /// Frames and payloads queued for writing so far, counting from 1.
    appends: u64,
    /// The automatic pong queued last: `appends` right after it (0: none) and its length. See
    /// [`PONG_BACKLOG`].
    auto_pong: (u64, u8),
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("role", &self.role)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// An open connection for `role`, to be created once the opening handshake has
    /// succeeded. Add permessage-deflate with [`Connection::with_deflate`] if it was agreed.
    pub fn new(role: Role, config: ConnectionConfig) -> Self {
        Connection {
            role,
            config,
            rbuf: BytesMut::new(),
            wbuf: BytesMut::new(),
            wqueue: VecDeque::new(),
            wqueued: 0,
            wqueued_heads: 0,
            parse: Parse::Header,
            incoming: None,
            outgoing: None,
            events: VecDeque::new(),
            deflate: None,
            mask_keys: MaskKeys::Random,
            close_sent: false,
            close_rcvd: None,
            eof_rcvd: false,
            eof_to_send: false,
            error: None,
            appends: 0,
            auto_pong: (0, 0),
            scratch: Vec::new(),
            deflate_stats: DeflateStats::default(),
            last_frame_len: 0,
        }
    }

    /// Enables permessage-deflate with the parameters the opening handshake agreed on. The
    /// codec must be made for the same role. Call it before any frame is sent or received.
    pub fn with_deflate(mut self, deflate: Option<PerMessageDeflate>) -> Self {
        self.deflate = deflate.map(Box::new);
        self
    }

    /// Masks every client frame with `key` instead of a random one. For tests that compare
    /// wire bytes only: RFC 6455 §5.3 requires unpredictable keys.
    #[doc(hidden)]
    pub fn set_fixed_mask_key_for_tests(&mut self, key: [u8; 4]) {
        self.mask_keys = MaskKeys::Fixed(key);
    }

    /// Which end this is.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The limits the connection was made with.
    pub fn config(&self) -> &ConnectionConfig {
        &self.config
    }

    /// Where the closing handshake stands; see [`State`] and the module docs.
    pub fn state(&self) -> State {
        if self.eof_rcvd || (self.close_sent && self.close_rcvd.is_some()) {
            State::Closed
        } else if self.close_sent || self.close_rcvd.is_some() || self.error.is_some() {
            State::Closing
        } else {
            State::Open
        }
    }

    /// The error that failed the connection, if any: the peer's protocol violation, or the
    /// error given to [`Connection::fail`]. The first one is kept.
    pub fn error(&self) -> Option<&ProtocolError> {
        self.error.as_ref()
    }

    /// Whether permessage-deflate is in use on this connection.
    pub fn is_deflate_enabled(&self) -> bool {
        self.deflate.is_some()
    }

    /// What permessage-deflate saved so far on this connection.
    pub fn deflate_stats(&self) -> DeflateStats {
        self.deflate_stats
    }

    // ---- network input ----

    /// The buffer the I/O layer reads into; call [`Connection::process`] after adding bytes.
    pub fn read_buf(&mut self) -> &mut BytesMut {
        &mut self.rbuf
    }

    /// How many more bytes the frame being received needs, so the I/O layer can size its reads.
    /// 0 between frames, even when part of a header has arrived.
    pub fn bytes_wanted(&self) -> usize {
        match &self.parse {
            Parse::Payload { remaining, .. } => remaining.saturating_sub(self.rbuf.len()),
            _ => 0,
        }
    }

    /// How much room the next read should have: the rest of the frame being received, or,
    /// between frames, a frame like the last one, each with room for the header of the frame
    /// after it. A read that does not fill its buffer tells a readiness-based I/O layer (such
    /// as tokio's) that the socket is drained; a brim-full one costs a system call that only
    /// learns there is nothing more.
    pub fn read_size_hint(&self) -> usize {
        match &self.parse {
            Parse::Payload { remaining, .. } => {
                remaining.saturating_sub(self.rbuf.len()) + MAX_HEADER_LEN
            }
            _ => self.last_frame_len + MAX_HEADER_LEN,
        }
    }

    /// Receives bytes from the network: copies them into the read buffer and processes them.
    /// Ignored after the connection failed or the peer's close frame arrived.
    pub fn receive_data(&mut self, data: &[u8]) {
        if matches!(self.parse, Parse::Discard) {
            return;
        }
        self.rbuf.extend_from_slice(data);
        self.process();
    }

    /// Parses what [`Connection::read_buf`] holds, up to the next event; the frames after it
    /// are parsed as [`Connection::poll_event`] is drained. Afterwards drain `poll_event`,
    /// `write_buf` and `eof_to_send`. A protocol error fails the connection
    /// ([`Connection::fail`]) rather than being returned.
    pub fn process(&mut self) {
        if let Err(err) = self.parse_frames() {
            self.fail(err);
        }
        if matches!(self.parse, Parse::Discard) {
            self.rbuf.clear();
        }
    }

    /// The peer closed its side of the transport. Buffered input and any message being
    /// received are dropped, and the state becomes [`State::Closed`].
    pub fn receive_eof(&mut self) {
        self.eof_rcvd = true;
        self.parse = Parse::Discard;
        self.rbuf = BytesMut::new();
        self.incoming = None;
    }

    // ---- outputs ----

    /// The next event. Frames are parsed one event at a time, so the application can answer a
    /// message before a later frame in the same read fails the connection (Autobahn 3.2, 5.15).
    pub fn poll_event(&mut self) -> Option<Event> {
        if self.events.is_empty() && !self.rbuf.is_empty() {
            self.process();
        }
        self.events.pop_front()
    }

    /// Bytes to write to the network. The I/O layer writes from the front and `advance`s.
    ///
    /// Payloads queued without a copy (large server messages, [`PreparedMessage`]s) are copied
    /// in here first; an I/O layer that can write vectors uses [`Connection::write_slices`].
    pub fn write_buf(&mut self) -> &mut BytesMut {
        if !self.wqueue.is_empty() {
            let mut all = BytesMut::with_capacity(self.buffered_amount());
            let mut rest = self.wbuf.split();
            for (head, bytes) in self.wqueue.drain(..) {
                all.extend_from_slice(&rest.split_to(head));
                all.extend_from_slice(&bytes);
            }
            all.extend_from_slice(&rest);
            self.wbuf = all;
            self.wqueued = 0;
            self.wqueued_heads = 0;
        }
        &mut self.wbuf
    }

    /// Fills `dst` with the bytes to write, in order, and returns how many slices it used.
    /// Pass the number of bytes written to [`Connection::advance_written`].
    pub fn write_slices<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut used = 0;
        let mut pos = 0;
        for (head, bytes) in &self.wqueue {
            for part in [&self.wbuf[pos..pos + head], &bytes[..]] {
                if used == dst.len() {
                    return used;
                }
                if !part.is_empty() {
                    dst[used] = IoSlice::new(part);
                    used += 1;
                }
            }
            pos += head;
        }
        if used < dst.len() && pos < self.wbuf.len() {
            dst[used] = IoSlice::new(&self.wbuf[pos..]);
            used += 1;
        }
        used
    }

    /// Whether payloads are queued beside the write buffer, so that writing them takes
    /// [`Connection::write_slices`] (or a copy by [`Connection::write_buf`]).
    pub fn has_queued_payloads(&self) -> bool {
        !self.wqueue.is_empty()
    }

    /// Drops the first `n` bytes of what [`Connection::write_slices`] gave.
    ///
    /// # Panics
    /// If `n` exceeds [`Connection::buffered_amount`].
    pub fn advance_written(&mut self, mut n: usize) {
        while n > 0 {
            let Some((head, bytes)) = self.wqueue.front_mut() else {
                self.wbuf.advance(n);
                return;
            };
            let k = n.min(*head);
            self.wbuf.advance(k);
            *head -= k;
            self.wqueued_heads -= k;
            n -= k;
            if *head == 0 {
                let k = n.min(bytes.len());
                bytes.advance(k);
                self.wqueued -= k;
                n -= k;
                if bytes.is_empty() {
                    self.wqueue.pop_front();
                }
            }
        }
    }

    /// Bytes queued and not yet written: `WebSocket.bufferedAmount`.
    pub fn buffered_amount(&self) -> usize {
        self.wbuf.len() + self.wqueued
    }

    /// Whether the I/O layer should close the transport once `write_buf` is empty. The server
    /// closes TCP first (§7.1.1); a client waits for the server to do it.
    pub fn eof_to_send(&self) -> bool {
        self.eof_to_send
    }

    /// Whether the peer is expected to close: a close frame was sent, or the connection
    /// failed. The I/O layer arms its close timeout while this holds.
    pub fn close_expected(&self) -> bool {
        self.close_sent || self.error.is_some()
    }

    /// How the connection ended, once it has: the close event for the application. Clean, with
    /// the peer's code and reason, when both close frames were exchanged and nothing failed;
    /// otherwise, and before the end, [`CloseEvent::abnormal`].
    pub fn close_event(&self) -> CloseEvent {
        match (&self.error, self.close_sent, &self.close_rcvd) {
            (None, true, Some(rcvd)) => match rcvd {
                Some(frame) => CloseEvent {
                    code: frame.code,
                    reason: frame.reason.clone(),
                    was_clean: true,
                },
                None => CloseEvent {
                    code: CloseCode::NO_STATUS,
                    reason: String::new(),
                    was_clean: true,
                },
            },
            _ => CloseEvent::abnormal(),
        }
    }

    // ---- application commands ----

    /// Queues a text message as one frame, compressed when permessage-deflate is in use, the
    /// message reaches its threshold and compression makes it smaller. Fails with
    /// [`UsageError::Closed`] once a close frame was sent, and with
    /// [`UsageError::FragmentInProgress`] while a fragmented message is being sent. No size
    /// limit applies.
    pub fn send_text(&mut self, text: &str) -> Result<(), UsageError> {
        self.send_message(OpCode::Text, text.as_bytes())
    }

    /// Queues a binary message; as [`Connection::send_text`].
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), UsageError> {
        self.send_message(OpCode::Binary, data)
    }

    /// Queues a message; as [`Connection::send_text`]. The payload is copied: see
    /// [`Connection::send_owned`] to avoid that.
    pub fn send(&mut self, message: &DataMessage) -> Result<(), UsageError> {
        match message {
            DataMessage::Text(t) => self.send_message(OpCode::Text, t.as_bytes()),
            DataMessage::Binary(b) => self.send_message(OpCode::Binary, b),
        }
    }

    /// Sends a message the caller gives up, so that a server can write a large payload from
    /// where it is (a received message being echoed, a shared broadcast) instead of copying it.
    /// Only a server's uncompressed payloads of 1 KiB or more are queued that way; the rest go
    /// as with [`Connection::send`]. Fails as [`Connection::send_text`] does.
    pub fn send_owned(&mut self, message: DataMessage) -> Result<(), UsageError> {
        let (opcode, payload) = match message {
            DataMessage::Text(t) => (OpCode::Text, t.into_bytes()),
            DataMessage::Binary(b) => (OpCode::Binary, b),
        };
        let compress = self
            .deflate
            .as_ref()
            .is_some_and(|d| d.should_compress(payload.len()));
        if self.role == Role::Server && payload.len() >= ZERO_COPY_MIN && !compress {
            self.check_message_allowed()?;
            self.write_header(opcode, 0, true, None, payload.len());
            self.queue_payload(payload);
            Ok(())
        } else {
            self.send_message(opcode, &payload)
        }
    }

    /// Sends a message framed once for many connections. A server queues the shared frame
    /// itself (no copy, no re-framing); a client must mask, so it frames a copy. The frame is
    /// never compressed, which permessage-deflate allows per message (RFC 7692 §6).
    pub fn send_prepared(&mut self, message: &PreparedMessage) -> Result<(), UsageError> {
        self.check_message_allowed()?;
        match self.role {
            Role::Server => self.queue_payload(message.frame().clone()),
            Role::Client => self.write_frame(message.opcode(), 0, true, message.payload()),
        }
        Ok(())
    }

    fn check_message_allowed(&self) -> Result<(), UsageError> {
        if self.close_sent {
            return Err(UsageError::Closed);
        }
        if self.outgoing.is_some() {
            return Err(UsageError::FragmentInProgress);
        }
        Ok(())
    }

    fn queue_payload(&mut self, payload: Bytes) {
        if payload.is_empty() {
            return;
        }
        self.appends += 1;
        let head = self.wbuf.len() - self.wqueued_heads;
        self.wqueued += payload.len();
        self.wqueued_heads += head;
        self.wqueue.push_back((head, payload));
    }

    fn send_message(&mut self, opcode: OpCode, payload: &[u8]) -> Result<(), UsageError> {
        self.check_message_allowed()?;
        match self.deflate.as_mut() {
            Some(deflate) if deflate.should_compress(payload.len()) => {
                let mut out = std::mem::take(&mut self.scratch);
                out.clear();
                if deflate.compress_message(payload, &mut out) {
                    self.deflate_stats.sent_raw += payload.len() as u64;
                    self.deflate_stats.sent_compressed += out.len() as u64;
                    self.write_frame(opcode, RSV1, true, &out);
                } else {
                    self.write_frame(opcode, 0, true, payload);
                }
                self.scratch = out;
            }
            _ => self.write_frame(opcode, 0, true, payload),
        }
        Ok(())
    }

    /// Sends one fragment of a message (§5.4). `kind` starts a new message and must be `None`
    /// for the following fragments; `fin` ends the message. Control frames may be sent between
    /// fragments, other messages may not.
    ///
    /// Text fragments are not checked: the caller makes sure that together they are UTF-8
    /// (one fragment may end inside a code point). With permessage-deflate every fragment of
    /// the message is compressed, whatever its size.
    pub fn send_fragment(
        &mut self,
        kind: Option<DataKind>,
        payload: &[u8],
        fin: bool,
    ) -> Result<(), UsageError> {
        if self.close_sent {
            return Err(UsageError::Closed);
        }
        let (opcode, first) = match (kind, &self.outgoing) {
            (Some(_), Some(_)) => return Err(UsageError::FragmentInProgress),
            (None, None) => return Err(UsageError::NoFragmentInProgress),
            (Some(DataKind::Text), None) => (OpCode::Text, true),
            (Some(DataKind::Binary), None) => (OpCode::Binary, true),
            (None, Some(_)) => (OpCode::Continuation, false),
        };
        if first {
            let compressed = self.deflate.as_ref().is_some_and(|d| d.compress_enabled());
            self.outgoing = Some(Outgoing { compressed });
        }
        let compressed = self.outgoing.as_ref().is_some_and(|o| o.compressed);
        if compressed {
            let deflate = self.deflate.as_mut().expect("compressed implies deflate");
            let mut out = std::mem::take(&mut self.scratch);
            out.clear();
            deflate.compress(payload, &mut out, fin);
            self.deflate_stats.sent_raw += payload.len() as u64;
            self.deflate_stats.sent_compressed += out.len() as u64;
            self.write_frame(opcode, if first { RSV1 } else { 0 }, fin, &out);
            self.scratch = out;
        } else {
            self.write_frame(opcode, 0, fin, payload);
        }
        if fin {
            self.outgoing = None;
        }
        Ok(())
    }

    /// Queues a ping (§5.5.2), which the peer answers with a pong carrying the same payload.
    /// The payload is at most 125 bytes; fails with [`UsageError::Closed`] once a close frame
    /// was sent.
    pub fn send_ping(&mut self, payload: &[u8]) -> Result<(), UsageError> {
        self.send_control(OpCode::Ping, payload)
    }

    /// Queues a pong (§5.5.3): a heartbeat that needs no answer, or the answer to a ping when
    /// [`ConnectionConfig::auto_pong`] is off. Limits as [`Connection::send_ping`].
    pub fn send_pong(&mut self, payload: &[u8]) -> Result<(), UsageError> {
        self.send_control(OpCode::Pong, payload)
    }

    fn send_control(&mut self, opcode: OpCode, payload: &[u8]) -> Result<(), UsageError> {
        if self.close_sent {
            return Err(UsageError::Closed);
        }
        if payload.len() > MAX_CONTROL_PAYLOAD {
            return Err(UsageError::ControlPayloadTooLong);
        }
        self.write_frame(opcode, 0, true, payload);
        Ok(())
    }

    /// Starts the closing handshake (§7.1.2). `None` sends a close frame without a status
    /// code. Codes are checked against §7.4; the stricter browser rule belongs to the API layer.
    pub fn send_close(&mut self, frame: Option<CloseFrame>) -> Result<(), UsageError> {
        if self.close_sent {
            return Err(UsageError::Closed);
        }
        if let Some(frame) = &frame {
            if !frame.code.is_sendable() {
                return Err(UsageError::InvalidCloseCode(frame.code.0));
            }
            if frame.reason.len() > MAX_REASON_LEN {
                return Err(UsageError::CloseReasonTooLong);
            }
        }
        self.write_close(frame.as_ref());
        if self.close_rcvd.is_some() && self.role == Role::Server {
            self.eof_to_send = true;
        }
        Ok(())
    }

    /// Fails the connection (§7.1.7) with the error's close code: queues a close frame (unless
    /// one was sent or the transport has ended), discards all further input and, on a server,
    /// asks for the transport to be closed. The application may call it too, e.g. for a
    /// message it cannot accept.
    pub fn fail(&mut self, err: ProtocolError) {
        if !self.close_sent && !self.eof_rcvd {
            let frame = CloseFrame::new(err.close_code(), err.to_string());
            self.write_close(Some(&frame));
        }
        if self.error.is_none() {
            self.error = Some(err);
        }
        self.parse = Parse::Discard;
        self.incoming = None;
        if self.role == Role::Server {
            self.eof_to_send = true;
        }
    }

    fn write_close(&mut self, frame: Option<&CloseFrame>) {
        let mut payload = Vec::with_capacity(2 + MAX_REASON_LEN);
        if let Some(frame) = frame {
            frame.encode_into(&mut payload);
        }
        self.write_frame(OpCode::Close, 0, true, &payload);
        self.close_sent = true;
    }

    fn write_frame(&mut self, opcode: OpCode, rsv: u8, fin: bool, payload: &[u8]) {
        let mask = match self.role {
            Role::Client => Some(self.mask_keys.next()),
            Role::Server => None,
        };
        self.appends += 1;
        self.wbuf.reserve(MAX_HEADER_LEN + payload.len());
        self.write_header(opcode, rsv, fin, mask, payload.len());
        let start = self.wbuf.len();
        self.wbuf.extend_from_slice(payload);
        if let Some(key) = mask {
            apply_mask(&mut self.wbuf[start..], key, 0);
        }
    }

    /// Queues the pong to a ping, in place of the previous automatic pong if that one is
    /// still the last thing queued and entirely unwritten.
    fn write_auto_pong(&mut self, payload: &[u8]) {
        let (mark, len) = self.auto_pong;
        // Written bytes leave `wbuf` from the front, so the pong is whole while the part of
        // `wbuf` after the last shared payload still holds all of it.
        if mark == self.appends
            && self.buffered_amount() > PONG_BACKLOG
            && self.wbuf.len() - self.wqueued_heads >= usize::from(len)
        {
            self.wbuf.truncate(self.wbuf.len() - usize::from(len));
        }
        let before = self.wbuf.len();
        self.write_frame(OpCode::Pong, 0, true, payload);
        let len = u8::try_from(self.wbuf.len() - before).expect("a control frame is short");
        self.auto_pong = (self.appends, len);
    }

    fn write_header(
        &mut self,
        opcode: OpCode,
        rsv: u8,
        fin: bool,
        mask: Option<[u8; 4]>,
        payload_len: usize,
    ) {
        let header = FrameHeader {
            fin,
            rsv,
            opcode,
            mask,
            payload_len: payload_len as u64,
        };
        let mut head = [0; MAX_HEADER_LEN];
        let n = header.encode(&mut head);
        self.wbuf.extend_from_slice(&head[..n]);
    }

    // ---- parsing ----

    fn parse_frames(&mut self) -> Result<(), ProtocolError> {
        while self.events.is_empty() {
            match self.parse {
                Parse::Discard => return Ok(()),
                Parse::Header => {
                    let Some((header, len)) = FrameHeader::parse(&self.rbuf)? else {
                        return Ok(());
                    };
                    self.check_header(&header)?;
                    self.rbuf.advance(len);
                    let remaining = header.payload_len as usize;
                    self.last_frame_len = (len + remaining).min(WHOLE_FRAME_LIMIT);
                    if !header.opcode.is_control() && header.opcode != OpCode::Continuation {
                        self.incoming = Some(Incoming {
                            text: header.opcode == OpCode::Text,
                            compressed: header.rsv & RSV1 != 0,
                            compressed_len: 0,
                            buf: Vec::new(),
                            utf8: Utf8Validator::new(),
                        });
                    }
                    // The payload starts at the front of the buffer and part of it may have
                    // come with the header: the buffer must hold `remaining` bytes from there,
                    // not `remaining` more. (Asking for more reallocated and copied what had
                    // arrived on every large message, even into a buffer that already fit it.)
                    // One allocation for the whole frame, capped so that a header claiming a
                    // huge length cannot reserve memory it never sends, and with room for the
                    // next frame's header so that the read completing this frame need not fill
                    // the buffer (see `read_size_hint`).
                    let whole = remaining.min(WHOLE_FRAME_LIMIT);
                    if whole > self.rbuf.capacity() {
                        self.rbuf.reserve(whole + MAX_HEADER_LEN - self.rbuf.len());
                    }
                    self.parse = Parse::Payload {
                        header,
                        remaining,
                        offset: 0,
                        checked: 0,
                    };
                }
                Parse::Payload {
                    header,
                    remaining,
                    offset,
                    checked,
                } => {
                    if header.opcode.is_control() {
                        if self.rbuf.len() < remaining {
                            return Ok(());
                        }
                        let mut payload = self.rbuf.split_to(remaining);
                        if let Some(key) = header.mask {
                            apply_mask(&mut payload, key, 0);
                        }
                        self.parse = Parse::Header;
                        self.handle_control(header.opcode, payload.freeze())?;
                        continue;
                    }
                    let incoming = self.incoming.as_mut().expect("checked by check_header");
                    if header.fin
                        && offset == 0
                        && header.opcode != OpCode::Continuation
                        && !incoming.compressed
                        && remaining <= WHOLE_FRAME_LIMIT
                    {
                        // The common case, a single-frame message: it waits in the read buffer
                        // until the frame is complete, then leaves it without a copy. What has
                        // arrived is unmasked and validated in place meanwhile, so invalid text
                        // still fails at its first bad byte (§8.1, Autobahn 6.4.*).
                        let avail = self.rbuf.len().min(remaining);
                        if avail > checked && avail < remaining {
                            let fresh = &mut self.rbuf[checked..avail];
                            if let Some(key) = header.mask {
                                apply_mask(fresh, key, checked);
                            }
                            if incoming.text {
                                incoming
                                    .utf8
                                    .feed(fresh)
                                    .map_err(|_| ProtocolError::InvalidUtf8)?;
                            }
                        }
                        if avail < remaining {
                            self.parse = Parse::Payload {
                                header,
                                remaining,
                                offset,
                                checked: avail,
                            };
                            return Ok(());
                        }
                        let mut payload = self.rbuf.split_to(remaining);
                        if let Some(key) = header.mask {
                            apply_mask(&mut payload[checked..], key, checked);
                        }
                        let payload = payload.freeze();
                        let message = if !incoming.text {
                            DataMessage::Binary(payload)
                        } else {
                            let valid = if checked == 0 {
                                crate::utf8::validate(&payload)
                            } else {
                                incoming
                                    .utf8
                                    .feed(&payload[checked..])
                                    .and_then(|()| incoming.utf8.finish())
                            };
                            valid.map_err(|_| ProtocolError::InvalidUtf8)?;
                            DataMessage::Text(Utf8Bytes::from_validated(payload))
                        };
                        self.incoming = None;
                        self.parse = Parse::Header;
                        self.events.push_back(Event::Message(message));
                        continue;
                    }
                    let take = remaining.min(self.rbuf.len());
                    if take == 0 && remaining > 0 {
                        return Ok(());
                    }
                    let mut chunk = self.rbuf.split_to(take);
                    if let Some(key) = header.mask {
                        apply_mask(&mut chunk, key, offset);
                    }
                    self.receive_chunk(&chunk)?;
                    if take < remaining {
                        self.parse = Parse::Payload {
                            header,
                            remaining: remaining - take,
                            offset: offset + take,
                            checked: 0,
                        };
                        return Ok(());
                    }
                    self.parse = Parse::Header;
                    if header.fin {
                        self.finish_message()?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Checks a header against the connection's context (§5.1-§5.5, RFC 7692 §6).
    fn check_header(&self, header: &FrameHeader) -> Result<(), ProtocolError> {
        if let OpCode::Reserved(bits) = header.opcode {
            return Err(ProtocolError::ReservedOpcode(bits));
        }
        // "MUST be 0 unless an extension is negotiated that defines meanings for non-zero
        // values"; permessage-deflate gives RSV1 a meaning on the first frame of a message.
        let rsv1_allowed =
            self.deflate.is_some() && matches!(header.opcode, OpCode::Text | OpCode::Binary);
        let allowed = if rsv1_allowed { RSV1 } else { 0 };
        if header.rsv & !allowed != 0 {
            return Err(ProtocolError::ReservedBits);
        }
        match (self.role, header.mask.is_some()) {
            (Role::Server, false) => return Err(ProtocolError::UnmaskedFrameFromClient),
            (Role::Client, true) => return Err(ProtocolError::MaskedFrameFromServer),
            _ => {}
        }
        if header.opcode.is_control() {
            if !header.fin {
                return Err(ProtocolError::FragmentedControlFrame);
            }
            if header.payload_len > MAX_CONTROL_PAYLOAD as u64 {
                return Err(ProtocolError::ControlFrameTooBig);
            }
            return Ok(());
        }
        match (header.opcode, &self.incoming) {
            (OpCode::Continuation, None) => return Err(ProtocolError::UnexpectedContinuation),
            (OpCode::Text | OpCode::Binary, Some(_)) => {
                return Err(ProtocolError::ExpectedContinuation)
            }
            _ => {}
        }
        let compressed = match header.opcode {
            OpCode::Continuation => self.incoming.as_ref().is_some_and(|m| m.compressed),
            _ => header.rsv & RSV1 != 0,
        };
        // A compressed frame is inflated as it arrives, under the message limit; the frame
        // limit allows what deflate makes of incompressible data at most (stored blocks add
        // 5 bytes per 16 KiB), so that a message at the limit is not refused for growing.
        let max_frame = self.config.max_frame_size as u64;
        let max_frame = if compressed {
            max_frame.saturating_add((max_frame >> 12) + (max_frame >> 14) + 64)
        } else {
            max_frame
        };
        if header.payload_len > max_frame {
            return Err(ProtocolError::FrameTooBig);
        }
        let so_far = self.incoming.as_ref().map_or(0, |m| m.buf.len()) as u64;
        // Compressed sizes say little about the message size; inflate enforces the limit.
        if !compressed && so_far + header.payload_len > self.config.max_message_size as u64 {
            return Err(ProtocolError::MessageTooBig);
        }
        Ok(())
    }

    fn receive_chunk(&mut self, chunk: &[u8]) -> Result<(), ProtocolError> {
        let incoming = self.incoming.as_mut().expect("checked by check_header");
        let start = incoming.buf.len();
        if incoming.compressed {
            incoming.compressed_len += chunk.len();
            let deflate = self
                .deflate
                .as_mut()
                .expect("RSV1 is refused without deflate");
            deflate.decompress(chunk, &mut incoming.buf, self.config.max_message_size)?;
        } else {
            incoming.buf.extend_from_slice(chunk);
        }
        if incoming.text {
            incoming
                .utf8
                .feed(&incoming.buf[start..])
                .map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        Ok(())
    }

    fn finish_message(&mut self) -> Result<(), ProtocolError> {
        let mut incoming = self.incoming.take().expect("checked by check_header");
        // An empty compressed payload (some peers send one for an empty message) carries no
        // block; appending the tail to it would leave the inflater inside a stored block
        // header and corrupt the next message, so it is taken as the empty message it means.
        if incoming.compressed && incoming.compressed_len > 0 {
            let start = incoming.buf.len();
            let deflate = self
                .deflate
                .as_mut()
                .expect("RSV1 is refused without deflate");
            deflate.finish_inbound(&mut incoming.buf, self.config.max_message_size)?;
            if incoming.text {
                incoming
                    .utf8
                    .feed(&incoming.buf[start..])
                    .map_err(|_| ProtocolError::InvalidUtf8)?;
            }
        }
        if incoming.compressed {
            self.deflate_stats.received_raw += incoming.buf.len() as u64;
            self.deflate_stats.received_compressed += incoming.compressed_len as u64;
        }
        let payload = Bytes::from(incoming.buf);
        let message = if incoming.text {
            incoming
                .utf8
                .finish()
                .map_err(|_| ProtocolError::InvalidUtf8)?;
            DataMessage::Text(Utf8Bytes::from_validated(payload))
        } else {
            DataMessage::Binary(payload)
        };
        self.events.push_back(Event::Message(message));
        Ok(())
    }

    fn handle_control(&mut self, opcode: OpCode, payload: Bytes) -> Result<(), ProtocolError> {
        match opcode {
            OpCode::Ping => {
                if self.config.auto_pong && !self.close_sent {
                    self.write_auto_pong(&payload);
                }
                self.events.push_back(Event::Ping(payload));
            }
            OpCode::Pong => self.events.push_back(Event::Pong(payload)),
            OpCode::Close => {
                let frame = CloseFrame::parse(&payload)?;
                if !self.close_sent {
                    // §5.5.1: "it SHOULD send a Close frame in response ... typically echoing
                    // the status code it received".
                    self.write_close(frame.as_ref());
                }
                self.close_rcvd = Some(frame.clone());
                self.events.push_back(Event::CloseReceived(frame));
                self.parse = Parse::Discard;
                self.incoming = None;
                if self.role == Role::Server {
                    self.eof_to_send = true;
                }
            }
            _ => unreachable!("only control opcodes reach handle_control"),
        }
        Ok(())
    }
}
