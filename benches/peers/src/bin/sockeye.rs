//! sockeye through its public API, as `sockeye serve`'s `/echo` does it: `sockeye::serve`,
//! `accept`, then `recv` and `send`. `--deflate` keeps `Config::default()`'s permessage-deflate;
//! without it the config is `without_compression()`. Keepalive pings are off (the default).
//! `--tls-cert`/`--tls-key`: `sockeye::tls::serve_tls`, as `sockeye serve --tls-cert` does.
//!
//! `/firehose?size=N` (any other path echoes): binary messages of N bytes (default 20), sent
//! as fast as the client reads them, for `sockeye bench --mode firehose`; what the client
//! sends is not read, and the stream ends when the client goes away.
//!
//! `/chat`: a relay for `sockeye bench --mode broadcast`, as `sockeye serve`'s `/chat`: every
//! text message goes to every connection on `/chat`, framed once ([`PreparedMessage`]) and
//! shared by all of them.

use std::sync::OnceLock;

use futures_util::SinkExt;
use sockeye::{Config, Message, PreparedMessage, Upgrade, WebSocket};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::broadcast;

/// Firehose messages queued per flush: enough to fill a write system call with small messages.
const FIREHOSE_BATCH: usize = 32;

fn main() {
    let args = sockeye_bench_peers::Args::parse(true, true);
    let config = if args.deflate {
        // `SOCKEYE_SHARED_COMPRESSORS=N`: the size of the compressor cache (default 64), to
        // show what the bound costs when more connections than that send at once.
        if let Some(n) = std::env::var("SOCKEYE_SHARED_COMPRESSORS")
            .ok()
            .and_then(|n| n.parse().ok())
        {
            sockeye::proto::deflate::set_shared_compressors(n);
        }
        Config::default()
    } else {
        Config::default().without_compression()
    };
    let tls = args.tls_config();
    // sockeye has its own accept loop; run it on the same runtimes the other peers get.
    args.runtime().block_on(async move {
        let listener = TcpListener::bind(args.addr).await.expect("bind");
        println!("LISTENING {}", listener.local_addr().expect("local_addr"));
        std::io::Write::flush(&mut std::io::stdout()).expect("stdout");
        match tls {
            None => sockeye::serve(listener, config, |upgrade, _peer| async move {
                let _ = handle(upgrade).await;
            })
            .await
            .expect("serve"),
            Some(tls) => {
                sockeye::tls::serve_tls(listener, tls, config, |upgrade, _peer| async move {
                    let _ = handle(upgrade).await;
                })
                .await
                .expect("serve")
            }
        }
    });
}

async fn handle<S: AsyncRead + AsyncWrite + Unpin>(upgrade: Upgrade<S>) -> sockeye::Result<()> {
    if upgrade.path() == "/firehose" {
        let size = upgrade
            .request()
            .uri()
            .query()
            .unwrap_or_default()
            .split('&')
            .find_map(|kv| kv.strip_prefix("size=")?.parse().ok())
            .unwrap_or(20);
        firehose(upgrade.accept(None).await?, size).await
    } else if upgrade.path() == "/chat" {
        let room = chat_room().subscribe();
        chat(upgrade.accept(None).await?, room).await
    } else {
        echo(upgrade.accept(None).await?).await
    }
}

async fn echo<S: AsyncRead + AsyncWrite + Unpin>(mut ws: WebSocket<S>) -> sockeye::Result<()> {
    while let Some(msg) = ws.recv().await {
        match msg? {
            msg @ (Message::Text(_) | Message::Binary(_)) => ws.send(msg).await?,
            Message::Close(_) => break,
            _ => {}
        }
    }
    Ok(())
}

async fn firehose<S: AsyncRead + AsyncWrite + Unpin>(
    mut ws: WebSocket<S>,
    size: usize,
) -> sockeye::Result<()> {
    let message = Message::binary(vec![0x5a; size]);
    loop {
        for _ in 0..FIREHOSE_BATCH {
            ws.feed(message.clone()).await?;
        }
        ws.flush().await?;
    }
}

fn chat_room() -> &'static broadcast::Sender<PreparedMessage> {
    static ROOM: OnceLock<broadcast::Sender<PreparedMessage>> = OnceLock::new();
    ROOM.get_or_init(|| broadcast::channel(1024).0)
}

async fn chat<S: AsyncRead + AsyncWrite + Unpin>(
    mut ws: WebSocket<S>,
    mut room: broadcast::Receiver<PreparedMessage>,
) -> sockeye::Result<()> {
    loop {
        tokio::select! {
            msg = ws.recv() => match msg {
                Some(Ok(Message::Text(text))) => {
                    let _ = chat_room().send(PreparedMessage::text(text));
                }
                Some(Ok(Message::Close(_))) | None => return Ok(()),
                Some(Err(e)) => return Err(e),
                Some(Ok(_)) => {}
            },
            relayed = room.recv() => match relayed {
                Ok(prepared) => ws.send_prepared(&prepared).await?,
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            },
        }
    }
}
