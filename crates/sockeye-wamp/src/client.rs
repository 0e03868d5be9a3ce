//! A small WAMP client on Sockeye: join a realm (anonymously, or with [`Credentials`] for
//! `ticket`, `wampcra` — salted keys included — or `cryptosign`), subscribe and publish,
//! register and call, with progressive results and cancellation. It is what this crate's tests
//! talk to the router with, and enough for simple applications.
//!
//! ```no_run
//! # async fn demo() -> Result<(), sockeye_wamp::client::ClientError> {
//! use sockeye_wamp::client::Client;
//! use sockeye_wamp::{Dict, Payload, Serializer};
//!
//! let client = Client::connect("ws://127.0.0.1:8080/wamp", "realm1", Serializer::Json).await?;
//! let mut reg = client.register("com.example.add2", Dict::new()).await?;
//! tokio::spawn({
//!     let client = client.clone();
//!     async move {
//!         while let Some(inv) = reg.next().await {
//!             let sum: i64 = inv.payload.args().iter().filter_map(|v| v.as_i64()).sum();
//!             let _ = client.yield_result(inv.request, Payload::Args(vec![sum.into()])).await;
//!         }
//!     }
//! });
//! let result = client
//!     .call("com.example.add2", Payload::Args(vec![2.into(), 3.into()]), Dict::new())
//!     .await?;
//! assert_eq!(result.payload.args()[0].as_i64(), Some(5));
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use sockeye::{ClientRequest, Config, Message as WsMessage};
use tokio::sync::mpsc;

use crate::framing::{from_frame, to_frame};
use sockeye_wamp_proto::auth;
use sockeye_wamp_proto::message::{code, Message, Payload};
use sockeye_wamp_proto::{Dict, Serializer, Value};

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The router (or a callee) answered with ERROR.
    #[error("{error}")]
    Wamp {
        /// The error URI, e.g. `wamp.error.no_such_procedure` or an application's own.
        error: String,
        /// The ERROR's details.
        details: Dict,
        /// The ERROR's arguments, e.g. a callee's explanation.
        payload: Payload,
    },
    /// The router refused the session.
    #[error("session refused: {reason} {message}")]
    Aborted {
        /// The ABORT's reason URI, e.g. `wamp.error.no_such_realm`.
        reason: String,
        /// The ABORT's `message` detail, empty if it had none.
        message: String,
    },
    /// The router sent something this client did not expect.
    #[error("unexpected message from the router: {0}")]
    Unexpected(String),
    /// The session or the connection is gone.
    #[error("the session is closed")]
    Closed,
    /// The WebSocket connection failed, or could not be opened.
    #[error(transparent)]
    WebSocket(#[from] sockeye::Error),
}

