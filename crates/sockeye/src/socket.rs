//! `WebSocket<S>`: the tokio I/O layer over `sockeye_proto::Connection`.
//!
//! All protocol decisions live in the core. This file moves bytes between the socket and the
//! core's buffers, and runs the two timers the core cannot: the close timeout and keepalive.

use std::future::{poll_fn, Future};
use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{ready, Context, Poll, Waker};

use bytes::{Buf, Bytes};
use futures_core::Stream;
use futures_sink::Sink;
use sockeye_proto::{
    CloseCode, CloseEvent, CloseFrame, Connection, DataKind, Event, PerMessageDeflate,
    PreparedMessage, Role, State, UsageError, Utf8Bytes,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{sleep, Instant, Sleep};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::split::{WebSocketReader, WebSocketWriter};

/// The payload of keepalive pings.
const KEEPALIVE_PAYLOAD: &[u8] = b"sockeye";

/// The smallest read; frames announced larger get reads sized to them.
const READ_CHUNK: usize = 4 << 10;

/// What a connection whose peer stopped reading fails with (`Config::write_timeout`).
const WRITE_STALLED: &str = "write: the peer stopped reading";

/// What the `io::Error` of a stalled write carries, to tell it from the network's own
/// timeouts without reading its text.
#[derive(Debug)]
struct WriteStalled;

impl std::fmt::Display for WriteStalled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(WRITE_STALLED)
    }
}

impl std::error::Error for WriteStalled {}

fn is_stall(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<WriteStalled>())
}

/// What sending on a connection whose transport failed earlier reports: the same cause.
fn failed_error((kind, text): &(io::ErrorKind, String)) -> Error {
    if *kind == io::ErrorKind::TimedOut && text == WRITE_STALLED {
        Error::Timeout(WRITE_STALLED)
    } else {
        Error::Io(io::Error::new(*kind, text.clone()))
    }
}

fn stalled_or(e: io::Error) -> Error {
    if is_stall(&e) {
        Error::Timeout(WRITE_STALLED)
    } else {
        Error::Io(e)
    }
}

/// `WebSocket.readyState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadyState {
    /// The opening handshake is under way (never seen on a `WebSocket`, which exists once it
    /// is done).
    Connecting = 0,
    /// Messages can be sent and received.
    Open = 1,
    /// A close frame was sent or received; the closing handshake is under way.
    Closing = 2,
    /// The connection is over: the close event was delivered, or the transport is gone.
    Closed = 3,
}

/// What a socket receives, and what it can send: the one message type of Sockeye's API.
///
/// More kinds may be added, so a `match` needs a `_` arm. Received control frames appear only
/// when asked for: [`Message::Pong`] with [`Config::receive_pongs`], [`Message::Ping`] when
/// automatic pongs are off.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message {
    /// A text message: valid UTF-8, checked on arrival (RFC 6455 §8.1).
    Text(Utf8Bytes),
    /// A binary message (the browser's `ArrayBuffer`).
    Binary(Bytes),
    /// Received: the last item of the stream, the browser's `close` event. Sent: starts the
    /// closing handshake with `code` and `reason`, checked against RFC 6455 §7.4
    /// (`was_clean` is ignored; [`WebSocket::close`] applies the browsers' stricter rule).
    Close(CloseEvent),
    /// Received: a ping, delivered only when `Config::protocol.auto_pong` is off, in which case
    /// answering it is the application's job (RFC 6455 §5.5.2). Sent: a ping with this payload
    /// (at most 125 bytes), timed for [`WebSocket::latency`].
    Ping(Bytes),
    /// Received: a pong, delivered only with [`Config::receive_pongs`]. Sent: a pong with this
    /// payload; an unsolicited pong is a heartbeat the peer does not answer (RFC 6455 §5.5.3).
    Pong(Bytes),
}

