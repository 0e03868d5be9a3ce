//! Bad input and misbehaving peers over real loopback sockets: each gets a clear error and the
//! right close code, never a panic or unbounded memory.

use std::time::Duration;

use sockeye::proto::handshake::{self, Negotiated};
use sockeye::proto::CloseCode;
use sockeye::{Config, Message, ReadyState};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

const HANDSHAKE: &[u8] = b"GET /echo HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// Starts a server that accepts on every connection and runs `each` on the socket.
async fn server_with<F, Fut>(config: Config, each: F) -> String
where
    F: Fn(sockeye::WebSocket<TcpStream>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(sockeye::serve(listener, config, move |upgrade, _| {
        let each = each.clone();
        async move {
            if let Ok(ws) = upgrade.accept(None).await {
                each(ws).await;
            }
        }
    }));
    addr.to_string()
}

async fn echo_server(config: Config) -> String {
    server_with(config, |mut ws| async move {
        while let Some(msg) = ws.recv().await {
            if let Ok(msg @ (Message::Text(_) | Message::Binary(_))) = msg {
                let _ = ws.send(msg).await;
            }
        }
    })
    .await
}

/// Opens a raw TCP connection and completes the handshake by hand.
async fn raw_client(addr: &str) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(HANDSHAKE).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0];
        tcp.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));
    tcp
}

/// Reads one client handshake and answers it with a 101 agreeing to `negotiated`, whatever the
/// client offered: a server that is not Sockeye's, so a test can make it go silent afterwards or
/// claim what the client never asked for.
async fn answer_handshake_by_hand(
    tcp: &mut TcpStream,
    negotiated: &Negotiated,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 4096];
    let n = tcp.read(&mut buf).await.unwrap();
    let req = handshake::parse_request(&buf[..n], 8192)
        .unwrap()
        .unwrap()
        .0;
    let offer = handshake::validate_request(&req).unwrap();
    let resp = handshake::accept_response(&offer, negotiated);
    tcp.write_all(&handshake::write_response(&resp, b"")).await
}

/// Reads frames until a close frame and returns its status code.
async fn read_close_code(tcp: &mut TcpStream) -> u16 {
    let mut buf = Vec::new();
    timeout(Duration::from_secs(5), async {
        loop {
            let mut chunk = [0u8; 4096];
            let n = tcp.read(&mut chunk).await.unwrap();
            assert!(n > 0, "EOF before a close frame");
            buf.extend_from_slice(&chunk[..n]);
            // Server frames are unmasked and these are all short.
            while buf.len() >= 2 {
                let len = (buf[1] & 0x7f) as usize;
                if buf.len() < 2 + len {
                    break;
                }
                if buf[0] & 0x0f == 0x8 {
                    return u16::from_be_bytes([buf[2], buf[3]]);
                }
                buf.drain(..2 + len);
            }
        }
    })
    .await
    .expect("no close frame within 5 s")
}

async fn read_to_end(tcp: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    timeout(Duration::from_secs(5), tcp.read_to_end(&mut out))
        .await
        .expect("server did not close the connection")
        .ok();
    out
}

#[tokio::test]
async fn frame_header_claiming_2_pow_63_minus_1_bytes_closes_with_1009() {
    let addr = echo_server(Config::default()).await;
    let mut tcp = raw_client(&addr).await;
    let mut frame = vec![0x82, 0xff];
    frame.extend_from_slice(&(u64::MAX >> 1).to_be_bytes());
    frame.extend_from_slice(&[1, 2, 3, 4]);
    tcp.write_all(&frame).await.unwrap();
    assert_eq!(read_close_code(&mut tcp).await, 1009);
}

#[tokio::test]
async fn rfc6455_5_2_length_with_high_bit_closes_with_1002() {
    let addr = echo_server(Config::default()).await;
    let mut tcp = raw_client(&addr).await;
    let mut frame = vec![0x82, 0xff];
    frame.extend_from_slice(&u64::MAX.to_be_bytes());
    frame.extend_from_slice(&[1, 2, 3, 4]);
    tcp.write_all(&frame).await.unwrap();
    assert_eq!(read_close_code(&mut tcp).await, 1002);
}

