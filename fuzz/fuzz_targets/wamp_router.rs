//! The sans-I/O WAMP router (`sockeye_wamp_proto::router::Router`) driven by a session script: up to
//! four transports at a time say HELLO (anonymous, ticket, wampcra), SUBSCRIBE, PUBLISH,
//! REGISTER, CALL, YIELD, ERROR, CANCEL, UNSUBSCRIBE, UNREGISTER, GOODBYE, break the protocol
//! or go away, while time passes and the router kicks or says goodbye to sessions; small ids
//! and a few URIs (exact, prefix and wildcard patterns, invalid ones, the meta API) make them
//! meet. Every message goes through `Message::from_value(msg.to_value())` first, so an invalid
//! one reaches the router as `handle_violation`, as the transport would report it.
//!
//! After every step the harness drains `poll` and checks, as a client would:
//! - every `Action::Send`, `Action::Broadcast` and `Action::Close` is for a transport that is open: connected, not
//!   disconnected by the script, not closed by the router before; an ABORT is followed by the
//!   Close of its transport in the same drain;
//! - what the router sends is a message a router sends, valid on the wire (`from_value` of its
//!   `to_value` gives it back);
//! - replies answer requests: SUBSCRIBED, UNSUBSCRIBED, PUBLISHED (acknowledged publications
//!   only), REGISTERED, UNREGISTERED, RESULT and ERROR name a request of that type the
//!   connection sent in its current session and that has not had its final answer; WELCOME
//!   only outside a session; EVENT only for a subscription the session holds, INVOCATION only
//!   for a registration it holds, with request ids counting up from 1; INTERRUPT only for an
//!   invocation it was sent;
//! - the router agrees with what it told the clients: `session_id` of each open connection is
//!   the one its WELCOME named, `session_count` of each realm the number of open sessions
//!   there, and `poll_timeout` is never in the past after `handle_timeout`;
//! - at the end, once every transport is disconnected, no session remains in any realm and
//!   nothing is left to do, even after every call deadline has passed.
//!
//! Input: byte 0 the configuration, byte 1 the seed of the router's ids, then steps. A step is
//! one byte, `slot << 6 | flags << 4 | kind`, and the argument bytes its kind reads (0 once
//! the input runs out); see `step`. A slot without an open transport connects one first. The
//! script stops after 400 steps or 64 connections.
#![no_main]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use sockeye_wamp_proto::auth::{
    derive_key, wampcra_sign, AuthConfig, AuthRole, Permission, Salt, Secret, User,
};
use sockeye_wamp_proto::message::{code, MAX_ID};
use sockeye_wamp_proto::router::{Action, ConnId, RealmConfig, Router, RouterConfig};
use sockeye_wamp_proto::{Dict, MatchPolicy, Message, Payload, ProtocolViolation, UriCheck, Value};

const SLOTS: usize = 4;
const MAX_STEPS: usize = 400;
/// Connections per input (each check walks all of them).
const MAX_CONNS: usize = 64;

/// Realms a HELLO may name: the default one, one configured with its own users (and maybe
/// roles), one created on demand (unless that is off), and an invalid URI.
const REALMS: [&str; 4] = ["realm1", "shop", "other", "bad realm"];
/// The realm of `join_trusted` sessions.
const TRUSTED_REALM: &str = "services";

/// Topics, procedures and patterns.
const URIS: [&str; 32] = [
    "com.a",
    "com.a.b",
    "com.b",
    "com.b.c",
    "com.",
    "com",
    "com..c",
    "com.a.",
    "",
    "com.A b",
    "Com.X",
    "wamp.session.count",
    "wamp.session.list",
    "wamp.session.get",
    "wamp.session.kill",
    "wamp.session.kill_by_authid",
    "wamp.session.kill_by_authrole",
    "wamp.subscription.list",
    "wamp.subscription.lookup",
    "wamp.subscription.match",
    "wamp.subscription.get",
    "wamp.subscription.list_subscribers",
    "wamp.registration.list",
    "wamp.registration.lookup",
    "wamp.registration.match",
    "wamp.registration.get",
    "wamp.registration.list_callees",
    "wamp.session.on_join",
    "wamp.session.on_leave",
    "wamp.subscription.on_subscribe",
    "wamp.registration.on_register",
    "wamp.",
];