impl ClientError {
    /// The error URI when the router or a callee answered with ERROR.
    pub fn error_uri(&self) -> Option<&str> {
        match self {
            ClientError::Wamp { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// How a client proves who it is when it joins (WAMP spec, "Authentication").
#[derive(Clone)]
#[non_exhaustive]
pub enum Credentials {
    /// No authentication: the router's `anonymous` method.
    Anonymous,
    /// `ticket`: the shared secret is sent as is (use over TLS only).
    Ticket {
        /// The user to authenticate as.
        authid: String,
        /// The user's ticket.
        ticket: String,
    },
    /// `wampcra`: the challenge is signed with HMAC-SHA256. When the router's challenge
    /// carries `salt`, `iterations` and `keylen`, the key is first derived from `secret` with
    /// PBKDF2 (as Autobahn does).
    WampCra {
        /// The user to authenticate as.
        authid: String,
        /// The user's secret (the password, when the router salts it).
        secret: String,
    },
    /// `cryptosign`: the challenge is signed with the Ed25519 key of this 32-byte seed; the
    /// public key is announced in HELLO. `authid` may be left to the router.
    Cryptosign {
        /// The user to authenticate as; `None` lets the router find it by the public key.
        authid: Option<String>,
        /// The private key's 32-byte seed.
        seed: [u8; 32],
    },
}

impl std::fmt::Debug for Credentials {
    // Never print the secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Ticket { authid, .. } => write!(f, "Ticket({authid})"),
            Credentials::WampCra { authid, .. } => write!(f, "WampCra({authid})"),
            Credentials::Cryptosign { authid, .. } => write!(f, "Cryptosign({authid:?})"),
        }
    }
}

impl Credentials {
    /// HELLO's `authmethods`, `authid` and `authextra`.
    fn hello_details(&self, details: &mut Dict) {
        let (method, authid) = match self {
            Credentials::Anonymous => return,
            Credentials::Ticket { authid, .. } => ("ticket", Some(authid)),
            Credentials::WampCra { authid, .. } => ("wampcra", Some(authid)),
            Credentials::Cryptosign { authid, seed } => {
                use ring::signature::KeyPair as _;
                let key = ed25519(seed);
                details.insert(
                    "authextra",
                    Dict::new().with("pubkey", hex::encode(key.public_key())),
                );
                ("cryptosign", authid.as_ref())
            }
        };
        details.insert("authmethods", Value::List(vec![method.into()]));
        if let Some(authid) = authid {
            details.insert("authid", authid.as_str());
        }
    }

    /// The AUTHENTICATE signature for a CHALLENGE, or why there is none.
    fn answer(&self, method: &str, extra: &Dict) -> Result<String, ClientError> {
        let unexpected = || ClientError::Unexpected(format!("a {method} challenge for {self:?}"));
        match self {
            Credentials::Ticket { ticket, .. } if method == "ticket" => Ok(ticket.clone()),
            Credentials::WampCra { secret, .. } if method == "wampcra" => {
                let challenge = extra.get_str("challenge").ok_or_else(unexpected)?;
                let key = match extra.get_str("salt") {
                    Some(salt) => {
                        let n = |k: &str| {
                            extra
                                .get_u64(k)
                                .and_then(|v| u32::try_from(v).ok())
                                .ok_or_else(unexpected)
                        };
                        auth::derive_key(secret, salt, n("iterations")?, n("keylen")?)
                    }
                    None => secret.clone(),
                };
                Ok(auth::wampcra_sign(&key, challenge))
            }
            Credentials::Cryptosign { seed, .. } if method == "cryptosign" => {
                let challenge = extra
                    .get_str("challenge")
                    .and_then(|c| hex::decode(c).ok())
                    .ok_or_else(unexpected)?;
                // As Autobahn: hex(signature || challenge).
                let mut signed = ed25519(seed).sign(&challenge).as_ref().to_vec();
                signed.extend_from_slice(&challenge);
                Ok(hex::encode(&signed))
            }
            _ => Err(unexpected()),
        }
    }
}

fn ed25519(seed: &[u8; 32]) -> ring::signature::Ed25519KeyPair {
    ring::signature::Ed25519KeyPair::from_seed_unchecked(seed)
        .expect("every 32-byte seed is an Ed25519 key")
}

/// An event received on a subscription.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The subscription id the router chose, as in [`Subscription::id`].
    pub subscription: u64,
    /// The publication id the router chose for the PUBLISH.
    pub publication: u64,
    /// Details the router set, e.g. `topic` (for pattern subscriptions) or `publisher`.
    pub details: Dict,
    /// The payload as the publisher sent it.
    pub payload: Payload,
}

/// A call to one of this client's procedures; answer it with [`Client::yield_result`],
/// [`Client::yield_progress`] or [`Client::yield_error`].
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    /// The request id the router chose for this invocation; pass it to the `yield_*` methods.
    pub request: u64,
    /// The registration id the router chose, as in [`Registration::id`].
    pub registration: u64,
    /// Details the router set, e.g. `procedure` (for pattern registrations), `caller` (when
    /// disclosed), `receive_progress` (whether progressive results may be yielded).
    pub details: Dict,
    /// The caller's arguments.
    pub payload: Payload,
}

