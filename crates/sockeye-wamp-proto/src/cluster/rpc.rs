//! The dealer across nodes: what one router tells another about a call, how that travels,
//! and which NATS subjects carry it. No I/O, as for the broker: the router emits
//! [`Action::RemoteCall`](crate::Action::RemoteCall),
//! [`Action::RemoteAnswer`](crate::Action::RemoteAnswer),
//! [`Action::RemoteCancel`](crate::Action::RemoteCancel) and
//! [`Action::Registered`](crate::Action::Registered), and takes
//! [`Router::invoke_remote`](crate::Router::invoke_remote),
//! [`Router::remote_answer`](crate::Router::remote_answer),
//! [`Router::cancel_remote`](crate::Router::cancel_remote),
//! [`Router::remote_call_failed`](crate::Router::remote_call_failed) and
//! [`Router::node_gone`](crate::Router::node_gone).
//!
//! ```text
//!   node A (caller's)                                      node B (callee's)
//!   CALL ──> Router: no local registration
//!              └── RemoteCall ── encode ──> procedure_subject (queue group) ──> decode
//!                                                 invoke_remote ──> Router ── INVOCATION ──> callee
//!                                            RemoteAnswer(Accepted) <──┘
//!              remote_answer <── decode <── RemoteAnswer(Result/Error) <── Router <── YIELD/ERROR
//!   RESULT/ERROR <──┘
//! ```
//!
//! The caller's node owns the call: it keeps the pending entry, runs the call timeout, turns
//! CANCEL and the caller leaving into [`RemoteCancel`]s, and gives the caller exactly one
//! final RESULT or ERROR — whichever of a final answer, a timeout, a cancel or
//! [`Router::node_gone`](crate::Router::node_gone) comes first; anything later for that key
//! is dropped. The callee's node owns the INVOCATION: it picks the callee, applies the
//! registration's `disclose_caller` and the callee's features (progressive results, call
//! canceling), and sends every answer back, addressed to [`CallKey::origin`].
//!
//! What crosses nodes and what does not:
//!
//! - **Exact registrations only.** A node announces ([`Action::Registered`](crate::Action::Registered))
//!   the [`procedure_subject`] of each procedure it has an exact registration for, and a
//!   CALL with no local match is sent to the subject of its procedure. Prefix and wildcard
//!   registrations serve the calls of their own node only: NATS cannot tell which of several
//!   overlapping patterns on different nodes wins (WAMP's exact-then-longest-prefix-then-
//!   wildcard order), and a queue group per pattern subject could deliver one call twice.
//! - **Local first.** A node with any matching registration (exact, prefix or wildcard)
//!   serves the call itself; only a call with no local match goes to the cluster. So a local
//!   prefix registration takes a call that an exact registration on another node would take
//!   on a single router.
//! - **Shared registrations.** Within a node the registration's `invoke` policy picks the
//!   callee (`roundrobin`, `random`, `first`, `last`). Across nodes the transport's queue
//!   group picks the node, at random as NATS does: a `first` or `roundrobin` registration
//!   split over nodes is `first` or `roundrobin` per node, not cluster-wide. `single` is
//!   per node too: two nodes may each hold a `single` registration of the same procedure.
//! - **Meta procedures** (`wamp.*`) are answered by the caller's node, about that node, and
//!   never forwarded.
//!
//! Subjects: a call to `procedure` in `realm` is sent to
//! `PREFIX-rpc.<realm>.<component>...` ([`procedure_subject`]), escaped as topics are
//! ([`escape_token`]). The `-rpc` on the prefix's last token keeps procedure subjects apart
//! from every topic and interest subject, which start with the prefix itself.

use super::{bad, escape_token, payload_from_values, payload_values, ClusterDecodeError};
use crate::message::Payload;
use crate::serializer::Serializer;
use crate::value::{Dict, Value};

