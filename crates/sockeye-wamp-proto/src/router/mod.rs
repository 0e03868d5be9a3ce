//! The sans-I/O router: realms, sessions, broker and dealer. No tokio, no sockets, no clock.
//!
//! The contract, in the style of quinn-proto and python-websockets:
//!
//! - inputs: [`Router::connect`] when a transport opens, [`Router::handle`] for each message
//!   it decoded, [`Router::handle_violation`] when it could not decode one, and
//!   [`Router::disconnect`] when the transport is gone;
//! - outputs: [`Router::poll`], to be drained after every input, yields [`Action`]s — a
//!   message for a connection, or "close this transport";
//! - time: the core reads no clock. [`Router::handle_timeout`] tells it the time (before each
//!   input, so that a CALL's `timeout` counts from then, and whenever the deadline
//!   [`Router::poll_timeout`] names has come); it then cancels the calls that are overdue.
//! - commands: [`Router::goodbye`] (shutdown: GOODBYE, then wait for the client's) and
//!   [`Router::kick`] (GOODBYE and close at once).
//!
//! Connections are named by a [`ConnId`] that the router hands out, not by the WAMP session
//! id: a transport outlives its session (after GOODBYE a client may send HELLO again and gets a
//! new session id), and a transport has no session before HELLO.
//!
//! The session lifecycle (WAMP spec, "Session Lifecycle"):
//!
//! ```text
//!              HELLO (valid)                 GOODBYE (client's; close_after_goodbye off)
//!   Fresh ─────────────────────> Established ─────────────────────────────────────> Fresh
//!     │ anything else              │ protocol violation, GOODBYE (router's, or the
//!     │                            │ client's with close_after_goodbye on)
//!     └──────────> ABORT ──> Closed <┘ (the transport is closed)
//! ```
//!
//! A protocol violation only ever ends the offending session; the router keeps serving the
//! others.

mod meta;
mod pubsub;
mod remote;
mod rpc;
mod session;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use crate::auth::{self, AuthConfig, AuthRole, Operation, Verdict};
pub use crate::cluster::rpc::{RemoteAnswer, RemoteCall, RemoteCancel};
pub use crate::cluster::{ClusterConfig, ClusterEvent};
pub use crate::config::{RealmConfig, RouterConfig};
use crate::id::IdGenerator;
use crate::message::{code, Message, ProtocolViolation};
use crate::value::Dict;
use pubsub::{Broker, RetainedEvents};
use remote::PendingRemote;
use rpc::Dealer;
use session::{ConnState, Session};

