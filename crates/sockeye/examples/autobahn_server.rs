//! The echo server that Autobahn|Testsuite's `fuzzingclient` tests (see interop/autobahn).
//!
//! `cargo run --release --example autobahn_server -- 127.0.0.1:9001 [fast|balanced|max]`
//!
//! The second argument picks the permessage-deflate policy (default `balanced`), so that the
//! compression cases (12.*, 13.*) run against each.

use sockeye::{CompressionPolicy, Config, Message};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".into());
    let policy: CompressionPolicy = match std::env::args().nth(2) {
        Some(name) => name
            .parse()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?,
        None => CompressionPolicy::default(),
    };
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("LISTENING {}", listener.local_addr()?);
    let config = Config::default().compression(policy);
    sockeye::serve(listener, config, |upgrade, _peer| async move {
        let Ok(mut ws) = upgrade.accept(None).await else {
            return;
        };
        while let Some(msg) = ws.recv().await {
            if let Ok(msg @ (Message::Text(_) | Message::Binary(_))) = msg {
                let _ = ws.send(msg).await;
            }
        }
    })
    .await
}
