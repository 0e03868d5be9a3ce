//! The router on real WebSockets over loopback, driven by this crate's client: subprotocol
//! negotiation, sessions on different serializers talking to each other, RPC and PubSub end to
//! end, protocol violations on the wire, and the slow-subscriber policies.

use std::time::Duration;

use sockeye::{ClientRequest, Config, Message as WsMessage};
use sockeye_wamp::client::{CalleeEvent, Client, ClientError, Registration, Subscription};
use sockeye_wamp::{
    dict, Dict, Payload, RouterConfig, Serializer, SlowPolicy, TransportConfig, Value, WampRouter,
};
use tokio::net::TcpListener;

mod support;
use support::{assert_counts_down, serve, serve_with, within};

async fn start(transport: TransportConfig) -> (String, WampRouter) {
    start_with(transport, Config::default()).await
}

async fn start_with(transport: TransportConfig, config: Config) -> (String, WampRouter) {
    let router = WampRouter::new(RouterConfig::default(), transport);
    (serve_with(router.clone(), config).await, router)
}

/// A session on realm1.
async fn join(url: &str, serializer: Serializer) -> Client {
    Client::connect(url, "realm1", serializer).await.unwrap()
}

async fn register(client: &Client, procedure: &str) -> Registration {
    client.register(procedure, Dict::new()).await.unwrap()
}

async fn subscribe(client: &Client, topic: &str) -> Subscription {
    client.subscribe(topic, Dict::new()).await.unwrap()
}

fn args(v: Vec<Value>) -> Payload {
    Payload::Args(v)
}