/// Strings for arguments (authids, authroles, URIs for the meta API).
const NAMES: [&str; 8] = [
    "anonymous",
    "frontend",
    "joe",
    "com.a",
    "com.",
    "trusted",
    "svc",
    "wamp.close.x",
];

const TICKET: &str = "secret!!!";
const CRA_SECRET: &str = "cra-secret";
const SALT: &str = "salt";
const SALT_ITERATIONS: u32 = 2;

fn users() -> Vec<User> {
    vec![
        User {
            authid: "joe".into(),
            authrole: "frontend".into(),
            secrets: vec![
                Secret::Ticket(TICKET.into()),
                Secret::WampCra {
                    secret: CRA_SECRET.into(),
                    salt: None,
                },
            ],
        },
        User {
            authid: "ann".into(),
            authrole: "frontend".into(),
            secrets: vec![Secret::WampCra {
                secret: CRA_SECRET.into(),
                salt: Some(Salt {
                    salt: SALT.into(),
                    iterations: SALT_ITERATIONS,
                    keylen: 32,
                }),
            }],
        },
    ]
}

/// byte 0: bit 0 close_after_goodbye, bit 1 strict URIs, bit 2 no auto-created realms, bit 3
/// `shop` has roles, bit 4 `shop` lets anonymous sessions in, bit 5 the router-wide users
/// (for `realm1` and `other`) include joe and ann.
fn router_config(byte: u8) -> RouterConfig {
    use sockeye_wamp_proto::auth::Operation::*;
    let roles = (byte & 8 != 0).then(|| {
        vec![
            AuthRole {
                name: "frontend".into(),
                permissions: vec![Permission {
                    disclose: true,
                    ..Permission::all("com.", MatchPolicy::Prefix)
                }],
            },
            AuthRole {
                name: "anonymous".into(),
                permissions: vec![
                    Permission::only("com.a", MatchPolicy::Exact, &[Subscribe, Call]),
                    Permission::only("com..c", MatchPolicy::Wildcard, &[Publish, Register]),
                    Permission::only("wamp.", MatchPolicy::Prefix, &[Subscribe, Call]),
                ],
            },
        ]
    });
    {
        let mut config = RouterConfig::default();
        config.close_after_goodbye = byte & 1 != 0;
        config.uri_check = if byte & 2 != 0 {
            UriCheck::Strict
        } else {
            UriCheck::Loose
        };
        config.auto_create_realms = byte & 4 == 0;
        config.auth = {
            let mut config = AuthConfig::default();
            config.allow_anonymous = true;
            config.users = if byte & 32 != 0 { users() } else { Vec::new() };
            config
        };
        config.realm_configs = vec![{
            let mut config = RealmConfig::default();
            config.name = "shop".into();
            config.auth = Some({
                let mut config = AuthConfig::default();
                config.allow_anonymous = byte & 16 != 0;
                config.users = users();
                config
            });
            config.roles = roles;
            config
        }];
        config
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Open,
    /// The router sent `Action::Close`.
    Closed,
    /// The script disconnected it.
    Gone,
}

/// What a client on one connection knows.
#[derive(Debug)]
struct Peer {
    transport: Transport,
    /// The session its WELCOME named, and the realm.
    session: Option<(u64, String)>,
    /// The authid of its last HELLO, and the CHALLENGE it got (method, extra).
    authid: Option<String>,
    challenge: Option<(String, Dict)>,
    /// ABORT sent; its Close must follow in the same drain.
    aborted: bool,
    /// Requests of the current session awaiting their final answer: (type, request id) →
    /// how many were sent.
    pending: HashMap<(u64, u64), u32>,
    /// UNSUBSCRIBE / UNREGISTER request id → the subscriptions or registrations they named.
    unsubscribing: HashMap<u64, Vec<u64>>,
    unregistering: HashMap<u64, Vec<u64>>,
    subscriptions: BTreeSet<u64>,
    registrations: BTreeSet<u64>,
    /// INVOCATION request ids received in this session (the last one, and all of them), and
    /// those not yet answered, for YIELD / ERROR.
    last_invocation: u64,
    invoked: BTreeSet<u64>,
    open_invocations: Vec<u64>,
    /// CALL request ids sent, for CANCEL.
    calls: Vec<u64>,
}

impl Peer {
    fn new() -> Self {
        Peer {
            transport: Transport::Open,
            session: None,
            authid: None,
            challenge: None,
            aborted: false,
            pending: HashMap::new(),
            unsubscribing: HashMap::new(),
            unregistering: HashMap::new(),
            subscriptions: BTreeSet::new(),
            registrations: BTreeSet::new(),
            last_invocation: 0,
            invoked: BTreeSet::new(),
            open_invocations: Vec::new(),
            calls: Vec::new(),
        }
    }

    /// The session is over (ABORT, GOODBYE, Close): what belonged to it goes.
    fn end_session(&mut self) {
        self.session = None;
        self.challenge = None;
        self.pending.clear();
        self.unsubscribing.clear();
        self.unregistering.clear();
        self.subscriptions.clear();
        self.registrations.clear();
        self.last_invocation = 0;
        self.invoked.clear();
        self.open_invocations.clear();
        self.calls.clear();
    }

    fn expect(&mut self, request_type: u64, request: u64) {
        *self.pending.entry((request_type, request)).or_default() += 1;
    }

    /// A final answer to (type, request): it must be pending.
    fn answer(&mut self, conn: ConnId, request_type: u64, request: u64, msg: &Message) {
        let key = (request_type, request);
        match self.pending.get_mut(&key) {
            Some(n) if *n > 1 => *n -= 1,
            Some(_) => {
                self.pending.remove(&key);
            }
            None => panic!(
                "{conn:?} got {msg:?}, answering request {request} of type {request_type}, \
                 which it did not send in this session (or which was answered already)"
            ),
        }
    }
}

struct Harness {
    router: Router,
    start: Instant,
    now: Instant,
    peers: BTreeMap<ConnId, Peer>,
    slots: [Option<ConnId>; SLOTS],
}

/// Reads the script; zeros once it runs out.
struct Script<'a>(&'a [u8]);

