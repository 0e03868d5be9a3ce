//! The broker and the dealer across nodes, sans-I/O: two routers in cluster mode joined by a
//! loop that carries every cluster action of one, through the wire format, into the other —
//! `Forward` to `deliver_remote`, `RemoteCall` to `invoke_remote`, `RemoteAnswer` to
//! `remote_answer`, `RemoteCancel` to `cancel_remote` — what a NATS backplane does, without
//! NATS.

mod common;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use common::{Out, ALL_ROLES, H};
use sockeye_wamp_proto::cluster::procedure_subject;
use sockeye_wamp_proto::cluster::rpc::{
    Answer, CancelMode, RemoteAnswer, RemoteCall, RemoteCancel, RpcMessage,
};
use sockeye_wamp_proto::router::{ConnId, Router, RouterConfig};
use sockeye_wamp_proto::{ClusterConfig, ClusterEvent, Dict, Message, Serializer, Value};

/// Two nodes, `a` (node 1) and `b` (node 2), and what crossed between them.
struct Pair {
    a: H,
    b: H,
    /// Every event carried, in order.
    carried: Vec<ClusterEvent>,
    /// Interest changes seen, per node: (node, subject, on).
    interest: Vec<(char, String, bool)>,
    /// Procedure subjects announced, per node: (node, subject, on).
    registered: Vec<(char, String, bool)>,
    /// Every call, answer and cancel carried, in order, with the node it came from.
    rpc: Vec<(char, RpcMessage)>,
    /// A node whose cluster messages are lost (it died, as far as the others can tell).
    dead: Option<char>,
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
            registered: Vec::new(),
            rpc: Vec::new(),
            dead: None,
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

