//! Two `WampRouter`s in cluster mode on real WebSockets, joined by their `ClusterLink`s
//! through the wire format (what a NATS backplane does, without NATS): WAMP clients on
//! different nodes see each other's publications.

use std::time::Duration;

use sockeye::Config;
use sockeye_wamp::client::Client;
use sockeye_wamp::{
    dict, ClusterConfig, ClusterEvent, ClusterOut, Dict, Payload, RouterConfig, Serializer,
    TransportConfig, Value, WampRouter,
};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::timeout;

async fn serve(router: WampRouter) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/wamp", listener.local_addr().unwrap());
    tokio::spawn(sockeye::serve(
        listener,
        Config::default(),
        move |upgrade, _| {
            let r = router.clone();
            async move {
                let _ = r.serve(upgrade).await;
            }
        },
    ));
    url
}

async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    timeout(Duration::from_secs(10), f)
        .await
        .expect("timed out")
}

fn node(id: u16) -> WampRouter {
    let mut config = RouterConfig::default();
    config.cluster = Some(ClusterConfig::node(id));
    WampRouter::new(config, TransportConfig::default())
}

/// Carries `from`'s events, encoded and decoded, to `to`; reports `from`'s interest changes.
fn link(from: &WampRouter, to: WampRouter) -> mpsc::UnboundedReceiver<(String, bool)> {
    let mut link = from.cluster_link(1024);
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(out) = link.recv().await {
            match out {
                ClusterOut::Event(e) => {
                    to.deliver_remote(ClusterEvent::decode(&e.encode()).unwrap())
                }
                ClusterOut::Interest { subject, on, .. } => {
                    let _ = tx.send((subject, on));
                }
                _ => {}
            }
        }
    });
    rx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_on_two_nodes_receive_each_others_publications_once() {
    let (a, b) = (node(1), node(2));
    let mut interest_a = link(&a, b.clone());
    let mut interest_b = link(&b, a.clone());
    let (url_a, url_b) = (serve(a.clone()).await, serve(b.clone()).await);

    let on_a = Client::connect(&url_a, "realm1", Serializer::Json)
        .await
        .unwrap();
    let on_b = Client::connect(&url_b, "realm1", Serializer::MsgPack)
        .await
        .unwrap();
    let mut exact_b = on_b.subscribe("com.x.tick", Dict::new()).await.unwrap();
    let mut prefix_b = on_b
        .subscribe("com.x", dict! {"match" => "prefix"})
        .await
        .unwrap();
    let mut wild_a = on_a
        .subscribe("com..tick", dict! {"match" => "wildcard"})
        .await
        .unwrap();
    // Each node asked for the subjects its subscriptions need.
    assert_eq!(
        within(interest_b.recv()).await,
        Some(("sockeye.wamp.realm1.com.x.tick".into(), true))
    );
    assert_eq!(
        within(interest_b.recv()).await,
        Some(("sockeye.wamp.realm1.com.>".into(), true))
    );
    assert_eq!(
        within(interest_a.recv()).await,
        Some(("sockeye.wamp.realm1.com.*.tick".into(), true))
    );

    // a publishes: b's exact and prefix subscribers get it, with the same publication id.
    let publication = on_a
        .publish(
            "com.x.tick",
            Payload::Args(vec![Value::from(1)]),
            dict! {"acknowledge" => true, "disclose_me" => true},
        )
        .await
        .unwrap()
        .unwrap();
    for sub in [&mut exact_b, &mut prefix_b] {
        let ev = within(sub.next()).await.unwrap();
        assert_eq!(ev.publication, publication);
        assert_eq!(ev.payload, Payload::Args(vec![Value::from(1)]));
        assert_eq!(ev.details.get_u64("publisher"), Some(on_a.session_id()));
    }
    // a's own wildcard subscriber is the publisher (exclude_me): nothing for it.
    // b publishes: a's wildcard subscriber gets it.
    on_b.publish(
        "com.y.tick",
        Payload::Args(vec![Value::from(2)]),
        Dict::new(),
    )
    .await
    .unwrap();
    let ev = within(wild_a.next()).await.unwrap();
    assert_eq!(ev.details.get_str("topic"), Some("com.y.tick"));
    assert_eq!(ev.payload, Payload::Args(vec![Value::from(2)]));

    // Retained on a, asked for on b by a later subscriber.
    on_a.publish(
        "com.r",
        Payload::Args(vec!["kept".into()]),
        dict! {"retain" => true, "acknowledge" => true},
    )
    .await
    .unwrap();
    // No subscriber of b matches com.r (this link carries everything, as NATS would not);
    // wait until b has taken it.
    within(async {
        while b.with_router(|r| r.stats().remote_publications) < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let late = Client::connect(&url_b, "realm1", Serializer::Cbor)
        .await
        .unwrap();
    let mut retained = late
        .subscribe("com.r", dict! {"get_retained" => true})
        .await
        .unwrap();
    let ev = within(retained.next()).await.unwrap();
    assert_eq!(ev.details.get_bool("retained"), Some(true));
    assert_eq!(ev.payload, Payload::Args(vec!["kept".into()]));

    // Nothing arrived twice, nothing was forwarded back.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(exact_b.try_next().is_none());
    assert!(wild_a.try_next().is_none());
    assert_eq!(a.with_router(|r| r.stats().forwarded), 2);
    assert_eq!(b.with_router(|r| r.stats().forwarded), 1);
    assert_eq!(a.cluster_dropped() + b.cluster_dropped(), 0);
}