impl Script<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    /// A request id: 1..=8 mostly, and the largest id for 0xff.
    fn id(&mut self) -> u64 {
        match self.byte() {
            0xff => MAX_ID,
            b => u64::from(b & 7) + 1,
        }
    }
}

fn nth<T: Copy>(items: impl IntoIterator<Item = T>, pick: u8) -> Option<T> {
    let items: Vec<T> = items.into_iter().collect();
    (!items.is_empty()).then(|| items[pick as usize % items.len()])
}

fn roles(variant: u8) -> Dict {
    let features = Dict::new().with(
        "features",
        Dict::new()
            .with("progressive_call_results", true)
            .with("call_canceling", true),
    );
    match variant & 3 {
        0 => Dict::new()
            .with("publisher", Dict::new())
            .with("subscriber", Dict::new())
            .with("caller", features.clone())
            .with("callee", features),
        1 => Dict::new()
            .with("publisher", Dict::new())
            .with("subscriber", Dict::new())
            .with("caller", Dict::new())
            .with("callee", Dict::new()),
        2 => Dict::new().with("subscriber", Dict::new()).with(
            "callee",
            Dict::new().with("features", Dict::new().with("call_canceling", true)),
        ),
        // No role a client can have: a protocol violation.
        _ => Dict::new().with("broker", Dict::new()),
    }
}

fn policy(bits: u8) -> Option<&'static str> {
    match bits & 3 {
        0 => None,
        1 => Some("prefix"),
        2 => Some("wildcard"),
        _ => Some("exact"),
    }
}

impl Harness {
    fn new(config: RouterConfig, seed: u64) -> Self {
        let start = Instant::now();
        let mut h = Harness {
            router: Router::with_seed(config, seed),
            start,
            now: start,
            peers: BTreeMap::new(),
            slots: [None; SLOTS],
        };
        h.router.handle_timeout(start);
        h
    }

    /// The open connection in `slot`, connecting one if there is none (a connection the router
    /// closed is disconnected first, as the transport does).
    fn conn(&mut self, slot: usize) -> ConnId {
        if let Some(c) = self.slots[slot] {
            if self.peers[&c].transport == Transport::Open {
                return c;
            }
            self.router.disconnect(c);
            self.drain();
        }
        let c = self.router.connect();
        assert!(!self.peers.contains_key(&c), "{c:?} handed out twice");
        self.peers.insert(c, Peer::new());
        self.slots[slot] = Some(c);
        c
    }