/// Error URIs the router sends (WAMP spec, "Predefined URIs").
pub mod error_uri {
    /// ABORT reason when a peer breaks the protocol: an undecodable or invalid message, one
    /// not allowed in the session's state (HELLO twice, a CALL before WELCOME), a reused CALL
    /// request id.
    pub const PROTOCOL_VIOLATION: &str = "wamp.error.protocol_violation";
    /// ERROR (or ABORT, for HELLO's realm) when a URI fails the router's [`crate::UriCheck`], or a
    /// REGISTER names a procedure under the reserved `wamp.` prefix.
    pub const INVALID_URI: &str = "wamp.error.invalid_uri";
    /// ABORT reason when HELLO names a realm that is not configured and may not be created
    /// (`auto_create_realms` off, or `max_auto_realms` reached).
    pub const NO_SUCH_REALM: &str = "wamp.error.no_such_realm";
    /// ERROR to a CALL when no registration matches the procedure.
    pub const NO_SUCH_PROCEDURE: &str = "wamp.error.no_such_procedure";
    /// ERROR to a REGISTER of a procedure registered already, unless both ask for the same
    /// shared `invoke` policy (not `single`) and come from different sessions.
    pub const PROCEDURE_ALREADY_EXISTS: &str = "wamp.error.procedure_already_exists";
    /// ERROR to an UNREGISTER of a registration the session does not hold, and to a
    /// registration meta procedure given an unknown registration id.
    pub const NO_SUCH_REGISTRATION: &str = "wamp.error.no_such_registration";
    /// ERROR to an UNSUBSCRIBE of a subscription the session does not hold, and to a
    /// subscription meta procedure given an unknown subscription id.
    pub const NO_SUCH_SUBSCRIPTION: &str = "wamp.error.no_such_subscription";
    /// ERROR to a session meta procedure (`wamp.session.get`, `wamp.session.kill`) given a
    /// session id that is not in the realm.
    pub const NO_SUCH_SESSION: &str = "wamp.error.no_such_session";
    /// ERROR to a meta procedure whose arguments have the wrong type, or to `wamp.session.kill`
    /// aimed at the caller itself (a session leaves with GOODBYE).
    pub const INVALID_ARGUMENT: &str = "wamp.error.invalid_argument";
    /// ERROR to a CALL the caller cancelled (CANCEL), or whose callee left before answering.
    pub const CANCELED: &str = "wamp.error.canceled";
    /// ERROR to a CALL whose `timeout` ran out; also the `reason` of the INTERRUPT the callee gets.
    pub const TIMEOUT: &str = "wamp.error.timeout";
    /// ERROR when the session's role may not subscribe, publish, register or call that URI (for a
    /// PUBLISH only if it asked to be acknowledged); also for PUBLISH to a reserved `wamp.` topic.
    pub const NOT_AUTHORIZED: &str = "wamp.error.not_authorized";
    /// ABORT reason when none of the HELLO's `authmethods` is one the realm accepts.
    pub const NO_AUTH_METHOD: &str = "wamp.error.no_auth_method";
    /// ABORT reason when the AUTHENTICATE does not check out (wrong ticket, bad signature).
    pub const AUTHENTICATION_FAILED: &str = "wamp.error.authentication_failed";
    /// GOODBYE reason when the router shuts down ([`super::Router::goodbye`], as `sockeye-wamp`
    /// calls it).
    pub const SYSTEM_SHUTDOWN: &str = "wamp.close.system_shutdown";
    /// GOODBYE reason in the router's answer to a client's GOODBYE.
    pub const GOODBYE_AND_OUT: &str = "wamp.close.goodbye_and_out";
    /// The usual GOODBYE reason of a client that leaves; the router does not send it itself.
    pub const CLOSE_NORMAL: &str = "wamp.close.normal";
    /// GOODBYE reason a session gets when `wamp.session.kill` (or `kill_by_authid`/`_by_authrole`)
    /// ends it and the caller gave no `reason` of its own.
    pub const CLOSE_KILLED: &str = "wamp.close.killed";
}

use error_uri as E;

/// The authrole and authmethod of [`Router::join_trusted`] sessions.
pub const TRUSTED: &str = "trusted";

