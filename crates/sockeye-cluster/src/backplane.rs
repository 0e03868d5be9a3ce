//! The seam between a node and the others: one trait, an in-process implementation and a NATS
//! one ([`crate::Nats`]). A Redis backplane would be a third implementation of the same trait.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::room::LogState;

/// A boxed future, so that [`Backplane`] can be a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a backplane reports when it cannot do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The cluster could not be reached, or did not answer in time.
    #[error("the cluster is unreachable: {0}")]
    Unreachable(String),
    /// The cluster answered with an error.
    #[error("the cluster refused: {0}")]
    Refused(String),
    /// A request found no listener on its subject.
    #[error("no node listens on {0}")]
    NoResponders(String),
    /// A request's answer did not come in time.
    #[error("no answer on {0} in time")]
    TimedOut(String),
}

/// One message of a room's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its offset: 1 for the room's first message, counting up without gaps.
    pub offset: u64,
    /// What was appended.
    pub payload: Bytes,
}

/// Part of a room's log, and where the log stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Log {
    /// The log's epoch, first kept offset and last offset.
    pub state: LogState,
    /// The entries asked for, in order.
    pub entries: Vec<Entry>,
}

/// A room's log as it grows: every entry after the offset [`Backplane::follow`] was given, by
/// any node, in order and once.
#[derive(Debug)]
pub struct Feed {
    /// The entries. The channel closes only when the backplane is dropped.
    pub entries: mpsc::Receiver<Entry>,
    _task: Option<AbortOnDrop>,
}

/// The messages on a subject (wildcards allowed) from when [`Backplane::listen`] returned;
/// dropping it stops listening.
#[derive(Debug)]
pub struct Listener {
    /// The messages, in the order each sender sent them.
    pub messages: mpsc::Receiver<Received>,
    _task: Option<AbortOnDrop>,
}

/// A message a [`Listener`] received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The subject it was sent on.
    pub subject: String,
    /// What was sent.
    pub payload: Bytes,
    /// Where the answer goes, if it is a [`Backplane::request`]: [`Backplane::send`] it there.
    pub reply: Option<String>,
}

/// What a [`Latest`] feed yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kept {
    /// A key's value, as [`Backplane::put_latest`] last set it.
    Value {
        /// The key.
        key: String,
        /// When it was put: higher for every later put of any key, so two values of one key
        /// can be told apart in age even when they arrive out of order.
        revision: u64,
        /// What was put.
        payload: Bytes,
    },
    /// Every key that had a value when the feed started has been given: once per feed.
    Loaded,
}

/// The values of the keys under a prefix: each key's current value first (in the order they
/// were put), then [`Kept::Loaded`], then every later put as it happens.
#[derive(Debug)]
pub struct Latest {
    /// The values. The channel closes only when the backplane is dropped.
    pub values: mpsc::Receiver<Kept>,
    _task: Option<AbortOnDrop>,
}

impl Latest {
    pub(crate) fn new(values: mpsc::Receiver<Kept>, task: Option<AbortOnDrop>) -> Latest {
        Latest {
            values,
            _task: task,
        }
    }
}

/// Whether `key` can be a key of [`Backplane::put_latest`]: tokens separated by `.`, each a
/// [`crate::subject::is_literal_token`].
pub(crate) fn check_key(key: &str) -> Result<(), Error> {
    if key.split('.').all(crate::subject::is_literal_token) {
        Ok(())
    } else {
        Err(Error::Refused(format!("{key:?} is not a key")))
    }
}

/// A task that ends when its owner is dropped.
#[derive(Debug)]
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Feed {
    pub(crate) fn new(entries: mpsc::Receiver<Entry>, task: Option<AbortOnDrop>) -> Feed {
        Feed {
            entries,
            _task: task,
        }
    }
}

impl Listener {
    pub(crate) fn new(messages: mpsc::Receiver<Received>, task: Option<AbortOnDrop>) -> Listener {
        Listener {
            messages,
            _task: task,
        }
    }
}

