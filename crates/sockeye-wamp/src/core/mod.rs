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

mod broker;
mod dealer;
mod meta;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::auth::{self, AuthConfig, Decision, Operation, Pending, Role, Verdict};
use crate::message::{code, Message, Payload, ProtocolViolation, MAX_ID};
use crate::uri::{self, MatchPolicy, UriCheck};
use crate::value::{Dict, Value};
use broker::Broker;
use dealer::{Dealer, Invocation, Invoke};

/// Error URIs the router sends (WAMP spec, "Predefined URIs").
pub mod error_uri {
    pub const PROTOCOL_VIOLATION: &str = "wamp.error.protocol_violation";
    pub const INVALID_URI: &str = "wamp.error.invalid_uri";
    pub const NO_SUCH_REALM: &str = "wamp.error.no_such_realm";
    pub const NO_SUCH_PROCEDURE: &str = "wamp.error.no_such_procedure";
    pub const PROCEDURE_ALREADY_EXISTS: &str = "wamp.error.procedure_already_exists";
    pub const NO_SUCH_REGISTRATION: &str = "wamp.error.no_such_registration";
    pub const NO_SUCH_SUBSCRIPTION: &str = "wamp.error.no_such_subscription";
    pub const NO_SUCH_SESSION: &str = "wamp.error.no_such_session";
    pub const INVALID_ARGUMENT: &str = "wamp.error.invalid_argument";
    pub const CANCELED: &str = "wamp.error.canceled";
    pub const TIMEOUT: &str = "wamp.error.timeout";
    pub const NOT_AUTHORIZED: &str = "wamp.error.not_authorized";
    pub const NO_AUTH_METHOD: &str = "wamp.error.no_auth_method";
    pub const AUTHENTICATION_FAILED: &str = "wamp.error.authentication_failed";
    pub const SYSTEM_SHUTDOWN: &str = "wamp.close.system_shutdown";
    pub const GOODBYE_AND_OUT: &str = "wamp.close.goodbye_and_out";
    pub const CLOSE_NORMAL: &str = "wamp.close.normal";
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
pub enum Action {
    /// Send this message on this connection. Messages are shared: one EVENT goes to every
    /// subscriber of a subscription.
    Send(ConnId, Arc<Message>),
    /// Close this transport once the messages queued for it are sent. The router has already
    /// forgotten the connection.
    Close(ConnId),
}

/// Router settings.
#[derive(Debug, Clone)]
pub struct RouterConfig {
    /// Realms that exist from the start.
    pub realms: Vec<String>,
    /// Whether a HELLO for any other (valid) realm creates it, instead of ABORT
    /// `wamp.error.no_such_realm`.
    pub auto_create_realms: bool,
    /// Which URI rules apply to realms, topics and procedures.
    pub uri_check: UriCheck,
    /// Whether the router closes the transport after answering a client's GOODBYE. WAMP lets
    /// a client start a new session on the same transport, but Autobahn clients close it right
    /// away, and autobahn-js reports a close without status code 1000 as "lost": closing
    /// first (1000) is what makes its close clean. `false` keeps the transport open.
    pub close_after_goodbye: bool,
    /// Who may join, and how they authenticate (realms without their own `auth`).
    pub auth: AuthConfig,
    /// Realms with their own users or roles; they exist from the start, like `realms`.
    pub realm_configs: Vec<RealmConfig>,
    /// Realms that HELLOs may create at once (`auto_create_realms`); a HELLO for one more gets
    /// ABORT `wamp.error.no_such_realm`. A created realm is freed when its last session leaves.
    pub max_auto_realms: usize,
    /// Retained events a realm keeps at most; past it the oldest is forgotten.
    pub max_retained_events: usize,
    /// Bytes of retained events (as [`Message::size_hint`] measures them) a realm keeps at
    /// most; past it the oldest are forgotten, and a larger event is not retained at all.
    pub max_retained_bytes: usize,
}

/// A realm's own authentication and authorization.
#[derive(Debug, Clone, Default)]
pub struct RealmConfig {
    pub name: String,
    /// Who may join this realm; `None` means the router-wide [`RouterConfig::auth`].
    pub auth: Option<AuthConfig>,
    /// `None`: every session may publish, subscribe, register and call anything (as in the
    /// default realm `realm1`). `Some`: a session may do only what a rule of its `authrole`
    /// allows (see [`auth::authorize`]); anything else gets ERROR `wamp.error.not_authorized`.
    pub roles: Option<Vec<Role>>,
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig {
            realms: vec!["realm1".to_owned()],
            auto_create_realms: true,
            uri_check: UriCheck::Loose,
            close_after_goodbye: true,
            auth: AuthConfig::default(),
            realm_configs: Vec::new(),
            max_auto_realms: 1000,
            max_retained_events: 1000,
            max_retained_bytes: 16 << 20,
        }
    }
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

/// An established session.
#[derive(Debug, Clone)]
struct Session {
    id: u64,
    realm: String,
    authid: String,
    authrole: String,
    authmethod: String,
    /// The client's `roles` from HELLO, for its features.
    roles: Dict,
    /// The last INVOCATION request id sent to this session (session scope, counting up).
    last_invocation: u64,
    /// A component inside the router's process ([`Router::join_trusted`]): the realm's roles
    /// do not restrict it.
    trusted: bool,
}

impl Session {
    /// What the session meta API tells about a session.
    fn info(&self) -> Dict {
        Dict::new()
            .with("session", self.id)
            .with("authid", self.authid.as_str())
            .with("authrole", self.authrole.as_str())
            .with("authmethod", self.authmethod.as_str())
            .with("authprovider", "static")
    }