/// A transport connection known to the router.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// What the router wants done. Drain with [`Router::poll`] after every input.
#[derive(Debug, Clone, PartialEq)]
#[must_use]
// Not `#[non_exhaustive]`: a transport must carry out every action, so a new one is meant to
// break the build of every transport until it does.
pub enum Action {
    /// Send this message on this connection.
    Send(ConnId, Arc<Message>),
    /// Send this message on each of these connections (an EVENT to every subscriber of a
    /// subscription), in this order: a transport encodes it once per serializer.
    Broadcast(Vec<ConnId>, Arc<Message>),
    /// Close this transport once the messages queued for it are sent. The router has already
    /// forgotten the connection.
    Close(ConnId),
    /// Cluster mode only ([`RouterConfig::cluster`]): a publication this router accepted, to
    /// be sent to the other nodes (on [`ClusterEvent`]'s
    /// [`topic_subject`](crate::cluster::topic_subject)) and handed there to
    /// [`Router::deliver_remote`]. The local subscribers have had their EVENTs already.
    ///
    /// Every accepted PUBLISH is forwarded, trusted sessions' ([`Router::join_trusted`])
    /// included, but never the router's own meta events (`wamp.session.on_join`,
    /// `wamp.subscription.on_create`, ...): they describe this node's sessions and
    /// subscriptions, and every node publishes its own.
    ///
    /// Boxed: an event is several times larger than the other actions.
    Forward(Box<ClusterEvent>),
    /// Cluster mode only: this node now needs (`on`) or no longer needs (`!on`) the
    /// publications sent to NATS `subject` (see
    /// [`interest_subject`](crate::cluster::interest_subject)), which may hold wildcards.
    /// Counted per subject: `on` when the first local subscription needing it is created,
    /// `!on` when the last one is deleted, so the transport can subscribe and unsubscribe as
    /// told without counting.
    Interest {
        /// The realm of the subscriptions.
        realm: String,
        /// The NATS subject, starting with [`ClusterConfig::subject_prefix`].
        subject: String,
        /// Subscribe (`true`) or unsubscribe (`false`).
        on: bool,
    },
    /// Cluster mode only ([`crate::cluster::rpc`]): a CALL no local registration matched (and
    /// not a meta procedure), to be sent to the node that has the procedure — on
    /// [`procedure_subject`](crate::cluster::procedure_subject) of its realm and procedure,
    /// whose subscribers form one queue group — and handed there to
    /// [`Router::invoke_remote`]. The caller waits: answer with [`Router::remote_answer`]
    /// (what that node's [`Action::RemoteAnswer`]s say), or [`Router::remote_call_failed`]
    /// (no node has it: `wamp.error.no_such_procedure`). Boxed, as `Forward`.
    RemoteCall(Box<RemoteCall>),
    /// Cluster mode only: about a call of another node's caller, served here, for the
    /// node whose router is [`RemoteAnswer::key`]'s `origin`, there given to
    /// [`Router::remote_answer`]: accepted, a (progressive) result, or an error. In order:
    /// a transport must keep a call's answers in the order emitted.
    RemoteAnswer(Box<RemoteAnswer>),
    /// Cluster mode only: a call made here and served by another node is canceled (CANCEL,
    /// the call timeout, the caller left), for [`Router::cancel_remote`] on the node serving
    /// it ([`RemoteCancel::node`], or every node when not known yet).
    RemoteCancel(Box<RemoteCancel>),
    /// Cluster mode only: this node now has (`on`) or no longer has (`!on`) an exact
    /// registration of a procedure, whose calls arrive on NATS `subject` (see
    /// [`procedure_subject`](crate::cluster::procedure_subject)): the transport subscribes
    /// to it in a queue group, so that one node takes each call, and unsubscribes when told.
    /// Prefix and wildcard registrations are not announced: they serve their own node's
    /// calls only.
    Registered {
        /// The realm of the registration.
        realm: String,
        /// The NATS subject, starting with [`ClusterConfig::subject_prefix`] and `-rpc`.
        subject: String,
        /// Subscribe (`true`) or unsubscribe (`false`).
        on: bool,
    },
}

/// The features announced in WELCOME: exactly what this router implements.
pub fn router_roles() -> Dict {
    let features = |names: &[&str]| {
        let mut f = Dict::new();
        for n in names {
            f.insert(*n, true);
        }
        Dict::new().with("features", f)
    };
    Dict::new()
        .with(
            "broker",
            features(&[
                "publisher_exclusion",
                "publisher_identification",
                "subscriber_blackwhite_listing",
                "pattern_based_subscription",
                "payload_passthru_mode",
                "session_meta_api",
                "subscription_meta_api",
                "event_retention",
            ]),
        )
        .with(
            "dealer",
            features(&[
                "caller_identification",
                "progressive_call_results",
                "call_canceling",
                "pattern_based_registration",
                "payload_passthru_mode",
                "session_meta_api",
                "registration_meta_api",
                "shared_registration",
                "call_timeout",
            ]),
        )
}

#[derive(Debug, Default)]
struct Realm {
    /// This realm's own users; `None`: the router's.
    auth: Option<Arc<AuthConfig>>,
    /// This realm's roles; `None`: everything is allowed.
    roles: Option<Arc<Vec<AuthRole>>>,
    broker: Broker,
    retained: RetainedEvents,
    /// Created by a HELLO (`auto_create_realms`), not configured: freed when empty.
    auto: bool,
    dealer: Dealer,
    sessions: BTreeSet<ConnId>,
}

