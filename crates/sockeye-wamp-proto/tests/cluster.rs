//! The broker across nodes, sans-I/O: two routers in cluster mode joined by a loop that
//! carries every `Action::Forward` of one, through `ClusterEvent::encode`/`decode`, into the
//! other's `deliver_remote` — what a NATS backplane does, without NATS.

mod common;

use common::{Out, ALL_ROLES, H};
use sockeye_wamp_proto::router::{ConnId, Router, RouterConfig};
use sockeye_wamp_proto::{ClusterConfig, ClusterEvent, Message, Serializer, Value};

/// Two nodes, `a` (node 1) and `b` (node 2), and what crossed between them.
struct Pair {
    a: H,
    b: H,
    /// Every event carried, in order.
    carried: Vec<ClusterEvent>,
    /// Interest changes seen, per node: (node, subject, on).
    interest: Vec<(char, String, bool)>,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Node {
    A,
    B,
}

fn config(node: u16) -> RouterConfig {
    let mut c = RouterConfig::default();
    c.cluster = Some(ClusterConfig::node(node));
    c
}

impl Pair {
    fn new() -> Self {
        Pair {
            a: H {
                r: Router::with_seed(config(1), 1),
            },
            b: H {
                r: Router::with_seed(config(2), 2),
            },
            carried: Vec::new(),
            interest: Vec::new(),
        }
    }

    fn node(&mut self, n: Node) -> &mut H {
        match n {
            Node::A => &mut self.a,
            Node::B => &mut self.b,
        }
    }

    /// Feeds one JSON message to a node, carries what it forwards to the other node until
    /// nothing more crosses, and returns the messages each node sent: (a's, b's).
    fn send(&mut self, n: Node, c: ConnId, json: &str) -> (Vec<Out>, Vec<Out>) {
        let first = self.node(n).send(c, json);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        match n {
            Node::A => a = first,
            Node::B => b = first,
        }
        self.settle(a, b)
    }

    fn settle(&mut self, a: Vec<Out>, b: Vec<Out>) -> (Vec<Out>, Vec<Out>) {
        let (mut done_a, mut done_b) = (Vec::new(), Vec::new());
        let (mut todo_a, mut todo_b) = (a, b);
        while !todo_a.is_empty() || !todo_b.is_empty() {
            let (mut next_a, mut next_b) = (Vec::new(), Vec::new());
            for (from, todo, done, other, next_other) in [
                ('a', &mut todo_a, &mut done_a, &mut self.b, &mut next_b),
                ('b', &mut todo_b, &mut done_b, &mut self.a, &mut next_a),
            ] {
                for o in todo.drain(..) {
                    match o {
                        Out::Forward(e) => {
                            // Through the wire format, as a backplane carries it.
                            let e = ClusterEvent::decode(&e.encode()).expect("decodes");
                            self.carried.push(e.clone());
                            other.r.deliver_remote(e);
                            next_other.extend(other.drain());
                        }
                        Out::Interest(s, on) => self.interest.push((from, s, on)),
                        o => done.push(o),
                    }
                }
            }
            (todo_a, todo_b) = (next_a, next_b);
        }
        (done_a, done_b)
    }