impl Message {
    /// A text message.
    pub fn text(text: impl Into<Utf8Bytes>) -> Self {
        Message::Text(text.into())
    }

    /// A binary message.
    pub fn binary(data: impl Into<Bytes>) -> Self {
        Message::Binary(data.into())
    }

    /// A close request with a code and reason, checked when sent.
    pub fn close(code: u16, reason: impl Into<String>) -> Self {
        Message::Close(CloseEvent::new(CloseCode(code), reason))
    }

    /// The text of a text message.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Message::Text(t) => Some(t.as_str()),
            _ => None,
        }
    }
}

impl From<sockeye_proto::DataMessage> for Message {
    fn from(m: sockeye_proto::DataMessage) -> Self {
        match m {
            sockeye_proto::DataMessage::Text(t) => Message::Text(t),
            sockeye_proto::DataMessage::Binary(b) => Message::Binary(b),
        }
    }
}

impl From<&str> for Message {
    fn from(s: &str) -> Self {
        Message::text(s)
    }
}

impl From<String> for Message {
    fn from(s: String) -> Self {
        Message::text(s)
    }
}

impl From<Vec<u8>> for Message {
    fn from(b: Vec<u8>) -> Self {
        Message::binary(b)
    }
}

impl From<Bytes> for Message {
    fn from(b: Bytes) -> Self {
        Message::Binary(b)
    }
}

/// A WebSocket connection over any byte stream: a `Stream` of received [`Message`]s that ends
/// with [`Message::Close`], and a `Sink` of messages to send.
///
/// The connection only makes progress while it is polled: keep reading it (or its read half)
/// so that pings are answered, the closing handshake completes and keepalive runs.
pub struct WebSocket<S> {
    io: S,
    conn: Connection,
    config: Config,
    protocol: Option<String>,
    extensions: String,
    read_eof: bool,
    write_done: bool,
    timed_out: bool,
    pending_error: Option<Error>,
    protocol_error_reported: bool,
    close_reported: bool,
    close_timer: Option<Pin<Box<Sleep>>>,
    ping_timer: Option<Pin<Box<Sleep>>>,
    awaiting_pong: bool,
    /// Armed while queued bytes wait for the peer to read them (`Config::write_timeout`).
    stall_timer: Option<Pin<Box<Sleep>>>,
    /// The tasks of split halves waiting for the write side: the socket keeps one waker per
    /// direction, so when both halves wait to write, only the last to ask is woken. Whichever
    /// half makes the write progress wakes these.
    sink_waker: Option<Waker>,
    stream_waker: Option<Waker>,
    /// A client's view of the server's answer to the opening handshake.
    response: Option<Box<http::Response<()>>>,
    stats: MessageStats,
    /// Why the transport failed (`Some` once it has), kept so that every later send can report
    /// the I/O cause.
    failure: Option<(io::ErrorKind, String)>,
    /// The latest ping sent, keepalive's or the application's, until its pong arrives.
    ping_sent: Option<(Instant, Bytes)>,
    /// The round-trip time of the last ping answered.
    latency: Option<std::time::Duration>,
    /// The kind of the fragmented message being sent, between its first and last fragment.
    sending_fragments: Option<DataKind>,
}

/// The data messages a [`WebSocket`] sent and received, and their payload bytes before
/// compression ([`WebSocket::message_stats`]). Kept in plain integers by the socket, so that
/// counting costs nothing shared per message: a server adds them to its totals once, when the
/// connection ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MessageStats {
    /// Queued for the peer: sent, or being sent.
    pub sent: MessageCounts,
    /// Delivered to the application.
    pub received: MessageCounts,
}

/// Messages and payload bytes of each kind, one way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MessageCounts {
    /// Text messages.
    pub text: u64,
    /// Their payload bytes (before compression).
    pub text_bytes: u64,
    /// Binary messages.
    pub binary: u64,
    /// Their payload bytes (before compression).
    pub binary_bytes: u64,
}

