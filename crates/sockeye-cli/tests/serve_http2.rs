//! `sockeye serve` over HTTP/2 (RFC 8441): h2c with prior knowledge on the plain listener and
//! ALPN `h2` on the TLS one. Every endpoint on one connection, many WebSockets sharing it,
//! `/metrics` counting handshakes by HTTP version, graceful 1001 on SIGTERM, refusals that
//! leave the connection usable, and a peer that never reads.

mod common;
#[path = "../../sockeye/tests/support/mod.rs"]
mod support;

use common::start_one as start;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::ext::Protocol;
use hyper_util::rt::{TokioExecutor, TokioIo};
use sockeye::http;
use sockeye::hyper::{connect_h2, Http2Sender};
use sockeye::tls::tokio_rustls;
use sockeye::{ClientRequest, CloseCode, Config, Message};
use support::{Ca, TempDir};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

async fn http2<I>(io: I) -> Http2Sender
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
            .await
            .unwrap();
    tokio::spawn(conn);
    sender
}

async fn h2c(addr: &str) -> Http2Sender {
    http2(TcpStream::connect(addr).await.unwrap()).await
}

async fn open(
    sender: &mut Http2Sender,
    url: &str,
    protocols: &[&str],
) -> sockeye::WebSocket<sockeye::hyper::UpgradedStream> {
    let mut request = ClientRequest::new(url).unwrap();
    for p in protocols {
        request = request.protocol(*p);
    }
    timeout(WAIT, connect_h2(sender, &request, Config::default()))
        .await
        .expect("no handshake within 10 s")
        .unwrap()
}

async fn next<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut sockeye::WebSocket<S>) -> Message {
    timeout(WAIT, ws.recv())
        .await
        .expect("nothing within 10 s")
        .expect("stream ended")
        .expect("error")
}

