//! The router on Sockeye WebSockets.
//!
//! One [`WampRouter`] is shared by every connection. Each connection runs two tasks:
//!
//! - the reader decodes messages (outside any lock), then takes the router lock just long
//!   enough to route one message, handing each resulting message to its recipient's
//!   **bounded** outbound queue with `try_send` — routing never waits for a session;
//! - the writer drains its own queue, encodes (outside the lock) and writes to its socket.
//!
//! A recipient whose queue is full is slow. [`SlowPolicy::DropEvents`] drops EVENTs for it
//! (and counts them); anything else that does not fit — a RESULT, an INVOCATION — cannot be
//! dropped without breaking the protocol, so that session is disconnected.
//! [`SlowPolicy::Disconnect`] disconnects it at the first message that does not fit.
//!
//! Messages are routed while the lock is held, so what one routing decision sends to one
//! session is queued in order, and the per-session queues keep it in order.
//!
//! Time: the core has no clock. Each input is preceded by [`Router::handle_timeout`] with the
//! current time, and one timer task per router sleeps until [`Router::poll_timeout`] (call
//! timeouts), woken early when an input brings the next deadline forward.
//!
//! Cluster mode ([`RouterConfig::cluster`]): [`WampRouter::cluster_link`] hands the caller what
//! the core has for the other nodes (publications to forward, calls for procedures registered
//! elsewhere, answers to other nodes' calls, cancels, NATS subjects to subscribe to), and
//! [`WampRouter::deliver_remote`], [`WampRouter::invoke_remote`],
//! [`WampRouter::remote_answer`], [`WampRouter::cancel_remote`],
//! [`WampRouter::remote_call_failed`] and [`WampRouter::node_gone`] take what the other nodes
//! send. This crate moves no bytes between nodes and knows no NATS; `sockeye-cluster` does
//! that.
//!
//! A connection is three parts: the reader (messages in, routed), the writer (its queue out)
//! and the shutdown part (at shutdown, the router says GOODBYE `wamp.close.system_shutdown`
//! to the session, waits up to [`GOODBYE_REPLY_TIMEOUT`] for the client's GOODBYE, then has
//! the writer close with 1001 "Going Away"). They end by one mechanism: the connection's
//! `Ending`, which any of them, or the router dropping a slow session, sets.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use sockeye::http::StatusCode;
use sockeye::{Message as WsMessage, Upgrade, WebSocketReader, WebSocketWriter};
use sockeye_wamp_proto::cluster::rpc::CallKey;
use sockeye_wamp_proto::{
    error_uri, Action, ClusterEvent, ConnId, Message, RemoteAnswer, RemoteCall, RemoteCancel,
    Router, RouterConfig, Serializer,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch, Notify};

use crate::framing::{from_frame, to_frame};

/// What to do with a session whose outbound queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SlowPolicy {
    /// Drop EVENTs for it and count them; disconnect it only if a non-EVENT does not fit.
    #[default]
    DropEvents,
    /// Disconnect it.
    Disconnect,
}

/// Transport settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TransportConfig {
    /// Serializers in the server's order of preference; the first one the client offered is
    /// chosen. Default [`Serializer::ALL`]: MessagePack, CBOR, JSON.
    pub serializers: Vec<Serializer>,
    /// Messages queued per session before it counts as slow. Default 1024.
    pub queue_capacity: usize,
    /// Bytes queued per session (as [`Message::size_hint`] measures them) before it counts as
    /// slow; a message larger than this is still queued when nothing else is waiting. Default
    /// [`DEFAULT_SESSION_QUEUE_BYTES`](sockeye_wamp_proto::config::DEFAULT_SESSION_QUEUE_BYTES),
    /// 8 MiB.
    pub queue_bytes: usize,
    /// What to do with a session once it counts as slow. Default [`SlowPolicy::DropEvents`].
    pub slow_policy: SlowPolicy,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            serializers: Serializer::ALL.to_vec(),
            queue_capacity: 1024,
            queue_bytes: sockeye_wamp_proto::config::DEFAULT_SESSION_QUEUE_BYTES,
            slow_policy: SlowPolicy::DropEvents,
        }
    }
}

impl TransportConfig {
    /// The transport settings of the `[wamp]` section of a settings file.
    pub fn from_settings(settings: &sockeye_wamp_proto::Settings) -> Self {
        TransportConfig {
            queue_bytes: settings.session_queue_bytes(),
            ..TransportConfig::default()
        }
    }
}

