//! A server that authenticates the opening handshake: a client must bring a token, either in
//! the query string (`ws://HOST/?token=…`, what a browser's `new WebSocket(url)` can do) or
//! as `Authorization: Bearer …` (what other clients can do). Without the right token it gets
//! `401 Unauthorized` with a `WWW-Authenticate` header and no WebSocket; with it, every
//! message is echoed back.
//!
//! ```sh
//! cargo run -p sockeye-examples --example auth_server -- 127.0.0.1:8080 s3cret
//! sockeye connect 'ws://127.0.0.1:8080/?token=s3cret'
//! sockeye connect --header 'Authorization: Bearer s3cret' ws://127.0.0.1:8080/
//! ```
//!
//! Arguments: the address to listen on (default `127.0.0.1:8080`; port 0 picks a free port)
//! and the token (default `s3cret`). The first line on stdout is `LISTENING <addr>`; then
//! one line per request, `accepted <peer>` or `refused <peer>: <why>`.
//!
//! It reads each request with `sockeye::read_request` in its own task, looks at it through
//! the `Upgrade`, and then either answers it itself (`respond`) or accepts it (`accept`).
//! `sockeye::serve` runs the same accept loop for you.

use std::net::SocketAddr;
use std::sync::Arc;

use sockeye::http::{header, HeaderValue, StatusCode};
use sockeye::{Config, Message, Upgrade};
use tokio::net::{TcpListener, TcpStream};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let token = args.next().unwrap_or_else(|| "s3cret".to_owned());
    let listener = TcpListener::bind(&addr).await?;
    println!("LISTENING {}", listener.local_addr()?);

    let token: Arc<str> = token.into();
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                // Out of file descriptors, say: try again shortly rather than give up.
                eprintln!("accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        tokio::spawn(handle(stream, peer, token.clone()));
    }
}

async fn handle(stream: TcpStream, peer: SocketAddr, token: Arc<str>) {
    // Reads the request head (within `Config::handshake_timeout`); a malformed one has
    // already been answered with 400 or 431.
    let mut upgrade = match sockeye::read_request(stream, Config::default()).await {
        Ok(upgrade) => upgrade,
        Err(e) => {
            println!("refused {peer}: {e}");
            return;
        }
    };
    if let Err(why) = check_token(&upgrade, &token) {
        println!("refused {peer}: {why}");
        // A 401 carries the `WWW-Authenticate` header HTTP asks for; `reject` then drains what
        // the client still sends for a moment, so that the answer is not lost to a reset.
        upgrade.response_headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"sockeye-examples\""),
        );
        let _ = upgrade
            .reject(StatusCode::UNAUTHORIZED, &format!("{why}\n"))
            .await;
        return;
    }
    // Not a WebSocket request at all (a plain GET, a wrong version): `accept` answers it with
    // 400 or 426 and returns the error.
    let mut ws = match upgrade.accept(None).await {
        Ok(ws) => ws,
        Err(e) => {
            println!("refused {peer}: {e}");
            return;
        }
    };
    println!("accepted {peer}");
    while let Some(message) = ws.recv().await {
        match message {
            Ok(message @ (Message::Text(_) | Message::Binary(_))) => {
                if ws.send(message).await.is_err() {
                    break;
                }
            }
            // The close event ends the stream; the closing handshake was answered already.
            // Other kinds (pings, pongs) appear only when asked for in the `Config`.
            Ok(_) => {}
            Err(_) => break,
        }
    }
}

/// The token of the request, from `?token=` or `Authorization: Bearer`, compared with the
/// expected one.
fn check_token<S>(upgrade: &Upgrade<S>, expected: &str) -> Result<(), &'static str> {
    let from_query = upgrade.request().uri().query().and_then(|query| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(name, _)| name == "token")
            .map(|(_, value)| value.into_owned())
    });
    let from_header = upgrade
        .header("authorization")
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(|value| value.trim().to_owned());
    match from_query.or(from_header) {
        None => Err("no token"),
        Some(given) if same(given.as_bytes(), expected.as_bytes()) => Ok(()),
        Some(_) => Err("wrong token"),
    }
}

/// Compares without stopping at the first difference, so that the time taken does not tell
/// how much of a guess was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |acc, (x, y)| acc | (x ^ y)) == 0
}