#[tokio::test]
async fn the_server_picks_its_preferred_serializer_among_the_offered() {
    let (url, _) = start(TransportConfig::default()).await;
    let req = ClientRequest::new(&url)
        .unwrap()
        .protocol("wamp.2.json")
        .protocol("wamp.2.msgpack");
    let ws = sockeye::connect_with(req, Config::default()).await.unwrap();
    assert_eq!(ws.protocol(), Some("wamp.2.msgpack"));

    let (url, _) = start({
        let mut config = TransportConfig::default();
        config.serializers = vec![Serializer::Json, Serializer::MsgPack];
        config
    })
    .await;
    let req = ClientRequest::new(&url)
        .unwrap()
        .protocol("wamp.2.cbor")
        .protocol("wamp.2.msgpack")
        .protocol("wamp.2.json");
    let ws = sockeye::connect_with(req, Config::default()).await.unwrap();
    assert_eq!(ws.protocol(), Some("wamp.2.json"));

    let req = ClientRequest::new(&url).unwrap().protocol("wamp.2.cbor");
    assert!(
        sockeye::connect_with(req, Config::default()).await.is_err(),
        "no common serializer: 400"
    );
    assert!(
        sockeye::connect(&url).await.is_err(),
        "no subprotocol at all: 400"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_on_different_serializers_talk_to_each_other() {
    let (url, _) = start(TransportConfig::default()).await;
    for (a, b) in [
        (Serializer::Json, Serializer::MsgPack),
        (Serializer::MsgPack, Serializer::Json),
        (Serializer::Cbor, Serializer::Json),
        (Serializer::MsgPack, Serializer::Cbor),
    ] {
        let sub = join(&url, a).await;
        let publ = join(&url, b).await;
        let mut events = subscribe(&sub, "com.example.topic").await;
        let payload = Payload::ArgsKwargs(
            vec![
                Value::Bytes(vec![0, 1, 2, 254, 255]),
                "héllo".into(),
                1.5.into(),
                Value::from(1u64 << 53),
                Value::Null,
            ],
            dict! {"nested" => dict!{"list" => vec![Value::from(true)]}},
        );
        let ack = publ
            .publish(
                "com.example.topic",
                payload.clone(),
                dict! {"acknowledge" => true, "disclose_me" => true},
            )
            .await
            .unwrap()
            .unwrap();
        let ev = within(events.next()).await.unwrap();
        assert_eq!(ev.payload, payload, "{a} <- {b}");
        assert_eq!(ev.publication, ack);
        assert_eq!(ev.details.get_u64("publisher"), Some(publ.session_id()));

        let mut reg = register(&sub, "com.example.echo").await;
        let callee = sub.clone();
        let served = tokio::spawn(async move {
            let inv = reg.next().await.unwrap();
            callee.yield_result(inv.request, inv.payload).await.unwrap();
        });
        let result = within(publ.call("com.example.echo", payload.clone(), Dict::new()))
            .await
            .unwrap();
        assert_eq!(result.payload, payload, "{b} -> {a} -> {b}");
        served.await.unwrap();
    }
}

/// EVENTs shared by several subscribers are serialized once per serializer and written in
/// batches; every subscriber must still get every event intact and in publication order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_events_reaches_subscribers_on_every_serializer_intact_and_in_order() {
    let (url, _) = start(TransportConfig::default()).await;
    let mut subscribers = Vec::new();
    for serializer in Serializer::ALL.into_iter().chain(Serializer::ALL) {
        let client = join(&url, serializer).await;
        let events = subscribe(&client, "com.example.burst").await;
        subscribers.push((serializer, client, events));
    }
    let publisher = join(&url, Serializer::Json).await;
    const BURST: u64 = 200;
    for i in 0..BURST {
        let payload = args(vec![
            Value::from(i),
            "ünïcode".into(),
            Value::Bytes(vec![0, 255]),
        ]);
        publisher
            .publish("com.example.burst", payload, Dict::new())
            .await
            .unwrap();
    }
    for (serializer, _client, events) in &mut subscribers {
        for i in 0..BURST {
            let ev = within(events.next()).await.unwrap();
            assert_eq!(
                ev.payload,
                args(vec![
                    Value::from(i),
                    "ünïcode".into(),
                    Value::Bytes(vec![0, 255])
                ]),
                "{serializer}: event {i}"
            );
        }
    }
}

#[tokio::test]
async fn progressive_results_errors_and_cancel_end_to_end() {
    let (url, _) = start(TransportConfig::default()).await;
    let callee = join(&url, Serializer::Json).await;
    let caller = join(&url, Serializer::MsgPack).await;
    let mut countdown = register(&callee, "com.example.countdown").await;
    let mut fail = register(&callee, "com.example.fail").await;
    let mut slow = register(&callee, "com.example.slow").await;
    let c = callee.clone();
    tokio::spawn(async move {
        while let Some(inv) = countdown.next().await {
            let n = inv.payload.args()[0].as_i64().unwrap();
            assert_eq!(inv.details.get_bool("receive_progress"), Some(true));
            for i in (1..=n).rev() {
                c.yield_progress(inv.request, args(vec![i.into()]))
                    .await
                    .unwrap();
            }
            c.yield_result(inv.request, args(vec!["liftoff".into()]))
                .await
                .unwrap();
        }
    });
    let c = callee.clone();
    tokio::spawn(async move {
        while let Some(inv) = fail.next().await {
            c.yield_error(
                inv.request,
                "com.example.error.bad",
                Payload::ArgsKwargs(vec![1.into(), "two".into()], dict! {"why" => "because"}),
            )
            .await
            .unwrap();
        }
    });
    let c = callee.clone();
    let interrupted = tokio::spawn(async move {
        let Some(CalleeEvent::Invocation(inv)) = slow.next_event().await else {
            panic!()
        };
        let Some(CalleeEvent::Interrupt { request, options }) = slow.next_event().await else {
            panic!()
        };
        assert_eq!(request, inv.request);
        assert_eq!(options.get_str("mode"), Some("kill"));
        c.yield_error(request, "wamp.error.canceled", Payload::Empty)
            .await
            .unwrap();
    });

    let call = caller
        .start_call(
            "com.example.countdown",
            args(vec![3.into()]),
            dict! {"receive_progress" => true},
        )
        .unwrap();
    assert_counts_down(call).await;

    match within(caller.call("com.example.fail", Payload::Empty, Dict::new())).await {
        Err(ClientError::Wamp { error, payload, .. }) => {
            assert_eq!(error, "com.example.error.bad");
            assert_eq!(
                payload,
                Payload::ArgsKwargs(vec![1.into(), "two".into()], dict! {"why" => "because"})
            );
        }
        other => panic!("{other:?}"),
    }

    let call = caller
        .start_call("com.example.slow", Payload::Empty, Dict::new())
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    caller.cancel(call.request, "kill").unwrap();
    let err = within(call.finish()).await.unwrap_err();
    assert_eq!(err.error_uri(), Some("wamp.error.canceled"));
    interrupted.await.unwrap();

    let err = caller
        .call("com.example.nothing", Payload::Empty, Dict::new())
        .await
        .unwrap_err();
    assert_eq!(err.error_uri(), Some("wamp.error.no_such_procedure"));
}

#[tokio::test]
async fn a_callee_disconnecting_mid_call_fails_the_call() {
    let (url, router) = start(TransportConfig::default()).await;
    let callee = join(&url, Serializer::Json).await;
    let caller = join(&url, Serializer::Json).await;
    let mut reg = register(&callee, "com.example.hang").await;
    let call = caller
        .start_call("com.example.hang", Payload::Empty, Dict::new())
        .unwrap();
    within(reg.next()).await.unwrap();
    drop(reg);
    drop(callee); // the connection closes without GOODBYE
    let err = within(call.finish()).await.unwrap_err();
    assert_eq!(err.error_uri(), Some("wamp.error.canceled"));
    within(async {
        while router.with_router(|r| r.session_count("realm1")) != 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

type Ws = sockeye::WebSocket<sockeye::MaybeTlsStream>;

/// A raw WebSocket speaking WAMP by hand, for what the client would never send.
async fn raw(url: &str, protocol: &str) -> Ws {
    let req = ClientRequest::new(url).unwrap().protocol(protocol);
    sockeye::connect_with(req, Config::default()).await.unwrap()
}

async fn next_text(ws: &mut Ws) -> String {
    match within(ws.recv()).await.unwrap().unwrap() {
        WsMessage::Text(t) => t.as_str().to_owned(),
        other => panic!("{other:?}"),
    }
}

/// Sends this HELLO and expects a WELCOME.
async fn welcomed(ws: &mut Ws, hello: &str) {
    ws.send(hello).await.unwrap();
    assert!(next_text(ws).await.starts_with("[2,"));
}

/// Sends GOODBYE and expects the router's answer.
async fn goodbye_and_out(ws: &mut Ws) {
    ws.send(r#"[6,{},"wamp.close.normal"]"#).await.unwrap();
    assert_eq!(
        next_text(ws).await,
        r#"[6,{},"wamp.close.goodbye_and_out"]"#
    );
}

#[tokio::test]
async fn violations_on_the_wire_abort_and_close_only_that_connection() {
    let (url, _) = start(TransportConfig::default()).await;
    let bystander = join(&url, Serializer::Json).await;
    let mut events = subscribe(&bystander, "t").await;

    for (frame, text) in [
        (
            WsMessage::text(r#"[32,1,{},"t"]"#),
            "SUBSCRIBE received before HELLO",
        ),
        (WsMessage::text("nonsense"), "invalid JSON"),
        (
            WsMessage::binary(vec![0x91, 0x01]),
            "wamp.2.json travels in text frames",
        ),
        (WsMessage::text("[1000]"), "unknown message code 1000"),
    ] {
        let mut ws = raw(&url, "wamp.2.json").await;
        ws.send(frame).await.unwrap();
        let abort = next_text(&mut ws).await;
        assert!(
            abort.starts_with("[3,")
                && abort.contains(text)
                && abort.contains("wamp.error.protocol_violation"),
            "{abort}"
        );
        match within(ws.recv()).await.unwrap().unwrap() {
            WsMessage::Close(ev) => assert_eq!(ev.code.0, 1000),
            other => panic!("{other:?}"),
        }
    }

    // A second HELLO, in a session.
    let mut ws = raw(&url, "wamp.2.json").await;
    welcomed(&mut ws, r#"[1,"realm1",{"roles":{"subscriber":{}}}]"#).await;
    ws.send(r#"[1,"realm1",{"roles":{"subscriber":{}}}]"#)
        .await
        .unwrap();
    assert!(next_text(&mut ws)
        .await
        .contains("HELLO received in a session"));

    let publ = join(&url, Serializer::MsgPack).await;
    publ.publish("t", Payload::Empty, Dict::new())
        .await
        .unwrap();
    assert!(
        within(events.next()).await.is_some(),
        "the router kept serving the others"
    );
}

#[tokio::test]
async fn goodbye_round_trip() {
    let router = WampRouter::new(
        {
            let mut config = RouterConfig::default();
            config.close_after_goodbye = false;
            config
        },
        TransportConfig::default(),
    );
    let url = serve(router.clone()).await;
    let mut ws = raw(&url, "wamp.2.json").await;
    welcomed(&mut ws, r#"[1,"realm1",{"roles":{"caller":{}}}]"#).await;
    goodbye_and_out(&mut ws).await;
    assert_eq!(router.with_router(|r| r.session_count("realm1")), 0);
    // The transport is still usable for a new session.
    welcomed(&mut ws, r#"[1,"realm1",{"roles":{"caller":{}}}]"#).await;
}

#[tokio::test]
async fn goodbye_closes_the_transport_with_1000_by_default() {
    let (url, _) = start(TransportConfig::default()).await;
    let mut ws = raw(&url, "wamp.2.json").await;
    welcomed(&mut ws, r#"[1,"realm1",{"roles":{"caller":{}}}]"#).await;
    goodbye_and_out(&mut ws).await;
    match within(ws.recv()).await.unwrap().unwrap() {
        WsMessage::Close(ev) => assert_eq!((ev.code.0, ev.was_clean), (1000, true)),
        other => panic!("{other:?}"),
    }
}

/// A subscriber that stops reading; the publisher's acknowledgements must keep coming.
async fn flood_a_stalled_subscriber(policy: SlowPolicy) -> (WampRouter, Ws, Client) {
    // Without compression, so that the bytes really pile up in the socket buffers.
    let (url, router) = start_with(
        {
            let mut config = TransportConfig::default();
            config.queue_capacity = 8;
            config.slow_policy = policy;
            config
        },
        Config::default().without_compression(),
    )
    .await;
    let mut stalled = raw(&url, "wamp.2.msgpack").await;
    let hello = Serializer::MsgPack.encode(&sockeye_wamp::WampMessage::Hello {
        realm: "realm1".into(),
        details: dict! {"roles" => dict!{"subscriber" => Dict::new()}},
    });
    stalled.send(hello).await.unwrap();
    let sub = Serializer::MsgPack.encode(&sockeye_wamp::WampMessage::Subscribe {
        request: 1,
        options: Dict::new(),
        topic: "big".into(),
    });
    stalled.send(sub).await.unwrap();
    within(stalled.recv()).await.unwrap().unwrap(); // WELCOME
    within(stalled.recv()).await.unwrap().unwrap(); // SUBSCRIBED
                                                    // From here on `stalled` is not read.

    let healthy = join(&url, Serializer::MsgPack).await;
    let mut healthy_events = subscribe(&healthy, "big").await;
    let publ = join(&url, Serializer::MsgPack).await;
    let blob = Value::Bytes(
        (0..256u32 << 10)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect(),
    );
    let started = std::time::Instant::now();
    for _ in 0..64 {
        within(publ.publish(
            "big",
            args(vec![blob.clone()]),
            dict! {"acknowledge" => true},
        ))
        .await
        .unwrap();
        // The healthy subscriber keeps up.
        within(healthy_events.next()).await.unwrap();
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    (router, stalled, publ)
}

#[tokio::test]
async fn slow_subscribers_lose_events_and_the_router_does_not_wait() {
    let (router, _stalled, _publ) = flood_a_stalled_subscriber(SlowPolicy::DropEvents).await;
    let dropped = router.dropped_events();
    assert!(dropped > 0 && dropped < 64, "dropped {dropped}");
    assert_eq!(router.slow_disconnects(), 0);
    assert_eq!(router.with_router(|r| r.session_count("realm1")), 3);
}

#[tokio::test]
async fn slow_subscribers_can_be_disconnected_instead() {
    let (router, mut stalled, _publ) = flood_a_stalled_subscriber(SlowPolicy::Disconnect).await;
    assert_eq!(router.slow_disconnects(), 1);
    assert_eq!(router.dropped_events(), 0);
    assert_eq!(router.with_router(|r| r.session_count("realm1")), 2);
    // Reading now drains what was in flight, then the connection is gone (no close frame).
    let ended = within(async {
        loop {
            match stalled.recv().await {
                Some(Ok(WsMessage::Close(ev))) => return ev,
                Some(_) => {}
                None => panic!("no close event"),
            }
        }
    })
    .await;
    assert!(!ended.was_clean);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_sessions_across_worker_threads() {
    let (url, router) = start(TransportConfig::default()).await;
    let callee = join(&url, Serializer::MsgPack).await;
    let mut reg = register(&callee, "com.example.inc").await;
    let c = callee.clone();
    tokio::spawn(async move {
        while let Some(inv) = reg.next().await {
            let n = inv.payload.args()[0].as_i64().unwrap();
            c.yield_result(inv.request, args(vec![(n + 1).into()]))
                .await
                .unwrap();
        }
    });
    let observer = join(&url, Serializer::Json).await;
    let mut seen = subscribe(&observer, "com.example.done").await;
    let (sessions, calls) = (16, 200);
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for s in 0..sessions {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let ser = [Serializer::Json, Serializer::MsgPack, Serializer::Cbor][s % 3];
            let caller = join(&url, ser).await;
            for i in 0..calls {
                let r = caller
                    .call("com.example.inc", args(vec![i.into()]), Dict::new())
                    .await
                    .unwrap();
                assert_eq!(r.payload.args()[0].as_i64(), Some(i + 1));
            }
            caller
                .publish(
                    "com.example.done",
                    args(vec![(s as i64).into()]),
                    Dict::new(),
                )
                .await
                .unwrap();
        }));
    }
    for t in tasks {
        within(t).await.unwrap();
    }
    let mut done = 0;
    while done < sessions {
        within(seen.next()).await.unwrap();
        done += 1;
    }
    let elapsed = started.elapsed();
    let total = (sessions * calls as usize) as f64;
    eprintln!(
        "{total} calls from {sessions} sessions in {elapsed:?}: {:.0} calls/s ({} build)",
        total / elapsed.as_secs_f64(),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    assert_eq!(router.with_router(|r| r.stats().calls), total as u64);
}

#[tokio::test]
async fn a_call_timeout_fires_on_the_routers_own_timer() {
    let (url, _) = start(TransportConfig::default()).await;
    let callee = join(&url, Serializer::Json).await;
    let caller = join(&url, Serializer::MsgPack).await;
    assert_eq!(
        caller
            .welcome()
            .get_dict("roles")
            .and_then(|r| r.get_dict("dealer"))
            .and_then(|d| d.get_dict("features"))
            .and_then(|f| f.get_bool("call_timeout")),
        Some(true)
    );
    let mut slow = register(&callee, "com.example.never").await;
    let started = std::time::Instant::now();
    let err = within(caller.call(
        "com.example.never",
        Payload::Empty,
        dict! {"timeout" => 300u64},
    ))
    .await
    .unwrap_err();
    assert_eq!(err.error_uri(), Some("wamp.error.timeout"));
    assert!(started.elapsed() >= Duration::from_millis(300));
    let Some(CalleeEvent::Invocation(inv)) = within(slow.next_event()).await else {
        panic!()
    };
    let Some(CalleeEvent::Interrupt { request, options }) = within(slow.next_event()).await else {
        panic!()
    };
    assert_eq!(request, inv.request);
    assert_eq!(options.get_str("mode"), Some("killnowait"));
    // A call that is answered in time is not touched by its timeout.
    let c = callee.clone();
    tokio::spawn(async move {
        while let Some(CalleeEvent::Invocation(inv)) = slow.next_event().await {
            c.yield_result(inv.request, args(vec!["done".into()]))
                .await
                .unwrap();
        }
    });
    let r = within(caller.call(
        "com.example.never",
        Payload::Empty,
        dict! {"timeout" => 5000u64},
    ))
    .await
    .unwrap();
    assert_eq!(r.payload, args(vec!["done".into()]));
}

/// A router served until `stop` fires, and a raw WebSocket session on it that has joined.
async fn joined_raw_session() -> (
    sockeye::WebSocket<sockeye::MaybeTlsStream>,
    tokio::sync::watch::Sender<bool>,
) {
    let router = WampRouter::new(RouterConfig::default(), TransportConfig::default());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/wamp", listener.local_addr().unwrap());
    tokio::spawn(sockeye::serve(
        listener,
        Config::default(),
        move |upgrade, _| {
            let router = router.clone();
            let mut stopped = stopped.clone();
            async move {
                let shutdown = async move {
                    let _ = stopped.wait_for(|s| *s).await;
                };
                let _ = router.serve_until(upgrade, shutdown).await;
            }
        },
    ));
    let mut ws = raw(&url, "wamp.2.json").await;
    welcomed(&mut ws, r#"[1,"realm1",{"roles":{"caller":{}}}]"#).await;
    (ws, stop)
}

#[tokio::test]
async fn shutdown_says_goodbye_waits_for_the_reply_then_closes_with_1001() {
    let (mut ws, stop) = joined_raw_session().await;
    stop.send(true).unwrap();
    let goodbye = within(ws.recv()).await.unwrap().unwrap();
    let WsMessage::Text(t) = &goodbye else {
        panic!("{goodbye:?}")
    };
    assert_eq!(
        t.as_str(),
        r#"[6,{"message":"the server is shutting down"},"wamp.close.system_shutdown"]"#
    );
    let replied = std::time::Instant::now();
    ws.send(r#"[6,{},"wamp.close.goodbye_and_out"]"#)
        .await
        .unwrap();
    let close = within(ws.recv()).await.unwrap().unwrap();
    let WsMessage::Close(event) = close else {
        panic!("{close:?}")
    };
    assert_eq!(event.code, sockeye::CloseCode::GOING_AWAY);
    // The reply ends the wait: no need to sit out the timeout.
    assert!(replied.elapsed() < sockeye_wamp::transport::GOODBYE_REPLY_TIMEOUT);
}

#[tokio::test]
async fn shutdown_closes_with_1001_when_the_goodbye_is_not_answered() {
    let (mut ws, stop) = joined_raw_session().await;
    stop.send(true).unwrap();
    let goodbye = within(ws.recv()).await.unwrap().unwrap();
    assert!(matches!(&goodbye, WsMessage::Text(t) if t.as_str().starts_with("[6,")));
    let close = within(ws.recv()).await.unwrap().unwrap();
    let WsMessage::Close(event) = close else {
        panic!("{close:?}")
    };
    assert_eq!(event.code, sockeye::CloseCode::GOING_AWAY);
}

#[tokio::test]
async fn a_local_session_serves_websocket_callers_and_leaves_when_dropped() {
    use sockeye_wamp::WampMessage as Message;

    let (url, router) = start(TransportConfig::default()).await;
    let mut local = router.join_local("realm1", "in-process").unwrap();
    match within(local.recv()).await.as_deref() {
        Some(Message::Welcome { session, details }) => {
            assert_eq!(*session, local.session_id());
            assert_eq!(details.get_str("authrole"), Some("trusted"));
        }
        other => panic!("{other:?}"),
    }
    local.send(Message::Register {
        request: 1,
        options: Dict::new(),
        procedure: "com.local.double".into(),
    });
    assert!(matches!(
        within(local.recv()).await.as_deref(),
        Some(Message::Registered { request: 1, .. })
    ));
    let caller = join(&url, Serializer::Json).await;
    let answering = async {
        let Some(Message::Invocation {
            request, payload, ..
        }) = local.recv().await.as_deref().cloned()
        else {
            panic!("no invocation");
        };
        let n = payload.args()[0].as_u64().unwrap();
        local.send(Message::Yield {
            request,
            options: Dict::new(),
            payload: args(vec![(2 * n).into()]),
        });
    };
    let (result, ()) = within(async {
        tokio::join!(
            caller.call("com.local.double", args(vec![21u64.into()]), Dict::new()),
            answering
        )
    })
    .await;
    assert_eq!(result.unwrap().payload.args(), &[Value::from(42u64)]);
    drop(local);
    let gone = caller
        .call("com.local.double", args(vec![1u64.into()]), Dict::new())
        .await
        .unwrap_err();
    assert_eq!(gone.error_uri(), Some("wamp.error.no_such_procedure"));
}

#[tokio::test]
async fn a_stalled_subscribers_queue_is_bounded_in_bytes_not_only_in_messages() {
    // 1,024 messages of room, but only 2 MiB: 1 MiB events stop queueing at two.
    let (url, router) = start_with(
        {
            let mut config = TransportConfig::default();
            config.queue_bytes = 2 << 20;
            config
        },
        Config::default().without_compression(),
    )
    .await;
    let mut stalled = raw(&url, "wamp.2.msgpack").await;
    for msg in [
        sockeye_wamp::WampMessage::Hello {
            realm: "realm1".into(),
            details: dict! {"roles" => dict!{"subscriber" => Dict::new()}},
        },
        sockeye_wamp::WampMessage::Subscribe {
            request: 1,
            options: Dict::new(),
            topic: "big".into(),
        },
    ] {
        stalled
            .send(Serializer::MsgPack.encode(&msg))
            .await
            .unwrap();
    }
    within(stalled.recv()).await.unwrap().unwrap(); // WELCOME
    within(stalled.recv()).await.unwrap().unwrap(); // SUBSCRIBED
    let publ = join(&url, Serializer::MsgPack).await;
    let blob = Value::Bytes(vec![7; 1 << 20]);
    for _ in 0..200 {
        within(publ.publish(
            "big",
            args(vec![blob.clone()]),
            dict! {"acknowledge" => true},
        ))
        .await
        .unwrap();
    }
    // What the socket buffers took, plus at most two queued: the rest were dropped.
    let dropped = router.dropped_events();
    assert!(dropped >= 150, "dropped only {dropped} of 200 1 MiB events");
}

#[tokio::test]
async fn a_client_joins_with_its_own_request_headers_and_config() {
    let router = WampRouter::new(RouterConfig::default(), TransportConfig::default());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(sockeye::serve(
        listener,
        Config::default(),
        move |upgrade, _| {
            let (router, seen_tx) = (router.clone(), seen_tx.clone());
            async move {
                let _ = seen_tx.send(upgrade.header("authorization").map(str::to_owned));
                let _ = router.serve(upgrade).await;
            }
        },
    ));
    let request = ClientRequest::new(&format!("ws://{addr}/wamp"))
        .unwrap()
        .no_proxy()
        .header("Authorization", "Bearer t0ken");
    let config = Config::default().max_message_size(1 << 16);
    let client = within(Client::connect_request(
        request,
        config,
        "realm1",
        Serializer::Json,
        &sockeye_wamp::client::Credentials::Anonymous,
    ))
    .await
    .unwrap();
    assert!(client.session_id() > 0);
    assert_eq!(
        within(seen.recv()).await.unwrap().as_deref(),
        Some("Bearer t0ken")
    );
}
