//! The chat rooms of `/chat` and `/chat/NAME`, on one node or many.
//!
//! A room's messages go through its log on the [`Backplane`]: a member's text is appended
//! there, and each node follows the logs of the rooms it has members in, framing every entry
//! once for all its members. So a message reaches every member on every node once, in log
//! order, which keeps each sender's order. Presence is a [`Presence`] table fed by the nodes'
//! reports.
//!
//! A node cut off from the cluster keeps its own members talking: their messages reach the
//! node's members only, without an offset, and are not in the log.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use sockeye::PreparedMessage;
use sockeye_cluster::presence::{self, Change, Member, Presence, Report};
use sockeye_cluster::room::{self, Posted, PresenceEvent, ServerMessage};
use sockeye_cluster::{Backplane, Entry};
use tokio::sync::{broadcast, watch};

/// Messages a member may fall behind its room before it is closed.
pub const BACKLOG: usize = 1024;
/// How long a room's first member waits for the room's log before it joins without it.
const LINK_WAIT: Duration = Duration::from_secs(2);
/// How long a room waits before it tries its log again.
const RELINK: Duration = Duration::from_secs(1);

/// What a room's members receive. A message is framed at most once for plain members (the text
/// as it was sent) and once for JSON members ([`room::SUBPROTOCOL`]), when the first member of
/// each kind needs it: a room with no JSON member never builds the JSON.
pub enum Delivery {
    /// A message sent to the room.
    Message(Framed),
    /// A presence change, for JSON members.
    Presence(PreparedMessage),
}

/// A message and its frames, made on first use.
pub struct Framed {
    pub offset: Option<u64>,
    posted: Posted,
    plain: OnceLock<PreparedMessage>,
    json: OnceLock<PreparedMessage>,
}

impl Framed {
    pub fn plain(&self) -> &PreparedMessage {
        self.plain
            .get_or_init(|| PreparedMessage::text(self.posted.text.clone()))
    }

    pub fn json(&self) -> &PreparedMessage {
        self.json.get_or_init(|| {
            let json = ServerMessage::Message {
                offset: self.offset,
                from: self.posted.from.clone(),
                name: self.posted.name.clone(),
                text: self.posted.text.clone(),
            };
            PreparedMessage::text(json.to_json())
        })
    }
}

/// The rooms of this node.
pub struct Hub {
    backplane: Arc<dyn Backplane>,
    node: String,
    /// When this node started (Unix seconds, hex), in every member id: a node restarted under
    /// the same name never hands out an id its previous run gave.
    boot: String,
    rooms: Mutex<HashMap<String, Arc<Room>>>,
    presence: Mutex<Presence>,
    members: AtomicU64,
    /// Messages whose append failed with the link up: their fate is unknown (stored or not),
    /// so they are not delivered locally, lest a member see one twice.
    pub unsent: AtomicU64,
}

pub struct Room {
    name: String,
    tx: broadcast::Sender<Arc<Delivery>>,
    log: Mutex<LogPosition>,
    /// Whether the room follows its log; members wait for it (see [`LINK_WAIT`]).
    linked: watch::Sender<bool>,
    /// The slowest member fell behind for longer than senders wait (see `serve`).
    pub overflowing: AtomicBool,
    local_members: Mutex<usize>,
    follower: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

#[derive(Default)]
struct LogPosition {
    epoch: String,
    /// The offset of the last entry delivered to the members.
    last: u64,
}

impl Room {
    /// The room's backlog, for senders that pace themselves to the slowest member.
    pub fn backlog(&self) -> usize {
        self.tx.len()
    }

    fn deliver(&self, entry: Entry) {
        let Some(posted) = Posted::decode(&entry.payload) else {
            tracing::warn!(
                room = self.name,
                offset = entry.offset,
                "chat: an entry no node wrote"
            );
            return;
        };
        let mut log = self.log.lock().expect("no panics under this lock");
        if entry.offset <= log.last {
            return;
        }
        log.last = entry.offset;
        let _ = self.tx.send(Arc::new(message(Some(entry.offset), posted)));
    }
}

fn message(offset: Option<u64>, posted: Posted) -> Delivery {
    Delivery::Message(Framed {
        offset,
        posted,
        plain: OnceLock::new(),
        json: OnceLock::new(),
    })
}

/// A member's place in a room; leaving is dropping it.
pub struct Membership {
    hub: Arc<Hub>,
    pub room: Arc<Room>,
    pub member: Member,
    /// `None` once the member stopped listening (it fell too far behind).
    pub deliveries: Option<broadcast::Receiver<Arc<Delivery>>>,
    /// The room's epoch and last offset when the member joined.
    pub epoch: String,
    pub offset: u64,
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.hub.leave(&self.room, &self.member);
    }
}

