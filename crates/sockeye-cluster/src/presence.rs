//! Who is in which room, across the nodes.
//!
//! Each node announces its own members: a [`Report::Join`] or [`Report::Leave`] as it happens,
//! and every [`BEAT`] a [`Report::Beat`] with all its members. Notices are at-most-once (core
//! NATS), so a lost one is repaired by the next beat: a join or a leave is seen on every node
//! within one beat, plus the network's delay. A node not heard from for [`SILENCE`] is taken
//! for dead and its members leave. With a beat every 2 s and 7 s of silence, a dead node's
//! members are gone within 8 s (the next expiry sweep after 7 s), well within the 30 s the
//! cluster promises.
//!
//! [`Presence`] is a plain table over these reports; it reads no clock (the caller passes
//! `now`) and sends nothing (it returns the [`Change`]s to tell the rooms).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How often a node reports all its members.
pub const BEAT: Duration = Duration::from_secs(2);
/// How long a node may be silent before its members are taken to have left.
pub const SILENCE: Duration = Duration::from_secs(7);

/// The subject `node`'s presence reports travel on: one per node, so that a node passes over
/// its own reports by their subject, without decoding them (a node name is one subject
/// token).
pub fn subject(node: &str) -> String {
    format!("{}.presence.{node}", crate::PREFIX)
}

/// The subjects of every node's presence reports.
pub fn every_subject() -> String {
    format!("{}.presence.*", crate::PREFIX)
}

/// A room member.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Member {
    /// Unique in the cluster: the node's name, when it started, and a number it counts up.
    pub id: String,
    /// The name the client gave, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// What a node says about its members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Report {
    /// `member` joined `room` on `node`.
    Join {
        /// The node's name.
        node: String,
        /// The room.
        room: String,
        /// Who joined.
        member: Member,
    },
    /// `member` left `room` on `node`.
    Leave {
        /// The node's name.
        node: String,
        /// The room.
        room: String,
        /// Who left.
        member: Member,
    },
    /// Every member `node` has, by room.
    Beat {
        /// The node's name.
        node: String,
        /// Its members, by room.
        rooms: BTreeMap<String, Vec<Member>>,
    },
}

impl Report {
    /// The node the report is from.
    pub fn node(&self) -> &str {
        match self {
            Report::Join { node, .. } | Report::Leave { node, .. } | Report::Beat { node, .. } => {
                node
            }
        }
    }

    /// The bytes on the wire.
    pub fn encode(&self) -> bytes::Bytes {
        serde_json::to_vec(self)
            .expect("a report is plain data")
            .into()
    }

    /// A report back from its bytes; `None` for bytes no node wrote.
    pub fn decode(bytes: &[u8]) -> Option<Report> {
        serde_json::from_slice(bytes).ok()
    }
}

/// A change a room's members are told of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `member` is now in `room`.
    Joined {
        /// The room.
        room: String,
        /// Who.
        member: Member,
    },
    /// `member` is no longer in `room`.
    Left {
        /// The room.
        room: String,
        /// Who.
        member: Member,
    },
}

impl Change {
    /// The room the change is in.
    pub fn room(&self) -> &str {
        match self {
            Change::Joined { room, .. } | Change::Left { room, .. } => room,
        }
    }
}

#[derive(Debug, Default)]
struct Node {
    heard: Option<Instant>,
    rooms: HashMap<String, BTreeMap<String, Member>>,
}

/// Who is in which room on which node.
#[derive(Debug, Default)]
pub struct Presence {
    nodes: HashMap<String, Node>,
}

impl Presence {
    /// An empty table.
    pub fn new() -> Presence {
        Presence::default()
    }

    /// Takes in a report heard at `now` (a node's own reports included) and returns what
    /// changed.
    pub fn apply(&mut self, now: Instant, report: Report) -> Vec<Change> {
        let node = self.nodes.entry(report.node().to_owned()).or_default();
        node.heard = Some(now);
        let mut changes = Vec::new();
        match report {
            Report::Join { room, member, .. } => {
                let members = node.rooms.entry(room.clone()).or_default();
                if members.insert(member.id.clone(), member.clone()).is_none() {
                    changes.push(Change::Joined { room, member });
                }
            }
            Report::Leave { room, member, .. } => {
                if let Some(members) = node.rooms.get_mut(&room) {
                    if members.remove(&member.id).is_some() {
                        changes.push(Change::Left {
                            room: room.clone(),
                            member,
                        });
                    }
                    if members.is_empty() {
                        node.rooms.remove(&room);
                    }
                }
            }
            Report::Beat { rooms, .. } => {
                let new: HashMap<String, BTreeMap<String, Member>> = rooms
                    .into_iter()
                    .filter(|(_, members)| !members.is_empty())
                    .map(|(room, members)| {
                        let members = members.into_iter().map(|m| (m.id.clone(), m)).collect();
                        (room, members)
                    })
                    .collect();
                changes = diff(&node.rooms, &new);
                node.rooms = new;
            }
        }
        changes
    }

    /// Forgets the nodes not heard from since `now - SILENCE` (but never `own`, the caller's
    /// node) and returns their members' leaves.
    pub fn expire(&mut self, now: Instant, own: &str) -> Vec<Change> {
        let silent: Vec<String> = self
            .nodes
            .iter()
            .filter(|(name, node)| {
                name.as_str() != own
                    && node
                        .heard
                        .is_none_or(|heard| now.saturating_duration_since(heard) >= SILENCE)
            })
            .map(|(name, _)| name.clone())
            .collect();
        let mut changes = Vec::new();
        for name in silent {
            if let Some(node) = self.nodes.remove(&name) {
                changes.extend(diff(&node.rooms, &HashMap::new()));
            }
        }
        changes
    }

