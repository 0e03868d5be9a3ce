//! How the server reads from a real loopback socket. tokio takes a read that leaves room in its
//! buffer as proof that the socket is drained; a read that fills the buffer to the brim makes it
//! try again, and that try is a system call that finds nothing. A peer that sends one message
//! at a time must therefore never fill a read buffer once its message size is known.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use sockeye::{Config, Message};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

#[derive(Default)]
struct ReadCounts {
    reads: AtomicUsize,
    brim_full: AtomicUsize,
}

/// A TCP stream that counts the reads that returned data, and those that filled the buffer.
struct CountingStream {
    inner: TcpStream,
    counts: Arc<ReadCounts>,
}

impl AsyncRead for CountingStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let (before, room) = (buf.filled().len(), buf.remaining());
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        if n > 0 {
            self.counts.reads.fetch_add(1, Ordering::Relaxed);
            if n == room {
                self.counts.brim_full.fetch_add(1, Ordering::Relaxed);
            }
        }
        result
    }
}

impl AsyncWrite for CountingStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Echoes `messages` binary messages of `size` bytes, one at a time, through a server whose
/// socket counts its reads; returns the counts taken after the first message.
async fn echo_one_at_a_time(size: usize, messages: usize) -> (usize, usize) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counts = Arc::new(ReadCounts::default());
    let server_counts = counts.clone();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let io = CountingStream {
            inner: tcp,
            counts: server_counts,
        };
        let config = Config::default().without_compression();
        let mut ws = sockeye::read_request(io, config)
            .await
            .unwrap()
            .accept(None)
            .await
            .unwrap();
        while let Some(Ok(msg)) = ws.recv().await {
            if let Message::Binary(_) = msg {
                ws.send(msg).await.unwrap();
            }
        }
    });

    let mut client = sockeye::connect(&format!("ws://{addr}/")).await.unwrap();
    let payload: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let mut after_first = (0, 0);
    for i in 0..messages {
        if i == 1 {
            after_first = (
                counts.reads.load(Ordering::Relaxed),
                counts.brim_full.load(Ordering::Relaxed),
            );
        }
        client.send(Message::binary(payload.clone())).await.unwrap();
        match client.recv().await {
            Some(Ok(Message::Binary(echoed))) => assert_eq!(echoed.len(), size),
            other => panic!("expected the echo, got {other:?}"),
        }
    }
    client.close(Some(1000), "").await.unwrap();
    while client.recv().await.is_some() {}
    server.await.unwrap();
    (
        counts.reads.load(Ordering::Relaxed) - after_first.0,
        counts.brim_full.load(Ordering::Relaxed) - after_first.1,
    )
}

#[tokio::test]
async fn reads_sized_from_the_last_frame_never_fill_the_buffer_rfc6455_5_2() {
    for size in [20, 1 << 10, 16 << 10, 100 << 10] {
        let messages = 20;
        let (reads, brim_full) = echo_one_at_a_time(size, messages).await;
        // Every message but the first and the client's close frame came in at least one read.
        assert!(reads >= messages - 1, "{size} B: {reads} reads");
        assert_eq!(
            brim_full, 0,
            "{size} B: {brim_full} of {reads} reads filled the buffer"
        );
    }
}
