//! Chat rooms: names, the log each room keeps, what its members receive, and recovery.
//!
//! A room's log gives every message an offset, counting up from 1 without gaps, and has an
//! epoch: the log's identity. A log that was lost and started again (its store wiped) has a new
//! epoch, so an offset is only meaningful with the epoch it was read under. This is Centrifugo's
//! model.

use serde::{Deserialize, Serialize};

use crate::presence::Member;

/// The longest room name, in bytes.
pub const MAX_ROOM_NAME: usize = 64;
/// The longest member name a client may give, in bytes.
pub const MAX_MEMBER_NAME: usize = 64;
/// The room of `/chat` without a name.
pub const LOBBY: &str = "lobby";

/// Why a room name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a room name is 1 to {MAX_ROOM_NAME} of A-Z, a-z, 0-9, '-' and '_'")]
pub struct BadRoomName;

/// Checks a room name: 1 to [`MAX_ROOM_NAME`] ASCII letters, digits, `-` and `_`, so that it is
/// one NATS token and part of a JetStream stream name as it stands, with nothing to escape.
pub fn check_room_name(name: &str) -> Result<&str, BadRoomName> {
    let ok = (1..=MAX_ROOM_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(name)
    } else {
        Err(BadRoomName)
    }
}

/// The subject a room's messages are published on.
pub fn log_subject(room: &str) -> String {
    format!("{}.chat.{room}", crate::PREFIX)
}

/// The JetStream stream that keeps a room's log.
pub fn stream_name(room: &str) -> String {
    format!("SOCKEYE_CHAT_{room}")
}

/// A message as a room's log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posted {
    /// The sender's member id.
    pub from: String,
    /// The name the sender gave, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The text sent.
    pub text: String,
}

/// The first byte of [`Posted::encode`]'s layout. JSON, which logs written before it hold,
/// starts with `{`.
const POSTED_V1: u8 = 1;
/// The name length that says "no name" (names are at most [`MAX_MEMBER_NAME`] bytes).
const NO_NAME: u16 = u16::MAX;

impl Posted {
    /// The bytes stored in the log: `1`, the sender's id and name each after a big-endian u16
    /// length (`0xFFFF`: no name), then the text to the end.
    ///
    /// Hand-written rather than JSON: every chat message is encoded once and decoded on every
    /// node, and serde_json cost about 2,500 instructions per message there (callgrind,
    /// benches/chat_callgrind.sh); this layout costs a copy of the three strings.
    pub fn encode(&self) -> bytes::Bytes {
        // Member ids are a node name (at most 64 bytes) and two numbers, names at most
        // MAX_MEMBER_NAME bytes: far below NO_NAME.
        let short = |s: &str| u16::try_from(s.len()).expect("member ids and names are short");
        let name = self.name.as_deref().unwrap_or("");
        let mut out = Vec::with_capacity(5 + self.from.len() + name.len() + self.text.len());
        out.push(POSTED_V1);
        out.extend_from_slice(&short(&self.from).to_be_bytes());
        out.extend_from_slice(self.from.as_bytes());
        let name_len = self.name.as_deref().map_or(NO_NAME, short);
        out.extend_from_slice(&name_len.to_be_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(self.text.as_bytes());
        out.into()
    }

    /// A log entry's bytes back into a message; `None` for bytes no node wrote.
    pub fn decode(bytes: &[u8]) -> Option<Posted> {
        match bytes.split_first()? {
            (&POSTED_V1, rest) => {
                let (from, rest) = take_field(rest)?;
                let (name, rest) = take_field(rest)?;
                Some(Posted {
                    from: from?.to_owned(),
                    name: name.map(str::to_owned),
                    text: std::str::from_utf8(rest).ok()?.to_owned(),
                })
            }
            // Only what the compact layout could hold, so that every decoded entry encodes.
            (b'{', _) => serde_json::from_slice(bytes).ok().filter(|p: &Posted| {
                p.from.len() < usize::from(NO_NAME)
                    && p.name
                        .as_ref()
                        .is_none_or(|n| n.len() < usize::from(NO_NAME))
            }),
            _ => None,
        }
    }
}

/// One length-prefixed field of [`Posted::encode`]: `Some(None)` for [`NO_NAME`].
fn take_field(bytes: &[u8]) -> Option<(Option<&str>, &[u8])> {
    let (len, rest) = bytes.split_first_chunk::<2>()?;
    let len = u16::from_be_bytes(*len);
    if len == NO_NAME {
        return Some((None, rest));
    }
    let (field, rest) = rest.split_at_checked(usize::from(len))?;
    Some((Some(std::str::from_utf8(field).ok()?), rest))
}

/// What a chat client that spoke [`SUBPROTOCOL`] receives, one JSON object per text message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ServerMessage {
    /// The first message after the handshake.
    Welcome {
        /// The room joined.
        room: String,
        /// The member id this connection was given.
        me: String,
        /// The epoch of the room's log.
        epoch: String,
        /// The offset of the last message the room had when the client joined (0: none).
        offset: u64,
        /// Present when the client asked to recover (`since`): whether every message it
        /// missed follows. `false`: the gap is no longer in the log or the epoch changed; only
        /// the live stream follows.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        recovered: Option<bool>,
        /// Who is in the room now, on every node.
        members: Vec<Member>,
    },
    /// A message sent to the room.
    Message {
        /// Its offset in the room's log; absent for a message sent while the node was cut off
        /// from the cluster (it reached this node's members only and is not in the log).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        offset: Option<u64>,
        /// The sender's member id.
        from: String,
        /// The sender's name, if it gave one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// The text.
        text: String,
    },
    /// Someone joined or left the room.
    Presence {
        /// `join` or `leave`.
        event: PresenceEvent,
        /// Who.
        member: Member,
        /// Members in the room after this change.
        count: usize,
    },
}