    fn session_of(&self, slot: u8) -> u64 {
        self.slots[slot as usize % SLOTS]
            .and_then(|c| self.peers[&c].session.as_ref().map(|s| s.0))
            .unwrap_or(1)
    }

    /// A payload from one byte: bits 0-2 the shape, the rest its content.
    fn payload(&self, conn: ConnId, p: u8) -> Payload {
        let arg = p >> 3;
        match p & 7 {
            0 => Payload::Empty,
            1 => Payload::Args(vec![Value::from(i64::from(arg))]),
            2 => Payload::Args(vec![Value::from(self.session_of(arg))]),
            3 => Payload::Args(vec![NAMES[arg as usize % 8].into()]),
            4 => Payload::ArgsKwargs(
                Vec::new(),
                Dict::new()
                    .with(
                        "reason",
                        if arg & 1 != 0 {
                            "wamp.close.x"
                        } else {
                            "bad uri"
                        },
                    )
                    .with("message", "m"),
            ),
            5 => Payload::Args(vec![
                URIS[arg as usize % 32].into(),
                Value::Dict(Dict::new().with("match", policy(arg >> 2).unwrap_or("exact"))),
            ]),
            6 => Payload::Args(vec![Value::List(vec![NAMES[arg as usize % 3].into()])]),
            _ => {
                let peer = &self.peers[&conn];
                let ids = peer
                    .subscriptions
                    .iter()
                    .chain(&peer.registrations)
                    .copied();
                Payload::Args(vec![Value::from(nth(ids, arg).unwrap_or(1))])
            }
        }
    }

    /// Tells the router the time, as the transport does before each input.
    fn tick(&mut self) {
        self.router.handle_timeout(self.now);
        if let Some(at) = self.router.poll_timeout() {
            assert!(
                at > self.now,
                "poll_timeout in the past after handle_timeout"
            );
        }
    }

    /// One message from a client, validated as the transport's decoder would.
    fn send(&mut self, conn: ConnId, msg: Message) {
        self.tick();
        trace(|| format!("{conn:?} -> {msg:?}"));
        match Message::from_value(msg.to_value()) {
            Ok(msg) => {
                self.record(conn, &msg);
                self.router.handle(conn, msg);
            }
            Err(violation) => self.router.handle_violation(conn, &violation),
        }
        self.drain();
    }

    /// What the client expects after sending `msg`.
    fn record(&mut self, conn: ConnId, msg: &Message) {
        let peer = self.peers.get_mut(&conn).expect("known");
        match msg {
            Message::Hello { details, .. } => {
                peer.authid = details.get_str("authid").map(str::to_owned);
            }
            Message::Subscribe { request, .. } => peer.expect(code::SUBSCRIBE, *request),
            Message::Unsubscribe {
                request,
                subscription,
            } => {
                peer.expect(code::UNSUBSCRIBE, *request);
                peer.unsubscribing
                    .entry(*request)
                    .or_default()
                    .push(*subscription);
            }
            Message::Publish {
                request, options, ..
            } if options.get_bool("acknowledge") == Some(true) => {
                peer.expect(code::PUBLISH, *request)
            }
            Message::Register { request, .. } => peer.expect(code::REGISTER, *request),
            Message::Unregister {
                request,
                registration,
            } => {
                peer.expect(code::UNREGISTER, *request);
                peer.unregistering
                    .entry(*request)
                    .or_default()
                    .push(*registration);
            }
            Message::Call { request, .. } => {
                peer.expect(code::CALL, *request);
                peer.calls.push(*request);
            }
            Message::Yield {
                request, options, ..
            } if options.get_bool("progress") != Some(true) => {
                peer.open_invocations.retain(|r| r != request);
            }
            Message::Error {
                request_type: code::INVOCATION,
                request,
                ..
            } => peer.open_invocations.retain(|r| r != request),
            _ => {}
        }
    }

