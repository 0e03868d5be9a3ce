//! What the real-peer tests share: where the peers live, starting them, our echo server's
//! handler, running `client_scenarios.py`, and waiting for messages and close events with a
//! deadline so that a silent peer fails the test instead of hanging it.

#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use sockeye::proto::CloseCode;
use sockeye::{CloseEvent, Message, Upgrade, WebSocket};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, BufReader};
use tokio::process::{Child, Command};
use tokio::time::timeout;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Whether a missing peer fails the test (`SOCKEYE_REQUIRE_INTEROP=1`, as scripts/test.sh and CI
/// run) rather than skipping it with a message.
pub fn interop_required() -> bool {
    std::env::var("SOCKEYE_REQUIRE_INTEROP").as_deref() == Ok("1")
}

/// The venv's Python (`SOCKEYE_PYTHON`, or the one scripts/setup-python.sh makes).
pub fn python() -> Option<PathBuf> {
    let path = std::env::var_os("SOCKEYE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("interop/.venv/bin/python"));
    if path.exists() {
        return Some(path);
    }
    let what = format!(
        "no Python venv at {} (run scripts/setup-python.sh)",
        path.display()
    );
    if interop_required() {
        panic!("{what}");
    }
    eprintln!("skipping: {what}");
    None
}

pub fn python_script(name: &str) -> PathBuf {
    repo().join("interop/python").join(name)
}

/// Spawns a peer (stdout piped, stderr passed through, killed on drop) and waits for its first
/// stdout line, which says it is ready (`LISTENING <port>`, `CONNECTED`).
pub async fn spawn_peer(command: &mut Command) -> (Child, String) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn python");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let line = timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("peer did not start")
        .unwrap()
        .expect("peer exited");
    (child, line)
}

/// Spawns a peer server and returns it with the port of its `LISTENING <port>` line.
pub async fn spawn_listening_peer(command: &mut Command) -> (Child, u16) {
    let (child, line) = spawn_peer(command).await;
    let port = line
        .strip_prefix("LISTENING ")
        .expect("LISTENING line")
        .trim()
        .parse()
        .unwrap();
    (child, port)
}

/// Our echo server's handler (for `sockeye::serve` and `sockeye::serve_tls`): every text and
/// binary message goes back as it came.
pub async fn echo<S>(upgrade: Upgrade<S>, _peer: SocketAddr)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let Ok(mut ws) = upgrade.accept(None).await else {
        return;
    };
    while let Some(msg) = ws.recv().await {
        if let Ok(msg @ (Message::Text(_) | Message::Binary(_))) = msg {
            let _ = ws.send(msg).await;
        }
    }
}

/// Runs every scenario of `client_scenarios.py` (Python `websockets` as the client) against our
/// echo server at `url`, and asserts that each passed and that at least `at_least` ran. Over
/// TLS, `tls_ca_file` is the CA Python trusts: its default `ssl` context reads it from
/// `SSL_CERT_FILE`.
pub async fn python_client_scenarios(
    py: &Path,
    url: &str,
    compression: &str,
    tls_ca_file: Option<&Path>,
    at_least: usize,
) {
    let mut command = Command::new(py);
    command
        .arg(python_script("client_scenarios.py"))
        .arg(url)
        .args(["--compression", compression]);
    if let Some(ca_file) = tls_ca_file {
        command
            .env("SSL_CERT_FILE", ca_file)
            .env_remove("SSL_CERT_DIR");
    }
    let output = timeout(
        Duration::from_secs(120),
        command.kill_on_drop(true).output(),
    )
    .await
    .expect("scenarios timed out")
    .unwrap();
    let over = tls_ca_file.map_or("", |_| " over TLS");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let mut seen = 0;
    for line in stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["ok"], true, "scenario failed{over}: {line}\n{stderr}");
        seen += 1;
    }
    assert!(
        seen >= at_least,
        "only {seen} scenarios ran:\n{stdout}\n{stderr}"
    );
    assert!(output.status.success(), "{stdout}\n{stderr}");
}

pub async fn expect_message_within<S>(ws: &mut WebSocket<S>, limit: Duration) -> Message
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    timeout(limit, ws.recv())
        .await
        .expect("no message in time")
        .expect("stream ended")
        .expect("error instead of a message")
}

pub async fn expect_message<S>(ws: &mut WebSocket<S>) -> Message
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    expect_message_within(ws, Duration::from_secs(10)).await
}

/// Reads to the end of the stream and returns the close event.
pub async fn expect_close<S>(ws: &mut WebSocket<S>) -> CloseEvent
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut close = None;
    while let Some(msg) = timeout(Duration::from_secs(10), ws.recv())
        .await
        .expect("no close")
    {
        if let Ok(Message::Close(event)) = msg {
            close = Some(event);
        }
    }
    close.expect("no close event")
}

/// Asserts a clean close with this code and reason.
pub fn assert_clean_close(close: CloseEvent, code: u16, reason: &str) {
    assert_eq!(
        (close.code, close.reason.as_str(), close.was_clean),
        (CloseCode(code), reason, true)
    );
}

/// Our client against the special paths of a Python echo server (`echo_server.py`,
/// `tls_echo_server.py`), each on a connection of its own from `connect(path)`.
pub async fn python_server_paths<S, F, Fut>(connect: F, fragmented_paths: &[&str])
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: Fn(&str) -> Fut,
    Fut: Future<Output = WebSocket<S>>,
{
    // The server pings; our automatic pong lets it answer "pong-ok".
    let mut ws = connect("/ping").await;
    assert_eq!(expect_message(&mut ws).await, Message::text("pong-ok"));
    ws.close(None, "").await.unwrap();
    assert!(expect_close(&mut ws).await.was_clean);

    // Fragmented messages from the peer.
    for path in fragmented_paths {
        let mut ws = connect(path).await;
        assert_eq!(expect_message(&mut ws).await, Message::text("frag-ment-ed"));
        assert_eq!(
            expect_message(&mut ws).await,
            Message::binary((0..9).collect::<Vec<u8>>())
        );
        ws.close(Some(1000), "").await.unwrap();
        expect_close(&mut ws).await;
    }

    // The server closes first: its code and reason reach us, cleanly.
    let mut ws = connect("/close-4001").await;
    assert_clean_close(expect_close(&mut ws).await, 4001, "server says bye");
}