impl Hub {
    /// The hub of node `node`, and its presence tasks.
    pub fn start(backplane: Arc<dyn Backplane>, node: String) -> Arc<Hub> {
        let hub = Arc::new(Hub {
            backplane,
            node,
            boot: format!(
                "{:x}",
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs())
            ),
            rooms: Mutex::new(HashMap::new()),
            presence: Mutex::new(Presence::new()),
            members: AtomicU64::new(0),
            unsent: AtomicU64::new(0),
        });
        tokio::spawn(listen_to_presence(Arc::downgrade(&hub)));
        tokio::spawn(beat(Arc::downgrade(&hub)));
        hub
    }

    pub fn backplane(&self) -> &dyn Backplane {
        &*self.backplane
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    /// Joins `room` as a new member, subscribed to its deliveries from the offset it is given.
    pub async fn join(self: &Arc<Self>, room: &str, name: Option<String>) -> Membership {
        let room = self.room(room);
        let mut linked = room.linked.subscribe();
        let _ = tokio::time::timeout(LINK_WAIT, linked.wait_for(|l| *l)).await;
        let member = Member {
            id: format!(
                "{}-{}-{}",
                self.node,
                self.boot,
                self.members.fetch_add(1, Relaxed) + 1
            ),
            name,
        };
        let (deliveries, epoch, offset) = {
            let log = room.log.lock().expect("no panics under this lock");
            (Some(room.tx.subscribe()), log.epoch.clone(), log.last)
        };
        self.report(Report::Join {
            node: self.node.clone(),
            room: room.name.clone(),
            member: member.clone(),
        });
        Membership {
            hub: self.clone(),
            room,
            member,
            deliveries,
            epoch,
            offset,
        }
    }

    /// Who is in `room`, on every node.
    pub fn members(&self, room: &str) -> Vec<Member> {
        self.presence
            .lock()
            .expect("no panics under this lock")
            .members(room)
    }

    /// Sends `text` from `member` to the room: through the log while the cluster is reachable,
    /// to this node's members alone while it is not.
    pub async fn publish(&self, room: &Room, member: &Member, text: String) {
        let posted = Posted {
            from: member.id.clone(),
            name: member.name.clone(),
            text,
        };
        if !self.backplane.is_connected() {
            let _ = room.tx.send(Arc::new(message(None, posted)));
            return;
        }
        if let Err(e) = self.backplane.append(&room.name, posted.encode()).await {
            self.unsent.fetch_add(1, Relaxed);
            tracing::warn!(
                room = room.name,
                "chat: a message may not have been sent: {e}"
            );
        }
    }

    /// What a member that last saw `since` under `epoch` missed, if the log still has all of
    /// it: `(true, entries)`, or `(false, [])`.
    pub async fn recover(&self, room: &str, since: u64, epoch: &str) -> (bool, Vec<ServerMessage>) {
        let log = match self.backplane.read(room, since).await {
            Ok(log) => log,
            Err(e) => {
                tracing::info!(room, "chat: cannot recover: {e}");
                return (false, Vec::new());
            }
        };
        if !room::recovery(since, epoch, &log.state) {
            return (false, Vec::new());
        }
        let missed = log
            .entries
            .into_iter()
            .filter_map(|e| {
                let posted = Posted::decode(&e.payload)?;
                Some(ServerMessage::Message {
                    offset: Some(e.offset),
                    from: posted.from,
                    name: posted.name,
                    text: posted.text,
                })
            })
            .collect();
        (true, missed)
    }

    /// The room, made and following its log if this node had no member in it.
    fn room(self: &Arc<Self>, name: &str) -> Arc<Room> {
        let mut rooms = self.rooms.lock().expect("no panics under this lock");
        let room = rooms.entry(name.to_owned()).or_insert_with(|| {
            let room = Arc::new(Room {
                name: name.to_owned(),
                tx: broadcast::channel(BACKLOG).0,
                log: Mutex::default(),
                linked: watch::channel(false).0,
                overflowing: AtomicBool::new(false),
                local_members: Mutex::new(0),
                follower: Mutex::new(None),
            });
            let task = tokio::spawn(follow(self.backplane.clone(), Arc::downgrade(&room)));
            *room.follower.lock().expect("no panics under this lock") = Some(task);
            room
        });
        *room
            .local_members
            .lock()
            .expect("no panics under this lock") += 1;
        room.clone()
    }

    fn leave(&self, room: &Arc<Room>, member: &Member) {
        self.report(Report::Leave {
            node: self.node.clone(),
            room: room.name.clone(),
            member: member.clone(),
        });
        let mut rooms = self.rooms.lock().expect("no panics under this lock");
        let mut members = room
            .local_members
            .lock()
            .expect("no panics under this lock");
        *members -= 1;
        if *members == 0 {
            rooms.remove(&room.name);
            if let Some(task) = room.follower.lock().expect("no panics").take() {
                task.abort();
            }
        }
    }

    /// Applies this node's own report, tells the local rooms, and sends it to the others.
    fn report(&self, report: Report) {
        self.apply(report.clone());
        let backplane = self.backplane.clone();
        let subject = presence::subject(&self.node);
        tokio::spawn(async move {
            let _ = backplane.send(&subject, report.encode()).await;
        });
    }

    fn apply(&self, report: Report) {
        let changes = self
            .presence
            .lock()
            .expect("no panics under this lock")
            .apply(Instant::now(), report);
        self.tell(changes);
    }

    /// Tells each change to the JSON members of its room on this node.
    fn tell(&self, changes: Vec<Change>) {
        if changes.is_empty() {
            return;
        }
        let rooms = self.rooms.lock().expect("no panics under this lock");
        let presence = self.presence.lock().expect("no panics under this lock");
        for change in changes {
            let Some(room) = rooms.get(change.room()) else {
                continue;
            };
            let (event, member) = match change {
                Change::Joined { member, .. } => (PresenceEvent::Join, member),
                Change::Left { member, .. } => (PresenceEvent::Leave, member),
            };
            let json = ServerMessage::Presence {
                event,
                member,
                count: presence.count(&room.name),
            }
            .to_json();
            let _ = room
                .tx
                .send(Arc::new(Delivery::Presence(PreparedMessage::text(json))));
        }
    }
}

