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
//! - liveness: each node says it is alive every [`ALIVE_EVERY`]; a node silent for
//!   [`ALIVE_SILENCE`] is gone, and the calls it served fail with `wamp.error.canceled`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use sockeye_cluster::Backplane;
use std::time::{Duration, Instant};

use sockeye_wamp::proto::cluster::rpc::{RemoteCall, RpcMessage};
use sockeye_wamp::proto::cluster::{procedure_subject, topic_subject};
use sockeye_wamp::proto::error_uri;
use sockeye_wamp::ClusterEvent;
use sockeye_wamp::{ClusterOut, WampRouter};

/// Router events queued for the backplane; past that they are dropped and counted (events are
/// at-most-once).
const EVENT_QUEUE: usize = 4096;

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

/// Publications remembered to drop the copies of one event: the node listens on one subject
/// per kind of subscription, so an event that several of its subscriptions match arrives once
/// per subject.
const RECENT: usize = 16_384;

/// The last [`RECENT`] events delivered, by origin and publication id.
#[derive(Default)]
struct Recent {
    seen: HashSet<(u64, u64)>,
    order: VecDeque<(u64, u64)>,
}

impl Recent {
    /// Whether `key` is new (and remembers it).
    fn first(&mut self, key: (u64, u64)) -> bool {
        if !self.seen.insert(key) {
            return false;
        }
        self.order.push_back(key);
        if self.order.len() > RECENT {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        true
    }
}

/// Carries `wamp`'s cluster traffic over `backplane` for as long as the node runs.
pub async fn run(wamp: WampRouter, backplane: Arc<dyn Backplane>, prefix: String) {
    let mut link = wamp.cluster_link(EVENT_QUEUE);
    // Every listener's events, to be delivered once each.
    let (arrived, mut arrivals) = tokio::sync::mpsc::channel::<bytes::Bytes>(EVENT_QUEUE);
    let delivering = wamp.clone();
    tokio::spawn(async move {
        let mut recent = Recent::default();
        while let Some(payload) = arrivals.recv().await {
            match ClusterEvent::decode(&payload) {
                Ok(event) if recent.first((event.origin, event.publication)) => {
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
    while let Some(out) = link.recv().await {
        match out {
            ClusterOut::Event(event) => {
                let subject = topic_subject(&prefix, &event.realm, &event.topic);
                if let Err(e) = backplane.send(&subject, event.encode().into()).await {
                    tracing::debug!(subject, "cluster: a WAMP event was not sent: {e}");
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
                let task = tokio::spawn(async move {
                    let mut listener = listener;
                    while let Some(sockeye_cluster::Received { payload, .. }) =
                        listener.messages.recv().await
                    {
                        // Full: dropped, as NATS drops for a slow consumer (at most once).
                        let _ = arrived.try_send(payload);
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
        Ok(_) => {}
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
            let _ = backplane.send(reply, bytes::Bytes::new()).await;
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
    use super::{Recent, RECENT};

    #[test]
    fn an_event_is_delivered_once_however_many_subjects_bring_it() {
        let mut recent = Recent::default();
        assert!(recent.first((1, 10)));
        assert!(!recent.first((1, 10)));
        assert!(recent.first((2, 10)), "another node's publication");
        for i in 0..RECENT as u64 {
            recent.first((3, i));
        }
        assert!(recent.first((1, 10)), "forgotten after RECENT others");
        assert_eq!(recent.order.len(), RECENT);
    }
}