    /// The members of `room` on every node, in id order.
    pub fn members(&self, room: &str) -> Vec<Member> {
        let mut members: Vec<Member> = self
            .nodes
            .values()
            .filter_map(|node| node.rooms.get(room))
            .flat_map(|members| members.values().cloned())
            .collect();
        members.sort();
        members
    }

    /// How many members `room` has on every node.
    pub fn count(&self, room: &str) -> usize {
        self.nodes
            .values()
            .filter_map(|node| node.rooms.get(room))
            .map(BTreeMap::len)
            .sum()
    }

    /// `node`'s members by room, as its beat reports them.
    pub fn beat(&self, node: &str) -> Report {
        let rooms = self
            .nodes
            .get(node)
            .map(|n| {
                n.rooms
                    .iter()
                    .map(|(room, members)| (room.clone(), members.values().cloned().collect()))
                    .collect()
            })
            .unwrap_or_default();
        Report::Beat {
            node: node.to_owned(),
            rooms,
        }
    }
}

/// The joins and leaves that turn `old` into `new`, leaves first.
fn diff(
    old: &HashMap<String, BTreeMap<String, Member>>,
    new: &HashMap<String, BTreeMap<String, Member>>,
) -> Vec<Change> {
    let mut changes = Vec::new();
    for (room, members) in old {
        for (id, member) in members {
            if !new.get(room).is_some_and(|m| m.contains_key(id)) {
                changes.push(Change::Left {
                    room: room.clone(),
                    member: member.clone(),
                });
            }
        }
    }
    for (room, members) in new {
        for (id, member) in members {
            if !old.get(room).is_some_and(|m| m.contains_key(id)) {
                changes.push(Change::Joined {
                    room: room.clone(),
                    member: member.clone(),
                });
            }
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str) -> Member {
        Member {
            id: id.into(),
            name: None,
        }
    }

    fn join(node: &str, room: &str, id: &str) -> Report {
        Report::Join {
            node: node.into(),
            room: room.into(),
            member: member(id),
        }
    }

    #[test]
    fn joins_and_leaves_from_every_node_add_up_per_room() {
        let t = Instant::now();
        let mut p = Presence::new();
        assert_eq!(p.apply(t, join("a", "r", "a-1")).len(), 1);
        assert_eq!(p.apply(t, join("b", "r", "b-1")).len(), 1);
        assert_eq!(p.apply(t, join("b", "s", "b-2")).len(), 1);
        assert!(p.apply(t, join("b", "r", "b-1")).is_empty(), "a repeat");
        assert_eq!(p.count("r"), 2);
        assert_eq!(p.members("r"), vec![member("a-1"), member("b-1")]);
        let leave = Report::Leave {
            node: "a".into(),
            room: "r".into(),
            member: member("a-1"),
        };
        assert_eq!(
            p.apply(t, leave),
            vec![Change::Left {
                room: "r".into(),
                member: member("a-1")
            }]
        );
        assert_eq!(p.count("r"), 1);
    }

    #[test]
    fn a_beat_repairs_a_lost_join_and_a_lost_leave() {
        let t = Instant::now();
        let mut p = Presence::new();
        p.apply(t, join("b", "r", "b-1"));
        // b-1 left and b-2 joined, both notices lost; the beat says who is there.
        let beat = Report::Beat {
            node: "b".into(),
            rooms: [("r".to_owned(), vec![member("b-2")])].into(),
        };
        let changes = p.apply(t, beat);
        assert_eq!(
            changes,
            vec![
                Change::Left {
                    room: "r".into(),
                    member: member("b-1")
                },
                Change::Joined {
                    room: "r".into(),
                    member: member("b-2")
                },
            ]
        );
        assert_eq!(p.members("r"), vec![member("b-2")]);
    }

    #[test]
    fn a_silent_node_s_members_leave_after_the_silence_but_never_our_own() {
        let t = Instant::now();
        let mut p = Presence::new();
        p.apply(t, join("a", "r", "a-1"));
        p.apply(t, join("b", "r", "b-1"));
        assert!(p
            .expire(t + SILENCE - Duration::from_millis(1), "a")
            .is_empty());
        let gone = p.expire(t + SILENCE, "a");
        assert_eq!(
            gone,
            vec![Change::Left {
                room: "r".into(),
                member: member("b-1")
            }]
        );
        assert_eq!(p.members("r"), vec![member("a-1")], "our own stay");
    }

    #[test]
    fn a_node_s_beat_lists_its_members_and_reports_round_trip() {
        let t = Instant::now();
        let mut p = Presence::new();
        p.apply(t, join("a", "r", "a-1"));
        p.apply(t, join("b", "r", "b-1"));
        let beat = p.beat("a");
        assert_eq!(
            beat,
            Report::Beat {
                node: "a".into(),
                rooms: [("r".to_owned(), vec![member("a-1")])].into()
            }
        );
        assert_eq!(Report::decode(&beat.encode()), Some(beat));
        assert_eq!(Report::decode(b"{\"kind\":\"nope\"}"), None);
    }
}
