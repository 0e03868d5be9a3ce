//! tokio-tungstenite, as its `echo-server` example: `accept_async`, then forward the read half
//! (text and binary only) into the write half.

use futures_util::{future, StreamExt, TryStreamExt};
use tokio::net::TcpStream;

fn main() {
    let args = sockeye_bench_peers::Args::parse(false);
    sockeye_bench_peers::serve(&args, accept_connection);
}

async fn accept_connection(stream: TcpStream) {
    let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let (write, read) = ws.split();
    let _ = read
        .try_filter(|msg| future::ready(msg.is_text() || msg.is_binary()))
        .forward(write)
        .await;
}
