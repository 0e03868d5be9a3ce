//! The WAMP router's part in the cluster. The router decides everything (sans-I/O,
//! `sockeye_wamp_proto::cluster`); this only moves bytes over the backplane:
//!
//! - events: out on their topic's subject, in on the subjects the node's subscriptions need,
//!   each delivered once;
//! - calls: a CALL for a procedure registered on another node is a request on the procedure's
//!   subject, which the nodes that registered it listen on as one group (NATS picks one); the
//!   callee's node takes it at once ("no responders" is `wamp.error.no_such_procedure`), then
//!   its answers (accepted, progressive and final results, errors) go to the caller's node's
//!   own subject, as do cancels;
//! - retained events: the node stores each retained publication it accepts in the backplane's
//!   latest values (one per realm and topic, [`retained_key`]) and tells the router how that
//!   went; it loads every one kept there at start, and follows the later ones, for the
//!   router's `get_retained` (its realms, and those it creates later);
//! - liveness: each node says it is alive every [`ALIVE_EVERY`]; a node silent for
//!   [`ALIVE_SILENCE`] is gone, and the calls it served fail with `wamp.error.canceled`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use sockeye_cluster::{Backplane, Kept};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

use sockeye_wamp::proto::cluster::rpc::{Answer, RemoteAnswer, RemoteCall, RpcMessage};
use sockeye_wamp::proto::cluster::{procedure_subject, retained_key, topic_subject};
use sockeye_wamp::proto::error_uri;
use sockeye_wamp::ClusterEvent;
use sockeye_wamp::{ClusterOut, WampRouter};

/// Router events queued for the backplane; past that they are dropped and counted (events are
/// at-most-once).
const EVENT_QUEUE: usize = 4096;

/// Retained publications waiting to be stored; past that one is not stored, and its router is
/// told so.
const STORE_QUEUE: usize = 1024;
/// How long the node waits before it asks again for the retained events after failing to.
const RETRY: Duration = Duration::from_millis(500);

/// How long a call waits for a node to take it.
const TAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a node says it is alive.
pub const ALIVE_EVERY: Duration = Duration::from_secs(2);
/// How long a node may be silent before its calls are failed.
pub const ALIVE_SILENCE: Duration = Duration::from_secs(7);
/// The queue group of the nodes that registered a procedure.
const CALLEES: &str = "sockeye-wamp-callees";

/// The subjects of one node's calls, by the router's origin.
struct Subjects {
    prefix: String,
}

impl Subjects {
    fn node(&self, origin: u64) -> String {
        format!("{}-node.{origin}", self.prefix)
    }
    fn all_nodes(&self) -> String {
        format!("{}-node.all", self.prefix)
    }
    fn alive(&self) -> String {
        format!("{}-alive", self.prefix)
    }
}

/// Which events to deliver. Each node numbers the events it sends. An event travels on one
/// subject, but a node listening on several subjects that match it (an exact and a prefix
/// subscription, say) gets a copy per subject, through as many listeners whose order among
/// themselves is not kept. Delivering only an event numbered above the last one delivered from
/// its node gives each event once and each node's events in the order it sent them; a copy
/// that arrives after a later event is dropped (events are at most once).
#[derive(Default)]
struct InOrder {
    last: HashMap<u64, u64>,
}

impl InOrder {
    /// Whether event `number` of the node `origin` is to be delivered (and remembers it).
    fn admit(&mut self, origin: u64, number: u64) -> bool {
        let last = self.last.entry(origin).or_insert(0);
        if number > *last {
            *last = number;
            true
        } else {
            false
        }
    }
}

/// An event as it travels: its number from its node (8 bytes, big-endian), then the event.
fn numbered(number: u64, event: &ClusterEvent) -> bytes::Bytes {
    let mut bytes = number.to_be_bytes().to_vec();
    bytes.extend_from_slice(&event.encode());
    bytes.into()
}

/// The number and the event of [`numbered`]'s bytes.
fn unnumbered(bytes: &[u8]) -> Result<(u64, ClusterEvent), String> {
    let (number, event) = bytes
        .split_first_chunk::<8>()
        .ok_or("shorter than an event number")?;
    let event = ClusterEvent::decode(event).map_err(|e| e.to_string())?;
    Ok((u64::from_be_bytes(*number), event))
}