/// Counters for operators and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RouterStats {
    /// Sessions that got a WELCOME, counting every rejoin after GOODBYE.
    pub sessions_opened: u64,
    /// Sessions aborted with `wamp.error.protocol_violation`.
    pub protocol_violations: u64,
    /// PUBLISHes the router accepted and dispatched (valid URI, authorized).
    pub publications: u64,
    /// EVENTs sent, one per receiving session, meta events included.
    pub events_sent: u64,
    /// CALLs that reached a callee as an INVOCATION (meta procedures not counted).
    pub calls: u64,
    /// Publications emitted as [`Action::Forward`] (cluster mode).
    pub forwarded: u64,
    /// Publications of other nodes given to [`Router::deliver_remote`] and delivered (or
    /// retained) here; their EVENTs count in `events_sent`.
    pub remote_publications: u64,
    /// Publications of other nodes dropped: for a realm that does not exist here, or this
    /// router's own, echoed back.
    pub remote_dropped: u64,
    /// CALLs emitted as [`Action::RemoteCall`] (cluster mode).
    pub remote_calls: u64,
    /// Calls of other nodes given to [`Router::invoke_remote`] that reached a callee here
    /// (counted in `calls` too).
    pub remote_invocations: u64,
    /// Answers given to [`Router::remote_answer`] for calls no longer pending here (answered,
    /// timed out, canceled, their node gone) or from a node other than the one serving them:
    /// dropped.
    pub remote_answers_dropped: u64,
    /// Retained events given to [`Router::offer_retained`] and taken: kept (in their realm, or
    /// for a realm not created yet), or waiting for the answer about this node's own.
    pub retained_offers: u64,
    /// Retained events given to [`Router::offer_retained`] and dropped: older than the
    /// topic's, or for a realm with no room to keep them.
    pub retained_offers_dropped: u64,
}

/// The router. See the module docs for the input/output contract.
#[derive(Debug)]
pub struct Router {
    config: RouterConfig,
    ids: IdGenerator,
    next_conn: u64,
    /// Router-scope ids (subscriptions, registrations) count up from 1.
    next_router_id: u64,
    conns: HashMap<ConnId, ConnState>,
    realms: HashMap<String, Realm>,
    /// WAMP session id → connection, for exclude/eligible lists.
    session_ids: HashMap<u64, ConnId>,
    out: VecDeque<Action>,
    stats: RouterStats,
    /// The time, as last given to [`Router::handle_timeout`]; `None` before that.
    now: Option<Instant>,
    /// Call deadlines: (when, caller, CALL request id). Entries of calls answered in time
    /// stay until they expire and are then ignored.
    deadlines: BTreeSet<(Instant, ConnId, u64)>,
    /// Names this router in the [`ClusterEvent`]s it emits: random, drawn at construction.
    origin: u64,
    /// Cluster mode: the NATS subjects the local subscriptions need, with their realm and how
    /// many subscriptions need each.
    interests: HashMap<String, (String, usize)>,
    /// Cluster mode: the number of the last call sent to another node ([`CallKey::call`]).
    ///
    /// [`CallKey::call`]: crate::cluster::rpc::CallKey::call
    next_remote_call: u64,
    /// Cluster mode: the calls made here that other nodes serve, by call number.
    remote_calls: HashMap<u64, PendingRemote>,
    /// The same, by (caller, CALL request id).
    remote_by_request: HashMap<(ConnId, u64), u64>,
    /// Retained events [`Router::offer_retained`] gave for realms that do not exist here,
    /// kept for when they are created.
    pending_retained: HashMap<String, RetainedEvents>,
}

impl Router {
    /// A router whose ids come from the operating system's randomness.
    pub fn new(config: RouterConfig) -> Self {
        Self::with_ids(config, IdGenerator::random())
    }

    /// A router with reproducible ids, for tests.
    pub fn with_seed(config: RouterConfig, seed: u64) -> Self {
        Self::with_ids(config, IdGenerator::seeded(seed))
    }