    /// Drains the router's actions, checking each as the clients would.
    fn drain(&mut self) {
        while let Some(action) = self.router.poll() {
            trace(|| format!("    {action:?}"));
            match action {
                Action::Send(to, msg) => self.received(to, msg),
                Action::Broadcast(to, msg) => {
                    assert!(to.len() > 1, "a broadcast to {to:?} is a send");
                    for to in to {
                        self.received(to, msg.clone());
                    }
                }
                Action::Close(to) => {
                    let peer = self.peers.get_mut(&to).expect("a connection handed out");
                    assert_eq!(peer.transport, Transport::Open, "Close of {to:?}");
                    peer.transport = Transport::Closed;
                    peer.aborted = false;
                    peer.end_session();
                }
                Action::Forward(_)
                | Action::Interest { .. }
                | Action::RemoteCall(_)
                | Action::RemoteAnswer(_)
                | Action::RemoteCancel(_)
                | Action::Registered { .. } => {
                    panic!("a cluster action out of cluster mode: {action:?}")
                }
            }
        }
        for (conn, peer) in &self.peers {
            assert!(!peer.aborted, "ABORT to {conn:?} without a Close");
        }
        self.check_counts();
    }

    fn received(&mut self, to: ConnId, msg: Arc<Message>) {
        let peer = self.peers.get_mut(&to).expect("a connection handed out");
        assert_eq!(
            peer.transport,
            Transport::Open,
            "{msg:?} sent to {to:?}, which is no longer open"
        );
        assert!(!peer.aborted, "{msg:?} sent to {to:?} after its ABORT");
        let back = Message::from_value(msg.to_value())
            .unwrap_or_else(|e| panic!("the router sent an invalid {msg:?}: {e}"));
        assert_eq!(&back, &*msg);
        let in_session = peer.session.is_some();
        match &*msg {
            Message::Welcome { session, details } => {
                assert!(!in_session, "WELCOME to {to:?}, already in a session");
                let realm = details.get_str("realm").expect("WELCOME names the realm");
                peer.end_session();
                peer.session = Some((*session, realm.to_owned()));
            }
            Message::Challenge { method, extra } => {
                assert!(!in_session && peer.challenge.is_none());
                peer.challenge = Some((method.clone(), extra.clone()));
            }
            Message::Abort { .. } => {
                peer.aborted = true;
                peer.end_session();
            }
            Message::Goodbye { .. } => {
                assert!(in_session, "GOODBYE to {to:?} outside a session");
                peer.end_session();
            }
            Message::Subscribed {
                request,
                subscription,
            } => {
                peer.answer(to, code::SUBSCRIBE, *request, &msg);
                peer.subscriptions.insert(*subscription);
            }
            Message::Unsubscribed { request } => {
                peer.answer(to, code::UNSUBSCRIBE, *request, &msg);
                let named = peer.unsubscribing.get_mut(request).expect("recorded");
                let sub = named.remove(0);
                assert!(
                    peer.subscriptions.remove(&sub),
                    "{to:?} was not subscribed to {sub}"
                );
            }
            Message::Published { request, .. } => peer.answer(to, code::PUBLISH, *request, &msg),
            Message::Registered {
                request,
                registration,
            } => {
                peer.answer(to, code::REGISTER, *request, &msg);
                peer.registrations.insert(*registration);
            }
            Message::Unregistered { request } => {
                peer.answer(to, code::UNREGISTER, *request, &msg);
                let named = peer.unregistering.get_mut(request).expect("recorded");
                let reg = named.remove(0);
                assert!(
                    peer.registrations.remove(&reg),
                    "{to:?} had not registered {reg}"
                );
            }
            Message::Result {
                request, details, ..
            } => {
                if details.get_bool("progress") == Some(true) {
                    assert!(
                        peer.pending.contains_key(&(code::CALL, *request)),
                        "progressive RESULT for call {request}, not in flight at {to:?}"
                    );
                } else {
                    peer.answer(to, code::CALL, *request, &msg);
                }
            }
            Message::Error {
                request_type,
                request,
                ..
            } => {
                // Failed UNSUBSCRIBE / UNREGISTER requests name nothing that goes.
                match *request_type {
                    code::UNSUBSCRIBE => {
                        if let Some(named) = peer.unsubscribing.get_mut(request) {
                            if !named.is_empty() {
                                named.remove(0);
                            }
                        }
                    }
                    code::UNREGISTER => {
                        if let Some(named) = peer.unregistering.get_mut(request) {
                            if !named.is_empty() {
                                named.remove(0);
                            }
                        }
                    }
                    _ => {}
                }
                peer.answer(to, *request_type, *request, &msg);
            }
            Message::Event { subscription, .. } => assert!(
                peer.subscriptions.contains(subscription),
                "EVENT for subscription {subscription}, which {to:?} does not hold"
            ),
            Message::Invocation {
                request,
                registration,
                ..
            } => {
                assert!(
                    peer.registrations.contains(registration),
                    "INVOCATION of registration {registration}, which {to:?} does not hold"
                );
                assert_eq!(
                    *request,
                    peer.last_invocation + 1,
                    "INVOCATION ids count up from 1 in a session"
                );
                peer.last_invocation = *request;
                peer.invoked.insert(*request);
                peer.open_invocations.push(*request);
            }
            Message::Interrupt { request, .. } => assert!(
                peer.invoked.contains(request),
                "INTERRUPT of invocation {request}, never sent to {to:?}"
            ),
            other => panic!("the router sent {other:?}, which only clients send"),
        }
    }

