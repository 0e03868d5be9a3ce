//! An axum app whose `/echo` route is a Sockeye WebSocket, over HTTP/1.1 and HTTP/2.
//!
//! ```sh
//! cargo run -p sockeye --features axum --example axum_echo -- 127.0.0.1:9001
//! cargo run -p sockeye --features axum --example axum_echo -- 127.0.0.1:9443 cert.pem key.pem
//! ```
//!
//! Plain: `axum::serve`, which takes HTTP/1.1 and HTTP/2 with prior knowledge (h2c) and turns on
//! extended CONNECT. With a certificate and key: TLS whose ALPN offers `h2` and `http/1.1`, which
//! is how browsers reach WebSockets over HTTP/2 (RFC 8441). `/` is a page that opens
//! `/echo` from the same origin. Each accepted WebSocket prints one line with its HTTP version.

use std::sync::Arc;

use axum::response::{Html, Response};
use axum::routing::{any, get};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use sockeye::axum::WebSocketUpgrade;
use sockeye::Message;
use tokio::net::TcpListener;

const PAGE: &str =
    "<!doctype html><title>axum echo</title><p>Sockeye behind axum: open a WebSocket to /echo.</p>";

async fn echo(ws: WebSocketUpgrade) -> Response {
    let version = ws.http_version();
    ws.protocols(["soap", "wamp"])
        .on_upgrade(move |mut socket| async move {
            println!(
                "websocket http_version={version:?} protocol={:?}",
                socket.protocol()
            );
            // Until the close event: the closing handshake completes inside `recv`.
            while let Some(msg) = socket.recv().await {
                if let Ok(msg @ (Message::Text(_) | Message::Binary(_))) = msg {
                    if socket.send(msg).await.is_err() {
                        break;
                    }
                }
            }
        })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr = args.first().map_or("127.0.0.1:9001", String::as_str);
    let app = Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/echo", any(echo));
    let listener = TcpListener::bind(addr).await?;
    println!("listening on {}", listener.local_addr()?);
    match (args.get(1), args.get(2)) {
        (Some(cert), Some(key)) => serve_tls(listener, app, cert, key).await,
        _ => Ok(axum::serve(listener, app).await?),
    }
}

/// axum::serve has no TLS, so connections go through tokio-rustls to hyper-util's
/// HTTP/1.1-or-HTTP/2 server, with extended CONNECT on as axum::serve does.
async fn serve_tls(
    listener: TcpListener,
    app: Router,
    cert: &str,
    key: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut tls = rustls::ServerConfig::builder_with_provider(sockeye::tls::provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            sockeye::tls::load_certs(cert)?,
            sockeye::tls::load_private_key(key)?,
        )?;
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    loop {
        let (tcp, _) = listener.accept().await?;
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let Ok(stream) = acceptor.accept(tcp).await else {
                return;
            };
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder.http2().enable_connect_protocol();
            let _ = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .await;
        });
    }
}
