//! A build without permessage-deflate (`cargo test -p sockeye --no-default-features --test
//! without_deflate`): `ws://` over any stream still works through `client_handshake` and
//! `accept`, the extension is neither offered nor accepted (RFC 7692 absent), and a compressed
//! frame is what RFC 6455 §5.2 makes of a reserved bit: "MUST _Fail the WebSocket
//! Connection_", with 1002, in both roles.
#![cfg(not(feature = "deflate"))]

use std::time::Duration;

use sockeye::proto::handshake;
use sockeye::proto::CloseCode;
use sockeye::{ClientRequest, Config, Error, Message};
use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::time::timeout;

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// Reads an HTTP head byte by byte, so that nothing after it is consumed.
async fn read_head(io: &mut DuplexStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0];
        io.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

/// Plays a server that is not Sockeye's: reads the client's request and answers 101 with
/// `extra` headers (each ending in CRLF), whatever was offered. Returns the request head.
async fn answer_101(io: &mut DuplexStream, extra: &str) -> String {
    let head = read_head(io).await;
    let key = head
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .expect("a key");
    let accept = handshake::accept_key(key.trim().as_bytes());
    let answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n{extra}\r\n"
    );
    io.write_all(answer.as_bytes()).await.unwrap();
    head
}

/// Reads frames until a close frame and returns its code. Frames here are short and unmasked
/// (a server's), or masked (a client's): both are handled.
async fn read_close_code(io: &mut DuplexStream) -> u16 {
    timeout(Duration::from_secs(5), async {
        loop {
            let mut head = [0u8; 2];
            io.read_exact(&mut head).await.unwrap();
            let mut mask = [0u8; 4];
            if head[1] & 0x80 != 0 {
                io.read_exact(&mut mask).await.unwrap();
            }
            let mut payload = vec![0u8; usize::from(head[1] & 0x7f)];
            io.read_exact(&mut payload).await.unwrap();
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= mask[i % 4];
            }
            if head[0] & 0x0f == 0x8 {
                return u16::from_be_bytes([payload[0], payload[1]]);
            }
        }
    })
    .await
    .expect("no close frame within 5 s")
}

#[tokio::test]
async fn client_and_server_talk_ws_over_a_duplex_stream() {
    let (client_io, server_io) = duplex(64 << 10);
    let server = tokio::spawn(async move {
        let mut ws = sockeye::accept(server_io).await.unwrap();
        assert_eq!(ws.extensions(), "");
        while let Some(Ok(msg)) = ws.recv().await {
            if let msg @ (Message::Text(_) | Message::Binary(_)) = msg {
                ws.send(msg).await.unwrap();
            }
        }
    });
    let request = ClientRequest::new("ws://example.test/echo").unwrap();
    let mut ws = sockeye::client_handshake(client_io, &request, Config::default())
        .await
        .unwrap();
    assert_eq!(ws.extensions(), "");
    ws.send("hello").await.unwrap();
    match ws.recv().await {
        Some(Ok(Message::Text(text))) => assert_eq!(text.as_str(), "hello"),
        other => panic!("expected the echo, got {other:?}"),
    }
    ws.send(vec![0u8; 100_000]).await.unwrap();
    match ws.recv().await {
        Some(Ok(Message::Binary(data))) => assert_eq!(data.len(), 100_000),
        other => panic!("expected the echo, got {other:?}"),
    }
    ws.close(Some(1000), "done").await.unwrap();
    while ws.recv().await.is_some() {}
    server.await.unwrap();
}

#[tokio::test]
async fn server_ignores_a_permessage_deflate_offer_and_fails_a_compressed_frame_with_1002() {
    let (mut client_io, server_io) = duplex(64 << 10);
    let server = tokio::spawn(async move {
        let mut ws = sockeye::accept(server_io).await.unwrap();
        match ws.recv().await {
            Some(Err(e)) => assert_eq!(e.close_code(), Some(CloseCode::PROTOCOL_ERROR)),
            other => panic!("expected a protocol error, got {other:?}"),
        }
    });
    let offer = format!(
        "GET /echo HTTP/1.1\r\nHost: example.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
    );
    client_io.write_all(offer.as_bytes()).await.unwrap();
    let head = read_head(&mut client_io).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("sec-websocket-extensions"),
        "{head}"
    );
    // FIN + RSV1 + text, masked with a zero key: "hi" as a compressed message would be marked.
    client_io
        .write_all(&[0xc1, 0x82, 0, 0, 0, 0, b'h', b'i'])
        .await
        .unwrap();
    assert_eq!(read_close_code(&mut client_io).await, 1002);
    server.await.unwrap();
}

#[tokio::test]
async fn client_offers_no_extension_and_fails_a_compressed_frame_with_1002() {
    let (client_io, mut server_io) = duplex(64 << 10);
    let peer = tokio::spawn(async move {
        let head = answer_101(&mut server_io, "").await;
        assert!(
            !head
                .to_ascii_lowercase()
                .contains("sec-websocket-extensions"),
            "{head}"
        );
        server_io
            .write_all(&[0xc1, 0x02, b'h', b'i'])
            .await
            .unwrap();
        read_close_code(&mut server_io).await
    });
    let request = ClientRequest::new("ws://example.test/echo").unwrap();
    let mut ws = sockeye::client_handshake(client_io, &request, Config::default())
        .await
        .unwrap();
    match ws.recv().await {
        Some(Err(e)) => assert_eq!(e.close_code(), Some(CloseCode::PROTOCOL_ERROR)),
        other => panic!("expected a protocol error, got {other:?}"),
    }
    assert_eq!(peer.await.unwrap(), 1002);
}

#[tokio::test]
async fn client_fails_the_handshake_when_the_server_agrees_to_deflate_it_never_offered() {
    let (client_io, mut server_io) = duplex(64 << 10);
    tokio::spawn(async move {
        answer_101(
            &mut server_io,
            "Sec-WebSocket-Extensions: permessage-deflate\r\n",
        )
        .await;
        // Held open until the client gives up, so that the error is the handshake's.
        let _ = server_io.read(&mut [0u8; 1]).await;
    });
    let request = ClientRequest::new("ws://example.test/echo").unwrap();
    // A configuration asking for compression changes nothing in a build without it.
    let config = Config::default().compression(sockeye::CompressionPolicy::Balanced);
    match sockeye::client_handshake(client_io, &request, config).await {
        Err(Error::Handshake(e)) => assert!(e.to_string().contains("not offered"), "{e}"),
        other => panic!("expected a handshake error, got {:?}", other.map(|_| ())),
    }
}
