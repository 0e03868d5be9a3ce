//! Sockeye in the axum world, against peers it did not write:
//! - Sockeye's axum extractor (`sockeye::axum::WebSocketUpgrade`) serving Python `websockets`
//!   and Node `ws` over HTTP/1.1, with permessage-deflate;
//! - Sockeye's client against axum 0.8's own `axum::extract::ws` (tungstenite underneath), over
//!   HTTP/1.1 and over HTTP/2 (TLS with ALPN `h2`, RFC 8441).

mod common;
#[path = "../../crates/sockeye/tests/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws;
use axum::response::Response;
use axum::routing::any;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use sockeye::tls::tokio_rustls;
use sockeye::{ClientRequest, Config, Message};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::Command;
use tokio::time::timeout;

use common::{assert_clean_close, expect_close, expect_message, python, repo};
use support::Ca;

const WAIT: Duration = Duration::from_secs(10);

/// The extractor's echo: every text and binary message back as it came.
async fn sockeye_echo(upgrade: sockeye::axum::WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(|mut socket| async move {
        while let Some(msg) = socket.recv().await {
            if let Ok(msg @ (Message::Text(_) | Message::Binary(_))) = msg {
                if socket.send(msg).await.is_err() {
                    break;
                }
            }
        }
    })
}

/// axum's own echo, for Sockeye's client to talk to.
async fn axum_echo(upgrade: ws::WebSocketUpgrade) -> Response {
    upgrade
        .protocols(["wamp"])
        .on_upgrade(|mut socket| async move {
            // tungstenite answers the close frame itself, flushed by the reads that follow.
            while let Some(Ok(msg)) = socket.recv().await {
                if matches!(msg, ws::Message::Text(_) | ws::Message::Binary(_))
                    && socket.send(msg).await.is_err()
                {
                    break;
                }
            }
            // Over HTTP/2, dropping axum's socket resets its stream without END_STREAM, and h2
            // discards what a reset stream still had queued: the close reply. Give it time to go
            // out (Sockeye's own socket shuts the stream down after the closing handshake).
            tokio::time::sleep(Duration::from_millis(200)).await;
        })
}

async fn serve(app: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test]
async fn python_client_against_sockeye_axum_extractor_over_http11() {
    let Some(py) = python() else { return };
    let addr = serve(Router::new().route("/echo", any(sockeye_echo))).await;
    common::python_client_scenarios(&py, &format!("ws://{addr}/echo"), "deflate", None, 15).await;
}

#[tokio::test]
async fn node_ws_client_against_sockeye_axum_extractor_over_http11() {
    let node_dir = repo().join("interop/node");
    if !node_dir.join("node_modules/ws/package.json").exists() {
        assert!(
            !common::interop_required(),
            "no interop/node/node_modules: run scripts/setup-node.sh"
        );
        eprintln!("skipping: run scripts/setup-node.sh");
        return;
    }
    let addr = serve(Router::new().route("/echo", any(sockeye_echo))).await;
    let output = timeout(
        Duration::from_secs(600),
        Command::new("node")
            .arg(node_dir.join("ws_client.mjs"))
            .arg(format!("ws://{addr}/echo"))
            .args(["--mode", "deflate"])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("ws client timed out")
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut checks = 0;
    for line in stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["ok"], true, "ws client check failed: {line}");
        checks += 1;
    }
    // The negotiation, 7 sizes x 3 kinds of message, the close.
    assert_eq!(checks, 2 + 7 * 3, "{stdout}");
    assert!(output.status.success(), "{stdout}");
}

/// Echo, a large binary message, then a clean close: what Sockeye's client must see from any
/// conforming server.
async fn converse<S>(ws: &mut sockeye::WebSocket<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    assert_eq!(ws.protocol(), Some("wamp"));
    ws.send("héllo").await.unwrap();
    assert_eq!(expect_message(ws).await.as_text(), Some("héllo"));
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    ws.send(big.clone()).await.unwrap();
    match expect_message(ws).await {
        Message::Binary(data) => assert_eq!(data, big),
        other => panic!("expected the binary echo, got {other:?}"),
    }
    ws.close(Some(4000), "done").await.unwrap();
    assert_clean_close(expect_close(ws).await, 4000, "done");
}

#[tokio::test]
async fn sockeye_client_against_axums_own_websocket_over_http11() {
    let addr = serve(Router::new().route("/ws", any(axum_echo))).await;
    let request = ClientRequest::new(&format!("ws://{addr}/ws"))
        .unwrap()
        .protocol("wamp");
    let mut ws = sockeye::connect_with(request, Config::default())
        .await
        .unwrap();
    converse(&mut ws).await;
}

#[tokio::test]
async fn rfc8441_sockeye_client_against_axums_own_websocket_over_http2_tls() {
    let ca = Ca::new("Sockeye axum CA");
    let leaf = ca.server(&["localhost"]);
    let acceptor = tokio_rustls::TlsAcceptor::from(leaf.server_config(&[b"h2", b"http/1.1"]));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = Router::new().route("/ws", any(axum_echo));
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            let service = TowerToHyperService::new(app.clone());
            tokio::spawn(async move {
                let tls = acceptor.accept(tcp).await.unwrap();
                let mut builder = auto::Builder::new(TokioExecutor::new());
                builder.http2().enable_connect_protocol();
                let _ = builder
                    .serve_connection_with_upgrades(TokioIo::new(tls), service)
                    .await;
            });
        }
    });

    let mut client_tls = (*ca.client_config()).clone();
    client_tls.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(client_tls))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    let request = ClientRequest::new(&format!("wss://localhost:{port}/ws"))
        .unwrap()
        .protocol("wamp");
    // axum's WebSocket has no permessage-deflate; two sockets share the connection.
    let mut first = timeout(
        WAIT,
        sockeye::hyper::connect_h2(&mut sender, &request, Config::default()),
    )
    .await
    .unwrap()
    .unwrap();
    let mut second = sockeye::hyper::connect_h2(&mut sender, &request, Config::default())
        .await
        .unwrap();
    assert_eq!(first.extensions(), "");
    converse(&mut first).await;
    converse(&mut second).await;
}
