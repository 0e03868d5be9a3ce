//! Sockeye inside axum: the `sockeye::axum::WebSocketUpgrade` extractor behind `axum::serve`,
//! reached over HTTP/1.1 by Sockeye's client and over HTTP/2 (RFC 8441, h2c with prior
//! knowledge) by Sockeye's `connect_h2` on hyper's HTTP/2 client. Bad extended CONNECTs are sent
//! with hyper's client directly.

use std::net::SocketAddr;
use std::time::Duration;

use axum::response::Response;
use axum::routing::any;
use axum::Router;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::ext::Protocol;
use hyper_util::rt::{TokioExecutor, TokioIo};
use sockeye::axum::WebSocketUpgrade;
use sockeye::hyper::{connect_h2, Http2Sender};
use sockeye::{ClientRequest, Config, Message, ReadyState};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

/// Greets with what the server saw (`HTTP/2.0 wamp permessage-deflate…`), then echoes.
async fn echo(ws: WebSocketUpgrade) -> Response {
    let version = ws.http_version();
    ws.protocols(["wamp", "soap"])
        .config(Config::default().max_message_size(1 << 20))
        .on_upgrade(move |mut socket| async move {
            let hello = format!(
                "{version:?} {} {}",
                socket.protocol().unwrap_or("-"),
                socket.extensions()
            );
            if socket.send(hello).await.is_err() {
                return;
            }
            while let Some(Ok(msg)) = socket.recv().await {
                if matches!(msg, Message::Close(_)) || socket.send(msg).await.is_err() {
                    break;
                }
            }
        })
}

/// Authenticates on the handshake: a 401 with a body without the token, else the socket with a
/// cookie on the 200.
async fn private(headers: http::HeaderMap, ws: WebSocketUpgrade) -> Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer open-sesame") {
        let mut resp = Response::new(axum::body::Body::from("who are you?\n"));
        *resp.status_mut() = http::StatusCode::UNAUTHORIZED;
        return resp;
    }
    let mut resp = ws.on_upgrade(|mut socket| async move {
        let _ = socket.send("welcome").await;
        while let Some(Ok(_)) = socket.recv().await {}
    });
    resp.headers_mut().insert(
        http::header::SET_COOKIE,
        http::HeaderValue::from_static("session=42"),
    );
    resp
}

