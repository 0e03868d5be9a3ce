//! The broker across nodes: what one router tells the others about a publication, how that
//! travels, and which NATS subjects carry it. No I/O here either: the router emits
//! [`Action::Forward`](crate::Action::Forward) and [`Action::Interest`](crate::Action::Interest)
//! and takes [`Router::deliver_remote`](crate::Router::deliver_remote); moving the bytes (over
//! NATS, or anything else) is the caller's business.
//!
//! The model is Centrifugo's and Socket.IO's adapter, not Crossbar's router-to-router links:
//! subscriptions stay local, every node subscribes to the subjects its local subscriptions
//! could match, and a publication is sent once to the subject of its topic. The receiving
//! router then matches it against its own subscription table, so a NATS subject that matches
//! more than the WAMP subscription (a prefix, see [`interest_subject`]) only costs traffic,
//! never a wrong delivery.
//!
//! ```text
//!   node A                                   node B
//!   PUBLISH ──> Router ── EVENTs to A's subscribers
//!                 └── Forward(ClusterEvent) ── encode ──> NATS subject ──> decode
//!                                                          deliver_remote ──> Router ── EVENTs to B's subscribers
//! ```
//!
//! Subjects look like `PREFIX.<realm>.<component>.<component>...`: the realm is one token,
//! each URI component one token, each escaped with [`escape_token`] so that no NATS wildcard,
//! separator or whitespace ever appears raw.

pub mod rpc;

use std::fmt::Write as _;

pub use rpc::procedure_subject;

use crate::message::{Payload, MAX_ID};
use crate::serializer::Serializer;
use crate::uri::MatchPolicy;
use crate::value::{Dict, Value};

/// A router's part in a cluster: [`crate::RouterConfig::cluster`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterConfig {
    /// This node's number, different on every node of the cluster. With it, session ids are
    /// unique across the cluster by construction: the node number is the high 16 of the 53
    /// bits of every session id this router hands out, the low 37 bits are random (see
    /// [`crate::id::IdGenerator::session_id`]). Without it session ids are random in
    /// `[1, 2^53]` as on a single node, and two sessions of different nodes get the same id
    /// with probability about n²/2^54: 1 in 18,000 for a million sessions alive at once. An id
    /// clash would let `exclude`/`eligible` lists name the wrong session on the other node,
    /// hence: give node ids. Default `None`.
    pub node_id: Option<u16>,
    /// The first token(s) of every subject [`Action::Interest`](crate::Action::Interest) names,
    /// used as given (it must be valid NATS tokens, without wildcards); the subjects of
    /// [`Action::Registered`](crate::Action::Registered) start with it and `-rpc` (see
    /// [`procedure_subject`]). Default `"sockeye.wamp"`.
    pub subject_prefix: String,
    /// Whether retained events are shared through a store of the cluster's, which keeps the
    /// latest of each topic for nodes and realms that come later (see
    /// [`retained_key`]): the transport stores each retained publication this router
    /// forwards, tells [`Router::retained_stored`](crate::Router::retained_stored) how that
    /// went, and gives every event the store has and gets to
    /// [`Router::offer_retained`](crate::Router::offer_retained). Other nodes' publications
    /// are then retained only as offered, in the store's order, not as
    /// [`Router::deliver_remote`](crate::Router::deliver_remote) gets them. `false`, the
    /// default: each node retains what it delivers, and a node or realm that comes later has
    /// none of the earlier events.
    pub shared_retention: bool,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            node_id: None,
            subject_prefix: "sockeye.wamp".to_owned(),
            shared_retention: false,
        }
    }
}

impl ClusterConfig {
    /// A node with number `node_id` and the default subject prefix.
    pub fn node(node_id: u16) -> Self {
        ClusterConfig {
            node_id: Some(node_id),
            ..ClusterConfig::default()
        }
    }
}

/// The publisher, as `disclose_me` (or a role's `disclose`) names it in EVENT details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publisher {
    /// The publisher's session id (unique across the cluster with [`ClusterConfig::node_id`]).
    pub session: u64,
    /// Its authid.
    pub authid: String,
    /// Its authrole.
    pub authrole: String,
}

