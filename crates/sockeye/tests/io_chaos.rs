//! The tokio layer under hostile I/O, in the manner of tokio-websockets' tests: a client and a
//! server over an in-memory pipe whose every read and write may return `Pending`, move only a
//! few bytes, or (in one variant) fail, with receive futures dropped in the middle of a poll.
//! No message is lost, duplicated or reordered, nothing panics, nothing hangs, and after an
//! injected failure both sides end with what they had in order (issue 19).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use proptest::prelude::*;
use sockeye::{ClientRequest, Config, Message};
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};

/// A stream that misbehaves as a slow or broken network does, on a seeded schedule.
struct Chaos {
    inner: DuplexStream,
    rng: u64,
    /// Bytes this side may move before every operation fails (`None`: never).
    budget: Option<usize>,
}

impl Chaos {
    fn roll(&mut self, n: u64) -> u64 {
        // xorshift64*: reproducible from the proptest seed, nothing more is asked of it.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }

    /// `Pending` (having asked to be polled again) one time in four.
    fn stall(&mut self, cx: &mut Context<'_>) -> bool {
        if self.roll(4) == 0 {
            cx.waker().wake_by_ref();
            return true;
        }
        false
    }

    /// How many of `len` bytes this operation may move: often few, sometimes all.
    fn portion(&mut self, len: usize) -> usize {
        let n = match self.roll(3) {
            0 => 1 + self.roll(7) as usize,
            1 => 1 + self.roll(1500) as usize,
            _ => len,
        };
        n.min(len)
    }

    fn spend(&mut self, n: usize) -> io::Result<usize> {
        match &mut self.budget {
            Some(0) => Err(io::ErrorKind::ConnectionReset.into()),
            Some(left) => {
                let n = n.min(*left);
                *left -= n;
                Ok(n)
            }
            None => Ok(n),
        }
    }
}

impl AsyncRead for Chaos {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.stall(cx) {
            return Poll::Pending;
        }
        let want = self.portion(buf.remaining());
        let want = match self.spend(want) {
            Ok(n) => n,
            Err(e) => return Poll::Ready(Err(e)),
        };
        let mut limited = ReadBuf::new(&mut buf.initialize_unfilled()[..want]);
        let poll = Pin::new(&mut self.inner).poll_read(cx, &mut limited);
        let filled = limited.filled().len();
        if let Some(left) = &mut self.budget {
            *left += want - filled; // give back what did not arrive
        }
        buf.advance(filled);
        poll
    }
}