/// The NATS subject a call to `procedure` (a concrete URI) in `realm` is sent to, and that a
/// node with an exact registration of `procedure` subscribes to (in a queue group, so that
/// one node takes each call): `PREFIX-rpc.<realm>.<component>...`, each token escaped with
/// [`escape_token`]. `prefix` is [`ClusterConfig::subject_prefix`](super::ClusterConfig).
pub fn procedure_subject(prefix: &str, realm: &str, procedure: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + realm.len() + procedure.len() + 8);
    out.push_str(prefix);
    out.push_str("-rpc.");
    escape_token(&mut out, realm);
    for c in procedure.split('.') {
        out.push('.');
        escape_token(&mut out, c);
    }
    out
}

/// Names a call across the cluster: the caller's router ([`Router::origin`](crate::Router::origin))
/// and a number that router never uses twice. Answers go to the node whose router is
/// `origin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallKey {
    /// The caller's router.
    pub origin: u64,
    /// Counts up from 1 per caller's router.
    pub call: u64,
}

/// The caller of a remote call. It always travels (the callee's registration may ask for
/// `disclose_caller`, which only the callee's node knows); [`RemoteCall::disclose_me`] says
/// whether the caller asked for it to be disclosed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Its session id (unique across the cluster with [`ClusterConfig::node_id`](super::ClusterConfig)).
    pub session: u64,
    /// Its authid.
    pub authid: String,
    /// Its authrole.
    pub authrole: String,
}

/// A CALL that no local registration matched, for a node that has one: emitted as
/// [`Action::RemoteCall`](crate::Action::RemoteCall), taken by
/// [`Router::invoke_remote`](crate::Router::invoke_remote).
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteCall {
    /// The call's name; answers are addressed to it.
    pub key: CallKey,
    /// The realm of the caller, and of the callee.
    pub realm: String,
    /// The concrete procedure URI called.
    pub procedure: String,
    /// Who calls.
    pub caller: Caller,
    /// The callee sees the caller (`caller`, `caller_authid`, `caller_authrole` in
    /// INVOCATION details): the CALL's `disclose_me`, or the caller's role's `disclose`.
    pub disclose_me: bool,
    /// The CALL's `receive_progress`: the caller takes progressive results.
    pub receive_progress: bool,
    /// The CALL's `timeout` in milliseconds as given (0: none). The caller's node runs it
    /// and sends a [`RemoteCancel`] when it expires; it travels for the callee side's
    /// information.
    pub timeout: u64,
    /// Payload passthru keys (`enc_algo`, `ppt_scheme`, ...) copied into INVOCATION details.
    pub passthru: Dict,
    /// Arguments and keyword arguments, or the opaque payload, untouched.
    pub payload: Payload,
}

/// What a callee's node says about a call: emitted as
/// [`Action::RemoteAnswer`](crate::Action::RemoteAnswer), taken by the caller's node's
/// [`Router::remote_answer`](crate::Router::remote_answer).
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteAnswer {
    /// The call answered; send it to the node whose router is `key.origin`.
    pub key: CallKey,
    /// The callee's node ([`Router::origin`](crate::Router::origin)): the caller's node fails
    /// the call if [`Router::node_gone`](crate::Router::node_gone) names it.
    pub node: u64,
    /// What happened.
    pub answer: Answer,
}

/// The kinds of [`RemoteAnswer`].
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// The callee's node sent the INVOCATION: it serves the call from now on. Comes first.
    Accepted,
    /// A YIELD: a progressive result (`progress`) or the final one.
    Result {
        /// A progressive result; more follow.
        progress: bool,
        /// RESULT details: the YIELD's payload passthru keys.
        details: Dict,
        /// The YIELD's payload, untouched.
        payload: Payload,
    },
    /// The callee's ERROR, or the callee's node's (`wamp.error.no_such_procedure`,
    /// `wamp.error.canceled` when the callee left); final.
    Error {
        /// The error URI.
        error: String,
        /// ERROR details, as the callee gave them.
        details: Dict,
        /// Its arguments, untouched.
        payload: Payload,
    },
}