/// How a node reaches the others.
///
/// Two kinds of traffic cross it:
/// - **room logs**, for chat: [`append`](Backplane::append) gives a message the room's next
///   offset and keeps the last messages; every node that [`follow`](Backplane::follow)s the
///   room gets each entry once, in offset order; [`read`](Backplane::read) gives what a
///   reconnecting client missed;
/// - **latest values**, for WAMP's retained events: [`put_latest`](Backplane::put_latest) sets a
///   key's value, kept (one per key) for nodes that start later; [`latest`](Backplane::latest)
///   gives every key's value under a prefix, then each later put;
/// - **subjects**, for presence and WAMP events: [`send`](Backplane::send) reaches every node
///   [`listen`](Backplane::listen)ing on a matching subject (this node too), at most once, in
///   the order one node sent them.
pub trait Backplane: Send + Sync + 'static {
    /// Appends `payload` to `room`'s log and returns its offset.
    fn append<'a>(&'a self, room: &'a str, payload: Bytes) -> BoxFuture<'a, Result<u64, Error>>;
    /// Every entry of `room`'s log after offset `after`, those appended later included.
    fn follow<'a>(&'a self, room: &'a str, after: u64) -> BoxFuture<'a, Result<Feed, Error>>;
    /// The entries of `room`'s log after offset `after` that are still kept, and the log's
    /// state. `after = u64::MAX` asks for the state alone.
    fn read<'a>(&'a self, room: &'a str, after: u64) -> BoxFuture<'a, Result<Log, Error>>;
    /// Sets the value of `key` (tokens separated by `.`, no wildcards or whitespace) to
    /// `payload`, replacing the one before, and returns its revision (see [`Kept::Value`]).
    /// The store is bounded: past its limits the keys put longest ago are forgotten.
    fn put_latest<'a>(&'a self, key: &'a str, payload: Bytes) -> BoxFuture<'a, Result<u64, Error>>;
    /// The values of every key under `prefix` (keys `prefix.…`): see [`Latest`].
    fn latest<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Latest, Error>>;
    /// Sends `payload` on `subject` to every listener, at most once.
    fn send<'a>(&'a self, subject: &'a str, payload: Bytes) -> BoxFuture<'a, Result<(), Error>>;
    /// Listens on `subject`, which may hold NATS wildcards.
    fn listen<'a>(&'a self, subject: &'a str) -> BoxFuture<'a, Result<Listener, Error>>;
    /// Listens on `subject` as one of the group `group`: each message reaches one listener of
    /// the group (any one), besides the listeners outside it.
    fn listen_in_group<'a>(
        &'a self,
        subject: &'a str,
        group: &'a str,
    ) -> BoxFuture<'a, Result<Listener, Error>>;
    /// Sends `payload` to one listener on `subject` and waits up to `timeout` for its answer.
    /// [`Error::NoResponders`] at once when no node listens.
    fn request<'a>(
        &'a self,
        subject: &'a str,
        payload: Bytes,
        timeout: std::time::Duration,
    ) -> BoxFuture<'a, Result<Bytes, Error>>;
    /// Whether the link to the other nodes is up now. Always true in process.
    fn is_connected(&self) -> bool;
    /// What [`is_connected`](Backplane::is_connected) is about: `in-process`, or the cluster's
    /// address.
    fn describe(&self) -> String;
    /// Messages lost for want of keeping up, so far: those dropped because a listener's or a
    /// log follower's queue was full, and on NATS the client's slow-consumer events (the
    /// server or the client dropped messages of a subscription that fell behind). Delivery is
    /// at most once, and a loss is counted, never silent.
    fn dropped(&self) -> u64;
}

/// How many rooms' logs [`InProcess`] keeps; past that, the log of the room appended to
/// longest ago that no one follows is dropped.
pub const IN_PROCESS_ROOMS: usize = 10_000;
/// How many keys' values [`InProcess`] keeps; past that, the key put longest ago is forgotten.
pub const IN_PROCESS_LATEST_KEYS: usize = 100_000;
/// Queued messages per listener or follower of [`InProcess`]; past that, messages to it are
/// dropped (a listener that does not keep up loses messages, as on NATS).
const IN_PROCESS_QUEUE: usize = 65_536;

/// The backplane of one process: logs in memory, subjects routed as NATS routes them. Clones
/// share one network, so several nodes in one process (tests) see each other.
#[derive(Clone)]
pub struct InProcess {
    net: Arc<Mutex<Net>>,
    history: usize,
}

