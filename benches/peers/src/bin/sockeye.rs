//! sockeye through its public API, as `sockeye serve`'s `/echo` does it: `sockeye::serve`,
//! `accept`, then `recv` and `send`. `--deflate` keeps `Config::default()`'s permessage-deflate;
//! without it the config is `without_compression()`. Keepalive pings are off (the default).
//! `--tls-cert`/`--tls-key`: `sockeye::tls::serve_tls`, as `sockeye serve --tls-cert` does.
//!
//! `/firehose?size=N` (any other path echoes): binary messages of N bytes (default 20), sent
//! as fast as the client reads them, for `sockeye bench --mode firehose`; what the client
//! sends is not read, and the stream ends when the client goes away.

use futures_util::SinkExt;
use sockeye::{Config, Message, Upgrade, WebSocket};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

/// Firehose messages queued per flush: enough to fill a write system call with small messages.
const FIREHOSE_BATCH: usize = 32;

fn main() {
    let args = sockeye_bench_peers::Args::parse(true, true);
    let config = if args.deflate {
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
    } else {
        echo(upgrade.accept(None).await?).await
    }
}

async fn echo<S: AsyncRead + AsyncWrite + Unpin>(mut ws: WebSocket<S>) -> sockeye::Result<()> {
    while let Some(msg) = ws.recv().await {
        match msg? {
            msg @ (Message::Text(_) | Message::Binary(_)) => ws.send(msg).await?,
            Message::Close(_) => break,
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