/// How a connection is ending, watched by each of its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Serving.
    Running,
    /// The server is shutting down: the close that ends the connection is 1001 "Going Away".
    GoingAway,
    /// Drop the connection now (the router dropped the session for being slow).
    Killed,
}

enum Outbound {
    /// A message for one session, with its size: measured once when it is queued, given back
    /// when it is taken out.
    Msg(Arc<Message>, usize),
    /// A message routed to several sessions (an EVENT to every subscriber), serialized once
    /// per serializer by whichever writer gets to it first.
    Shared(Arc<SharedMessage>),
    /// Close the WebSocket after what was queued before (after ABORT or GOODBYE, or at
    /// shutdown).
    Close,
}

impl Outbound {
    /// What the message counts against its session's byte budget.
    fn size(&self) -> usize {
        match self {
            Outbound::Msg(_, size) => *size,
            Outbound::Shared(s) => s.size,
            Outbound::Close => 0,
        }
    }
}

/// The queue of one session, as the router's side holds it.
struct Outbox {
    tx: mpsc::Sender<Outbound>,
    /// Bytes in `tx`'s queue, given back by whoever takes a message out.
    bytes: Arc<AtomicUsize>,
    ending: Arc<watch::Sender<Ending>>,
    dropped: u64,
}

/// The other end of an [`Outbox`]: what the writer (or a [`LocalSession`]) reads.
struct Inbox {
    rx: mpsc::Receiver<Outbound>,
    bytes: Arc<AtomicUsize>,
    ending: watch::Receiver<Ending>,
}

impl Inbox {
    /// The next message, its bytes given back to the budget; `None` once every sender is
    /// gone.
    async fn recv(&mut self) -> Option<Outbound> {
        let out = self.rx.recv().await?;
        self.bytes.fetch_sub(out.size(), Ordering::Relaxed);
        Some(out)
    }

    fn try_recv(&mut self) -> Option<Outbound> {
        let out = self.rx.try_recv().ok()?;
        self.bytes.fetch_sub(out.size(), Ordering::Relaxed);
        Some(out)
    }
}

/// How long a session gets to answer the router's GOODBYE at shutdown before the WebSocket
/// is closed anyway.
pub const GOODBYE_REPLY_TIMEOUT: Duration = Duration::from_secs(1);

struct State {
    router: Router,
    outboxes: HashMap<ConnId, Outbox>,
    /// When the timer task wakes up next (`None`: it waits for a deadline).
    timer_wake: Option<Instant>,
    /// Where cluster output goes, once [`WampRouter::cluster_link`] was called.
    cluster: Option<ClusterTx>,
}

/// The router's side of a [`ClusterLink`].
struct ClusterTx {
    events: mpsc::Sender<Box<ClusterEvent>>,
    interest: mpsc::UnboundedSender<ClusterOut>,
    /// Calls, answers and cancels, in the order the router emitted them.
    rpc: mpsc::UnboundedSender<ClusterOut>,
    /// Calls in `rpc` not yet taken by the link, and how many may be.
    calls_queued: Arc<AtomicUsize>,
    max_calls: usize,
}

/// What a router in cluster mode has for the other nodes: see [`WampRouter::cluster_link`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ClusterOut {
    /// A publication accepted here, for the other nodes' [`WampRouter::deliver_remote`]
    /// (send it on [`sockeye_wamp_proto::cluster::topic_subject`] of its realm and topic).
    /// Boxed as the router emitted it.
    Event(Box<ClusterEvent>),
    /// Subscribe to (`on`) or unsubscribe from this NATS subject: the first local subscription
    /// needing it appeared, or the last one went.
    Interest {
        /// The realm of the subscriptions.
        realm: String,
        /// The subject, wildcards and all.
        subject: String,
        /// Subscribe or unsubscribe.
        on: bool,
    },
    /// A call no local registration matches, for the node that has the procedure (send it
    /// to [`sockeye_wamp_proto::cluster::procedure_subject`] of its realm and procedure,
    /// whose subscribers form one queue group): that node's [`WampRouter::invoke_remote`].
    /// If nobody subscribes there, tell [`WampRouter::remote_call_failed`] with
    /// `wamp.error.no_such_procedure`.
    Call(Box<RemoteCall>),
    /// An answer to another node's call served here, for the node whose router is
    /// `key.origin`: that node's [`WampRouter::remote_answer`]. A call's answers must arrive
    /// in the order given.
    Answer(Box<RemoteAnswer>),
    /// A call made here is canceled: for [`WampRouter::cancel_remote`] on the node serving
    /// it (`node`), or on every node when `node` is `None`.
    Cancel(Box<RemoteCancel>),
    /// Subscribe to (`on`) or unsubscribe from this NATS subject in a queue group: the first
    /// local exact registration of a procedure appeared, or the last one went.
    Registered {
        /// The realm of the registration.
        realm: String,
        /// The subject (no wildcards).
        subject: String,
        /// Subscribe or unsubscribe.
        on: bool,
    },
}

