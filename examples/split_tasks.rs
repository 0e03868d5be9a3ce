//! A reader task and a writer task on one WebSocket: `split()` gives two halves that each keep
//! what the whole socket offers (`buffered_amount`, `ready_state`, `latency`; `ping` and
//! `close` on the writer).
//!
//! The writer sends COUNT numbered messages, pinging after each, and closes with 1000; the
//! reader prints every reply, pong and the close event, then the halves are put back together.
//!
//! ```sh
//! sockeye serve &                      # an echo server on ws://127.0.0.1:8080/echo
//! cargo run -p sockeye-examples --example split_tasks -- ws://127.0.0.1:8080/echo 5
//! ```

use sockeye::{ClientRequest, Config, Message};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args.next().ok_or("usage: split_tasks WS_URL [COUNT]")?;
    let count: u32 = args.next().map_or(Ok(5), |n| n.parse())?;

    // Pongs are delivered so that the reader can print them; latency is measured either way.
    let config = Config::default().receive_pongs(true);
    let ws = sockeye::connect_with(ClientRequest::new(&url)?.no_proxy(), config).await?;
    let (mut writer, mut reader) = ws.split();

    let writing = tokio::spawn(async move {
        for i in 0..count {
            writer.send(format!("message {i}")).await?;
            writer.ping(format!("ping {i}").as_bytes()).await?;
        }
        // Everything was flushed by `send`: nothing waits in the socket's buffer.
        println!("writer: buffered {}", writer.buffered_amount());
        writer.close(Some(1000), "done").await?;
        Ok::<_, sockeye::Error>(writer)
    });

    // The reader runs the connection (answers pings, finishes the closing handshake) for both.
    while let Some(message) = reader.recv().await {
        match message? {
            Message::Text(text) => println!("reader: {text}"),
            Message::Pong(payload) => {
                println!("reader: pong {}", String::from_utf8_lossy(&payload))
            }
            Message::Close(event) => println!(
                "reader: closed code={} reason={:?} clean={}",
                event.code, event.reason, event.was_clean
            ),
            other => println!("reader: {other:?}"),
        }
    }
    let writer = writing.await??;
    let latency = reader.latency().ok_or("no ping was answered")?;
    println!("latency: {} µs", latency.as_micros());
    let ws = reader.reunite(writer)?;
    println!("reunited: {:?}", ws.ready_state());
    Ok(())
}
