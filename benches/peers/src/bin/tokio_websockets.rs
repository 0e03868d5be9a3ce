//! tokio-websockets, as its `autobahn_server` example: `ServerBuilder` with unlimited limits
//! (the default frame limit is below the 1 MiB cell), then echo text and binary messages.

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_websockets::{Error, Limits, ServerBuilder};

fn main() {
    let args = sockeye_bench_peers::Args::parse(false, false);
    sockeye_bench_peers::serve(&args, |stream| async move {
        let _ = handle_connection(stream).await;
    });
}

async fn handle_connection(stream: TcpStream) -> Result<(), Error> {
    let (_request, mut ws) = ServerBuilder::new()
        .limits(Limits::unlimited())
        .accept(stream)
        .await?;
    while let Some(msg) = ws.next().await {
        let msg = msg?;
        if msg.is_text() || msg.is_binary() {
            ws.send(msg).await?;
        }
    }
    Ok(())
}
