//! An echo server: every text or binary message comes back as it was sent.
//!
//! `cargo run --example echo_server -- 127.0.0.1:9002`

use sockeye::{Config, Message};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9002".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("LISTENING {}", listener.local_addr()?);
    sockeye::serve(listener, Config::default(), |upgrade, _peer| async move {
        let Ok(mut ws) = upgrade.accept(None).await else {
            return;
        };
        while let Some(msg) = ws.recv().await {
            match msg {
                Ok(msg @ (Message::Text(_) | Message::Binary(_))) => {
                    if ws.send(msg).await.is_err() {
                        break;
                    }
                }
                Ok(Message::Close(_)) => break,
                Ok(_) | Err(_) => {}
            }
        }
    })
    .await
}
