//! `sockeye serve` with TLS, as a user starts it: certificates from PEM files, plain and TLS
//! listeners side by side, SNI, reload on SIGHUP, clear errors for bad files; and
//! `sockeye connect wss://…` through a proxy named by `HTTPS_PROXY`.

mod common;
#[path = "../../sockeye/tests/support/mod.rs"]
mod support;

use common::start;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use sockeye::tls::CertificateDer;
use sockeye::{ClientRequest, Config, Message};
use support::{Ca, TempDir, TinyProxy};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::time::timeout;

const PROXY_VARS: [&str; 8] = [
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
];

fn port(addr: &str) -> u16 {
    addr.rsplit(':').next().unwrap().parse().unwrap()
}

async fn wss(url: &str, ca: &Ca) -> sockeye::Result<sockeye::WebSocket<sockeye::MaybeTlsStream>> {
    let request = ClientRequest::new(url)?.tls(ca.client_config()).no_proxy();
    sockeye::connect_with(request, Config::default()).await
}

async fn echo(ws: &mut sockeye::WebSocket<sockeye::MaybeTlsStream>, text: &str) {
    ws.send(text).await.unwrap();
    let msg = timeout(Duration::from_secs(10), ws.recv())
        .await
        .expect("no echo within 10 s")
        .expect("stream ended")
        .expect("error");
    assert_eq!(msg, Message::text(text));
}

fn presented(ws: &sockeye::WebSocket<sockeye::MaybeTlsStream>) -> CertificateDer<'static> {
    ws.get_ref().peer_certificates().unwrap()[0].clone()
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The flags for this certificate and key.
fn tls<'a>(cert: &'a Path, key: &'a Path) -> [&'a str; 4] {
    ["--tls-cert", arg(cert), "--tls-key", arg(key)]
}

#[tokio::test]
async fn tls_cert_and_key_make_every_listen_address_serve_wss() {
    let ca = Ca::new("Sockeye test CA");
    let dir = TempDir::new("cli-tls");
    let leaf = ca.server(&["localhost", "127.0.0.1"]);
    let (cert, key) = leaf.write(&dir, "server");
    let (_server, addrs) = start(
        &[&["--listen", "127.0.0.1:0"][..], &tls(&cert, &key)].concat(),
        1,
    )
    .await;
    let mut ws = wss(&format!("wss://localhost:{}/echo", port(&addrs[0])), &ca)
        .await
        .unwrap();
    assert_eq!(presented(&ws), leaf.cert_der);
    echo(&mut ws, "over wss from sockeye serve").await;
    ws.close(Some(1000), "").await.unwrap();
    // A plain ws:// client on the TLS port gets no WebSocket.
    assert!(sockeye::connect(&format!("ws://{}/echo", addrs[0]))
        .await
        .is_err());
}

#[tokio::test]
async fn a_plain_listener_beside_a_tls_one_with_sni_certificates() {
    let ca = Ca::new("Sockeye test CA");
    let dir = TempDir::new("cli-sni");
    let default = ca.server(&["127.0.0.1"]);
    let named = ca.server(&["localhost"]);
    let (cert, key) = default.write(&dir, "default");
    let (named_cert, named_key) = named.write(&dir, "named");
    let sni = format!("localhost={},{}", arg(&named_cert), arg(&named_key));
    let (_server, addrs) = start(
        &[
            "--listen",
            "127.0.0.1:0",
            "--listen-tls",
            "127.0.0.1:0",
            "--tls-cert",
            arg(&cert),
            "--tls-key",
            arg(&key),
            "--tls-sni",
            &sni,
        ],
        2,
    )
    .await;
    let (plain, tls) = (&addrs[0], &addrs[1]);
    let mut ws = sockeye::connect(&format!("ws://{plain}/echo"))
        .await
        .unwrap();
    assert!(!ws.get_ref().is_tls());
    echo(&mut ws, "plain").await;

    let mut ws = wss(&format!("wss://localhost:{}/echo", port(tls)), &ca)
        .await
        .unwrap();
    assert_eq!(presented(&ws), named.cert_der, "SNI localhost");
    echo(&mut ws, "named").await;
    let mut ws = wss(&format!("wss://127.0.0.1:{}/echo", port(tls)), &ca)
        .await
        .unwrap();
    assert_eq!(presented(&ws), default.cert_der, "no SNI: the default");
    echo(&mut ws, "default").await;
}

