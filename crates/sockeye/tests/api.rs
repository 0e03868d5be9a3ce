//! What users of other WebSocket libraries ask for, over real loopback sockets: errors that
//! say whose fault they are, the round-trip time of pings, pongs for applications that want
//! them, split halves that keep the whole socket's abilities, and a `recv` that can be
//! dropped without losing a message.

use std::io;
use std::time::Duration;

use sockeye::proto::handshake::{self, Negotiated};
use sockeye::proto::CloseCode;
use sockeye::{Bytes, ClientRequest, Config, Message, ReadyState};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

const SECOND: Duration = Duration::from_secs(1);

/// Starts a Sockeye server that runs `each` on every accepted socket.
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

async fn echo_server() -> String {
    server_with(Config::default(), |mut ws| async move {
        while let Some(Ok(msg)) = ws.recv().await {
            if matches!(msg, Message::Text(_) | Message::Binary(_)) {
                let _ = ws.send(msg).await;
            }
        }
    })
    .await
}

/// A server that is not Sockeye's: it answers one handshake by hand and gives the raw TCP
/// stream to `then`, so a test can send what it likes or drop the connection.
async fn raw_server<F, Fut>(then: F) -> String
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = tcp.read(&mut buf).await.unwrap();
        let req = handshake::parse_request(&buf[..n], 8192)
            .unwrap()
            .unwrap()
            .0;
        let offer = handshake::validate_request(&req).unwrap();
        let resp = handshake::accept_response(&offer, &Negotiated::default());
        tcp.write_all(&handshake::write_response(&resp, b""))
            .await
            .unwrap();
        then(tcp).await;
    });
    addr.to_string()
}

async fn connect(addr: &str, config: Config) -> sockeye::WebSocket<sockeye::MaybeTlsStream> {
    let request = ClientRequest::new(&format!("ws://{addr}/"))
        .unwrap()
        .no_proxy();
    sockeye::connect_with(request, config.without_compression())
        .await
        .unwrap()
}

async fn next(ws: &mut sockeye::WebSocket<sockeye::MaybeTlsStream>) -> Message {
    timeout(5 * SECOND, ws.recv())
        .await
        .expect("a message within 5 s")
        .expect("the stream has not ended")
        .expect("no error")
}

#[tokio::test]
async fn latency_is_the_round_trip_of_the_last_answered_ping() {
    let addr = echo_server().await;
    let mut ws = connect(&addr, Config::default().receive_pongs(true)).await;
    assert_eq!(ws.latency(), None, "no ping answered yet");
    let started = std::time::Instant::now();
    ws.ping(b"rtt").await.unwrap();
    assert_eq!(
        next(&mut ws).await,
        Message::Pong(Bytes::from_static(b"rtt"))
    );
    let latency = ws.latency().expect("the pong timed the ping");
    assert!(latency <= started.elapsed(), "{latency:?}");
    // A pong nobody asked for (RFC 6455 §5.5.3) does not change the figure.
    ws.send(Message::Pong(Bytes::from_static(b"unasked")))
        .await
        .unwrap();
    ws.send("after").await.unwrap();
    assert_eq!(next(&mut ws).await, Message::text("after"));
    assert_eq!(ws.latency(), Some(latency));
}

#[tokio::test]
async fn keepalive_pings_measure_latency_without_the_application_pinging() {
    let addr = echo_server().await;
    let config = Config::default().ping_interval(Some(Duration::from_millis(50)));
    let mut ws = connect(&addr, config).await;
    // Reading is what runs keepalive; nothing arrives, so the read times out.
    let _ = timeout(Duration::from_millis(400), ws.recv()).await;
    assert!(ws.latency().is_some(), "keepalive ran for 400 ms");
}

#[tokio::test]
async fn pongs_reach_the_application_only_when_it_asks_for_them() {
    let addr = echo_server().await;
    let mut quiet = connect(&addr, Config::default()).await;
    quiet.ping(b"p").await.unwrap();
    quiet.send("text").await.unwrap();
    assert_eq!(next(&mut quiet).await, Message::text("text"));
    assert!(
        quiet.latency().is_some(),
        "the pong was consumed, and timed"
    );

    let mut asking = connect(&addr, Config::default().receive_pongs(true)).await;
    asking.ping(b"p").await.unwrap();
    asking.send("text").await.unwrap();
    assert_eq!(
        next(&mut asking).await,
        Message::Pong(Bytes::from_static(b"p"))
    );
    assert_eq!(next(&mut asking).await, Message::text("text"));
}

