//! The harness of the sans-I/O router tests: a router fed JSON text, and what it did.
// Each test binary uses a different part of it.
#![allow(dead_code)]

use sockeye_wamp_proto::auth::{Secret, User};
use sockeye_wamp_proto::router::{
    Action, ConnId, RemoteAnswer, RemoteCall, RemoteCancel, Router, RouterConfig,
};
use sockeye_wamp_proto::{ClusterEvent, Message, Serializer, Value};

/// The user both authentication tests know: `joe`, role `frontend`, with a ticket and an
/// unsalted wampcra secret.
pub fn joe() -> User {
    User {
        authid: "joe".into(),
        authrole: "frontend".into(),
        secrets: vec![
            Secret::Ticket("secret!!!".into()),
            Secret::WampCra {
                secret: "cra-secret".into(),
                salt: None,
            },
        ],
    }
}

pub struct H {
    pub r: Router,
}

/// What one input made the router do, in order.
#[derive(Debug, PartialEq)]
pub enum Out {
    /// A message, as JSON text.
    Msg(ConnId, String),
    Close(ConnId),
    /// A publication for the other nodes (cluster mode only).
    Forward(Box<ClusterEvent>),
    /// A NATS subject needed (`true`) or no longer (cluster mode only).
    Interest(String, bool),
    /// A call for another node (cluster mode only).
    RemoteCall(Box<RemoteCall>),
    /// An answer to another node's call (cluster mode only).
    RemoteAnswer(Box<RemoteAnswer>),
    /// A cancel of a call another node serves (cluster mode only).
    RemoteCancel(Box<RemoteCancel>),
    /// A procedure subject needed (`true`) or no longer (cluster mode only).
    Registered(String, bool),
}

pub const ALL_ROLES: &str = r#"{"roles":{"publisher":{},"subscriber":{},"caller":{"features":{"progressive_call_results":true,"call_canceling":true}},"callee":{"features":{"progressive_call_results":true,"call_canceling":true}}}}"#;

impl H {
    pub fn new() -> Self {
        Self::with(RouterConfig::default())
    }

    pub fn with(config: RouterConfig) -> Self {
        H {
            r: Router::with_seed(config, 42),
        }
    }

    pub fn drain(&mut self) -> Vec<Out> {
        let mut out = Vec::new();
        let json = |m: &Message| String::from_utf8(Serializer::Json.encode(m)).unwrap();
        while let Some(a) = self.r.poll() {
            match a {
                Action::Send(c, m) => out.push(Out::Msg(c, json(&m))),
                Action::Broadcast(to, m) => {
                    assert!(to.len() > 1, "a broadcast to one is a send");
                    out.extend(to.into_iter().map(|c| Out::Msg(c, json(&m))));
                }
                Action::Close(c) => out.push(Out::Close(c)),
                Action::Forward(e) => out.push(Out::Forward(e)),
                Action::Interest { subject, on, .. } => out.push(Out::Interest(subject, on)),
                Action::RemoteCall(c) => out.push(Out::RemoteCall(c)),
                Action::RemoteAnswer(a) => out.push(Out::RemoteAnswer(a)),
                Action::RemoteCancel(c) => out.push(Out::RemoteCancel(c)),
                Action::Registered { subject, on, .. } => out.push(Out::Registered(subject, on)),
            }
        }
        out
    }

    /// Feeds one JSON message (decode errors are violations, as the transport reports them).
    pub fn send(&mut self, c: ConnId, json: &str) -> Vec<Out> {
        match Serializer::Json.decode(json.as_bytes()) {
            Ok(m) => self.r.handle(c, m),
            Err(v) => self.r.handle_violation(c, &v),
        }
        self.drain()
    }

    /// Same, returning the messages decoded (for ids the router chose).
    pub fn send_msgs(&mut self, c: ConnId, json: &str) -> Vec<(ConnId, Message)> {
        self.send(c, json)
            .into_iter()
            .map(|o| match o {
                Out::Msg(c, text) => (c, Serializer::Json.decode(text.as_bytes()).unwrap()),
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    pub fn join_with(&mut self, realm: &str, details: &str) -> (ConnId, u64) {
        let c = self.r.connect();
        let out = self.send_msgs(c, &format!(r#"[1,"{realm}",{details}]"#));
        match &out[..] {
            [(to, Message::Welcome { session, .. })] if *to == c => (c, *session),
            other => panic!("no WELCOME: {other:?}"),
        }
    }

    pub fn join(&mut self) -> (ConnId, u64) {
        self.join_with("realm1", ALL_ROLES)
    }

    /// A router with two sessions in realm1, every role each.
    pub fn two_sessions() -> (Self, ConnId, ConnId) {
        let mut h = H::new();
        let (a, _) = h.join();
        let (b, _) = h.join();
        (h, a, b)
    }

    /// [`H::two_sessions`], the first one (the callee) having registered procedure `p`.
    pub fn callee_of_p_and_caller() -> (Self, ConnId, ConnId) {
        let (mut h, callee, caller) = H::two_sessions();
        h.register(callee, "{}", "p");
        (h, callee, caller)
    }

    pub fn subscribe(&mut self, c: ConnId, options: &str, topic: &str) -> u64 {
        match &self.send_msgs(c, &format!(r#"[32,1,{options},"{topic}"]"#))[..] {
            [(_, Message::Subscribed { subscription, .. })] => *subscription,
            other => panic!("not subscribed: {other:?}"),
        }
    }

    pub fn register(&mut self, c: ConnId, options: &str, procedure: &str) -> u64 {
        match &self.send_msgs(c, &format!(r#"[64,1,{options},"{procedure}"]"#))[..] {
            [(_, Message::Registered { registration, .. })] => *registration,
            other => panic!("not registered: {other:?}"),
        }
    }
}

pub fn msg(c: ConnId, json: &str) -> Out {
    Out::Msg(c, json.to_owned())
}

pub fn abort(c: ConnId, text: &str) -> Vec<Out> {
    vec![
        msg(
            c,
            &format!(r#"[3,{{"message":"{text}"}},"wamp.error.protocol_violation"]"#),
        ),
        Out::Close(c),
    ]
}

pub fn result_of(out: Vec<(ConnId, Message)>) -> Value {
    match &out[..] {
        [(_, Message::Result { payload, .. })] => payload.args()[0].clone(),
        other => panic!("no RESULT: {other:?}"),
    }
}

pub fn publication_of(out: &[Out]) -> u64 {
    match out {
        [Out::Msg(_, t)] => t.split(',').nth(2).unwrap().parse().unwrap(),
        other => panic!("{other:?}"),
    }
}
