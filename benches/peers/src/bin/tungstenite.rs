//! tokio-tungstenite, as its `echo-server` example: `accept_async`, then forward the read half
//! (text and binary only) into the write half. With `--tls-cert`/`--tls-key`, the same over
//! tokio-rustls (the acceptor every peer shares, see lib.rs).
//!
//! `/chat`: a relay for `sockeye bench --mode broadcast`, the usual way with this library: a
//! tokio broadcast channel of messages, each connection sending every one it receives.

use std::sync::OnceLock;

use futures_util::{future, SinkExt, StreamExt, TryStreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

fn main() {
    let args = sockeye_bench_peers::Args::parse(false, true);
    match args.tls_config() {
        Some(tls) => sockeye_bench_peers::serve_tls(&args, tls, accept_connection),
        None => sockeye_bench_peers::serve(&args, accept_connection),
    }
}

// The callback's error type is tokio-tungstenite's `ErrorResponse`, not ours to shrink.
#[allow(clippy::result_large_err)]
async fn accept_connection<S: AsyncRead + AsyncWrite + Unpin>(stream: S) {
    let mut path = String::new();
    let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, |req: &Request, resp: Response| {
        path = req.uri().path().to_owned();
        Ok(resp)
    })
    .await
    else {
        return;
    };
    if path == "/chat" {
        return chat(ws).await;
    }
    let (write, read) = ws.split();
    let _ = read
        .try_filter(|msg| future::ready(msg.is_text() || msg.is_binary()))
        .forward(write)
        .await;
}

fn chat_room() -> &'static broadcast::Sender<Message> {
    static ROOM: OnceLock<broadcast::Sender<Message>> = OnceLock::new();
    ROOM.get_or_init(|| broadcast::channel(1024).0)
}

async fn chat<S: AsyncRead + AsyncWrite + Unpin>(mut ws: WebSocketStream<S>) {
    let mut room = chat_room().subscribe();
    loop {
        tokio::select! {
            msg = ws.next() => match msg {
                Some(Ok(msg @ Message::Text(_))) => {
                    let _ = chat_room().send(msg);
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
            relayed = room.recv() => match relayed {
                Ok(msg) => {
                    if ws.send(msg).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}