/// Follows a room's log for as long as the room exists, trying again while the cluster cannot
/// be reached.
async fn follow(backplane: Arc<dyn Backplane>, room: std::sync::Weak<Room>) {
    loop {
        let linked = async {
            let name = room.upgrade()?.name.clone();
            let state = backplane.read(&name, u64::MAX).await.ok()?.state;
            let feed = backplane.follow(&name, state.last).await.ok()?;
            Some((state, feed))
        };
        let Some((state, mut feed)) = linked.await else {
            if room.strong_count() == 0 {
                return;
            }
            tokio::time::sleep(RELINK).await;
            continue;
        };
        {
            let Some(room) = room.upgrade() else { return };
            let mut log = room.log.lock().expect("no panics under this lock");
            if log.epoch != state.epoch {
                // A new log (or the first): its offsets start again.
                log.epoch = state.epoch;
                log.last = state.last;
            }
            drop(log);
            room.linked.send_replace(true);
        }
        while let Some(entry) = feed.entries.recv().await {
            let Some(room) = room.upgrade() else { return };
            room.deliver(entry);
        }
    }
}

async fn listen_to_presence(hub: std::sync::Weak<Hub>) {
    let subject = presence::every_subject();
    let own = match hub.upgrade() {
        Some(hub) => presence::subject(&hub.node),
        None => return,
    };
    loop {
        let Some(listener) = (match hub.upgrade() {
            Some(hub) => hub.backplane.listen(&subject).await.ok(),
            None => return,
        }) else {
            tokio::time::sleep(RELINK).await;
            continue;
        };
        let mut listener = listener;
        while let Some(sockeye_cluster::Received {
            subject, payload, ..
        }) = listener.messages.recv().await
        {
            let Some(hub) = hub.upgrade() else { return };
            if subject == own {
                continue;
            }
            match Report::decode(&payload) {
                Some(report) if report.node() != hub.node => hub.apply(report),
                Some(_) => {}
                None => tracing::debug!("cluster: a presence report no node wrote"),
            }
        }
    }
}

/// Every [`presence::BEAT`]: tells the others every member of this node, and forgets the
/// nodes that went silent.
async fn beat(hub: std::sync::Weak<Hub>) {
    let mut every = tokio::time::interval(presence::BEAT);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(hub) = hub.upgrade() else { return };
        let (own, gone) = {
            let mut table = hub.presence.lock().expect("no panics under this lock");
            let own = table.beat(&hub.node);
            let gone = table.expire(Instant::now(), &hub.node);
            (own, gone)
        };
        hub.tell(gone);
        let _ = hub
            .backplane
            .send(&presence::subject(&hub.node), own.encode())
            .await;
    }
}