impl Answer {
    /// Whether this answer ends the call.
    pub fn is_final(&self) -> bool {
        match self {
            Answer::Accepted => false,
            Answer::Result { progress, .. } => !progress,
            Answer::Error { .. } => true,
        }
    }
}

/// How a call is canceled (WAMP spec, "Call Canceling").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelMode {
    /// The caller is answered at once; the callee is not interrupted, its answer dropped.
    Skip,
    /// The callee is interrupted, and its answer (usually ERROR `wamp.error.canceled`) ends
    /// the call.
    Kill,
    /// The callee is interrupted, the caller answered at once.
    KillNoWait,
}

impl CancelMode {
    /// The mode a CANCEL's option names; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "skip" => CancelMode::Skip,
            "kill" => CancelMode::Kill,
            "killnowait" => CancelMode::KillNoWait,
            _ => return None,
        })
    }

    /// The name WAMP gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            CancelMode::Skip => "skip",
            CancelMode::Kill => "kill",
            CancelMode::KillNoWait => "killnowait",
        }
    }
}

/// The caller's node gives up on a call (CANCEL, the call timeout, the caller left): emitted
/// as [`Action::RemoteCancel`](crate::Action::RemoteCancel), taken by the callee's node's
/// [`Router::cancel_remote`](crate::Router::cancel_remote).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteCancel {
    /// The call.
    pub key: CallKey,
    /// Its realm.
    pub realm: String,
    /// The node serving it, if it has said so ([`Answer::Accepted`]); `None`: not known yet,
    /// the transport sends the cancel to every node (a node ignores calls it does not serve).
    pub node: Option<u64>,
    /// How. With [`CancelMode::Kill`] the caller's node waits for the callee's answer.
    pub mode: CancelMode,
    /// The INTERRUPT's `reason`: `wamp.error.timeout` for a timeout, else none.
    pub reason: Option<String>,
}

/// "This node is gone": for a transport that spreads node deaths as messages. The receiving
/// router takes it as [`Router::node_gone`](crate::Router::node_gone)`(node)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeGone {
    /// The router that is gone ([`Router::origin`](crate::Router::origin)).
    pub node: u64,
}

/// Any of the dealer's cluster messages, as [`RpcMessage::decode`] tells them apart: for a
/// transport that carries several kinds on one subject.
#[derive(Debug, Clone, PartialEq)]
pub enum RpcMessage {
    /// A [`RemoteCall`].
    Call(RemoteCall),
    /// A [`RemoteAnswer`].
    Answer(RemoteAnswer),
    /// A [`RemoteCancel`].
    Cancel(RemoteCancel),
    /// A [`NodeGone`].
    NodeGone(NodeGone),
}

/// The first element of each encoded message: what it is, and which version of the layout.
const CALL_TAG: &str = "sockeye.wamp.call/1";
const ANSWER_TAG: &str = "sockeye.wamp.answer/1";
const CANCEL_TAG: &str = "sockeye.wamp.cancel/1";
const NODE_GONE_TAG: &str = "sockeye.wamp.node_gone/1";

fn encode(items: Vec<Value>) -> Vec<u8> {
    Serializer::MsgPack.encode_value(&Value::List(items))
}

/// The tag of an encoded message, and the elements after it.
fn envelope(bytes: &[u8]) -> Result<(String, Vec<Value>), ClusterDecodeError> {
    let Value::List(mut items) = Serializer::MsgPack
        .decode_value(bytes)
        .map_err(|e| ClusterDecodeError(e.0))?
    else {
        return Err(bad("envelope"));
    };
    if items.is_empty() {
        return Err(bad("envelope length"));
    }
    match items.remove(0) {
        Value::Str(tag) => Ok((tag, items)),
        _ => Err(bad("tag")),
    }
}

fn fields<const N: usize>(items: Vec<Value>) -> Result<[Value; N], ClusterDecodeError> {
    <[Value; N]>::try_from(items).map_err(|_| bad("envelope length"))
}