struct Net {
    rooms: HashMap<String, RoomLog>,
    listeners: Vec<InProcessListener>,
    /// Requests waiting for their answer, by reply subject.
    inboxes: HashMap<String, tokio::sync::oneshot::Sender<Bytes>>,
    appends: u64,
    epochs: u64,
    requests: u64,
    /// Each key's value and its revision.
    latest: HashMap<String, (u64, Bytes)>,
    /// The last revision given.
    revision: u64,
    /// The feeds of [`Backplane::latest`]: their prefix, and where their values go.
    latest_feeds: Vec<(String, mpsc::Sender<Kept>)>,
    /// Messages dropped at full queues, on every node of this network.
    dropped: u64,
}

struct InProcessListener {
    pattern: String,
    group: Option<String>,
    tx: mpsc::Sender<Received>,
}

struct RoomLog {
    epoch: String,
    last: u64,
    kept: VecDeque<Entry>,
    followers: Vec<mpsc::Sender<Entry>>,
    touched: u64,
}

impl InProcess {
    /// A backplane that keeps the last `history` messages of each room.
    pub fn new(history: usize) -> InProcess {
        InProcess {
            net: Arc::new(Mutex::new(Net {
                rooms: HashMap::new(),
                listeners: Vec::new(),
                inboxes: HashMap::new(),
                appends: 0,
                epochs: 0,
                requests: 0,
                latest: HashMap::new(),
                revision: 0,
                latest_feeds: Vec::new(),
                dropped: 0,
            })),
            history,
        }
    }

    fn with_room<T>(&self, room: &str, f: impl FnOnce(&mut RoomLog, u64) -> T) -> T {
        let mut net = self.net.lock().expect("no panics under this lock");
        net.appends += 1;
        let touched = net.appends;
        if !net.rooms.contains_key(room) {
            if net.rooms.len() >= IN_PROCESS_ROOMS {
                let oldest = net
                    .rooms
                    .iter()
                    .filter(|(_, log)| log.followers.iter().all(|f| f.is_closed()))
                    .min_by_key(|(_, log)| log.touched)
                    .map(|(name, _)| name.clone());
                if let Some(oldest) = oldest {
                    net.rooms.remove(&oldest);
                }
            }
            net.epochs += 1;
            let epoch = new_epoch(net.epochs);
            net.rooms.insert(
                room.to_owned(),
                RoomLog {
                    epoch,
                    last: 0,
                    kept: VecDeque::new(),
                    followers: Vec::new(),
                    touched,
                },
            );
        }
        let log = net.rooms.get_mut(room).expect("inserted above");
        log.touched = touched;
        f(log, touched)
    }
}

/// Whether `key` is under `prefix`: `prefix.` and at least one more token.
fn under(prefix: &str, key: &str) -> bool {
    key.strip_prefix(prefix)
        .is_some_and(|rest| rest.len() > 1 && rest.starts_with('.'))
}

/// An epoch unlike any other this process or an earlier one made: the time, and a count.
fn new_epoch(count: u64) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{nanos:x}-{count}")
}

impl InProcess {
    fn listener(&self, subject: &str, group: Option<&str>) -> Listener {
        let (tx, rx) = mpsc::channel(IN_PROCESS_QUEUE);
        self.net
            .lock()
            .expect("no panics under this lock")
            .listeners
            .push(InProcessListener {
                pattern: subject.to_owned(),
                group: group.map(str::to_owned),
                tx,
            });
        Listener::new(rx, None)
    }
}

