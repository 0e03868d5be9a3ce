//! What the `sockeye serve` tests share: starting the real binary and reading where it listens.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::time::timeout;

/// `sockeye serve ARGS`, its stdout piped for the LISTENING lines, killed when dropped.
pub fn serve_command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sockeye"));
    command
        .arg("serve")
        .args(args)
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Spawns `command` (from [`serve_command`]) and returns the addresses of its `count`
/// LISTENING lines.
pub async fn spawn_listening(mut command: Command, count: usize) -> (Child, Vec<String>) {
    let mut child = command.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut addrs = Vec::new();
    for _ in 0..count {
        let line = timeout(Duration::from_secs(10), lines.next_line())
            .await
            .expect("no LISTENING line within 10 s")
            .unwrap()
            .expect("sockeye serve exited");
        addrs.push(line.strip_prefix("LISTENING ").unwrap().to_owned());
    }
    (child, addrs)
}

/// Starts `sockeye serve ARGS` and returns the addresses of its `count` LISTENING lines.
pub async fn start(args: &[&str], count: usize) -> (Child, Vec<String>) {
    spawn_listening(serve_command(args), count).await
}

/// Starts `sockeye serve --listen 127.0.0.1:0 EXTRA` and returns where it listens.
pub async fn start_on_loopback(extra: &[&str]) -> (Child, String) {
    start_one(&[&["--listen", "127.0.0.1:0"], extra].concat()).await
}

/// Starts `sockeye serve ARGS` with one listener and returns its address.
pub async fn start_one(args: &[&str]) -> (Child, String) {
    let (child, mut addrs) = start(args, 1).await;
    (child, addrs.remove(0))
}

/// `GET path` over HTTP/1.1 with `headers` (each line ending in CRLF) added: the whole answer,
/// head and body, read until the server closes.
pub async fn http_get(addr: &str, path: &str, headers: &str) -> String {
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

/// The Python of the venv `scripts/setup-python.sh` makes ($SOCKEYE_PYTHON, else
/// interop/.venv), if it can `import modules` (such as "zeep, websockets"). Without it the
/// caller skips, unless SOCKEYE_REQUIRE_INTEROP=1, which makes it a failure.
pub async fn python_with(modules: &str) -> Option<PathBuf> {
    let path = std::env::var_os("SOCKEYE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../interop/.venv/bin/python")
        });
    let usable = path.exists()
        && Command::new(&path)
            .args(["-c", &format!("import {modules}")])
            .stderr(Stdio::null())
            .status()
            .await
            .is_ok_and(|s| s.success());
    if usable {
        return Some(path);
    }
    let why = format!(
        "no Python venv with {modules} at {} (run scripts/setup-python.sh)",
        path.display()
    );
    if std::env::var("SOCKEYE_REQUIRE_INTEROP").as_deref() == Ok("1") {
        panic!("{why}");
    }
    eprintln!("skipping: {why}");
    None
}