#[tokio::test]
async fn message_over_the_limit_closes_with_1009() {
    let addr = echo_server(Config::default().max_message_size(1000)).await;
    let mut tcp = raw_client(&addr).await;
    let mut frame = vec![0x82, 0xfe, 0x03, 0xe9, 0, 0, 0, 0];
    frame.extend(std::iter::repeat_n(0u8, 1001));
    tcp.write_all(&frame).await.unwrap();
    assert_eq!(read_close_code(&mut tcp).await, 1009);
}

#[tokio::test]
async fn garbage_instead_of_http_gets_400() {
    let addr = echo_server(Config::default()).await;
    let mut tcp = TcpStream::connect(&addr).await.unwrap();
    tcp.write_all(b"\x16\x03\x01\x02\x00garbage\r\n\r\n")
        .await
        .unwrap();
    let resp = String::from_utf8_lossy(&read_to_end(&mut tcp).await).into_owned();
    assert!(resp.starts_with("HTTP/1.1 400 "), "{resp}");
}

#[tokio::test]
async fn rfc6455_4_4_wrong_version_gets_426_with_version_13() {
    let addr = echo_server(Config::default()).await;
    let mut tcp = TcpStream::connect(&addr).await.unwrap();
    let request = String::from_utf8_lossy(HANDSHAKE).replace("Version: 13", "Version: 8");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let resp = String::from_utf8_lossy(&read_to_end(&mut tcp).await).to_ascii_lowercase();
    assert!(resp.starts_with("http/1.1 426 "), "{resp}");
    assert!(resp.contains("sec-websocket-version: 13\r\n"), "{resp}");
}

#[tokio::test]
async fn endless_headers_are_refused_with_431() {
    let addr = echo_server(Config::default()).await;
    let mut tcp = TcpStream::connect(&addr).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
    let line = format!("X-Filler: {}\r\n", "a".repeat(1000));
    for _ in 0..40 {
        if tcp.write_all(line.as_bytes()).await.is_err() {
            break;
        }
    }
    let resp = String::from_utf8_lossy(&read_to_end(&mut tcp).await).into_owned();
    assert!(resp.starts_with("HTTP/1.1 431 "), "{resp}");
}