impl Net {
    /// Gives the message to every matching listener outside a group and to one listener of
    /// each group (the first that matches); whether any listener took it.
    fn deliver(&mut self, subject: &str, payload: &Bytes, reply: Option<&str>) -> bool {
        self.listeners.retain(|l| !l.tx.is_closed());
        let mut groups_served: Vec<&str> = Vec::new();
        let mut reached = false;
        let mut dropped = 0;
        for l in &self.listeners {
            if !crate::subject::matches(&l.pattern, subject) {
                continue;
            }
            if let Some(group) = &l.group {
                if groups_served.contains(&group.as_str()) {
                    continue;
                }
                groups_served.push(group);
            }
            let received = Received {
                subject: subject.to_owned(),
                payload: payload.clone(),
                reply: reply.map(str::to_owned),
            };
            match l.tx.try_send(received) {
                Ok(()) => reached = true,
                Err(mpsc::error::TrySendError::Full(_)) => dropped += 1,
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        self.dropped += dropped;
        reached
    }
}

impl Backplane for InProcess {
    fn append<'a>(&'a self, room: &'a str, payload: Bytes) -> BoxFuture<'a, Result<u64, Error>> {
        let history = self.history;
        let (offset, dropped) = self.with_room(room, |log, _| {
            log.last += 1;
            let entry = Entry {
                offset: log.last,
                payload,
            };
            log.followers.retain(|f| !f.is_closed());
            let dropped = log
                .followers
                .iter()
                .filter(|f| f.try_send(entry.clone()).is_err())
                .count();
            log.kept.push_back(entry);
            while log.kept.len() > history {
                log.kept.pop_front();
            }
            (log.last, dropped)
        });
        if dropped > 0 {
            self.net.lock().expect("no panics under this lock").dropped += dropped as u64;
        }
        Box::pin(async move { Ok(offset) })
    }

    fn follow<'a>(&'a self, room: &'a str, after: u64) -> BoxFuture<'a, Result<Feed, Error>> {
        let (tx, rx) = mpsc::channel(IN_PROCESS_QUEUE);
        self.with_room(room, |log, _| {
            for entry in log.kept.iter().filter(|e| e.offset > after) {
                let _ = tx.try_send(entry.clone());
            }
            log.followers.push(tx)
        });
        Box::pin(async move { Ok(Feed::new(rx, None)) })
    }

    fn read<'a>(&'a self, room: &'a str, after: u64) -> BoxFuture<'a, Result<Log, Error>> {
        let log = self.with_room(room, |log, _| Log {
            state: LogState {
                epoch: log.epoch.clone(),
                first: log.kept.front().map_or(log.last + 1, |e| e.offset),
                last: log.last,
            },
            entries: log
                .kept
                .iter()
                .filter(|e| e.offset > after)
                .cloned()
                .collect(),
        });
        Box::pin(async move { Ok(log) })
    }

    fn put_latest<'a>(&'a self, key: &'a str, payload: Bytes) -> BoxFuture<'a, Result<u64, Error>> {
        let put = check_key(key).map(|()| {
            let mut net = self.net.lock().expect("no panics under this lock");
            net.revision += 1;
            let revision = net.revision;
            net.latest
                .insert(key.to_owned(), (revision, payload.clone()));
            if net.latest.len() > IN_PROCESS_LATEST_KEYS {
                let oldest = net
                    .latest
                    .iter()
                    .min_by_key(|(_, (r, _))| *r)
                    .map(|(k, _)| k.clone())
                    .expect("over the limit means not empty");
                net.latest.remove(&oldest);
            }
            net.latest_feeds.retain(|(_, tx)| !tx.is_closed());
            for (prefix, tx) in &net.latest_feeds {
                if under(prefix, key) {
                    let _ = tx.try_send(Kept::Value {
                        key: key.to_owned(),
                        revision,
                        payload: payload.clone(),
                    });
                }
            }
            revision
        });
        Box::pin(async move { put })
    }

    fn latest<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Latest, Error>> {
        let mut net = self.net.lock().expect("no panics under this lock");
        let mut now: Vec<(&String, &(u64, Bytes))> = net
            .latest
            .iter()
            .filter(|(key, _)| under(prefix, key))
            .collect();
        now.sort_by_key(|(_, (revision, _))| *revision);
        // Room for every value kept now, so that none is dropped before the feed is read.
        let (tx, rx) = mpsc::channel(IN_PROCESS_QUEUE.max(now.len() + 1));
        for (key, (revision, payload)) in now {
            let _ = tx.try_send(Kept::Value {
                key: key.clone(),
                revision: *revision,
                payload: payload.clone(),
            });
        }
        let _ = tx.try_send(Kept::Loaded);
        net.latest_feeds.push((prefix.to_owned(), tx));
        Box::pin(async move { Ok(Latest::new(rx, None)) })
    }

    fn send<'a>(&'a self, subject: &'a str, payload: Bytes) -> BoxFuture<'a, Result<(), Error>> {
        let mut net = self.net.lock().expect("no panics under this lock");
        if let Some(inbox) = net.inboxes.remove(subject) {
            let _ = inbox.send(payload);
        } else {
            net.deliver(subject, &payload, None);
        }
        Box::pin(async { Ok(()) })
    }

    fn listen<'a>(&'a self, subject: &'a str) -> BoxFuture<'a, Result<Listener, Error>> {
        Box::pin(async move { Ok(self.listener(subject, None)) })
    }

    fn listen_in_group<'a>(
        &'a self,
        subject: &'a str,
        group: &'a str,
    ) -> BoxFuture<'a, Result<Listener, Error>> {
        Box::pin(async move { Ok(self.listener(subject, Some(group))) })
    }