/// Who may receive a publication (WAMP spec, "Subscriber Black- and Whitelisting"): the
/// PUBLISH options `exclude`, `eligible`, `exclude_authid`, `eligible_authid`,
/// `exclude_authrole`, `eligible_authrole`. `None`: the option was not given. A session
/// receives the event if no exclude list names it and every eligible list given names it.
///
/// `exclude_me` is not here: it concerns only the publisher, whose session is on the origin
/// node, which applies it to its own subscribers; on every other node it excludes nobody.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Audience {
    /// `exclude`: session ids that must not receive it.
    pub exclude: Option<Vec<u64>>,
    /// `eligible`: the only session ids that may receive it.
    pub eligible: Option<Vec<u64>>,
    /// `exclude_authid`.
    pub exclude_authid: Option<Vec<String>>,
    /// `eligible_authid`.
    pub eligible_authid: Option<Vec<String>>,
    /// `exclude_authrole`.
    pub exclude_authrole: Option<Vec<String>>,
    /// `eligible_authrole`.
    pub eligible_authrole: Option<Vec<String>>,
}

impl Audience {
    /// The lists of a PUBLISH's options; entries of the wrong type are ignored.
    pub fn from_options(options: &Dict) -> Self {
        let ids = |key: &str| -> Option<Vec<u64>> {
            options
                .get_list(key)
                .map(|l| l.iter().filter_map(Value::as_u64).collect())
        };
        let strs = |key: &str| -> Option<Vec<String>> {
            options.get_list(key).map(|l| {
                l.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
        };
        Audience {
            exclude: ids("exclude"),
            eligible: ids("eligible"),
            exclude_authid: strs("exclude_authid"),
            eligible_authid: strs("eligible_authid"),
            exclude_authrole: strs("exclude_authrole"),
            eligible_authrole: strs("eligible_authrole"),
        }
    }

    /// Whether a session with this id, authid and authrole may receive the event.
    pub fn admits(&self, session: u64, authid: &str, authrole: &str) -> bool {
        let in_list =
            |l: &Option<Vec<String>>, v: &str| l.as_ref().map(|l| l.iter().any(|x| x == v));
        !(self.exclude.as_ref().is_some_and(|l| l.contains(&session))
            || in_list(&self.exclude_authid, authid) == Some(true)
            || in_list(&self.exclude_authrole, authrole) == Some(true)
            || self
                .eligible
                .as_ref()
                .is_some_and(|l| !l.contains(&session))
            || in_list(&self.eligible_authid, authid) == Some(false)
            || in_list(&self.eligible_authrole, authrole) == Some(false))
    }

    fn to_dict(&self) -> Dict {
        let mut d = Dict::new();
        let ids = |l: &[u64]| Value::List(l.iter().map(|&i| Value::from(i)).collect());
        let strs = |l: &[String]| Value::List(l.iter().map(|s| Value::from(s.as_str())).collect());
        if let Some(l) = &self.exclude {
            d.insert("exclude", ids(l));
        }
        if let Some(l) = &self.eligible {
            d.insert("eligible", ids(l));
        }
        for (key, l) in [
            ("exclude_authid", &self.exclude_authid),
            ("eligible_authid", &self.eligible_authid),
            ("exclude_authrole", &self.exclude_authrole),
            ("eligible_authrole", &self.eligible_authrole),
        ] {
            if let Some(l) = l {
                d.insert(key, strs(l));
            }
        }
        d
    }

    fn from_dict(d: &Dict) -> Result<Self, ClusterDecodeError> {
        let ids = |key: &str| -> Result<Option<Vec<u64>>, ClusterDecodeError> {
            match d.get(key) {
                None => Ok(None),
                Some(Value::List(l)) => l
                    .iter()
                    .map(|v| v.as_u64().ok_or_else(|| bad(key)))
                    .collect::<Result<_, _>>()
                    .map(Some),
                Some(_) => Err(bad(key)),
            }
        };
        let strs = |key: &str| -> Result<Option<Vec<String>>, ClusterDecodeError> {
            match d.get(key) {
                None => Ok(None),
                Some(Value::List(l)) => l
                    .iter()
                    .map(|v| v.as_str().map(str::to_owned).ok_or_else(|| bad(key)))
                    .collect::<Result<_, _>>()
                    .map(Some),
                Some(_) => Err(bad(key)),
            }
        };
        Ok(Audience {
            exclude: ids("exclude")?,
            eligible: ids("eligible")?,
            exclude_authid: strs("exclude_authid")?,
            eligible_authid: strs("eligible_authid")?,
            exclude_authrole: strs("exclude_authrole")?,
            eligible_authrole: strs("eligible_authrole")?,
        })
    }
}

/// A publication accepted on one node, with everything another node needs to deliver it to
/// its own subscribers exactly as if it had been published there. Emitted as
/// [`Action::Forward`](crate::Action::Forward); delivered with
/// [`Router::deliver_remote`](crate::Router::deliver_remote).
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterEvent {
    /// The router that accepted the PUBLISH (a random number per [`crate::Router`]): a router
    /// ignores its own events, should the backplane echo them back.
    pub origin: u64,
    /// The realm it was published in.
    pub realm: String,
    /// The concrete topic.
    pub topic: String,
    /// The publication id, the same in the EVENTs of every node.
    pub publication: u64,
    /// The publisher, if it is disclosed (`disclose_me`, or its role's `disclose`).
    pub publisher: Option<Publisher>,
    /// Payload passthru keys (`enc_algo`, `ppt_scheme`, ...) copied into EVENT details.
    pub passthru: Dict,
    /// The black- and whitelists.
    pub audience: Audience,
    /// `retain`: the receiving node keeps it as the topic's retained event too.
    pub retain: bool,
    /// Arguments and keyword arguments, or the opaque payload, untouched.
    pub payload: Payload,
}

/// A [`ClusterEvent::decode`] (or a decode of one of the [`rpc`] messages) that failed: the
/// bytes are not a message of that kind that this version encodes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a cluster message: {0}")]
pub struct ClusterDecodeError(String);

fn bad(what: &str) -> ClusterDecodeError {
    ClusterDecodeError(format!("bad {what}"))
}

/// A payload as three flat values: its shape (0 none, 1 args, 2 args and kwargs, 3 opaque),
/// then the arguments (or the opaque value) and the keyword arguments, `Null` where absent.
fn payload_values(payload: &Payload) -> [Value; 3] {
    match payload {
        Payload::Empty => [Value::from(0u64), Value::Null, Value::Null],
        Payload::Args(a) => [Value::from(1u64), Value::List(a.clone()), Value::Null],
        Payload::ArgsKwargs(a, k) => [
            Value::from(2u64),
            Value::List(a.clone()),
            Value::Dict(k.clone()),
        ],
        Payload::Opaque(v) => [Value::from(3u64), v.clone(), Value::Null],
    }
}

/// The payload [`payload_values`] gave these values for.
fn payload_from_values(kind: Value, a: Value, k: Value) -> Result<Payload, ClusterDecodeError> {
    Ok(match (kind.as_u64(), a, k) {
        (Some(0), Value::Null, Value::Null) => Payload::Empty,
        (Some(1), Value::List(a), Value::Null) => Payload::Args(a),
        (Some(2), Value::List(a), Value::Dict(k)) => Payload::ArgsKwargs(a, k),
        (Some(3), v, Value::Null) => Payload::Opaque(v),
        _ => return Err(bad("payload")),
    })
}

/// The first element of an encoded event: what it is, and which version of the layout.
const TAG: &str = "sockeye.wamp.event/1";

impl ClusterEvent {
    /// The details every EVENT of this publication starts with (a pattern subscriber's also
    /// get `topic`), in the order the origin router puts them.
    pub fn details(&self) -> Dict {
        let mut d = Dict::new();
        if let Some(p) = &self.publisher {
            d.insert("publisher", p.session);
            d.insert("publisher_authid", p.authid.as_str());
            d.insert("publisher_authrole", p.authrole.as_str());
        }
        for (k, v) in self.passthru.iter() {
            d.insert(k, v.clone());
        }
        d
    }

    /// The event as bytes: one MessagePack array, flat, so that a payload nests no deeper
    /// than in the PUBLISH it came from (and decodes under the same nesting limit).
    pub fn encode(&self) -> Vec<u8> {
        let [kind, a, k] = payload_values(&self.payload);
        let (session, authid, authrole) = match &self.publisher {
            Some(p) => (
                Value::from(p.session),
                Value::from(p.authid.as_str()),
                Value::from(p.authrole.as_str()),
            ),
            None => (Value::Null, Value::Null, Value::Null),
        };
        let v = Value::List(vec![
            TAG.into(),
            self.origin.into(),
            self.realm.as_str().into(),
            self.topic.as_str().into(),
            self.publication.into(),
            self.retain.into(),
            session,
            authid,
            authrole,
            Value::Dict(self.passthru.clone()),
            Value::Dict(self.audience.to_dict()),
            kind,
            a,
            k,
        ]);
        Serializer::MsgPack.encode_value(&v)
    }

    /// An event from [`ClusterEvent::encode`]'s bytes; anything else is an error, never a
    /// panic.
    pub fn decode(bytes: &[u8]) -> Result<Self, ClusterDecodeError> {
        let v = Serializer::MsgPack
            .decode_value(bytes)
            .map_err(|e| ClusterDecodeError(e.0))?;
        let Value::List(items) = v else {
            return Err(bad("envelope"));
        };
        let [tag, origin, realm, topic, publication, retain, session, authid, authrole, passthru, audience, kind, a, k] =
            <[Value; 14]>::try_from(items).map_err(|_| bad("envelope length"))?;
        if tag.as_str() != Some(TAG) {
            return Err(bad("tag"));
        }
        let string = |v: Value, what: &str| match v {
            Value::Str(s) => Ok(s),
            _ => Err(bad(what)),
        };
        let publication = publication
            .as_u64()
            .filter(|p| (1..=MAX_ID).contains(p))
            .ok_or_else(|| bad("publication"))?;
        let publisher = match (session, authid, authrole) {
            (Value::Null, Value::Null, Value::Null) => None,
            (session, authid, authrole) => Some(Publisher {
                session: session.as_u64().ok_or_else(|| bad("publisher"))?,
                authid: string(authid, "publisher_authid")?,
                authrole: string(authrole, "publisher_authrole")?,
            }),
        };
        let dict = |v: Value, what: &str| match v {
            Value::Dict(d) => Ok(d),
            _ => Err(bad(what)),
        };
        let payload = payload_from_values(kind, a, k)?;
        Ok(ClusterEvent {
            origin: origin.as_u64().ok_or_else(|| bad("origin"))?,
            realm: string(realm, "realm")?,
            topic: string(topic, "topic")?,
            publication,
            publisher,
            passthru: dict(passthru, "passthru")?,
            audience: Audience::from_dict(&dict(audience, "audience")?)?,
            retain: retain.as_bool().ok_or_else(|| bad("retain"))?,
            payload,
        })
    }
}

/// Appends `s` to `out` as one NATS token: `%`, `*`, `>`, `.`, whitespace and control
/// characters become `%XX` (each byte of their UTF-8, upper-case hex), everything else stays.
/// The empty string becomes a lone `%`, which no non-empty string escapes to (a raw `%` is
/// always `%25`). So the token is never empty, never a wildcard, and distinct strings give
/// distinct tokens.
pub fn escape_token(out: &mut String, s: &str) {
    if s.is_empty() {
        out.push('%');
        return;
    }
    for ch in s.chars() {
        if matches!(ch, '%' | '*' | '>' | '.') || ch.is_whitespace() || ch.is_control() {
            let mut buf = [0; 4];
            for b in ch.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "%{b:02X}");
            }
        } else {
            out.push(ch);
        }
    }
}

