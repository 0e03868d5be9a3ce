//! Sockeye behind axum: `sockeye::axum::WebSocketUpgrade` on a route that echoes text and
//! binary messages, the same app as `axum_tungstenite` with the other library.

use axum::response::Response;
use axum::routing::any;
use axum::Router;
use sockeye::axum::WebSocketUpgrade;
use sockeye::{Config, Message};

fn main() {
    let args = sockeye_bench_peers::Args::parse(false, false);
    sockeye_bench_peers::serve_axum(&args, Router::new().fallback(any(echo)));
}

async fn echo(ws: WebSocketUpgrade) -> Response {
    // tokio-tungstenite has no permessage-deflate: neither side offers it here.
    ws.config(Config::default().without_compression())
        .on_upgrade(|mut socket| async move {
            while let Some(Ok(msg)) = socket.recv().await {
                if matches!(msg, Message::Text(_) | Message::Binary(_))
                    && socket.send(msg).await.is_err()
                {
                    break;
                }
            }
        })
}
