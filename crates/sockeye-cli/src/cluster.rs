//! The WAMP router's part in the cluster: its events out to the backplane, and the other
//! nodes' events in, on the subjects its subscriptions need. The router decides everything
//! (sans-I/O, `sockeye_wamp_proto::cluster`); this only moves bytes.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use sockeye_cluster::Backplane;
use sockeye_wamp::proto::cluster::topic_subject;
use sockeye_wamp::ClusterEvent;
use sockeye_wamp::{ClusterOut, WampRouter};

/// Router events queued for the backplane; past that they are dropped and counted (events are
/// at-most-once).
const EVENT_QUEUE: usize = 4096;

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
    // One listener per subject the router needs, dropped (unsubscribed) when it needs it no more.
    let mut listening: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
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
                    while let Some((_, payload)) = listener.messages.recv().await {
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
            other => tracing::debug!("cluster: not carried yet: {other:?}"),
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