#[tokio::test]
async fn sighup_reloads_the_certificates_and_keeps_open_connections() {
    let ca = Ca::new("Sockeye test CA");
    let dir = TempDir::new("cli-reload");
    let first = ca.server(&["localhost"]);
    let (cert, key) = first.write(&dir, "server");
    let (server, addrs) = start(
        &[&["--listen-tls", "127.0.0.1:0"][..], &tls(&cert, &key)].concat(),
        1,
    )
    .await;
    let pid = server.id().unwrap().to_string();
    let url = format!("wss://localhost:{}/echo", port(&addrs[0]));
    let mut open = wss(&url, &ca).await.unwrap();
    assert_eq!(presented(&open), first.cert_der);

    let hup = || async {
        let status = Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .await
            .unwrap();
        assert!(status.success());
    };
    // Waits until new connections see `want`.
    let until_presented = |want: CertificateDer<'static>| {
        let (url, ca) = (&url, &ca);
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            loop {
                let ws = wss(url, ca).await.unwrap();
                if presented(&ws) == want {
                    return ws;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "new connections still see the old certificate"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };

    let second = ca.server(&["localhost"]);
    second.write(&dir, "server");
    hup().await;
    let mut fresh = until_presented(second.cert_der.clone()).await;
    echo(&mut fresh, "new certificate").await;
    echo(&mut open, "the connection opened before the reload").await;

    // A reload with a broken key keeps the certificates in use.
    dir.write("server.key", "not a key");
    hup().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut after = wss(&url, &ca).await.unwrap();
    assert_eq!(presented(&after), second.cert_der);
    echo(&mut after, "still serving").await;
    echo(&mut open, "and the first one still works").await;
}

/// Runs `sockeye serve ARGS`, expecting it to fail at start; returns its stderr.
async fn fails_to_start(args: &[&str]) -> String {
    let output = timeout(
        Duration::from_secs(10),
        Command::new(env!("CARGO_BIN_EXE_sockeye"))
            .arg("serve")
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("sockeye serve did not exit")
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "{args:?} started:\n{stdout}");
    assert!(!stdout.contains("LISTENING"), "{stdout}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// [`fails_to_start`] with a plain listener and this certificate and key.
async fn fails_with_cert_and_key(cert: &Path, key: &Path) -> String {
    fails_to_start(&[&["--listen", "127.0.0.1:0"][..], &tls(cert, key)].concat()).await
}

#[tokio::test]
async fn bad_certificate_or_key_files_are_clear_errors_at_start() {
    let ca = Ca::new("Sockeye test CA");
    let dir = TempDir::new("cli-bad");
    let (cert, key) = ca.server(&["localhost"]).write(&dir, "good");
    let (_, other_key) = ca.server(&["localhost"]).write(&dir, "other");
    let missing = dir.path().join("missing.key");

    let stderr = fails_with_cert_and_key(&cert, &missing).await;
    assert!(
        stderr.contains("cannot read key file") && stderr.contains("missing.key"),
        "{stderr}"
    );
    let stderr = fails_with_cert_and_key(&missing, &key).await;
    assert!(stderr.contains("cannot read certificate file"), "{stderr}");
    let stderr = fails_with_cert_and_key(&cert, &other_key).await;
    assert!(stderr.contains("does not match"), "{stderr}");
    let stderr = fails_with_cert_and_key(&cert, &cert).await;
    assert!(stderr.contains("no private key"), "{stderr}");
    let stderr = fails_to_start(&["--listen-tls", "127.0.0.1:0"]).await;
    assert!(
        stderr.contains("--listen-tls needs a certificate"),
        "{stderr}"
    );
    let stderr = fails_to_start(&["--tls-cert", arg(&cert)]).await;
    assert!(stderr.contains("--tls-key"), "{stderr}");
    let stderr = fails_to_start(&["--tls-sni", "localhost"]).await;
    assert!(stderr.contains("HOST=CERT.pem,KEY.pem"), "{stderr}");
}

/// Runs `sockeye connect URL --ca-file CA` with these environment variables, sends one line
/// and expects it back.
async fn connect_cli(url: &str, ca_file: &Path, env: &[(&str, &str)]) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sockeye"));
    command
        .args(["connect", url, "--ca-file", arg(ca_file)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for var in PROXY_VARS {
        command.env_remove(var);
    }
    command.envs(env.iter().copied());
    let mut child = command.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    stdin.write_all(b"through the proxy\n").await.unwrap();
    let line = timeout(Duration::from_secs(10), stdout.next_line()).await;
    let line = match line {
        Ok(Ok(Some(line))) => line,
        other => {
            let mut err = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut err).await;
            panic!("no echo ({other:?}): {err}");
        }
    };
    assert_eq!(line, "through the proxy");
    drop(stdin);
    let status = timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn connect_honours_https_proxy_with_credentials_and_no_proxy() {
    let Some(proxy) = TinyProxy::start("sockeye", "s3cret") else {
        return;
    };
    let ca = Ca::new("Sockeye test CA");
    let dir = TempDir::new("cli-proxy");
    let (cert, key) = ca.server(&["localhost"]).write(&dir, "server");
    let ca_file = dir.write("ca.pem", &ca.cert_pem);
    let (_server, addrs) = start(
        &[&["--listen-tls", "127.0.0.1:0"][..], &tls(&cert, &key)].concat(),
        1,
    )
    .await;
    let url = format!("wss://localhost:{}/echo", port(&addrs[0]));
    let connects = || proxy.log().matches("CONNECT localhost").count();

    let proxy_url = proxy.url("sockeye:s3cret");
    connect_cli(&url, &ca_file, &[("HTTPS_PROXY", &proxy_url)]).await;
    assert_eq!(connects(), 1, "{}", proxy.log());
    connect_cli(&url, &ca_file, &[("all_proxy", &proxy_url)]).await;
    assert_eq!(connects(), 2, "{}", proxy.log());
    // NO_PROXY: straight there, not through the proxy.
    connect_cli(
        &url,
        &ca_file,
        &[
            ("HTTPS_PROXY", &proxy_url),
            ("NO_PROXY", "example.com,localhost"),
        ],
    )
    .await;
    // http_proxy is for ws:// only.
    connect_cli(&url, &ca_file, &[("http_proxy", &proxy_url)]).await;
    assert_eq!(connects(), 2, "{}", proxy.log());
}