    fn feature(&self, role: &str, feature: &str) -> bool {
        self.roles
            .get_dict(role)
            .and_then(|r| r.get_dict("features"))
            .and_then(|f| f.get_bool(feature))
            .unwrap_or(false)
    }
}

#[derive(Debug)]
enum ConnState {
    /// Transport open, no session: waiting for HELLO.
    Fresh,
    /// CHALLENGE sent, waiting for AUTHENTICATE.
    Challenging {
        session: u64,
        realm: String,
        roles: Dict,
        pending: Pending,
    },
    Established(Session),
    /// The router sent GOODBYE (shutdown) and waits for the client's; the session is over.
    Closing,
}

#[derive(Debug)]
struct Retained {
    /// Order of publication within the realm.
    seq: u64,
    publication: u64,
    details: Dict,
    payload: Payload,
    size: usize,
}

#[derive(Debug, Default)]
struct Realm {
    /// This realm's own users; `None`: the router's.
    auth: Option<Arc<AuthConfig>>,
    /// This realm's roles; `None`: everything is allowed.
    roles: Option<Arc<Vec<Role>>>,
    broker: Broker,
    /// Retained events (WAMP spec, "Event Retention"): the last event published with
    /// `retain: true` on each topic.
    retained: HashMap<String, Retained>,
    /// Their sizes, summed.
    retained_bytes: usize,
    /// Counts retained events, to tell the oldest.
    retained_seq: u64,
    /// Created by a HELLO (`auto_create_realms`), not configured: freed when empty.
    auto: bool,
    dealer: Dealer,
    sessions: BTreeSet<ConnId>,
}

impl Realm {
    /// Keeps `payload` as the retained event of `topic`, then forgets the oldest retained
    /// events until the realm is within `max_events` and `max_bytes`.
    fn retain(
        &mut self,
        topic: String,
        publication: u64,
        details: Dict,
        payload: Payload,
        max_events: usize,
        max_bytes: usize,
    ) {
        if let Some(old) = self.retained.remove(&topic) {
            self.retained_bytes -= old.size;
        }
        let size = topic.len() + details.size_hint() + payload.size_hint();
        if size > max_bytes || max_events == 0 {
            return;
        }
        self.retained_seq += 1;
        self.retained_bytes += size;
        self.retained.insert(
            topic,
            Retained {
                seq: self.retained_seq,
                publication,
                details,
                payload,
                size,
            },
        );
        while self.retained.len() > max_events || self.retained_bytes > max_bytes {
            let oldest = self
                .retained
                .iter()
                .min_by_key(|(_, r)| r.seq)
                .map(|(t, _)| t.clone())
                .expect("over a limit means not empty");
            let gone = self.retained.remove(&oldest).expect("just found");
            self.retained_bytes -= gone.size;
        }
    }
}

/// SplitMix64: ids need to be unpredictable enough not to be guessed by other sessions, not
/// cryptographic; a seed makes tests deterministic. Authentication challenges come from the
/// operating system unless the router was seeded (tests).
#[derive(Debug)]
struct Rng(u64, bool);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A global-scope id: random in `[1, 2^53]`.
    fn global_id(&mut self) -> u64 {
        (self.next() % MAX_ID) + 1
    }

    fn challenge(&mut self) -> [u8; 32] {
        let mut out = [0u8; 32];
        if self.1 {
            for chunk in out.chunks_mut(8) {
                chunk.copy_from_slice(&self.next().to_le_bytes());
            }
        } else {
            getrandom::fill(&mut out).expect("the operating system's randomness");
        }
        out
    }
}

/// Counters for operators and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RouterStats {
    pub sessions_opened: u64,
    pub protocol_violations: u64,
    pub publications: u64,
    pub events_sent: u64,
    pub calls: u64,
}

/// The router. See the module docs for the input/output contract.
#[derive(Debug)]
pub struct Router {
    config: RouterConfig,
    rng: Rng,
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
}

impl Router {
    /// A router whose ids come from the operating system's randomness.
    pub fn new(config: RouterConfig) -> Self {
        let mut seed = [0u8; 8];
        // Falling back to a fixed seed only makes ids guessable, never wrong.
        let _ = getrandom::fill(&mut seed);
        let mut router = Self::with_seed(config, u64::from_le_bytes(seed));
        router.rng.1 = false;
        router
    }