fn realm_subject(prefix: &str, realm: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + realm.len() + 32);
    out.push_str(prefix);
    out.push('.');
    escape_token(&mut out, realm);
    out
}

/// The NATS subject a publication to `topic` (a concrete URI) in `realm` is sent to:
/// `PREFIX.<realm>.<component>...`, each token escaped with [`escape_token`] (the realm as
/// one token, its dots escaped too).
pub fn topic_subject(prefix: &str, realm: &str, topic: &str) -> String {
    let mut out = realm_subject(prefix, realm);
    for c in topic.split('.') {
        out.push('.');
        escape_token(&mut out, c);
    }
    out
}

/// The key under which the cluster's store of latest values keeps the retained event of
/// `topic` in `realm`, with [`ClusterConfig::shared_retention`]: `PREFIX.<realm>.<topic>`, the
/// realm and the whole topic each one token escaped with [`escape_token`] (the topic's dots
/// too), so that every realm and topic has its own key and every key is under `PREFIX`.
pub fn retained_key(prefix: &str, realm: &str, topic: &str) -> String {
    let mut out = realm_subject(prefix, realm);
    out.push('.');
    escape_token(&mut out, topic);
    out
}

/// The NATS subject a node subscribes to so that it receives every publication a local
/// subscription to `uri` with `policy` in `realm` matches:
///
/// - exact: the topic's own subject ([`topic_subject`]);
/// - wildcard: the same, with each empty component (which matches any one component) as `*`;
/// - prefix: WAMP compares bytes (`com.my` matches `com.myapp.x`), NATS whole tokens, so the
///   last, possibly partial, component is dropped and `>` (one or more tokens) takes its place:
///   `com.myapp` → `PREFIX.realm.com.>`, `com` or the empty prefix → `PREFIX.realm.>`. This
///   matches more than the subscription does; the router filters what arrives.
pub fn interest_subject(prefix: &str, realm: &str, policy: MatchPolicy, uri: &str) -> String {
    let mut out = realm_subject(prefix, realm);
    match policy {
        MatchPolicy::Exact => return topic_subject(prefix, realm, uri),
        MatchPolicy::Wildcard => {
            for c in uri.split('.') {
                out.push('.');
                if c.is_empty() {
                    out.push('*');
                } else {
                    escape_token(&mut out, c);
                }
            }
        }
        MatchPolicy::Prefix => {
            let parts: Vec<&str> = uri.split('.').collect();
            // Every component but the last must match whole: a topic starting with "a.b.c"
            // has "a" and "b" as its first two components, and its third starts with "c".
            for c in &parts[..parts.len() - 1] {
                out.push('.');
                escape_token(&mut out, c);
            }
            out.push_str(".>");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uri;

    /// NATS subject matching, as the server does it: `*` matches one token, a final `>` one
    /// or more.
    fn nats_matches(pattern: &str, subject: &str) -> bool {
        let p: Vec<&str> = pattern.split('.').collect();
        let s: Vec<&str> = subject.split('.').collect();
        for (i, pt) in p.iter().enumerate() {
            match *pt {
                ">" if i == p.len() - 1 => return s.len() > i,
                "*" if i < s.len() => {}
                t if i < s.len() && s[i] == t => {}
                _ => return false,
            }
        }
        p.len() == s.len()
    }

    /// Every token is a valid NATS token: not empty, no whitespace, and a wildcard only where
    /// an interest subject puts one.
    fn valid_subject(subject: &str, wildcards: bool) -> bool {
        subject.split('.').all(|t| {
            !t.is_empty()
                && !t.chars().any(|c| c.is_whitespace() || c.is_control())
                && (wildcards || (!t.contains('*') && !t.contains('>')))
        })
    }

    #[test]
    fn topic_subjects_escape_wildcards_whitespace_dots_in_realms_and_the_escape_itself() {
        assert_eq!(
            topic_subject("sw", "realm1", "com.myapp.x"),
            "sw.realm1.com.myapp.x"
        );
        assert_eq!(topic_subject("sw", "a.b", "x"), "sw.a%2Eb.x");
        assert_eq!(
            topic_subject("sw", "r", "com.*.>.100%.a b"),
            "sw.r.com.%2A.%3E.100%25.a%20b"
        );
        assert_eq!(topic_subject("sw", "r", "a..b"), "sw.r.a.%.b");
        assert_eq!(topic_subject("sw", "r", "a\u{3000}b"), "sw.r.a%E3%80%80b");
    }

    #[test]
    fn retained_keys_are_literal_tokens_one_for_the_realm_and_one_for_the_topic() {
        assert_eq!(
            retained_key("sw", "realm1", "com.myapp.x"),
            "sw.realm1.com%2Emyapp%2Ex"
        );
        assert_eq!(retained_key("sw", "a.b", "*"), "sw.a%2Eb.%2A");
        assert_ne!(
            retained_key("sw", "a.b", "c"),
            retained_key("sw", "a", "b.c"),
            "the realm's dots are escaped too"
        );
        assert!(valid_subject(&retained_key("sw", "r", "a b..>"), false));
    }

    #[test]
    fn interest_subjects_for_each_match_policy() {
        let s = |p, u| interest_subject("sw", "realm1", p, u);
        assert_eq!(s(MatchPolicy::Exact, "com.a"), "sw.realm1.com.a");
        assert_eq!(
            s(MatchPolicy::Wildcard, "com..topic"),
            "sw.realm1.com.*.topic"
        );
        assert_eq!(s(MatchPolicy::Prefix, "com.myapp"), "sw.realm1.com.>");
        assert_eq!(
            s(MatchPolicy::Prefix, "com.myapp."),
            "sw.realm1.com.myapp.>"
        );
        assert_eq!(s(MatchPolicy::Prefix, "com"), "sw.realm1.>");
        assert_eq!(s(MatchPolicy::Prefix, ""), "sw.realm1.>");
    }

    /// Components from an alphabet with every character escaping cares about.
    fn components() -> Vec<String> {
        let mut v = vec![String::new()];
        for a in ["a", "*", ">", "%", " ", "%2A"] {
            v.push(a.to_owned());
            for b in ["a", "%"] {
                v.push(format!("{a}{b}"));
            }
        }
        v
    }

    fn uris(max_len: usize) -> Vec<String> {
        let comps = components();
        let mut out: Vec<String> = comps.clone();
        let mut last = comps.clone();
        for _ in 1..max_len {
            let next: Vec<String> = last
                .iter()
                .flat_map(|u| comps.iter().map(move |c| format!("{u}.{c}")))
                .collect();
            out.extend(next.iter().cloned());
            last = next;
        }
        out
    }

    #[test]
    fn every_topic_a_subscription_matches_reaches_its_interest_subject() {
        // Exhaustive over URIs of up to three components from an alphabet of every character
        // the escaping treats specially: if WAMP matches, NATS matches.
        let all = uris(3);
        let mut checked = 0u64;
        for topic in &all {
            let subject = topic_subject("p.q", "r.1", topic);
            assert!(valid_subject(&subject, false), "{topic:?} -> {subject}");
        }
        for policy in [
            MatchPolicy::Exact,
            MatchPolicy::Prefix,
            MatchPolicy::Wildcard,
        ] {
            for pattern in all.iter().filter(|p| p.len() <= 5) {
                let interest = interest_subject("p.q", "r.1", policy, pattern);
                assert!(valid_subject(&interest, true), "{pattern:?} -> {interest}");
                for topic in &all {
                    if uri::matches(pattern, policy, topic) {
                        checked += 1;
                        let subject = topic_subject("p.q", "r.1", topic);
                        assert!(
                            nats_matches(&interest, &subject),
                            "{policy:?} {pattern:?} matches {topic:?} but {interest} misses {subject}"
                        );
                    }
                }
            }
        }
        assert!(checked > 10_000, "only {checked} matches checked");
    }

    #[test]
    fn distinct_topics_have_distinct_subjects() {
        let all = uris(2);
        let mut seen = std::collections::HashMap::new();
        for realm in ["r", "r.1", "r%2E1", ""] {
            for topic in &all {
                let s = topic_subject("p", realm, topic);
                if let Some(prev) = seen.insert(s.clone(), (realm, topic.clone())) {
                    panic!("{prev:?} and {:?} both give {s}", (realm, topic));
                }
            }
        }
    }

    fn sample() -> ClusterEvent {
        ClusterEvent {
            origin: u64::MAX - 3,
            realm: "realm1".into(),
            topic: "com.myapp.x".into(),
            publication: 42,
            publisher: Some(Publisher {
                session: 7,
                authid: "alice".into(),
                authrole: "user".into(),
            }),
            passthru: Dict::new().with("ppt_scheme", "mqtt"),
            audience: Audience {
                exclude: Some(vec![1, 2]),
                eligible_authrole: Some(vec!["user".into()]),
                ..Audience::default()
            },
            retain: true,
            payload: Payload::ArgsKwargs(
                vec![Value::from(1), Value::Bytes(vec![0, 1]), Value::Float(0.5)],
                Dict::new().with("k", Value::List(vec![Value::Null])),
            ),
        }
    }

    #[test]
    fn an_event_decodes_to_what_was_encoded() {
        let e = sample();
        assert_eq!(ClusterEvent::decode(&e.encode()), Ok(e.clone()));
        for payload in [
            Payload::Empty,
            Payload::Args(vec![]),
            Payload::Opaque(Value::Bytes(vec![9; 3])),
        ] {
            let e = ClusterEvent {
                payload,
                publisher: None,
                audience: Audience::default(),
                ..e.clone()
            };
            assert_eq!(ClusterEvent::decode(&e.encode()), Ok(e));
        }
    }

    /// A random event: every field, every payload shape, nested values (no NaN, which is not
    /// equal to itself).
    fn random_event(ids: &mut crate::id::IdGenerator) -> ClusterEvent {
        fn value(ids: &mut crate::id::IdGenerator, depth: u32) -> Value {
            let n = ids.next_u64();
            match n % if depth > 2 { 6 } else { 8 } {
                0 => Value::Null,
                1 => Value::Bool(n & 256 != 0),
                2 => Value::from((n >> 8) as i64),
                3 => Value::from(u64::MAX - (n >> 60)),
                4 => Value::Float((n >> 11) as f64 / 3.0),
                5 => Value::from(format!("s{}", n >> 50)),
                6 => Value::List((0..n % 4).map(|_| value(ids, depth + 1)).collect()),
                _ => Value::Dict(
                    (0..n % 4)
                        .map(|i| (format!("k{i}"), value(ids, depth + 1)))
                        .collect(),
                ),
            }
        }
        let maybe = |ids: &mut crate::id::IdGenerator| ids.next_u64() % 2 == 0;
        let strs = |ids: &mut crate::id::IdGenerator| {
            let n = ids.next_u64() % 3;
            Some((0..n).map(|i| format!("a{i}")).collect())
        };
        let args = |ids: &mut crate::id::IdGenerator| {
            (0..ids.next_u64() % 4).map(|_| value(ids, 1)).collect()
        };
        let payload = match ids.next_u64() % 4 {
            0 => Payload::Empty,
            1 => Payload::Args(args(ids)),
            2 => Payload::ArgsKwargs(args(ids), Dict::new().with("x", value(ids, 1))),
            _ => Payload::Opaque(Value::Bytes(ids.challenge().to_vec())),
        };
        ClusterEvent {
            origin: ids.next_u64(),
            realm: format!("realm{}", ids.next_u64() % 3),
            topic: format!("com.t{}", ids.next_u64() % 100),
            publication: ids.global_id(),
            publisher: maybe(ids).then(|| Publisher {
                session: ids.global_id(),
                authid: "alice".into(),
                authrole: "user".into(),
            }),
            passthru: if maybe(ids) {
                Dict::new().with("enc_algo", "cryptobox")
            } else {
                Dict::new()
            },
            audience: Audience {
                exclude: maybe(ids).then(|| vec![ids.global_id()]),
                eligible: maybe(ids).then(Vec::new),
                exclude_authid: if maybe(ids) { strs(ids) } else { None },
                eligible_authid: if maybe(ids) { strs(ids) } else { None },
                exclude_authrole: if maybe(ids) { strs(ids) } else { None },
                eligible_authrole: if maybe(ids) { strs(ids) } else { None },
            },
            retain: maybe(ids),
            payload,
        }
    }

    #[test]
    fn random_events_decode_to_what_was_encoded() {
        let mut ids = crate::id::IdGenerator::seeded(11);
        for _ in 0..2000 {
            let e = random_event(&mut ids);
            assert_eq!(ClusterEvent::decode(&e.encode()).as_ref(), Ok(&e));
        }
    }

    #[test]
    fn garbage_does_not_decode_as_an_event() {
        let good = sample().encode();
        // Every truncation, and every single-byte change, is an error or a valid event.
        for n in 0..good.len() {
            assert!(ClusterEvent::decode(&good[..n]).is_err());
        }
        for i in 0..good.len() {
            for b in [0x00, 0xc1, 0xff, 0x90, 0xdc] {
                let mut bad = good.clone();
                bad[i] = b;
                let _ = ClusterEvent::decode(&bad);
            }
        }
        assert!(ClusterEvent::decode(b"").is_err());
        assert!(ClusterEvent::decode(b"\x91\xa1x").is_err());
        let wrong_tag = Serializer::MsgPack.encode_value(&Value::List(vec!["x".into()]));
        assert!(ClusterEvent::decode(&wrong_tag).is_err());
    }
}