#[tokio::test]
async fn slow_loris_handshake_is_cut_off_by_the_timeout() {
    let mut config = Config::default();
    config.handshake_timeout = Duration::from_millis(300);
    let addr = echo_server(config).await;
    let mut tcp = TcpStream::connect(&addr).await.unwrap();
    let closed = timeout(Duration::from_secs(5), async {
        for byte in b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ".iter().cycle() {
            if tcp.write_all(&[*byte]).await.is_err() {
                return;
            }
            let mut probe = [0u8; 1];
            if let Ok(Ok(0)) = timeout(Duration::from_millis(20), tcp.read(&mut probe)).await {
                return;
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the server kept a trickling handshake open");
}

#[tokio::test]
async fn client_that_never_reads_gets_backpressure_not_unbounded_buffering() {
    let mut config = Config::default().without_compression();
    config.write_buffer_limit = 256 << 10;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx = std::sync::Arc::new(std::sync::Mutex::new(Some(tx)));
    let addr = server_with(config, move |mut ws| {
        let tx = tx.clone();
        async move {
            let chunk = sockeye::Bytes::from(vec![7u8; 64 << 10]);
            let mut sent = 0usize;
            let mut max_buffered = 0usize;
            // The peer never reads: after the kernel buffers fill, send() must wait.
            while timeout(Duration::from_millis(500), ws.send(chunk.clone()))
                .await
                .is_ok()
            {
                sent += chunk.len();
                max_buffered = max_buffered.max(ws.buffered_amount());
                if sent > 512 << 20 {
                    break;
                }
            }
            let _ = tx
                .lock()
                .unwrap()
                .take()
                .unwrap()
                .send((sent, max_buffered));
        }
    })
    .await;
    let tcp = raw_client(&addr).await;
    let (sent, max_buffered) = timeout(Duration::from_secs(30), rx).await.unwrap().unwrap();
    drop(tcp);
    assert!(sent < 512 << 20, "send never waited: {sent} bytes accepted");
    assert!(
        max_buffered <= (256 << 10) + (64 << 10) + 16,
        "buffered {max_buffered} bytes"
    );
}

#[tokio::test]
async fn eof_without_close_frame_reports_1006_on_the_server() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx = std::sync::Arc::new(std::sync::Mutex::new(Some(tx)));
    let addr = server_with(Config::default(), move |mut ws| {
        let tx = tx.clone();
        async move {
            let mut last = None;
            while let Some(msg) = ws.recv().await {
                if let Ok(Message::Close(event)) = msg {
                    last = Some((event, ws.ready_state()));
                }
            }
            let _ = tx.lock().unwrap().take().unwrap().send(last);
        }
    })
    .await;
    let tcp = raw_client(&addr).await;
    drop(tcp);
    let (event, state) = timeout(Duration::from_secs(5), rx)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(event.code, CloseCode::ABNORMAL);
    assert!(!event.was_clean);
    assert_eq!(state, ReadyState::Closed);
}

#[tokio::test]
async fn client_sees_1006_when_the_server_drops_tcp() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let ws = sockeye::accept(tcp).await.unwrap();
        drop(ws);
    });
    let mut ws = sockeye::connect(&format!("ws://{addr}/")).await.unwrap();
    let mut close = None;
    while let Some(msg) = timeout(Duration::from_secs(5), ws.recv()).await.unwrap() {
        if let Ok(Message::Close(event)) = msg {
            close = Some(event);
        }
    }
    let close = close.expect("a close event");
    assert_eq!(close.code, CloseCode::ABNORMAL);
    assert!(!close.was_clean);
}

#[tokio::test]
async fn keepalive_detects_a_peer_that_stopped_answering() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        // Answer the handshake, then never read or write again, like a dead host.
        answer_handshake_by_hand(&mut tcp, &Negotiated::default())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    let mut config = Config::default();
    config.ping_interval = Some(Duration::from_millis(100));
    config.ping_timeout = Duration::from_millis(300);
    let request = sockeye::ClientRequest::new(&format!("ws://{addr}/")).unwrap();
    let mut ws = sockeye::connect_with(request, config).await.unwrap();
    let mut saw_timeout = false;
    let mut close = None;
    while let Some(msg) = timeout(Duration::from_secs(10), ws.recv()).await.unwrap() {
        match msg {
            Err(sockeye::Error::Timeout(_)) => saw_timeout = true,
            Ok(Message::Close(event)) => close = Some(event),
            _ => {}
        }
    }
    assert!(saw_timeout);
    assert_eq!(close.unwrap().code, CloseCode::ABNORMAL);
}

#[tokio::test]
async fn close_validates_code_and_reason_like_browsers() {
    let addr = echo_server(Config::default()).await;
    let mut ws = sockeye::connect(&format!("ws://{addr}/")).await.unwrap();
    for code in [999, 1001, 1005, 1006, 2999, 5000] {
        let err = ws.close(Some(code), "").await.unwrap_err();
        assert!(matches!(err, sockeye::Error::Usage(_)), "{code}: {err}");
    }
    let err = ws.close(Some(1000), &"x".repeat(124)).await.unwrap_err();
    assert!(matches!(err, sockeye::Error::Usage(_)));
    assert_eq!(ws.ready_state(), ReadyState::Open);
    ws.close(Some(4000), &"é".repeat(61)).await.unwrap();
    assert_eq!(ws.ready_state(), ReadyState::Closing);
    let mut close = None;
    while let Some(msg) = ws.recv().await {
        if let Ok(Message::Close(event)) = msg {
            close = Some(event);
        }
    }
    let close = close.unwrap();
    assert_eq!(close.code, CloseCode(4000));
    assert_eq!(close.reason, "é".repeat(61));
    assert!(close.was_clean);
    assert_eq!(ws.ready_state(), ReadyState::Closed);
}