    fn with_ids(config: RouterConfig, mut ids: IdGenerator) -> Self {
        let mut realms = HashMap::new();
        for r in &config.realms {
            realms.insert(r.clone(), Realm::default());
        }
        for rc in &config.realm_configs {
            realms.insert(
                rc.name.clone(),
                Realm {
                    auth: rc.auth.clone().map(Arc::new),
                    roles: rc.roles.clone().map(Arc::new),
                    ..Realm::default()
                },
            );
        }
        Router {
            next_conn: 0,
            next_router_id: 0,
            conns: HashMap::new(),
            realms,
            session_ids: HashMap::new(),
            out: VecDeque::new(),
            stats: RouterStats::default(),
            now: None,
            deadlines: BTreeSet::new(),
            // Drawn only in cluster mode, so that a single router's ids are what they were.
            origin: if config.cluster.is_some() {
                ids.next_u64()
            } else {
                0
            },
            interests: HashMap::new(),
            next_remote_call: 0,
            remote_calls: HashMap::new(),
            remote_by_request: HashMap::new(),
            pending_retained: HashMap::new(),
            config,
            ids,
        }
    }

    /// Tells the router the time, and times out the calls whose deadline has passed: the
    /// caller gets ERROR `wamp.error.timeout`, the callee (if it announced `call_canceling`)
    /// INTERRUPT with mode `killnowait`. Call it before [`Router::handle`] (the deadline of a
    /// CALL with `timeout` counts from the last time given) and at [`Router::poll_timeout`].
    /// A router never given the time does not time out calls.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = Some(now);
        while let Some(&(at, caller, request)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.pop_first();
            self.time_out_call(caller, request, at);
        }
    }

    /// When [`Router::handle_timeout`] next has something to do, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.first().map(|d| d.0)
    }

    /// The configuration the router was built with.
    pub fn config(&self) -> &RouterConfig {
        &self.config
    }

    /// A snapshot of the counters since the router was built.
    pub fn stats(&self) -> RouterStats {
        self.stats
    }

    /// The next action to carry out, if any.
    pub fn poll(&mut self) -> Option<Action> {
        self.out.pop_front()
    }

    /// A new transport connection; no session until it sends HELLO.
    pub fn connect(&mut self) -> ConnId {
        self.next_conn += 1;
        let conn = ConnId(self.next_conn);
        self.conns.insert(conn, ConnState::Fresh);
        conn
    }

    /// The WAMP session id of a connection, once it has one.
    pub fn session_id(&self, conn: ConnId) -> Option<u64> {
        match self.conns.get(&conn) {
            Some(ConnState::Established(s)) => Some(s.id),
            _ => None,
        }
    }

    /// The realms that exist now: the configured ones, and those HELLOs created that still
    /// have sessions.
    pub fn realm_count(&self) -> usize {
        self.realms.len()
    }

    /// Number of established sessions in a realm.
    pub fn session_count(&self, realm: &str) -> usize {
        self.realms.get(realm).map_or(0, |r| r.sessions.len())
    }

    /// The transport received something it could not decode into a message.
    pub fn handle_violation(&mut self, conn: ConnId, violation: &ProtocolViolation) {
        if self.conns.contains_key(&conn) {
            self.abort(conn, E::PROTOCOL_VIOLATION, &violation.0);
        }
    }

    /// One message from a connection.
    pub fn handle(&mut self, conn: ConnId, msg: Message) {
        let session = match self.conns.get(&conn) {
            None => return, // closed; late messages are dropped
            Some(ConnState::Closing) => {
                // The client's answer to our GOODBYE; anything else is late and dropped.
                if let Message::Goodbye { .. } = msg {
                    self.conns.remove(&conn);
                    self.out.push_back(Action::Close(conn));
                }
                return;
            }
            Some(ConnState::Fresh) => None,
            Some(ConnState::Challenging { .. }) => {
                self.authenticate(conn, msg);
                return;
            }
            // A reference count, not a copy of the session's role table.
            Some(ConnState::Established(s)) => Some(Arc::clone(s)),
        };
        let Some(session) = session else {
            match msg {
                Message::Hello { realm, details } => self.hello(conn, realm, details),
                // A client may give up on opening a session.
                Message::Abort { .. } => {
                    self.conns.remove(&conn);
                    self.out.push_back(Action::Close(conn));
                }
                other => self.abort(
                    conn,
                    E::PROTOCOL_VIOLATION,
                    &format!("{} received before HELLO", other.name()),
                ),
            }
            return;
        };
        match msg {
            Message::Publish {
                request,
                options,
                topic,
                payload,
            } => self.publish(conn, &session, request, options, topic, payload),
            Message::Subscribe {
                request,
                options,
                topic,
            } => self.subscribe(conn, &session, request, &options, &topic),
            Message::Unsubscribe {
                request,
                subscription,
            } => self.unsubscribe(conn, &session, request, subscription),
            Message::Call {
                request,
                options,
                procedure,
                payload,
            } => self.call(conn, &session, request, options, procedure, payload),
            Message::Cancel { request, options } => self.cancel(conn, &session, request, &options),
            Message::Register {
                request,
                options,
                procedure,
            } => self.register(conn, &session, request, &options, &procedure),
            Message::Unregister {
                request,
                registration,
            } => self.unregister(conn, &session, request, registration),
            Message::Yield {
                request,
                options,
                payload,
            } => self.yield_(conn, &session, request, &options, payload),
            Message::Error {
                request_type: code::INVOCATION,
                request,
                details,
                error,
                payload,
            } => self.invocation_error(conn, &session, request, details, error, payload),
            Message::Goodbye { .. } => {
                // "GOODBYE_AND_OUT": the reply to a client-initiated GOODBYE. Then either the
                // transport closes, or it stays open for a new session.
                self.send(
                    conn,
                    Message::Goodbye {
                        details: Dict::new(),
                        reason: E::GOODBYE_AND_OUT.to_owned(),
                    },
                );
                if self.config.close_after_goodbye {
                    self.conns.remove(&conn);
                    self.out.push_back(Action::Close(conn));
                } else {
                    self.conns.insert(conn, ConnState::Fresh);
                }
                self.leave(conn, &session);
            }
            Message::Hello { .. } => {
                self.abort(conn, E::PROTOCOL_VIOLATION, "HELLO received in a session")
            }
            other => self.abort(
                conn,
                E::PROTOCOL_VIOLATION,
                &format!(
                    "{} is not a message a client sends to a router",
                    other.name()
                ),
            ),
        }
    }

    /// Whether the session's role may do `op` on `uri` in its realm.
    fn authorize(&self, session: &Session, op: Operation, uri: &str) -> Verdict {
        if session.trusted {
            return Verdict::Allowed { disclose: false };
        }
        match self
            .realms
            .get(&session.realm)
            .and_then(|r| r.roles.as_ref())
        {
            None => Verdict::Allowed { disclose: false },
            Some(roles) => auth::authorize(roles, &session.authrole, op, uri),
        }
    }

    fn send(&mut self, conn: ConnId, msg: Message) {
        self.out.push_back(Action::Send(conn, Arc::new(msg)));
    }

    /// A realm being created here, with the retained events the cluster offered for it.
    fn new_realm(&mut self, name: &str, auto: bool) -> Realm {
        Realm {
            auto,
            retained: self.pending_retained.remove(name).unwrap_or_default(),
            ..Realm::default()
        }
    }

    fn realm_mut(&mut self, session: &Session) -> &mut Realm {
        self.realms
            .get_mut(&session.realm)
            .expect("an established session's realm exists")
    }

    /// The session on a connection, if established.
    fn peer(&self, conn: ConnId) -> Option<&Session> {
        match self.conns.get(&conn) {
            Some(ConnState::Established(s)) => Some(s),
            _ => None,
        }
    }
}

/// Payload passthru mode: the keys describing an opaque payload travel with it.
fn copy_passthru(from: &Dict, to: &mut Dict) {
    for key in [
        "enc_algo",
        "enc_serializer",
        "enc_key",
        "ppt_scheme",
        "ppt_serializer",
        "ppt_cipher",
        "ppt_keyid",
    ] {
        if let Some(v) = from.get(key) {
            to.insert(key, v.clone());
        }
    }
}

/// Queues one message for several connections: one action, so that it is encoded once.
fn deliver(out: &mut VecDeque<Action>, to: Vec<ConnId>, msg: Arc<Message>) {
    match &to[..] {
        [] => {}
        [one] => out.push_back(Action::Send(*one, msg)),
        _ => out.push_back(Action::Broadcast(to, msg)),
    }
}