impl AsyncWrite for Chaos {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.stall(cx) {
            return Poll::Pending;
        }
        let n = self.portion(buf.len());
        let n = match self.spend(n) {
            Ok(n) => n,
            Err(e) => return Poll::Ready(Err(e)),
        };
        let poll = Pin::new(&mut self.inner).poll_write(cx, &buf[..n]);
        if let (Poll::Ready(Ok(written)), Some(left)) = (&poll, &mut self.budget) {
            *left += n - written;
        }
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.stall(cx) {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.stall(cx) {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

fn message(i: usize, len: usize, text: bool) -> Message {
    let body: String = format!("{i}:")
        .chars()
        .chain("ünïcødé-αβγ-".chars().cycle())
        .take(len.max(4))
        .collect();
    if text {
        Message::text(body)
    } else {
        Message::binary(body.into_bytes())
    }
}

/// Receives until the close event, sometimes dropping the receive future after one poll.
async fn receive_all(
    ws: &mut sockeye::WebSocket<Chaos>,
    echo: bool,
    cancel_one_in: u64,
    mut rng: u64,
) -> (Vec<Message>, Option<sockeye::CloseEvent>) {
    let mut got = Vec::new();
    loop {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let next = if (rng >> 33) % cancel_one_in == 0 {
            // Polled once, then dropped: the message must not be lost.
            match tokio::time::timeout(Duration::ZERO, ws.recv()).await {
                Ok(next) => next,
                Err(_) => continue,
            }
        } else {
            ws.recv().await
        };
        match next {
            Some(Ok(Message::Close(event))) => return (got, Some(event)),
            Some(Ok(msg)) => {
                if echo && ws.send(msg.clone()).await.is_err() {
                    return (got, None);
                }
                got.push(msg);
            }
            Some(Err(_)) => {}
            None => return (got, None),
        }
    }
}

async fn run(
    sizes: Vec<(usize, bool)>,
    deflate: bool,
    seed: u64,
    budget: Option<usize>,
) -> Result<(), TestCaseError> {
    let (a, b) = tokio::io::duplex(16 << 10);
    let client_io = Chaos {
        inner: a,
        rng: seed | 1,
        budget,
    };
    let server_io = Chaos {
        inner: b,
        rng: seed.rotate_left(17) | 1,
        budget: None,
    };
    let config = if deflate {
        Config::default()
    } else {
        Config::default().without_compression()
    };
    let sent: Vec<Message> = sizes
        .iter()
        .enumerate()
        .map(|(i, &(len, text))| message(i, len, text))
        .collect();
    let server_config = config.clone();
    let server = tokio::spawn(async move {
        let Ok(upgrade) = sockeye::read_request(server_io, server_config).await else {
            return (Vec::new(), None);
        };
        let Ok(mut ws) = upgrade.accept(None).await else {
            return (Vec::new(), None);
        };
        receive_all(&mut ws, true, 3, seed).await
    });
    let request = ClientRequest::new("ws://chaos.test/").unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(20), async {
        let Ok(ws) = sockeye::client_handshake(client_io, &request, config).await else {
            return (Vec::new(), None);
        };
        let (mut sink, mut stream) = ws.split();
        let to_send = sent.clone();
        let sender = async move {
            for msg in to_send {
                if sink.send(msg).await.is_err() {
                    return;
                }
            }
            let _ = sink.send(Message::close(1000, "done")).await;
        };
        let receiver = async {
            use futures_util::StreamExt;
            let mut got = Vec::new();
            let mut close = None;
            while let Some(next) = stream.next().await {
                match next {
                    Ok(Message::Close(ev)) => close = Some(ev),
                    Ok(msg) => got.push(msg),
                    Err(_) => {}
                }
            }
            (got, close)
        };
        let ((), echoed) = tokio::join!(sender, receiver);
        echoed
    })
    .await;
    let (echoed, client_close) = outcome.map_err(|_| TestCaseError::fail("the client hung"))?;
    let (received, server_close) = tokio::time::timeout(Duration::from_secs(20), server)
        .await
        .map_err(|_| TestCaseError::fail("the server hung"))?
        .unwrap();
    // In order, nothing lost or duplicated: with a failure, what arrived is a prefix.
    prop_assert!(received.len() <= sent.len());
    prop_assert!(
        received == sent[..received.len()],
        "server got other messages"
    );
    prop_assert!(echoed.len() <= received.len());
    prop_assert!(
        echoed == received[..echoed.len()],
        "client got other echoes"
    );
    if budget.is_none() {
        prop_assert_eq!(received.len(), sent.len());
        prop_assert_eq!(echoed.len(), sent.len());
        let server_close = server_close.expect("the server saw the close");
        let client_close = client_close.expect("the client saw the close");
        prop_assert_eq!(server_close.code.0, 1000);
        prop_assert!(server_close.was_clean && client_close.was_clean);
    }
    Ok(())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn pending_short_reads_and_writes_and_dropped_receives_lose_nothing(
        sizes in prop::collection::vec((0usize..40_000, any::<bool>()), 1..24),
        deflate in any::<bool>(),
        seed in any::<u64>(),
    ) {
        runtime().block_on(run(sizes, deflate, seed, None))?;
    }

    #[test]
    fn a_connection_that_fails_midway_ends_on_both_sides_with_messages_in_order(
        sizes in prop::collection::vec((0usize..20_000, any::<bool>()), 1..16),
        deflate in any::<bool>(),
        seed in any::<u64>(),
        budget in 0usize..200_000,
    ) {
        runtime().block_on(run(sizes, deflate, seed, Some(budget)))?;
    }
}
