//! Drives Autobahn|Testsuite's `fuzzingserver`: runs every case with an echo client, then asks
//! the suite to write its report (agent name `sockeye`).
//!
//! `cargo run --release --example autobahn_client -- ws://127.0.0.1:9001`

use sockeye::{Config, Message};

const AGENT: &str = "sockeye";

#[tokio::main(flavor = "current_thread")]
async fn main() -> sockeye::Result<()> {
    let base = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:9001".into());
    let count = case_count(&base).await?;
    eprintln!("{count} cases");
    for case in 1..=count {
        let url = format!("{base}/runCase?case={case}&agent={AGENT}");
        if let Err(e) = echo(&url).await {
            eprintln!("case {case}: {e}");
        }
    }
    let mut ws = sockeye::connect(&format!("{base}/updateReports?agent={AGENT}")).await?;
    while ws.recv().await.is_some() {}
    Ok(())
}

async fn case_count(base: &str) -> sockeye::Result<u32> {
    let mut ws = sockeye::connect(&format!("{base}/getCaseCount")).await?;
    let mut count = 0;
    while let Some(msg) = ws.recv().await {
        if let Message::Text(text) = msg? {
            count = text.trim().parse().unwrap_or(0);
        }
    }
    Ok(count)
}

async fn echo(url: &str) -> sockeye::Result<()> {
    let request = sockeye::ClientRequest::new(url)?;
    let mut ws = sockeye::connect_with(request, Config::default()).await?;
    while let Some(msg) = ws.recv().await {
        if let Ok(msg @ (Message::Text(_) | Message::Binary(_))) = msg {
            let _ = ws.send(msg).await;
        }
    }
    Ok(())
}
