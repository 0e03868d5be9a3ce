//! Two `sockeye serve` nodes joined by a real `nats-server` (JetStream on), with clients on
//! each: chat rooms across nodes, offsets, recovery, presence, and what a node does when a
//! peer node or NATS goes away.

mod common;

use std::time::Duration;

use serde_json::Value;
use sockeye::{ClientRequest, Config, MaybeTlsStream, Message, WebSocket};
use sockeye_cluster::test_support::NatsServer;
use tokio::process::Child;
use tokio::time::timeout;

use common::{http_get, start_on_loopback};

type Ws = WebSocket<MaybeTlsStream>;

async fn node(nats: &NatsServer, name: &str) -> (Child, String) {
    let (child, addr) = start_on_loopback(&[
        "--cluster",
        &nats.url(),
        "--node-name",
        name,
        "--no-compression",
    ])
    .await;
    ready(&addr, true).await;
    (child, addr)
}

/// A WAMP session on realm1 at the node at `addr`.
async fn wamp_session(
    addr: &str,
    serializer: sockeye_wamp::Serializer,
) -> sockeye_wamp::client::Client {
    sockeye_wamp::client::Client::connect(&format!("ws://{addr}/wamp"), "realm1", serializer)
        .await
        .unwrap()
}

/// The next event of `subscription`, within 5 s.
async fn next_event(
    subscription: &mut sockeye_wamp::client::Subscription,
) -> sockeye_wamp::client::Event {
    timeout(Duration::from_secs(5), subscription.next())
        .await
        .unwrap()
        .unwrap()
}

/// Waits until `/healthz` says ready (`true`) or not.
async fn ready(addr: &str, want: bool) -> String {
    let status = if want { "200 OK" } else { "503" };
    for _ in 0..200 {
        let answer = http_get(addr, "/healthz", "Connection: close\r\n").await;
        if answer.starts_with(&format!("HTTP/1.1 {status}")) {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("/healthz of {addr} never answered {status}");
}

async fn join(addr: &str, path: &str) -> (Ws, Value) {
    let request = ClientRequest::new(&format!("ws://{addr}{path}"))
        .unwrap()
        .protocol("sockeye.chat.v1");
    let mut ws = sockeye::connect_with(request, Config::default())
        .await
        .unwrap();
    assert_eq!(ws.protocol(), Some("sockeye.chat.v1"));
    let welcome = next(&mut ws).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    (ws, welcome)
}

async fn next(ws: &mut Ws) -> Value {
    loop {
        match timeout(Duration::from_secs(15), ws.recv()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(t.as_str()).unwrap(),
            Ok(Some(Ok(_))) => continue,
            other => panic!("no message within 15 s: {other:?}"),
        }
    }
}

/// The next chat message, skipping presence notices.
async fn next_message(ws: &mut Ws) -> Value {
    loop {
        let v = next(ws).await;
        if v["type"] == "message" {
            return v;
        }
    }
}

/// The next presence notice of `event` for the member named `name`.
async fn presence(ws: &mut Ws, event: &str, name: &str) -> Value {
    loop {
        let v = next(ws).await;
        if v["type"] == "presence" && v["event"] == event && v["member"]["name"] == name {
            return v;
        }
    }
}

async fn say(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text.to_owned())).await.unwrap();
}