#[tokio::test]
async fn rfc6455_5_5_2_pings_reach_the_application_when_it_answers_them_itself() {
    let (seen_tx, seen_rx) = tokio::sync::oneshot::channel();
    let seen_tx = std::sync::Arc::new(std::sync::Mutex::new(Some(seen_tx)));
    let mut config = Config::default();
    config.protocol.auto_pong = false;
    let addr = server_with(config, move |mut ws| {
        let seen_tx = seen_tx.clone();
        async move {
            while let Some(Ok(msg)) = ws.recv().await {
                if let Message::Ping(payload) = msg {
                    let _ = ws.send(Message::Pong(payload.clone())).await;
                    if let Some(tx) = seen_tx.lock().unwrap().take() {
                        let _ = tx.send(payload);
                    }
                }
            }
        }
    })
    .await;
    let mut ws = connect(&addr, Config::default().receive_pongs(true)).await;
    ws.ping(b"by hand").await.unwrap();
    assert_eq!(
        next(&mut ws).await,
        Message::Pong(Bytes::from_static(b"by hand"))
    );
    assert_eq!(
        timeout(5 * SECOND, seen_rx).await.unwrap().unwrap(),
        "by hand"
    );
}

#[tokio::test]
async fn split_halves_keep_buffered_amount_ping_latency_and_close() {
    let addr = echo_server().await;
    let ws = connect(&addr, Config::default().receive_pongs(true)).await;
    let (mut writer, mut reader) = ws.split();
    assert_eq!(writer.ready_state(), ReadyState::Open);
    let reading = tokio::spawn(async move {
        let mut got = Vec::new();
        while let Some(msg) = timeout(5 * SECOND, reader.recv()).await.unwrap() {
            got.push(msg.unwrap());
        }
        (reader, got)
    });
    writer.send("one").await.unwrap();
    assert_eq!(writer.buffered_amount(), 0, "flushed by send");
    writer.ping(b"half").await.unwrap();
    writer.send("two").await.unwrap();
    writer.close(Some(4000), "done").await.unwrap();
    assert_eq!(writer.ready_state(), ReadyState::Closing);
    let (reader, got) = reading.await.unwrap();
    assert_eq!(
        got[..3],
        [
            Message::text("one"),
            Message::Pong(Bytes::from_static(b"half")),
            Message::text("two")
        ]
    );
    let Message::Close(event) = &got[3] else {
        panic!("{got:?}")
    };
    assert_eq!(
        (event.code, event.reason.as_str(), event.was_clean),
        (CloseCode(4000), "done", true)
    );
    assert!(reader.latency().is_some());
    assert_eq!(reader.ready_state(), ReadyState::Closed);
    let ws = reader.reunite(writer).expect("halves of one socket");
    assert_eq!(ws.ready_state(), ReadyState::Closed);
}

#[tokio::test]
async fn halves_of_two_sockets_are_not_reunited() {
    let addr = echo_server().await;
    let (writer_a, _reader_a) = connect(&addr, Config::default()).await.split();
    let (_writer_b, reader_b) = connect(&addr, Config::default()).await.split();
    let err = reader_b.reunite(writer_a).unwrap_err();
    assert_eq!(err.to_string(), "the halves come from different WebSockets");
}

