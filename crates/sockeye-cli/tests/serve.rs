//! `sockeye serve` as a user starts it: the real binary on an ephemeral port.

mod common;

use std::time::Duration;

use common::http_get;
use sockeye::proto::CloseCode;
use sockeye::{ClientRequest, Config, Message};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::time::timeout;

async fn start(extra: &[&str]) -> (Child, String) {
    common::start_on_loopback(extra).await
}

async fn next(ws: &mut sockeye::WebSocket<sockeye::MaybeTlsStream>) -> Message {
    timeout(Duration::from_secs(10), ws.recv())
        .await
        .expect("nothing within 10 s")
        .expect("stream ended")
        .expect("error")
}

/// Polls `/metrics` until it shows `line`: the server counts a connection when its task ends,
/// just after the client has seen the close. Gives up after 2.5 s and returns what it last read.
async fn metrics_once_they_show(addr: &str, line: &str) -> String {
    let mut text = String::new();
    for _ in 0..50 {
        text = http_get(addr, "/metrics", "").await;
        if text.contains(line) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    text
}

/// A WebSocket to `/wamp` that agreed on WAMP over JSON.
async fn wamp_json(addr: &str) -> sockeye::WebSocket<sockeye::MaybeTlsStream> {
    let request = ClientRequest::new(&format!("ws://{addr}/wamp"))
        .unwrap()
        .protocol("wamp.2.json");
    let ws = sockeye::connect_with(request, Config::default())
        .await
        .unwrap();
    assert_eq!(ws.protocol(), Some("wamp.2.json"));
    ws
}

/// SIGTERM, the signal that starts a graceful shutdown.
fn terminate(server: &Child) {
    let pid = server.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for the server to end its graceful shutdown, which must succeed.
async fn exits_0(mut server: Child) {
    let status = timeout(Duration::from_secs(15), server.wait())
        .await
        .expect("server did not exit")
        .unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn echo_agrees_to_the_first_offered_subprotocol_and_echoes_close() {
    let (_server, addr) = start(&[]).await;
    let request = ClientRequest::new(&format!("ws://{addr}/echo"))
        .unwrap()
        .protocol("soap")
        .protocol("wamp");
    let mut ws = sockeye::connect_with(request, Config::default())
        .await
        .unwrap();
    assert_eq!(ws.protocol(), Some("soap"));
    assert!(ws.extensions().starts_with("permessage-deflate"));
    ws.send("hi").await.unwrap();
    assert_eq!(next(&mut ws).await, Message::text("hi"));
    ws.send(vec![0u8, 1, 2]).await.unwrap();
    assert_eq!(next(&mut ws).await, Message::binary(vec![0u8, 1, 2]));
    ws.close(Some(1000), "Work complete").await.unwrap();
    match next(&mut ws).await {
        Message::Close(event) => {
            assert_eq!(event.code, CloseCode::NORMAL);
            assert_eq!(event.reason, "Work complete");
            assert!(event.was_clean);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn hello_greets_by_name_and_says_bye_five_seconds_later() {
    let (_server, addr) = start(&[]).await;
    let mut ws = sockeye::connect(&format!("ws://{addr}/hello"))
        .await
        .unwrap();
    ws.send("My name is John").await.unwrap();
    assert_eq!(
        next(&mut ws).await,
        Message::text("Hello from server, John!")
    );
    let started = tokio::time::Instant::now();
    match next(&mut ws).await {
        Message::Close(event) => {
            assert_eq!(
                (event.code, event.reason.as_str()),
                (CloseCode::NORMAL, "Bye!")
            );
            assert!(event.was_clean);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "closed too early"
    );
}

#[tokio::test]
async fn chat_relays_text_to_every_member_from_the_moment_it_is_open() {
    let (_server, addr) = start(&[]).await;
    let url = format!("ws://{addr}/chat");
    let mut members = Vec::new();
    for _ in 0..20 {
        members.push(sockeye::connect(&url).await.unwrap());
    }
    // No pause: a member is in the room once its handshake completed.
    let long = format!("bob: {}", "ä".repeat(40_000));
    members[0].send("alice: hi all").await.unwrap();
    members[0].send(long.as_str()).await.unwrap();
    for member in &mut members {
        assert_eq!(next(member).await, Message::text("alice: hi all"));
        assert_eq!(next(member).await, Message::text(long.as_str()));
    }
}

#[tokio::test]
async fn root_serves_the_demo_page_and_unknown_paths_404() {
    let (_server, addr) = start(&[]).await;
    let page = http_get(&addr, "/", "").await;
    assert!(page.starts_with("HTTP/1.1 200 OK"), "{page}");
    assert!(page.contains("text/html"));
    assert!(page.contains("new WebSocket("));
    let missing = http_get(&addr, "/nope", "").await;
    assert!(missing.starts_with("HTTP/1.1 404 "), "{missing}");
}

#[tokio::test]
async fn allow_origin_refuses_other_origins_with_403() {
    let (_server, addr) = start(&["--allow-origin", "https://good.example"]).await;
    let good = ClientRequest::new(&format!("ws://{addr}/echo"))
        .unwrap()
        .header("Origin", "https://good.example");
    assert!(sockeye::connect_with(good, Config::default()).await.is_ok());
    let bad = ClientRequest::new(&format!("ws://{addr}/echo"))
        .unwrap()
        .header("Origin", "https://evil.example");
    let err = sockeye::connect_with(bad, Config::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_sends_1001_to_a_thousand_clients_and_exits_0() {
    let (server, addr) = start(&["--shutdown-timeout", "10"]).await;
    let url = format!("ws://{addr}/echo");
    let mut clients = Vec::new();
    for _ in 0..1000 {
        let request = ClientRequest::new(&url).unwrap();
        clients.push(
            sockeye::connect_with(request, Config::default().without_compression())
                .await
                .unwrap(),
        );
    }
    terminate(&server);
    let mut tasks = Vec::new();
    for mut ws in clients {
        tasks.push(tokio::spawn(async move {
            loop {
                match timeout(Duration::from_secs(20), ws.recv()).await {
                    Ok(Some(Ok(Message::Close(event)))) => return Some(event),
                    Ok(Some(_)) => continue,
                    _ => return None,
                }
            }
        }));
    }
    let mut going_away = 0;
    for task in tasks {
        let event = task.await.unwrap().expect("a close event");
        assert!(event.was_clean, "{event:?}");
        assert_eq!(event.code, CloseCode::GOING_AWAY);
        assert_eq!(event.reason, "Going Away");
        going_away += 1;
    }
    assert_eq!(going_away, 1000);
    exits_0(server).await;
}

#[tokio::test]
async fn metrics_count_handshakes_messages_and_closes() {
    let (_server, addr) = start(&["--allow-origin", "https://good.example"]).await;
    let mut ws = sockeye::connect(&format!("ws://{addr}/echo"))
        .await
        .unwrap();
    ws.send("12345").await.unwrap();
    assert_eq!(next(&mut ws).await, Message::text("12345"));
    ws.close(Some(4001), "").await.unwrap();
    while ws.recv().await.is_some() {}
    let bad = ClientRequest::new(&format!("ws://{addr}/echo"))
        .unwrap()
        .header("Origin", "https://evil.example");
    assert!(sockeye::connect_with(bad, Config::default()).await.is_err());
    let text = metrics_once_they_show(&addr, "sockeye_closes_total{code=\"4001\"} 1").await;
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    for line in [
        "sockeye_handshakes_accepted_total{http_version=\"1.1\"} 1\n",
        "sockeye_handshakes_accepted_total{http_version=\"2\"} 0\n",
        "sockeye_handshakes_refused_total{reason=\"origin\"} 1\n",
        "sockeye_messages_received_total{type=\"text\"} 1\n",
        "sockeye_bytes_received_total{type=\"text\"} 5\n",
        "sockeye_messages_sent_total{type=\"text\"} 1\n",
        "sockeye_closes_total{code=\"4001\"} 1\n",
        "sockeye_connections_open 0\n",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}

#[tokio::test]
async fn connection_limit_refuses_with_503() {
    let (_server, addr) = start(&["--max-connections", "2"]).await;
    let url = format!("ws://{addr}/echo");
    let _a = sockeye::connect(&url).await.unwrap();
    let _b = sockeye::connect(&url).await.unwrap();
    let err = sockeye::connect(&url).await.unwrap_err();
    assert!(err.to_string().contains("503"), "{err}");
}

fn write_config(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sockeye-config-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sockeye.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `sockeye serve` reading its configuration from a file holding `text`.
async fn start_with_config(name: &str, text: &str) -> (Child, String) {
    let path = write_config(name, text);
    start(&["--config", path.to_str().unwrap()]).await
}

#[tokio::test]
async fn config_file_sets_compression_and_endpoints() {
    let (_server, addr) = start_with_config(
        "ok",
        "[compression]\nenabled = false\n[endpoints]\nchat = false\n",
    )
    .await;
    let mut ws = sockeye::connect(&format!("ws://{addr}/echo"))
        .await
        .unwrap();
    assert_eq!(ws.extensions(), "", "compression was disabled by the file");
    ws.send("x").await.unwrap();
    assert_eq!(next(&mut ws).await, Message::text("x"));
    let err = sockeye::connect(&format!("ws://{addr}/chat"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
}

#[tokio::test]
async fn config_file_realms_roles_and_users_govern_wamp() {
    use sockeye_wamp::client::{Client, ClientError, Credentials};
    use sockeye_wamp::{Dict, Payload, Serializer};
    let (_server, addr) = start_with_config(
        "wamp",
        r#"
[[wamp.realm]]
name = "shop"
anonymous = false
[[wamp.realm.role]]
name = "staff"
[[wamp.realm.role.permission]]
uri = "com.shop."
match = "prefix"
allow = ["register", "call"]
[[wamp.realm.user]]
authid = "clerk"
role = "staff"
ticket = "counter"
"#,
    )
    .await;
    let url = format!("ws://{addr}/wamp");
    // Anonymous sessions are refused in "shop".
    let refused = Client::connect(&url, "shop", Serializer::Json).await;
    assert!(
        matches!(&refused, Err(ClientError::Aborted { reason, .. }) if reason == "wamp.error.no_auth_method"),
        "{:?}",
        refused.err()
    );
    let clerk = Credentials::Ticket {
        authid: "clerk".into(),
        ticket: "counter".into(),
    };
    let c = Client::connect_with(&url, "shop", Serializer::Json, &clerk)
        .await
        .unwrap();
    assert_eq!(c.welcome().get_str("authrole"), Some("staff"));
    // Its role allows calls under com.shop. only.
    let err = c
        .call("com.elsewhere.x", Payload::Empty, Dict::new())
        .await
        .unwrap_err();
    assert_eq!(err.error_uri(), Some("wamp.error.not_authorized"));
    let err = c
        .call("com.shop.x", Payload::Empty, Dict::new())
        .await
        .unwrap_err();
    assert_eq!(err.error_uri(), Some("wamp.error.no_such_procedure"));
    // realm1 stays anonymous with every permission.
    let anon = Client::connect(&url, "realm1", Serializer::Json)
        .await
        .unwrap();
    anon.register("com.elsewhere.x", Dict::new()).await.unwrap();
}

#[tokio::test]
async fn config_file_with_an_unknown_key_is_a_clear_error_at_start() {
    let path = write_config("bad", "listne = [\"127.0.0.1:1\"]\n");
    let out = Command::new(env!("CARGO_BIN_EXE_sockeye"))
        .args(["serve", "--config", path.to_str().unwrap()])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("listne"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("LISTENING"));
}

#[tokio::test]
async fn metrics_report_the_compression_ratio() {
    let (_server, addr) = start(&[]).await;
    let mut ws = sockeye::connect(&format!("ws://{addr}/echo"))
        .await
        .unwrap();
    let tick = r#"{"symbol":"ACME","bid":101.25,"ask":101.5,"size":300}"#.repeat(20);
    ws.send(tick.as_str()).await.unwrap();
    assert_eq!(next(&mut ws).await.as_text(), Some(tick.as_str()));
    ws.close(Some(1000), "").await.unwrap();
    while ws.recv().await.is_some() {}
    let text = metrics_once_they_show(&addr, "sockeye_deflate_ratio{direction=\"sent\"}").await;
    let ratio: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("sockeye_deflate_ratio{direction=\"sent\"} "))
        .unwrap_or_else(|| panic!("no ratio in\n{text}"))
        .parse()
        .unwrap();
    assert!(ratio > 0.0 && ratio < 0.5, "ratio {ratio}");
    let raw = format!(
        "sockeye_deflate_bytes_total{{direction=\"received\",stage=\"raw\"}} {}\n",
        tick.len()
    );
    assert!(text.contains(&raw), "missing {raw:?} in\n{text}");
}

#[tokio::test]
async fn graceful_shutdown_closes_wamp_sessions_with_1001_too() {
    let (server, addr) = start(&[]).await;
    let mut ws = wamp_json(&addr).await;
    terminate(&server);
    let event = loop {
        match next(&mut ws).await {
            Message::Close(event) => break event,
            _ => continue,
        }
    };
    assert_eq!(event.code, CloseCode::GOING_AWAY);
    assert!(event.was_clean);
    exits_0(server).await;
}

#[tokio::test]
async fn graceful_shutdown_says_wamp_goodbye_before_closing_with_1001() {
    let (server, addr) = start(&[]).await;
    let mut ws = wamp_json(&addr).await;
    ws.send(r#"[1,"realm1",{"roles":{"caller":{}}}]"#)
        .await
        .unwrap();
    assert!(matches!(next(&mut ws).await, Message::Text(t) if t.as_str().starts_with("[2,")));
    terminate(&server);
    let Message::Text(goodbye) = next(&mut ws).await else {
        panic!("no GOODBYE first")
    };
    assert!(
        goodbye.as_str().starts_with("[6,")
            && goodbye
                .as_str()
                .ends_with(r#""wamp.close.system_shutdown"]"#),
        "{goodbye:?}"
    );
    ws.send(r#"[6,{},"wamp.close.goodbye_and_out"]"#)
        .await
        .unwrap();
    let Message::Close(event) = next(&mut ws).await else {
        panic!("no close after GOODBYE")
    };
    assert_eq!(event.code, CloseCode::GOING_AWAY);
    assert!(event.was_clean);
    exits_0(server).await;
}

#[tokio::test]
async fn handshake_timeout_flag_cuts_off_a_silent_client() {
    let (_server, addr) = start(&["--handshake-timeout", "1"]).await;
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tcp.write_all(b"GET /echo HTTP/1.1\r\n").await.unwrap();
    let mut buf = Vec::new();
    let closed = timeout(Duration::from_secs(5), tcp.read_to_end(&mut buf)).await;
    assert!(
        closed.is_ok(),
        "the server kept a silent handshake open past its timeout"
    );
}

/// A client offering what Chromium offers: `permessage-deflate; client_max_window_bits`.
async fn connect_like_chromium(addr: &str) -> sockeye::WebSocket<sockeye::MaybeTlsStream> {
    let request = ClientRequest::new(&format!("ws://{addr}/echo")).unwrap();
    let config = Config::default().compression(sockeye::CompressionPolicy::Max);
    sockeye::connect_with(request, config).await.unwrap()
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn compression_policy_from_the_flag_or_the_file_decides_what_is_negotiated_and_held() {
    let tick = r#"{"type":"tick","symbol":"SCKY","bid":101.25,"ask":101.27,"last":101.26}"#;
    let max_file = write_config("policy-max", "[compression]\npolicy = \"max\"\n");
    let max_file = max_file.to_str().unwrap();
    for (args, response, held) in [
        (
            vec!["--compression", "fast"],
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
            Some(0),
        ),
        (
            vec![],
            "permessage-deflate; client_no_context_takeover",
            Some(tick.len() as u64),
        ),
        (vec!["--config", max_file], "permessage-deflate", None),
        (
            vec!["--config", max_file, "--compression", "balanced"],
            "permessage-deflate; client_no_context_takeover",
            Some(tick.len() as u64),
        ),
    ] {
        let (_server, addr) = start(&args).await;
        let mut ws = connect_like_chromium(&addr).await;
        assert_eq!(ws.extensions(), response, "{args:?}");
        ws.send(tick).await.unwrap();
        assert_eq!(next(&mut ws).await.as_text(), Some(tick));
        // Idle now: what the server's connection holds between messages. The client is
        // another process, so these are the server's alone.
        let text = metrics_once_they_show(&addr, "sockeye_deflate_state_bytes").await;
        let bytes = metric(&text, "sockeye_deflate_state_bytes{holder=\"connections\"}");
        let holding = metric(&text, "sockeye_deflate_connections_holding_state");
        match held {
            Some(expected) => assert_eq!(bytes, expected, "{args:?}"),
            // A compressor and a decompressor of its own.
            None => assert!(bytes > 400_000, "{args:?}: {bytes}"),
        }
        assert_eq!(holding, u64::from(bytes > 0), "{args:?}");
    }
}

/// A raw WebSocket to `/echo` that will never read: the handshake is read byte by byte, so
/// nothing the server sends after it is taken off the socket.
async fn raw_echo_client(addr: &str) -> tokio::net::TcpStream {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(
        b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(tcp.read_u8().await.unwrap());
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));
    tcp
}

#[tokio::test]
async fn write_timeout_from_the_flag_or_the_file_drops_an_echo_client_that_stopped_reading() {
    let config = write_config("write-timeout", "write_timeout = 1\n");
    for args in [
        vec!["--write-timeout", "1"],
        vec!["--config", config.to_str().unwrap()],
    ] {
        let (_server, addr) = start(&args).await;
        let mut tcp = raw_echo_client(&addr).await;
        // Binary messages of 64 KiB, masked with a zero key, echoed back and never read.
        let mut frame = vec![0x82, 0xff];
        frame.extend_from_slice(&(64u64 << 10).to_be_bytes());
        frame.extend_from_slice(&[0; 4]);
        frame.extend(std::iter::repeat_n(7u8, 64 << 10));
        let started = std::time::Instant::now();
        let ended = loop {
            match timeout(Duration::from_secs(5), tcp.write_all(&frame)).await {
                Ok(Ok(())) if started.elapsed() < Duration::from_secs(20) => {}
                Ok(Ok(())) => break "still echoing after 20 s".to_string(),
                Ok(Err(e)) => break e.kind().to_string(),
                Err(_) => break "a write blocked for 5 s and the connection lived on".into(),
            }
        };
        assert!(
            ended.contains("reset") || ended.contains("pipe"),
            "{args:?}: {ended} after {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn ping_timeout_flag_drops_a_peer_that_never_answers_pings() {
    let (_server, addr) = start(&["--ping-interval", "1", "--ping-timeout", "1"]).await;
    let mut tcp = raw_echo_client(&addr).await;
    let started = std::time::Instant::now();
    // The client never reads, so the server's pings go unanswered.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut rest = Vec::new();
    let closed = timeout(Duration::from_secs(10), async {
        // Reading now would answer nothing: pongs are for the client to send.
        tcp.read_to_end(&mut rest).await
    })
    .await;
    assert!(closed.is_ok(), "still open after 10 s");
    // One interval, one timeout (and the default would be 30 + 20 s).
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn config_file_limits_reach_the_wamp_router() {
    use sockeye_wamp::client::{Client, ClientError};
    use sockeye_wamp::{Dict, Payload, Serializer};
    let (_server, addr) = start_with_config(
        "wamp-limits",
        "[wamp]\nmax_auto_realms = 1\nmax_retained_events = 1\n",
    )
    .await;
    let url = format!("ws://{addr}/wamp");
    let first = Client::connect(&url, "com.example.one", Serializer::Json)
        .await
        .unwrap();
    let refused = Client::connect(&url, "com.example.two", Serializer::Json).await;
    assert!(
        matches!(&refused, Err(ClientError::Aborted { reason, .. }) if reason == "wamp.error.no_such_realm"),
        "{:?}",
        refused.err()
    );
    for topic in ["com.example.a", "com.example.b"] {
        first
            .publish(
                topic,
                Payload::Args(vec![topic.into()]),
                Dict::new().with("retain", true).with("acknowledge", true),
            )
            .await
            .unwrap();
    }
    let mut all = first
        .subscribe(
            "com.example.",
            Dict::new()
                .with("match", "prefix")
                .with("get_retained", true),
        )
        .await
        .unwrap();
    let kept = timeout(Duration::from_secs(5), all.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.payload.args(), &["com.example.b".into()]);
    // Retained events follow SUBSCRIBED at once; give a second one time to show up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        all.try_next().is_none(),
        "more than one retained event kept"
    );
}

#[tokio::test]
async fn chat_closes_a_member_too_slow_for_the_backlog_with_1013_and_the_others_lose_nothing() {
    let (_server, addr) = start(&[]).await;
    let url = format!("ws://{addr}/chat");
    let plain = || async {
        let request = ClientRequest::new(&url).unwrap();
        sockeye::connect_with(request, Config::default().without_compression())
            .await
            .unwrap()
    };
    // A member that does not read: the server's kernel holds about 4 MiB for it, its write
    // buffer 128 KiB, so 3,000 messages of 4 KiB put it more than the backlog (1,024) behind.
    const COUNT: usize = 3000;
    let mut fast = plain().await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(8 << 10).unwrap();
    let tcp = socket.connect(addr.parse().unwrap()).await.unwrap();
    let mut stuck = sockeye::client_handshake(
        tcp,
        &ClientRequest::new(&url).unwrap(),
        Config::default().without_compression(),
    )
    .await
    .unwrap();
    // The publisher is a member too, and reads its own copies as a chat client does.
    let (mut publisher, mut own_copies) = plain().await.split();
    tokio::spawn(async move {
        use futures_util::StreamExt;
        while let Some(Ok(_)) = own_copies.next().await {}
    });
    let reader = tokio::spawn(async move {
        let mut seen = Vec::new();
        while seen.len() < COUNT {
            match timeout(Duration::from_secs(20), fast.recv()).await {
                Ok(Some(Ok(Message::Text(t)))) => {
                    seen.push(t.as_str().split(' ').next().unwrap().to_owned())
                }
                other => panic!("fast member after {} messages: {other:?}", seen.len()),
            }
        }
        seen
    });
    let padding = "x".repeat(4 << 10);
    let started = std::time::Instant::now();
    for i in 0..COUNT {
        timeout(
            Duration::from_secs(20),
            publisher.send(Message::text(format!("m{i} {padding}"))),
        )
        .await
        .unwrap_or_else(|_| panic!("message {i} not taken within 20 s"))
        .unwrap();
    }
    let publishing = started.elapsed();
    // The stuck member starts reading now: what its socket held, then the close.
    let close = timeout(Duration::from_secs(20), async {
        loop {
            match stuck.recv().await {
                Some(Ok(Message::Close(ev))) => return ev,
                Some(Ok(_)) => {}
                other => panic!("{other:?}"),
            }
        }
    })
    .await
    .unwrap();
    let seen = timeout(Duration::from_secs(30), reader)
        .await
        .unwrap()
        .unwrap();
    let expected: Vec<String> = (0..COUNT).map(|i| format!("m{i}")).collect();
    assert!(
        seen == expected,
        "the fast member lost or reordered messages"
    );
    assert_eq!(close.code.0, 1013, "{close:?}");
    assert!(close.reason.contains("missed"), "{close:?}");
    // The burst waited for the stuck member once, not once per message.
    assert!(publishing < Duration::from_secs(15), "{publishing:?}");
    let metrics = http_get(&addr, "/metrics", "").await;
    assert!(
        metrics.contains("sockeye_chat_slow_closes_total 1"),
        "{metrics}"
    );
}