/// The receiving end of a router's cluster output: [`WampRouter::cluster_link`].
///
/// Events travel in a bounded queue: the router never waits for the backplane, so when the
/// queue is full an event is dropped and counted ([`WampRouter::cluster_dropped`]) — cluster
/// events are at-most-once. Interest and registration changes are never dropped (there are at
/// most as many as subscriptions and registrations come and go), and [`ClusterLink::recv`]
/// returns them first.
///
/// Calls, answers and cancels share one queue, in the order the router emitted them, and are
/// never dropped silently: a call finding `capacity` calls queued and not yet taken (or no
/// link, or a replaced one) is failed at once — its caller gets ERROR `wamp.error.canceled`
/// — so the calls waiting here are bounded. Answers and cancels are not bounded: there is
/// one per call in flight, plus the progressive results its callee sends while the link is
/// not read. With no link they have nowhere to go and are dropped and counted; their calls
/// end as their caller's node decides (timeout, [`WampRouter::node_gone`]).
#[derive(Debug)]
pub struct ClusterLink {
    events: mpsc::Receiver<Box<ClusterEvent>>,
    interest: mpsc::UnboundedReceiver<ClusterOut>,
    rpc: mpsc::UnboundedReceiver<ClusterOut>,
    calls_queued: Arc<AtomicUsize>,
}

impl ClusterLink {
    /// The next thing to do for the other nodes, interest changes first; `None` once the
    /// router is gone or another link replaced this one.
    pub async fn recv(&mut self) -> Option<ClusterOut> {
        let out = tokio::select! {
            biased;
            Some(i) = self.interest.recv() => Some(i),
            Some(r) = self.rpc.recv() => Some(r),
            Some(e) = self.events.recv() => Some(ClusterOut::Event(e)),
            else => None,
        };
        self.taken(out)
    }

    /// [`ClusterLink::recv`] without waiting: `None` if nothing is queued now.
    pub fn try_recv(&mut self) -> Option<ClusterOut> {
        let out = self
            .interest
            .try_recv()
            .ok()
            .or_else(|| self.rpc.try_recv().ok())
            .or_else(|| self.events.try_recv().ok().map(ClusterOut::Event));
        self.taken(out)
    }

    /// A call taken out makes room for another.
    fn taken(&self, out: Option<ClusterOut>) -> Option<ClusterOut> {
        if let Some(ClusterOut::Call(_)) = out {
            self.calls_queued.fetch_sub(1, Ordering::Relaxed);
        }
        out
    }
}

struct Shared {
    state: Mutex<State>,
    config: TransportConfig,
    dropped_events: AtomicU64,
    slow_disconnects: AtomicU64,
    /// Cluster events dropped (the link's queue was full, or there was no link), calls failed
    /// for the same reasons, and answers and cancels with no link to go to.
    cluster_dropped: AtomicU64,
    /// Wakes the timer task when a deadline earlier than `timer_wake` appears.
    timer: Arc<Notify>,
    timer_started: AtomicBool,
}

/// A router shared by many WebSocket connections. Cheap to clone.
#[derive(Clone)]
pub struct WampRouter {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for WampRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WampRouter")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

/// Mounts the process-wide default router (realm `realm1`, other realms created on demand,
/// loose URIs, default transport settings) on a WebSocket request. This is what
/// `sockeye serve` does at `/wamp`.
pub async fn serve_session<S>(upgrade: Upgrade<S>) -> sockeye::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    serve_session_until(upgrade, std::future::pending()).await
}

/// [`serve_session`], closing the WebSocket with 1001 "Going Away" once `shutdown` completes.
pub async fn serve_session_until<S>(
    upgrade: Upgrade<S>,
    shutdown: impl Future<Output = ()>,
) -> sockeye::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    static GLOBAL: OnceLock<WampRouter> = OnceLock::new();
    GLOBAL
        .get_or_init(|| WampRouter::new(RouterConfig::default(), TransportConfig::default()))
        .serve_until(upgrade, shutdown)
        .await
}