/// Something for a registered procedure: an invocation, or an INTERRUPT of one in flight.
#[derive(Debug, Clone, PartialEq)]
pub enum CalleeEvent {
    /// A call to run.
    Invocation(Invocation),
    /// The router asks to stop an invocation: its call was cancelled or timed out.
    Interrupt {
        /// The [`Invocation::request`] of the invocation to stop.
        request: u64,
        /// The INTERRUPT's options, e.g. `mode` (`kill`, `killnowait`) and `reason`.
        options: Dict,
    },
}

/// A RESULT: progressive (`progress` in `details`) or final.
#[derive(Debug, Clone, PartialEq)]
pub struct CallResult {
    /// Details the router set, e.g. `progress` for a progressive result.
    pub details: Dict,
    /// The result as the callee yielded it.
    pub payload: Payload,
}

impl CallResult {
    /// Whether more results follow (`progress: true` in the details).
    pub fn is_progress(&self) -> bool {
        self.details.get_bool("progress") == Some(true)
    }
}

/// Events of one subscription.
#[derive(Debug)]
pub struct Subscription {
    /// The subscription id the router chose; pass it to [`Client::unsubscribe`].
    pub id: u64,
    events: mpsc::UnboundedReceiver<Event>,
}

impl Subscription {
    /// The next event; `None` once the session ended.
    pub async fn next(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    /// An event already received, without waiting.
    pub fn try_next(&mut self) -> Option<Event> {
        self.events.try_recv().ok()
    }
}

/// Invocations of one registered procedure.
#[derive(Debug)]
pub struct Registration {
    /// The registration id the router chose; pass it to [`Client::unregister`].
    pub id: u64,
    events: mpsc::UnboundedReceiver<CalleeEvent>,
}

impl Registration {
    /// The next invocation; INTERRUPTs are skipped (use [`Registration::next_event`]).
    pub async fn next(&mut self) -> Option<Invocation> {
        loop {
            match self.events.recv().await? {
                CalleeEvent::Invocation(inv) => return Some(inv),
                CalleeEvent::Interrupt { .. } => {}
            }
        }
    }

    /// The next invocation or INTERRUPT; `None` once the session ended.
    pub async fn next_event(&mut self) -> Option<CalleeEvent> {
        self.events.recv().await
    }
}

/// A call in flight: progressive results, then the final result or an error.
#[derive(Debug)]
pub struct Call {
    /// The CALL's request id, for [`Client::cancel`].
    pub request: u64,
    replies: mpsc::UnboundedReceiver<Message>,
    done: bool,
}

impl Call {
    /// The next result: `Ok` with [`CallResult::is_progress`] for progressive ones, then the
    /// final one; `None` after the final result or error.
    pub async fn next(&mut self) -> Option<Result<CallResult, ClientError>> {
        if self.done {
            return None;
        }
        let reply = self.replies.recv().await;
        let result = match reply {
            Some(Message::Result {
                details, payload, ..
            }) => Ok(CallResult { details, payload }),
            Some(other) => Err(reply_error(other)),
            None => Err(ClientError::Closed),
        };
        self.done = !matches!(&result, Ok(r) if r.is_progress());
        Some(result)
    }

    /// Waits for the final result, skipping progressive ones.
    pub async fn finish(mut self) -> Result<CallResult, ClientError> {
        loop {
            match self.next().await {
                Some(Ok(r)) if r.is_progress() => {}
                Some(r) => return r,
                None => return Err(ClientError::Closed),
            }
        }
    }
}

fn reply_error(m: Message) -> ClientError {
    match m {
        Message::Error {
            error,
            details,
            payload,
            ..
        } => ClientError::Wamp {
            error,
            details,
            payload,
        },
        other => ClientError::Unexpected(format!("{other:?}")),
    }
}

#[derive(Default)]
struct State {
    last_request: u64,
    /// Request id → where its replies go.
    pending: HashMap<u64, mpsc::UnboundedSender<Message>>,
    subscriptions: HashMap<u64, mpsc::UnboundedSender<Event>>,
    registrations: HashMap<u64, mpsc::UnboundedSender<CalleeEvent>>,
    /// Invocation request → registration, to route INTERRUPTs.
    invocations: HashMap<u64, u64>,
    /// SUBSCRIBE / REGISTER request → where the events will go, installed by the reader when
    /// the acknowledgement arrives (so an EVENT right behind SUBSCRIBED is not lost).
    pending_subs: HashMap<u64, mpsc::UnboundedSender<Event>>,
    pending_regs: HashMap<u64, mpsc::UnboundedSender<CalleeEvent>>,
    closed: bool,
}

struct Inner {
    out: mpsc::UnboundedSender<Message>,
    state: Mutex<State>,
    session: u64,
    welcome: Dict,
}

/// A joined WAMP session. Cheap to clone; the connection lives until every clone is dropped
/// or [`Client::leave`] is called.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("session", &self.inner.session)
            .finish_non_exhaustive()
    }
}

