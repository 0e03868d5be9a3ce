//! tokio-tungstenite, as its `echo-server` example: `accept_async`, then forward the read half
//! (text and binary only) into the write half. With `--tls-cert`/`--tls-key`, the same over
//! tokio-rustls (the acceptor every peer shares, see lib.rs).

use futures_util::{future, StreamExt, TryStreamExt};
use tokio::io::{AsyncRead, AsyncWrite};

fn main() {
    let args = sockeye_bench_peers::Args::parse(false, true);
    match args.tls_config() {
        Some(tls) => sockeye_bench_peers::serve_tls(&args, tls, accept_connection),
        None => sockeye_bench_peers::serve(&args, accept_connection),
    }
}

async fn accept_connection<S: AsyncRead + AsyncWrite + Unpin>(stream: S) {
    let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let (write, read) = ws.split();
    let _ = read
        .try_filter(|msg| future::ready(msg.is_text() || msg.is_binary()))
        .forward(write)
        .await;
}