impl WampRouter {
    /// A router core with `router`'s realms and auth, served with `transport`'s settings.
    pub fn new(router: RouterConfig, transport: TransportConfig) -> Self {
        WampRouter {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    router: Router::new(router),
                    outboxes: HashMap::new(),
                    timer_wake: None,
                    cluster: None,
                }),
                config: transport,
                dropped_events: AtomicU64::new(0),
                slow_disconnects: AtomicU64::new(0),
                cluster_dropped: AtomicU64::new(0),
                timer: Arc::new(Notify::new()),
                timer_started: AtomicBool::new(false),
            }),
        }
    }

    /// EVENTs dropped for slow subscribers so far.
    pub fn dropped_events(&self) -> u64 {
        self.shared.dropped_events.load(Ordering::Relaxed)
    }

    /// Sessions disconnected for being slow so far.
    pub fn slow_disconnects(&self) -> u64 {
        self.shared.slow_disconnects.load(Ordering::Relaxed)
    }

    /// Cluster mode ([`RouterConfig::cluster`]): the receiving end of what the router has for
    /// the other nodes, holding at most `capacity` events (at least 1). It starts with an
    /// [`ClusterOut::Interest`] `on` for every subject the current subscriptions need. A new
    /// link replaces the previous one, whose [`ClusterLink::recv`] then ends. Without a link,
    /// events are dropped and counted. Out of cluster mode the link stays silent.
    ///
    /// It also starts with a [`ClusterOut::Registered`] `on` for every procedure subject the
    /// current exact registrations need, and at most `capacity` calls wait in it (see
    /// [`ClusterLink`]).
    pub fn cluster_link(&self, capacity: usize) -> ClusterLink {
        let (events_tx, events) = mpsc::channel(capacity.max(1));
        let (interest_tx, interest) = mpsc::unbounded_channel();
        let (rpc_tx, rpc) = mpsc::unbounded_channel();
        let calls_queued = Arc::new(AtomicUsize::new(0));
        let mut st = self.shared.lock();
        for (realm, subject) in st.router.interests() {
            let _ = interest_tx.send(ClusterOut::Interest {
                realm,
                subject,
                on: true,
            });
        }
        for (realm, subject) in st.router.registrations() {
            let _ = interest_tx.send(ClusterOut::Registered {
                realm,
                subject,
                on: true,
            });
        }
        st.cluster = Some(ClusterTx {
            events: events_tx,
            interest: interest_tx,
            rpc: rpc_tx,
            calls_queued: calls_queued.clone(),
            max_calls: capacity.max(1),
        });
        ClusterLink {
            events,
            interest,
            rpc,
            calls_queued,
        }
    }

    /// This router's name in the cluster ([`Router::origin`]): what the other nodes give
    /// [`WampRouter::node_gone`] when this node goes, and where answers to its calls go.
    pub fn origin(&self) -> u64 {
        self.with_router(Router::origin)
    }

    /// Serves another node's call ([`ClusterOut::Call`] there) with a local callee (see
    /// [`Router::invoke_remote`]); its answers come out of this router's link as
    /// [`ClusterOut::Answer`].
    pub fn invoke_remote(&self, call: RemoteCall) {
        self.with_state(|st| st.router.invoke_remote(call));
    }

    /// An answer to a call made here ([`ClusterOut::Answer`] on the serving node): the
    /// caller gets RESULT or ERROR (see [`Router::remote_answer`]).
    pub fn remote_answer(&self, answer: RemoteAnswer) {
        self.with_state(|st| st.router.remote_answer(answer));
    }

    /// A call made here cannot be served (NATS "no responders": `wamp.error.no_such_procedure`),
    /// see [`Router::remote_call_failed`].
    pub fn remote_call_failed(&self, key: CallKey, error: &str) {
        self.with_state(|st| st.router.remote_call_failed(key, error));
    }

    /// The caller's node cancels a call served here ([`ClusterOut::Cancel`] there), see
    /// [`Router::cancel_remote`].
    pub fn cancel_remote(&self, cancel: RemoteCancel) {
        self.with_state(|st| st.router.cancel_remote(cancel));
    }

    /// Another node (its [`WampRouter::origin`]) is gone: the calls it serves fail with
    /// ERROR `wamp.error.canceled`, the calls of its callers are interrupted (see
    /// [`Router::node_gone`]).
    pub fn node_gone(&self, node: u64) {
        self.with_state(|st| st.router.node_gone(node));
    }

    /// Delivers another node's publication to this router's subscribers (see
    /// [`Router::deliver_remote`]): EVENTs queued as for a local PUBLISH, never forwarded
    /// again.
    pub fn deliver_remote(&self, event: ClusterEvent) {
        self.with_state(|st| st.router.deliver_remote(event));
    }

    /// A retained event the cluster's store keeps, at `revision` (see
    /// [`Router::offer_retained`]): kept for `get_retained`, never sent to current
    /// subscribers; kept for its realm if this router has not created it yet.
    pub fn offer_retained(&self, event: ClusterEvent, revision: u64) {
        self.with_state(|st| st.router.offer_retained(event, revision));
    }

    /// The cluster's store answered for a retained publication of this router (see
    /// [`Router::retained_stored`]): kept at `revision`, or not kept (`None`).
    pub fn retained_stored(
        &self,
        realm: &str,
        topic: &str,
        publication: u64,
        revision: Option<u64>,
    ) {
        self.with_state(|st| {
            st.router
                .retained_stored(realm, topic, publication, revision)
        });
    }

    /// Cluster events dropped so far (the [`ClusterLink`]'s queue was full, or there was
    /// none), plus calls failed and answers and cancels dropped for the same reasons.
    pub fn cluster_dropped(&self) -> u64 {
        self.shared.cluster_dropped.load(Ordering::Relaxed)
    }

    /// Runs `f` on the router core (for statistics and tests); the lock is held meanwhile.
    pub fn with_router<T>(&self, f: impl FnOnce(&Router) -> T) -> T {
        f(&self.shared.lock().router)
    }

    /// Starts the task that drives the core's timers, once, from inside the runtime.
    fn start_timer(&self) {
        if !self.shared.timer_started.swap(true, Ordering::Relaxed) {
            tokio::spawn(run_timers(Arc::downgrade(&self.shared)));
        }
    }

    /// A new connection of the router core, with the queue its messages go to.
    fn connect(&self, capacity: usize) -> (ConnId, Inbox, Arc<watch::Sender<Ending>>) {
        let (tx, rx) = mpsc::channel(capacity);
        let (ending, ending_rx) = watch::channel(Ending::Running);
        let ending = Arc::new(ending);
        let bytes = Arc::new(AtomicUsize::new(0));
        let mut st = self.shared.lock();
        let conn = st.router.connect();
        let outbox = Outbox {
            tx,
            bytes: bytes.clone(),
            ending: ending.clone(),
            dropped: 0,
        };
        st.outboxes.insert(conn, outbox);
        let inbox = Inbox {
            rx,
            bytes,
            ending: ending_rx,
        };
        (conn, inbox, ending)
    }

    /// The connection is gone: the router forgets it, its calls fail, its queue closes.
    fn disconnect(&self, conn: ConnId) {
        self.with_state(|st| {
            st.router.disconnect(conn);
            st.outboxes.remove(&conn);
        });
    }

    /// Runs `f` under the lock, then carries out what the router decided.
    fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut st = self.shared.lock();
        let out = f(&mut st);
        self.shared.dispatch(&mut st);
        out
    }

    /// A session inside this process, joined to `realm` as `authid` without authentication
    /// (see [`Router::join_trusted`]): a service the server itself offers talks WAMP through
    /// it, with no WebSocket and no serializer in between. Its first message is the WELCOME.
    /// It leaves the realm when dropped.
    pub fn join_local(&self, realm: &str, authid: &str) -> Option<LocalSession> {
        // Large enough that a component reading as fast as it can is never treated as slow.
        let (conn, inbox, _) = self.connect(self.shared.config.queue_capacity.max(4096));
        let Some(session_id) = self.with_state(|st| st.router.join_trusted(conn, realm, authid))
        else {
            self.disconnect(conn);
            return None;
        };
        self.start_timer();
        Some(LocalSession {
            router: self.clone(),
            conn,
            session_id,
            inbox,
        })
    }

    /// Routes one message from a connection, as if it had arrived on its transport.
    fn route(&self, conn: ConnId, msg: Message) {
        let mut st = self.shared.lock();
        st.router.handle_timeout(Instant::now());
        st.router.handle(conn, msg);
        self.shared.dispatch(&mut st);
        if let Some(next) = st.router.poll_timeout() {
            if st.timer_wake.is_none_or(|w| next < w) {
                st.timer_wake = Some(next);
                self.shared.timer.notify_one();
            }
        }
    }

    /// Accepts the request with a WAMP subprotocol and serves the session until the
    /// connection ends. A request offering no serializer we speak is refused with 400.
    pub async fn serve<S>(&self, upgrade: Upgrade<S>) -> sockeye::Result<()>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        self.serve_until(upgrade, std::future::pending()).await
    }

    /// [`WampRouter::serve`], closing the WebSocket with 1001 "Going Away" once `shutdown`
    /// completes (the session ends when the client answers the close).
    pub async fn serve_until<S>(
        &self,
        upgrade: Upgrade<S>,
        shutdown: impl Future<Output = ()>,
    ) -> sockeye::Result<()>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let offered = upgrade.offered_protocols();
        let Some(serializer) = Serializer::negotiate(&self.shared.config.serializers, &offered)
        else {
            let want: Vec<_> = self
                .shared
                .config
                .serializers
                .iter()
                .map(|s| s.protocol())
                .collect();
            return upgrade
                .reject(
                    StatusCode::BAD_REQUEST,
                    &format!(
                        "WAMP needs one of these subprotocols: {}\n",
                        want.join(", ")
                    ),
                )
                .await;
        };
        let ws = upgrade
            .accept(Some(serializer.protocol().to_owned()))
            .await?;
        self.start_timer();
        let (sink, stream) = ws.split();
        let (conn, inbox, ending) = self.connect(self.shared.config.queue_capacity.max(1));
        let mut killed = inbox.ending.clone();
        let writer = tokio::spawn(write_queue(sink, inbox, serializer));

        let result = tokio::select! {
            biased;
            _ = killed.wait_for(|e| *e == Ending::Killed) => Ok(()),
            r = self.read_messages(conn, stream, serializer) => r,
            never = self.shut_down_when(conn, shutdown, &ending) => match never {},
        };

        self.disconnect(conn);
        // The writer finishes what was queued (an ABORT, a GOODBYE) and closes; if the peer
        // is gone it fails fast.
        let _ = writer.await;
        result
    }

    /// The reader: routes each message the client sends until the WebSocket ends.
    async fn read_messages<S>(
        &self,
        conn: ConnId,
        mut stream: WebSocketReader<S>,
        serializer: Serializer,
    ) -> sockeye::Result<()>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        while let Some(frame) = stream.next().await {
            match from_frame(serializer, &frame?) {
                None => break,
                Some(Ok(msg)) => self.route(conn, msg),
                Some(Err(violation)) => {
                    self.with_state(|st| st.router.handle_violation(conn, &violation))
                }
            }
        }
        Ok(())
    }

    /// The shutdown part: once `shutdown` completes, GOODBYE and wait up to
    /// [`GOODBYE_REPLY_TIMEOUT`] for the client's, then close with 1001. Never returns.
    async fn shut_down_when(
        &self,
        conn: ConnId,
        shutdown: impl Future<Output = ()>,
        ending: &watch::Sender<Ending>,
    ) -> std::convert::Infallible {
        shutdown.await;
        ending.send_if_modified(|e| {
            let running = *e == Ending::Running;
            if running {
                *e = Ending::GoingAway;
            }
            running
        });
        let said_goodbye = self.with_state(|st| {
            st.router.goodbye(
                conn,
                error_uri::SYSTEM_SHUTDOWN,
                "the server is shutting down",
            )
        });
        if said_goodbye {
            // The client's GOODBYE makes the router close the connection before this ends.
            tokio::time::sleep(GOODBYE_REPLY_TIMEOUT).await;
        }
        // A send that waits would hold up the close; a full queue means the session is stuck
        // anyway, and the server's own timeout ends it.
        if let Some(outbox) = self.shared.lock().outboxes.get(&conn) {
            let _ = outbox.tx.try_send(Outbound::Close);
        }
        std::future::pending().await
    }
}