fn string(v: Value, what: &str) -> Result<String, ClusterDecodeError> {
    match v {
        Value::Str(s) => Ok(s),
        _ => Err(bad(what)),
    }
}

fn dict(v: Value, what: &str) -> Result<Dict, ClusterDecodeError> {
    match v {
        Value::Dict(d) => Ok(d),
        _ => Err(bad(what)),
    }
}

fn number(v: &Value, what: &str) -> Result<u64, ClusterDecodeError> {
    v.as_u64().ok_or_else(|| bad(what))
}

fn flag(v: &Value, what: &str) -> Result<bool, ClusterDecodeError> {
    v.as_bool().ok_or_else(|| bad(what))
}

fn key(origin: &Value, call: &Value) -> Result<CallKey, ClusterDecodeError> {
    Ok(CallKey {
        origin: number(origin, "origin")?,
        call: number(call, "call")?,
    })
}

impl RemoteCall {
    /// The call as bytes: one flat MessagePack array, so that its payload nests no deeper
    /// than in the CALL it came from.
    pub fn encode(&self) -> Vec<u8> {
        let [kind, a, k] = payload_values(&self.payload);
        encode(vec![
            CALL_TAG.into(),
            self.key.origin.into(),
            self.key.call.into(),
            self.realm.as_str().into(),
            self.procedure.as_str().into(),
            self.caller.session.into(),
            self.caller.authid.as_str().into(),
            self.caller.authrole.as_str().into(),
            self.disclose_me.into(),
            self.receive_progress.into(),
            self.timeout.into(),
            Value::Dict(self.passthru.clone()),
            kind,
            a,
            k,
        ])
    }

    /// A call from [`RemoteCall::encode`]'s bytes; anything else is an error, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<Self, ClusterDecodeError> {
        let (tag, items) = envelope(bytes)?;
        if tag != CALL_TAG {
            return Err(bad("tag"));
        }
        Self::from_items(items)
    }

    fn from_items(items: Vec<Value>) -> Result<Self, ClusterDecodeError> {
        let [origin, call, realm, procedure, session, authid, authrole, disclose_me, receive_progress, timeout, passthru, kind, a, k] =
            fields(items)?;
        Ok(RemoteCall {
            key: key(&origin, &call)?,
            realm: string(realm, "realm")?,
            procedure: string(procedure, "procedure")?,
            caller: Caller {
                session: number(&session, "caller")?,
                authid: string(authid, "caller_authid")?,
                authrole: string(authrole, "caller_authrole")?,
            },
            disclose_me: flag(&disclose_me, "disclose_me")?,
            receive_progress: flag(&receive_progress, "receive_progress")?,
            timeout: number(&timeout, "timeout")?,
            passthru: dict(passthru, "passthru")?,
            payload: payload_from_values(kind, a, k)?,
        })
    }
}

impl RemoteAnswer {
    /// The answer as bytes: one flat MessagePack array.
    pub fn encode(&self) -> Vec<u8> {
        let (kind, progress, error, details, payload) = match &self.answer {
            Answer::Accepted => (0u64, false, Value::Null, None, None),
            Answer::Result {
                progress,
                details,
                payload,
            } => (1, *progress, Value::Null, Some(details), Some(payload)),
            Answer::Error {
                error,
                details,
                payload,
            } => (
                2,
                false,
                error.as_str().into(),
                Some(details),
                Some(payload),
            ),
        };
        let [pkind, a, k] = payload_values(payload.unwrap_or(&Payload::Empty));
        encode(vec![
            ANSWER_TAG.into(),
            self.key.origin.into(),
            self.key.call.into(),
            self.node.into(),
            kind.into(),
            progress.into(),
            error,
            Value::Dict(details.cloned().unwrap_or_default()),
            pkind,
            a,
            k,
        ])
    }

