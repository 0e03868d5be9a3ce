//! Sockeye against Python `websockets` over TLS (`wss://`), both directions, with a CA made at
//! run time: Python's client (its default `ssl` context, trusting the test CA through
//! `SSL_CERT_FILE`) runs every scenario of `client_scenarios.py` against our TLS server; our
//! client runs text, binary, 4 MiB, ping, fragments and close against `tls_echo_server.py`,
//! with and without permessage-deflate, and presents a client certificate when the Python
//! server asks for one.
//!
//! Like python_websockets.rs: without the venv these tests skip, unless
//! `SOCKEYE_REQUIRE_INTEROP=1` (scripts/test.sh), when a missing peer is a failure.

#[path = "../../crates/sockeye/tests/support/mod.rs"]
mod support;

mod common;

use common::{
    assert_clean_close, expect_close, expect_message, python, python_script, python_server_paths,
    spawn_listening_peer,
};

use std::path::{Path, PathBuf};
use std::time::Duration;

use sockeye::tls::{CertResolver, CertSet};
use sockeye::{ClientRequest, ClientTls, Config, Message};
use support::{Ca, TempDir};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::time::timeout;

/// A CA, a server certificate for localhost and 127.0.0.1, and their files.
struct Pki {
    ca: Ca,
    leaf: support::Leaf,
    dir: TempDir,
    ca_file: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn pki() -> Pki {
    let ca = Ca::new("Sockeye interop CA");
    let leaf = ca.server(&["localhost", "127.0.0.1"]);
    let dir = TempDir::new("py-tls");
    let (cert, key) = leaf.write(&dir, "server");
    let ca_file = dir.write("ca.pem", &ca.cert_pem);
    Pki {
        ca,
        leaf,
        dir,
        ca_file,
        cert,
        key,
    }
}

async fn our_tls_echo_server(pki: &Pki, config: Config) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let tls = sockeye::tls::server_config(CertResolver::new(
        CertSet::new().with_default(pki.leaf.certified_key()),
    ))
    .unwrap();
    tokio::spawn(sockeye::serve_tls(listener, tls, config, common::echo));
    port
}

async fn python_client_scenarios(compression: &str, config: Config) {
    let Some(py) = python() else { return };
    let pki = pki();
    let port = our_tls_echo_server(&pki, config).await;
    let url = format!("wss://localhost:{port}/");
    common::python_client_scenarios(&py, &url, compression, Some(&pki.ca_file), 13).await;
}

#[tokio::test]
async fn python_client_against_sockeye_tls_server() {
    python_client_scenarios("none", Config::default().without_compression()).await;
}

#[tokio::test]
async fn python_client_against_sockeye_tls_server_with_permessage_deflate() {
    python_client_scenarios("deflate", Config::default()).await;
}

#[tokio::test]
async fn python_client_refuses_our_server_without_the_test_ca() {
    let Some(py) = python() else { return };
    let pki = pki();
    let port = our_tls_echo_server(&pki, Config::default()).await;
    // Trusting another CA: the handshake fails on the Python side.
    let other = Ca::new("Another CA");
    let other_file = pki.dir.write("other-ca.pem", &other.cert_pem);
    let output = timeout(
        Duration::from_secs(30),
        Command::new(&py)
            .arg(python_script("hold_client.py"))
            .arg(format!("wss://localhost:{port}/"))
            .args(["--max-seconds", "1"])
            .env("SSL_CERT_FILE", &other_file)
            .env_remove("SSL_CERT_DIR")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.starts_with("CONNECT_FAILED") && stdout.contains("CERTIFICATE_VERIFY_FAILED"),
        "{stdout}"
    );
}

async fn start_python_tls_server(py: &Path, pki: &Pki, extra: &[&str]) -> (Child, u16) {
    spawn_listening_peer(
        Command::new(py)
            .arg(python_script("tls_echo_server.py"))
            .args(["--port", "0", "--cert"])
            .arg(&pki.cert)
            .arg("--key")
            .arg(&pki.key)
            .args(extra),
    )
    .await
}