/// The writer: sends what is queued for a session, many messages a write when many are
/// waiting, and closes the WebSocket when told to (1000, or 1001 at shutdown).
async fn write_queue<S>(mut sink: WebSocketWriter<S>, mut inbox: Inbox, serializer: Serializer)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut ending = inbox.ending.clone();
    let mut next = None;
    loop {
        let out = match next.take() {
            Some(out) => Some(out),
            None => tokio::select! {
                biased;
                _ = ending.wait_for(|e| *e == Ending::Killed) => return,
                out = inbox.recv() => out,
            },
        };
        let first = match out {
            Some(Outbound::Msg(m, _)) => Encoded::Plain(m),
            Some(Outbound::Shared(shared)) => Encoded::Shared(shared),
            Some(Outbound::Close) | None => {
                let close = match *ending.borrow() {
                    Ending::GoingAway => WsMessage::close(1001, "Going Away"),
                    _ => WsMessage::close(1000, ""),
                };
                let _ = sink.send(close).await;
                return;
            }
        };
        // Whatever else is already queued goes out in the same write: under load one system
        // call carries many messages.
        let mut batch = vec![first.frame(serializer)];
        while batch.len() < WRITE_BATCH {
            match inbox.try_recv() {
                Some(Outbound::Msg(m, _)) => batch.push(Encoded::Plain(m).frame(serializer)),
                Some(Outbound::Shared(s)) => batch.push(Encoded::Shared(s).frame(serializer)),
                Some(close) => {
                    next = Some(close);
                    break;
                }
                None => break,
            }
        }
        let sent = tokio::select! {
            biased;
            _ = ending.wait_for(|e| *e == Ending::Killed) => return,
            r = async {
                for frame in batch {
                    sink.feed(frame).await?;
                }
                sink.flush().await
            } => r,
        };
        if sent.is_err() {
            return;
        }
    }
}