/// A plain HTTP/2 request on the shared connection: status and body.
async fn h2_get(sender: &mut Http2Sender, addr: &str, path: &str) -> (u16, String) {
    let req = http::Request::builder()
        .uri(format!("http://{addr}{path}"))
        .version(http::Version::HTTP_2)
        .body(Empty::<Bytes>::new())
        .unwrap();
    sender.ready().await.unwrap();
    let resp = timeout(WAIT, sender.send_request(req))
        .await
        .unwrap()
        .unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn rfc8441_every_endpoint_over_one_h2c_connection() {
    let (_server, addr) = start(&["--listen", "127.0.0.1:0"]).await;
    let mut h2 = h2c(&addr).await;

    let (status, page) = h2_get(&mut h2, &addr, "/").await;
    assert_eq!(status, 200);
    assert!(page.contains("new WebSocket"), "{page}");

    let mut echo = open(&mut h2, &format!("ws://{addr}/echo"), &["soap", "wamp"]).await;
    assert_eq!(echo.protocol(), Some("soap"));
    assert!(echo.extensions().starts_with("permessage-deflate"));
    echo.send("over h2").await.unwrap();
    assert_eq!(next(&mut echo).await, Message::text("over h2"));

    let mut hello = open(&mut h2, &format!("ws://{addr}/hello"), &[]).await;
    hello.send("My name is John").await.unwrap();
    assert_eq!(
        next(&mut hello).await,
        Message::text("Hello from server, John!")
    );

    let mut alice = open(&mut h2, &format!("ws://{addr}/chat"), &[]).await;
    let mut bob = open(&mut h2, &format!("ws://{addr}/chat"), &[]).await;
    alice.send("hi bob").await.unwrap();
    assert_eq!(next(&mut bob).await, Message::text("hi bob"));
    assert_eq!(next(&mut alice).await, Message::text("hi bob"));

    let mut wamp = open(&mut h2, &format!("ws://{addr}/wamp"), &["wamp.2.json"]).await;
    assert_eq!(wamp.protocol(), Some("wamp.2.json"));
    wamp.send(r#"[1,"realm1",{"roles":{"subscriber":{}}}]"#)
        .await
        .unwrap();
    let welcome = next(&mut wamp).await;
    assert!(
        welcome.as_text().is_some_and(|t| t.starts_with("[2,")),
        "expected WELCOME, got {welcome:?}"
    );

    let (status, metrics) = h2_get(&mut h2, &addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("sockeye_handshakes_accepted_total{http_version=\"2\"} 5\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sockeye_handshakes_accepted_total{http_version=\"1.1\"} 0\n"),
        "{metrics}"
    );

    echo.close(Some(4000), "done").await.unwrap();
    match next(&mut echo).await {
        Message::Close(event) => {
            assert_eq!(
                (event.code, event.reason.as_str()),
                (CloseCode(4000), "done")
            );
            assert!(event.was_clean);
        }
        other => panic!("expected the close event, got {other:?}"),
    }
    hello.send("My name is Ann").await.unwrap();
    assert_eq!(
        next(&mut hello).await,
        Message::text("Hello from server, Ann!")
    );
}

#[tokio::test]
async fn rfc8441_tls_listener_picks_h2_by_alpn_and_http11_still_works() {
    let ca = Ca::new("Sockeye h2 CA");
    let dir = TempDir::new("serve-h2");
    let (cert, key) = ca.server(&["localhost"]).write(&dir, "server");
    let (_server, addr) = start(&[
        "--listen-tls",
        "127.0.0.1:0",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ])
    .await;
    let port = addr.rsplit(':').next().unwrap();
    let mut tls = (*ca.client_config()).clone();
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let tcp = TcpStream::connect(&addr).await.unwrap();
    let stream = tokio_rustls::TlsConnector::from(Arc::new(tls))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let mut h2 = http2(stream).await;
    let mut ws = open(&mut h2, &format!("wss://localhost:{port}/echo"), &[]).await;
    ws.send(vec![1u8, 2, 3]).await.unwrap();
    assert_eq!(next(&mut ws).await, Message::binary(vec![1u8, 2, 3]));

    // A client that offers only http/1.1 gets the classic upgrade.
    let request = ClientRequest::new(&format!("wss://localhost:{port}/echo"))
        .unwrap()
        .tls(ca.client_config())
        .no_proxy();
    let mut classic = sockeye::connect_with(request, Config::default())
        .await
        .unwrap();
    assert_eq!(classic.get_ref().alpn_protocol(), Some(&b"http/1.1"[..]));
    classic.send("h1").await.unwrap();
    assert_eq!(next(&mut classic).await, Message::text("h1"));
}

#[tokio::test]
async fn sigterm_closes_every_http2_websocket_with_1001() {
    let (server, addr) = start(&["--listen", "127.0.0.1:0"]).await;
    let mut h2 = h2c(&addr).await;
    let mut sockets = Vec::new();
    for path in ["/echo", "/chat", "/hello"] {
        sockets.push(open(&mut h2, &format!("ws://{addr}{path}"), &[]).await);
    }
    let status = std::process::Command::new("kill")
        .args(["-TERM", &server.id().unwrap().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    for ws in &mut sockets {
        match next(ws).await {
            Message::Close(event) => {
                assert_eq!(event.code, CloseCode::GOING_AWAY);
                assert_eq!(event.reason, "Going Away");
            }
            other => panic!("expected 1001, got {other:?}"),
        }
    }
    let mut server = server;
    let exit = timeout(Duration::from_secs(15), server.wait())
        .await
        .expect("server did not exit")
        .unwrap();
    assert!(exit.success(), "{exit:?}");
}

/// A CONNECT to `/echo` with `protocol` as `:protocol`.
async fn connect_status(sender: &mut Http2Sender, addr: &str, protocol: &'static str) -> u16 {
    let mut req = http::Request::builder()
        .method(http::Method::CONNECT)
        .version(http::Version::HTTP_2)
        .uri(format!("http://{addr}/echo"))
        .header("sec-websocket-version", "13")
        .body(Empty::<Bytes>::new())
        .unwrap();
    req.extensions_mut().insert(Protocol::from_static(protocol));
    sender.ready().await.unwrap();
    let resp = timeout(WAIT, sender.send_request(req))
        .await
        .unwrap()
        .unwrap();
    resp.status().as_u16()
}

#[tokio::test]
async fn rfc8441_4_bad_requests_are_refused_and_the_connection_goes_on() {
    let (_server, addr) = start(&["--listen", "127.0.0.1:0"]).await;
    let mut h2 = h2c(&addr).await;
    let mut ws = open(&mut h2, &format!("ws://{addr}/echo"), &[]).await;
    assert_eq!(connect_status(&mut h2, &addr, "connect-udp").await, 400);
    let (status, _) = h2_get(&mut h2, &addr, "/echo").await;
    assert_eq!(status, 400, "a GET to a WebSocket endpoint over HTTP/2");
    let (status, _) = h2_get(&mut h2, &addr, "/nowhere").await;
    assert_eq!(status, 404);
    ws.send("still open").await.unwrap();
    assert_eq!(next(&mut ws).await, Message::text("still open"));
}

#[tokio::test]
async fn rfc8441_a_stream_reset_mid_message_is_1006_for_its_socket_only() {
    let (_server, addr) = start(&["--listen", "127.0.0.1:0"]).await;
    let mut h2 = h2c(&addr).await;
    let mut doomed = open(&mut h2, &format!("ws://{addr}/chat"), &[]).await;
    let mut other = open(&mut h2, &format!("ws://{addr}/chat"), &[]).await;
    doomed.send("before the reset").await.unwrap();
    assert_eq!(next(&mut other).await, Message::text("before the reset"));
    // Half a message, then the stream is reset (dropping the socket sends RST_STREAM).
    doomed
        .send_fragment(Some(sockeye::DataKind::Text), b"half a mess", false)
        .await
        .unwrap();
    drop(doomed);
    other.send("after the reset").await.unwrap();
    assert_eq!(next(&mut other).await, Message::text("after the reset"));
    let (_, metrics) = h2_get(&mut h2, &addr, "/metrics").await;
    let mut text = metrics;
    for _ in 0..50 {
        if text.contains("sockeye_connections_open 1\n") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        text = h2_get(&mut h2, &addr, "/metrics").await.1;
    }
    assert!(
        text.contains("sockeye_connections_open 1\n"),
        "the reset socket is still counted open:\n{text}"
    );
    assert!(
        text.contains("sockeye_closes_total{code=\"1006\"} 1\n"),
        "the reset was not an abrupt close (1006):\n{text}"
    );
}

/// A masked client frame (RFC 6455 §5.3) with a fixed key.
fn client_text_frame(text: &str) -> Bytes {
    let key = [0x12, 0x34, 0x56, 0x78];
    let mut frame = vec![0x81, 0x80 | text.len() as u8];
    frame.extend_from_slice(&key);
    frame.extend(text.bytes().enumerate().map(|(i, b)| b ^ key[i % 4]));
    Bytes::from(frame)
}

/// A raw HTTP/2 client (the h2 crate) on a new h2c connection, once the server's SETTINGS
/// (with extended CONNECT) have arrived.
async fn raw_h2(addr: &str) -> h2::client::SendRequest<Bytes> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (client, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(conn);
    let mut client = client.ready().await.unwrap();
    for _ in 0..100 {
        if client.is_extended_connect_protocol_enabled() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        client = client.ready().await.unwrap();
    }
    assert!(client.is_extended_connect_protocol_enabled());
    client
}

#[tokio::test]
async fn rfc8441_data_sent_before_the_200_is_the_first_websocket_data() {
    let (_server, addr) = start(&["--listen", "127.0.0.1:0", "--no-compression"]).await;
    let mut client = raw_h2(&addr).await;
    let mut req = http::Request::builder()
        .method(http::Method::CONNECT)
        .uri(format!("http://{addr}/echo"))
        .header("sec-websocket-version", "13")
        .body(())
        .unwrap();
    req.extensions_mut()
        .insert(h2::ext::Protocol::from_static("websocket"));
    let (response, mut stream) = client.send_request(req, false).unwrap();
    stream.send_data(client_text_frame("early"), false).unwrap();
    let response = timeout(WAIT, response).await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let data = timeout(WAIT, body.data())
        .await
        .unwrap()
        .expect("stream ended")
        .unwrap();
    assert_eq!(&data[..], b"\x81\x05early", "the echo of the early frame");
}

#[tokio::test]
async fn rfc8441_a_classic_connect_is_refused_and_the_connection_goes_on() {
    let (_server, addr) = start(&["--listen", "127.0.0.1:0"]).await;
    let mut client = raw_h2(&addr).await;
    let req = http::Request::builder()
        .method(http::Method::CONNECT)
        .uri(addr.as_str())
        .body(())
        .unwrap();
    let (response, _stream) = client.send_request(req, false).unwrap();
    let response = timeout(WAIT, response).await.unwrap().unwrap();
    assert!(
        response.status().is_client_error(),
        "a CONNECT without :protocol got {}",
        response.status()
    );
    let get = http::Request::builder()
        .uri(format!("http://{addr}/"))
        .body(())
        .unwrap();
    let (response, _) = client.send_request(get, true).unwrap();
    assert_eq!(
        timeout(WAIT, response).await.unwrap().unwrap().status(),
        200
    );
}

#[tokio::test]
async fn a_peer_that_never_reads_is_held_back_by_flow_control() {
    let (_server, addr) = start(&["--listen", "127.0.0.1:0", "--no-compression"]).await;
    let mut h2 = h2c(&addr).await;
    let mut ws = open(&mut h2, &format!("ws://{addr}/echo"), &[]).await;
    // Echoes pile up unread on our side; the server must stop reading rather than buffer them,
    // so our sends stall well before 64 MiB.
    let chunk = vec![0u8; 1 << 20];
    let mut sent = 0usize;
    while sent < 64 << 20 {
        match timeout(Duration::from_secs(2), ws.send(chunk.clone())).await {
            Ok(result) => result.unwrap(),
            Err(_) => break,
        }
        sent += chunk.len();
    }
    assert!(
        sent < 64 << 20,
        "sent {sent} bytes to a server whose echoes were never read"
    );
    // The stalled stream holds only its own window: another socket on the same connection
    // opens and echoes while it is still stuck.
    let mut fresh = open(&mut h2, &format!("ws://{addr}/echo"), &[]).await;
    fresh.send("beside the stalled one").await.unwrap();
    assert_eq!(
        next(&mut fresh).await,
        Message::text("beside the stalled one")
    );
    assert!(
        timeout(Duration::from_secs(1), ws.send(chunk))
            .await
            .is_err(),
        "the stalled socket is flowing again"
    );
}
