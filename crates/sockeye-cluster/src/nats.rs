//! The NATS backplane: core NATS carries subjects (presence, WAMP events), JetStream keeps each
//! room's log in a stream of its own, so that a room's offsets are its stream's sequence
//! numbers (counting up from 1 without gaps) and its epoch is when the stream was created.
//! The latest values ([`Backplane::put_latest`]) are one stream, [`LATEST_STREAM`], keeping one
//! message per key's subject: a key's revision is its message's sequence number.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::backplane::{
    check_key, AbortOnDrop, Backplane, BoxFuture, Entry, Error, Feed, Kept, Latest, Listener, Log,
    Received,
};
use crate::room::{self, LogState};

/// How long a room's messages are kept at most, besides the count limit.
const MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// Entries queued from a room's stream to the node.
const FEED_QUEUE: usize = 1024;
/// Messages queued from a subject to the node; past that they are dropped (at most once).
const LISTEN_QUEUE: usize = 65_536;
/// How long [`Backplane::follow`] waits for the stream's consumer before it returns.
const FOLLOW_WAIT: Duration = Duration::from_secs(5);
/// How long the node waits before it follows a room's stream again after the stream failed.
const REFOLLOW: Duration = Duration::from_millis(500);
/// The longest pull of a room's (or the latest values') consumer. The client asks for idle
/// heartbeats at half of it and starts the consumer again after missing two: in a NATS
/// cluster, the server holding a stream may restart while this node's own server stays up,
/// and the consumer is gone with it. With async-nats's default (30 s) the feed stalled for
/// 25 s or more; with this, for about 10 s.
const PULL_EXPIRES: Duration = Duration::from_secs(4);

/// The stream of the latest values, on subjects `sockeye.latest.<key>`.
pub const LATEST_STREAM: &str = "SOCKEYE_LATEST";
/// Keys the latest values keep at most; past that the key put longest ago is forgotten.
pub const LATEST_KEYS: i64 = 100_000;
/// Bytes the latest values keep at most, the same way.
pub const LATEST_BYTES: i64 = 1 << 30;
/// Values queued from the latest values' stream to the node.
const LATEST_QUEUE: usize = 1024;

fn latest_subject(key: &str) -> String {
    format!("{}.latest.{key}", crate::PREFIX)
}

/// A link to a NATS server (or cluster) with JetStream on.
pub struct Nats {
    client: async_nats::Client,
    js: jetstream::Context,
    history: usize,
    url: String,
    /// Rooms whose stream this node has made sure of.
    streams: Mutex<HashSet<String>>,
    /// Whether this node has made sure of [`LATEST_STREAM`].
    latest_stream: AtomicBool,
    /// Counts the connections made: a room's feed starts its consumer again on each, rather
    /// than wait for the old one's heartbeats to be missed.
    connections: tokio::sync::watch::Receiver<u64>,
    /// See [`Backplane::dropped`]: slow-consumer events and full listener queues.
    dropped: Arc<AtomicU64>,
}