/// A WAMP session inside the server's process: see [`WampRouter::join_local`].
pub struct LocalSession {
    router: WampRouter,
    conn: ConnId,
    session_id: u64,
    inbox: Inbox,
}

impl std::fmt::Debug for LocalSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalSession")
            .field("session_id", &self.session_id)
            .finish_non_exhaustive()
    }
}

impl LocalSession {
    /// The WAMP session id.
    pub fn session_id(&self) -> u64 {
        self.session_id
    }

    /// Sends a message to the router, which routes it before this returns.
    pub fn send(&self, msg: Message) {
        self.router.route(self.conn, msg);
    }

    /// The next message the router sent to this session; `None` once the router has ended
    /// the session (GOODBYE or ABORT already received, or dropped for being slow).
    pub async fn recv(&mut self) -> Option<Arc<Message>> {
        if *self.inbox.ending.borrow() == Ending::Killed {
            return None;
        }
        match self.inbox.recv().await? {
            Outbound::Msg(msg, _) => Some(msg),
            Outbound::Shared(shared) => Some(shared.msg.clone()),
            Outbound::Close => None,
        }
    }
}

impl Drop for LocalSession {
    fn drop(&mut self) {
        self.router.disconnect(self.conn);
    }
}

/// The timer task of a router: sleeps until the core's next deadline, then lets it act. Ends
/// when the router is dropped.
async fn run_timers(shared: Weak<Shared>) {
    loop {
        let Some(strong) = shared.upgrade() else {
            return;
        };
        let next = {
            let mut st = strong.lock();
            st.router.handle_timeout(Instant::now());
            strong.dispatch(&mut st);
            let next = st.router.poll_timeout();
            st.timer_wake = next;
            next
        };
        // Hold only the Notify while sleeping, so that dropping the router is noticed at the
        // next wake-up.
        let timer = strong.timer.clone();
        drop(strong);
        let notified = timer.notified();
        tokio::pin!(notified);
        match next {
            Some(at) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(at.into()) => {}
                    _ = &mut notified => {}
                }
            }
            None => {
                // Waiting for the first deadline; wake every minute to notice a dropped router.
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(60)) => {}
                    _ = &mut notified => {}
                }
            }
        }
    }
}