/// The roles and features this client announces in HELLO.
fn client_roles() -> Dict {
    let f = |features: &[&str]| {
        let mut d = Dict::new();
        for x in features {
            d.insert(*x, true);
        }
        Dict::new().with("features", d)
    };
    Dict::new()
        .with(
            "publisher",
            f(&["publisher_exclusion", "publisher_identification"]),
        )
        .with("subscriber", f(&["pattern_based_subscription"]))
        .with(
            "caller",
            f(&[
                "progressive_call_results",
                "call_canceling",
                "caller_identification",
            ]),
        )
        .with("callee", f(&["progressive_call_results", "call_canceling"]))
}

impl Client {
    /// Connects to `url`, offering only `serializer`, and joins `realm` anonymously.
    pub async fn connect(
        url: &str,
        realm: &str,
        serializer: Serializer,
    ) -> Result<Client, ClientError> {
        Self::connect_with(url, realm, serializer, &Credentials::Anonymous).await
    }

    /// Connects to `url`, offering only `serializer`, and joins `realm` with `credentials`.
    /// A refused login is [`ClientError::Aborted`] (`wamp.error.authentication_failed`,
    /// `wamp.error.no_auth_method`, …).
    pub async fn connect_with(
        url: &str,
        realm: &str,
        serializer: Serializer,
        credentials: &Credentials,
    ) -> Result<Client, ClientError> {
        let request = ClientRequest::new(url)?;
        Self::connect_request(request, Config::default(), realm, serializer, credentials).await
    }