    fn request<'a>(
        &'a self,
        subject: &'a str,
        payload: Bytes,
        timeout: std::time::Duration,
    ) -> BoxFuture<'a, Result<Bytes, Error>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let reached = {
            let mut net = self.net.lock().expect("no panics under this lock");
            net.requests += 1;
            let inbox = format!("_INBOX.in-process.{}", net.requests);
            let reached = net.deliver(subject, &payload, Some(&inbox));
            if reached {
                net.inboxes.insert(inbox, tx);
            }
            reached
        };
        Box::pin(async move {
            if !reached {
                return Err(Error::NoResponders(subject.to_owned()));
            }
            match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(answer)) => Ok(answer),
                _ => Err(Error::TimedOut(subject.to_owned())),
            }
        })
    }

    fn is_connected(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        "in-process".into()
    }

    /// In process, the count is the whole network's: every clone reports the same.
    fn dropped(&self) -> u64 {
        self.net.lock().expect("no panics under this lock").dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn what_full_queues_cannot_take_is_counted_as_dropped() {
        let node = InProcess::new(3);
        let listener = node.listen("s.>").await.unwrap();
        let feed = node.follow("r", 0).await.unwrap();
        for _ in 0..IN_PROCESS_QUEUE + 5 {
            node.send("s.x", "m".into()).await.unwrap();
        }
        assert_eq!(node.dropped(), 5, "past the listener's queue");
        for _ in 0..IN_PROCESS_QUEUE + 3 {
            node.append("r", "m".into()).await.unwrap();
        }
        assert_eq!(node.dropped(), 8, "past the follower's queue too");
        drop((listener, feed));
        node.send("s.x", "m".into()).await.unwrap();
        assert_eq!(node.dropped(), 8, "a listener gone is not a loss");
    }

    #[tokio::test]
    async fn offsets_count_up_per_room_and_followers_get_each_entry_once_in_order() {
        let node_a = InProcess::new(3);
        let node_b = node_a.clone();
        node_a.append("r", "m0".into()).await.unwrap();
        let mut feed = node_b.follow("r", 1).await.unwrap();
        for i in 2..=5u64 {
            let offset = node_a.append("r", format!("m{i}").into()).await.unwrap();
            assert_eq!(offset, i);
        }
        assert_eq!(node_a.append("other", "x".into()).await.unwrap(), 1);
        for i in 2..=5u64 {
            let e = feed.entries.recv().await.unwrap();
            assert_eq!((e.offset, &e.payload[..]), (i, format!("m{i}").as_bytes()));
        }
        assert!(feed.entries.try_recv().is_err(), "nothing twice");
    }

    #[tokio::test]
    async fn read_gives_the_kept_entries_after_an_offset_and_the_log_state() {
        let bp = InProcess::new(3);
        for i in 1..=5 {
            bp.append("r", format!("m{i}").into()).await.unwrap();
        }
        let log = bp.read("r", 3).await.unwrap();
        assert_eq!(log.state.first, 3);
        assert_eq!(log.state.last, 5);
        assert_eq!(
            log.entries.iter().map(|e| e.offset).collect::<Vec<_>>(),
            [4, 5]
        );
        let state = bp.read("r", u64::MAX).await.unwrap();
        assert!(state.entries.is_empty());
        let fresh = bp.read("new", 0).await.unwrap();
        assert_eq!((fresh.state.first, fresh.state.last), (1, 0));
        assert_ne!(fresh.state.epoch, log.state.epoch, "each log its own epoch");
    }

    #[tokio::test]
    async fn subjects_reach_matching_listeners_on_every_node() {
        let a = InProcess::new(10);
        let b = a.clone();
        let mut all = b.listen("sockeye.x.>").await.unwrap();
        let mut one = a.listen("sockeye.x.*").await.unwrap();
        let dropped = a.listen("sockeye.x.y").await.unwrap();
        drop(dropped);
        a.send("sockeye.x.y", "1".into()).await.unwrap();
        a.send("sockeye.x.y.z", "2".into()).await.unwrap();
        a.send("sockeye.other", "3".into()).await.unwrap();
        assert_eq!(all.messages.recv().await.unwrap().payload, "1");
        assert_eq!(all.messages.recv().await.unwrap().payload, "2");
        assert_eq!(one.messages.recv().await.unwrap().payload, "1");
        assert!(one.messages.try_recv().is_err());
        assert!(all.messages.try_recv().is_err());
    }

    #[tokio::test]
    async fn a_request_reaches_one_member_of_a_group_and_gets_its_answer() {
        let a = InProcess::new(10);
        let b = a.clone();
        let second = std::time::Duration::from_secs(1);
        let err = a.request("sockeye.rpc.x", "q".into(), second).await;
        assert!(matches!(err, Err(Error::NoResponders(_))), "{err:?}");
        let mut one = b.listen_in_group("sockeye.rpc.x", "g").await.unwrap();
        let mut other = b.listen_in_group("sockeye.rpc.x", "g").await.unwrap();
        let answering = tokio::spawn(async move {
            let q = one.messages.recv().await.unwrap();
            b.send(q.reply.as_deref().unwrap(), "answer".into())
                .await
                .unwrap();
        });
        assert_eq!(
            a.request("sockeye.rpc.x", "q".into(), second)
                .await
                .unwrap(),
            "answer"
        );
        answering.await.unwrap();
        assert!(
            other.messages.try_recv().is_err(),
            "one member of the group only"
        );
    }

    #[tokio::test]
    async fn latest_gives_each_keys_last_value_then_loaded_then_later_puts_under_its_prefix() {
        let a = InProcess::new(10);
        let b = a.clone();
        assert_eq!(a.put_latest("w.r.t1", "old".into()).await.unwrap(), 1);
        assert_eq!(a.put_latest("w.r.t2", "two".into()).await.unwrap(), 2);
        assert_eq!(a.put_latest("w.r.t1", "new".into()).await.unwrap(), 3);
        a.put_latest("other.t", "x".into()).await.unwrap();
        let mut feed = b.latest("w").await.unwrap();
        let value = |key: &str, revision, payload: &'static str| Kept::Value {
            key: key.into(),
            revision,
            payload: payload.into(),
        };
        assert_eq!(feed.values.recv().await, Some(value("w.r.t2", 2, "two")));
        assert_eq!(feed.values.recv().await, Some(value("w.r.t1", 3, "new")));
        assert_eq!(feed.values.recv().await, Some(Kept::Loaded));
        a.put_latest("wx.t", "not under w".into()).await.unwrap();
        a.put_latest("w.r.t2", "later".into()).await.unwrap();
        assert_eq!(feed.values.recv().await, Some(value("w.r.t2", 6, "later")));
        assert!(feed.values.try_recv().is_err(), "nothing else");
        for bad in ["", "w..t", "w.*", "w.>", "w.a b"] {
            assert!(
                matches!(a.put_latest(bad, "x".into()).await, Err(Error::Refused(_))),
                "{bad:?}"
            );
        }
    }

    #[tokio::test]
    async fn latest_keeps_a_bounded_number_of_keys_forgetting_the_one_put_longest_ago() {
        let bp = InProcess::new(1);
        for i in 0..=IN_PROCESS_LATEST_KEYS {
            bp.put_latest(&format!("k.{i}"), Bytes::new())
                .await
                .unwrap();
        }
        let mut feed = bp.latest("k").await.unwrap();
        let mut keys = Vec::new();
        while let Some(Kept::Value { key, .. }) = feed.values.recv().await {
            keys.push(key);
        }
        assert_eq!(keys.len(), IN_PROCESS_LATEST_KEYS);
        assert_eq!(keys[0], "k.1", "k.0 was put longest ago");
    }
}