    /// The router's own counts agree with what it told the clients.
    fn check_counts(&self) {
        let mut per_realm: HashMap<&str, usize> = HashMap::new();
        for (conn, peer) in &self.peers {
            let session = match (&peer.session, peer.transport) {
                (Some((id, realm)), Transport::Open) => {
                    *per_realm.entry(realm.as_str()).or_default() += 1;
                    Some(*id)
                }
                _ => None,
            };
            assert_eq!(self.router.session_id(*conn), session, "{conn:?}");
        }
        for realm in REALMS.iter().chain([&TRUSTED_REALM]) {
            assert_eq!(
                self.router.session_count(realm),
                per_realm.get(realm).copied().unwrap_or(0),
                "sessions in {realm}"
            );
        }
    }

    /// The correct answer to the connection's CHALLENGE, if it got one.
    fn signature(&self, conn: ConnId) -> Option<String> {
        let peer = &self.peers[&conn];
        let (method, extra) = peer.challenge.as_ref()?;
        match method.as_str() {
            "ticket" => Some(TICKET.into()),
            "wampcra" => {
                let challenge = extra.get_str("challenge")?;
                let key = match extra.get_str("salt") {
                    Some(salt) => derive_key(
                        CRA_SECRET,
                        salt,
                        extra.get_u64("iterations")? as u32,
                        extra.get_u64("keylen")? as u32,
                    ),
                    None => CRA_SECRET.into(),
                };
                Some(wampcra_sign(&key, challenge))
            }
            _ => None,
        }
    }

