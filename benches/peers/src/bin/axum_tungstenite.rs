//! axum's own WebSocket (tokio-tungstenite underneath): `axum::extract::ws::WebSocketUpgrade`
//! on a route that echoes text and binary messages, the same app as `axum_sockeye`.

use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::any;
use axum::Router;

fn main() {
    let args = sockeye_bench_peers::Args::parse(false, false);
    sockeye_bench_peers::serve_axum(&args, Router::new().fallback(any(echo)));
}

async fn echo(ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(|mut socket| async move {
        while let Some(Ok(msg)) = socket.recv().await {
            if matches!(msg, Message::Text(_) | Message::Binary(_)) && socket.send(msg).await.is_err()
            {
                break;
            }
        }
    })
}