/// Messages one writer sends in one write at most.
const WRITE_BATCH: usize = 64;

struct SharedMessage {
    msg: Arc<Message>,
    size: usize,
    frames: [OnceLock<WsMessage>; 3],
}

enum Encoded {
    Plain(Arc<Message>),
    Shared(Arc<SharedMessage>),
}

impl Encoded {
    fn frame(self, serializer: Serializer) -> WsMessage {
        match self {
            Encoded::Plain(msg) => to_frame(serializer, &msg),
            Encoded::Shared(shared) => {
                let slot = Serializer::ALL
                    .iter()
                    .position(|s| *s == serializer)
                    .expect("every serializer is in ALL");
                shared.frames[slot]
                    .get_or_init(|| to_frame(serializer, &shared.msg))
                    .clone()
            }
        }
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while routing must not take every other session down with it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Carries out the router's actions. Runs under the lock and never waits.
    fn dispatch(&self, st: &mut State) {
        while let Some(action) = st.router.poll() {
            match action {
                Action::Send(to, msg) => {
                    let size = msg.size_hint();
                    self.enqueue(st, to, Outbound::Msg(msg, size));
                }
                Action::Broadcast(to, msg) => {
                    let shared = Arc::new(SharedMessage {
                        size: msg.size_hint(),
                        msg,
                        frames: Default::default(),
                    });
                    for to in to {
                        self.enqueue(st, to, Outbound::Shared(shared.clone()));
                    }
                }
                Action::Close(to) => self.enqueue(st, to, Outbound::Close),
                Action::Forward(event) => {
                    let sent = match &st.cluster {
                        Some(link) => link.events.try_send(event).map_err(|e| match e {
                            mpsc::error::TrySendError::Full(_) => false,
                            mpsc::error::TrySendError::Closed(_) => true,
                        }),
                        None => Err(false),
                    };
                    if let Err(closed) = sent {
                        if closed {
                            st.cluster = None;
                        }
                        let n = self.cluster_dropped.fetch_add(1, Ordering::Relaxed) + 1;
                        if n.is_power_of_two() {
                            tracing::debug!(dropped = n, "cluster events dropped");
                        }
                    }
                }
                Action::Interest { realm, subject, on } => {
                    if let Some(link) = &st.cluster {
                        // Unbounded: there are no more of these than subscriptions made.
                        let _ = link
                            .interest
                            .send(ClusterOut::Interest { realm, subject, on });
                    }
                }
                Action::Registered { realm, subject, on } => {
                    if let Some(link) = &st.cluster {
                        // Unbounded: no more of these than registrations made.
                        let _ = link
                            .interest
                            .send(ClusterOut::Registered { realm, subject, on });
                    }
                }
                Action::RemoteCall(call) => {
                    let key = call.key;
                    let queued = st.cluster.as_ref().is_some_and(|link| {
                        let n = link.calls_queued.fetch_add(1, Ordering::Relaxed);
                        let sent =
                            n < link.max_calls && link.rpc.send(ClusterOut::Call(call)).is_ok();
                        if !sent {
                            link.calls_queued.fetch_sub(1, Ordering::Relaxed);
                        }
                        sent
                    });
                    if !queued {
                        // Never a silent loss: the caller is told now (the router's answer
                        // is an action this loop carries out next).
                        self.cluster_dropped.fetch_add(1, Ordering::Relaxed);
                        st.router.remote_call_failed(key, error_uri::CANCELED);
                    }
                }
                Action::RemoteAnswer(answer) => self.send_rpc(st, ClusterOut::Answer(answer)),
                Action::RemoteCancel(cancel) => self.send_rpc(st, ClusterOut::Cancel(cancel)),
            }
        }
    }

    /// Queues an answer or a cancel for the other nodes, or counts it lost if there is no
    /// link.
    fn send_rpc(&self, st: &mut State, out: ClusterOut) {
        let sent = st.cluster.as_ref().is_some_and(|l| l.rpc.send(out).is_ok());
        if !sent {
            let n = self.cluster_dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::debug!(dropped = n, "cluster messages dropped: no link");
            }
        }
    }