    /// An answer from [`RemoteAnswer::encode`]'s bytes; anything else is an error, never a
    /// panic.
    pub fn decode(bytes: &[u8]) -> Result<Self, ClusterDecodeError> {
        let (tag, items) = envelope(bytes)?;
        if tag != ANSWER_TAG {
            return Err(bad("tag"));
        }
        Self::from_items(items)
    }

    fn from_items(items: Vec<Value>) -> Result<Self, ClusterDecodeError> {
        let [origin, call, node, kind, progress, error, details, pkind, a, k] = fields(items)?;
        let progress = flag(&progress, "progress")?;
        let details = dict(details, "details")?;
        let payload = payload_from_values(pkind, a, k)?;
        let answer = match (kind.as_u64(), error) {
            (Some(0), Value::Null)
                if !progress && details.is_empty() && payload == Payload::Empty =>
            {
                Answer::Accepted
            }
            (Some(1), Value::Null) => Answer::Result {
                progress,
                details,
                payload,
            },
            (Some(2), Value::Str(error)) if !progress => Answer::Error {
                error,
                details,
                payload,
            },
            _ => return Err(bad("answer")),
        };
        Ok(RemoteAnswer {
            key: key(&origin, &call)?,
            node: number(&node, "node")?,
            answer,
        })
    }
}

impl RemoteCancel {
    /// The cancel as bytes: one MessagePack array.
    pub fn encode(&self) -> Vec<u8> {
        encode(vec![
            CANCEL_TAG.into(),
            self.key.origin.into(),
            self.key.call.into(),
            self.realm.as_str().into(),
            self.node.map_or(Value::Null, Value::from),
            self.mode.as_str().into(),
            self.reason.as_deref().map_or(Value::Null, Value::from),
        ])
    }

    /// A cancel from [`RemoteCancel::encode`]'s bytes; anything else is an error, never a
    /// panic.
    pub fn decode(bytes: &[u8]) -> Result<Self, ClusterDecodeError> {
        let (tag, items) = envelope(bytes)?;
        if tag != CANCEL_TAG {
            return Err(bad("tag"));
        }
        Self::from_items(items)
    }

    fn from_items(items: Vec<Value>) -> Result<Self, ClusterDecodeError> {
        let [origin, call, realm, node, mode, reason] = fields(items)?;
        Ok(RemoteCancel {
            key: key(&origin, &call)?,
            realm: string(realm, "realm")?,
            node: match node {
                Value::Null => None,
                v => Some(number(&v, "node")?),
            },
            mode: mode
                .as_str()
                .and_then(CancelMode::parse)
                .ok_or_else(|| bad("mode"))?,
            reason: match reason {
                Value::Null => None,
                v => Some(string(v, "reason")?),
            },
        })
    }
}

impl NodeGone {
    /// The message as bytes: one MessagePack array.
    pub fn encode(&self) -> Vec<u8> {
        encode(vec![NODE_GONE_TAG.into(), self.node.into()])
    }

    /// A message from [`NodeGone::encode`]'s bytes; anything else is an error, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<Self, ClusterDecodeError> {
        let (tag, items) = envelope(bytes)?;
        if tag != NODE_GONE_TAG {
            return Err(bad("tag"));
        }
        Self::from_items(items)
    }

    fn from_items(items: Vec<Value>) -> Result<Self, ClusterDecodeError> {
        let [node] = fields(items)?;
        Ok(NodeGone {
            node: number(&node, "node")?,
        })
    }
}

