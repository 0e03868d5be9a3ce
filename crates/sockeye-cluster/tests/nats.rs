//! The NATS backplane against a real `nats-server` with JetStream, started on loopback.
#![cfg(all(feature = "nats", feature = "test-support"))]

use std::time::Duration;

use sockeye_cluster::room::recovery;
use sockeye_cluster::test_support::{NatsCluster, NatsServer};
use sockeye_cluster::{Backplane, Nats};

async fn connected(node: &Nats) {
    for _ in 0..400 {
        if node.is_connected() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("not connected to NATS in 10 s");
}

/// Node `name` on `server`'s NATS, keeping `history` messages per room, once connected.
async fn node(server: &NatsServer, name: &str, history: usize) -> Nats {
    let node = Nats::connect(&server.url(), name, history).await.unwrap();
    connected(&node).await;
    node
}

#[tokio::test]
async fn a_room_log_across_two_nodes_gives_offsets_in_order_once_and_keeps_the_last_n() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let a = node(&server, "a", 3).await;
    let b = node(&server, "b", 3).await;
    let mut feed = b.follow("r1", 0).await.unwrap();
    // No more than the log keeps before the feed has them: past that the oldest are dropped
    // from the log, which a feed that falls that far behind cannot be given.
    for batch in [1..=3u64, 4..=5] {
        for i in batch.clone() {
            assert_eq!(a.append("r1", format!("m{i}").into()).await.unwrap(), i);
        }
        for i in batch {
            let e = tokio::time::timeout(Duration::from_secs(5), feed.entries.recv())
                .await
                .expect("an entry within 5 s")
                .unwrap();
            assert_eq!((e.offset, &e.payload[..]), (i, format!("m{i}").as_bytes()));
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(feed.entries.try_recv().is_err(), "nothing twice");

    let log = b.read("r1", 3).await.unwrap();
    assert_eq!((log.state.first, log.state.last), (3, 5), "the last 3 kept");
    assert_eq!(
        log.entries.iter().map(|e| e.offset).collect::<Vec<_>>(),
        [4, 5]
    );
    assert!(recovery(2, &log.state.epoch, &log.state));
    assert!(
        !recovery(1, &log.state.epoch, &log.state),
        "offset 2 is gone"
    );
    let same = a.read("r1", u64::MAX).await.unwrap();
    assert_eq!(
        same.state.epoch, log.state.epoch,
        "one epoch for every node"
    );
}

#[tokio::test]
async fn subjects_reach_listeners_on_other_nodes() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let a = node(&server, "a", 10).await;
    let b = node(&server, "b", 10).await;
    let mut listener = b.listen("sockeye.t.>").await.unwrap();
    // A subscription is in place once the server has seen it: a round trip through b.
    b.send("sockeye.flush", "x".into()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    a.send("sockeye.t.one", "1".into()).await.unwrap();
    a.send("sockeye.u", "no".into()).await.unwrap();
    a.send("sockeye.t.two.three", "2".into()).await.unwrap();
    for want in [("sockeye.t.one", "1"), ("sockeye.t.two.three", "2")] {
        let m = tokio::time::timeout(Duration::from_secs(5), listener.messages.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (m.subject.as_str(), &m.payload[..]),
            (want.0, want.1.as_bytes())
        );
    }
}

#[tokio::test]
async fn messages_a_listener_that_does_not_read_cannot_take_are_counted_as_dropped() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let a = node(&server, "a", 10).await;
    let b = node(&server, "b", 10).await;
    let listener = b.listen("sockeye.slow").await.unwrap();
    b.send("sockeye.flush", "x".into()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(b.dropped(), 0);
    // The listener's queue holds 65,536; what comes past that, unread, is lost and counted
    // (or counted as NATS's slow-consumer events, should the client's own buffer fill first).
    for i in 0..66_000u32 {
        a.send("sockeye.slow", i.to_be_bytes().to_vec().into())
            .await
            .unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while b.dropped() < 400 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(b.dropped() >= 400, "dropped {}", b.dropped());
    assert_eq!(a.dropped(), 0, "the sender lost nothing");
    drop(listener);
}

#[tokio::test]
async fn a_request_reaches_one_node_of_a_group_and_no_responders_is_told_at_once() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let a = node(&server, "a", 10).await;
    let b = node(&server, "b", 10).await;
    let c = node(&server, "c", 10).await;
    let started = std::time::Instant::now();
    let err = a
        .request("sockeye.rpc.p", "q".into(), Duration::from_secs(5))
        .await;
    assert!(
        matches!(err, Err(sockeye_cluster::Error::NoResponders(_))),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "at once, not after the timeout"
    );
    let mut on_b = b.listen_in_group("sockeye.rpc.p", "g").await.unwrap();
    let mut on_c = c.listen_in_group("sockeye.rpc.p", "g").await.unwrap();
    b.send("sockeye.flush", "x".into()).await.unwrap();
    c.send("sockeye.flush", "x".into()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let asking = tokio::spawn(async move {
        a.request("sockeye.rpc.p", "q".into(), Duration::from_secs(5))
            .await
    });
    let (q, by) = tokio::select! {
        q = on_b.messages.recv() => (q.unwrap(), &b),
        q = on_c.messages.recv() => (q.unwrap(), &c),
    };
    by.send(q.reply.as_deref().unwrap(), "answer".into())
        .await
        .unwrap();
    assert_eq!(asking.await.unwrap().unwrap(), "answer");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let copies = usize::from(on_b.messages.try_recv().is_ok())
        + usize::from(on_c.messages.try_recv().is_ok());
    assert_eq!(copies, 0, "one node of the group took it");
}

#[tokio::test]
async fn after_nats_restarts_nodes_reconnect_and_the_log_resumes_where_it_was() {
    let Some(mut server) = NatsServer::start() else {
        return;
    };
    let a = node(&server, "a", 100).await;
    let b = node(&server, "b", 100).await;
    let mut feed = b.follow("r2", 0).await.unwrap();
    assert_eq!(a.append("r2", "before".into()).await.unwrap(), 1);
    let e = tokio::time::timeout(Duration::from_secs(5), feed.entries.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e.offset, 1);
    let epoch = a.read("r2", u64::MAX).await.unwrap().state.epoch;

    server.kill();
    for _ in 0..200 {
        if !a.is_connected() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(!a.is_connected(), "the link is reported down");
    assert!(a.append("r2", "lost".into()).await.is_err());
    // Refused at once, not buffered for later: the next offset is 2, not 3.

    server.run();
    connected(&a).await;
    connected(&b).await;
    // JetStream kept the stream on disk: the same epoch, and offsets go on from 2.
    let mut offset = None;
    for _ in 0..100 {
        match a.append("r2", "after".into()).await {
            Ok(o) => {
                offset = Some(o);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert_eq!(offset, Some(2));
    assert_eq!(a.read("r2", u64::MAX).await.unwrap().state.epoch, epoch);
    let e = tokio::time::timeout(Duration::from_secs(15), feed.entries.recv())
        .await
        .expect("the feed resumes within 15 s")
        .unwrap();
    assert_eq!((e.offset, &e.payload[..]), (2, &b"after"[..]));
}

async fn next(feed: &mut sockeye_cluster::Latest) -> sockeye_cluster::Kept {
    tokio::time::timeout(Duration::from_secs(5), feed.values.recv())
        .await
        .expect("a value within 5 s")
        .unwrap()
}

#[tokio::test]
async fn latest_values_reach_a_node_started_after_they_were_put_then_later_puts_follow() {
    use sockeye_cluster::Kept;
    let Some(server) = NatsServer::start() else {
        return;
    };
    let a = node(&server, "a", 10).await;
    let first = a.put_latest("w.r.t1", "old".into()).await.unwrap();
    let second = a.put_latest("w.r.t2", "two".into()).await.unwrap();
    let third = a.put_latest("w.r.t1", "new".into()).await.unwrap();
    assert!(first < second && second < third, "revisions count up");
    a.put_latest("other.t", "x".into()).await.unwrap();

    // A node that connects after the puts.
    let b = node(&server, "b", 10).await;
    let mut feed = b.latest("w").await.unwrap();
    let value = |key: &str, revision, payload: &'static str| Kept::Value {
        key: key.into(),
        revision,
        payload: payload.into(),
    };
    assert_eq!(next(&mut feed).await, value("w.r.t2", second, "two"));
    assert_eq!(
        next(&mut feed).await,
        value("w.r.t1", third, "new"),
        "t1's last only"
    );
    assert_eq!(next(&mut feed).await, Kept::Loaded);
    a.put_latest("wx.t", "not under w".into()).await.unwrap();
    let later = a.put_latest("w.r.t2", "later".into()).await.unwrap();
    assert_eq!(next(&mut feed).await, value("w.r.t2", later, "later"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(feed.values.try_recv().is_err(), "nothing else");

    // An empty prefix is loaded at once.
    let mut empty = b.latest("nothing").await.unwrap();
    let loaded = tokio::time::timeout(Duration::from_secs(5), empty.values.recv())
        .await
        .unwrap();
    assert_eq!(loaded, Some(Kept::Loaded));
}

async fn append_when_back(node: &Nats, room: &str, text: &str) -> u64 {
    for _ in 0..150 {
        match node.append(room, text.to_owned().into()).await {
            Ok(offset) => return offset,
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    panic!("no append to {room} within 15 s");
}

#[tokio::test]
async fn on_a_three_server_cluster_a_one_replica_room_log_works_through_every_server_and_its_feeds_resume_soon_after_its_holder_restarts(
) {
    let Some(mut nats) = NatsCluster::start() else {
        return;
    };
    let mut nodes = Vec::new();
    for i in 0..3 {
        let node = Nats::connect(&nats.url(i), &format!("n{i}"), 100)
            .await
            .unwrap();
        connected(&node).await;
        nodes.push(node);
    }
    assert_eq!(nodes[0].append("r3", "m".into()).await.unwrap(), 1);
    let held = nats
        .holder(&sockeye_cluster::room::stream_name("r3"))
        .expect("a server holds the stream");
    let other = (held + 1) % 3;
    // Followed through a server that stays up throughout: its link never drops, so only the
    // consumer going away with the holder can tell it to follow again.
    let mut feed = nodes[(held + 2) % 3].follow("r3", 0).await.unwrap();
    for (i, node) in nodes.iter().enumerate() {
        assert_eq!(
            node.append("r3", format!("m{i}").into()).await.unwrap(),
            i as u64 + 2
        );
    }
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(5), feed.entries.recv())
            .await
            .expect("an entry within 5 s")
            .unwrap()
            .offset
    };
    for i in 1..=4 {
        assert_eq!(next().await, i);
    }
    let epoch = nodes[0].read("r3", u64::MAX).await.unwrap().state.epoch;

    // Another server restarts: the stream stays available, through every node (the one
    // attached to the restarting server reconnects to another server of the cluster).
    nats.kill(other);
    for node in &nodes {
        append_when_back(node, "r3", "while another is down").await;
    }
    nats.run(other);
    for i in 5..=7 {
        assert_eq!(next().await, i);
    }

    // The holder restarts: with one replica the stream is away until it is back, then the
    // same log goes on (same epoch, no gap) and the feed resumes.
    nats.kill(held);
    nats.run(held);
    assert_eq!(append_when_back(&nodes[held], "r3", "after").await, 8);
    assert_eq!(
        nodes[other].read("r3", u64::MAX).await.unwrap().state.epoch,
        epoch
    );
    // With async-nats's default pull expiry the consumer was started again only after 25 to
    // 60 s here.
    let e = tokio::time::timeout(Duration::from_secs(15), feed.entries.recv())
        .await
        .expect("the feed resumes within 15 s of the holder's restart")
        .unwrap();
    assert_eq!(e.offset, 8, "each once, in order");
}