impl ServerMessage {
    /// The JSON text sent to the client.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a ServerMessage is plain data")
    }
}

/// A presence change, as a client sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PresenceEvent {
    /// A member joined.
    Join,
    /// A member left, or its node went silent.
    Leave,
}

/// The subprotocol of the JSON chat protocol ([`ServerMessage`]). A client that does not offer
/// it gets the seed's chat: each message's text as it was sent, nothing else.
pub const SUBPROTOCOL: &str = "sockeye.chat.v1";

/// What a chat URL's query asks for: `?since=OFFSET&epoch=EPOCH&name=NAME`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JoinQuery {
    /// Recover from after this offset, if the epoch still holds.
    pub since: Option<(u64, String)>,
    /// The member's name, shown to the others.
    pub name: Option<String>,
}

impl JoinQuery {
    /// Parses a request's query. `since` without `epoch` (or the reverse), a `since` that is
    /// not a number, or a name over [`MAX_MEMBER_NAME`] bytes is an error; other keys are
    /// ignored, as browsers add their own.
    pub fn parse(query: Option<&str>) -> Result<JoinQuery, String> {
        let (mut since, mut epoch, mut name) = (None, None, None);
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_encoding::percent_decode_str(&value.replace('+', " "))
                .decode_utf8()
                .map_err(|_| format!("{key} is not UTF-8"))?
                .into_owned();
            match key {
                "since" => {
                    since = Some(value.parse::<u64>().map_err(|_| "since is not an offset")?)
                }
                "epoch" => epoch = Some(value),
                "name" if value.len() > MAX_MEMBER_NAME => {
                    return Err(format!("name is over {MAX_MEMBER_NAME} bytes"))
                }
                "name" if !value.is_empty() => name = Some(value),
                _ => {}
            }
        }
        let since = match (since, epoch) {
            (Some(offset), Some(epoch)) => Some((offset, epoch)),
            (None, None) => None,
            _ => return Err("since and epoch go together".into()),
        };
        Ok(JoinQuery { since, name })
    }
}

/// The state of a room's log, as far as recovery needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogState {
    /// The log's epoch.
    pub epoch: String,
    /// The lowest offset still kept; `last + 1` when the log keeps nothing.
    pub first: u64,
    /// The offset of the last message appended (0: none yet).
    pub last: u64,
}