/// Carries `wamp`'s cluster traffic over `backplane` for as long as the node runs; sets
/// `retained_loaded` once the retained events the cluster kept are all in the router, and
/// counts in `dropped` the events from other nodes that arrived faster than the router took
/// them.
pub async fn run(
    wamp: WampRouter,
    backplane: Arc<dyn Backplane>,
    prefix: String,
    retained_loaded: Arc<AtomicBool>,
    dropped: Arc<AtomicU64>,
) {
    let mut link = wamp.cluster_link(EVENT_QUEUE);
    tokio::spawn(follow_retained(
        wamp.clone(),
        backplane.clone(),
        prefix.clone(),
        retained_loaded,
    ));
    // In their own task, in order: storing waits for the store's answer, which the other
    // traffic need not.
    let (to_store, storing) = tokio::sync::mpsc::channel::<Box<ClusterEvent>>(STORE_QUEUE);
    tokio::spawn(store_retained(
        wamp.clone(),
        backplane.clone(),
        prefix.clone(),
        storing,
    ));
    // Every listener's events, to be delivered once each.
    let (arrived, mut arrivals) = tokio::sync::mpsc::channel::<bytes::Bytes>(EVENT_QUEUE);
    let delivering = wamp.clone();
    tokio::spawn(async move {
        let mut in_order = InOrder::default();
        while let Some(payload) = arrivals.recv().await {
            match unnumbered(&payload) {
                Ok((number, event)) if in_order.admit(event.origin, number) => {
                    delivering.deliver_remote(event)
                }
                Ok(_) => {}
                Err(e) => tracing::debug!("cluster: not a WAMP event: {e}"),
            }
        }
    });
    let subjects = Arc::new(Subjects {
        prefix: prefix.clone(),
    });
    let origin = wamp.origin();
    for subject in [subjects.node(origin), subjects.all_nodes()] {
        tokio::spawn(take_answers_and_cancels(
            wamp.clone(),
            backplane.clone(),
            subject,
        ));
    }
    tokio::spawn(keep_alive(
        wamp.clone(),
        backplane.clone(),
        subjects.clone(),
    ));
    // One listener per subject the router needs, dropped (unsubscribed) when it needs it no more.
    let mut listening: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
    let mut registered: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
    let mut events_sent = 0u64;
    while let Some(out) = link.recv().await {
        match out {
            ClusterOut::Event(event) => {
                let subject = topic_subject(&prefix, &event.realm, &event.topic);
                events_sent += 1;
                if let Err(e) = backplane
                    .send(&subject, numbered(events_sent, &event))
                    .await
                {
                    tracing::debug!(subject, "cluster: a WAMP event was not sent: {e}");
                }
                if event.retain {
                    if let Err(full) = to_store.try_send(event) {
                        let event = full.into_inner();
                        tracing::debug!(
                            subject,
                            "cluster: a retained WAMP event was not stored: too many waiting"
                        );
                        wamp.retained_stored(&event.realm, &event.topic, event.publication, None);
                    }
                }
            }
            ClusterOut::Interest {
                subject, on: true, ..
            } => {
                let listener = match backplane.listen(&subject).await {
                    Ok(listener) => listener,
                    Err(e) => {
                        tracing::warn!(subject, "cluster: cannot listen for WAMP events: {e}");
                        continue;
                    }
                };
                let arrived = arrived.clone();
                let dropped = dropped.clone();
                let task = tokio::spawn(async move {
                    let mut listener = listener;
                    while let Some(sockeye_cluster::Received { payload, .. }) =
                        listener.messages.recv().await
                    {
                        // Full: dropped and counted, as NATS drops for a slow consumer (at
                        // most once).
                        if let Err(mpsc::error::TrySendError::Full(_)) = arrived.try_send(payload) {
                            dropped.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
                if let Some(old) = listening.insert(subject, task) {
                    old.abort();
                }
            }
            ClusterOut::Interest {
                subject, on: false, ..
            } => {
                if let Some(task) = listening.remove(&subject) {
                    task.abort();
                }
            }
            ClusterOut::Registered {
                subject, on: true, ..
            } => {
                let task =
                    tokio::spawn(take_calls(wamp.clone(), backplane.clone(), subject.clone()));
                if let Some(old) = registered.insert(subject, task) {
                    old.abort();
                }
            }
            ClusterOut::Registered {
                subject, on: false, ..
            } => {
                if let Some(task) = registered.remove(&subject) {
                    task.abort();
                }
            }
            ClusterOut::Call(call) => {
                tokio::spawn(place_call(
                    wamp.clone(),
                    backplane.clone(),
                    prefix.clone(),
                    call,
                ));
            }
            ClusterOut::Answer(answer) => {
                let subject = subjects.node(answer.key.origin);
                let bytes = RpcMessage::Answer(*answer).encode();
                if let Err(e) = backplane.send(&subject, bytes.into()).await {
                    tracing::debug!(subject, "cluster: a WAMP answer was not sent: {e}");
                }
            }
            ClusterOut::Cancel(cancel) => {
                let subject = match cancel.node {
                    Some(node) => subjects.node(node),
                    // Not taken yet, as far as this node knows: every node hears it, and the
                    // ones without the call ignore it.
                    None => subjects.all_nodes(),
                };
                let bytes = RpcMessage::Cancel(*cancel).encode();
                if let Err(e) = backplane.send(&subject, bytes.into()).await {
                    tracing::debug!(subject, "cluster: a WAMP cancel was not sent: {e}");
                }
            }
            other => tracing::warn!("cluster: a router output this node does not carry: {other:?}"),
        }
    }
}

/// Stores each retained publication of this node as its topic's latest, and tells the router
/// where it was put or that it was not.
async fn store_retained(
    wamp: WampRouter,
    backplane: Arc<dyn Backplane>,
    prefix: String,
    mut storing: tokio::sync::mpsc::Receiver<Box<ClusterEvent>>,
) {
    while let Some(event) = storing.recv().await {
        let key = retained_key(&prefix, &event.realm, &event.topic);
        let revision = match backplane.put_latest(&key, event.encode().into()).await {
            Ok(revision) => Some(revision),
            Err(e) => {
                tracing::debug!(key, "cluster: a retained WAMP event was not stored: {e}");
                None
            }
        };
        wamp.retained_stored(&event.realm, &event.topic, event.publication, revision);
    }
}

/// Gives the router every retained event the cluster keeps, then each one stored later; sets
/// `loaded` once those kept at the start are in.
async fn follow_retained(
    wamp: WampRouter,
    backplane: Arc<dyn Backplane>,
    prefix: String,
    loaded: Arc<AtomicBool>,
) {
    let mut feed = loop {
        match backplane.latest(&prefix).await {
            Ok(feed) => break feed,
            Err(e) => {
                tracing::debug!("cluster: the retained WAMP events: {e}");
                tokio::time::sleep(RETRY).await;
            }
        }
    };
    while let Some(kept) = feed.values.recv().await {
        match kept {
            Kept::Value {
                key,
                revision,
                payload,
            } => match ClusterEvent::decode(&payload) {
                Ok(event) => wamp.offer_retained(event, revision),
                Err(e) => tracing::debug!(key, "cluster: not a retained WAMP event: {e}"),
            },
            Kept::Loaded => {
                tracing::info!("cluster: the retained WAMP events are loaded");
                loaded.store(true, Ordering::Relaxed);
            }
        }
    }
}

/// Asks the nodes that registered the procedure to take `call`: one of them answers at once,
/// and its results follow on this node's subject.
async fn place_call(
    wamp: WampRouter,
    backplane: Arc<dyn Backplane>,
    prefix: String,
    call: Box<RemoteCall>,
) {
    let subject = procedure_subject(&prefix, &call.realm, &call.procedure);
    let key = call.key;
    let taken = backplane
        .request(&subject, call.encode().into(), TAKE_TIMEOUT)
        .await;
    match taken {
        // The callee's node names itself: from now on the call is its, and if it goes silent
        // the call fails (`node_gone`), even before its own "accepted" comes.
        Ok(node) => {
            if let Ok(node) = <[u8; 8]>::try_from(&node[..]) {
                wamp.remote_answer(RemoteAnswer {
                    key,
                    node: u64::from_be_bytes(node),
                    answer: Answer::Accepted,
                });
            }
        }
        Err(sockeye_cluster::Error::NoResponders(_)) => {
            wamp.remote_call_failed(key, error_uri::NO_SUCH_PROCEDURE)
        }
        Err(e) => {
            tracing::info!(subject, "cluster: a call was not taken: {e}");
            wamp.remote_call_failed(key, error_uri::CANCELED);
        }
    }
}

/// Takes the calls for one registered procedure: says so at once, then invokes the callee.
async fn take_calls(wamp: WampRouter, backplane: Arc<dyn Backplane>, subject: String) {
    let mut listener = match backplane.listen_in_group(&subject, CALLEES).await {
        Ok(listener) => listener,
        Err(e) => {
            tracing::warn!(subject, "cluster: cannot take calls: {e}");
            return;
        }
    };
    while let Some(request) = listener.messages.recv().await {
        let call = match RemoteCall::decode(&request.payload) {
            Ok(call) => call,
            Err(e) => {
                tracing::debug!(subject, "cluster: not a WAMP call: {e}");
                continue;
            }
        };
        if let Some(reply) = &request.reply {
            let own = wamp.origin().to_be_bytes().to_vec();
            let _ = backplane.send(reply, own.into()).await;
        }
        wamp.invoke_remote(call);
    }
}

/// Answers and cancels addressed to this node (or to all).
async fn take_answers_and_cancels(
    wamp: WampRouter,
    backplane: Arc<dyn Backplane>,
    subject: String,
) {
    let mut listener = match backplane.listen(&subject).await {
        Ok(listener) => listener,
        Err(e) => {
            tracing::warn!(subject, "cluster: cannot take WAMP answers: {e}");
            return;
        }
    };
    while let Some(message) = listener.messages.recv().await {
        match RpcMessage::decode(&message.payload) {
            Ok(RpcMessage::Answer(answer)) => wamp.remote_answer(answer),
            Ok(RpcMessage::Cancel(cancel)) => wamp.cancel_remote(cancel),
            Ok(RpcMessage::NodeGone(gone)) => wamp.node_gone(gone.node),
            Ok(RpcMessage::Call(_)) => {}
            Err(e) => tracing::debug!(subject, "cluster: not a WAMP message: {e}"),
        }
    }
}

/// Says every [`ALIVE_EVERY`] that this node's router is alive, and tells the router of the
/// nodes that went silent.
async fn keep_alive(wamp: WampRouter, backplane: Arc<dyn Backplane>, subjects: Arc<Subjects>) {
    let own = wamp.origin();
    let mut heard: HashMap<u64, Instant> = HashMap::new();
    let mut listener = None;
    let mut every = tokio::time::interval(ALIVE_EVERY / 2);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_said = None::<Instant>;
    loop {
        if listener.is_none() {
            listener = backplane.listen(&subjects.alive()).await.ok();
        }
        tokio::select! {
            _ = every.tick() => {
                if last_said.is_none_or(|at| at.elapsed() >= ALIVE_EVERY) {
                    last_said = Some(Instant::now());
                    let _ = backplane
                        .send(&subjects.alive(), own.to_be_bytes().to_vec().into())
                        .await;
                }
                let now = Instant::now();
                heard.retain(|&node, at| {
                    let alive = now.duration_since(*at) < ALIVE_SILENCE;
                    if !alive {
                        tracing::info!(node, "cluster: a WAMP router went silent");
                        wamp.node_gone(node);
                    }
                    alive
                });
            }
            Some(message) = async { listener.as_mut()?.messages.recv().await }, if listener.is_some() => {
                if let Ok(bytes) = <[u8; 8]>::try_from(&message.payload[..]) {
                    let node = u64::from_be_bytes(bytes);
                    if node != own {
                        heard.insert(node, Instant::now());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{numbered, unnumbered, InOrder};

    #[test]
    fn each_node_s_events_are_delivered_once_and_in_the_order_it_sent_them() {
        let mut in_order = InOrder::default();
        assert!(in_order.admit(1, 1));
        assert!(!in_order.admit(1, 1), "a second copy");
        assert!(in_order.admit(2, 1), "another node counts on its own");
        assert!(in_order.admit(1, 3));
        assert!(!in_order.admit(1, 2), "a copy late after a later event");
        assert!(in_order.admit(1, 4));
    }

    #[test]
    fn an_event_travels_with_its_number() {
        let event = sockeye_wamp::ClusterEvent {
            origin: 7,
            realm: "realm1".into(),
            topic: "com.tick".into(),
            publication: 99,
            publisher: None,
            passthru: Default::default(),
            audience: Default::default(),
            retain: false,
            payload: sockeye_wamp::Payload::Args(vec![1.into()]),
        };
        let (number, back) = unnumbered(&numbered(42, &event)).unwrap();
        assert_eq!((number, back), (42, event));
        assert!(unnumbered(&[0; 7]).is_err(), "shorter than a number");
        assert!(unnumbered(&[0; 9]).is_err(), "a number and no event");
    }
}