    /// A router with reproducible ids, for tests.
    pub fn with_seed(config: RouterConfig, seed: u64) -> Self {
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
            config,
            rng: Rng(seed, true),
            next_conn: 0,
            next_router_id: 0,
            conns: HashMap::new(),
            realms,
            session_ids: HashMap::new(),
            out: VecDeque::new(),
            stats: RouterStats::default(),
            now: None,
            deadlines: BTreeSet::new(),
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

    /// Ends a session with GOODBYE (for example `wamp.close.system_shutdown`) and waits for
    /// the client's GOODBYE in reply, then closes the transport ([`Action::Close`]). How long
    /// to wait is the transport's business. False if the connection has no session (there is
    /// nobody to say goodbye to).
    pub fn goodbye(&mut self, conn: ConnId, reason: &str, message: &str) -> bool {
        if !matches!(self.conns.get(&conn), Some(ConnState::Established(_))) {
            return false;
        }
        let Some(ConnState::Established(session)) = self.conns.insert(conn, ConnState::Closing)
        else {
            unreachable!("checked above");
        };
        self.send(
            conn,
            Message::Goodbye {
                details: Dict::new().with("message", message),
                reason: reason.to_owned(),
            },
        );
        self.leave(conn, &session);
        true
    }

    pub fn config(&self) -> &RouterConfig {
        &self.config
    }

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

    /// Joins a fresh connection to `realm` without authentication, as `authid` with authrole
    /// and authmethod `trusted`: for components that run inside the router's own process (a
    /// service the server offers), in the manner of Crossbar's router components. The realm
    /// is created if it does not exist, whatever `auto_create_realms` says, and its roles do
    /// not restrict the session. The WELCOME is sent as for any session. `None` if `conn` is
    /// not fresh or `realm` is not a valid URI.
    pub fn join_trusted(&mut self, conn: ConnId, realm: &str, authid: &str) -> Option<u64> {
        if !matches!(self.conns.get(&conn), Some(ConnState::Fresh))
            || !uri::is_valid(realm, self.config.uri_check)
        {
            return None;
        }
        self.realms.entry(realm.to_owned()).or_default();
        let id = self.fresh_session_id();
        let roles = Dict::new()
            .with("publisher", Dict::new())
            .with("subscriber", Dict::new())
            .with("caller", Dict::new())
            .with(
                "callee",
                Dict::new().with(
                    "features",
                    Dict::new().with("progressive_call_results", true),
                ),
            );
        self.establish(
            conn,
            id,
            realm.to_owned(),
            roles,
            authid.to_owned(),
            TRUSTED.to_owned(),
            TRUSTED,
        );
        Some(id)
    }

    /// A session id no session has now.
    fn fresh_session_id(&mut self) -> u64 {
        loop {
            let id = self.rng.global_id();
            if !self.session_ids.contains_key(&id) {
                return id;
            }
        }
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

    /// The transport is gone (closed, reset, or dropped by the server). Calls in flight to its
    /// procedures fail, its calls are interrupted, its subscriptions and registrations go.
    pub fn disconnect(&mut self, conn: ConnId) {
        match self.conns.remove(&conn) {
            Some(ConnState::Established(session)) => self.leave(conn, &session),
            Some(ConnState::Challenging { session, .. }) => {
                self.session_ids.remove(&session);
            }
            _ => {}
        }
    }

    /// The transport received something it could not decode into a message.
    pub fn handle_violation(&mut self, conn: ConnId, violation: &ProtocolViolation) {
        if self.conns.contains_key(&conn) {
            self.abort(conn, E::PROTOCOL_VIOLATION, &violation.0);
        }
    }

    /// Ends a session with GOODBYE (for example on shutdown) and closes its transport.
    pub fn kick(&mut self, conn: ConnId, reason: &str, message: &str) {
        if let Some(ConnState::Established(session)) = self.conns.remove(&conn) {
            self.send(
                conn,
                Message::Goodbye {
                    details: Dict::new().with("message", message),
                    reason: reason.to_owned(),
                },
            );
            self.out.push_back(Action::Close(conn));
            self.leave(conn, &session);
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
            Some(ConnState::Established(s)) => Some(s.clone()),
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

    // ---- sessions ----

    fn hello(&mut self, conn: ConnId, realm: String, details: Dict) {
        if !uri::is_valid(&realm, self.config.uri_check) {
            self.abort(conn, E::INVALID_URI, &format!("invalid realm {realm:?}"));
            return;
        }
        if !self.realms.contains_key(&realm) {
            if !self.config.auto_create_realms {
                self.abort(conn, E::NO_SUCH_REALM, &format!("no realm {realm:?}"));
                return;
            }
            if self.realms.values().filter(|r| r.auto).count() >= self.config.max_auto_realms {
                self.abort(
                    conn,
                    E::NO_SUCH_REALM,
                    &format!("no realm {realm:?}, and no room for another"),
                );
                return;
            }
            self.realms.insert(
                realm.clone(),
                Realm {
                    auto: true,
                    ..Realm::default()
                },
            );
        }
        let id = self.fresh_session_id();
        let roles = details.get_dict("roles").cloned().unwrap_or_default();
        let random = self.rng.challenge();
        let auth = self.realms[&realm]
            .auth
            .as_deref()
            .unwrap_or(&self.config.auth);
        match auth.decide(&details, id, random) {
            Decision::Anonymous => {
                let authid = format!("anonymous-{id}");
                self.establish(
                    conn,
                    id,
                    realm,
                    roles,
                    authid,
                    "anonymous".into(),
                    "anonymous",
                );
            }
            Decision::Challenge {
                method,
                extra,
                pending,
            } => {
                // The id is taken now: the WAMP-CRA challenge names it.
                self.session_ids.insert(id, conn);
                self.conns.insert(
                    conn,
                    ConnState::Challenging {
                        session: id,
                        realm,
                        roles,
                        pending,
                    },
                );
                self.send(
                    conn,
                    Message::Challenge {
                        method: method.to_owned(),
                        extra,
                    },
                );
            }
            Decision::NoMethod => self.abort(
                conn,
                E::NO_AUTH_METHOD,
                "no authentication method offered is acceptable",
            ),
        }
    }

    fn authenticate(&mut self, conn: ConnId, msg: Message) {
        let Some(ConnState::Challenging {
            session,
            realm,
            roles,
            pending,
        }) = self.conns.remove(&conn)
        else {
            unreachable!("called in state Challenging");
        };
        self.session_ids.remove(&session);
        match msg {
            Message::Authenticate { signature, .. } if pending.verify(&signature) => {
                // The realm may have been freed meanwhile (it was created by a HELLO and
                // emptied); the session then simply recreates it, as its HELLO did.
                self.realms.entry(realm.clone()).or_insert_with(|| Realm {
                    auto: true,
                    ..Realm::default()
                });
                self.establish(
                    conn,
                    session,
                    realm,
                    roles,
                    pending.authid,
                    pending.authrole,
                    pending.method,
                );
            }
            Message::Authenticate { .. } => {
                self.conns.insert(conn, ConnState::Fresh);
                self.abort(conn, E::AUTHENTICATION_FAILED, "authentication failed");
            }
            Message::Abort { .. } => self.out.push_back(Action::Close(conn)),
            other => {
                self.conns.insert(conn, ConnState::Fresh);
                self.abort(
                    conn,
                    E::PROTOCOL_VIOLATION,
                    &format!("{} received while authenticating", other.name()),
                );
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn establish(
        &mut self,
        conn: ConnId,
        id: u64,
        realm: String,
        roles: Dict,
        authid: String,
        authrole: String,
        authmethod: &str,
    ) {
        let session = Session {
            id,
            realm: realm.clone(),
            authid,
            authrole,
            authmethod: authmethod.to_owned(),
            roles,
            last_invocation: 0,
            trusted: authmethod == TRUSTED,
        };
        let welcome = Dict::new()
            .with("realm", realm.as_str())
            .with("authid", session.authid.as_str())
            .with("authrole", session.authrole.as_str())
            .with("authmethod", authmethod)
            .with("authprovider", "static")
            .with("roles", router_roles());
        self.session_ids.insert(id, conn);
        self.realms
            .get_mut(&realm)
            .expect("the realm exists")
            .sessions
            .insert(conn);
        self.conns.insert(conn, ConnState::Established(session));
        self.stats.sessions_opened += 1;
        self.send(
            conn,
            Message::Welcome {
                session: id,
                details: welcome,
            },
        );
        let info = self.peer(conn).expect("just established").info();
        self.publish_meta(&realm, "wamp.session.on_join", vec![Value::Dict(info)]);
    }

    /// Ends a connection with ABORT and closes its transport.
    fn abort(&mut self, conn: ConnId, reason: &str, message: &str) {
        if reason == E::PROTOCOL_VIOLATION {
            self.stats.protocol_violations += 1;
        }
        self.send(conn, Message::abort(reason, message));
        self.out.push_back(Action::Close(conn));
        match self.conns.remove(&conn) {
            Some(ConnState::Established(session)) => self.leave(conn, &session),
            Some(ConnState::Challenging { session, .. }) => {
                self.session_ids.remove(&session);
            }
            _ => {}
        }
    }

    /// Cleans up after a session that ended, however it ended. The connection's state has
    /// already been changed by the caller.
    fn leave(&mut self, conn: ConnId, session: &Session) {
        self.leave_dealer_and_broker(conn, session);
        self.publish_meta(
            &session.realm,
            "wamp.session.on_leave",
            vec![
                session.id.into(),
                session.authid.as_str().into(),
                session.authrole.as_str().into(),
            ],
        );
        // A realm a HELLO created goes with its last session, retained events and all, so
        // that naming new realms cannot grow the router without end.
        if self
            .realms
            .get(&session.realm)
            .is_some_and(|r| r.auto && r.sessions.is_empty())
            && !self.conns.values().any(
                |c| matches!(c, ConnState::Challenging { realm, .. } if *realm == session.realm),
            )
        {
            self.realms.remove(&session.realm);
        }
    }

    fn leave_dealer_and_broker(&mut self, conn: ConnId, session: &Session) {
        self.session_ids.remove(&session.id);
        let Some(realm) = self.realms.get_mut(&session.realm) else {
            return;
        };
        realm.sessions.remove(&conn);
        let subs = realm.broker.remove_session(conn);
        let regs = realm.dealer.remove_callee(conn);
        let dealer = &mut realm.dealer;

        // Calls this session was serving fail: "callee left" is a canceled call for the caller.
        let served: Vec<((ConnId, u64), Invocation)> = dealer
            .invocations
            .iter()
            .filter(|((callee, _), _)| *callee == conn)
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        for (key, inv) in served {
            dealer.invocations.remove(&key);
            dealer.calls.remove(&(inv.caller, inv.call_request));
            if inv.caller == conn {
                // Its own call to itself: the session is gone, there is nobody to tell.
                continue;
            }
            let msg = Message::Error {
                request_type: code::CALL,
                request: inv.call_request,
                details: Dict::new(),
                error: E::CANCELED.to_owned(),
                payload: Payload::Args(vec!["callee left the session".into()]),
            };
            self.out.push_back(Action::Send(inv.caller, Arc::new(msg)));
        }

        // Calls this session made are interrupted at their callees (if they can be).
        let made: Vec<((ConnId, u64), (ConnId, u64))> = dealer
            .calls
            .iter()
            .filter(|((caller, _), _)| *caller == conn)
            .map(|(k, v)| (*k, *v))
            .collect();
        for (key, (callee, inv_request)) in made {
            dealer.calls.remove(&key);
            dealer.invocations.remove(&(callee, inv_request));
            let cancels = match self.conns.get(&callee) {
                Some(ConnState::Established(s)) => s.feature("callee", "call_canceling"),
                _ => false,
            };
            if cancels {
                let msg = Message::Interrupt {
                    request: inv_request,
                    options: Dict::new().with("mode", "killnowait"),
                };
                self.out.push_back(Action::Send(callee, Arc::new(msg)));
            }
        }
        for (id, deleted) in subs {
            self.subscription_gone(session, id, deleted);
        }
        for (id, deleted) in regs {
            self.registration_gone(session, id, deleted);
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

    // ---- broker ----

    fn subscribe(
        &mut self,
        conn: ConnId,
        session: &Session,
        request: u64,
        options: &Dict,
        topic: &str,
    ) {
        let policy = options
            .get_str("match")
            .and_then(MatchPolicy::parse)
            .unwrap_or(MatchPolicy::Exact);
        if !uri::is_valid_pattern(topic, policy, self.config.uri_check) {
            self.send(
                conn,
                Message::error(code::SUBSCRIBE, request, E::INVALID_URI),
            );
            return;
        }
        if self.authorize(session, Operation::Subscribe, topic) == Verdict::Denied {
            self.send(
                conn,
                Message::error(code::SUBSCRIBE, request, E::NOT_AUTHORIZED),
            );
            return;
        }
        let candidate = self.next_router_id + 1;
        let realm = self.realm_mut(session);
        let (id, added) = realm.broker.subscribe(conn, policy, topic, || candidate);
        let created = id == candidate;
        if created {
            self.next_router_id = candidate;
        }
        self.send(
            conn,
            Message::Subscribed {
                request,
                subscription: id,
            },
        );
        let realm = session.realm.as_str();
        if created {
            let info = Dict::new()
                .with("id", id)
                .with("uri", topic)
                .with("match", policy.as_str());
            self.publish_meta(
                realm,
                "wamp.subscription.on_create",
                vec![session.id.into(), Value::Dict(info)],
            );
        }
        if added {
            self.publish_meta(
                realm,
                "wamp.subscription.on_subscribe",
                vec![session.id.into(), id.into()],
            );
        }
        if options.get_bool("get_retained") == Some(true) {
            let realm = &self.realms[&session.realm];
            let mut retained: Vec<_> = realm
                .retained
                .iter()
                .filter(|(t, _)| uri::matches(topic, policy, t))
                .map(|(t, r)| {
                    let mut details = r.details.clone().with("retained", true);
                    if policy != MatchPolicy::Exact {
                        details.insert("topic", t.as_str());
                    }
                    (r.seq, r.publication, details, r.payload.clone())
                })
                .collect();
            // In the order they were published.
            retained.sort_by_key(|(seq, ..)| *seq);
            for (_, publication, details, payload) in retained {
                self.send(
                    conn,
                    Message::Event {
                        subscription: id,
                        publication,
                        details,
                        payload,
                    },
                );
            }
        }
    }

    fn unsubscribe(&mut self, conn: ConnId, session: &Session, request: u64, subscription: u64) {
        if let Some(deleted) = self
            .realm_mut(session)
            .broker
            .unsubscribe(conn, subscription)
        {
            self.send(conn, Message::Unsubscribed { request });
            self.subscription_gone(session, subscription, deleted);
        } else {
            self.send(
                conn,
                Message::error(code::UNSUBSCRIBE, request, E::NO_SUCH_SUBSCRIPTION),
            );
        }
    }

    fn publish(
        &mut self,
        conn: ConnId,
        session: &Session,
        request: u64,
        options: Dict,
        topic: String,
        payload: Payload,
    ) {
        let acknowledge = options.get_bool("acknowledge").unwrap_or(false);
        if !uri::is_valid(&topic, self.config.uri_check) {
            if acknowledge {
                self.send(conn, Message::error(code::PUBLISH, request, E::INVALID_URI));
            }
            return;
        }
        // The meta events (`wamp.session.on_join`, `wamp.subscription.on_create`, ...) are the
        // router's word: a session that could publish them could lie to every meta subscriber.
        let reserved = topic.starts_with("wamp.") && !session.trusted;
        let verdict = if reserved {
            Verdict::Denied
        } else {
            self.authorize(session, Operation::Publish, &topic)
        };
        let disclose = match verdict {
            Verdict::Denied => {
                if acknowledge {
                    self.send(
                        conn,
                        Message::error(code::PUBLISH, request, E::NOT_AUTHORIZED),
                    );
                }
                return;
            }
            Verdict::Allowed { disclose } => disclose,
        };
        self.stats.publications += 1;
        let publication = self.rng.global_id();

        // Who may receive it (WAMP spec, "Subscriber Black- and Whitelisting", "Publisher
        // Exclusion"): exclude_me defaults to true.
        let exclude_me = options.get_bool("exclude_me").unwrap_or(true);
        let ids = |key: &str| -> Option<Vec<u64>> {
            options
                .get_list(key)
                .map(|l| l.iter().filter_map(Value::as_u64).collect())
        };
        let strs = |key: &str| -> Option<Vec<String>> {
            options.get_list(key).map(|l| {
                l.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
        };
        let (exclude, eligible) = (ids("exclude"), ids("eligible"));
        let (exclude_authid, eligible_authid) = (strs("exclude_authid"), strs("eligible_authid"));
        let (exclude_authrole, eligible_authrole) =
            (strs("exclude_authrole"), strs("eligible_authrole"));
        let receives = |s: &Session| -> bool {
            let in_list =
                |l: &Option<Vec<String>>, v: &str| l.as_ref().map(|l| l.iter().any(|x| x == v));
            !(exclude.as_ref().is_some_and(|l| l.contains(&s.id))
                || in_list(&exclude_authid, &s.authid) == Some(true)
                || in_list(&exclude_authrole, &s.authrole) == Some(true)
                || eligible.as_ref().is_some_and(|l| !l.contains(&s.id))
                || in_list(&eligible_authid, &s.authid) == Some(false)
                || in_list(&eligible_authrole, &s.authrole) == Some(false))
        };

        let mut base = Dict::new();
        if disclose || options.get_bool("disclose_me") == Some(true) {
            base.insert("publisher", session.id);
            base.insert("publisher_authid", session.authid.as_str());
            base.insert("publisher_authrole", session.authrole.as_str());
        }
        copy_passthru(&options, &mut base);

        let realm = &self.realms[&session.realm];
        let mut sent = 0;
        for sub in realm.broker.matching(&topic) {
            let mut details = base.clone();
            if sub.policy != MatchPolicy::Exact {
                // Pattern subscribers need the concrete topic.
                details.insert("topic", topic.as_str());
            }
            let event = Arc::new(Message::Event {
                subscription: sub.id,
                publication,
                details,
                payload: payload.clone(),
            });
            for &to in &sub.subscribers {
                if to == conn && exclude_me {
                    continue;
                }
                let Some(ConnState::Established(peer)) = self.conns.get(&to) else {
                    continue;
                };
                if receives(peer) {
                    self.out.push_back(Action::Send(to, event.clone()));
                    sent += 1;
                }
            }
        }
        self.stats.events_sent += sent;
        if options.get_bool("retain") == Some(true) {
            // Kept for later subscribers asking for `get_retained`; black- and whitelists
            // applied to this publication only.
            let (max_events, max_bytes) = (
                self.config.max_retained_events,
                self.config.max_retained_bytes,
            );
            self.realms
                .get_mut(&session.realm)
                .expect("the session's realm")
                .retain(topic, publication, base, payload, max_events, max_bytes);
        }
        if acknowledge {
            self.send(
                conn,
                Message::Published {
                    request,
                    publication,
                },
            );
        }
    }

    // ---- dealer ----

    fn register(
        &mut self,
        conn: ConnId,
        session: &Session,
        request: u64,
        options: &Dict,
        procedure: &str,
    ) {
        let policy = options
            .get_str("match")
            .and_then(MatchPolicy::parse)
            .unwrap_or(MatchPolicy::Exact);
        if !uri::is_valid_pattern(procedure, policy, self.config.uri_check) {
            self.send(
                conn,
                Message::error(code::REGISTER, request, E::INVALID_URI),
            );
            return;
        }
        // "wamp." is the router's own namespace (the meta API).
        if procedure.starts_with("wamp.") {
            self.send(
                conn,
                Message::error(code::REGISTER, request, E::INVALID_URI),
            );
            return;
        }
        if self.authorize(session, Operation::Register, procedure) == Verdict::Denied {
            self.send(
                conn,
                Message::error(code::REGISTER, request, E::NOT_AUTHORIZED),
            );
            return;
        }
        let invoke = options
            .get_str("invoke")
            .and_then(Invoke::parse)
            .unwrap_or(Invoke::Single);
        let disclose = options.get_bool("disclose_caller").unwrap_or(false);
        let next = self.next_router_id + 1;
        let realm = self.realm_mut(session);
        match realm
            .dealer
            .register(conn, policy, procedure, invoke, disclose, || next)
        {
            Some(id) => {
                let created = id == next;
                if created {
                    self.next_router_id = next;
                }
                self.send(
                    conn,
                    Message::Registered {
                        request,
                        registration: id,
                    },
                );
                let realm = session.realm.as_str();
                if created {
                    let info = Dict::new()
                        .with("id", id)
                        .with("uri", procedure)
                        .with("match", policy.as_str())
                        .with("invoke", invoke.as_str());
                    self.publish_meta(
                        realm,
                        "wamp.registration.on_create",
                        vec![session.id.into(), Value::Dict(info)],
                    );
                }
                self.publish_meta(
                    realm,
                    "wamp.registration.on_register",
                    vec![session.id.into(), id.into()],
                );
            }
            None => self.send(
                conn,
                Message::error(code::REGISTER, request, E::PROCEDURE_ALREADY_EXISTS),
            ),
        }
    }

    fn unregister(&mut self, conn: ConnId, session: &Session, request: u64, registration: u64) {
        if let Some(deleted) = self
            .realm_mut(session)
            .dealer
            .unregister(conn, registration)
        {
            self.send(conn, Message::Unregistered { request });
            self.registration_gone(session, registration, deleted);
        } else {
            self.send(
                conn,
                Message::error(code::UNREGISTER, request, E::NO_SUCH_REGISTRATION),
            );
        }
    }

    fn call(
        &mut self,
        conn: ConnId,
        session: &Session,
        request: u64,
        options: Dict,
        procedure: String,
        payload: Payload,
    ) {
        if !uri::is_valid(&procedure, self.config.uri_check) {
            self.send(conn, Message::error(code::CALL, request, E::INVALID_URI));
            return;
        }
        let disclose = match self.authorize(session, Operation::Call, &procedure) {
            Verdict::Denied => {
                self.send(conn, Message::error(code::CALL, request, E::NOT_AUTHORIZED));
                return;
            }
            Verdict::Allowed { disclose } => disclose,
        };
        if procedure.starts_with("wamp.") {
            let answer = match self.meta_kill(conn, session, &procedure, &payload) {
                Some(answer) => Some(answer),
                None => self
                    .meta_call(session, &procedure, &payload)
                    .map(|a| a.map(Some)),
            };
            if let Some(answer) = answer {
                let msg = match answer {
                    Ok(value) => Message::Result {
                        request,
                        details: Dict::new(),
                        payload: value.map_or(Payload::Empty, |v| Payload::Args(vec![v])),
                    },
                    Err(error) => Message::error(code::CALL, request, error),
                };
                self.send(conn, msg);
                return;
            }
        }
        let realm = &self.realms[&session.realm];
        if realm.dealer.calls.contains_key(&(conn, request)) {
            self.abort(
                conn,
                E::PROTOCOL_VIOLATION,
                &format!("CALL request id {request} is already in flight"),
            );
            return;
        }
        let Some(reg) = realm.dealer.lookup(&procedure) else {
            self.send(
                conn,
                Message::error(code::CALL, request, E::NO_SUCH_PROCEDURE),
            );
            return;
        };
        let (reg_id, reg_policy, reg_disclose) = (reg.id, reg.policy, reg.disclose_caller);
        let random = self.rng.next();
        let callee = self
            .realm_mut(session)
            .dealer
            .get_mut(reg_id)
            .expect("just found")
            .pick(random);
        let mut details = Dict::new();
        if reg_policy != MatchPolicy::Exact {
            details.insert("procedure", procedure.as_str());
        }
        if reg_disclose || disclose || options.get_bool("disclose_me") == Some(true) {
            details.insert("caller", session.id);
            details.insert("caller_authid", session.authid.as_str());
            details.insert("caller_authrole", session.authrole.as_str());
        }
        let Some(ConnState::Established(callee_session)) = self.conns.get_mut(&callee) else {
            unreachable!("registrations are removed when their callee leaves");
        };
        let progress = options.get_bool("receive_progress") == Some(true)
            && callee_session.feature("callee", "progressive_call_results");
        if progress {
            details.insert("receive_progress", true);
        }
        copy_passthru(&options, &mut details);
        // Session-scope ids count up; wrap to 1 after 2^53 (which no session will reach).
        callee_session.last_invocation = callee_session.last_invocation % MAX_ID + 1;
        let inv_request = callee_session.last_invocation;
        self.stats.calls += 1;
        // Call timeout (WAMP spec, "Call Timeouts"): 0 or absent means none.
        let deadline = match (options.get_u64("timeout"), self.now) {
            (Some(ms), Some(now)) if ms > 0 => Some(now + Duration::from_millis(ms)),
            _ => None,
        };
        if let Some(at) = deadline {
            self.deadlines.insert((at, conn, request));
        }
        let dealer = &mut self.realm_mut(session).dealer;
        dealer.calls.insert((conn, request), (callee, inv_request));
        dealer.invocations.insert(
            (callee, inv_request),
            Invocation {
                caller: conn,
                call_request: request,
                progress,
                interrupted: false,
                deadline,
            },
        );
        self.send(
            callee,
            Message::Invocation {
                request: inv_request,
                registration: reg_id,
                details,
                payload,
            },
        );
    }

    fn yield_(
        &mut self,
        conn: ConnId,
        session: &Session,
        request: u64,
        options: &Dict,
        payload: Payload,
    ) {
        let dealer = &mut self.realm_mut(session).dealer;
        // An unknown request is a call that was canceled (mode skip/killnowait) or whose
        // caller left: the result has nowhere to go.
        let Some(inv) = dealer.invocations.get(&(conn, request)).cloned() else {
            return;
        };
        let progress = options.get_bool("progress") == Some(true);
        let mut details = Dict::new();
        copy_passthru(options, &mut details);
        if progress {
            if !inv.progress {
                return; // the caller did not ask for progressive results
            }
            details.insert("progress", true);
        } else {
            dealer.invocations.remove(&(conn, request));
            dealer.calls.remove(&(inv.caller, inv.call_request));
        }
        let msg = Message::Result {
            request: inv.call_request,
            details,
            payload,
        };
        self.send(inv.caller, msg);
    }

    fn invocation_error(
        &mut self,
        conn: ConnId,
        session: &Session,
        request: u64,
        details: Dict,
        error: String,
        payload: Payload,
    ) {
        let dealer = &mut self.realm_mut(session).dealer;
        let Some(inv) = dealer.invocations.remove(&(conn, request)) else {
            return;
        };
        dealer.calls.remove(&(inv.caller, inv.call_request));
        // The error URI, args and kwargs reach the caller unchanged.
        self.send(
            inv.caller,
            Message::Error {
                request_type: code::CALL,
                request: inv.call_request,
                details,
                error,
                payload,
            },
        );
    }

    /// CANCEL (WAMP spec, "Call Canceling"): `skip` answers the caller at once and lets the
    /// callee finish unheard; `kill` interrupts the callee and waits for its answer;
    /// `killnowait` interrupts the callee and answers the caller at once. A callee that did
    /// not announce `call_canceling` is never interrupted (its calls are skipped).
    fn cancel(&mut self, conn: ConnId, session: &Session, request: u64, options: &Dict) {
        let dealer = &self.realms[&session.realm].dealer;
        let Some(&(callee, inv_request)) = dealer.calls.get(&(conn, request)) else {
            return; // already answered
        };
        if dealer.invocations[&(callee, inv_request)].interrupted {
            return;
        }
        let callee_cancels = self
            .peer(callee)
            .is_some_and(|s| s.feature("callee", "call_canceling"));
        let mode = match options.get_str("mode").unwrap_or("kill") {
            _ if !callee_cancels => "skip",
            m => m,
        };
        let dealer = &mut self.realm_mut(session).dealer;
        if mode == "kill" {
            dealer
                .invocations
                .get_mut(&(callee, inv_request))
                .expect("indexed")
                .interrupted = true;
        } else {
            dealer.calls.remove(&(conn, request));
            dealer.invocations.remove(&(callee, inv_request));
            self.send(conn, Message::error(code::CALL, request, E::CANCELED));
        }
        if mode != "skip" {
            self.send(
                callee,
                Message::Interrupt {
                    request: inv_request,
                    options: Dict::new().with("mode", mode),
                },
            );
        }
    }
}

impl Router {
    /// A call's deadline passed: the dealer cancels it as with mode `killnowait` — the caller
    /// gets ERROR `wamp.error.timeout` at once; the callee is interrupted if it can be, and
    /// its late answer is dropped.
    fn time_out_call(&mut self, caller: ConnId, request: u64, at: Instant) {
        let Some(session) = self.peer(caller).cloned() else {
            return; // the caller left; its calls went with it
        };
        let dealer = &self.realms[&session.realm].dealer;
        let Some(&(callee, inv_request)) = dealer.calls.get(&(caller, request)) else {
            return; // answered in time
        };
        if dealer.invocations[&(callee, inv_request)].deadline != Some(at) {
            return;
        }
        let dealer = &mut self.realm_mut(&session).dealer;
        dealer.calls.remove(&(caller, request));
        dealer.invocations.remove(&(callee, inv_request));
        self.send(
            caller,
            Message::Error {
                request_type: code::CALL,
                request,
                details: Dict::new(),
                error: E::TIMEOUT.to_owned(),
                payload: Payload::Args(vec!["the call timed out".into()]),
            },
        );
        if self
            .peer(callee)
            .is_some_and(|s| s.feature("callee", "call_canceling"))
        {
            self.send(
                callee,
                Message::Interrupt {
                    request: inv_request,
                    options: Dict::new()
                        .with("mode", "killnowait")
                        .with("reason", E::TIMEOUT),
                },
            );
        }
    }

    /// Meta events after `session` left subscription `id` (deleted: it was the last one).
    fn subscription_gone(&mut self, session: &Session, id: u64, deleted: bool) {
        let args = vec![Value::from(session.id), Value::from(id)];
        self.publish_meta(
            &session.realm,
            "wamp.subscription.on_unsubscribe",
            args.clone(),
        );
        if deleted {
            self.publish_meta(&session.realm, "wamp.subscription.on_delete", args);
        }
    }

    /// Meta events after `session` left registration `id` (deleted: it was the last callee).
    fn registration_gone(&mut self, session: &Session, id: u64, deleted: bool) {
        let args = vec![Value::from(session.id), Value::from(id)];
        self.publish_meta(
            &session.realm,
            "wamp.registration.on_unregister",
            args.clone(),
        );
        if deleted {
            self.publish_meta(&session.realm, "wamp.registration.on_delete", args);
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