    /// Queues one message for a session without waiting; a session whose queue is full is
    /// slow, and [`SlowPolicy`] says what happens to it.
    fn enqueue(&self, st: &mut State, to: ConnId, out: Outbound) {
        let Some(outbox) = st.outboxes.get_mut(&to) else {
            return;
        };
        let is_event = match &out {
            Outbound::Msg(m, _) => matches!(**m, Message::Event { .. }),
            Outbound::Shared(s) => matches!(*s.msg, Message::Event { .. }),
            Outbound::Close => false,
        };
        // Over the byte budget counts as full, unless the queue is empty: one message larger
        // than the budget still goes.
        let size = out.size();
        let before = outbox.bytes.fetch_add(size, Ordering::Relaxed);
        let sent = if before > 0 && before + size > self.config.queue_bytes {
            Err(mpsc::error::TrySendError::Full(out))
        } else {
            outbox.tx.try_send(out)
        };
        if sent.is_err() {
            outbox.bytes.fetch_sub(size, Ordering::Relaxed);
        }
        match sent {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(_))
                if is_event && self.config.slow_policy == SlowPolicy::DropEvents =>
            {
                outbox.dropped += 1;
                if outbox.dropped.is_power_of_two() {
                    tracing::debug!(?to, dropped = outbox.dropped, "slow subscriber");
                }
                self.dropped_events.fetch_add(1, Ordering::Relaxed);
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::info!(?to, "disconnecting a slow session");
                self.slow_disconnects.fetch_add(1, Ordering::Relaxed);
                outbox.ending.send_replace(Ending::Killed);
                st.outboxes.remove(&to);
                // Its calls fail and its subscriptions go now, not when its tasks notice.
                st.router.disconnect(to);
            }
        }
    }
}