    fn join(&mut self, n: Node) -> (ConnId, u64) {
        let h = self.node(n);
        let c = h.r.connect();
        let (a, b) = self.send(n, c, &format!(r#"[1,"realm1",{ALL_ROLES}]"#));
        let out = if n == Node::A { a } else { b };
        match &messages(out)[..] {
            [(to, Message::Welcome { session, .. })] if *to == c => (c, *session),
            other => panic!("no WELCOME: {other:?}"),
        }
    }

    fn subscribe(&mut self, n: Node, c: ConnId, options: &str, topic: &str) -> u64 {
        let (a, b) = self.send(n, c, &format!(r#"[32,1,{options},"{topic}"]"#));
        let out = if n == Node::A { a } else { b };
        match &messages(out)[..] {
            [(_, Message::Subscribed { subscription, .. })] => *subscription,
            other => panic!("not subscribed: {other:?}"),
        }
    }
}

fn messages(out: Vec<Out>) -> Vec<(ConnId, Message)> {
    out.into_iter()
        .map(|o| match o {
            Out::Msg(c, t) => (c, Serializer::Json.decode(t.as_bytes()).unwrap()),
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

/// The EVENTs in `out`: (to, subscription, publication, details, args).
fn events(out: Vec<Out>) -> Vec<(ConnId, u64, u64, sockeye_wamp_proto::Dict, Vec<Value>)> {
    messages(out)
        .into_iter()
        .filter_map(|(c, m)| match m {
            Message::Event {
                subscription,
                publication,
                details,
                payload,
            } => Some((
                c,
                subscription,
                publication,
                details,
                payload.args().to_vec(),
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn a_subscriber_on_b_receives_a_publish_on_a_for_exact_prefix_and_wildcard_subscriptions() {
    let mut p = Pair::new();
    let (publisher, _) = p.join(Node::A);
    let (sub, _) = p.join(Node::B);
    let exact = p.subscribe(Node::B, sub, "{}", "com.myapp.topic1");
    let prefix = p.subscribe(Node::B, sub, r#"{"match":"prefix"}"#, "com.my");
    let wildcard = p.subscribe(Node::B, sub, r#"{"match":"wildcard"}"#, "com..topic1");
    let (on_a, on_b) = p.send(
        Node::A,
        publisher,
        r#"[16,1,{"acknowledge":true},"com.myapp.topic1",["hi"],{"k":1}]"#,
    );
    let publication = match &messages(on_a)[..] {
        [(_, Message::Published { publication, .. })] => *publication,
        other => panic!("{other:?}"),
    };
    let got = events(on_b);
    let subs: Vec<u64> = got.iter().map(|e| e.1).collect();
    assert_eq!(subs, vec![exact, prefix, wildcard]);
    for (to, sub_id, publication_b, details, args) in got {
        assert_eq!(to, sub);
        assert_eq!(publication_b, publication, "the same id on every node");
        assert_eq!(args, vec![Value::from("hi")]);
        let topic = details.get_str("topic");
        if sub_id == exact {
            assert_eq!(topic, None);
        } else {
            assert_eq!(topic, Some("com.myapp.topic1"));
        }
    }
    // A topic the prefix's NATS subject (com.>) covers but WAMP's byte-wise prefix does not.
    let (_, on_b) = p.send(Node::A, publisher, r#"[16,2,{},"com.other",[]]"#);
    assert!(events(on_b).is_empty());
}

#[test]
fn exclude_and_eligible_by_session_id_hold_across_nodes() {
    let mut p = Pair::new();
    let (publisher, _) = p.join(Node::A);
    let (b1, id1) = p.join(Node::B);
    let (b2, id2) = p.join(Node::B);
    p.subscribe(Node::B, b1, "{}", "t");
    p.subscribe(Node::B, b2, "{}", "t");
    let mut receivers = |options: String| -> Vec<ConnId> {
        let (_, on_b) = p.send(Node::A, publisher, &format!(r#"[16,1,{options},"t"]"#));
        events(on_b).into_iter().map(|e| e.0).collect()
    };
    assert_eq!(receivers("{}".into()), vec![b1, b2]);
    assert_eq!(receivers(format!(r#"{{"exclude":[{id1}]}}"#)), vec![b2]);
    assert_eq!(receivers(format!(r#"{{"eligible":[{id1}]}}"#)), vec![b1]);
    assert_eq!(
        receivers(format!(r#"{{"eligible":[{id1},{id2}],"exclude":[{id2}]}}"#)),
        vec![b1]
    );
    assert_eq!(
        receivers(format!(r#"{{"exclude_authid":["anonymous-{id2}"]}}"#)),
        vec![b1]
    );
    assert_eq!(
        receivers(r#"{"eligible_authrole":["nobody"]}"#.into()),
        vec![]
    );
}

#[test]
fn disclose_me_details_arrive_on_the_other_node() {
    let mut p = Pair::new();
    let (publisher, publisher_id) = p.join(Node::A);
    let (sub, _) = p.join(Node::B);
    p.subscribe(Node::B, sub, "{}", "t");
    let (_, on_b) = p.send(Node::A, publisher, r#"[16,1,{"disclose_me":true},"t"]"#);
    let got = events(on_b);
    let details = &got[0].3;
    assert_eq!(details.get_u64("publisher"), Some(publisher_id));
    assert_eq!(
        details.get_str("publisher_authid"),
        Some(format!("anonymous-{publisher_id}").as_str())
    );
    assert_eq!(details.get_str("publisher_authrole"), Some("anonymous"));
    // Without disclose_me, nothing names the publisher.
    let (_, on_b) = p.send(Node::A, publisher, r#"[16,2,{},"t"]"#);
    assert_eq!(events(on_b)[0].3.get("publisher"), None);
}

#[test]
fn a_retained_event_published_on_a_reaches_a_later_subscriber_on_b_with_get_retained() {
    let mut p = Pair::new();
    let (publisher, _) = p.join(Node::A);
    let (sub, _) = p.join(Node::B);
    let (_, on_b) = p.send(
        Node::A,
        publisher,
        r#"[16,1,{"retain":true},"com.a.b",["kept"]]"#,
    );
    assert!(on_b.is_empty(), "no subscriber yet");
    let (_, on_b) = p.send(
        Node::B,
        sub,
        r#"[32,7,{"get_retained":true,"match":"prefix"},"com.a"]"#,
    );
    let msgs = messages(on_b);
    let publication = p.carried[0].publication;
    match &msgs[..] {
        [(_, Message::Subscribed { .. }), (
            _,
            Message::Event {
                publication: got,
                details,
                payload,
                ..
            },
        )] => {
            assert_eq!(*got, publication);
            assert_eq!(details.get_bool("retained"), Some(true));
            assert_eq!(details.get_str("topic"), Some("com.a.b"));
            assert_eq!(payload.args(), &[Value::from("kept")]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_publishers_node_does_not_get_a_duplicate() {
    let mut p = Pair::new();
    let (publisher, _) = p.join(Node::A);
    let (local, _) = p.join(Node::A);
    let (remote, _) = p.join(Node::B);
    p.subscribe(Node::A, local, "{}", "t");
    p.subscribe(Node::A, publisher, "{}", "t");
    p.subscribe(Node::B, remote, "{}", "t");
    let (on_a, on_b) = p.send(Node::A, publisher, r#"[16,1,{"exclude_me":false},"t"]"#);
    let to_a: Vec<ConnId> = events(on_a).into_iter().map(|e| e.0).collect();
    assert_eq!(to_a, vec![publisher, local], "each once");
    assert_eq!(events(on_b).len(), 1);
    // A backplane that echoes the event back to its origin changes nothing there.
    let echo = p.carried[0].clone();
    p.a.r.deliver_remote(echo);
    assert!(p.a.drain().is_empty());
    assert_eq!(p.a.r.stats().remote_dropped, 1);
}

#[test]
fn a_forwarded_event_is_never_forwarded_again() {
    let mut p = Pair::new();
    let (publisher, _) = p.join(Node::A);
    let (sub, _) = p.join(Node::B);
    p.subscribe(Node::B, sub, "{}", "t");
    let _ = p.send(Node::A, publisher, r#"[16,1,{},"t"]"#);
    // One crossing from a to b, none back.
    assert_eq!(p.carried.len(), 1);
    assert_eq!(p.b.r.stats().forwarded, 0);
    assert_eq!(p.b.r.stats().remote_publications, 1);
    // deliver_remote emits EVENTs only.
    let e = p.carried[0].clone();
    p.b.r.deliver_remote(e);
    assert!(p
        .b
        .drain()
        .iter()
        .all(|o| matches!(o, Out::Msg(_, t) if t.starts_with("[36,"))));
}

#[test]
fn trusted_sessions_publications_are_forwarded_but_meta_events_stay_on_their_node() {
    let mut p = Pair::new();
    let (watcher, _) = p.join(Node::B);
    p.subscribe(Node::B, watcher, "{}", "wamp.session.on_join");
    p.subscribe(Node::B, watcher, "{}", "ticks");
    // A session joining node a is node a's business.
    let _ = p.join(Node::A);
    assert!(p.carried.is_empty());
    let c = p.a.r.connect();
    p.a.r.join_trusted(c, "realm1", "market").unwrap();
    let _ = p.a.drain();
    assert!(p.carried.is_empty());
    let (_, on_b) = p.send(Node::A, c, r#"[16,1,{},"ticks",[1]]"#);
    assert_eq!(events(on_b).len(), 1);
}

#[test]
fn an_event_for_a_realm_missing_here_is_dropped_without_creating_it() {
    let mut p = Pair::new();
    let c = p.a.r.connect();
    let _ = p.a.send(c, &format!(r#"[1,"elsewhere",{ALL_ROLES}]"#));
    let (_, on_b) = p.send(Node::A, c, r#"[16,1,{"retain":true},"t"]"#);
    assert!(on_b.is_empty());
    assert_eq!(p.carried.len(), 1);
    assert_eq!(p.b.r.realm_count(), 1, "realm1 only");
    assert_eq!(p.b.r.stats().remote_dropped, 1);
}

#[test]
fn interest_is_announced_with_the_first_subscription_needing_it_and_withdrawn_with_the_last() {
    let mut p = Pair::new();
    let (s1, _) = p.join(Node::B);
    let (s2, _) = p.join(Node::B);
    // Two prefixes whose last component is partial share the subject com.>.
    p.subscribe(Node::B, s1, r#"{"match":"prefix"}"#, "com.my");
    p.subscribe(Node::B, s2, r#"{"match":"prefix"}"#, "com.myapp");
    p.subscribe(Node::B, s2, r#"{"match":"wildcard"}"#, "com..x");
    p.subscribe(Node::B, s1, "{}", "a*b");
    let on = |s: &str| ('b', s.to_owned(), true);
    let off = |s: &str| ('b', s.to_owned(), false);
    assert_eq!(
        p.interest,
        vec![
            on("sockeye.wamp.realm1.com.>"),
            on("sockeye.wamp.realm1.com.*.x"),
            on("sockeye.wamp.realm1.a%2Ab"),
        ]
    );
    let subjects: Vec<String> = p.b.r.interests().into_iter().map(|(_, s)| s).collect();
    assert_eq!(
        subjects,
        vec![
            "sockeye.wamp.realm1.a%2Ab",
            "sockeye.wamp.realm1.com.*.x",
            "sockeye.wamp.realm1.com.>",
        ]
    );
    p.interest.clear();
    // s1 leaves: com.> is still needed by s2's com.myapp.
    p.b.r.disconnect(s1);
    let out = p.b.drain();
    let _ = p.settle(Vec::new(), out);
    assert_eq!(p.interest, vec![off("sockeye.wamp.realm1.a%2Ab")]);
    p.interest.clear();
    p.b.r.disconnect(s2);
    let out = p.b.drain();
    let _ = p.settle(Vec::new(), out);
    let mut got = p.interest.clone();
    got.sort();
    assert_eq!(
        got,
        vec![
            off("sockeye.wamp.realm1.com.*.x"),
            off("sockeye.wamp.realm1.com.>"),
        ]
    );
    assert!(p.b.r.interests().is_empty());
}

#[test]
fn session_ids_of_routers_with_different_node_ids_never_collide() {
    // The same seed: the random parts of the ids are the same on both, the node ids differ.
    let mut a = H {
        r: Router::with_seed(config(1), 9),
    };
    let mut b = H {
        r: Router::with_seed(config(2), 9),
    };
    let mut ids = std::collections::HashSet::new();
    for _ in 0..200 {
        let (_, x) = a.join();
        let (_, y) = b.join();
        assert!(ids.insert(x) && ids.insert(y));
        assert_eq!((x >> 37, y >> 37), (1, 2));
    }
}

#[test]
fn out_of_cluster_mode_a_router_emits_no_cluster_actions() {
    let (mut h, a, b) = H::two_sessions();
    h.subscribe(b, r#"{"match":"prefix"}"#, "t");
    let out = h.send(a, r#"[16,1,{"retain":true},"t.x"]"#);
    assert!(out.iter().all(|o| matches!(o, Out::Msg(..))), "{out:?}");
    assert_eq!(h.r.stats().forwarded, 0);
    assert!(h.r.interests().is_empty());
}
