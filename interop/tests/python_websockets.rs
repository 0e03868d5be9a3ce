//! Sockeye against Python `websockets` (an independent implementation), both directions:
//! text, binary, 4 MiB messages, fragments, ping, close code and reason, and 1006 when the
//! peer process is killed — with and without permessage-deflate.
//!
//! The peer runs from the venv that `scripts/setup-python.sh` makes. Without it these tests say
//! so and pass vacuously, unless `SOCKEYE_REQUIRE_INTEROP=1` (set by `scripts/test.sh`, which
//! CI runs), when a missing peer is a failure.

mod common;

use common::{
    assert_clean_close, expect_close, expect_message, python, python_script, python_server_paths,
    spawn_listening_peer, spawn_peer,
};

use std::path::Path;
use std::time::Duration;

use sockeye::proto::CloseCode;
use sockeye::{ClientRequest, CompressionPolicy, Config, DataKind, Message};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::time::timeout;

async fn echo_server(config: Config) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(sockeye::serve(listener, config, common::echo));
    format!("ws://{addr}/")
}

async fn python_client_scenarios(compression: &str, config: Config) {
    let Some(py) = python() else { return };
    let url = echo_server(config).await;
    common::python_client_scenarios(&py, &url, compression, None, 15).await;
}

#[tokio::test]
async fn python_client_against_sockeye_server() {
    python_client_scenarios("none", Config::default().without_compression()).await;
}

#[tokio::test]
async fn python_client_against_sockeye_server_with_permessage_deflate() {
    python_client_scenarios("deflate", Config::default()).await;
}

#[tokio::test]
async fn python_client_against_sockeye_server_with_the_fast_and_max_compression_policies() {
    for policy in [CompressionPolicy::Fast, CompressionPolicy::Max] {
        python_client_scenarios("deflate", Config::default().compression(policy)).await;
    }
}

#[tokio::test]
async fn python_client_against_sockeye_server_with_permessage_deflate_without_context_takeover() {
    let mut config = Config::default();
    let deflate = config.deflate.as_mut().unwrap();
    deflate.server_no_context_takeover = true;
    deflate.client_no_context_takeover = true;
    python_client_scenarios("deflate", config).await;
}

async fn start_python_server(py: &Path, compression: &str) -> (Child, String) {
    let (child, port) =
        spawn_listening_peer(Command::new(py).arg(python_script("echo_server.py")).args([
            "--port",
            "0",
            "--compression",
            compression,
        ]))
        .await;
    (child, format!("ws://127.0.0.1:{port}"))
}

async fn client_scenarios_against_python_server(compression: &str) {
    let Some(py) = python() else { return };
    let (_server, base) = start_python_server(&py, compression).await;
    let config = if compression == "deflate" {
        Config::default()
    } else {
        Config::default().without_compression()
    };
    let connect = |path: &str| {
        let config = config.clone();
        let url = format!("{base}{path}");
        async move {
            sockeye::connect_with(ClientRequest::new(&url).unwrap(), config)
                .await
                .unwrap()
        }
    };

    let mut ws = connect("/").await;
    assert_eq!(
        ws.extensions().starts_with("permessage-deflate"),
        compression == "deflate"
    );
    ws.send("héllo 🌍").await.unwrap();
    assert_eq!(expect_message(&mut ws).await, Message::text("héllo 🌍"));
    let bytes: Vec<u8> = (0..=255).collect();
    ws.send(bytes.clone()).await.unwrap();
    assert_eq!(expect_message(&mut ws).await, Message::binary(bytes));
    let big_text = "0123456789abcdeé".repeat(4 << 16);
    ws.send(big_text.as_str()).await.unwrap();
    assert_eq!(
        expect_message(&mut ws).await.as_text(),
        Some(big_text.as_str())
    );
    let big_binary: Vec<u8> = (0..4 << 20)
        .map(|i: u32| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    ws.send(big_binary.clone()).await.unwrap();
    assert_eq!(expect_message(&mut ws).await, Message::binary(big_binary));
    // A code point split across fragments.
    ws.send_fragment(
        Some(DataKind::Text),
        "frag-\u{e9}".as_bytes()[..6].as_ref(),
        false,
    )
    .await
    .unwrap();
    ws.send_fragment(None, &"\u{e9}".as_bytes()[1..], false)
        .await
        .unwrap();
    ws.send_fragment(None, b"-ed", true).await.unwrap();
    assert_eq!(expect_message(&mut ws).await, Message::text("frag-é-ed"));
    ws.send_fragment(Some(DataKind::Binary), &[1, 2], false)
        .await
        .unwrap();
    ws.ping(b"between fragments").await.unwrap();
    ws.send_fragment(None, &[3], true).await.unwrap();
    assert_eq!(
        expect_message(&mut ws).await,
        Message::binary(vec![1, 2, 3])
    );
    ws.close(Some(4000), "done here").await.unwrap();
    assert_clean_close(expect_close(&mut ws).await, 4000, "done here");

    // "/fragmented-exact" ends with websockets' empty final continuation.
    python_server_paths(connect, &["/fragmented", "/fragmented-exact"]).await;
}

#[tokio::test]
async fn sockeye_client_against_python_server() {
    client_scenarios_against_python_server("none").await;
}

#[tokio::test]
async fn sockeye_client_against_python_server_with_permessage_deflate() {
    client_scenarios_against_python_server("deflate").await;
}

#[tokio::test]
async fn sockeye_server_reports_1006_when_the_python_client_is_killed() {
    let Some(py) = python() else { return };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = sockeye::accept(tcp).await.unwrap();
        expect_close(&mut ws).await
    });
    let url = format!("ws://{addr}/");
    let (mut child, line) = spawn_peer(
        Command::new(&py)
            .arg(python_script("hold_client.py"))
            .arg(&url),
    )
    .await;
    assert_eq!(line, "CONNECTED");
    child.kill().await.unwrap();
    let close = timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(close.code, CloseCode::ABNORMAL);
    assert!(!close.was_clean);
}

#[tokio::test]
async fn sockeye_client_reports_1006_when_the_python_server_is_killed() {
    let Some(py) = python() else { return };
    let (mut server, base) = start_python_server(&py, "none").await;
    let mut ws = sockeye::connect(&format!("{base}/")).await.unwrap();
    ws.send("still there?").await.unwrap();
    assert_eq!(expect_message(&mut ws).await, Message::text("still there?"));
    server.kill().await.unwrap();
    let close = expect_close(&mut ws).await;
    assert_eq!(close.code, CloseCode::ABNORMAL);
    assert!(!close.was_clean);
}