    /// Connects with a [`ClientRequest`] and [`Config`] of the caller's (headers such as
    /// `Authorization` or `Origin`, a private CA for `wss://`, a proxy, timeouts, keepalive),
    /// offering `serializer`'s subprotocol, and joins `realm` with `credentials`.
    pub async fn connect_request(
        request: ClientRequest,
        config: Config,
        realm: &str,
        serializer: Serializer,
        credentials: &Credentials,
    ) -> Result<Client, ClientError> {
        let request = request.protocol(serializer.protocol());
        let ws = sockeye::connect_with(request, config).await?;
        let (mut sink, mut stream) = ws.split();
        let encode = move |m: &Message| to_frame(serializer, m);
        let decode = move |m: WsMessage| -> Option<Result<Message, ClientError>> {
            from_frame(serializer, &m).map(|r| r.map_err(|e| ClientError::Unexpected(e.0)))
        };

        let mut details = Dict::new()
            .with("roles", client_roles())
            .with("agent", "sockeye-wamp");
        credentials.hello_details(&mut details);
        let hello = Message::Hello {
            realm: realm.to_owned(),
            details,
        };
        sink.send(encode(&hello)).await?;
        let mut challenged = false;
        let answer = loop {
            let Some(frame) = stream.next().await else {
                return Err(ClientError::Closed);
            };
            match decode(frame?) {
                // One CHALLENGE, answered once.
                Some(Ok(Message::Challenge { method, extra })) if !challenged => {
                    challenged = true;
                    let signature = credentials.answer(&method, &extra)?;
                    let msg = Message::Authenticate {
                        signature,
                        extra: Dict::new(),
                    };
                    sink.send(encode(&msg)).await?;
                }
                other => break other,
            }
        };
        let (session, welcome) = match answer {
            None => return Err(ClientError::Closed),
            Some(Ok(Message::Welcome { session, details })) => (session, details),
            Some(Ok(Message::Abort { details, reason })) => {
                return Err(ClientError::Aborted {
                    reason,
                    message: details.get_str("message").unwrap_or("").to_owned(),
                })
            }
            Some(Ok(other)) => return Err(ClientError::Unexpected(format!("{other:?}"))),
            Some(Err(e)) => return Err(e),
        };

        let (out, mut out_rx) = mpsc::unbounded_channel::<Message>();
        let inner = Arc::new(Inner {
            out,
            state: Mutex::new(State::default()),
            session,
            welcome,
        });
        tokio::spawn(async move {
            while let Some(m) = out_rx.recv().await {
                let goodbye = matches!(m, Message::Goodbye { .. });
                if sink.send(encode(&m)).await.is_err() {
                    break;
                }
                if goodbye {
                    // The router answers; the reader closes once it has.
                    while let Some(m) = out_rx.recv().await {
                        let _ = sink.send(encode(&m)).await;
                    }
                }
            }
            let _ = sink.close(Some(1000), "").await;
        });
        let weak = Arc::downgrade(&inner);
        tokio::spawn(async move {
            while let Some(frame) = stream.next().await {
                let Ok(frame) = frame else { continue };
                let Some(decoded) = decode(frame) else { break };
                let Some(inner) = weak.upgrade() else { break };
                match decoded {
                    Ok(Message::Goodbye { .. }) | Ok(Message::Abort { .. }) => break,
                    Ok(m) => inner.route(m),
                    Err(e) => {
                        tracing::debug!("wamp client: {e}");
                        break;
                    }
                }
            }
            if let Some(inner) = weak.upgrade() {
                let mut st = inner.state.lock().expect("client state");
                st.closed = true;
                st.pending.clear();
                st.subscriptions.clear();
                st.registrations.clear();
            }
        });
        Ok(Client { inner })
    }

    /// The session id the router gave this session.
    pub fn session_id(&self) -> u64 {
        self.inner.session
    }

    /// The WELCOME details: `roles` (the router's features), `authid`, `authrole`, ….
    pub fn welcome(&self) -> &Dict {
        &self.inner.welcome
    }

    /// Sends a message as it is (for tests of the router's validation).
    pub fn send_raw(&self, msg: Message) -> Result<(), ClientError> {
        self.inner.out.send(msg).map_err(|_| ClientError::Closed)
    }

    /// Starts a request and returns its id and where its replies arrive.
    fn request(
        &self,
        build: impl FnOnce(u64) -> Message,
    ) -> Result<(u64, mpsc::UnboundedReceiver<Message>), ClientError> {
        self.request_with(build, |_, _| {})
    }

