//! `sockeye serve` as a user starts it: the real binary on an ephemeral port.

use std::process::Stdio;
use std::time::Duration;

use sockeye::proto::CloseCode;
use sockeye::{ClientRequest, Config, Message};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::time::timeout;

async fn start(extra: &[&str]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sockeye"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = timeout(Duration::from_secs(10), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let addr = line.strip_prefix("LISTENING ").unwrap().to_owned();
    (child, addr)
}

async fn next(ws: &mut sockeye::WebSocket<tokio::net::TcpStream>) -> Message {
    timeout(Duration::from_secs(10), ws.recv())
        .await
        .expect("nothing within 10 s")
        .expect("stream ended")
        .expect("error")
}

async fn http_get(addr: &str, path: &str, headers: &str) -> String {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n{headers}\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = Vec::new();
    timeout(Duration::from_secs(5), tcp.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn echo_agrees_to_the_first_offered_subprotocol_and_echoes_close() {
    let (_server, addr) = start(&[]).await;
    let request = ClientRequest::new(&format!("ws://{addr}/echo"))
        .unwrap()
        .protocol("soap")
        .protocol("wamp");
    let mut ws = sockeye::connect_with(request, Config::default())
        .await
        .unwrap();
    assert_eq!(ws.protocol(), Some("soap"));
    assert!(ws.extensions().starts_with("permessage-deflate"));
    ws.send("hi").await.unwrap();
    assert_eq!(next(&mut ws).await, Message::text("hi"));
    ws.send(vec![0u8, 1, 2]).await.unwrap();
    assert_eq!(next(&mut ws).await, Message::binary(vec![0u8, 1, 2]));
    ws.close(Some(1000), "Work complete").await.unwrap();
    match next(&mut ws).await {
        Message::Close(event) => {
            assert_eq!(event.code, CloseCode::NORMAL);
            assert_eq!(event.reason, "Work complete");
            assert!(event.was_clean);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn hello_greets_by_name_and_says_bye_five_seconds_later() {
    let (_server, addr) = start(&[]).await;
    let mut ws = sockeye::connect(&format!("ws://{addr}/hello"))
        .await
        .unwrap();
    ws.send("My name is John").await.unwrap();
    assert_eq!(
        next(&mut ws).await,
        Message::text("Hello from server, John!")
    );
    let started = tokio::time::Instant::now();
    match next(&mut ws).await {
        Message::Close(event) => {
            assert_eq!(
                (event.code, event.reason.as_str()),
                (CloseCode::NORMAL, "Bye!")
            );
            assert!(event.was_clean);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "closed too early"
    );
}

#[tokio::test]
async fn chat_relays_text_to_every_client() {
    let (_server, addr) = start(&[]).await;
    let url = format!("ws://{addr}/chat");
    let mut alice = sockeye::connect(&url).await.unwrap();
    let mut bob = sockeye::connect(&url).await.unwrap();
    // Let both subscriptions register before the first message.
    tokio::time::sleep(Duration::from_millis(200)).await;
    alice.send("alice: hi all").await.unwrap();
    assert_eq!(next(&mut bob).await, Message::text("alice: hi all"));
    assert_eq!(next(&mut alice).await, Message::text("alice: hi all"));
}

#[tokio::test]
async fn root_serves_the_demo_page_and_unknown_paths_404() {
    let (_server, addr) = start(&[]).await;
    let page = http_get(&addr, "/", "").await;
    assert!(page.starts_with("HTTP/1.1 200 OK"), "{page}");
    assert!(page.contains("text/html"));
    assert!(page.contains("new WebSocket("));
    let missing = http_get(&addr, "/nope", "").await;
    assert!(missing.starts_with("HTTP/1.1 404 "), "{missing}");
}

#[tokio::test]
async fn allow_origin_refuses_other_origins_with_403() {
    let (_server, addr) = start(&["--allow-origin", "https://good.example"]).await;
    let good = ClientRequest::new(&format!("ws://{addr}/echo"))
        .unwrap()
        .header("Origin", "https://good.example");
    assert!(sockeye::connect_with(good, Config::default()).await.is_ok());
    let bad = ClientRequest::new(&format!("ws://{addr}/echo"))
        .unwrap()
        .header("Origin", "https://evil.example");
    let err = sockeye::connect_with(bad, Config::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
}