    /// Carries every cluster action of either node to where a backplane would take it,
    /// through the wire format, until nothing more crosses; returns the rest: (a's, b's).
    ///
    /// A RemoteCall goes to the other node if it announced the procedure's subject
    /// (`Registered`), else its node is told "no responders" (`remote_call_failed` with
    /// `no_such_procedure`), as NATS answers a request nobody subscribes to. Cluster actions
    /// of a node in `dead` are lost.
    fn settle(&mut self, a: Vec<Out>, b: Vec<Out>) -> (Vec<Out>, Vec<Out>) {
        let (mut done_a, mut done_b) = (Vec::new(), Vec::new());
        let mut queue: VecDeque<(char, Out)> = a.into_iter().map(|o| ('a', o)).collect();
        queue.extend(b.into_iter().map(|o| ('b', o)));
        while let Some((from, o)) = queue.pop_front() {
            let (me, other, to) = match from {
                'a' => (&mut self.a, &mut self.b, 'b'),
                _ => (&mut self.b, &mut self.a, 'a'),
            };
            let cluster = !matches!(o, Out::Msg(..) | Out::Close(_));
            if cluster && self.dead == Some(from) {
                continue;
            }
            // Where the output of this step comes from.
            let mut on = to;
            match o {
                Out::Forward(e) => {
                    // Through the wire format, as a backplane carries it.
                    let e = ClusterEvent::decode(&e.encode()).expect("decodes");
                    self.carried.push(e.clone());
                    other.r.deliver_remote(e);
                }
                Out::Interest(s, on) => self.interest.push((from, s, on)),
                Out::Registered(s, on) => self.registered.push((from, s, on)),
                Out::RemoteCall(c) => {
                    let c = RemoteCall::decode(&c.encode()).expect("decodes");
                    self.rpc.push((from, RpcMessage::Call(c.clone())));
                    let subject = procedure_subject("sockeye.wamp", &c.realm, &c.procedure);
                    if self.dead != Some(to)
                        && other.r.registrations().iter().any(|(_, s)| *s == subject)
                    {
                        other.r.invoke_remote(c);
                    } else {
                        me.r.remote_call_failed(c.key, "wamp.error.no_such_procedure");
                        on = from;
                    }
                }
                Out::RemoteAnswer(x) => {
                    let x = RemoteAnswer::decode(&x.encode()).expect("decodes");
                    self.rpc.push((from, RpcMessage::Answer(x.clone())));
                    assert_eq!(
                        x.key.origin,
                        other.r.origin(),
                        "addressed to the caller's node"
                    );
                    assert_eq!(x.node, me.r.origin());
                    other.r.remote_answer(x);
                }
                Out::RemoteCancel(x) => {
                    let x = RemoteCancel::decode(&x.encode()).expect("decodes");
                    self.rpc.push((from, RpcMessage::Cancel(x.clone())));
                    other.r.cancel_remote(x);
                }
                o => {
                    match from {
                        'a' => done_a.push(o),
                        _ => done_b.push(o),
                    }
                    continue;
                }
            }
            let h = if on == 'a' { &mut self.a } else { &mut self.b };
            queue.extend(h.drain().into_iter().map(|o| (on, o)));
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

// ---- The dealer across nodes ----

/// Messages sent, decoded, with their connection.
type Msgs = Vec<(ConnId, Message)>;

impl Pair {
    /// Feeds one JSON message and returns the messages each node sent, decoded.
    fn msgs(&mut self, n: Node, c: ConnId, json: &str) -> (Msgs, Msgs) {
        let (a, b) = self.send(n, c, json);
        (messages(a), messages(b))
    }

    fn register(&mut self, n: Node, c: ConnId, options: &str, procedure: &str) -> u64 {
        let (a, b) = self.msgs(n, c, &format!(r#"[64,1,{options},"{procedure}"]"#));
        match &(if n == Node::A { a } else { b })[..] {
            [(_, Message::Registered { registration, .. })] => *registration,
            other => panic!("not registered: {other:?}"),
        }
    }

    /// Carries what a node has to say after a direct call of its router.
    fn settle_node(&mut self, n: Node) -> (Vec<Out>, Vec<Out>) {
        let out = self.node(n).drain();
        match n {
            Node::A => self.settle(out, Vec::new()),
            Node::B => self.settle(Vec::new(), out),
        }
    }

    /// Tells both routers the time and carries what follows.
    fn at(&mut self, now: Instant) -> (Msgs, Msgs) {
        self.a.r.handle_timeout(now);
        self.b.r.handle_timeout(now);
        let (a, b) = (self.a.drain(), self.b.drain());
        let (a, b) = self.settle(a, b);
        (messages(a), messages(b))
    }

    /// A caller on a, a callee on b that registered `p`: (caller, callee, registration).
    fn caller_and_callee_of_p() -> (Self, ConnId, ConnId, u64) {
        let mut p = Pair::new();
        let (caller, _) = p.join(Node::A);
        let (callee, _) = p.join(Node::B);
        let reg = p.register(Node::B, callee, "{}", "com.p");
        (p, caller, callee, reg)
    }

    /// The cancels carried: (from, mode, reason).
    fn cancels(&self) -> Vec<(char, CancelMode, Option<String>)> {
        self.rpc
            .iter()
            .filter_map(|(from, m)| match m {
                RpcMessage::Cancel(c) => Some((*from, c.mode, c.reason.clone())),
                _ => None,
            })
            .collect()
    }
}

/// The one INVOCATION in `out`: (callee, request, registration, details, args).
fn invocation(out: &[(ConnId, Message)]) -> (ConnId, u64, u64, Dict, Vec<Value>) {
    match out {
        [(
            to,
            Message::Invocation {
                request,
                registration,
                details,
                payload,
            },
        )] => (
            *to,
            *request,
            *registration,
            details.clone(),
            payload.args().to_vec(),
        ),
        other => panic!("no INVOCATION: {other:?}"),
    }
}

/// The one RESULT or ERROR in `out`, as (to, request, Ok((details, args)) or Err(uri)).
#[allow(clippy::type_complexity)]
fn answer(out: &[(ConnId, Message)]) -> (ConnId, u64, Result<(Dict, Vec<Value>), String>) {
    match out {
        [(
            to,
            Message::Result {
                request,
                details,
                payload,
            },
        )] => (
            *to,
            *request,
            Ok((details.clone(), payload.args().to_vec())),
        ),
        [(
            to,
            Message::Error {
                request_type: 48,
                request,
                error,
                ..
            },
        )] => (*to, *request, Err(error.clone())),
        other => panic!("no RESULT or ERROR: {other:?}"),
    }
}

#[test]
fn a_call_on_a_reaches_a_callee_on_b_and_gets_its_result() {
    let (mut p, caller, callee, reg) = Pair::caller_and_callee_of_p();
    assert_eq!(
        p.registered,
        vec![('b', "sockeye.wamp-rpc.realm1.com.p".to_owned(), true)]
    );
    let caller_id = p.a.r.session_id(caller).unwrap();
    let (on_a, on_b) = p.msgs(
        Node::A,
        caller,
        r#"[48,7,{"disclose_me":true},"com.p",[2,3],{"k":"v"}]"#,
    );
    assert!(on_a.is_empty(), "the caller waits: {on_a:?}");
    let (to, inv, registration, details, args) = invocation(&on_b);
    assert_eq!((to, registration), (callee, reg));
    assert_eq!(args, vec![Value::from(2), Value::from(3)]);
    assert_eq!(details.get_u64("caller"), Some(caller_id));
    assert_eq!(details.get_str("caller_authrole"), Some("anonymous"));
    let (on_a, on_b) = p.msgs(Node::B, callee, &format!(r#"[70,{inv},{{}},[5]]"#));
    assert!(on_b.is_empty());
    assert_eq!(
        answer(&on_a),
        (caller, 7, Ok((Dict::new(), vec![Value::from(5)])))
    );
    // The callee's node said it took the call, then answered; nothing else crossed.
    let kinds: Vec<String> = p
        .rpc
        .iter()
        .map(|(from, m)| match m {
            RpcMessage::Call(_) => format!("{from} call"),
            RpcMessage::Answer(a) => format!("{from} {:?}", std::mem::discriminant(&a.answer)),
            other => format!("{from} {other:?}"),
        })
        .collect();
    assert_eq!(kinds.len(), 3, "{kinds:?}");
    assert_eq!(p.a.r.stats().remote_calls, 1);
    assert_eq!(p.b.r.stats().remote_invocations, 1);
    // An ERROR from the callee reaches the caller unchanged.
    let (_, on_b) = p.msgs(Node::A, caller, r#"[48,8,{},"com.p",[]]"#);
    let inv = invocation(&on_b).1;
    let (on_a, _) = p.msgs(
        Node::B,
        callee,
        &format!(r#"[8,68,{inv},{{}},"com.myapp.oops",["why"]]"#),
    );
    match &on_a[..] {
        [(
            to,
            Message::Error {
                request: 8,
                error,
                payload,
                ..
            },
        )] => {
            assert_eq!(*to, caller);
            assert_eq!(error, "com.myapp.oops");
            assert_eq!(payload.args(), &[Value::from("why")]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn progressive_results_arrive_in_order_and_then_the_final() {
    let (mut p, caller, callee, _) = Pair::caller_and_callee_of_p();
    let (_, on_b) = p.msgs(
        Node::A,
        caller,
        r#"[48,1,{"receive_progress":true},"com.p",[]]"#,
    );
    let (_, inv, _, details, _) = invocation(&on_b);
    assert_eq!(details.get_bool("receive_progress"), Some(true));
    for i in 0..3 {
        let (on_a, _) = p.msgs(
            Node::B,
            callee,
            &format!(r#"[70,{inv},{{"progress":true}},[{i}]]"#),
        );
        let (to, request, got) = answer(&on_a);
        let (details, args) = got.unwrap();
        assert_eq!((to, request, args), (caller, 1, vec![Value::from(i)]));
        assert_eq!(details.get_bool("progress"), Some(true));
    }
    let (on_a, _) = p.msgs(Node::B, callee, &format!(r#"[70,{inv},{{}},["done"]]"#));
    let (details, args) = answer(&on_a).2.unwrap();
    assert_eq!(details.get("progress"), None);
    assert_eq!(args, vec![Value::from("done")]);
    // A progressive result after the final one goes nowhere.
    let (on_a, _) = p.msgs(
        Node::B,
        callee,
        &format!(r#"[70,{inv},{{"progress":true}},[9]]"#),
    );
    assert!(on_a.is_empty());
    // A caller that did not ask for progress gets the final result only.
    let (_, on_b) = p.msgs(Node::A, caller, r#"[48,2,{},"com.p",[]]"#);
    let (_, inv, _, details, _) = invocation(&on_b);
    assert_eq!(details.get("receive_progress"), None);
    let (on_a, _) = p.msgs(
        Node::B,
        callee,
        &format!(r#"[70,{inv},{{"progress":true}},[1]]"#),
    );
    assert!(on_a.is_empty());
    let (on_a, _) = p.msgs(Node::B, callee, &format!(r#"[70,{inv},{{}},[2]]"#));
    assert_eq!(answer(&on_a).2.unwrap().1, vec![Value::from(2)]);
}

#[test]
fn a_call_for_a_procedure_registered_nowhere_gets_no_such_procedure() {
    let mut p = Pair::new();
    let (caller, _) = p.join(Node::A);
    let (callee, _) = p.join(Node::B);
    let (on_a, on_b) = p.msgs(Node::A, caller, r#"[48,1,{},"com.nowhere",[]]"#);
    assert!(on_b.is_empty());
    assert_eq!(
        answer(&on_a),
        (caller, 1, Err("wamp.error.no_such_procedure".into()))
    );
    // A node given a call it has no registration for (a transport that broadcasts) says so.
    p.register(Node::B, callee, "{}", "com.p");
    let call = match &p.rpc[0].1 {
        RpcMessage::Call(c) => c.clone(),
        other => panic!("{other:?}"),
    };
    p.b.r.invoke_remote(call);
    match &p.b.drain()[..] {
        [Out::RemoteAnswer(a)] => assert!(matches!(
            &a.answer,
            Answer::Error { error, .. } if error == "wamp.error.no_such_procedure"
        )),
        other => panic!("{other:?}"),
    }
    // The caller's node had forgotten the call: nothing for the caller twice.
    let (on_a, _) = p.settle(Vec::new(), Vec::new());
    assert!(on_a.is_empty());
}

#[test]
fn the_callers_timeout_gives_error_timeout_on_a_and_interrupt_on_b() {
    let (mut p, caller, callee, _) = Pair::caller_and_callee_of_p();
    let t0 = Instant::now();
    p.at(t0);
    let (_, on_b) = p.msgs(Node::A, caller, r#"[48,1,{"timeout":100},"com.p",[]]"#);
    let inv = invocation(&on_b).1;
    assert_eq!(p.a.r.poll_timeout(), Some(t0 + Duration::from_millis(100)));
    let (on_a, on_b) = p.at(t0 + Duration::from_millis(99));
    assert!(on_a.is_empty() && on_b.is_empty());
    let (on_a, on_b) = p.at(t0 + Duration::from_millis(100));
    assert_eq!(answer(&on_a), (caller, 1, Err("wamp.error.timeout".into())));
    match &on_b[..] {
        [(to, Message::Interrupt { request, options })] => {
            assert_eq!((*to, *request), (callee, inv));
            assert_eq!(options.get_str("mode"), Some("killnowait"));
            assert_eq!(options.get_str("reason"), Some("wamp.error.timeout"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        p.cancels(),
        vec![(
            'a',
            CancelMode::KillNoWait,
            Some("wamp.error.timeout".into())
        )]
    );
    // The callee's late answer is dropped on b (it forgot the call): nothing crosses.
    let before = p.rpc.len();
    let (on_a, _) = p.msgs(Node::B, callee, &format!(r#"[70,{inv},{{}},[1]]"#));
    assert!(on_a.is_empty());
    assert_eq!(p.rpc.len(), before);
}

#[test]
fn a_callers_cancel_interrupts_the_callee_on_b_and_the_caller_gets_canceled() {
    let (mut p, caller, callee, _) = Pair::caller_and_callee_of_p();
    // kill: the callee is interrupted, its ERROR ends the call.
    let (_, on_b) = p.msgs(Node::A, caller, r#"[48,1,{},"com.p",[]]"#);
    let inv = invocation(&on_b).1;
    let (on_a, on_b) = p.msgs(Node::A, caller, r#"[49,1,{"mode":"kill"}]"#);
    assert!(on_a.is_empty(), "kill waits for the callee");
    match &on_b[..] {
        [(to, Message::Interrupt { request, options })] => {
            assert_eq!((*to, *request), (callee, inv));
            assert_eq!(options.get_str("mode"), Some("kill"));
        }
        other => panic!("{other:?}"),
    }
    let (on_a, _) = p.msgs(
        Node::B,
        callee,
        &format!(r#"[8,68,{inv},{{}},"wamp.error.canceled"]"#),
    );
    assert_eq!(
        answer(&on_a),
        (caller, 1, Err("wamp.error.canceled".into()))
    );
    // killnowait: the caller is answered at once, the callee interrupted.
    let (_, on_b) = p.msgs(Node::A, caller, r#"[48,2,{},"com.p",[]]"#);
    let inv = invocation(&on_b).1;
    let (on_a, on_b) = p.msgs(Node::A, caller, r#"[49,2,{"mode":"killnowait"}]"#);
    assert_eq!(
        answer(&on_a),
        (caller, 2, Err("wamp.error.canceled".into()))
    );
    assert!(matches!(&on_b[..], [(_, Message::Interrupt { request, .. })] if *request == inv));
    let (on_a, _) = p.msgs(Node::B, callee, &format!(r#"[70,{inv},{{}},[1]]"#));
    assert!(on_a.is_empty(), "no result after the cancel");
    // skip: the caller is answered at once, the callee is not interrupted.
    let (_, on_b) = p.msgs(Node::A, caller, r#"[48,3,{},"com.p",[]]"#);
    let inv = invocation(&on_b).1;
    let (on_a, on_b) = p.msgs(Node::A, caller, r#"[49,3,{"mode":"skip"}]"#);
    assert_eq!(
        answer(&on_a),
        (caller, 3, Err("wamp.error.canceled".into()))
    );
    assert!(on_b.is_empty());
    let (on_a, _) = p.msgs(Node::B, callee, &format!(r#"[70,{inv},{{}},[1]]"#));
    assert!(on_a.is_empty());
    let modes: Vec<CancelMode> = p.cancels().into_iter().map(|c| c.1).collect();
    assert_eq!(
        modes,
        vec![CancelMode::Kill, CancelMode::KillNoWait, CancelMode::Skip]
    );
}

#[test]
fn kill_for_a_callee_that_cannot_be_interrupted_answers_canceled_at_once() {
    let mut p = Pair::new();
    let (caller, _) = p.join(Node::A);
    let c = p.b.r.connect();
    let (_, on_b) = p.msgs(Node::B, c, r#"[1,"realm1",{"roles":{"callee":{}}}]"#);
    assert!(matches!(&on_b[..], [(_, Message::Welcome { .. })]));
    p.register(Node::B, c, "{}", "com.p");
    let (_, on_b) = p.msgs(Node::A, caller, r#"[48,1,{},"com.p",[]]"#);
    invocation(&on_b);
    let (on_a, on_b) = p.msgs(Node::A, caller, r#"[49,1,{}]"#);
    assert!(
        on_b.is_empty(),
        "no INTERRUPT for a callee without call_canceling"
    );
    assert_eq!(
        answer(&on_a),
        (caller, 1, Err("wamp.error.canceled".into()))
    );
}

#[test]
fn the_callees_node_gone_mid_call_gives_canceled_and_a_late_result_is_never_delivered() {
    let (mut p, caller, callee, _) = Pair::caller_and_callee_of_p();
    let (_, on_b) = p.msgs(
        Node::A,
        caller,
        r#"[48,1,{"receive_progress":true},"com.p",[]]"#,
    );
    let inv = invocation(&on_b).1;
    let (on_a, _) = p.msgs(
        Node::B,
        callee,
        &format!(r#"[70,{inv},{{"progress":true}},[1]]"#),
    );
    assert_eq!(answer(&on_a).1, 1);
    // b goes silent; what it sends from now on is lost until a hears of it again.
    p.dead = Some('b');
    let b_origin = p.b.r.origin();
    p.a.r.node_gone(b_origin);
    let (on_a, _) = p.settle_node(Node::A);
    let (to, request, got) = answer(&messages(on_a));
    assert_eq!(
        (to, request, got),
        (caller, 1, Err("wamp.error.canceled".into()))
    );
    // b was only cut off: its late RESULT arrives after all, and is dropped.
    p.dead = None;
    let (on_a, _) = p.msgs(Node::B, callee, &format!(r#"[70,{inv},{{}},[2]]"#));
    assert!(on_a.is_empty());
    assert_eq!(p.a.r.stats().remote_answers_dropped, 1);
    // Another node's death changes nothing for a call served by b.
    let (_, on_b) = p.msgs(Node::A, caller, r#"[48,2,{},"com.p",[]]"#);
    let inv = invocation(&on_b).1;
    p.a.r.node_gone(b_origin ^ 1);
    assert!(p.a.drain().is_empty());
    let (on_a, _) = p.msgs(Node::B, callee, &format!(r#"[70,{inv},{{}},[3]]"#));
    assert_eq!(answer(&on_a).2.unwrap().1, vec![Value::from(3)]);
}

#[test]
fn the_callers_node_gone_interrupts_its_calls_on_the_callees_node() {
    let (mut p, caller, callee, _) = Pair::caller_and_callee_of_p();
    let (_, on_b) = p.msgs(Node::A, caller, r#"[48,1,{},"com.p",[]]"#);
    let inv = invocation(&on_b).1;
    let a_origin = p.a.r.origin();
    p.b.r.node_gone(a_origin);
    let on_b = messages(p.b.drain());
    match &on_b[..] {
        [(to, Message::Interrupt { request, options })] => {
            assert_eq!((*to, *request), (callee, inv));
            assert_eq!(options.get_str("mode"), Some("killnowait"));
        }
        other => panic!("{other:?}"),
    }
    // The callee's answer now goes nowhere.
    let before = p.rpc.len();
    let _ = p.msgs(Node::B, callee, &format!(r#"[70,{inv},{{}},[1]]"#));
    assert_eq!(p.rpc.len(), before);
}

#[test]
fn a_second_final_result_for_the_same_key_is_ignored() {
    let (mut p, caller, callee, _) = Pair::caller_and_callee_of_p();
    let (_, on_b) = p.msgs(Node::A, caller, r#"[48,1,{},"com.p",[]]"#);
    let inv = invocation(&on_b).1;
    let (on_a, _) = p.msgs(Node::B, callee, &format!(r#"[70,{inv},{{}},[1]]"#));
    assert_eq!(answer(&on_a).2.unwrap().1, vec![Value::from(1)]);
    // The backplane delivers the final answer again (a redelivery): dropped.
    let again = p
        .rpc
        .iter()
        .rev()
        .find_map(|(_, m)| match m {
            RpcMessage::Answer(a) if a.answer.is_final() => Some(a.clone()),
            _ => None,
        })
        .unwrap();
    p.a.r.remote_answer(again.clone());
    assert!(p.a.drain().is_empty());
    // An error for it, too; and an answer from a node that never took the call.
    p.a.r.remote_answer(RemoteAnswer {
        answer: Answer::Error {
            error: "x.y".into(),
            details: Dict::new(),
            payload: Default::default(),
        },
        ..again.clone()
    });
    p.a.r.remote_call_failed(again.key, "wamp.error.canceled");
    assert!(p.a.drain().is_empty());
    assert_eq!(p.a.r.stats().remote_answers_dropped, 2);
    let (_, on_b) = p.msgs(Node::A, caller, r#"[48,2,{},"com.p",[]]"#);
    let inv = invocation(&on_b).1;
    let key = match &p
        .rpc
        .iter()
        .rev()
        .find(|(_, m)| matches!(m, RpcMessage::Call(_)))
        .unwrap()
        .1
    {
        RpcMessage::Call(c) => c.key,
        _ => unreachable!(),
    };
    p.a.r.remote_answer(RemoteAnswer {
        key,
        node: p.b.r.origin() ^ 1,
        answer: Answer::Result {
            progress: false,
            details: Dict::new(),
            payload: Default::default(),
        },
    });
    assert!(p.a.drain().is_empty(), "not from the node that accepted it");
    let (on_a, _) = p.msgs(Node::B, callee, &format!(r#"[70,{inv},{{}},[2]]"#));
    assert_eq!(answer(&on_a).2.unwrap().1, vec![Value::from(2)]);
}

#[test]
fn a_callee_leaving_mid_call_fails_the_call_on_the_callers_node_with_canceled() {
    let (mut p, caller, callee, _) = Pair::caller_and_callee_of_p();
    let _ = p.msgs(Node::A, caller, r#"[48,1,{},"com.p",[]]"#);
    p.registered.clear();
    p.b.r.disconnect(callee);
    let (on_a, _) = p.settle_node(Node::B);
    assert_eq!(
        answer(&messages(on_a)),
        (caller, 1, Err("wamp.error.canceled".into()))
    );
    assert_eq!(
        p.registered,
        vec![('b', "sockeye.wamp-rpc.realm1.com.p".to_owned(), false)]
    );
}

#[test]
fn a_caller_leaving_cancels_its_remote_calls() {
    let (mut p, caller, callee, _) = Pair::caller_and_callee_of_p();
    let (_, on_b) = p.msgs(Node::A, caller, r#"[48,1,{},"com.p",[]]"#);
    let inv = invocation(&on_b).1;
    p.a.r.disconnect(caller);
    let (_, on_b) = p.settle_node(Node::A);
    assert!(matches!(
        &messages(on_b)[..],
        [(to, Message::Interrupt { request, .. })] if (*to, *request) == (callee, inv)
    ));
    assert_eq!(p.cancels(), vec![('a', CancelMode::KillNoWait, None)]);
}

#[test]
fn meta_procedures_stay_on_their_node() {
    let mut p = Pair::new();
    let (caller, _) = p.join(Node::A);
    let _ = p.join(Node::B);
    let _ = p.join(Node::B);
    let (on_a, on_b) = p.msgs(Node::A, caller, r#"[48,1,{},"wamp.session.count",[]]"#);
    assert!(on_b.is_empty());
    assert_eq!(
        answer(&on_a).2.unwrap().1,
        vec![Value::from(1)],
        "a's sessions only"
    );
    // An unknown meta procedure is not sent to the cluster either.
    let (on_a, _) = p.msgs(Node::A, caller, r#"[48,2,{},"wamp.no.such",[]]"#);
    assert_eq!(
        answer(&on_a),
        (caller, 2, Err("wamp.error.no_such_procedure".into()))
    );
    assert!(p.rpc.is_empty());
}

#[test]
fn a_local_registration_serves_the_call_and_only_exact_registrations_are_announced() {
    let mut p = Pair::new();
    let (caller, _) = p.join(Node::A);
    let (local, _) = p.join(Node::A);
    let (remote, _) = p.join(Node::B);
    p.register(Node::B, remote, "{}", "com.p.x");
    p.register(Node::A, local, r#"{"match":"prefix"}"#, "com.p");
    p.register(Node::A, local, r#"{"match":"wildcard"}"#, "com..y");
    assert_eq!(
        p.registered,
        vec![('b', "sockeye.wamp-rpc.realm1.com.p.x".to_owned(), true)]
    );
    assert_eq!(p.a.r.registrations(), vec![]);
    let (on_a, on_b) = p.msgs(Node::A, caller, r#"[48,1,{},"com.p.x",[]]"#);
    assert!(on_b.is_empty());
    assert_eq!(invocation(&on_a).0, local);
    assert!(p.rpc.is_empty());
}

#[test]
fn registrations_are_announced_with_the_first_exact_registration_and_withdrawn_with_the_last() {
    let mut p = Pair::new();
    let (c1, _) = p.join(Node::B);
    let (c2, _) = p.join(Node::B);
    let id = p.register(Node::B, c1, r#"{"invoke":"roundrobin"}"#, "com.s");
    assert_eq!(
        p.register(Node::B, c2, r#"{"invoke":"roundrobin"}"#, "com.s"),
        id
    );
    let subject = "sockeye.wamp-rpc.realm1.com.s".to_owned();
    assert_eq!(p.registered, vec![('b', subject.clone(), true)]);
    assert_eq!(
        p.b.r.registrations(),
        vec![("realm1".to_owned(), subject.clone())]
    );
    let _ = p.msgs(Node::B, c1, &format!("[66,2,{id}]"));
    assert_eq!(p.registered.len(), 1, "c2 still holds it");
    p.b.r.disconnect(c2);
    let _ = p.settle_node(Node::B);
    assert_eq!(p.registered[1], ('b', subject, false));
    assert!(p.b.r.registrations().is_empty());
}

#[test]
fn a_shared_registration_follows_its_invoke_policy_within_the_node() {
    let mut p = Pair::new();
    let (caller, _) = p.join(Node::A);
    let (c1, _) = p.join(Node::B);
    let (c2, _) = p.join(Node::B);
    p.register(Node::B, c1, r#"{"invoke":"roundrobin"}"#, "com.s");
    p.register(Node::B, c2, r#"{"invoke":"roundrobin"}"#, "com.s");
    let callees: Vec<ConnId> = (1..=4)
        .map(|i| {
            let (_, on_b) = p.msgs(Node::A, caller, &format!(r#"[48,{i},{{}},"com.s",[]]"#));
            invocation(&on_b).0
        })
        .collect();
    assert_eq!(callees, vec![c1, c2, c1, c2]);
}

#[test]
fn out_of_cluster_mode_a_call_without_a_registration_is_answered_at_once() {
    let (mut h, a, _) = H::two_sessions();
    let out = h.send(a, r#"[48,1,{},"com.nowhere",[]]"#);
    assert_eq!(
        out,
        vec![common::msg(
            a,
            r#"[8,48,1,{},"wamp.error.no_such_procedure"]"#
        )]
    );
    h.register(a, "{}", "com.p");
    assert!(h.r.registrations().is_empty());
    assert_eq!(h.r.stats().remote_calls, 0);
}

// Shared retention: retained events through the cluster's store of latest values, given to
// `offer_retained` with the store's revision.

/// A node with shared retention, with `max_retained_events`, `max_auto_realms` and
/// `max_retained_bytes` as given.
fn shared_node(max_events: usize, max_realms: usize, max_bytes: usize) -> H {
    let mut c = config(1);
    c.cluster.as_mut().unwrap().shared_retention = true;
    c.max_retained_events = max_events;
    c.max_auto_realms = max_realms;
    c.max_retained_bytes = max_bytes;
    H {
        r: Router::with_seed(c, 1),
    }
}

/// A retained publication of another node.
fn offered(realm: &str, topic: &str, publication: u64, arg: &str) -> ClusterEvent {
    ClusterEvent {
        origin: 77,
        realm: realm.into(),
        topic: topic.into(),
        publication,
        publisher: None,
        passthru: Dict::new(),
        audience: Default::default(),
        retain: true,
        payload: sockeye_wamp_proto::Payload::Args(vec![arg.into()]),
    }
}

/// What a new subscriber of `topic` in `c`'s realm gets with `get_retained`: (publication,
/// first argument) of each EVENT, each marked `retained`.
fn retained_for(h: &mut H, c: ConnId, topic: &str, options: &str) -> Vec<(u64, String)> {
    let out = only_messages(h.send(c, &format!(r#"[32,1,{options},"{topic}"]"#)));
    assert!(
        matches!(out[0].1, Message::Subscribed { .. }),
        "not subscribed: {out:?}"
    );
    out[1..]
        .iter()
        .map(|(_, m)| match m {
            Message::Event {
                publication,
                details,
                payload,
                ..
            } => {
                assert_eq!(details.get_bool("retained"), Some(true));
                let arg = payload.args()[0].as_str().unwrap().to_owned();
                (*publication, arg)
            }
            other => panic!("not an EVENT: {other:?}"),
        })
        .collect()
}

/// The messages for sessions in `out`, without the cluster actions.
fn only_messages(out: Vec<Out>) -> Vec<(ConnId, Message)> {
    messages(
        out.into_iter()
            .filter(|o| matches!(o, Out::Msg(..)))
            .collect(),
    )
}

/// A local retained PUBLISH on `topic` with argument `arg`: its publication id.
fn publish_retained(h: &mut H, c: ConnId, topic: &str, arg: &str) -> u64 {
    let out = h.send(
        c,
        &format!(r#"[16,9,{{"retain":true}},"{topic}",["{arg}"]]"#),
    );
    out.iter()
        .find_map(|o| match o {
            Out::Forward(e) => Some(e.publication),
            _ => None,
        })
        .expect("forwarded")
}

const GET: &str = r#"{"get_retained":true}"#;

#[test]
fn a_realm_created_after_an_offer_gives_the_offered_event_to_get_retained() {
    let mut h = shared_node(10, 10, 1 << 20);
    h.r.offer_retained(offered("later", "com.t", 5, "kept"), 1);
    assert!(h.drain().is_empty(), "an offer emits nothing");
    let (c, _) = h.join_with("later", ALL_ROLES);
    assert_eq!(retained_for(&mut h, c, "com.t", GET), [(5, "kept".into())]);
    assert_eq!(h.r.stats().retained_offers, 1);
}

#[test]
fn an_offered_event_is_never_sent_live_to_current_subscribers() {
    let mut h = shared_node(10, 10, 1 << 20);
    let (sub, _) = h.join();
    let _ = h.send(sub, r#"[32,1,{},"com.t"]"#);
    let _ = h.send(sub, r#"[32,2,{"match":"prefix"},"com"]"#);
    h.r.offer_retained(offered("realm1", "com.t", 5, "kept"), 1);
    assert!(h.drain().is_empty(), "no EVENT to the subscriber");
    assert_eq!(h.r.stats().events_sent, 0);
    let (late, _) = h.join();
    assert_eq!(
        retained_for(&mut h, late, "com.t", GET),
        [(5, "kept".into())]
    );
}

#[test]
fn an_older_offer_does_not_overwrite_a_newer_one_nor_this_nodes_own_publication() {
    let mut h = shared_node(10, 10, 1 << 20);
    let (publisher, _) = h.join();
    let (sub, _) = h.join();
    // Offers out of the store's order: the older one is dropped.
    h.r.offer_retained(offered("realm1", "t", 5, "rev 5"), 5);
    h.r.offer_retained(offered("realm1", "t", 3, "rev 3"), 3);
    assert_eq!(retained_for(&mut h, sub, "t", GET), [(5, "rev 5".into())]);
    assert_eq!(h.r.stats().retained_offers_dropped, 1);

    // This node's own publication is newer than every offer until the store answers for it;
    // the store then put it at 7, after the offer of revision 6, which is dropped.
    let own = publish_retained(&mut h, publisher, "t", "own");
    h.r.offer_retained(offered("realm1", "t", 6, "rev 6"), 6);
    assert_eq!(retained_for(&mut h, sub, "t", GET), [(own, "own".into())]);
    h.r.retained_stored("realm1", "t", own, Some(7));
    assert_eq!(retained_for(&mut h, sub, "t", GET), [(own, "own".into())]);
    h.r.offer_retained(offered("realm1", "t", 6, "rev 6"), 6);
    assert_eq!(retained_for(&mut h, sub, "t", GET), [(own, "own".into())]);

    // An offer put after this node's publication, come before the store's answer, wins once
    // the answer says so.
    let own = publish_retained(&mut h, publisher, "t", "own 2");
    h.r.offer_retained(offered("realm1", "t", 9, "rev 9"), 9);
    assert_eq!(retained_for(&mut h, sub, "t", GET), [(own, "own 2".into())]);
    h.r.retained_stored("realm1", "t", own, Some(8));
    assert_eq!(retained_for(&mut h, sub, "t", GET), [(9, "rev 9".into())]);

    // A publication the store could not keep yields to the next offer.
    let own = publish_retained(&mut h, publisher, "t", "unkept");
    h.r.retained_stored("realm1", "t", own, None);
    h.r.offer_retained(offered("realm1", "t", 10, "rev 10"), 10);
    assert_eq!(retained_for(&mut h, sub, "t", GET), [(10, "rev 10".into())]);
}

#[test]
fn offers_for_realms_not_created_yet_keep_to_the_retained_and_realm_limits() {
    let mut h = shared_node(2, 2, 200);
    for (i, topic) in ["t.1", "t.2", "t.3"].into_iter().enumerate() {
        let i = i as u64 + 1;
        h.r.offer_retained(offered("x", topic, i, "v"), i);
    }
    // Larger than the realm's bytes: not kept.
    h.r.offer_retained(offered("x", "t.big", 4, &"b".repeat(300)), 4);
    h.r.offer_retained(offered("y", "t", 5, "v"), 5);
    // A third realm: no room.
    h.r.offer_retained(offered("z", "t", 6, "v"), 6);
    assert_eq!(h.r.stats().retained_offers_dropped, 1);
    let prefix = r#"{"get_retained":true,"match":"prefix"}"#;
    let (c, _) = h.join_with("x", ALL_ROLES);
    let got: Vec<u64> = retained_for(&mut h, c, "t", prefix)
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    assert_eq!(got, [2, 3], "the 2 newest; t.big not kept");
    let (c, _) = h.join_with("z", ALL_ROLES);
    assert!(retained_for(&mut h, c, "t", prefix).is_empty());
}

#[test]
fn a_realm_created_by_a_hello_gives_its_retained_events_back_when_freed_and_has_them_again() {
    let mut h = shared_node(10, 10, 1 << 20);
    let (c, _) = h.join_with("room", ALL_ROLES);
    h.r.offer_retained(offered("room", "t", 5, "kept"), 1);
    h.r.disconnect(c);
    let _ = h.drain();
    assert_eq!(h.r.realm_count(), 1, "room is freed");
    let (c, _) = h.join_with("room", ALL_ROLES);
    assert_eq!(retained_for(&mut h, c, "t", GET), [(5, "kept".into())]);
}

#[test]
fn without_auto_created_realms_offers_for_unknown_realms_are_dropped() {
    let mut c = config(1);
    c.cluster.as_mut().unwrap().shared_retention = true;
    c.auto_create_realms = false;
    let mut h = H {
        r: Router::with_seed(c, 1),
    };
    h.r.offer_retained(offered("nowhere", "t", 5, "v"), 1);
    assert_eq!(h.r.stats().retained_offers_dropped, 1);
}

#[test]
fn with_shared_retention_another_nodes_publication_is_retained_only_as_offered() {
    let mut p = Pair::new();
    for h in [&mut p.a, &mut p.b] {
        let mut c = h.r.config().clone();
        c.cluster.as_mut().unwrap().shared_retention = true;
        let seed = h.r.config().cluster.as_ref().unwrap().node_id.unwrap() as u64;
        h.r = Router::with_seed(c, seed);
    }
    let (publisher, _) = p.join(Node::A);
    let (sub, _) = p.join(Node::B);
    let _ = p.send(Node::A, publisher, r#"[16,1,{"retain":true},"t",["x"]]"#);
    let event = p.carried[0].clone();
    assert_eq!(retained_for(&mut p.b, sub, "t", GET), []);
    p.b.r.offer_retained(event.clone(), 1);
    assert_eq!(
        retained_for(&mut p.b, sub, "t", GET),
        [(event.publication, "x".into())]
    );
}