#[tokio::test]
async fn server_sees_path_query_and_custom_headers_before_accepting() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let upgrade = sockeye::read_request(tcp, Config::default()).await.unwrap();
        let seen = (
            upgrade.request().uri().to_string(),
            upgrade.header("origin").map(str::to_owned),
            upgrade.header("authorization").map(str::to_owned),
            upgrade.offered_protocols(),
        );
        // The server's order of preference decides: wamp before soap.
        let chosen = ["wamp", "soap"]
            .into_iter()
            .find(|p| seen.3.iter().any(|o| o == p))
            .map(str::to_owned);
        let mut ws = upgrade.accept(chosen).await.unwrap();
        while ws.recv().await.is_some() {}
        seen
    });
    let request = sockeye::ClientRequest::new(&format!("ws://{addr}/room/7?token=abc"))
        .unwrap()
        .protocol("soap")
        .protocol("wamp")
        .header("Origin", "https://example.com")
        .header("Authorization", "Bearer xyz");
    let mut ws = sockeye::connect_with(request, Config::default())
        .await
        .unwrap();
    assert_eq!(ws.protocol(), Some("wamp"));
    assert_eq!(ws.ready_state(), ReadyState::Open);
    ws.close(None, "").await.unwrap();
    while ws.recv().await.is_some() {}
    let (uri, origin, auth, offered) = server.await.unwrap();
    assert_eq!(uri, "/room/7?token=abc");
    assert_eq!(origin.as_deref(), Some("https://example.com"));
    assert_eq!(auth.as_deref(), Some("Bearer xyz"));
    assert_eq!(offered, ["soap", "wamp"]);
}

#[tokio::test]
async fn client_refuses_a_subprotocol_it_did_not_offer() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut negotiated = Negotiated::default();
        negotiated.protocol = Some("mqtt".into());
        let _ = answer_handshake_by_hand(&mut tcp, &negotiated).await;
    });
    let request = sockeye::ClientRequest::new(&format!("ws://{addr}/"))
        .unwrap()
        .protocol("soap");
    let err = sockeye::connect_with(request, Config::default())
        .await
        .unwrap_err();
    assert!(matches!(err, sockeye::Error::Handshake(_)), "{err}");
}

