//! `sockeye serve`: the demo endpoints of the seed document.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use futures_util::{SinkExt, StreamExt};
use sockeye::http::{header, HeaderValue, Response, StatusCode};
use sockeye::{Config, Message, Upgrade, Utf8Bytes};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;

const INDEX_HTML: &str = include_str!("../assets/index.html");

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Accept only WebSocket requests whose Origin is one of these (repeatable); any Origin is
    /// accepted when none is given. Requests without Origin come from non-browser clients and
    /// are accepted.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    allow_origin: Vec<String>,
    /// Seconds between keepalive pings (0 disables).
    #[arg(long, default_value_t = 30)]
    ping_interval: u64,
    /// Largest message accepted, in bytes.
    #[arg(long, default_value_t = 64 << 20)]
    max_message_size: usize,
    /// Disable permessage-deflate.
    #[arg(long)]
    no_compression: bool,
}

struct App {
    allow_origin: Vec<String>,
    chat: broadcast::Sender<Utf8Bytes>,
}

pub async fn run(args: ServeArgs) -> anyhow_like::Result<ExitCode> {
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let local = listener.local_addr()?;
    tracing::info!("listening on http://{local}/ (ws://{local}/echo, /hello, /chat)");
    println!("LISTENING {local}");
    let mut config = Config::default()
        .max_message_size(args.max_message_size)
        .ping_interval((args.ping_interval > 0).then(|| Duration::from_secs(args.ping_interval)));
    if args.no_compression {
        config = config.without_compression();
    }
    let app = Arc::new(App {
        allow_origin: args.allow_origin.clone(),
        chat: broadcast::channel(1024).0,
    });
    sockeye::serve(listener, config, move |upgrade, peer| {
        let app = app.clone();
        async move { route(app, upgrade, peer).await }
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

async fn route(app: Arc<App>, upgrade: Upgrade<TcpStream>, peer: SocketAddr) {
    let path = upgrade.path().to_owned();
    if !upgrade.is_websocket() {
        let _ = match path.as_str() {
            "/" | "/index.html" => page(upgrade, INDEX_HTML).await,
            "/echo" | "/hello" | "/chat" => {
                upgrade
                    .reject(
                        StatusCode::UPGRADE_REQUIRED,
                        "This endpoint speaks WebSocket.\n",
                    )
                    .await
            }
            _ => upgrade.reject(StatusCode::NOT_FOUND, "Not Found\n").await,
        };
        return;
    }
    if let Some(origin) = upgrade.header("origin") {
        if !app.allow_origin.is_empty() && !app.allow_origin.iter().any(|o| o == origin) {
            tracing::info!(%peer, origin, "refused origin");
            let _ = upgrade
                .reject(StatusCode::FORBIDDEN, "Origin not allowed\n")
                .await;
            return;
        }
    }
    let result = match path.as_str() {
        "/echo" => echo(upgrade).await,
        "/hello" => hello(upgrade).await,
        "/chat" => chat(upgrade, &app.chat).await,
        _ => upgrade.reject(StatusCode::NOT_FOUND, "Not Found\n").await,
    };
    if let Err(e) = result {
        tracing::debug!(%peer, path, "connection ended: {e}");
    }
}

async fn page(upgrade: Upgrade<TcpStream>, html: &str) -> sockeye::Result<()> {
    let mut resp = Response::new(());
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    upgrade.respond(resp, html.as_bytes()).await
}

/// Echoes every message with its type; agrees to the first subprotocol offered, so
/// `new WebSocket(url, ["soap", "wamp"])` opens with `soap`. The close code and reason are
/// echoed by the protocol core.
async fn echo(upgrade: Upgrade<TcpStream>) -> sockeye::Result<()> {
    let protocol = upgrade.offered_protocols().into_iter().next();
    let mut ws = upgrade.accept(protocol).await?;
    while let Some(msg) = ws.recv().await {
        match msg {
            Ok(msg @ (Message::Text(_) | Message::Binary(_))) => ws.send(msg).await?,
            Ok(Message::Close(_)) => break,
            Err(e) => tracing::debug!("echo: {e}"),
        }
    }
    Ok(())
}

/// The seed's demo: "My name is John" gets "Hello from server, John!", and five seconds after
/// the first greeting the server closes with 1000 "Bye!".
async fn hello(upgrade: Upgrade<TcpStream>) -> sockeye::Result<()> {
    let mut ws = upgrade.accept(None).await?;
    let mut bye_at: Option<tokio::time::Instant> = None;
    loop {
        let bye = async {
            match bye_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            msg = ws.recv() => match msg {
                Some(Ok(Message::Text(text))) => {
                    ws.send(greeting(&text)).await?;
                    bye_at.get_or_insert_with(|| tokio::time::Instant::now() + Duration::from_secs(5));
                }
                Some(Ok(Message::Binary(_))) => {}
                Some(Ok(Message::Close(_))) | None => return Ok(()),
                Some(Err(e)) => tracing::debug!("hello: {e}"),
            },
            _ = bye => {
                bye_at = None;
                ws.close(Some(1000), "Bye!").await?;
            }
        }
    }
}

pub fn greeting(text: &str) -> String {
    let name = text.split_whitespace().last().unwrap_or("Guest");
    format!("Hello from server, {name}!")
}

/// Relays every text message to every connected client.
async fn chat(
    upgrade: Upgrade<TcpStream>,
    room: &broadcast::Sender<Utf8Bytes>,
) -> sockeye::Result<()> {
    let ws = upgrade.accept(None).await?;
    let (mut sink, mut stream) = ws.split();
    let mut rx = room.subscribe();
    let writer = tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(text) => {
                    if sink.send(Message::Text(text)).await.is_err() {
                        break;
                    }
                }
                // A reader this slow loses messages rather than holding the room back.
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::debug!("chat: a slow client missed {n} messages");
                }
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    });
    while let Some(msg) = stream.next().await {
        match msg {
            Ok(Message::Text(text)) => {
                let _ = room.send(text);
            }
            Ok(Message::Close(_)) => break,
            _ => {}
        }
    }
    writer.abort();
    Ok(())
}

/// A boxed error that carries a message, for `main`.
pub mod anyhow_like {
    pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;
}

#[cfg(test)]
mod tests {
    use super::greeting;

    #[test]
    fn hello_greets_the_last_word() {
        assert_eq!(greeting("My name is John"), "Hello from server, John!");
        assert_eq!(greeting(""), "Hello from server, Guest!");
        assert_eq!(greeting("  "), "Hello from server, Guest!");
    }
}