/// Whether a client that last saw offset `since` under `epoch` can be given every message it
/// missed from a log in state `log`: the same epoch, and nothing after `since` dropped from
/// the log. A `since` beyond the log's end is not from this log.
pub fn recovery(since: u64, epoch: &str, log: &LogState) -> bool {
    epoch == log.epoch && since <= log.last && since.saturating_add(1) >= log.first
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_are_one_plain_token() {
        for ok in ["lobby", "a", "Room_1-b", &"x".repeat(64)] {
            assert_eq!(check_room_name(ok), Ok(ok));
        }
        for bad in ["", "a.b", "a*", "a>", "a b", "é", &"x".repeat(65), "a/b"] {
            assert_eq!(check_room_name(bad), Err(BadRoomName), "{bad:?}");
        }
    }

    #[test]
    fn recovery_needs_the_same_epoch_and_no_gap() {
        let log = LogState {
            epoch: "e1".into(),
            first: 11,
            last: 110,
        };
        assert!(recovery(110, "e1", &log), "nothing missed");
        assert!(recovery(10, "e1", &log), "missed 11..=110, all kept");
        assert!(!recovery(9, "e1", &log), "10 is gone");
        assert!(!recovery(50, "e2", &log), "another epoch");
        assert!(!recovery(111, "e1", &log), "an offset this log never gave");
        let empty = LogState {
            epoch: "e1".into(),
            first: 1,
            last: 0,
        };
        assert!(recovery(0, "e1", &empty));
    }

    #[test]
    fn join_query_takes_since_with_epoch_and_a_decoded_name() {
        let q = JoinQuery::parse(Some("since=42&epoch=abc&name=J%C3%BCrgen+K&t=1")).unwrap();
        assert_eq!(q.since, Some((42, "abc".into())));
        assert_eq!(q.name.as_deref(), Some("Jürgen K"));
        assert_eq!(JoinQuery::parse(None).unwrap(), JoinQuery::default());
        assert!(JoinQuery::parse(Some("since=1")).is_err());
        assert!(JoinQuery::parse(Some("epoch=x")).is_err());
        assert!(JoinQuery::parse(Some("since=x&epoch=e")).is_err());
        assert!(JoinQuery::parse(Some(&format!("name={}", "n".repeat(65)))).is_err());
        assert!(JoinQuery::parse(Some("name=%FF")).is_err());
    }

    #[test]
    fn posted_round_trips_and_garbage_is_none() {
        let p = Posted {
            from: "a-1".into(),
            name: Some("Ann".into()),
            text: "hi \"there\"".into(),
        };
        assert_eq!(Posted::decode(&p.encode()), Some(p));
        let anonymous = Posted {
            from: "b-2".into(),
            name: None,
            text: String::new(),
        };
        assert_eq!(Posted::decode(&anonymous.encode()), Some(anonymous));
        assert_eq!(Posted::decode(b"\xff{"), None);
        assert_eq!(Posted::decode(b""), None);
        assert_eq!(
            Posted::decode(b"\x01\x00\x05ab"),
            None,
            "a field past the end"
        );
        assert_eq!(
            Posted::decode(b"\x01\x00\x01\xff\xff\xff"),
            None,
            "not UTF-8"
        );
        assert_eq!(
            Posted::decode(b"\x01\x00\x01a\xff\xffhi\xc3"),
            None,
            "text not UTF-8"
        );
    }

    #[test]
    fn posted_still_reads_the_json_of_logs_written_before_the_compact_layout() {
        let old = br#"{"from":"a-1","name":"Ann","text":"hi"}"#;
        let too_long = format!(r#"{{"from":"{}","text":"hi"}}"#, "a".repeat(70_000));
        assert_eq!(Posted::decode(too_long.as_bytes()), None);
        assert_eq!(
            Posted::decode(old),
            Some(Posted {
                from: "a-1".into(),
                name: Some("Ann".into()),
                text: "hi".into(),
            })
        );
    }

    #[test]
    fn server_messages_are_tagged_json() {
        let m = ServerMessage::Message {
            offset: Some(7),
            from: "n1-3".into(),
            name: None,
            text: "x".into(),
        };
        assert_eq!(
            m.to_json(),
            r#"{"type":"message","offset":7,"from":"n1-3","text":"x"}"#
        );
    }
}
