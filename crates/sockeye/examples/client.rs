//! A client that sends each line of stdin as a text message and prints what comes back.
//!
//! `cargo run --example client -- ws://127.0.0.1:8080/echo`

use sockeye::Message;
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::main(flavor = "current_thread")]
async fn main() -> sockeye::Result<()> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:8080/echo".into());
    let mut ws = sockeye::connect(&url).await?;
    eprintln!(
        "open (protocol {:?}, extensions {:?})",
        ws.protocol(),
        ws.extensions()
    );
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    loop {
        tokio::select! {
            line = lines.next_line(), if stdin_open => match line? {
                Some(line) => ws.send(line).await?,
                None => {
                    stdin_open = false;
                    ws.close(Some(1000), "bye").await?;
                }
            },
            msg = ws.recv() => match msg {
                Some(Ok(Message::Text(text))) => println!("{text}"),
                Some(Ok(Message::Binary(data))) => println!("<{} bytes>", data.len()),
                Some(Ok(Message::Close(event))) => {
                    eprintln!("close: code {} reason {:?} clean {}", event.code, event.reason, event.was_clean);
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => eprintln!("error: {e}"),
                None => return Ok(()),
            },
        }
    }
}
