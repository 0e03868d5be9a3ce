//! Two `WampRouter`s in cluster mode on real WebSockets, joined by their `ClusterLink`s
//! through the wire format (what a NATS backplane does, without NATS): WAMP clients on
//! different nodes see each other's publications and call each other's procedures.

use std::time::Duration;

use sockeye_wamp::client::Client;
use sockeye_wamp::proto::cluster::procedure_subject;
use sockeye_wamp::{
    dict, ClusterConfig, ClusterEvent, ClusterOut, Dict, Payload, RemoteAnswer, RemoteCall,
    RemoteCancel, RouterConfig, Serializer, TransportConfig, Value, WampRouter,
};
use tokio::sync::mpsc;

mod support;
use support::{assert_counts_down, serve, within};

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

/// Carries everything `from`'s link has for `to`, through the wire format, as NATS would: a
/// call goes to `to` if it has an exact registration of the procedure, else `from` hears "no
/// responders".
fn link_all(from: &WampRouter, to: WampRouter) {
    let mut link = from.cluster_link(1024);
    let from = from.clone();
    tokio::spawn(async move {
        while let Some(out) = link.recv().await {
            match out {
                ClusterOut::Event(e) => {
                    to.deliver_remote(ClusterEvent::decode(&e.encode()).unwrap())
                }
                ClusterOut::Call(c) => {
                    let c = RemoteCall::decode(&c.encode()).unwrap();
                    let subject = procedure_subject("sockeye.wamp", &c.realm, &c.procedure);
                    if to.with_router(|r| r.registrations().iter().any(|(_, s)| *s == subject)) {
                        to.invoke_remote(c);
                    } else {
                        from.remote_call_failed(c.key, "wamp.error.no_such_procedure");
                    }
                }
                ClusterOut::Answer(a) => {
                    to.remote_answer(RemoteAnswer::decode(&a.encode()).unwrap())
                }
                ClusterOut::Cancel(c) => {
                    to.cancel_remote(RemoteCancel::decode(&c.encode()).unwrap())
                }
                _ => {}
            }
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_on_one_node_gets_progressive_results_from_a_callee_on_the_other() {
    let (a, b) = (node(1), node(2));
    link_all(&a, b.clone());
    link_all(&b, a.clone());
    let (url_a, url_b) = (serve(a.clone()).await, serve(b.clone()).await);
    let caller = Client::connect(&url_a, "realm1", Serializer::Json)
        .await
        .unwrap();
    let callee = Client::connect(&url_b, "realm1", Serializer::MsgPack)
        .await
        .unwrap();
    let mut countdown = callee
        .register("com.x.countdown", Dict::new())
        .await
        .unwrap();
    let mut hang = callee.register("com.x.hang", Dict::new()).await.unwrap();
    let c = callee.clone();
    let caller_id = caller.session_id();
    tokio::spawn(async move {
        while let Some(inv) = countdown.next().await {
            assert_eq!(inv.details.get_bool("receive_progress"), Some(true));
            assert_eq!(inv.details.get_u64("caller"), Some(caller_id));
            let n = inv.payload.args()[0].as_i64().unwrap();
            for i in (1..=n).rev() {
                c.yield_progress(inv.request, Payload::Args(vec![i.into()]))
                    .await
                    .unwrap();
            }
            c.yield_result(inv.request, Payload::Args(vec!["liftoff".into()]))
                .await
                .unwrap();
        }
    });

    let call = caller
        .start_call(
            "com.x.countdown",
            Payload::Args(vec![3.into()]),
            dict! {"receive_progress" => true, "disclose_me" => true},
        )
        .unwrap();
    assert_counts_down(call).await;

    // Registered nowhere: no_such_procedure, at once.
    let err = within(caller.call("com.x.nowhere", Payload::Empty, Dict::new()))
        .await
        .unwrap_err();
    assert_eq!(err.error_uri(), Some("wamp.error.no_such_procedure"));

    // The callee's node goes away mid-call: the caller gets an ERROR, not a hang.
    let mut call = caller
        .start_call("com.x.hang", Payload::Empty, Dict::new())
        .unwrap();
    within(hang.next()).await.unwrap();
    // node_gone fails the calls a node has accepted; b's Accepted may still be crossing the
    // link when the callee has its INVOCATION, so say it until the caller hears.
    let err = within(async {
        loop {
            a.node_gone(b.origin());
            tokio::select! {
                r = call.next() => break r.unwrap().unwrap_err(),
                _ = tokio::time::sleep(Duration::from_millis(5)) => {}
            }
        }
    })
    .await;
    assert_eq!(err.error_uri(), Some("wamp.error.canceled"));

    assert_eq!(a.with_router(|r| r.stats().remote_calls), 3);
    assert_eq!(b.with_router(|r| r.stats().remote_invocations), 2);
    assert_eq!(a.cluster_dropped() + b.cluster_dropped(), 0);
}