#[tokio::test]
async fn a_room_s_messages_reach_its_members_on_every_node_once_in_order_with_offsets_presence_and_recovery(
) {
    let Some(nats) = NatsServer::start() else {
        return;
    };
    let (_a, node_a) = node(&nats, "a").await;
    let (_b, node_b) = node(&nats, "b").await;

    let (mut bob, welcome) = join(&node_b, "/chat/room1?name=bob").await;
    let epoch = welcome["epoch"].as_str().unwrap().to_owned();
    assert_eq!(welcome["offset"], 0);
    assert!(welcome["me"].as_str().unwrap().starts_with("b-"));
    let (mut ann, welcome) = join(&node_a, "/chat/room1?name=ann").await;
    assert_eq!(
        welcome["epoch"],
        epoch.as_str(),
        "one log, one epoch on every node"
    );
    let ann_id = welcome["me"].as_str().unwrap().to_owned();
    // Bob, on the other node, is told within the 10 s bound (a notice, or the next beat).
    let joined = presence(&mut bob, "join", "ann").await;
    assert_eq!(joined["count"], 2);
    // The seed's plain chat in the same room, and a member of another room.
    let mut plain = sockeye::connect(&format!("ws://{node_b}/chat/room1"))
        .await
        .unwrap();
    let (mut lobby, _) = join(&node_b, "/chat").await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    for i in 1..=20 {
        say(&mut ann, &format!("m{i}")).await;
    }
    let mut last = 0;
    for i in 1..=20u64 {
        let m = next_message(&mut bob).await;
        assert_eq!(m["text"], format!("m{i}"));
        assert_eq!(m["from"], ann_id.as_str());
        assert_eq!(m["name"], "ann");
        assert_eq!(m["offset"], i, "offsets count up from 1 without gaps");
        last = i;
        let m = next_message(&mut ann).await;
        assert_eq!(
            (m["text"].as_str(), m["offset"].as_u64()),
            (Some(&*format!("m{i}")), Some(i))
        );
        match timeout(Duration::from_secs(15), plain.recv()).await {
            Ok(Some(Ok(Message::Text(t)))) => assert_eq!(t.as_str(), format!("m{i}")),
            other => panic!("plain member: {other:?}"),
        }
    }

    // Bob leaves; ann is told, and sends two more while he is away.
    bob.close(Some(1000), "").await.unwrap();
    presence(&mut ann, "leave", "bob").await;
    say(&mut ann, "m21").await;
    say(&mut ann, "m22").await;
    assert_eq!(next_message(&mut ann).await["offset"], 21);
    assert_eq!(next_message(&mut ann).await["offset"], 22);

    // Back on the other node with the offset and epoch he had: what he missed, then live.
    let (mut bob, welcome) = join(
        &node_a,
        &format!("/chat/room1?name=bob&since={last}&epoch={epoch}"),
    )
    .await;
    assert_eq!(welcome["recovered"], true, "{welcome}");
    for (i, text) in [(21, "m21"), (22, "m22")] {
        let m = next_message(&mut bob).await;
        assert_eq!(
            (m["offset"].as_u64(), m["text"].as_str()),
            (Some(i), Some(text))
        );
    }
    say(&mut ann, "m23").await;
    let m = next_message(&mut bob).await;
    assert_eq!(
        (m["offset"].as_u64(), m["text"].as_str()),
        (Some(23), Some("m23")),
        "no repeat"
    );

    // Another epoch: told so, and only the live stream follows.
    let (mut stale, welcome) =
        join(&node_b, "/chat/room1?name=old&since=3&epoch=not-this-one").await;
    assert_eq!(welcome["recovered"], false);
    say(&mut ann, "m24").await;
    assert_eq!(next_message(&mut stale).await["offset"], 24);

    // Nothing of room1 reached the lobby.
    match timeout(Duration::from_millis(300), lobby.recv()).await {
        Err(_) => {}
        Ok(Some(Ok(Message::Text(t)))) => {
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            assert_ne!(v["type"], "message", "the lobby got {v}");
        }
        Ok(other) => panic!("lobby: {other:?}"),
    }
    let metrics = http_get(&node_a, "/metrics", "Connection: close\r\n").await;
    assert!(metrics.contains("sockeye_cluster_connected 1"), "{metrics}");
    assert!(metrics.contains("sockeye_cluster_dropped 0"), "{metrics}");
}

