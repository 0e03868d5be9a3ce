//! A [`WebSocket`] split into a half that sends and a half that receives, for two tasks.
//!
//! Both halves hold the socket behind one mutex, taken for the length of a single poll (never
//! across an `.await`), so each half keeps what the whole socket offers: `buffered_amount`,
//! `ready_state`, `latency`, `ping` and `close` on the writer, and a cancel-safe `recv` on the
//! reader.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use futures_sink::Sink;
use sockeye_proto::{CloseCode, PreparedMessage};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::{Error, Result};
use crate::socket::{Message, ReadyState, WebSocket};

type Shared<S> = Arc<Mutex<WebSocket<S>>>;

fn lock<S>(shared: &Shared<S>) -> MutexGuard<'_, WebSocket<S>> {
    // Every poll leaves the socket consistent, so a panic elsewhere does not spoil it.
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The sending half of a split [`WebSocket`] (`Sink` of [`Message`]s).
pub struct WebSocketWriter<S> {
    shared: Shared<S>,
}

/// The receiving half of a split [`WebSocket`] (`Stream` of [`Message`]s). Keep reading it:
/// it answers pings, completes the closing handshake and runs keepalive for both halves.
pub struct WebSocketReader<S> {
    shared: Shared<S>,
}

/// [`WebSocketReader::reunite`] was given halves of two different sockets; here they are back.
#[derive(Debug)]
pub struct ReuniteError<S>(pub WebSocketReader<S>, pub WebSocketWriter<S>);

impl<S> std::fmt::Display for ReuniteError<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the halves come from different WebSockets")
    }
}

impl<S: std::fmt::Debug> std::error::Error for ReuniteError<S> {}

pub(crate) fn split<S>(ws: WebSocket<S>) -> (WebSocketWriter<S>, WebSocketReader<S>) {
    let shared = Arc::new(Mutex::new(ws));
    (
        WebSocketWriter {
            shared: shared.clone(),
        },
        WebSocketReader { shared },
    )
}

impl<S> std::fmt::Debug for WebSocketWriter<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocketWriter").finish_non_exhaustive()
    }
}

impl<S> std::fmt::Debug for WebSocketReader<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocketReader").finish_non_exhaustive()
    }
}

/// What both halves can tell about the connection.
macro_rules! shared_state {
    () => {
        /// `readyState` of the whole socket.
        pub fn ready_state(&self) -> ReadyState {
            lock(&self.shared).ready_state()
        }

        /// `bufferedAmount`: bytes queued and not yet written to the socket.
        pub fn buffered_amount(&self) -> usize {
            lock(&self.shared).buffered_amount()
        }

        /// The round-trip time of the last ping answered ([`WebSocket::latency`]).
        pub fn latency(&self) -> Option<Duration> {
            lock(&self.shared).latency()
        }

        /// The subprotocol the server selected, if any.
        pub fn protocol(&self) -> Option<String> {
            lock(&self.shared).protocol().map(str::to_owned)
        }
    };
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocketWriter<S> {
    shared_state!();

    async fn poll_with<T>(
        &self,
        mut f: impl FnMut(Pin<&mut WebSocket<S>>, &mut Context<'_>) -> Poll<T>,
    ) -> T {
        poll_fn(|cx| f(Pin::new(&mut *lock(&self.shared)), cx)).await
    }

    /// Sends a message, waiting while the write buffer is over its limit
    /// ([`WebSocket::send`], with the same cancel safety).
    pub async fn send(&mut self, message: impl Into<Message>) -> Result<()> {
        let message = message.into();
        self.poll_with(|ws, cx| ws.poll_ready(cx)).await?;
        Pin::new(&mut *lock(&self.shared)).start_send(message)?;
        self.flush().await
    }

    /// Sends a message framed once for many connections ([`WebSocket::send_prepared`]).
    pub async fn send_prepared(&mut self, message: &PreparedMessage) -> Result<()> {
        self.feed_prepared(message).await?;
        self.flush().await
    }

    /// Queues a [`PreparedMessage`] for the next flush ([`WebSocket::feed_prepared`]).
    pub async fn feed_prepared(&mut self, message: &PreparedMessage) -> Result<()> {
        self.poll_with(|ws, cx| ws.poll_ready(cx)).await?;
        lock(&self.shared).queue_prepared(message)
    }

    /// Writes everything queued.
    pub async fn flush(&mut self) -> Result<()> {
        self.poll_with(|ws, cx| ws.poll_flush(cx)).await
    }

    /// Sends a ping, timed for [`latency`](WebSocketWriter::latency).
    pub async fn ping(&mut self, payload: &[u8]) -> Result<()> {
        self.send(Message::Ping(bytes::Bytes::copy_from_slice(payload)))
            .await
    }

    /// `WebSocket.close(code, reason)` with the browsers' rules ([`WebSocket::close`]). The
    /// reader sees the close event.
    pub async fn close(&mut self, code: Option<u16>, reason: &str) -> Result<()> {
        lock(&self.shared).start_application_close(code, reason)?;
        self.flush().await
    }

    /// Closes with any code valid on the wire ([`WebSocket::close_with`]).
    pub async fn close_with(&mut self, code: CloseCode, reason: &str) -> Result<()> {
        self.send(Message::Close(sockeye_proto::CloseEvent::new(code, reason)))
            .await
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocketReader<S> {
    shared_state!();

    /// Receives the next message; `None` after the close event. Cancel-safe, as
    /// [`WebSocket::recv`] is.
    pub async fn recv(&mut self) -> Option<Result<Message>> {
        poll_fn(|cx| Pin::new(&mut *lock(&self.shared)).poll_next(cx)).await
    }

    /// Puts the halves back together. Fails, returning them, if they come from different
    /// sockets.
    pub fn reunite(
        self,
        writer: WebSocketWriter<S>,
    ) -> std::result::Result<WebSocket<S>, ReuniteError<S>> {
        if !Arc::ptr_eq(&self.shared, &writer.shared) {
            return Err(ReuniteError(self, writer));
        }
        drop(writer);
        let mutex = Arc::into_inner(self.shared).expect("both halves were given");
        Ok(mutex.into_inner().unwrap_or_else(PoisonError::into_inner))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for WebSocketReader<S> {
    type Item = Result<Message>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut *lock(&self.shared)).poll_next(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WebSocketWriter<S> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        Pin::new(&mut *lock(&self.shared)).poll_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<()> {
        Pin::new(&mut *lock(&self.shared)).start_send(message)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        Pin::new(&mut *lock(&self.shared)).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        Pin::new(&mut *lock(&self.shared)).poll_close(cx)
    }
}