#[tokio::test]
async fn split_halves_send_and_receive_from_different_tasks() {
    use futures_util::StreamExt;
    let addr = echo_server(Config::default()).await;
    let ws = sockeye::connect(&format!("ws://{addr}/")).await.unwrap();
    let (mut sink, mut stream) = ws.split();
    let writer = tokio::spawn(async move {
        for i in 0..100 {
            sink.send(Message::text(format!("m{i}"))).await.unwrap();
        }
        sink.send(Message::close(1000, "done")).await.unwrap();
    });
    let mut got = Vec::new();
    while let Some(msg) = stream.next().await {
        match msg.unwrap() {
            Message::Text(t) => got.push(t.to_string()),
            Message::Close(event) => {
                assert_eq!(event.code, CloseCode::NORMAL);
                assert_eq!(event.reason, "done");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    writer.await.unwrap();
    assert_eq!(got, (0..100).map(|i| format!("m{i}")).collect::<Vec<_>>());
}

#[tokio::test]
async fn compression_round_trips_with_our_own_client_and_server() {
    let addr = echo_server(Config::default()).await;
    let mut ws = sockeye::connect(&format!("ws://{addr}/")).await.unwrap();
    assert!(ws.extensions().starts_with("permessage-deflate"));
    let json = r#"{"symbol":"ACME","bid":101.25,"ask":101.5,"size":300}"#.repeat(20);
    for _ in 0..3 {
        ws.send(json.as_str()).await.unwrap();
        match ws.recv().await.unwrap().unwrap() {
            Message::Text(t) => assert_eq!(t, json.as_str()),
            other => panic!("{other:?}"),
        }
    }
    ws.close(Some(1000), "").await.unwrap();
    while ws.recv().await.is_some() {}
}

#[tokio::test]
async fn a_ping_flood_from_a_client_that_never_reads_is_dropped_after_the_write_timeout() {
    // Before, the server read everything and queued a pong for each ping (+44 MiB for 50 MB),
    // for as long as the client kept sending. Now the pongs that wait are bounded (the core's
    // `PONG_BACKLOG`) and the connection ends once they make no progress.
    let mut config = Config::default();
    config.write_timeout = Some(Duration::from_secs(1));
    let addr = echo_server(config).await;
    let mut tcp = raw_client(&addr).await;
    // 1 MiB of masked 125-byte pings at a time.
    let mut ping = vec![0x89, 0xfd, 1, 2, 3, 4];
    ping.extend(std::iter::repeat_n(0x55u8, 125));
    let burst: Vec<u8> = ping
        .iter()
        .copied()
        .cycle()
        .take(ping.len() * 8000)
        .collect();
    let started = std::time::Instant::now();
    let ended = loop {
        match timeout(Duration::from_secs(5), tcp.write_all(&burst)).await {
            Ok(Ok(())) if started.elapsed() < Duration::from_secs(20) => {}
            Ok(Ok(())) => break "still taking pings after 20 s".to_string(),
            Ok(Err(e)) => break e.kind().to_string(),
            Err(_) => break "a write blocked for 5 s without the connection ending".into(),
        }
    };
    assert!(
        ended.contains("reset") || ended.contains("pipe"),
        "{ended} after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_client_that_stops_reading_fails_a_blocked_send_after_the_write_timeout() {
    let mut config = Config::default().without_compression();
    config.write_timeout = Some(Duration::from_millis(500));
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx = std::sync::Arc::new(std::sync::Mutex::new(Some(tx)));
    let addr = server_with(config, move |mut ws| {
        let tx = tx.clone();
        async move {
            let chunk = sockeye::Bytes::from(vec![7u8; 64 << 10]);
            let started = std::time::Instant::now();
            let error = loop {
                if let Err(e) = ws.send(chunk.clone()).await {
                    break e;
                }
            };
            let _ = tx
                .lock()
                .unwrap()
                .take()
                .unwrap()
                .send((error, started.elapsed()));
        }
    })
    .await;
    let _tcp = raw_client(&addr).await;
    let (error, elapsed) = timeout(Duration::from_secs(10), rx)
        .await
        .expect("the blocked send never ended")
        .unwrap();
    assert!(
        matches!(error, sockeye::Error::Timeout(_)),
        "{error:?} after {elapsed:?}"
    );
}

#[tokio::test]
async fn a_message_over_the_limit_gets_its_1009_while_the_client_keeps_sending() {
    let addr = echo_server(Config::default().max_message_size(1000)).await;
    let mut tcp = raw_client(&addr).await;
    // A frame that claims 8 MiB, and then its payload, as a browser sends it.
    let mut frame = vec![0x82, 0xff];
    frame.extend_from_slice(&(8u64 << 20).to_be_bytes());
    frame.extend_from_slice(&[1, 2, 3, 4]);
    tcp.write_all(&frame).await.unwrap();
    let chunk = vec![0u8; 64 << 10];
    // The rest of the claimed payload: the server has failed the connection by now, and keeps
    // reading (and dropping) it, so the client meets no reset while it sends. Without a
    // lingering close the server's kernel answers the unread payload with a reset, and a client
    // that is still sending (a browser) loses the close frame and reports 1006.
    for i in 0..128 {
        let sent = timeout(Duration::from_secs(2), tcp.write_all(&chunk)).await;
        assert!(
            matches!(sent, Ok(Ok(()))),
            "chunk {i} of the payload: {sent:?}"
        );
    }
    assert_eq!(read_close_code(&mut tcp).await, 1009);
}

#[tokio::test]
async fn a_request_target_longer_than_the_head_limit_gets_414() {
    let addr = echo_server(Config::default()).await;
    let mut tcp = TcpStream::connect(&addr).await.unwrap();
    let request = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(100 << 10));
    let _ = tcp.write_all(request.as_bytes()).await;
    let resp = String::from_utf8_lossy(&read_to_end(&mut tcp).await).into_owned();
    assert!(resp.starts_with("HTTP/1.1 414 "), "{resp}");
}

#[tokio::test]
async fn an_unfinished_request_gets_408_when_the_handshake_times_out() {
    let mut config = Config::default();
    config.handshake_timeout = Duration::from_millis(300);
    let addr = echo_server(config).await;
    let mut tcp = TcpStream::connect(&addr).await.unwrap();
    tcp.write_all(b"GET /echo HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let resp = String::from_utf8_lossy(&read_to_end(&mut tcp).await).into_owned();
    assert!(resp.starts_with("HTTP/1.1 408 "), "{resp}");
    // A connection that sent nothing (a browser's preconnect) is closed without an answer.
    let mut idle = TcpStream::connect(&addr).await.unwrap();
    assert_eq!(read_to_end(&mut idle).await, b"");
}

#[tokio::test]
async fn a_431_reaches_a_client_that_is_still_sending_its_headers() {
    let addr = echo_server(Config::default()).await;
    let mut tcp = TcpStream::connect(&addr).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
    // 256 KiB of headers, far past the 16 KiB limit, all sent before reading: the server
    // answers early and must keep reading (and dropping) the rest, or the reset its kernel
    // sends for unread data breaks the client's writes and can destroy the answer.
    let line = format!("X-Filler: {}\r\n", "a".repeat(1000));
    for i in 0..256 {
        let sent = timeout(Duration::from_secs(2), tcp.write_all(line.as_bytes())).await;
        assert!(matches!(sent, Ok(Ok(()))), "header {i}: {sent:?}");
    }
    let resp = String::from_utf8_lossy(&read_to_end(&mut tcp).await).into_owned();
    assert!(resp.starts_with("HTTP/1.1 431 "), "{resp}");
}

#[tokio::test]
async fn split_halves_both_waiting_to_write_are_both_woken() {
    // A server that reads in bursts, so that the client's writes keep having to wait.
    let addr = server_with(
        Config::default().without_compression(),
        |mut ws| async move {
            let mut n = 0;
            while let Some(Ok(_)) = ws.recv().await {
                n += 1;
                if n % 8 == 0 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        },
    )
    .await;
    let mut config = Config::default().without_compression();
    // Without the write timeout a lost wake-up would hang for ever; the test's own
    // timeout then reports it.
    config.write_timeout = None;
    let request = sockeye::ClientRequest::new(&format!("ws://{addr}/")).unwrap();
    let ws = sockeye::connect_with(request, config).await.unwrap();
    let (mut sink, mut stream) = ws.split();
    // The reading half is polled all along, and drives the writes too.
    tokio::spawn(async move {
        use futures_util::StreamExt;
        while let Some(Ok(_)) = stream.next().await {}
    });
    let chunk = sockeye::Bytes::from(vec![1u8; 256 << 10]);
    let sent = timeout(Duration::from_secs(20), async {
        for _ in 0..200 {
            sink.send(Message::Binary(chunk.clone())).await.unwrap();
        }
    })
    .await;
    assert!(sent.is_ok(), "the sending half was never woken");
}

#[tokio::test]
async fn message_stats_count_each_kind_both_ways_whatever_way_it_was_sent() {
    use sockeye::proto::{DataKind, PreparedMessage};
    let addr = echo_server(Config::default()).await;
    let mut ws = sockeye::connect(&format!("ws://{addr}/")).await.unwrap();
    ws.send("hello").await.unwrap();
    ws.send_prepared(&PreparedMessage::binary(vec![0u8; 3]))
        .await
        .unwrap();
    ws.send_fragment(Some(DataKind::Text), b"ab", false)
        .await
        .unwrap();
    ws.send_fragment(None, b"cd", true).await.unwrap();
    for _ in 0..3 {
        timeout(Duration::from_secs(5), ws.recv())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
    let stats = ws.message_stats();
    for counts in [stats.sent, stats.received] {
        assert_eq!(
            (
                counts.text,
                counts.text_bytes,
                counts.binary,
                counts.binary_bytes
            ),
            (2, 9, 1, 3)
        );
    }
}