async fn our_client_against_python_tls_server(compression: &str) {
    let Some(py) = python() else { return };
    let pki = pki();
    let (_server, port) = start_python_tls_server(&py, &pki, &["--compression", compression]).await;
    let config = if compression == "deflate" {
        Config::default()
    } else {
        Config::default().without_compression()
    };
    let tls = pki.ca.client_config();
    let connect = |path: &str| {
        let request = ClientRequest::new(&format!("wss://localhost:{port}{path}"))
            .unwrap()
            .tls(tls.clone())
            .no_proxy();
        let config = config.clone();
        async move { sockeye::connect_with(request, config).await.unwrap() }
    };

    let mut ws = connect("/").await;
    assert_eq!(ws.get_ref().alpn_protocol(), Some(&b"http/1.1"[..]));
    assert_eq!(
        ws.get_ref().peer_certificates().unwrap()[0],
        pki.leaf.cert_der
    );
    assert_eq!(
        ws.extensions().starts_with("permessage-deflate"),
        compression == "deflate"
    );
    ws.send("héllo 🌍 over TLS").await.unwrap();
    assert_eq!(
        expect_message(&mut ws).await,
        Message::text("héllo 🌍 over TLS")
    );
    let big: Vec<u8> = (0..4 << 20)
        .map(|i: u32| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    ws.send(big.clone()).await.unwrap();
    assert_eq!(expect_message(&mut ws).await, Message::binary(big));
    ws.send_fragment(Some(sockeye::DataKind::Text), b"frag-", false)
        .await
        .unwrap();
    ws.ping(b"between fragments").await.unwrap();
    ws.send_fragment(None, b"ed", true).await.unwrap();
    assert_eq!(expect_message(&mut ws).await, Message::text("frag-ed"));
    ws.close(Some(4000), "done here").await.unwrap();
    assert_clean_close(expect_close(&mut ws).await, 4000, "done here");

    python_server_paths(connect, &["/fragmented"]).await;
}

#[tokio::test]
async fn sockeye_client_against_python_tls_server() {
    our_client_against_python_tls_server("none").await;
}

#[tokio::test]
async fn sockeye_client_against_python_tls_server_with_permessage_deflate() {
    our_client_against_python_tls_server("deflate").await;
}

#[tokio::test]
async fn sockeye_client_certificate_for_a_python_server_that_requires_one() {
    let Some(py) = python() else { return };
    let pki = pki();
    let client_ca = Ca::new("Sockeye interop client CA");
    let client_ca_file = pki.dir.write("client-ca.pem", &client_ca.cert_pem);
    let (cert, key) = client_ca.client("alice").write(&pki.dir, "alice");
    let (_server, port) = start_python_tls_server(
        &py,
        &pki,
        &["--client-ca", client_ca_file.to_str().unwrap()],
    )
    .await;
    let url = format!("wss://localhost:{port}/client-cert");

    let tls = ClientTls::only_added_roots()
        .add_root_pem_file(&pki.ca_file)
        .unwrap()
        .client_identity_pem_files(&cert, &key)
        .unwrap()
        .build()
        .unwrap();
    let request = ClientRequest::new(&url).unwrap().tls(tls).no_proxy();
    let mut ws = sockeye::connect_with(request, Config::default())
        .await
        .unwrap();
    assert_eq!(expect_message(&mut ws).await, Message::text("alice"));
    ws.send("mutual").await.unwrap();
    assert_eq!(expect_message(&mut ws).await, Message::text("mutual"));
    ws.close(Some(1000), "").await.unwrap();
    expect_close(&mut ws).await;

    // Without a client certificate the Python server refuses us.
    let request = ClientRequest::new(&url)
        .unwrap()
        .tls(pki.ca.client_config())
        .no_proxy();
    let result = sockeye::connect_with(request, Config::default()).await;
    assert!(result.is_err(), "connected without a client certificate");
}