impl MessageCounts {
    fn add_bytes(&mut self, kind: DataKind, len: usize) {
        match kind {
            DataKind::Text => self.text_bytes += len as u64,
            DataKind::Binary => self.binary_bytes += len as u64,
        }
    }

    fn add_message(&mut self, kind: DataKind) {
        match kind {
            DataKind::Text => self.text += 1,
            DataKind::Binary => self.binary += 1,
        }
    }

    fn add(&mut self, kind: DataKind, len: usize) {
        self.add_message(kind);
        self.add_bytes(kind, len);
    }
}

fn kind_of(message: &sockeye_proto::DataMessage) -> DataKind {
    match message {
        sockeye_proto::DataMessage::Text(_) => DataKind::Text,
        sockeye_proto::DataMessage::Binary(_) => DataKind::Binary,
    }
}

impl<S> std::fmt::Debug for WebSocket<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocket")
            .field("role", &self.conn.role())
            .field("protocol", &self.protocol)
            .field("extensions", &self.extensions)
            .finish_non_exhaustive()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocket<S> {
    pub(crate) fn new(
        io: S,
        conn: Connection,
        config: Config,
        protocol: Option<String>,
        extensions: String,
    ) -> Self {
        let ping_timer = config.ping_interval.map(|every| Box::pin(sleep(every)));
        WebSocket {
            io,
            conn,
            config,
            protocol,
            extensions,
            read_eof: false,
            write_done: false,
            timed_out: false,
            pending_error: None,
            protocol_error_reported: false,
            close_reported: false,
            close_timer: None,
            ping_timer,
            awaiting_pong: false,
            stall_timer: None,
            sink_waker: None,
            stream_waker: None,
            response: None,
            stats: MessageStats::default(),
            failure: None,
            ping_sent: None,
            latency: None,
            sending_fragments: None,
        }
    }

    /// A socket in `role` after a handshake that agreed on `negotiated`; `leftover` is what the
    /// peer sent after the handshake's head.
    pub(crate) fn negotiated(
        role: Role,
        io: S,
        config: Config,
        negotiated: sockeye_proto::handshake::Negotiated,
        leftover: &[u8],
    ) -> Self {
        // Without the `deflate` feature negotiation never agrees on it.
        #[cfg(feature = "deflate")]
        let deflate = match (negotiated.deflate, &config.deflate) {
            (Some(params), Some(cfg)) => Some(PerMessageDeflate::new(role, params, cfg)),
            _ => None,
        };
        #[cfg(not(feature = "deflate"))]
        let deflate: Option<PerMessageDeflate> = None;
        let mut conn = Connection::new(role, config.protocol.clone()).with_deflate(deflate);
        if !leftover.is_empty() {
            conn.receive_data(leftover);
        }
        Self::new(io, conn, config, negotiated.protocol, negotiated.extensions)
    }

    pub(crate) fn set_response(&mut self, response: http::Response<()>) {
        self.response = Some(Box::new(response));
    }

    /// On a client: the server's answer to the opening handshake, its status (101, or 200
    /// over HTTP/2) and headers, such as a `Set-Cookie`. `None` on a server.
    pub fn response(&self) -> Option<&http::Response<()>> {
        self.response.as_deref()
    }

    /// `readyState`: Open, then Closing once either side started the closing handshake, then
    /// Closed once the close event was delivered or the transport is gone.
    pub fn ready_state(&self) -> ReadyState {
        if self.close_reported || self.failure.is_some() || self.timed_out {
            return ReadyState::Closed;
        }
        match self.conn.state() {
            State::Open => ReadyState::Open,
            State::Closing => ReadyState::Closing,
            State::Closed => ReadyState::Closed,
        }
    }

    /// `bufferedAmount`: bytes queued by `send` and not yet written to the socket.
    pub fn buffered_amount(&self) -> usize {
        self.conn.buffered_amount()
    }

    /// The subprotocol the server selected, if any.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// Bytes of compressed messages before and after permessage-deflate, both ways.
    pub fn deflate_stats(&self) -> sockeye_proto::DeflateStats {
        self.conn.deflate_stats()
    }

    /// The data messages sent and received so far, and their bytes.
    pub fn message_stats(&self) -> MessageStats {
        self.stats
    }

    /// The `Sec-WebSocket-Extensions` value agreed on ("" when none).
    pub fn extensions(&self) -> &str {
        &self.extensions
    }

    /// The settings this connection runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The transport underneath (a `TcpStream`, a TLS stream, an upgraded hyper connection).
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// The round-trip time of the last ping that was answered, keepalive's
    /// ([`Config::ping_interval`]) or one sent with [`ping`](WebSocket::ping); `None` until
    /// one is. Only the latest ping is timed: a pong that answers an older one, or that the
    /// peer sent unasked, does not count (RFC 6455 §5.5.3 lets a peer answer only the latest).
    pub fn latency(&self) -> Option<std::time::Duration> {
        self.latency
    }

    /// Receives the next message; `None` after the close event.
    ///
    /// # Cancel safety
    ///
    /// This method is cancel-safe: what has arrived stays in the socket, so dropping the
    /// future (in a `select!` branch that lost, or on a timeout) loses nothing, and the next
    /// call returns the message.
    pub async fn recv(&mut self) -> Option<Result<Message>> {
        poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    /// Sends a message, waiting while the write buffer is over its limit.
    ///
    /// # Cancel safety
    ///
    /// Once the future has been polled past the wait for room, the message is queued: dropping
    /// it then still sends the message, with the next write. Dropped while waiting for room, it
    /// sends nothing.
    pub async fn send(&mut self, message: impl Into<Message>) -> Result<()> {
        let message = message.into();
        poll_fn(|cx| Pin::new(&mut *self).poll_ready(cx)).await?;
        Pin::new(&mut *self).start_send(message)?;
        poll_fn(|cx| Pin::new(&mut *self).poll_flush(cx)).await
    }

    /// Sends a message framed once for many connections (a broadcast): a server queues the
    /// shared frame without copying it. Waits while the write buffer is over its limit.
    pub async fn send_prepared(&mut self, message: &PreparedMessage) -> Result<()> {
        poll_fn(|cx| Pin::new(&mut *self).poll_ready(cx)).await?;
        self.conn.send_prepared(message)?;
        self.count_prepared(message);
        poll_fn(|cx| Pin::new(&mut *self).poll_flush(cx)).await
    }

    /// Queues a [`PreparedMessage`] without writing it yet (waiting only while the write
    /// buffer is over its limit): several queued messages then go out in one write at the next
    /// [`WebSocket::flush`] or send.
    pub async fn feed_prepared(&mut self, message: &PreparedMessage) -> Result<()> {
        poll_fn(|cx| Pin::new(&mut *self).poll_ready(cx)).await?;
        self.queue_prepared(message)
    }

    pub(crate) fn queue_prepared(&mut self, message: &PreparedMessage) -> Result<()> {
        self.conn.send_prepared(message)?;
        self.count_prepared(message);
        Ok(())
    }

    fn count_prepared(&mut self, message: &PreparedMessage) {
        let kind = match message.opcode() {
            sockeye_proto::OpCode::Text => DataKind::Text,
            _ => DataKind::Binary,
        };
        self.stats.sent.add(kind, message.payload().len());
    }

    /// Writes everything queued.
    pub async fn flush(&mut self) -> Result<()> {
        poll_fn(|cx| Pin::new(&mut *self).poll_flush(cx)).await
    }

    /// Sends one fragment of a message (RFC 6455 §5.4): `kind` for the first fragment, `None`
    /// for the rest, `fin` on the last.
    pub async fn send_fragment(
        &mut self,
        kind: Option<DataKind>,
        payload: &[u8],
        fin: bool,
    ) -> Result<()> {
        poll_fn(|cx| Pin::new(&mut *self).poll_ready(cx)).await?;
        self.conn.send_fragment(kind, payload, fin)?;
        if let Some(kind) = kind {
            self.sending_fragments = Some(kind);
        }
        if let Some(kind) = self.sending_fragments {
            self.stats.sent.add_bytes(kind, payload.len());
            if fin {
                self.stats.sent.add_message(kind);
                self.sending_fragments = None;
            }
        }
        poll_fn(|cx| Pin::new(&mut *self).poll_flush(cx)).await
    }

    /// Sends a ping (at most 125 bytes) and times it for [`latency`](WebSocket::latency). Its
    /// pong is consumed by the connection unless [`Config::receive_pongs`] is on.
    pub async fn ping(&mut self, payload: &[u8]) -> Result<()> {
        self.start_ping(payload)?;
        poll_fn(|cx| Pin::new(&mut *self).poll_flush(cx)).await
    }

    fn start_ping(&mut self, payload: &[u8]) -> Result<(), UsageError> {
        self.conn.send_ping(payload)?;
        self.ping_sent = Some((Instant::now(), Bytes::copy_from_slice(payload)));
        Ok(())
    }

    /// `WebSocket.close(code, reason)`: checks the code and reason as browsers do (1000 or
    /// 3000-4999, at most 123 bytes of reason), sends the close frame and returns. Keep reading
    /// to see the close event.
    pub async fn close(&mut self, code: Option<u16>, reason: &str) -> Result<()> {
        self.start_application_close(code, reason)?;
        poll_fn(|cx| Pin::new(&mut *self).poll_flush(cx)).await
    }

    pub(crate) fn start_application_close(
        &mut self,
        code: Option<u16>,
        reason: &str,
    ) -> Result<()> {
        let frame = match code {
            Some(code) => Some(CloseFrame::from_application(CloseCode(code), reason)?),
            None if reason.is_empty() => None,
            None => Some(CloseFrame::from_application(CloseCode::NORMAL, reason)?),
        };
        Ok(self.start_close(frame)?)
    }

    /// Closes with any code valid on the wire (RFC 6455 §7.4), such as 1001 on shutdown or
    /// 1011 on an internal error, which browsers reserve for the user agent.
    pub async fn close_with(&mut self, code: CloseCode, reason: &str) -> Result<()> {
        self.start_close(Some(CloseFrame::new(code, reason)))?;
        poll_fn(|cx| Pin::new(&mut *self).poll_flush(cx)).await
    }

    fn start_close(&mut self, frame: Option<CloseFrame>) -> Result<(), UsageError> {
        if self.conn.state() != State::Open {
            // Closing twice is not an error in browsers either.
            return Ok(());
        }
        self.conn.send_close(frame)
    }

    /// Splits into a sending half and a receiving half for different tasks. Each keeps what
    /// the whole socket offers (`buffered_amount`, `ready_state`, `latency`; `ping` and `close`
    /// on the writer); [`WebSocketReader::reunite`] puts them back together.
    pub fn split(self) -> (WebSocketWriter<S>, WebSocketReader<S>) {
        crate::split::split(self)
    }

    // ---- I/O ----

    /// Writes what is queued; fails with `TimedOut` once nothing could be written for
    /// `Config::write_timeout`.
    fn poll_write_buf(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let before = self.conn.buffered_amount();
        let poll = self.poll_write_queued(cx);
        if poll.is_ready() || self.conn.buffered_amount() < before {
            for waker in [self.sink_waker.take(), self.stream_waker.take()]
                .into_iter()
                .flatten()
            {
                waker.wake();
            }
        }
        if poll.is_ready() {
            self.stall_timer = None;
            return poll;
        }
        let Some(limit) = self.config.write_timeout else {
            return poll;
        };
        let progressed = self.conn.buffered_amount() < before;
        let timer = match &mut self.stall_timer {
            Some(timer) => {
                if progressed {
                    timer.as_mut().reset(Instant::now() + limit);
                }
                timer
            }
            None => self.stall_timer.insert(Box::pin(sleep(limit))),
        };
        if timer.as_mut().poll(cx).is_ready() {
            self.stall_timer = None;
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, WriteStalled)));
        }
        Poll::Pending
    }

    fn poll_write_queued(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let io = &mut self.io;
        while self.conn.has_queued_payloads() {
            let mut slices = [IoSlice::new(&[]); 32];
            let used = self.conn.write_slices(&mut slices);
            match ready!(Pin::new(&mut *io).poll_write_vectored(cx, &slices[..used])) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => self.conn.advance_written(n),
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        let buf = self.conn.write_buf();
        while !buf.is_empty() {
            match ready!(Pin::new(&mut *io).poll_write(cx, buf)) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => buf.advance(n),
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Pin::new(&mut *io).poll_flush(cx)
    }

    /// Writes what the core queued, then closes the transport if the core asks; failures end
    /// the connection rather than surfacing here.
    fn drive_write(&mut self, cx: &mut Context<'_>) {
        if self.write_done || self.failure.is_some() {
            return;
        }
        match self.poll_write_buf(cx) {
            Poll::Ready(Ok(())) if self.conn.eof_to_send() => {
                match Pin::new(&mut self.io).poll_shutdown(cx) {
                    Poll::Ready(_) => self.write_done = true,
                    Poll::Pending => {}
                }
            }
            Poll::Ready(Ok(())) | Poll::Pending => {}
            Poll::Ready(Err(e)) if self.conn.close_expected() && self.conn.error().is_none() => {
                // Our close frame is out and the peer has stopped taking data: an HTTP/2 server
                // resets the stream (NO_ERROR) once it has answered the close. Its answer may
                // still be waiting to be read, so only the writing ends.
                tracing::debug!("write failed after the close frame: {e}");
                self.write_done = true;
            }
            Poll::Ready(Err(e)) => self.io_failed(e),
        }
    }

    fn io_failed(&mut self, e: io::Error) {
        if self.failure.is_none() {
            self.failure = Some((e.kind(), e.to_string()));
        }
        // A reset after the closing handshake completed is how many peers end; it is not news.
        if self.conn.state() != State::Closed && self.pending_error.is_none() {
            self.pending_error = Some(stalled_or(e));
        }
    }

    /// The error a failed send reports: the timeout if the peer stopped reading, else the I/O
    /// error itself. The receiving side reports a copy of it.
    fn send_failed(&mut self, e: io::Error) -> Error {
        let copy = if is_stall(&e) {
            io::Error::new(io::ErrorKind::TimedOut, WriteStalled)
        } else {
            io::Error::new(e.kind(), e.to_string())
        };
        self.io_failed(copy);
        stalled_or(e)
    }

    fn finished(&self) -> bool {
        if self.failure.is_some() || self.timed_out || self.read_eof {
            return true;
        }
        match self.conn.role() {
            // The server closes the TCP connection first (§7.1.1). After failing the
            // connection it keeps reading (and dropping) what still arrives until the peer
            // closes too, up to the close timeout: closing a socket with unread data makes the
            // kernel send a reset, and the peer would lose the close frame (a lingering close).
            sockeye_proto::Role::Server => self.write_done && self.conn.error().is_none(),
            // The client waits for the server to close it, up to the close timeout.
            sockeye_proto::Role::Client => false,
        }
    }

    fn poll_timers(&mut self, cx: &mut Context<'_>) {
        if self.conn.close_expected() {
            let timeout = self.config.close_timeout;
            let timer = self
                .close_timer
                .get_or_insert_with(|| Box::pin(sleep(timeout)));
            if timer.as_mut().poll(cx).is_ready() {
                self.timed_out = true;
                // A failed connection has reported its error; this was its lingering close.
                if self.conn.state() != State::Closed
                    && self.pending_error.is_none()
                    && self.conn.error().is_none()
                {
                    self.pending_error = Some(Error::Timeout("closing handshake"));
                }
            }
            return;
        }
        let Some(every) = self.config.ping_interval else {
            return;
        };
        let Some(timer) = self.ping_timer.as_mut() else {
            return;
        };
        if timer.as_mut().poll(cx).is_pending() {
            return;
        }
        if self.awaiting_pong {
            // No pong within ping_timeout: the peer or the path to it is gone.
            self.timed_out = true;
            self.pending_error = Some(Error::Timeout("keepalive: no pong"));
            return;
        }
        if self.conn.send_ping(KEEPALIVE_PAYLOAD).is_ok() {
            self.awaiting_pong = true;
            self.ping_sent = Some((Instant::now(), Bytes::from_static(KEEPALIVE_PAYLOAD)));
            timer
                .as_mut()
                .reset(Instant::now() + self.config.ping_timeout);
        } else {
            timer.as_mut().reset(Instant::now() + every);
        }
        let _ = timer.as_mut().poll(cx);
        self.drive_write(cx);
    }

    fn on_pong(&mut self, payload: &[u8]) {
        if let Some((sent, _)) = self
            .ping_sent
            .take_if(|(_, expected)| expected.as_ref() == payload)
        {
            self.latency = Some(sent.elapsed());
        }
        if let (Some(every), Some(timer)) = (self.config.ping_interval, self.ping_timer.as_mut()) {
            if self.awaiting_pong {
                self.awaiting_pong = false;
                timer.as_mut().reset(Instant::now() + every);
            }
        }
    }

    fn read_some(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        // Room for the rest of the frame being received, or for a frame like the last one (up
        // to 1 MiB), so a message arrives in as few reads as the kernel allows, without
        // reallocating mid-frame, and the last read is short: tokio then knows the socket is
        // drained without another system call. (With 4 KiB reads between frames, a 16 KiB
        // message took 2.06 `recvfrom`s on average; now 0.98.)
        let want = self.conn.read_size_hint().clamp(READ_CHUNK, 1 << 20);
        let buf = self.conn.read_buf();
        let result = if buf.is_empty() && want == READ_CHUNK && !buf.try_reclaim(READ_CHUNK) {
            // No buffer of its own yet (or the last message still holds it): read onto the
            // stack, so that a connection that has sent nothing holds no read buffer.
            let mut stack = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
            let mut read = ReadBuf::uninit(&mut stack);
            ready!(Pin::new(&mut self.io).poll_read(cx, &mut read)).map(|()| {
                let filled = read.filled();
                if !filled.is_empty() {
                    // Only what arrived: a connection that sent one small message and went
                    // idle then holds that much, not READ_CHUNK (4 KiB of each idle browser
                    // connection's memory before).
                    self.conn.read_buf().extend_from_slice(filled);
                }
                filled.len()
            })
        } else {
            // Mid-frame the core has reserved room for the frame already: grow only if the rest
            // of it does not fit, since growing moves what has arrived.
            let needed = match self.conn.bytes_wanted() {
                0 => want,
                rest => rest.min(want),
            };
            let buf = self.conn.read_buf();
            if buf.capacity() - buf.len() < needed {
                buf.reserve(want);
            }
            ready!(tokio_util::io::poll_read_buf(
                Pin::new(&mut self.io),
                cx,
                self.conn.read_buf()
            ))
        };
        match result {
            Ok(0) => {
                self.read_eof = true;
                self.conn.receive_eof();
            }
            Ok(_) => self.conn.process(),
            Err(e) => {
                self.conn.receive_eof();
                self.io_failed(e);
            }
        }
        Poll::Ready(())
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for WebSocket<S> {
    type Item = Result<Message>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            while let Some(event) = this.conn.poll_event() {
                match event {
                    Event::Message(m) => {
                        this.stats.received.add(kind_of(&m), m.len());
                        return Poll::Ready(Some(Ok(m.into())));
                    }
                    Event::Pong(payload) => {
                        this.on_pong(&payload);
                        if this.config.receive_pongs {
                            return Poll::Ready(Some(Ok(Message::Pong(payload))));
                        }
                    }
                    Event::Ping(payload) if !this.config.protocol.auto_pong => {
                        return Poll::Ready(Some(Ok(Message::Ping(payload))));
                    }
                    // Pings are answered by the core; the close event comes when the
                    // connection has finished.
                    _ => {}
                }
            }
            this.drive_write(cx);
            if !this.protocol_error_reported {
                if let Some(e) = this.conn.error() {
                    this.protocol_error_reported = true;
                    return Poll::Ready(Some(Err(Error::Protocol(e.clone()))));
                }
            }
            if let Some(e) = this.pending_error.take() {
                return Poll::Ready(Some(Err(e)));
            }
            if this.close_reported {
                return Poll::Ready(None);
            }
            if this.finished() {
                this.close_reported = true;
                return Poll::Ready(Some(Ok(Message::Close(this.conn.close_event()))));
            }
            this.poll_timers(cx);
            if this.timed_out || this.pending_error.is_some() {
                continue;
            }
            if this.read_eof {
                return Poll::Pending;
            }
            // The peer does not read what we send: read nothing more until it does (the
            // write above is waiting for that, and the write timeout runs meanwhile).
            if this.conn.buffered_amount() >= this.config.write_buffer_limit && !this.write_done {
                this.stream_waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
            if this.read_some(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WebSocket<S> {
    type Error = Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let this = &mut *self;
        if let Some(failure) = &this.failure {
            return Poll::Ready(Err(failed_error(failure)));
        }
        if this.conn.buffered_amount() >= this.config.write_buffer_limit {
            match this.poll_write_buf(cx) {
                Poll::Pending => {
                    this.sink_waker = Some(cx.waker().clone());
                    return Poll::Pending;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(this.send_failed(e))),
                Poll::Ready(Ok(())) => {}
            }
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(mut self: Pin<&mut Self>, message: Message) -> Result<()> {
        let this = &mut *self;
        match message {
            Message::Text(t) => {
                let len = t.len();
                this.conn.send_owned(sockeye_proto::DataMessage::Text(t))?;
                this.stats.sent.add(DataKind::Text, len);
            }
            Message::Binary(b) => {
                let len = b.len();
                this.conn
                    .send_owned(sockeye_proto::DataMessage::Binary(b))?;
                this.stats.sent.add(DataKind::Binary, len);
            }
            // Any code valid on the wire (RFC 6455 §7.4): server code sends 1001 or 1011,
            // which `close()` refuses as browsers do.
            Message::Close(event) => {
                this.start_close(Some(CloseFrame::new(event.code, event.reason)))?
            }
            Message::Ping(payload) => this.start_ping(&payload)?,
            Message::Pong(payload) => this.conn.send_pong(&payload)?,
        }
        Ok(())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let this = &mut *self;
        if let Some(failure) = &this.failure {
            return Poll::Ready(Err(failed_error(failure)));
        }
        match this.poll_write_buf(cx) {
            Poll::Pending => {
                this.sink_waker = Some(cx.waker().clone());
                Poll::Pending
            }
            Poll::Ready(Ok(())) => Poll::Ready(Ok(())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(this.send_failed(e))),
        }
    }

    /// Sends a 1000 close frame (if none was sent) and flushes. The closing handshake
    /// finishes on the receiving side.
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let _ = self.start_close(Some(CloseFrame::new(CloseCode::NORMAL, "")));
        self.poll_flush(cx)
    }
}
