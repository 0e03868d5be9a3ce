//! `sockeye bench` checks the server's handshake response as RFC 6455 §4.1 says a client must:
//! a 101 whose Sec-WebSocket-Accept is not the one for the key sent fails the run, even when
//! the right value appears elsewhere in the response. A tiny raw TCP server plays the server.

mod bench_support;

use bench_support::{bench, field};
use sockeye::proto::handshake::{accept_key, parse_request, validate_request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// How the raw server answers, given the accept value that matches the client's key.
type Answer = fn(&str) -> String;

/// Listens on a free loopback port and answers every handshake, which must be a valid one,
/// with `answer`, then holds the connection open without a word. Returns the port.
async fn raw_server(answer: Answer) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let request = loop {
                    if let Some((request, _)) = parse_request(&head, 16 << 10).unwrap() {
                        break request;
                    }
                    if tcp.read_buf(&mut head).await.unwrap_or(0) == 0 {
                        return;
                    }
                };
                let offer = validate_request(&request).expect("a valid client handshake");
                let key = offer.key.expect("a Sec-WebSocket-Key");
                let response = answer(&accept_key(key.as_bytes()));
                if tcp.write_all(response.as_bytes()).await.is_err() {
                    return;
                }
                // Hold the connection until the client goes.
                while tcp.read_buf(&mut head).await.is_ok_and(|n| n > 0) {}
            });
        }
    });
    port
}

/// Runs `sockeye bench` in idle mode (it only needs the handshake) with one connection
/// against a raw server answering with `answer`; returns its JSON line and its stderr.
async fn idle_against(answer: Answer) -> (String, String) {
    let url = format!("ws://127.0.0.1:{}/", raw_server(answer).await);
    let (_, line, stderr) = bench(&[&url, "--mode", "idle", "-c", "1", "-d", "0.2"]).await;
    (line, stderr)
}

fn upgrade_with(headers: &str) -> String {
    format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n{headers}\r\n")
}

/// The right answer holds the connection open: the raw server is good enough for the others
/// to fail for their accept value alone.
#[tokio::test]
async fn bench_accepts_the_right_accept_value() {
    let (line, stderr) =
        idle_against(|accept| upgrade_with(&format!("Sec-WebSocket-Accept: {accept}\r\n"))).await;
    assert_eq!(field(&line, "open"), 1, "{line}\n{stderr}");
    assert_eq!(field(&line, "failed"), 0, "{line}");
}

#[tokio::test]
async fn bench_fails_on_a_wrong_accept_value() {
    // The RFC's sample accept value: right for the sample key, wrong for any random key.
    let (line, stderr) =
        idle_against(|_| upgrade_with("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"))
            .await;
    assert_eq!(field(&line, "open"), 0, "{line}");
    assert_eq!(field(&line, "failed"), 1, "{line}");
    let error = field(&line, "first_error");
    assert!(
        error.as_str().unwrap().contains("Sec-WebSocket-Accept"),
        "{error}\n{stderr}"
    );
}

#[tokio::test]
async fn bench_fails_when_the_right_accept_value_is_only_in_another_header() {
    let (line, stderr) = idle_against(|accept| {
        upgrade_with(&format!(
            "X-Accept: {accept}\r\nSec-WebSocket-Accept: not-the-accept-value\r\n"
        ))
    })
    .await;
    assert_eq!(field(&line, "open"), 0, "{line}");
    let error = field(&line, "first_error");
    assert!(
        error.as_str().unwrap().contains("Sec-WebSocket-Accept"),
        "{error}\n{stderr}"
    );
    // And without any Sec-WebSocket-Accept at all.
    let (line, _) = idle_against(|accept| upgrade_with(&format!("X-Accept: {accept}\r\n"))).await;
    assert_eq!(field(&line, "open"), 0, "{line}");
}

/// The throughput modes need every connection: a wrong accept value fails the run.
#[tokio::test]
async fn bench_echo_exits_with_an_error_on_a_wrong_accept_value() {
    let port = raw_server(|_| upgrade_with("Sec-WebSocket-Accept: AAAA\r\n")).await;
    let url = format!("ws://127.0.0.1:{port}/echo");
    let (status, line, stderr) = bench(&[&url, "-c", "2", "-d", "0.2", "-w", "0"]).await;
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("wrong Sec-WebSocket-Accept"), "{stderr}");
    assert!(
        field(&line, "error")
            .as_str()
            .unwrap()
            .contains("wrong Sec-WebSocket-Accept"),
        "{line}"
    );
}