#[tokio::test]
async fn a_send_on_a_connection_the_network_broke_reports_the_io_cause_every_time() {
    let addr = raw_server(|tcp| async move {
        // Reset, not a close: linger 0 makes dropping the socket send RST.
        tcp.set_zero_linger().unwrap();
        drop(tcp);
    })
    .await;
    let mut ws = connect(&addr, Config::default()).await;
    let payload = Bytes::from(vec![0u8; 16 << 10]);
    let first = timeout(5 * SECOND, async {
        loop {
            if let Err(e) = ws.send(Message::Binary(payload.clone())).await {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("a send fails once the reset arrives");
    let broken = [io::ErrorKind::ConnectionReset, io::ErrorKind::BrokenPipe];
    assert!(first.is_io(), "{first:?}");
    let kind = first.io_error().unwrap().kind();
    assert!(broken.contains(&kind), "{first:?}");
    assert!(!first.is_closed() && !first.is_protocol() && !first.is_usage());
    let again = ws.send("later").await.unwrap_err();
    assert_eq!(
        again.io_error().map(io::Error::kind),
        Some(kind),
        "{again:?}"
    );
}

#[tokio::test]
async fn error_predicates_tell_the_peer_the_caller_and_the_clock_apart() {
    // The peer's fault: a frame with RSV2 set, no extension having defined it (§5.2).
    let addr = raw_server(|mut tcp| async move {
        tcp.write_all(&[0xa1, 0x01, b'x']).await.unwrap();
        let mut rest = Vec::new();
        let _ = timeout(5 * SECOND, tcp.read_to_end(&mut rest)).await;
    })
    .await;
    let mut ws = connect(&addr, Config::default()).await;
    let err = timeout(5 * SECOND, ws.recv())
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(err.is_protocol(), "{err:?}");
    assert_eq!(err.close_code(), Some(CloseCode::PROTOCOL_ERROR));
    assert!(!err.is_io() && !err.is_usage() && !err.is_timeout());

    // The caller's: a close code browsers refuse, then a send after closing.
    let addr = echo_server().await;
    let mut ws = connect(&addr, Config::default()).await;
    let err = ws.close(Some(1005), "").await.unwrap_err();
    assert!(err.is_usage() && !err.is_closed(), "{err:?}");
    ws.close(Some(1000), "").await.unwrap();
    let err = ws.send("too late").await.unwrap_err();
    assert!(err.is_closed() && err.is_usage(), "{err:?}");

    // The clock's: a server that never answers the handshake.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let held = tokio::spawn(async move { silent.accept().await });
    let request = ClientRequest::new(&format!("ws://{silent_addr}/"))
        .unwrap()
        .no_proxy();
    let config = Config::default().handshake_timeout(Duration::from_millis(200));
    let err = sockeye::connect_with(request, config).await.unwrap_err();
    assert!(err.is_timeout() && !err.is_io(), "{err:?}");
    held.abort();
}

#[tokio::test]
async fn a_refused_handshake_is_a_handshake_error_with_the_status_headers_and_body() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(sockeye::serve(
        listener,
        Config::default(),
        |mut upgrade, _| async move {
            upgrade.response_headers_mut().insert(
                sockeye::http::header::WWW_AUTHENTICATE,
                sockeye::http::HeaderValue::from_static("Bearer realm=\"demo\""),
            );
            let _ = upgrade
                .reject(sockeye::http::StatusCode::UNAUTHORIZED, "not you")
                .await;
        },
    ));
    let request = ClientRequest::new(&format!("ws://{addr}/"))
        .unwrap()
        .no_proxy();
    let err = sockeye::connect_with(request, Config::default())
        .await
        .unwrap_err();
    assert!(err.is_handshake(), "{err:?}");
    let response = err.rejection().expect("the server's answer");
    assert_eq!(response.status().as_u16(), 401);
    assert_eq!(
        response.headers()[sockeye::http::header::WWW_AUTHENTICATE],
        "Bearer realm=\"demo\""
    );
    assert_eq!(&response.body()[..], b"not you");
}

#[tokio::test]
async fn cancel_safety_a_recv_dropped_mid_message_loses_nothing() {
    let (rest_tx, rest_rx) = tokio::sync::oneshot::channel::<()>();
    let addr = raw_server(|mut tcp| async move {
        // "hello" in one text frame, cut in two.
        tcp.write_all(&[0x81, 0x05, b'h', b'e']).await.unwrap();
        rest_rx.await.unwrap();
        tcp.write_all(b"llo").await.unwrap();
        let mut rest = Vec::new();
        let _ = timeout(5 * SECOND, tcp.read_to_end(&mut rest)).await;
    })
    .await;
    let ws = connect(&addr, Config::default()).await;
    let (_writer, mut reader) = ws.split();
    // The first half arrives and is taken in; the receive is dropped before the rest.
    assert!(timeout(Duration::from_millis(200), reader.recv())
        .await
        .is_err());
    rest_tx.send(()).unwrap();
    let msg = timeout(5 * SECOND, reader.recv()).await.unwrap().unwrap();
    assert_eq!(msg.unwrap(), Message::text("hello"));
}