impl Nats {
    /// Connects as `node` and keeps `history` messages per room. Returns at once, even with the
    /// server down: the client connects in the background and reconnects for as long as the
    /// node runs, and [`Backplane::is_connected`] says how it stands.
    pub async fn connect(url: &str, node: &str, history: usize) -> Result<Nats, Error> {
        let (connected, connections) = tokio::sync::watch::channel(0u64);
        let dropped = Arc::new(AtomicU64::new(0));
        let slow = dropped.clone();
        let client = async_nats::ConnectOptions::new()
            .name(format!("sockeye {node}"))
            .retry_on_initial_connect()
            .max_reconnects(None)
            .event_callback(move |event| {
                match event {
                    async_nats::Event::Connected => connected.send_modify(|n| *n += 1),
                    async_nats::Event::SlowConsumer(_) => {
                        slow.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {}
                }
                async move {
                    match event {
                        async_nats::Event::Connected => {
                            tracing::info!("cluster: connected to NATS")
                        }
                        async_nats::Event::Disconnected => {
                            tracing::warn!("cluster: disconnected from NATS")
                        }
                        async_nats::Event::SlowConsumer(sid) => tracing::warn!(
                            "cluster: NATS dropped messages of subscription {sid}, which fell behind"
                        ),
                        other => tracing::info!("cluster: NATS {other}"),
                    }
                }
            })
            .connect(url)
            .await
            .map_err(|e| Error::Unreachable(e.to_string()))?;
        let js = jetstream::new(client.clone());
        Ok(Nats {
            client,
            js,
            history,
            url: url.to_owned(),
            streams: Mutex::new(HashSet::new()),
            latest_stream: AtomicBool::new(false),
            connections,
            dropped,
        })
    }

    async fn stream(&self, room: &str) -> Result<stream::Stream, Error> {
        let stream = self
            .js
            .get_or_create_stream(stream::Config {
                name: room::stream_name(room),
                subjects: vec![room::log_subject(room)],
                max_messages: i64::try_from(self.history).unwrap_or(i64::MAX),
                max_age: MAX_AGE,
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(unreachable_or_refused)?;
        self.streams
            .lock()
            .expect("no panics under this lock")
            .insert(room.to_owned());
        Ok(stream)
    }

    async fn ensure_latest_stream(&self) -> Result<(), Error> {
        if self.latest_stream.load(Ordering::Relaxed) {
            return Ok(());
        }
        self.js
            .get_or_create_stream(stream::Config {
                name: LATEST_STREAM.to_owned(),
                subjects: vec![latest_subject(">")],
                max_messages_per_subject: 1,
                max_messages: LATEST_KEYS,
                max_bytes: LATEST_BYTES,
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(unreachable_or_refused)?;
        self.latest_stream.store(true, Ordering::Relaxed);
        Ok(())
    }

    async fn ensure_stream(&self, room: &str) -> Result<(), Error> {
        let known = self
            .streams
            .lock()
            .expect("no panics under this lock")
            .contains(room);
        if !known {
            self.stream(room).await?;
        }
        Ok(())
    }
}

fn unreachable_or_refused(e: impl std::fmt::Display) -> Error {
    let text = e.to_string();
    if text.contains("timed out") || text.contains("no responders") || text.contains("connection") {
        Error::Unreachable(text)
    } else {
        Error::Refused(text)
    }
}

/// Follows `room`'s stream after offset `after`, sending each entry once
/// and in order, and starting again after any failure from after the last entry sent.
async fn follow_stream(
    js: jetstream::Context,
    room: String,
    after: u64,
    tx: mpsc::Sender<Entry>,
    mut connections: tokio::sync::watch::Receiver<u64>,
    ready: tokio::sync::oneshot::Sender<()>,
) {
    let mut ready = Some(ready);
    let mut last = after;
    loop {
        connections.mark_unchanged();
        let deliver_policy = consumer::DeliverPolicy::ByStartSequence {
            start_sequence: last + 1,
        };
        let config = consumer::pull::OrderedConfig {
            filter_subject: room::log_subject(&room),
            deliver_policy,
            max_expires: PULL_EXPIRES,
            ..Default::default()
        };
        let messages = async {
            let stream = js
                .get_stream(room::stream_name(&room))
                .await
                .map_err(|e| e.to_string())?;
            let consumer = stream
                .create_consumer(config)
                .await
                .map_err(|e| e.to_string())?;
            consumer.messages().await.map_err(|e| e.to_string())
        }
        .await;
        let mut messages = match messages {
            Ok(messages) => {
                if let Some(ready) = ready.take() {
                    let _ = ready.send(());
                }
                messages
            }
            Err(e) => {
                tracing::debug!(room, "cluster: following the room's log: {e}");
                tokio::time::sleep(REFOLLOW).await;
                continue;
            }
        };
        loop {
            let message = tokio::select! {
                message = messages.next() => message,
                // A new connection: the consumer may be gone with the old server.
                _ = connections.changed() => break,
            };
            let message = match message {
                None => break,
                Some(Ok(message)) => message,
                Some(Err(e)) => {
                    tracing::debug!(room, "cluster: the room's log: {e}");
                    break;
                }
            };
            let Ok(info) = message.info() else { continue };
            let offset = info.stream_sequence;
            // An ordered consumer never repeats itself; a restarted one must not either.
            if offset <= last {
                continue;
            }
            last = offset;
            let entry = Entry {
                offset,
                payload: message.payload.clone(),
            };
            if tx.send(entry).await.is_err() {
                return;
            }
        }
        tokio::time::sleep(REFOLLOW).await;
    }
}

/// Follows the latest values under `prefix`: the last message of each key's subject, then
/// every later one, starting again after any failure from after the last value sent (so that
/// nothing is given twice, and a key put meanwhile gives its newest value).
async fn follow_latest(
    js: jetstream::Context,
    prefix: String,
    tx: mpsc::Sender<Kept>,
    mut connections: tokio::sync::watch::Receiver<u64>,
) {
    let mut last = 0u64;
    let mut loaded = false;
    loop {
        connections.mark_unchanged();
        let deliver_policy = if last == 0 {
            consumer::DeliverPolicy::LastPerSubject
        } else {
            consumer::DeliverPolicy::ByStartSequence {
                start_sequence: last + 1,
            }
        };
        let config = consumer::pull::OrderedConfig {
            filter_subject: latest_subject(&format!("{prefix}.>")),
            deliver_policy,
            max_expires: PULL_EXPIRES,
            ..Default::default()
        };
        let messages = async {
            let stream = js
                .get_stream(LATEST_STREAM)
                .await
                .map_err(|e| e.to_string())?;
            let consumer = stream
                .create_consumer(config)
                .await
                .map_err(|e| e.to_string())?;
            let pending = consumer.cached_info().num_pending;
            Ok::<_, String>((
                pending,
                consumer.messages().await.map_err(|e| e.to_string())?,
            ))
        }
        .await;
        let mut messages = match messages {
            Ok((pending, messages)) => {
                if pending == 0 && !loaded {
                    loaded = true;
                    if tx.send(Kept::Loaded).await.is_err() {
                        return;
                    }
                }
                messages
            }
            Err(e) => {
                tracing::debug!(prefix, "cluster: following the latest values: {e}");
                tokio::time::sleep(REFOLLOW).await;
                continue;
            }
        };
        loop {
            let message = tokio::select! {
                message = messages.next() => message,
                _ = connections.changed() => break,
            };
            let message = match message {
                None => break,
                Some(Ok(message)) => message,
                Some(Err(e)) => {
                    tracing::debug!(prefix, "cluster: the latest values: {e}");
                    break;
                }
            };
            let Ok(info) = message.info() else { continue };
            let (revision, pending) = (info.stream_sequence, info.pending);
            if revision <= last {
                continue;
            }
            last = revision;
            let key = message
                .subject
                .strip_prefix(&latest_subject(""))
                .unwrap_or_default()
                .to_owned();
            let value = Kept::Value {
                key,
                revision,
                payload: message.payload.clone(),
            };
            if tx.send(value).await.is_err() {
                return;
            }
            if pending == 0 && !loaded {
                loaded = true;
                if tx.send(Kept::Loaded).await.is_err() {
                    return;
                }
            }
        }
        tokio::time::sleep(REFOLLOW).await;
    }
}

/// A subscriber's messages, through a queue of [`LISTEN_QUEUE`]: past that they are dropped.
fn listener(mut subscriber: async_nats::Subscriber, dropped: Arc<AtomicU64>) -> Listener {
    let (tx, rx) = mpsc::channel(LISTEN_QUEUE);
    let task = tokio::spawn(async move {
        while let Some(message) = subscriber.next().await {
            if tx.is_closed() {
                return;
            }
            let received = Received {
                subject: message.subject.to_string(),
                payload: message.payload,
                reply: message.reply.map(|r| r.to_string()),
            };
            if tx.try_send(received).is_err() {
                dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    Listener::new(rx, Some(AbortOnDrop(task)))
}

impl Backplane for Nats {
    fn append<'a>(&'a self, room: &'a str, payload: Bytes) -> BoxFuture<'a, Result<u64, Error>> {
        Box::pin(async move {
            // While cut off, async-nats would buffer the message and send it on reconnecting,
            // after this call has failed for want of an ack: the caller, told it failed, could
            // then see it delivered. Failing before anything is written keeps one answer true.
            if !self.is_connected() {
                return Err(Error::Unreachable(format!("not connected to {}", self.url)));
            }
            self.ensure_stream(room).await?;
            let sent = async {
                self.js
                    .publish(room::log_subject(room), payload)
                    .await
                    .map_err(unreachable_or_refused)?
                    .await
                    .map_err(unreachable_or_refused)
            };
            match sent.await {
                Ok(ack) => Ok(ack.sequence),
                Err(e) => {
                    // The stream may be gone (a server that lost its store): make sure of it
                    // again next time.
                    self.streams
                        .lock()
                        .expect("no panics under this lock")
                        .remove(room);
                    Err(e)
                }
            }
        })
    }

    fn follow<'a>(&'a self, room: &'a str, after: u64) -> BoxFuture<'a, Result<Feed, Error>> {
        Box::pin(async move {
            self.ensure_stream(room).await?;
            let (tx, rx) = mpsc::channel(FEED_QUEUE);
            let (ready, following) = tokio::sync::oneshot::channel();
            let task = tokio::spawn(follow_stream(
                self.js.clone(),
                room.to_owned(),
                after,
                tx,
                self.connections.clone(),
                ready,
            ));
            // Returns once the stream's consumer exists, so that the caller's next appends are
            // delivered from the log as it is, not from what the log still keeps of them by
            // the time a late consumer starts; after FOLLOW_WAIT it returns anyway, the feed
            // still starting in the background.
            let _ = tokio::time::timeout(FOLLOW_WAIT, following).await;
            Ok(Feed::new(rx, Some(AbortOnDrop(task))))
        })
    }

    fn read<'a>(&'a self, room: &'a str, after: u64) -> BoxFuture<'a, Result<Log, Error>> {
        Box::pin(async move {
            let mut stream = self.stream(room).await?;
            let info = stream.info().await.map_err(unreachable_or_refused)?;
            let last = info.state.last_sequence;
            let first = if info.state.messages == 0 {
                last + 1
            } else {
                info.state.first_sequence
            };
            let state = LogState {
                epoch: format!("{:x}", info.created.unix_timestamp_nanos()),
                first,
                last,
            };
            let mut entries = Vec::new();
            for offset in after.saturating_add(1).max(first)..=last {
                match stream.get_raw_message(offset).await {
                    Ok(message) => entries.push(Entry {
                        offset,
                        payload: message.payload,
                    }),
                    // Dropped by the limits since the state was read: the client is told it
                    // could not be recovered, as the first offset moved past `after`.
                    Err(e) => {
                        tracing::debug!(room, offset, "cluster: reading the room's log: {e}");
                        return Ok(Log {
                            state: LogState {
                                first: offset + 1,
                                ..state
                            },
                            entries: Vec::new(),
                        });
                    }
                }
            }
            Ok(Log { state, entries })
        })
    }

    fn put_latest<'a>(&'a self, key: &'a str, payload: Bytes) -> BoxFuture<'a, Result<u64, Error>> {
        Box::pin(async move {
            check_key(key)?;
            // Not buffered while cut off, as for `append`: one answer, and it is true.
            if !self.is_connected() {
                return Err(Error::Unreachable(format!("not connected to {}", self.url)));
            }
            self.ensure_latest_stream().await?;
            let sent = async {
                self.js
                    .publish(latest_subject(key), payload)
                    .await
                    .map_err(unreachable_or_refused)?
                    .await
                    .map_err(unreachable_or_refused)
            };
            match sent.await {
                Ok(ack) => Ok(ack.sequence),
                Err(e) => {
                    self.latest_stream.store(false, Ordering::Relaxed);
                    Err(e)
                }
            }
        })
    }

    fn latest<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Latest, Error>> {
        Box::pin(async move {
            check_key(prefix)?;
            self.ensure_latest_stream().await?;
            let (tx, rx) = mpsc::channel(LATEST_QUEUE);
            let task = tokio::spawn(follow_latest(
                self.js.clone(),
                prefix.to_owned(),
                tx,
                self.connections.clone(),
            ));
            Ok(Latest::new(rx, Some(AbortOnDrop(task))))
        })
    }

    fn send<'a>(&'a self, subject: &'a str, payload: Bytes) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            self.client
                .publish(subject.to_owned(), payload)
                .await
                .map_err(|e| Error::Unreachable(e.to_string()))
        })
    }

    fn listen<'a>(&'a self, subject: &'a str) -> BoxFuture<'a, Result<Listener, Error>> {
        Box::pin(async move {
            let subscriber = self
                .client
                .subscribe(subject.to_owned())
                .await
                .map_err(unreachable_or_refused)?;
            Ok(listener(subscriber, self.dropped.clone()))
        })
    }

    fn listen_in_group<'a>(
        &'a self,
        subject: &'a str,
        group: &'a str,
    ) -> BoxFuture<'a, Result<Listener, Error>> {
        Box::pin(async move {
            let subscriber = self
                .client
                .queue_subscribe(subject.to_owned(), group.to_owned())
                .await
                .map_err(unreachable_or_refused)?;
            Ok(listener(subscriber, self.dropped.clone()))
        })
    }

    fn request<'a>(
        &'a self,
        subject: &'a str,
        payload: Bytes,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Bytes, Error>> {
        Box::pin(async move {
            if !self.is_connected() {
                return Err(Error::Unreachable(format!("not connected to {}", self.url)));
            }
            let request = async_nats::Request::new()
                .payload(payload)
                .timeout(Some(timeout));
            match self.client.send_request(subject.to_owned(), request).await {
                Ok(answer) => Ok(answer.payload),
                Err(e) => Err(match e.kind() {
                    async_nats::RequestErrorKind::NoResponders => {
                        Error::NoResponders(subject.to_owned())
                    }
                    async_nats::RequestErrorKind::TimedOut => Error::TimedOut(subject.to_owned()),
                    _ => Error::Unreachable(e.to_string()),
                }),
            }
        })
    }

    fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    fn describe(&self) -> String {
        self.url.clone()
    }

    fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}