impl RpcMessage {
    /// The message as bytes, as its own type encodes it.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            RpcMessage::Call(m) => m.encode(),
            RpcMessage::Answer(m) => m.encode(),
            RpcMessage::Cancel(m) => m.encode(),
            RpcMessage::NodeGone(m) => m.encode(),
        }
    }

    /// Whichever of the four messages `bytes` encode; anything else is an error, never a
    /// panic.
    pub fn decode(bytes: &[u8]) -> Result<Self, ClusterDecodeError> {
        let (tag, items) = envelope(bytes)?;
        Ok(match tag.as_str() {
            CALL_TAG => RpcMessage::Call(RemoteCall::from_items(items)?),
            ANSWER_TAG => RpcMessage::Answer(RemoteAnswer::from_items(items)?),
            CANCEL_TAG => RpcMessage::Cancel(RemoteCancel::from_items(items)?),
            NODE_GONE_TAG => RpcMessage::NodeGone(NodeGone::from_items(items)?),
            _ => return Err(bad("tag")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{interest_subject, topic_subject};
    use crate::uri::MatchPolicy;

    fn payloads() -> Vec<Payload> {
        vec![
            Payload::Empty,
            Payload::Args(vec![]),
            Payload::Args(vec![Value::from(1), Value::Float(0.5)]),
            Payload::ArgsKwargs(
                vec![Value::Bytes(vec![0, 1])],
                Dict::new().with("k", Value::List(vec![Value::Null])),
            ),
            Payload::Opaque(Value::Bytes(vec![9; 3])),
        ]
    }

    fn key() -> CallKey {
        CallKey {
            origin: u64::MAX - 1,
            call: 7,
        }
    }

    fn call(payload: Payload) -> RemoteCall {
        RemoteCall {
            key: key(),
            realm: "realm1".into(),
            procedure: "com.myapp.add".into(),
            caller: Caller {
                session: 1 << 40,
                authid: "alice".into(),
                authrole: "user".into(),
            },
            disclose_me: true,
            receive_progress: true,
            timeout: 1500,
            passthru: Dict::new().with("ppt_scheme", "x"),
            payload,
        }
    }

    fn answers() -> Vec<RemoteAnswer> {
        let mut v = vec![RemoteAnswer {
            key: key(),
            node: 3,
            answer: Answer::Accepted,
        }];
        for payload in payloads() {
            for progress in [true, false] {
                v.push(RemoteAnswer {
                    key: key(),
                    node: 3,
                    answer: Answer::Result {
                        progress,
                        details: Dict::new().with("enc_algo", "cryptobox"),
                        payload: payload.clone(),
                    },
                });
            }
            v.push(RemoteAnswer {
                key: key(),
                node: u64::MAX,
                answer: Answer::Error {
                    error: "com.myapp.error".into(),
                    details: Dict::new(),
                    payload,
                },
            });
        }
        v
    }

    fn cancels() -> Vec<RemoteCancel> {
        [CancelMode::Skip, CancelMode::Kill, CancelMode::KillNoWait]
            .into_iter()
            .flat_map(|mode| {
                [
                    RemoteCancel {
                        key: key(),
                        realm: "r".into(),
                        node: None,
                        mode,
                        reason: None,
                    },
                    RemoteCancel {
                        key: key(),
                        realm: "r".into(),
                        node: Some(0),
                        mode,
                        reason: Some("wamp.error.timeout".into()),
                    },
                ]
            })
            .collect()
    }

    #[test]
    fn every_message_decodes_to_what_was_encoded_alone_and_as_an_rpc_message() {
        for payload in payloads() {
            let c = call(payload);
            assert_eq!(RemoteCall::decode(&c.encode()), Ok(c.clone()));
            assert_eq!(RpcMessage::decode(&c.encode()), Ok(RpcMessage::Call(c)));
        }
        for a in answers() {
            assert_eq!(RemoteAnswer::decode(&a.encode()), Ok(a.clone()));
            assert_eq!(RpcMessage::decode(&a.encode()), Ok(RpcMessage::Answer(a)));
        }
        for c in cancels() {
            assert_eq!(RemoteCancel::decode(&c.encode()), Ok(c.clone()));
            assert_eq!(RpcMessage::decode(&c.encode()), Ok(RpcMessage::Cancel(c)));
        }
        let g = NodeGone { node: u64::MAX };
        assert_eq!(NodeGone::decode(&g.encode()), Ok(g));
        assert_eq!(RpcMessage::decode(&g.encode()), Ok(RpcMessage::NodeGone(g)));
    }

    #[test]
    fn one_kind_does_not_decode_as_another() {
        let c = call(Payload::Empty).encode();
        assert!(RemoteAnswer::decode(&c).is_err());
        assert!(RemoteCancel::decode(&c).is_err());
        assert!(NodeGone::decode(&c).is_err());
        assert!(crate::ClusterEvent::decode(&c).is_err());
        let e = Serializer::MsgPack.encode_value(&Value::List(vec![
            "sockeye.wamp.event/1".into(),
            Value::from(1u64),
        ]));
        assert!(RpcMessage::decode(&e).is_err());
    }

    #[test]
    fn garbage_does_not_decode_as_a_message() {
        let mut all: Vec<Vec<u8>> = vec![call(payloads().pop().unwrap()).encode()];
        all.extend(answers().iter().map(RemoteAnswer::encode));
        all.extend(cancels().iter().map(RemoteCancel::encode));
        all.push(NodeGone { node: 5 }.encode());
        for good in all {
            // Every truncation is an error; every single-byte change an error or a message.
            for n in 0..good.len() {
                assert!(RpcMessage::decode(&good[..n]).is_err());
            }
            for i in 0..good.len() {
                for b in [0x00, 0xc0, 0xc1, 0xc3, 0xff, 0x90, 0xdc] {
                    let mut bad = good.clone();
                    bad[i] = b;
                    let _ = RpcMessage::decode(&bad);
                    let _ = RemoteCall::decode(&bad);
                    let _ = RemoteAnswer::decode(&bad);
                    let _ = RemoteCancel::decode(&bad);
                }
            }
        }
        assert!(RpcMessage::decode(b"").is_err());
        assert!(RpcMessage::decode(b"\x90").is_err());
        assert!(RpcMessage::decode(b"\x91\xa1x").is_err());
        // An Accepted with a payload, an error without a URI: not answers this version
        // encodes.
        let answer = |kind: u64, error: Value, pkind: u64, a: Value| {
            Serializer::MsgPack.encode_value(&Value::List(vec![
                ANSWER_TAG.into(),
                1u64.into(),
                1u64.into(),
                1u64.into(),
                kind.into(),
                false.into(),
                error,
                Value::Dict(Dict::new()),
                pkind.into(),
                a,
                Value::Null,
            ]))
        };
        assert!(RemoteAnswer::decode(&answer(0, Value::Null, 0, Value::Null)).is_ok());
        assert!(RemoteAnswer::decode(&answer(0, Value::Null, 1, Value::List(vec![]))).is_err());
        assert!(RemoteAnswer::decode(&answer(2, Value::Null, 0, Value::Null)).is_err());
        assert!(RemoteAnswer::decode(&answer(3, Value::Null, 0, Value::Null)).is_err());
    }

    #[test]
    fn procedure_subjects_are_escaped_and_never_a_topic_or_interest_subject() {
        assert_eq!(
            procedure_subject("sockeye.wamp", "realm1", "com.myapp.add"),
            "sockeye.wamp-rpc.realm1.com.myapp.add"
        );
        assert_eq!(
            procedure_subject("sw", "a.b", "com.*.>.x y"),
            "sw-rpc.a%2Eb.com.%2A.%3E.x%20y"
        );
        // A realm named like the -rpc token cannot make a topic subject a procedure subject:
        // the prefix's own last token differs.
        for realm in ["rpc", "sw-rpc", "realm1"] {
            for uri in ["realm1.com.x", "com.x", "x"] {
                let p = procedure_subject("sw", "realm1", "com.x");
                assert_ne!(topic_subject("sw", realm, uri), p);
                for policy in [MatchPolicy::Prefix, MatchPolicy::Wildcard] {
                    let i = interest_subject("sw", realm, policy, "");
                    assert!(!p.starts_with(i.trim_end_matches('>')), "{i} covers {p}");
                }
            }
        }
    }
}
