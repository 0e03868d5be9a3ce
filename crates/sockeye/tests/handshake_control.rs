//! Handshake control in both roles: a server that authenticates on the handshake and answers
//! with a `Set-Cookie`, or refuses with a status, headers and a body; a client that starts
//! from an `http::Request` and sees the answer either way.

use std::net::SocketAddr;

use sockeye::http::{self, header, HeaderValue, Response, StatusCode};
use sockeye::{ClientRequest, Config, Message};
use tokio::net::TcpListener;

/// Accepts requests carrying `Authorization: Bearer open-sesame` with a session cookie and
/// the first offered subprotocol; refuses the rest with 401, a challenge and a body.
async fn start_guarded_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(sockeye::serve(
        listener,
        Config::default(),
        |mut upgrade, _| async move {
            if upgrade.header("authorization") != Some("Bearer open-sesame") {
                let mut resp = Response::new(());
                *resp.status_mut() = StatusCode::UNAUTHORIZED;
                resp.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                let _ = upgrade.respond(resp, b"who are you?\n").await;
                return;
            }
            let headers = upgrade.response_headers_mut();
            headers.insert(header::SET_COOKIE, HeaderValue::from_static("session=42"));
            // Not the server's to set: the handshake's own header stays Sockeye's.
            headers.insert("sec-websocket-protocol", HeaderValue::from_static("evil"));
            let protocol = upgrade.offered_protocols().into_iter().next();
            let Ok(mut ws) = upgrade.accept(protocol).await else {
                return;
            };
            while let Some(Ok(msg)) = ws.recv().await {
                if let msg @ (Message::Text(_) | Message::Binary(_)) = msg {
                    let _ = ws.send(msg).await;
                }
            }
        },
    ));
    addr
}

#[tokio::test]
async fn rfc6455_4_2_2_server_adds_headers_to_the_101_and_the_client_sees_them() {
    let addr = start_guarded_server().await;
    let request = http::Request::builder()
        .uri(format!("ws://{addr}/private"))
        .header("authorization", "Bearer open-sesame")
        .header("sec-websocket-protocol", "wamp, soap")
        .body(())
        .unwrap();
    let request = ClientRequest::from_request(&request).unwrap();
    let mut ws = sockeye::connect_with(request, Config::default())
        .await
        .unwrap();
    assert_eq!(ws.protocol(), Some("wamp"));
    let response = ws.response().expect("a client keeps the server's answer");
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(response.headers()[header::SET_COOKIE], "session=42");
    assert_eq!(response.headers()["sec-websocket-protocol"], "wamp");
    ws.send("in").await.unwrap();
    assert_eq!(ws.recv().await.unwrap().unwrap(), Message::text("in"));
}

#[tokio::test]
async fn a_refusal_reaches_the_client_with_status_headers_and_body() {
    let addr = start_guarded_server().await;
    let request = ClientRequest::new(&format!("ws://{addr}/private"))
        .unwrap()
        .header("Authorization", "Bearer wrong");
    match sockeye::connect_with(request, Config::default()).await {
        Err(sockeye::Error::Rejected(resp)) => {
            assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
            assert_eq!(resp.headers()[header::WWW_AUTHENTICATE], "Bearer");
            assert_eq!(&resp.body()[..], b"who are you?\n");
        }
        other => panic!("expected the 401, got {other:?}"),
    }
}

#[tokio::test]
async fn from_request_refuses_what_is_not_a_websocket_url_or_a_visible_header() {
    let https = http::Request::builder()
        .uri("https://example.com/")
        .body(())
        .unwrap();
    assert!(matches!(
        ClientRequest::from_request(&https),
        Err(sockeye::Error::Url(_))
    ));
    let mut binary = http::Request::builder()
        .uri("ws://example.com/")
        .body(())
        .unwrap();
    binary
        .headers_mut()
        .insert("x-raw", HeaderValue::from_bytes(b"\xff\xfe").unwrap());
    assert!(matches!(
        ClientRequest::from_request(&binary),
        Err(sockeye::Error::InvalidHeader(_))
    ));
}
