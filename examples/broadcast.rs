//! A broadcast server: every text or binary message a client sends goes to every connected
//! client, the sender included. Each message is framed once, as a `PreparedMessage`, and the
//! same frame is queued on every connection without copying it, through a
//! `tokio::sync::broadcast` channel.
//!
//! ```sh
//! cargo run -p sockeye-examples --example broadcast -- 127.0.0.1:8080
//! sockeye connect ws://127.0.0.1:8080/     # in two terminals or more: type in one
//! ```
//!
//! Argument: the address to listen on (default `127.0.0.1:8080`; port 0 picks a free port).
//! The first line on stdout is `LISTENING <addr>`.
//!
//! A client that falls more than `BACKLOG` messages behind (it stopped reading) is closed
//! with 1013 "Try Again Later" instead of slowing the others down or making the server queue
//! for it without bound.

use sockeye::{CloseCode, Config, Message, PreparedMessage};
use tokio::net::TcpListener;
use tokio::sync::broadcast;

/// Messages the channel keeps for a connection that has not sent them yet.
const BACKLOG: usize = 1024;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let listener = TcpListener::bind(&addr).await?;
    println!("LISTENING {}", listener.local_addr()?);

    let (hub, _) = broadcast::channel::<PreparedMessage>(BACKLOG);
    sockeye::serve(listener, Config::default(), move |upgrade, _peer| {
        let hub = hub.clone();
        async move {
            // Subscribed before the handshake is answered: once a client sees its socket
            // open, it receives every message sent after that.
            let mut inbox = hub.subscribe();
            let Ok(mut ws) = upgrade.accept(None).await else {
                return;
            };
            loop {
                tokio::select! {
                    // The socket must be read to make progress (pings, the closing
                    // handshake), so it is read even while nothing is being sent.
                    received = ws.recv() => match received {
                        Some(Ok(Message::Text(text))) => {
                            let _ = hub.send(PreparedMessage::text(text));
                        }
                        Some(Ok(Message::Binary(data))) => {
                            let _ = hub.send(PreparedMessage::binary(data));
                        }
                        // The close event (the last item) or a failed connection.
                        Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                        // Pings and pongs, delivered only when the `Config` asks.
                        Some(Ok(_)) => {}
                    },
                    next = inbox.recv() => match next {
                        Ok(message) => {
                            // Queue this one and whatever else is waiting, then write them
                            // all at once.
                            if ws.feed_prepared(&message).await.is_err() {
                                break;
                            }
                            while let Ok(message) = inbox.try_recv() {
                                if ws.feed_prepared(&message).await.is_err() {
                                    break;
                                }
                            }
                            if ws.flush().await.is_err() {
                                break;
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(missed)) => {
                            let reason = format!("missed {missed} messages");
                            let _ = ws.close_with(CloseCode::TRY_AGAIN_LATER, &reason).await;
                            // Read on until the client answers the close (or the close
                            // timeout ends the connection).
                            while let Some(Ok(_)) = ws.recv().await {}
                            break;
                        }
                        Err(broadcast::error::RecvError::Closed) => break,
                    },
                }
            }
        }
    })
    .await
}