    /// Like `request`, with `setup` run on the state before the message leaves.
    fn request_with(
        &self,
        build: impl FnOnce(u64) -> Message,
        setup: impl FnOnce(&mut State, u64),
    ) -> Result<(u64, mpsc::UnboundedReceiver<Message>), ClientError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut st = self.inner.state.lock().expect("client state");
        if st.closed {
            return Err(ClientError::Closed);
        }
        st.last_request += 1;
        let id = st.last_request;
        st.pending.insert(id, tx);
        setup(&mut st, id);
        self.inner
            .out
            .send(build(id))
            .map_err(|_| ClientError::Closed)?;
        Ok((id, rx))
    }

    async fn reply(&self, build: impl FnOnce(u64) -> Message) -> Result<Message, ClientError> {
        let (_, mut rx) = self.request(build)?;
        match rx.recv().await {
            Some(Message::Error {
                error,
                details,
                payload,
                ..
            }) => Err(ClientError::Wamp {
                error,
                details,
                payload,
            }),
            Some(m) => Ok(m),
            None => Err(ClientError::Closed),
        }
    }

    /// Subscribes to `topic` with `options` (e.g. `match`: `prefix` or `wildcard`) and waits
    /// for SUBSCRIBED; read the events from the returned [`Subscription`].
    pub async fn subscribe(&self, topic: &str, options: Dict) -> Result<Subscription, ClientError> {
        let (tx, events) = mpsc::unbounded_channel();
        let (_, mut rx) = self.request_with(
            |request| Message::Subscribe {
                request,
                options,
                topic: topic.to_owned(),
            },
            |st, id| {
                st.pending_subs.insert(id, tx);
            },
        )?;
        match rx.recv().await {
            Some(Message::Subscribed { subscription, .. }) => Ok(Subscription {
                id: subscription,
                events,
            }),
            Some(other) => Err(reply_error(other)),
            None => Err(ClientError::Closed),
        }
    }

    /// Ends a subscription and waits for UNSUBSCRIBED; its [`Subscription`] then yields `None`.
    pub async fn unsubscribe(&self, subscription: u64) -> Result<(), ClientError> {
        self.reply(|request| Message::Unsubscribe {
            request,
            subscription,
        })
        .await?;
        self.inner
            .state
            .lock()
            .expect("client state")
            .subscriptions
            .remove(&subscription);
        Ok(())
    }

    /// Publishes; with `acknowledge: true` in `options` it waits for PUBLISHED and returns
    /// the publication id.
    pub async fn publish(
        &self,
        topic: &str,
        payload: Payload,
        options: Dict,
    ) -> Result<Option<u64>, ClientError> {
        let ack = options.get_bool("acknowledge") == Some(true);
        let build = |request| Message::Publish {
            request,
            options,
            topic: topic.to_owned(),
            payload,
        };
        if !ack {
            // No reply is coming; nothing to wait for.
            self.request_with(build, |st, id| {
                st.pending.remove(&id);
            })?;
            return Ok(None);
        }
        match self.reply(build).await? {
            Message::Published { publication, .. } => Ok(Some(publication)),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Registers `procedure` with `options` (e.g. `match`, `invoke`) and waits for
    /// REGISTERED; read the invocations from the returned [`Registration`].
    pub async fn register(
        &self,
        procedure: &str,
        options: Dict,
    ) -> Result<Registration, ClientError> {
        let (tx, events) = mpsc::unbounded_channel();
        let (_, mut rx) = self.request_with(
            |request| Message::Register {
                request,
                options,
                procedure: procedure.to_owned(),
            },
            |st, id| {
                st.pending_regs.insert(id, tx);
            },
        )?;
        match rx.recv().await {
            Some(Message::Registered { registration, .. }) => Ok(Registration {
                id: registration,
                events,
            }),
            Some(other) => Err(reply_error(other)),
            None => Err(ClientError::Closed),
        }
    }

    /// Ends a registration and waits for UNREGISTERED; its [`Registration`] then yields `None`.
    pub async fn unregister(&self, registration: u64) -> Result<(), ClientError> {
        self.reply(|request| Message::Unregister {
            request,
            registration,
        })
        .await?;
        self.inner
            .state
            .lock()
            .expect("client state")
            .registrations
            .remove(&registration);
        Ok(())
    }

    /// Starts a call; read its results from the returned [`Call`]. Put `receive_progress:
    /// true` in `options` for progressive results.
    pub fn start_call(
        &self,
        procedure: &str,
        payload: Payload,
        options: Dict,
    ) -> Result<Call, ClientError> {
        let (request, replies) = self.request(|request| Message::Call {
            request,
            options,
            procedure: procedure.to_owned(),
            payload,
        })?;
        Ok(Call {
            request,
            replies,
            done: false,
        })
    }

    /// Calls and waits for the final result.
    pub async fn call(
        &self,
        procedure: &str,
        payload: Payload,
        options: Dict,
    ) -> Result<CallResult, ClientError> {
        self.start_call(procedure, payload, options)?.finish().await
    }

    /// Cancels a call in flight (`mode`: `skip`, `kill` or `killnowait`).
    pub fn cancel(&self, request: u64, mode: &str) -> Result<(), ClientError> {
        self.send_raw(Message::Cancel {
            request,
            options: Dict::new().with("mode", mode),
        })
    }

    /// Answers an invocation with its final result.
    pub async fn yield_result(&self, request: u64, payload: Payload) -> Result<(), ClientError> {
        self.forget_invocation(request);
        self.send_raw(Message::Yield {
            request,
            options: Dict::new(),
            payload,
        })
    }

    /// Sends one progressive result of an invocation; finish with [`Client::yield_result`] or
    /// [`Client::yield_error`]. Only for callers that asked (`receive_progress` in the details).
    pub async fn yield_progress(&self, request: u64, payload: Payload) -> Result<(), ClientError> {
        self.send_raw(Message::Yield {
            request,
            options: Dict::new().with("progress", true),
            payload,
        })
    }

    /// Fails an invocation: the caller gets ERROR with `error` (a URI) and `payload`.
    pub async fn yield_error(
        &self,
        request: u64,
        error: &str,
        payload: Payload,
    ) -> Result<(), ClientError> {
        self.forget_invocation(request);
        self.send_raw(Message::Error {
            request_type: code::INVOCATION,
            request,
            details: Dict::new(),
            error: error.to_owned(),
            payload,
        })
    }

    fn forget_invocation(&self, request: u64) {
        self.inner
            .state
            .lock()
            .expect("client state")
            .invocations
            .remove(&request);
    }

    /// Ends the session with GOODBYE and closes the connection.
    pub async fn leave(self) -> Result<(), ClientError> {
        self.send_raw(Message::Goodbye {
            details: Dict::new(),
            reason: "wamp.close.normal".to_owned(),
        })
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        self.inner.state.lock().expect("client state").closed
    }
}

impl Inner {
    fn route(&self, m: Message) {
        let mut st = self.state.lock().expect("client state");
        match m {
            Message::Event {
                subscription,
                publication,
                details,
                payload,
            } => {
                if let Some(tx) = st.subscriptions.get(&subscription) {
                    let _ = tx.send(Event {
                        subscription,
                        publication,
                        details,
                        payload,
                    });
                }
            }
            Message::Invocation {
                request,
                registration,
                details,
                payload,
            } => {
                st.invocations.insert(request, registration);
                if let Some(tx) = st.registrations.get(&registration) {
                    let _ = tx.send(CalleeEvent::Invocation(Invocation {
                        request,
                        registration,
                        details,
                        payload,
                    }));
                }
            }
            Message::Interrupt { request, options } => {
                if let Some(reg) = st.invocations.remove(&request) {
                    if let Some(tx) = st.registrations.get(&reg) {
                        let _ = tx.send(CalleeEvent::Interrupt { request, options });
                    }
                }
            }
            Message::Subscribed {
                request,
                subscription,
            } => {
                if let Some(tx) = st.pending_subs.remove(&request) {
                    st.subscriptions.insert(subscription, tx);
                }
                st.reply(request, m);
            }
            Message::Registered {
                request,
                registration,
            } => {
                if let Some(tx) = st.pending_regs.remove(&request) {
                    st.registrations.insert(registration, tx);
                }
                st.reply(request, m);
            }
            Message::Result { request, .. } | Message::Error { request, .. } => {
                st.pending_subs.remove(&request);
                st.pending_regs.remove(&request);
                st.reply(request, m)
            }
            Message::Published { request, .. }
            | Message::Unsubscribed { request }
            | Message::Unregistered { request } => st.reply(request, m),
            other => tracing::debug!("wamp client: ignoring {other:?}"),
        }
    }
}

impl State {
    fn reply(&mut self, request: u64, m: Message) {
        let progress = matches!(&m, Message::Result { details, .. } if details.get_bool("progress") == Some(true));
        if let Some(tx) = self.pending.get(&request) {
            let _ = tx.send(m);
        }
        if !progress {
            self.pending.remove(&request);
        }
    }
}
