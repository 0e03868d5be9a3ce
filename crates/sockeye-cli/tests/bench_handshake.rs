//! `sockeye bench` checks the server's handshake response as RFC 6455 §4.1 says a client must:
//! a 101 whose Sec-WebSocket-Accept is not the one for the key sent fails the run, even when
//! the right value appears elsewhere in the response. A tiny raw TCP server plays the server.

use std::process::Stdio;
use std::time::Duration;

use sockeye::proto::handshake::accept_key;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::process::Command;
use tokio::time::timeout;

/// How the raw server answers, given the accept value that matches the client's key.
type Answer = fn(&str) -> String;

/// Listens on a free loopback port and answers every handshake with `answer`, then holds the
/// connection open without a word. Returns the port.
async fn raw_server(answer: Answer) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut tcp, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let key = head
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("sec-websocket-key")
                            .then(|| value.trim().to_owned())
                    })
                    .expect("the request has a Sec-WebSocket-Key");
                let response = answer(&accept_key(key.as_bytes()));
                if tcp.write_all(response.as_bytes()).await.is_err() {
                    return;
                }
                // Hold the connection until the client goes.
                while let Ok(n) = tcp.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// Runs `sockeye bench` in idle mode (it only needs the handshake) against the raw server;
/// returns whether it succeeded, its JSON line and its stderr.
async fn bench_against(answer: Answer) -> (bool, String, String) {
    let port = raw_server(answer).await;
    let url = format!("ws://127.0.0.1:{port}/");
    let out = timeout(
        Duration::from_secs(30),
        Command::new(env!("CARGO_BIN_EXE_sockeye"))
            .args(["bench", &url, "--mode", "idle", "-c", "1", "-d", "0.2"])
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("sockeye bench did not finish within 30 s")
    .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let line = stdout.lines().last().unwrap_or_default().to_owned();
    (
        out.status.success(),
        line,
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn upgrade_with(headers: &str) -> String {
    format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n{headers}\r\n")
}

/// The right answer holds the connection open: the raw server is good enough for the others
/// to fail for their accept value alone.
#[tokio::test]
async fn bench_accepts_the_right_accept_value() {
    let (ok, line, stderr) =
        bench_against(|accept| upgrade_with(&format!("Sec-WebSocket-Accept: {accept}\r\n"))).await;
    assert!(ok, "{stderr}\n{line}");
    let v: serde_json::Value = serde_json::from_str(&line).expect("one JSON object");
    assert_eq!(v["open"], 1, "{line}");
    assert_eq!(v["failed"], 0, "{line}");
}

#[tokio::test]
async fn bench_fails_on_a_wrong_accept_value() {
    // The RFC's sample accept value: right for the sample key, wrong for any random key.
    let (_, line, stderr) =
        bench_against(|_| upgrade_with("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"))
            .await;
    let v: serde_json::Value = serde_json::from_str(&line).expect("one JSON object");
    assert_eq!(v["open"], 0, "{line}");
    assert_eq!(v["failed"], 1, "{line}");
    let error = v["first_error"].as_str().unwrap_or_default();
    assert!(error.contains("Sec-WebSocket-Accept"), "{error}\n{stderr}");
}

#[tokio::test]
async fn bench_fails_when_the_right_accept_value_is_only_in_another_header() {
    let (_, line, stderr) = bench_against(|accept| {
        upgrade_with(&format!(
            "X-Accept: {accept}\r\nSec-WebSocket-Accept: not-the-accept-value\r\n"
        ))
    })
    .await;
    let v: serde_json::Value = serde_json::from_str(&line).expect("one JSON object");
    assert_eq!(v["open"], 0, "{line}");
    let error = v["first_error"].as_str().unwrap_or_default();
    assert!(error.contains("Sec-WebSocket-Accept"), "{error}\n{stderr}");
    // And without any Sec-WebSocket-Accept at all.
    let (_, line, _) =
        bench_against(|accept| upgrade_with(&format!("X-Accept: {accept}\r\n"))).await;
    let v: serde_json::Value = serde_json::from_str(&line).expect("one JSON object");
    assert_eq!(v["open"], 0, "{line}");
}

/// The throughput modes need every connection: a wrong accept value fails the run.
#[tokio::test]
async fn bench_echo_exits_with_an_error_on_a_wrong_accept_value() {
    let port = raw_server(|_| upgrade_with("Sec-WebSocket-Accept: AAAA\r\n")).await;
    let url = format!("ws://127.0.0.1:{port}/echo");
    let out = timeout(
        Duration::from_secs(30),
        Command::new(env!("CARGO_BIN_EXE_sockeye"))
            .args(["bench", &url, "-c", "2", "-d", "0.2", "-w", "0"])
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("sockeye bench did not finish within 30 s")
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("wrong Sec-WebSocket-Accept"), "{stderr}");
}