async fn start_app() -> SocketAddr {
    let app = Router::new()
        .route("/echo", any(echo))
        .route("/private", any(private));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

async fn h2c(addr: SocketAddr) -> Http2Sender {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    sender
}

async fn next_text<S>(ws: &mut sockeye::WebSocket<S>) -> String
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    match timeout(WAIT, ws.recv()).await.expect("no message in time") {
        Some(Ok(Message::Text(text))) => text.to_string(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

#[tokio::test]
async fn axum_extractor_upgrades_http11_with_subprotocol_and_deflate() {
    let addr = start_app().await;
    let request = ClientRequest::new(&format!("ws://{addr}/echo"))
        .unwrap()
        .protocol("soap")
        .protocol("wamp");
    let mut ws = sockeye::connect_with(request, Config::default())
        .await
        .unwrap();
    assert_eq!(ws.protocol(), Some("wamp"), "the server's preference wins");
    assert!(ws.extensions().starts_with("permessage-deflate"));
    let hello = next_text(&mut ws).await;
    assert!(
        hello.starts_with("HTTP/1.1 wamp permessage-deflate"),
        "{hello}"
    );
    ws.send("hello").await.unwrap();
    assert_eq!(next_text(&mut ws).await, "hello");
    let big = vec![7u8; 300_000];
    ws.send(big.clone()).await.unwrap();
    match timeout(WAIT, ws.recv()).await.unwrap() {
        Some(Ok(Message::Binary(data))) => assert_eq!(data, big),
        other => panic!("expected the binary echo, got {other:?}"),
    }
    ws.close(Some(1000), "done").await.unwrap();
    match timeout(WAIT, ws.recv()).await.unwrap() {
        Some(Ok(Message::Close(event))) => {
            assert_eq!(event.code.0, 1000);
            assert!(event.was_clean);
        }
        other => panic!("expected the close event, got {other:?}"),
    }
}

/// Sends a raw HTTP/1.1 request and returns the status line.
async fn raw_status(addr: SocketAddr, request: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 1024];
    let n = timeout(WAIT, tcp.read(&mut buf)).await.unwrap().unwrap();
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn rfc6455_4_2_1_axum_extractor_answers_bad_handshakes_like_the_native_server() {
    let addr = start_app().await;
    let plain = format!("GET /echo HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    assert!(raw_status(addr, &plain).await.starts_with("HTTP/1.1 400"));
    let wrong_version = format!(
        "GET /echo HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n"
    );
    assert!(raw_status(addr, &wrong_version)
        .await
        .starts_with("HTTP/1.1 426"));
}

#[tokio::test]
async fn rfc8441_5_websockets_share_one_http2_connection() {
    let addr = start_app().await;
    let mut sender = h2c(addr).await;
    let request = ClientRequest::new(&format!("ws://{addr}/echo?room=1"))
        .unwrap()
        .protocol("soap");
    let mut first = connect_h2(&mut sender, &request, Config::default())
        .await
        .unwrap();
    let mut second = connect_h2(&mut sender, &request, Config::default())
        .await
        .unwrap();
    for ws in [&mut first, &mut second] {
        assert_eq!(ws.protocol(), Some("soap"));
        let hello = next_text(ws).await;
        assert!(
            hello.starts_with("HTTP/2.0 soap permessage-deflate"),
            "{hello}"
        );
    }
    first.send("one").await.unwrap();
    second.send("two").await.unwrap();
    assert_eq!(next_text(&mut second).await, "two");
    assert_eq!(next_text(&mut first).await, "one");
    // A message larger than HTTP/2's initial 64 KiB window: flow control, not buffering.
    let big = vec![3u8; 1 << 20];
    first.send(big.clone()).await.unwrap();
    match timeout(WAIT, first.recv()).await.unwrap() {
        Some(Ok(Message::Binary(data))) => assert_eq!(data.len(), big.len()),
        other => panic!("expected the binary echo, got {other:?}"),
    }
    first.close(Some(1000), "bye").await.unwrap();
    match timeout(WAIT, first.recv()).await.unwrap() {
        Some(Ok(Message::Close(event))) => {
            assert_eq!((event.code.0, event.was_clean), (1000, true))
        }
        other => panic!("expected the close event, got {other:?}"),
    }
    assert_eq!(first.ready_state(), ReadyState::Closed);
    second.send("still here").await.unwrap();
    assert_eq!(next_text(&mut second).await, "still here");
}

#[tokio::test]
async fn rfc8441_a_reset_stream_is_abrupt_for_its_socket_only() {
    let addr = start_app().await;
    let mut sender = h2c(addr).await;
    let request = ClientRequest::new(&format!("ws://{addr}/echo")).unwrap();
    let mut doomed = connect_h2(&mut sender, &request, Config::default())
        .await
        .unwrap();
    let mut other = connect_h2(&mut sender, &request, Config::default())
        .await
        .unwrap();
    next_text(&mut doomed).await;
    next_text(&mut other).await;
    // Dropping the socket mid-conversation resets its stream; the server's side sees it end
    // without a close frame, and the connection's other stream goes on.
    doomed.send("unanswered").await.unwrap();
    drop(doomed);
    other.send("after the reset").await.unwrap();
    assert_eq!(next_text(&mut other).await, "after the reset");
}

/// An HTTP/2 request to `/echo` with `protocol` as `:protocol` (none: a classic CONNECT).
async fn h2_connect_status(
    sender: &mut Http2Sender,
    addr: SocketAddr,
    protocol: Option<&'static str>,
) -> u16 {
    let mut req = http::Request::builder()
        .method(http::Method::CONNECT)
        .version(http::Version::HTTP_2)
        .uri(format!("http://{addr}/echo"))
        .header("sec-websocket-version", "13")
        .body(Empty::<Bytes>::new())
        .unwrap();
    if let Some(p) = protocol {
        req.extensions_mut().insert(Protocol::from_static(p));
    }
    sender.ready().await.unwrap();
    match timeout(WAIT, sender.send_request(req)).await.unwrap() {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let _ = resp.into_body().collect().await;
            status
        }
        // hyper refuses to send a CONNECT without :protocol to a path; either way no socket.
        Err(e) => panic!("request failed: {e}"),
    }
}

#[tokio::test]
async fn rfc8441_4_connect_with_a_wrong_protocol_gets_400_and_the_connection_lives() {
    let addr = start_app().await;
    let mut sender = h2c(addr).await;
    assert_eq!(
        h2_connect_status(&mut sender, addr, Some("connect-udp")).await,
        400
    );
    let request = ClientRequest::new(&format!("ws://{addr}/echo")).unwrap();
    let mut ws = connect_h2(&mut sender, &request, Config::default())
        .await
        .unwrap();
    assert!(next_text(&mut ws).await.starts_with("HTTP/2.0"));
}

#[tokio::test]
async fn request_headers_with_cr_or_lf_are_refused_before_sending() {
    let addr = start_app().await;
    for (name, value) in [
        ("X-Token", "a\r\nX-Injected: yes"),
        ("X-Token", "a\nb"),
        ("Bad Name", "v"),
    ] {
        let request = ClientRequest::new(&format!("ws://{addr}/echo"))
            .unwrap()
            .header(name, value);
        let err = sockeye::connect_with(request.clone(), Config::default())
            .await
            .unwrap_err();
        assert!(
            matches!(err, sockeye::Error::InvalidHeader(_)),
            "{name}: {value:?} gave {err}"
        );
        let mut sender = h2c(addr).await;
        let err = connect_h2(&mut sender, &request, Config::default())
            .await
            .unwrap_err();
        assert!(matches!(err, sockeye::Error::InvalidHeader(_)), "{err}");
    }
}

#[tokio::test]
async fn rfc8441_handshake_control_over_http2_cookie_on_the_200_and_a_401_with_its_body() {
    let addr = start_app().await;
    let mut sender = h2c(addr).await;
    let url = format!("ws://{addr}/private");
    let refused = ClientRequest::new(&url).unwrap();
    match connect_h2(&mut sender, &refused, Config::default()).await {
        Err(sockeye::Error::Rejected(resp)) => {
            assert_eq!(resp.status(), 401);
            assert_eq!(&resp.body()[..], b"who are you?\n");
        }
        other => panic!("expected the 401, got {other:?}"),
    }
    let allowed = ClientRequest::new(&url)
        .unwrap()
        .header("Authorization", "Bearer open-sesame");
    let mut ws = connect_h2(&mut sender, &allowed, Config::default())
        .await
        .unwrap();
    let response = ws.response().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()[http::header::SET_COOKIE], "session=42");
    assert_eq!(next_text(&mut ws).await, "welcome");
}

/// The echo app over TLS with ALPN `h2` and `http/1.1`; `extended_connect` says whether the
/// HTTP/2 side advertises RFC 8441.
async fn start_tls_app(ca: &support::Ca, extended_connect: bool) -> u16 {
    use hyper_util::server::conn::auto;
    use hyper_util::service::TowerToHyperService;
    use sockeye::tls::tokio_rustls;

    let leaf = ca.server(&["localhost"]);
    let acceptor = tokio_rustls::TlsAcceptor::from(leaf.server_config(&[b"h2", b"http/1.1"]));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = Router::new().route("/echo", any(echo));
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            let service = TowerToHyperService::new(app.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut builder = auto::Builder::new(TokioExecutor::new());
                if extended_connect {
                    builder.http2().enable_connect_protocol();
                }
                let _ = builder
                    .serve_connection_with_upgrades(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    port
}

#[path = "support/mod.rs"]
mod support;

#[tokio::test]
async fn rfc8441_connect_prefers_http2_and_falls_back_to_http11() {
    let ca = support::Ca::new("Sockeye ALPN CA");
    for (extended_connect, want_h2) in [(true, true), (false, false)] {
        let port = start_tls_app(&ca, extended_connect).await;
        let request = ClientRequest::new(&format!("wss://localhost:{port}/echo"))
            .unwrap()
            .tls(ca.client_config())
            .no_proxy();
        let mut ws = sockeye::hyper::connect(request, Config::default())
            .await
            .unwrap();
        let over_h2 = matches!(ws.get_ref(), sockeye::MaybeTlsStream::Http2(_));
        assert_eq!(
            over_h2, want_h2,
            "extended CONNECT offered: {extended_connect}"
        );
        if !want_h2 {
            assert_eq!(ws.get_ref().alpn_protocol(), Some(&b"http/1.1"[..]));
        }
        let hello = next_text(&mut ws).await;
        let version = if want_h2 { "HTTP/2.0" } else { "HTTP/1.1" };
        assert!(hello.starts_with(version), "{hello}");
        ws.send("either way").await.unwrap();
        assert_eq!(next_text(&mut ws).await, "either way");
    }
}

#[tokio::test]
async fn an_http2_connection_that_answers_no_ping_is_dropped() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = Config::default().ping_interval(Some(Duration::from_millis(300)));
    config.ping_timeout = Duration::from_millis(300);
    tokio::spawn(sockeye::hyper::serve(
        listener,
        None,
        config,
        |upgrade: sockeye::Upgrade<sockeye::MaybeTlsStream>, _| async move {
            let _ = upgrade.accept(None).await;
        },
    ));
    // h2c with prior knowledge, then silence: no SETTINGS acknowledgement, no PING answer and
    // no stream, which no WebSocket's own keepalive could see.
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(sockeye::hyper::HTTP2_PREFACE).await.unwrap();
    tcp.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await.unwrap();
    let mut received = Vec::new();
    let ended = timeout(Duration::from_secs(10), async {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = tcp.read(&mut buf).await {
            received.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    assert!(ended.is_ok(), "the server kept a peer that answers no PING");
    // RFC 9113 §6.7: a PING (type 6) without the ACK flag is what the server sent.
    let mut frames = &received[..];
    let mut pings = 0;
    while frames.len() >= 9 {
        let len =
            usize::from(frames[0]) << 16 | usize::from(frames[1]) << 8 | usize::from(frames[2]);
        if frames[3] == 6 && frames[4] & 1 == 0 {
            pings += 1;
        }
        frames = &frames[(9 + len).min(frames.len())..];
    }
    assert!(
        pings >= 1,
        "the connection ended without a PING: {received:?}"
    );
}