#[tokio::test]
async fn a_dead_node_s_members_leave_and_a_node_cut_off_from_nats_serves_its_own_clients() {
    let Some(mut nats) = NatsServer::start() else {
        return;
    };
    let (_a, node_a) = node(&nats, "a").await;
    let (mut b, node_b) = node(&nats, "b").await;
    let (mut ann, _) = join(&node_a, "/chat/r?name=ann").await;
    let (_bob, _) = join(&node_b, "/chat/r?name=bob").await;
    presence(&mut ann, "join", "bob").await;

    // Node b dies without a word: its members leave within the 30 s the cluster promises.
    let killed = std::time::Instant::now();
    b.start_kill().unwrap();
    let left = presence(&mut ann, "leave", "bob").await;
    assert_eq!(left["count"], 1);
    assert!(
        killed.elapsed() < Duration::from_secs(30),
        "{:?}",
        killed.elapsed()
    );

    // NATS goes away: node a says so, and keeps its own members talking.
    nats.kill();
    let health = ready(&node_a, false).await;
    assert!(health.contains(r#""connected":false"#), "{health}");
    let metrics = http_get(&node_a, "/metrics", "Connection: close\r\n").await;
    assert!(metrics.contains("sockeye_cluster_connected 0"), "{metrics}");
    let (mut cat, _) = join(&node_a, "/chat/r?name=cat").await;
    say(&mut ann, "while cut off").await;
    let m = next_message(&mut cat).await;
    assert_eq!(m["text"], "while cut off");
    assert!(m.get("offset").is_none(), "not in the log: {m}");

    // NATS is back: the node reconnects, and messages go through the log again.
    nats.run();
    ready(&node_a, true).await;
    let mut offset = None;
    for attempt in 0..50 {
        say(&mut ann, &format!("back {attempt}")).await;
        let m = next_message(&mut cat).await;
        if let Some(o) = m["offset"].as_u64() {
            offset = Some(o);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        offset.is_some(),
        "no message through the log after NATS came back"
    );
}

#[tokio::test]
async fn wamp_events_published_on_one_node_reach_exact_prefix_and_wildcard_subscribers_on_another()
{
    use sockeye_wamp::{dict, Dict, Payload, Serializer, Value};

    let Some(mut nats) = NatsServer::start() else {
        return;
    };
    let (_a, node_a) = node(&nats, "a").await;
    let (_b, node_b) = node(&nats, "b").await;
    let subscriber = wamp_session(&node_b, Serializer::MsgPack).await;
    let publisher = wamp_session(&node_a, Serializer::Json).await;
    assert_ne!(subscriber.session_id(), publisher.session_id());
    let mut exact = subscriber
        .subscribe("com.market.tick", Dict::new())
        .await
        .unwrap();
    let mut prefix = subscriber
        .subscribe("com.mar", dict! { "match" => "prefix" })
        .await
        .unwrap();
    let mut wildcard = subscriber
        .subscribe("com..tick", dict! { "match" => "wildcard" })
        .await
        .unwrap();
    // Each subscription's subject is subscribed on NATS by node b; a publish acknowledged by
    // node a is sent. Publish until the first arrives, then count.
    let tick = |n: i64| Payload::Args(vec![Value::Int(n)]);
    let publish = |n: i64, options| publisher.publish("com.market.tick", tick(n), options);
    let mut first = None;
    for n in 0..100 {
        publish(n, dict! { "acknowledge" => true }).await.unwrap();
        if let Ok(Some(e)) = timeout(Duration::from_millis(100), exact.next()).await {
            first = Some(e);
            break;
        }
    }
    let first = first.expect("an event crossed the nodes");
    let Payload::Args(args) = &first.payload else {
        panic!("{first:?}")
    };
    let n0 = args[0].as_i64().unwrap();
    publish(1000, dict! { "acknowledge" => true, "disclose_me" => true })
        .await
        .unwrap();
    let e = next_event(&mut exact).await;
    assert_eq!(e.payload, tick(1000));
    assert_eq!(
        e.details.get("publisher").and_then(|v| v.as_u64()),
        Some(publisher.session_id()),
        "disclose_me holds across nodes"
    );
    // The prefix and wildcard subscriptions got the same events, each once.
    for sub in [&mut prefix, &mut wildcard] {
        let mut got = Vec::new();
        while let Ok(Some(e)) = timeout(Duration::from_millis(500), sub.next()).await {
            got.push(e.payload);
        }
        assert!(
            got.contains(&tick(n0)) && got.contains(&tick(1000)),
            "{got:?}"
        );
        let mut unique = got.clone();
        unique.dedup();
        assert_eq!(unique.len(), got.len(), "no event twice: {got:?}");
    }
    // Excluded by session id on the other node.
    publish(
        2000,
        dict! { "acknowledge" => true, "exclude" => vec![Value::from(subscriber.session_id())] },
    )
    .await
    .unwrap();
    publish(3000, dict! { "acknowledge" => true })
        .await
        .unwrap();
    let e = next_event(&mut exact).await;
    assert_eq!(
        e.payload,
        tick(3000),
        "the excluded event was not delivered"
    );

    // NATS restarts: both nodes reconnect, subscribe again, and events cross again.
    nats.kill();
    ready(&node_a, false).await;
    nats.run();
    ready(&node_a, true).await;
    ready(&node_b, true).await;
    let mut resumed = false;
    for n in 4000..4100 {
        publisher
            .publish("com.market.tick", tick(n), dict! { "acknowledge" => true })
            .await
            .unwrap();
        if let Ok(Some(e)) = timeout(Duration::from_millis(100), exact.next()).await {
            assert!(matches!(&e.payload, Payload::Args(a) if a[0].as_i64() >= Some(4000)));
            resumed = true;
            break;
        }
    }
    assert!(resumed, "no event crossed after NATS came back");
}

#[tokio::test]
async fn a_retained_wamp_event_published_before_a_node_started_reaches_get_retained_subscribers_there(
) {
    use sockeye_wamp::{dict, Dict, Payload, Serializer, Value};

    let Some(nats) = NatsServer::start() else {
        return;
    };
    let (_a, node_a) = node(&nats, "a").await;
    let publisher = wamp_session(&node_a, Serializer::Json).await;
    let state = |s: &str| Payload::Args(vec![Value::from(s)]);
    let retain = || dict! { "acknowledge" => true, "retain" => true };
    publisher
        .publish("com.state", state("old"), retain())
        .await
        .unwrap();
    let latest = publisher
        .publish("com.state", state("latest"), retain())
        .await
        .unwrap()
        .unwrap();
    // In a realm that only node a has, as yet.
    let in_room = sockeye_wamp::client::Client::connect(
        &format!("ws://{node_a}/wamp"),
        "room2",
        Serializer::Json,
    )
    .await
    .unwrap();
    let in_room_publication = in_room
        .publish("com.state", state("room2's"), retain())
        .await
        .unwrap()
        .unwrap();

    // Node b starts after the publications; it is ready once it has loaded them.
    let (_b, node_b) = node(&nats, "b").await;
    assert!(
        ready(&node_b, true)
            .await
            .contains(r#""retained_loaded":true"#),
        "/healthz says the retained events are loaded"
    );
    let subscriber = wamp_session(&node_b, Serializer::MsgPack).await;
    let mut sub = subscriber
        .subscribe("com.state", dict! { "get_retained" => true })
        .await
        .unwrap();
    let e = next_event(&mut sub).await;
    assert_eq!(
        (e.publication, &e.payload),
        (latest, &state("latest")),
        "the topic's latest only"
    );
    assert_eq!(e.details.get_bool("retained"), Some(true));
    assert!(
        timeout(Duration::from_millis(300), sub.next())
            .await
            .is_err(),
        "one retained event"
    );
    subscriber.unsubscribe(sub.id).await.unwrap();
    // A subscription without get_retained gets none.
    let mut plain = subscriber
        .subscribe("com.other", Dict::new())
        .await
        .unwrap();
    assert!(timeout(Duration::from_millis(300), plain.next())
        .await
        .is_err());

    // The realm, created on node b now, has its retained event too.
    let in_room_b = sockeye_wamp::client::Client::connect(
        &format!("ws://{node_b}/wamp"),
        "room2",
        Serializer::Json,
    )
    .await
    .unwrap();
    let mut sub = in_room_b
        .subscribe("com.state", dict! { "get_retained" => true })
        .await
        .unwrap();
    let e = next_event(&mut sub).await;
    assert_eq!(
        (e.publication, &e.payload),
        (in_room_publication, &state("room2's"))
    );
    assert_eq!(e.details.get_bool("retained"), Some(true));

    // A later retained publication on node a replaces it on node b, which has no
    // subscriber of that topic in realm1 to get it live.
    let newer = publisher
        .publish("com.state", state("newer"), retain())
        .await
        .unwrap()
        .unwrap();
    let mut got = None;
    for _ in 0..50 {
        let mut sub = subscriber
            .subscribe("com.state", dict! { "get_retained" => true })
            .await
            .unwrap();
        let e = next_event(&mut sub).await;
        subscriber.unsubscribe(sub.id).await.unwrap();
        if e.publication == newer {
            got = Some(e);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = got.expect("node b has the newer retained event within 5 s");
    assert_eq!(got.payload, state("newer"));
}

#[tokio::test]
async fn a_wamp_call_on_one_node_reaches_a_callee_on_another_with_progressive_results_and_fails_cleanly(
) {
    use sockeye_wamp::{dict, Dict, Payload, Serializer, Value};

    let Some(nats) = NatsServer::start() else {
        return;
    };
    let (_a, node_a) = node(&nats, "a").await;
    let (mut b, node_b) = node(&nats, "b").await;
    let callee = wamp_session(&node_b, Serializer::MsgPack).await;
    let caller = wamp_session(&node_a, Serializer::Json).await;

    // Registered nowhere: told at once (NATS has no responder), not after a timeout.
    let started = std::time::Instant::now();
    let err = caller
        .call("com.calc.nowhere", Payload::Empty, Dict::new())
        .await
        .unwrap_err();
    assert_eq!(
        err.error_uri(),
        Some("wamp.error.no_such_procedure"),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    let mut countdown = callee
        .register("com.calc.countdown", Dict::new())
        .await
        .unwrap();
    let serving = tokio::spawn(async move {
        while let Some(inv) = countdown.next().await {
            let Payload::Args(args) = &inv.payload else {
                panic!("{inv:?}")
            };
            let n = args[0].as_i64().unwrap();
            for i in (1..=n).rev() {
                callee
                    .yield_progress(inv.request, Payload::Args(vec![Value::Int(i)]))
                    .await
                    .unwrap();
            }
            callee
                .yield_result(inv.request, Payload::Args(vec![Value::from("liftoff")]))
                .await
                .unwrap();
        }
    });
    // The registration reaches NATS shortly after REGISTERED: retry until it is there.
    let mut call = None;
    for _ in 0..50 {
        let mut c = caller
            .start_call(
                "com.calc.countdown",
                Payload::Args(vec![Value::Int(3)]),
                dict! { "receive_progress" => true },
            )
            .unwrap();
        match timeout(Duration::from_secs(10), c.next()).await.unwrap() {
            Some(Ok(first)) => {
                call = Some((c, first));
                break;
            }
            Some(Err(e)) if e.error_uri() == Some("wamp.error.no_such_procedure") => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            other => panic!("{other:?}"),
        }
    }
    let (mut call, first) = call.expect("the call reached the other node");
    let mut results = vec![first];
    while let Some(r) = timeout(Duration::from_secs(10), call.next()).await.unwrap() {
        let r = r.unwrap();
        let done = !r.is_progress();
        results.push(r);
        if done {
            break;
        }
    }
    let payloads: Vec<Payload> = results.iter().map(|r| r.payload.clone()).collect();
    assert_eq!(
        payloads,
        [3, 2, 1]
            .map(|i| Payload::Args(vec![Value::Int(i)]))
            .into_iter()
            .chain([Payload::Args(vec![Value::from("liftoff")])])
            .collect::<Vec<_>>()
    );
    assert!(results[..3].iter().all(|r| r.is_progress()) && !results[3].is_progress());
    serving.abort();

    // A callee that never answers, on a node that dies: the caller gets an ERROR, no hang.
    let silent = wamp_session(&node_b, Serializer::Json).await;
    let _hold = silent
        .register("com.calc.silent", Dict::new())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut pending = caller
        .start_call("com.calc.silent", Payload::Empty, Dict::new())
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    b.start_kill().unwrap();
    let killed = std::time::Instant::now();
    let answer = timeout(Duration::from_secs(30), pending.next())
        .await
        .expect("an answer within 30 s of the callee's node dying");
    let err = answer.unwrap().unwrap_err();
    assert_eq!(err.error_uri(), Some("wamp.error.canceled"), "{err:?}");
    assert!(
        killed.elapsed() < Duration::from_secs(15),
        "{:?}",
        killed.elapsed()
    );
}