    /// One step of the script.
    fn step(&mut self, s: &mut Script) {
        let op = s.byte();
        let slot = usize::from(op >> 6);
        let flags = (op >> 4) & 3;
        trace(|| {
            let kind = op & 15;
            let conn = self.slots[slot];
            format!(
                "step: slot {slot} ({conn:?}) kind {kind} flags {flags} at {:?}",
                self.now - self.start
            )
        });
        match op & 15 {
            // The transport went away.
            12 => {
                if let Some(c) = self.slots[slot].take() {
                    let peer = self.peers.get_mut(&c).expect("known");
                    if peer.transport == Transport::Open {
                        peer.transport = Transport::Gone;
                        peer.end_session();
                    }
                    self.router.disconnect(c);
                    self.drain();
                }
                return;
            }
            // Time passes: up to about 5 s.
            13 => {
                self.now += Duration::from_millis(u64::from(s.byte()) * 20);
                self.tick();
                self.drain();
                return;
            }
            _ => {}
        }
        let conn = self.conn(slot);
        let msg = match op & 15 {
            0 => {
                // HELLO: a realm, roles, authentication.
                let a = s.byte();
                let mut details = Dict::new().with("roles", roles(a >> 2));
                let methods: &[&str] = match (a >> 4) & 3 {
                    0 => &[],
                    1 => &["ticket"],
                    2 => &["wampcra"],
                    _ => &["cryptosign", "anonymous"],
                };
                if !methods.is_empty() {
                    let list = methods.iter().map(|m| Value::from(*m)).collect();
                    details.insert("authmethods", Value::List(list));
                    details.insert("authid", if a & 64 != 0 { "ann" } else { "joe" });
                }
                Message::Hello {
                    realm: REALMS[usize::from(a & 3)].into(),
                    details,
                }
            }
            1 => {
                // AUTHENTICATE: right (flags 0) or wrong.
                let signature = match flags {
                    0 => self.signature(conn).unwrap_or_default(),
                    _ => "wrong".into(),
                };
                Message::Authenticate {
                    signature,
                    extra: Dict::new(),
                }
            }
            2 => {
                let (request, u, o) = (s.id(), s.byte(), s.byte());
                let mut options = Dict::new();
                if let Some(p) = policy(flags) {
                    options.insert("match", p);
                }
                if o & 1 != 0 {
                    options.insert("get_retained", true);
                }
                Message::Subscribe {
                    request,
                    options,
                    topic: URIS[usize::from(u & 31)].into(),
                }
            }
            3 => {
                let (request, pick) = (s.id(), s.byte());
                let subs = self.peers[&conn].subscriptions.iter().copied();
                Message::Unsubscribe {
                    request,
                    subscription: nth(subs, pick)
                        .filter(|_| pick & 0x80 == 0)
                        .unwrap_or(u64::from(pick & 7) + 1),
                }
            }
            4 => {
                let (request, u, o, p) = (s.id(), s.byte(), s.byte(), s.byte());
                let mut options = Dict::new();
                for (bit, key) in [(1, "acknowledge"), (4, "retain"), (8, "disclose_me")] {
                    if o & bit != 0 {
                        options.insert(key, true);
                    }
                }
                if o & 2 != 0 {
                    options.insert("exclude_me", false);
                }
                if o & 16 != 0 {
                    let id = self.session_of(flags);
                    options.insert("exclude", Value::List(vec![id.into()]));
                }
                if o & 32 != 0 {
                    let id = self.session_of(flags + 1);
                    options.insert("eligible", Value::List(vec![id.into()]));
                }
                if o & 64 != 0 {
                    let role = NAMES[usize::from(flags & 1)];
                    options.insert("eligible_authrole", Value::List(vec![role.into()]));
                }
                let payload = if o & 128 != 0 {
                    options.insert("enc_algo", "cryptobox");
                    Payload::Opaque(Value::Bytes(vec![p]))
                } else {
                    self.payload(conn, p)
                };
                Message::Publish {
                    request,
                    options,
                    topic: URIS[usize::from(u & 31)].into(),
                    payload,
                }
            }
            5 => {
                let (request, u, o) = (s.id(), s.byte(), s.byte());
                let mut options = Dict::new();
                if let Some(p) = policy(flags) {
                    options.insert("match", p);
                }
                let invoke = ["single", "roundrobin", "random", "first", "last"];
                if let Some(i) = invoke.get(usize::from(o & 7)) {
                    options.insert("invoke", *i);
                }
                if o & 8 != 0 {
                    options.insert("disclose_caller", true);
                }
                Message::Register {
                    request,
                    options,
                    procedure: URIS[usize::from(u & 31)].into(),
                }
            }
            6 => {
                let (request, pick) = (s.id(), s.byte());
                let regs = self.peers[&conn].registrations.iter().copied();
                Message::Unregister {
                    request,
                    registration: nth(regs, pick)
                        .filter(|_| pick & 0x80 == 0)
                        .unwrap_or(u64::from(pick & 7) + 1),
                }
            }
            7 => {
                let (request, u, o, p) = (s.id(), s.byte(), s.byte(), s.byte());
                let mut options = Dict::new();
                if o & 1 != 0 {
                    options.insert("receive_progress", true);
                }
                if o & 2 != 0 {
                    options.insert("disclose_me", true);
                }
                let timeouts = [0u64, 1, 10, 50, 100, 500, 1000, 5000];
                let timeout = timeouts[usize::from((o >> 2) & 7)];
                if timeout > 0 {
                    options.insert("timeout", timeout);
                }
                let payload = if o & 32 != 0 {
                    options.insert("ppt_scheme", "x_custom");
                    Payload::Opaque(Value::Str("opaque".into()))
                } else {
                    self.payload(conn, p)
                };
                Message::Call {
                    request,
                    options,
                    procedure: URIS[usize::from(u & 31)].into(),
                    payload,
                }
            }
            8 => {
                let (pick, p) = (s.byte(), s.byte());
                let open = self.peers[&conn].open_invocations.iter().copied();
                let mut options = Dict::new();
                if flags & 1 != 0 {
                    options.insert("progress", true);
                }
                Message::Yield {
                    request: nth(open, pick).unwrap_or(u64::from(pick & 7) + 1),
                    options,
                    payload: self.payload(conn, p),
                }
            }
            9 => {
                let (pick, p) = (s.byte(), s.byte());
                let open = self.peers[&conn].open_invocations.iter().copied();
                // ERROR for an INVOCATION (flags 0), or of a type only a router sends.
                let request_type = [code::INVOCATION, code::CALL, code::SUBSCRIBE, code::HELLO];
                Message::Error {
                    request_type: request_type[usize::from(flags)],
                    request: nth(open, pick).unwrap_or(u64::from(pick & 7) + 1),
                    details: Dict::new(),
                    error: URIS[usize::from(p & 31)].into(),
                    payload: self.payload(conn, p >> 5),
                }
            }
            10 => {
                let pick = s.byte();
                let calls = self.peers[&conn].calls.iter().copied();
                let mut options = Dict::new();
                if let Some(m) =
                    [None, Some("skip"), Some("kill"), Some("killnowait")][usize::from(flags)]
                {
                    options.insert("mode", m);
                }
                Message::Cancel {
                    request: nth(calls, pick).unwrap_or(u64::from(pick & 7) + 1),
                    options,
                }
            }
            11 => Message::Goodbye {
                details: Dict::new(),
                reason: "wamp.close.close_realm".into(),
            },
            14 => match flags {
                0 => {
                    self.tick();
                    self.router
                        .handle_violation(conn, &ProtocolViolation::new("undecodable"));
                    self.drain();
                    return;
                }
                1 => Message::abort("wamp.close.normal", "giving up"),
                2 => Message::Published {
                    request: 1,
                    publication: 1,
                },
                _ => Message::Welcome {
                    session: 1,
                    details: Dict::new().with("roles", Dict::new()),
                },
            },
            15 => {
                let a = s.byte();
                match flags {
                    0 => self.router.kick(conn, "wamp.close.killed", "kicked"),
                    1 => {
                        let _ = self
                            .router
                            .goodbye(conn, "wamp.close.system_shutdown", "bye");
                    }
                    2 => {
                        let _ = self.router.join_trusted(conn, TRUSTED_REALM, "svc");
                    }
                    _ => {
                        let _ = self
                            .router
                            .join_trusted(conn, REALMS[usize::from(a & 3)], "svc");
                    }
                }
                self.drain();
                return;
            }
            _ => unreachable!("12 and 13 are handled above"),
        };
        self.send(conn, msg);
    }

    /// Every transport goes away; then nothing may remain.
    fn finish(mut self) {
        trace(|| "finish: every transport goes".into());
        let conns: Vec<ConnId> = self.peers.keys().copied().collect();
        for c in conns {
            let peer = self.peers.get_mut(&c).expect("known");
            if peer.transport == Transport::Open {
                peer.transport = Transport::Gone;
                peer.end_session();
            }
            self.router.disconnect(c);
            self.drain();
        }
        for realm in REALMS.iter().chain([&TRUSTED_REALM]) {
            assert_eq!(
                self.router.session_count(realm),
                0,
                "sessions left in {realm}"
            );
        }
        // Every deadline passes: nobody is left to tell.
        self.now = self.start + Duration::from_secs(3600);
        self.tick();
        assert_eq!(
            self.router.poll(),
            None,
            "an action after every transport went"
        );
        assert_eq!(self.router.poll_timeout(), None, "deadlines left");
    }
}

/// With `WAMP_ROUTER_TRACE` set, the steps and what the router did go to stderr (to read a
/// crash: `WAMP_ROUTER_TRACE=1 cargo fuzz run wamp_router artifacts/wamp_router/crash-…`).
fn trace(line: impl FnOnce() -> String) {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("WAMP_ROUTER_TRACE").is_some()) {
        eprintln!("{}", line());
    }
}

fuzz_target!(|data: &[u8]| {
    let [config, seed, steps @ ..] = data else {
        return;
    };
    let mut h = Harness::new(router_config(*config), u64::from(*seed));
    let mut script = Script(steps);
    for _ in 0..MAX_STEPS {
        if script.0.is_empty() || h.peers.len() >= MAX_CONNS {
            break;
        }
        h.step(&mut script);
    }
    h.finish();
});
