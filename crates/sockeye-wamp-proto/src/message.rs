//! WAMP messages: the typed form of the wire lists, with every field validated on the way in.
//!
//! A message on the wire is a list whose first element is the message code (WAMP spec,
//! "Message Codes and Direction"): `[PUBLISH, Request|id, Options|dict, Topic|uri,
//! Arguments|list, ArgumentsKw|dict]`. [`Message::from_value`] checks the arity and the type of
//! every element, the range of every id, and the type of every option or detail key this
//! implementation knows; keys it does not know are kept and ignored, as the spec asks
//! ("Implementations MUST ignore unknown Options and Details"). Anything else is a
//! [`ProtocolViolation`], which a router answers with ABORT `wamp.error.protocol_violation`.
//!
//! URIs are only checked to be strings here: whether a URI is *valid* depends on the router's
//! URI check, and an invalid one is answered with ERROR `wamp.error.invalid_uri`, not ABORT.

use std::fmt;

use crate::value::{Dict, Value};

/// The largest id: ids are integers in `[1, 2^53]` so they survive a round trip through an
/// IEEE-754 double (JavaScript).
pub const MAX_ID: u64 = 1 << 53;

/// Message codes, the first element of every message on the wire (WAMP spec, "Message Codes
/// and Direction").
pub mod code {
    /// Client to router: join a realm.
    pub const HELLO: u64 = 1;
    /// Router to client: the session is open.
    pub const WELCOME: u64 = 2;
    /// Either way: the session is refused or torn down before it opened.
    pub const ABORT: u64 = 3;
    /// Router to client: prove who you are (ticket, WAMP-CRA, cryptosign).
    pub const CHALLENGE: u64 = 4;
    /// Client to router: the answer to a CHALLENGE.
    pub const AUTHENTICATE: u64 = 5;
    /// Either way: close the session; the peer answers with GOODBYE too.
    pub const GOODBYE: u64 = 6;
    /// A request failed; sent by the router, or by a callee failing an INVOCATION.
    pub const ERROR: u64 = 8;
    /// Publisher to router: publish an event to a topic.
    pub const PUBLISH: u64 = 16;
    /// Router to publisher: the acknowledgement a PUBLISH asked for.
    pub const PUBLISHED: u64 = 17;
    /// Subscriber to router: subscribe to a topic.
    pub const SUBSCRIBE: u64 = 32;
    /// Router to subscriber: the subscription exists.
    pub const SUBSCRIBED: u64 = 33;
    /// Subscriber to router: end a subscription.
    pub const UNSUBSCRIBE: u64 = 34;
    /// Router to subscriber: the subscription is gone.
    pub const UNSUBSCRIBED: u64 = 35;
    /// Router to subscriber: an event published to a subscribed topic.
    pub const EVENT: u64 = 36;
    /// Caller to router: call a procedure.
    pub const CALL: u64 = 48;
    /// Caller to router: cancel a CALL still running.
    pub const CANCEL: u64 = 49;
    /// Router to caller: the result (or a progressive part of it) of a CALL.
    pub const RESULT: u64 = 50;
    /// Callee to router: register a procedure.
    pub const REGISTER: u64 = 64;
    /// Router to callee: the registration exists.
    pub const REGISTERED: u64 = 65;
    /// Callee to router: end a registration.
    pub const UNREGISTER: u64 = 66;
    /// Router to callee: the registration is gone.
    pub const UNREGISTERED: u64 = 67;
    /// Router to callee: run a registered procedure for a caller.
    pub const INVOCATION: u64 = 68;
    /// Router to callee: stop an INVOCATION whose CALL was cancelled or timed out.
    pub const INTERRUPT: u64 = 69;
    /// Callee to router: the result (or a progressive part of it) of an INVOCATION.
    pub const YIELD: u64 = 70;
}

/// A message that breaks the protocol: wrong shape, wrong types, ids out of range, an unknown
/// message code. The text names the offending field; it is for people (and the ABORT's
/// `message` detail), not for matching.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProtocolViolation(pub String);

impl ProtocolViolation {
    /// A violation described by `text`, which should name the message and the field.
    pub fn new(text: impl Into<String>) -> Self {
        ProtocolViolation(text.into())
    }
}

type Result<T> = std::result::Result<T, ProtocolViolation>;

/// The application payload of PUBLISH, EVENT, CALL, INVOCATION, YIELD, RESULT and ERROR.
///
/// On the wire, `kwargs` can only be sent after `args` (as `[]` when there are none); the
/// variants keep exactly what was received, so a message re-encodes to the same list.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Payload {
    /// Neither `Arguments` nor `ArgumentsKw` was sent.
    #[default]
    Empty,
    /// Positional arguments only (`Arguments|list`), possibly an empty list.
    Args(Vec<Value>),
    /// Positional and keyword arguments (`Arguments|list, ArgumentsKw|dict`).
    ArgsKwargs(Vec<Value>, Dict),
    /// Payload passthru mode (E2E encryption, MQTT bridging): one opaque byte string (or, as
    /// some senders do, a string) in place of `args`, announced by `enc_algo` or `ppt_scheme`
    /// in the options. Routers forward it untouched.
    Opaque(Value),
}

impl Payload {
    /// See [`Value::size_hint`].
    pub fn size_hint(&self) -> usize {
        match self {
            Payload::Empty => 0,
            Payload::Args(args) => 2 + args.iter().map(Value::size_hint).sum::<usize>(),
            Payload::ArgsKwargs(args, kwargs) => {
                2 + args.iter().map(Value::size_hint).sum::<usize>() + kwargs.size_hint()
            }
            Payload::Opaque(v) => v.size_hint(),
        }
    }

    /// The shortest payload that carries `args` and `kwargs`: what a sender should use, since
    /// empty trailing elements are left off the wire.
    pub fn new(args: Vec<Value>, kwargs: Dict) -> Self {
        match (args.is_empty(), kwargs.is_empty()) {
            (true, true) => Payload::Empty,
            (_, true) => Payload::Args(args),
            _ => Payload::ArgsKwargs(args, kwargs),
        }
    }

    /// The positional arguments, empty for [`Payload::Empty`] and [`Payload::Opaque`].
    pub fn args(&self) -> &[Value] {
        match self {
            Payload::Args(a) | Payload::ArgsKwargs(a, _) => a,
            _ => &[],
        }
    }

    /// The keyword arguments, if any were sent.
    pub fn kwargs(&self) -> Option<&Dict> {
        match self {
            Payload::ArgsKwargs(_, k) => Some(k),
            _ => None,
        }
    }
}

/// One WAMP message. Ids are `u64` in `[1, 2^53]`; `Dict` fields are the options or details
/// exactly as received (validated, unknown keys kept).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Message {
    /// `[HELLO, Realm|uri, Details|dict]`: a client asks to join a realm.
    Hello {
        /// The realm the client wants to join.
        realm: String,
        /// The client's `roles` (required) and features, and optionally `authmethods`,
        /// `authid`, `authextra` and `agent`.
        details: Dict,
    },
    /// `[WELCOME, Session|id, Details|dict]`: the router opened the session.
    Welcome {
        /// The session id the router chose.
        session: u64,
        /// The router's `roles` (required) and, after authentication, `authid`, `authrole`,
        /// `authmethod`, `authprovider` and `authextra`.
        details: Dict,
    },
    /// `[ABORT, Details|dict, Reason|uri]`: the session is refused (or dropped) before it opened.
    Abort {
        /// Details such as a human-readable `message`.
        details: Dict,
        /// Why, as a URI such as `wamp.error.no_such_realm` or `wamp.error.protocol_violation`.
        reason: String,
    },
    /// `[CHALLENGE, AuthMethod|string, Extra|dict]`: the router asks the client to authenticate.
    Challenge {
        /// The authentication method the router picked from the HELLO's `authmethods`.
        method: String,
        /// What the method needs to answer, e.g. the WAMP-CRA `challenge` or the cryptosign
        /// challenge.
        extra: Dict,
    },
    /// `[AUTHENTICATE, Signature|string, Extra|dict]`: the client's answer to a CHALLENGE.
    Authenticate {
        /// The ticket, or the signature the method computes over the challenge.
        signature: String,
        /// Method-specific extras; usually empty.
        extra: Dict,
    },
    /// `[GOODBYE, Details|dict, Reason|uri]`: closes an open session; the peer answers in kind.
    Goodbye {
        /// Details such as a human-readable `message`.
        details: Dict,
        /// Why, e.g. `wamp.close.normal` or `wamp.close.system_shutdown`, and
        /// `wamp.close.goodbye_and_out` in the answer.
        reason: String,
    },
    /// `[ERROR, REQUEST.Type|int, REQUEST.Request|id, Details|dict, Error|uri, Arguments?,
    /// ArgumentsKw?]`: a request failed.
    Error {
        /// The [`code`] of the failed request (SUBSCRIBE, CALL, INVOCATION, ...).
        request_type: u64,
        /// The request id the failed request carried.
        request: u64,
        /// Details of the error; usually empty.
        details: Dict,
        /// The error URI, e.g. `wamp.error.no_such_procedure` or an application's own.
        error: String,
        /// Application data about the error, passed from a callee to the caller untouched.
        payload: Payload,
    },
    /// `[PUBLISH, Request|id, Options|dict, Topic|uri, Arguments?, ArgumentsKw?]`: a publisher
    /// publishes an event.
    Publish {
        /// The request id the publisher chose, echoed in PUBLISHED or ERROR.
        request: u64,
        /// Options the publisher set, e.g. `acknowledge`, `exclude_me`, `eligible`, `retain`.
        options: Dict,
        /// The topic published to.
        topic: String,
        /// The event's payload, delivered to every subscriber.
        payload: Payload,
    },
    /// `[PUBLISHED, PUBLISH.Request|id, Publication|id]`: acknowledges a PUBLISH that set
    /// `acknowledge`.
    Published {
        /// The request id of the PUBLISH.
        request: u64,
        /// The publication id the router chose; subscribers see it in EVENT.
        publication: u64,
    },
    /// `[SUBSCRIBE, Request|id, Options|dict, Topic|uri]`: a client subscribes to a topic.
    Subscribe {
        /// The request id the subscriber chose, echoed in SUBSCRIBED or ERROR.
        request: u64,
        /// Options the subscriber set, e.g. `match` (`exact`, `prefix`, `wildcard`) or
        /// `get_retained`.
        options: Dict,
        /// The topic, or the topic pattern under the `match` policy.
        topic: String,
    },
    /// `[SUBSCRIBED, SUBSCRIBE.Request|id, Subscription|id]`: the subscription exists.
    Subscribed {
        /// The request id of the SUBSCRIBE.
        request: u64,
        /// The subscription id the router chose, shared by every session subscribed to the
        /// same topic and policy; EVENTs carry it.
        subscription: u64,
    },
    /// `[UNSUBSCRIBE, Request|id, SUBSCRIBED.Subscription|id]`: a client ends a subscription.
    Unsubscribe {
        /// The request id the subscriber chose, echoed in UNSUBSCRIBED or ERROR.
        request: u64,
        /// The subscription id the router gave in SUBSCRIBED.
        subscription: u64,
    },
    /// `[UNSUBSCRIBED, UNSUBSCRIBE.Request|id]`: the subscription is gone.
    Unsubscribed {
        /// The request id of the UNSUBSCRIBE.
        request: u64,
    },
    /// `[EVENT, SUBSCRIBED.Subscription|id, PUBLISHED.Publication|id, Details|dict,
    /// Arguments?, ArgumentsKw?]`: the router delivers a published event to a subscriber.
    Event {
        /// The subscription id (from SUBSCRIBED) the event matched.
        subscription: u64,
        /// The publication id the router chose for the PUBLISH.
        publication: u64,
        /// Details the router set, e.g. `topic` (for pattern subscriptions), `publisher` (when
        /// disclosed) or `retained`.
        details: Dict,
        /// The payload as the publisher sent it.
        payload: Payload,
    },
    /// `[CALL, Request|id, Options|dict, Procedure|uri, Arguments?, ArgumentsKw?]`: a caller
    /// calls a procedure.
    Call {
        /// The request id the caller chose, echoed in RESULT or ERROR.
        request: u64,
        /// Options the caller set, e.g. `timeout` (ms), `receive_progress`, `disclose_me`.
        options: Dict,
        /// The procedure called.
        procedure: String,
        /// The call's arguments, passed to the callee in INVOCATION.
        payload: Payload,
    },
    /// `[CANCEL, CALL.Request|id, Options|dict]`: a caller cancels a call still running.
    Cancel {
        /// The request id of the CALL to cancel.
        request: u64,
        /// Options the caller set, e.g. `mode` (`skip`, `kill`, `killnowait`).
        options: Dict,
    },
    /// `[RESULT, CALL.Request|id, Details|dict, Arguments?, ArgumentsKw?]`: the result of a
    /// call, or one progressive part of it.
    Result {
        /// The request id of the CALL.
        request: u64,
        /// Details the router set, e.g. `progress` when more results follow.
        details: Dict,
        /// The result as the callee yielded it.
        payload: Payload,
    },
    /// `[REGISTER, Request|id, Options|dict, Procedure|uri]`: a callee registers a procedure.
    Register {
        /// The request id the callee chose, echoed in REGISTERED or ERROR.
        request: u64,
        /// Options the callee set, e.g. `match`, `invoke` (`single`, `roundrobin`, ...),
        /// `disclose_caller`, `concurrency`.
        options: Dict,
        /// The procedure, or the procedure pattern under the `match` policy.
        procedure: String,
    },
    /// `[REGISTERED, REGISTER.Request|id, Registration|id]`: the registration exists.
    Registered {
        /// The request id of the REGISTER.
        request: u64,
        /// The registration id the router chose; INVOCATIONs carry it.
        registration: u64,
    },
    /// `[UNREGISTER, Request|id, REGISTERED.Registration|id]`: a callee ends a registration.
    Unregister {
        /// The request id the callee chose, echoed in UNREGISTERED or ERROR.
        request: u64,
        /// The registration id the router gave in REGISTERED.
        registration: u64,
    },
    /// `[UNREGISTERED, UNREGISTER.Request|id]`: the registration is gone.
    Unregistered {
        /// The request id of the UNREGISTER.
        request: u64,
    },
    /// `[INVOCATION, Request|id, REGISTERED.Registration|id, Details|dict, Arguments?,
    /// ArgumentsKw?]`: the router asks a callee to run a procedure for a caller.
    Invocation {
        /// The request id the router chose for this invocation (not the caller's), echoed in
        /// YIELD or ERROR.
        request: u64,
        /// The registration id (from REGISTERED) the call matched.
        registration: u64,
        /// Details the router set, e.g. `procedure` (for pattern registrations), `caller`
        /// (when disclosed), `receive_progress`, `timeout`.
        details: Dict,
        /// The caller's arguments as sent.
        payload: Payload,
    },
    /// `[INTERRUPT, INVOCATION.Request|id, Options|dict]`: the router asks a callee to stop an
    /// invocation whose call was cancelled or timed out.
    Interrupt {
        /// The request id of the INVOCATION to stop.
        request: u64,
        /// Options the router set, e.g. `mode` and `reason`.
        options: Dict,
    },
    /// `[YIELD, INVOCATION.Request|id, Options|dict, Arguments?, ArgumentsKw?]`: a callee's
    /// result, or one progressive part of it.
    Yield {
        /// The request id of the INVOCATION.
        request: u64,
        /// Options the callee set, e.g. `progress` when more results follow.
        options: Dict,
        /// The result, passed to the caller in RESULT.
        payload: Payload,
    },
}

impl Message {
    /// About how many bytes the message takes serialized (see [`Value::size_hint`]): what a
    /// session's outbound queue is measured in.
    pub fn size_hint(&self) -> usize {
        use Message::*;
        // The code, ids and brackets.
        let fixed = 24;
        fixed
            + match self {
                Hello {
                    realm: s,
                    details: d,
                }
                | Abort {
                    reason: s,
                    details: d,
                }
                | Goodbye {
                    reason: s,
                    details: d,
                }
                | Challenge {
                    method: s,
                    extra: d,
                }
                | Authenticate {
                    signature: s,
                    extra: d,
                } => s.len() + d.size_hint(),
                Welcome { details, .. } => details.size_hint(),
                Error {
                    details,
                    error,
                    payload,
                    ..
                } => details.size_hint() + error.len() + payload.size_hint(),
                Publish {
                    options,
                    topic,
                    payload,
                    ..
                }
                | Call {
                    options,
                    procedure: topic,
                    payload,
                    ..
                } => options.size_hint() + topic.len() + payload.size_hint(),
                Subscribe { options, topic, .. }
                | Register {
                    options,
                    procedure: topic,
                    ..
                } => options.size_hint() + topic.len(),
                Event {
                    details, payload, ..
                }
                | Result {
                    details, payload, ..
                }
                | Invocation {
                    details, payload, ..
                }
                | Yield {
                    options: details,
                    payload,
                    ..
                } => details.size_hint() + payload.size_hint(),
                Cancel { options, .. } | Interrupt { options, .. } => options.size_hint(),
                Published { .. }
                | Subscribed { .. }
                | Unsubscribe { .. }
                | Unsubscribed { .. }
                | Registered { .. }
                | Unregister { .. }
                | Unregistered { .. } => 0,
            }
    }

    /// The message code, the first element on the wire.
    pub fn code(&self) -> u64 {
        use code::*;
        match self {
            Message::Hello { .. } => HELLO,
            Message::Welcome { .. } => WELCOME,
            Message::Abort { .. } => ABORT,
            Message::Challenge { .. } => CHALLENGE,
            Message::Authenticate { .. } => AUTHENTICATE,
            Message::Goodbye { .. } => GOODBYE,
            Message::Error { .. } => ERROR,
            Message::Publish { .. } => PUBLISH,
            Message::Published { .. } => PUBLISHED,
            Message::Subscribe { .. } => SUBSCRIBE,
            Message::Subscribed { .. } => SUBSCRIBED,
            Message::Unsubscribe { .. } => UNSUBSCRIBE,
            Message::Unsubscribed { .. } => UNSUBSCRIBED,
            Message::Event { .. } => EVENT,
            Message::Call { .. } => CALL,
            Message::Cancel { .. } => CANCEL,
            Message::Result { .. } => RESULT,
            Message::Register { .. } => REGISTER,
            Message::Registered { .. } => REGISTERED,
            Message::Unregister { .. } => UNREGISTER,
            Message::Unregistered { .. } => UNREGISTERED,
            Message::Invocation { .. } => INVOCATION,
            Message::Interrupt { .. } => INTERRUPT,
            Message::Yield { .. } => YIELD,
        }
    }

    /// The message type's name as the spec writes it (`"PUBLISH"`).
    pub fn name(&self) -> &'static str {
        code_name(self.code()).unwrap_or("?")
    }

    /// An ABORT with a reason and a human-readable `message` detail.
    pub fn abort(reason: &str, message: &str) -> Self {
        Message::Abort {
            details: Dict::new().with("message", message),
            reason: reason.to_owned(),
        }
    }

    /// An ERROR answering request `request` of type `request_type`.
    pub fn error(request_type: u64, request: u64, error: &str) -> Self {
        Message::Error {
            request_type,
            request,
            details: Dict::new(),
            error: error.to_owned(),
            payload: Payload::Empty,
        }
    }

    /// The wire form: a list starting with the message code.
    pub fn to_value(&self) -> Value {
        let mut v = vec![Value::from(self.code())];
        self.push_fields(&mut v);
        Value::List(v)
    }

    /// Parses and validates a decoded wire list.
    pub fn from_value(value: Value) -> Result<Message> {
        let Value::List(items) = value else {
            return Err(ProtocolViolation::new(format!(
                "a message must be a list, not a {}",
                value.type_name()
            )));
        };
        let Some(first) = items.first() else {
            return Err(ProtocolViolation::new("empty message"));
        };
        let Some(code) = first.as_u64() else {
            return Err(ProtocolViolation::new(format!(
                "message code must be an integer, not a {}",
                first.type_name()
            )));
        };
        let Some(name) = code_name(code) else {
            return Err(ProtocolViolation::new(format!(
                "unknown message code {code}"
            )));
        };
        let mut f = Fields {
            name,
            items: items.into_iter().skip(1).collect::<Vec<_>>().into_iter(),
            index: 0,
        };
        let msg = read_fields(code, &mut f)?;
        f.finish()?;
        Ok(msg)
    }
}

/// The wire layout of every message type, in one table: the fields after the message code, in
/// wire order, each with the [`Fields`] reader that takes it off the list and validates it
/// (its arguments are the field's name in error messages, then the known option or detail keys
/// to check, or the options that may announce an opaque payload). Writing goes by the field's
/// type ([`WireField`]), so one row serves both directions.
macro_rules! wire_layouts {
    ($($code:ident => $variant:ident { $($field:ident: $reader:ident($($arg:expr),*)),+ $(,)? })+) => {
        impl Message {
            /// Appends the fields after the message code.
            fn push_fields(&self, out: &mut Vec<Value>) {
                match self {
                    $(Message::$variant { $($field),+ } => { $(WireField::push_to($field, out);)+ })+
                }
            }
        }

        /// Reads and validates the fields of a message whose code `code_name` knows.
        fn read_fields(code: u64, f: &mut Fields) -> Result<Message> {
            Ok(match code {
                $(code::$code => {
                    $(let $field = f.$reader($($arg),*)?;)+
                    Message::$variant { $($field),+ }
                })+
                _ => unreachable!("code_name knows only the codes above"),
            })
        }
    };
}

wire_layouts! {
    HELLO => Hello { realm: string("Realm"), details: hello_details("Details") }
    WELCOME => Welcome { session: id("Session"), details: welcome_details("Details") }
    ABORT => Abort { details: checked("Details", CLOSE_DETAILS), reason: string("Reason") }
    CHALLENGE => Challenge { method: string("AuthMethod"), extra: dict("Extra") }
    AUTHENTICATE => Authenticate { signature: string("Signature"), extra: dict("Extra") }
    GOODBYE => Goodbye { details: checked("Details", CLOSE_DETAILS), reason: string("Reason") }
    ERROR => Error {
        request_type: request_type("REQUEST.Type"), request: id("REQUEST.Request"),
        details: dict("Details"), error: string("Error"), payload: payload(&details),
    }
    PUBLISH => Publish {
        request: id("Request"), options: checked("Options", PUBLISH_OPTIONS),
        topic: string("Topic"), payload: payload(&options),
    }
    PUBLISHED => Published { request: id("PUBLISH.Request"), publication: id("Publication") }
    SUBSCRIBE => Subscribe {
        request: id("Request"), options: checked("Options", SUBSCRIBE_OPTIONS), topic: string("Topic"),
    }
    SUBSCRIBED => Subscribed { request: id("SUBSCRIBE.Request"), subscription: id("Subscription") }
    UNSUBSCRIBE => Unsubscribe { request: id("Request"), subscription: id("SUBSCRIBED.Subscription") }
    UNSUBSCRIBED => Unsubscribed { request: id("UNSUBSCRIBE.Request") }
    EVENT => Event {
        subscription: id("SUBSCRIBED.Subscription"), publication: id("PUBLISHED.Publication"),
        details: checked("Details", EVENT_DETAILS), payload: payload(&details),
    }
    CALL => Call {
        request: id("Request"), options: checked("Options", CALL_OPTIONS),
        procedure: string("Procedure"), payload: payload(&options),
    }
    CANCEL => Cancel { request: id("Request"), options: checked("Options", CANCEL_OPTIONS) }
    RESULT => Result {
        request: id("CALL.Request"), details: checked("Details", RESULT_DETAILS), payload: payload(&details),
    }
    REGISTER => Register {
        request: id("Request"), options: checked("Options", REGISTER_OPTIONS), procedure: string("Procedure"),
    }
    REGISTERED => Registered { request: id("REGISTER.Request"), registration: id("Registration") }
    UNREGISTER => Unregister { request: id("Request"), registration: id("REGISTERED.Registration") }
    UNREGISTERED => Unregistered { request: id("UNREGISTER.Request") }
    INVOCATION => Invocation {
        request: id("Request"), registration: id("REGISTERED.Registration"),
        details: checked("Details", INVOCATION_DETAILS), payload: payload(&details),
    }
    INTERRUPT => Interrupt { request: id("Request"), options: checked("Options", CANCEL_OPTIONS) }
    YIELD => Yield {
        request: id("INVOCATION.Request"), options: checked("Options", YIELD_OPTIONS), payload: payload(&options),
    }
}

/// How a field of a [`Message`] goes on the wire.
trait WireField {
    fn push_to(&self, out: &mut Vec<Value>);
}

impl WireField for u64 {
    fn push_to(&self, out: &mut Vec<Value>) {
        out.push(Value::from(*self));
    }
}

impl WireField for String {
    fn push_to(&self, out: &mut Vec<Value>) {
        out.push(Value::Str(self.clone()));
    }
}

impl WireField for Dict {
    fn push_to(&self, out: &mut Vec<Value>) {
        out.push(Value::Dict(self.clone()));
    }
}

impl WireField for Payload {
    fn push_to(&self, out: &mut Vec<Value>) {
        match self {
            Payload::Empty => {}
            Payload::Args(a) => out.push(Value::List(a.clone())),
            Payload::ArgsKwargs(a, k) => {
                out.push(Value::List(a.clone()));
                out.push(Value::Dict(k.clone()));
            }
            Payload::Opaque(v) => out.push(v.clone()),
        }
    }
}

/// The spec's name of a message code, `None` for codes this implementation does not know.
pub fn code_name(code: u64) -> Option<&'static str> {
    use code::*;
    Some(match code {
        HELLO => "HELLO",
        WELCOME => "WELCOME",
        ABORT => "ABORT",
        CHALLENGE => "CHALLENGE",
        AUTHENTICATE => "AUTHENTICATE",
        GOODBYE => "GOODBYE",
        ERROR => "ERROR",
        PUBLISH => "PUBLISH",
        PUBLISHED => "PUBLISHED",
        SUBSCRIBE => "SUBSCRIBE",
        SUBSCRIBED => "SUBSCRIBED",
        UNSUBSCRIBE => "UNSUBSCRIBE",
        UNSUBSCRIBED => "UNSUBSCRIBED",
        EVENT => "EVENT",
        CALL => "CALL",
        CANCEL => "CANCEL",
        RESULT => "RESULT",
        REGISTER => "REGISTER",
        REGISTERED => "REGISTERED",
        UNREGISTER => "UNREGISTER",
        UNREGISTERED => "UNREGISTERED",
        INVOCATION => "INVOCATION",
        INTERRUPT => "INTERRUPT",
        YIELD => "YIELD",
        _ => return None,
    })
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())
    }
}

/// Walks the elements after the message code.
struct Fields {
    name: &'static str,
    items: std::vec::IntoIter<Value>,
    index: usize,
}

impl Fields {
    fn bad(&self, what: &str) -> ProtocolViolation {
        ProtocolViolation::new(format!("{}: {what}", self.name))
    }

    fn next(&mut self, field: &str) -> Result<Value> {
        self.index += 1;
        self.items
            .next()
            .ok_or_else(|| self.bad(&format!("missing {field}")))
    }

    fn id(&mut self, field: &str) -> Result<u64> {
        let v = self.next(field)?;
        match v.as_u64() {
            Some(id) if (1..=MAX_ID).contains(&id) => Ok(id),
            Some(id) => Err(self.bad(&format!("{field} {id} is not in [1, 2^53]"))),
            None => Err(self.bad(&format!(
                "{field} must be an integer id, not a {}",
                v.type_name()
            ))),
        }
    }

    fn uint(&mut self, field: &str) -> Result<u64> {
        let v = self.next(field)?;
        v.as_u64().ok_or_else(|| {
            self.bad(&format!(
                "{field} must be a non-negative integer, not a {}",
                v.type_name()
            ))
        })
    }

    fn string(&mut self, field: &str) -> Result<String> {
        match self.next(field)? {
            Value::Str(s) => Ok(s),
            v => Err(self.bad(&format!(
                "{field} must be a string, not a {}",
                v.type_name()
            ))),
        }
    }

    fn dict(&mut self, field: &str) -> Result<Dict> {
        match self.next(field)? {
            Value::Dict(d) => Ok(d),
            v => Err(self.bad(&format!("{field} must be a dict, not a {}", v.type_name()))),
        }
    }

    /// A dict whose known keys must have their types (`known`, plus the passthru keys for the
    /// messages that carry a payload).
    fn checked(&mut self, field: &str, known: &[(&'static str, Kind)]) -> Result<Dict> {
        let dict = self.dict(field)?;
        check_dict(self.name, field, &dict, known)?;
        Ok(dict)
    }

    fn hello_details(&mut self, field: &str) -> Result<Dict> {
        let details = self.dict(field)?;
        validate_hello_details(&details)?;
        Ok(details)
    }

    fn welcome_details(&mut self, field: &str) -> Result<Dict> {
        let details = self.checked(field, WELCOME_DETAILS)?;
        if details.get_dict("roles").is_none() {
            return Err(self.bad("Details.roles is required"));
        }
        Ok(details)
    }

    /// ERROR's `REQUEST.Type`: the code of a request that can fail.
    fn request_type(&mut self, field: &str) -> Result<u64> {
        let request_type = self.uint(field)?;
        if !matches!(
            request_type,
            code::SUBSCRIBE
                | code::UNSUBSCRIBE
                | code::PUBLISH
                | code::REGISTER
                | code::UNREGISTER
                | code::CALL
                | code::INVOCATION
                | code::CANCEL
        ) {
            return Err(self.bad(&format!(
                "REQUEST.Type {request_type} is not a request that can fail"
            )));
        }
        Ok(request_type)
    }

    /// `[Arguments|list, ArgumentsKw|dict]`, both optional, or one opaque payload when the
    /// options announce payload passthru mode.
    fn payload(&mut self, options: &Dict) -> Result<Payload> {
        let Some(first) = self.items.next() else {
            return Ok(Payload::Empty);
        };
        let args = match first {
            Value::List(args) => args,
            opaque @ (Value::Bytes(_) | Value::Str(_))
                if options.contains_key("enc_algo") || options.contains_key("ppt_scheme") =>
            {
                return Ok(Payload::Opaque(opaque));
            }
            v => {
                return Err(self.bad(&format!(
                    "Arguments must be a list, not a {}",
                    v.type_name()
                )))
            }
        };
        match self.items.next() {
            None => Ok(Payload::Args(args)),
            Some(Value::Dict(kwargs)) => Ok(Payload::ArgsKwargs(args, kwargs)),
            Some(v) => Err(self.bad(&format!(
                "ArgumentsKw must be a dict, not a {}",
                v.type_name()
            ))),
        }
    }

    fn finish(mut self) -> Result<()> {
        match self.items.next() {
            None => Ok(()),
            Some(_) => Err(self.bad("too many elements")),
        }
    }
}

/// The type a known option or detail key must have.
#[derive(Clone, Copy)]
enum Kind {
    Bool,
    Str,
    /// A non-negative integer (timeouts, concurrency).
    UInt,
    Id,
    IdList,
    StrList,
    Dict,
    /// One of the listed strings, or a custom `x_…` value when the list allows it.
    OneOf(&'static [&'static str], bool),
    /// `[{session: id, authid: str, authrole: str}, …]`: the routers a message passed through.
    ForwardFor,
}

const MATCH: Kind = Kind::OneOf(&["exact", "prefix", "wildcard"], false);
const ENC_ALGO: Kind = Kind::OneOf(&["cryptobox", "mqtt", "xbr"], true);
const ENC_SERIALIZER: Kind = Kind::OneOf(
    &["json", "msgpack", "cbor", "ubjson", "opaque", "flatbuffers"],
    true,
);

/// Keys shared by every message that can carry a payload in passthru mode.
macro_rules! ppt_keys {
    () => {
        [
            ("enc_algo", ENC_ALGO),
            ("enc_serializer", ENC_SERIALIZER),
            ("enc_key", Kind::Str),
            ("ppt_scheme", Kind::Str),
            ("ppt_serializer", Kind::Str),
            ("ppt_cipher", Kind::Str),
            ("ppt_keyid", Kind::Str),
            ("forward_for", Kind::ForwardFor),
        ]
    };
}

const PPT: [(&str, Kind); 8] = ppt_keys!();

const CLOSE_DETAILS: &[(&str, Kind)] = &[("message", Kind::Str)];
const WELCOME_DETAILS: &[(&str, Kind)] = &[
    ("roles", Kind::Dict),
    ("realm", Kind::Str),
    ("authid", Kind::Str),
    ("authrole", Kind::Str),
    ("authmethod", Kind::Str),
    ("authprovider", Kind::Str),
    ("authextra", Kind::Dict),
];
const PUBLISH_OPTIONS: &[(&str, Kind)] = &[
    ("acknowledge", Kind::Bool),
    ("exclude_me", Kind::Bool),
    ("exclude", Kind::IdList),
    ("exclude_authid", Kind::StrList),
    ("exclude_authrole", Kind::StrList),
    ("eligible", Kind::IdList),
    ("eligible_authid", Kind::StrList),
    ("eligible_authrole", Kind::StrList),
    ("disclose_me", Kind::Bool),
    ("retain", Kind::Bool),
    ("transaction_hash", Kind::Str),
];
const SUBSCRIBE_OPTIONS: &[(&str, Kind)] = &[
    ("match", MATCH),
    ("get_retained", Kind::Bool),
    ("forward_for", Kind::ForwardFor),
];
const EVENT_DETAILS: &[(&str, Kind)] = &[
    ("publisher", Kind::Id),
    ("publisher_authid", Kind::Str),
    ("publisher_authrole", Kind::Str),
    ("topic", Kind::Str),
    ("retained", Kind::Bool),
    ("transaction_hash", Kind::Str),
    ("x_acknowledged_delivery", Kind::Bool),
];
const CALL_OPTIONS: &[(&str, Kind)] = &[
    ("timeout", Kind::UInt),
    ("receive_progress", Kind::Bool),
    ("disclose_me", Kind::Bool),
    ("progress", Kind::Bool),
    ("transaction_hash", Kind::Str),
];
const CANCEL_OPTIONS: &[(&str, Kind)] = &[
    ("mode", Kind::OneOf(&["skip", "kill", "killnowait"], false)),
    ("reason", Kind::Str),
];
const RESULT_DETAILS: &[(&str, Kind)] = &[
    ("progress", Kind::Bool),
    ("callee", Kind::Id),
    ("callee_authid", Kind::Str),
    ("callee_authrole", Kind::Str),
];
const REGISTER_OPTIONS: &[(&str, Kind)] = &[
    ("match", MATCH),
    (
        "invoke",
        Kind::OneOf(&["single", "roundrobin", "random", "first", "last"], false),
    ),
    ("disclose_caller", Kind::Bool),
    ("concurrency", Kind::UInt),
    ("force_reregister", Kind::Bool),
    ("forward_for", Kind::ForwardFor),
];
const INVOCATION_DETAILS: &[(&str, Kind)] = &[
    ("caller", Kind::Id),
    ("caller_authid", Kind::Str),
    ("caller_authrole", Kind::Str),
    ("procedure", Kind::Str),
    ("receive_progress", Kind::Bool),
    ("timeout", Kind::UInt),
    ("transaction_hash", Kind::Str),
];
const YIELD_OPTIONS: &[(&str, Kind)] = &[("progress", Kind::Bool)];

fn check_dict(msg: &str, which: &str, dict: &Dict, known: &[(&'static str, Kind)]) -> Result<()> {
    let payload_keys: &[(&str, Kind)] = if matches!(
        msg,
        "PUBLISH" | "EVENT" | "CALL" | "RESULT" | "INVOCATION" | "YIELD" | "ERROR"
    ) {
        &PPT
    } else {
        &[]
    };
    for (key, value) in dict.iter() {
        let Some(kind) = known
            .iter()
            .chain(payload_keys)
            .find(|(k, _)| *k == key)
            .map(|(_, kind)| *kind)
        else {
            continue; // unknown keys are ignored
        };
        if !kind_ok(kind, value) {
            return Err(ProtocolViolation::new(format!(
                "{msg}: invalid {which}.{key} ({} {})",
                value.type_name(),
                short(value)
            )));
        }
    }
    Ok(())
}

fn short(v: &Value) -> String {
    let mut s = format!("{v:?}");
    if s.len() > 40 {
        let mut end = 40;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

fn is_id(v: &Value) -> bool {
    v.as_u64().is_some_and(|i| (1..=MAX_ID).contains(&i))
}

fn kind_ok(kind: Kind, v: &Value) -> bool {
    match kind {
        Kind::Bool => matches!(v, Value::Bool(_)),
        Kind::Str => matches!(v, Value::Str(_)),
        Kind::UInt => v.as_u64().is_some(),
        Kind::Id => is_id(v),
        Kind::Dict => matches!(v, Value::Dict(_)),
        Kind::IdList => v.as_list().is_some_and(|l| l.iter().all(is_id)),
        Kind::StrList => v
            .as_list()
            .is_some_and(|l| l.iter().all(|x| matches!(x, Value::Str(_)))),
        Kind::OneOf(allowed, custom) => v
            .as_str()
            .is_some_and(|s| allowed.contains(&s) || (custom && s.starts_with("x_"))),
        Kind::ForwardFor => v.as_list().is_some_and(|l| {
            l.iter().all(|hop| {
                hop.as_dict().is_some_and(|h| {
                    h.get("session").is_some_and(is_id)
                        && h.get("authid").is_some_and(|a| a.as_str().is_some())
                        && h.get("authrole").is_some_and(|a| a.as_str().is_some())
                })
            })
        }),
    }
}

/// The client roles a HELLO may announce.
pub const CLIENT_ROLES: [&str; 4] = ["publisher", "subscriber", "caller", "callee"];

fn validate_hello_details(details: &Dict) -> Result<()> {
    let bad = |what: String| ProtocolViolation::new(format!("HELLO: {what}"));
    check_dict(
        "HELLO",
        "Details",
        details,
        &[
            ("roles", Kind::Dict),
            ("authmethods", Kind::StrList),
            ("authid", Kind::Str),
            ("authrole", Kind::Str),
            ("authextra", Kind::Dict),
            ("agent", Kind::Str),
        ],
    )?;
    let Some(roles) = details.get_dict("roles") else {
        return Err(bad("Details.roles is required".into()));
    };
    let mut known = 0;
    for (role, spec) in roles.iter() {
        if !CLIENT_ROLES.contains(&role) {
            continue; // a role from a newer spec: ignored
        }
        known += 1;
        let Some(spec) = spec.as_dict() else {
            return Err(bad(format!("Details.roles.{role} must be a dict")));
        };
        if let Some(features) = spec.get("features") {
            let ok = features
                .as_dict()
                .is_some_and(|f| f.iter().all(|(_, v)| matches!(v, Value::Bool(_))));
            if !ok {
                return Err(bad(format!(
                    "Details.roles.{role}.features must be a dict of booleans"
                )));
            }
        }
    }
    if known == 0 {
        return Err(bad(
            "Details.roles must announce at least one of publisher, subscriber, caller, callee"
                .into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dict;

    fn list(items: Vec<Value>) -> Value {
        Value::List(items)
    }

    fn roundtrip(m: Message) {
        let v = m.to_value();
        assert_eq!(Message::from_value(v).unwrap(), m);
    }

    #[test]
    fn every_message_round_trips() {
        let args = Payload::ArgsKwargs(vec![1.into(), "x".into()], dict! {"k" => 2.5});
        let msgs = vec![
            Message::Hello {
                realm: "realm1".into(),
                details: dict! {"roles" => dict!{"caller" => Dict::new()}},
            },
            Message::Welcome {
                session: 9129137332,
                details: dict! {"roles" => dict!{"broker" => Dict::new()}},
            },
            Message::abort("wamp.error.no_such_realm", "nope"),
            Message::Challenge {
                method: "wampcra".into(),
                extra: Dict::new(),
            },
            Message::Authenticate {
                signature: "sig".into(),
                extra: Dict::new(),
            },
            Message::Goodbye {
                details: Dict::new(),
                reason: "wamp.close.normal".into(),
            },
            Message::Error {
                request_type: code::CALL,
                request: 1,
                details: Dict::new(),
                error: "com.myapp.error".into(),
                payload: args.clone(),
            },
            Message::Publish {
                request: 1,
                options: dict! {"acknowledge" => true},
                topic: "a.b".into(),
                payload: Payload::Args(vec![]),
            },
            Message::Published {
                request: 1,
                publication: MAX_ID,
            },
            Message::Subscribe {
                request: 2,
                options: Dict::new(),
                topic: "a".into(),
            },
            Message::Subscribed {
                request: 2,
                subscription: 3,
            },
            Message::Unsubscribe {
                request: 4,
                subscription: 3,
            },
            Message::Unsubscribed { request: 4 },
            Message::Event {
                subscription: 3,
                publication: 5,
                details: Dict::new(),
                payload: args.clone(),
            },
            Message::Call {
                request: 6,
                options: Dict::new(),
                procedure: "p".into(),
                payload: Payload::Empty,
            },
            Message::Cancel {
                request: 6,
                options: dict! {"mode" => "kill"},
            },
            Message::Result {
                request: 6,
                details: dict! {"progress" => true},
                payload: args.clone(),
            },
            Message::Register {
                request: 7,
                options: Dict::new(),
                procedure: "p".into(),
            },
            Message::Registered {
                request: 7,
                registration: 8,
            },
            Message::Unregister {
                request: 9,
                registration: 8,
            },
            Message::Unregistered { request: 9 },
            Message::Invocation {
                request: 1,
                registration: 8,
                // opaque payloads are announced by enc_algo or ppt_scheme
                details: dict! {"ppt_scheme" => "x_custom"},
                payload: Payload::Opaque(Value::Bytes(vec![1])),
            },
            Message::Interrupt {
                request: 1,
                options: Dict::new(),
            },
            Message::Yield {
                request: 1,
                options: Dict::new(),
                payload: args,
            },
        ];
        for m in msgs {
            roundtrip(m);
        }
    }

    #[test]
    fn rejects_wrong_shapes() {
        let cases = vec![
            (Value::Dict(Dict::new()), "must be a list"),
            (list(vec![]), "empty"),
            (list(vec!["1".into()]), "code must be an integer"),
            (list(vec![7.into()]), "unknown message code 7"),
            (list(vec![1000.into()]), "unknown message code"),
            (list(vec![1.into(), "realm1".into()]), "missing Details"),
            (
                list(vec![1.into(), 5.into(), Dict::new().into()]),
                "Realm must be a string",
            ),
            (
                list(vec![1.into(), "r".into(), Dict::new().into()]),
                "roles is required",
            ),
            (
                list(vec![17.into(), 0.into(), 1.into()]),
                "not in [1, 2^53]",
            ),
            (
                list(vec![17.into(), 1.into(), Value::from(MAX_ID + 1)]),
                "not in [1, 2^53]",
            ),
            (
                list(vec![17.into(), 1.into(), Value::Float(1.0)]),
                "must be an integer id",
            ),
            (
                list(vec![17.into(), 1.into(), 2.into(), 3.into()]),
                "too many",
            ),
            (
                list(vec![
                    16.into(),
                    1.into(),
                    Dict::new().into(),
                    "t".into(),
                    "notalist".into(),
                ]),
                "Arguments must be a list",
            ),
            (
                list(vec![
                    16.into(),
                    1.into(),
                    Dict::new().into(),
                    "t".into(),
                    Value::List(vec![]),
                    Value::List(vec![]),
                ]),
                "ArgumentsKw must be a dict",
            ),
            (
                list(vec![
                    8.into(),
                    17.into(),
                    1.into(),
                    Dict::new().into(),
                    "e".into(),
                ]),
                "not a request that can fail",
            ),
            (
                list(vec![
                    32.into(),
                    1.into(),
                    dict! {"match" => "regex"}.into(),
                    "t".into(),
                ]),
                "Options.match",
            ),
            (
                list(vec![
                    16.into(),
                    1.into(),
                    dict! {"exclude" => vec![Value::from("x")]}.into(),
                    "t".into(),
                ]),
                "Options.exclude",
            ),
        ];
        for (v, want) in cases {
            let err = Message::from_value(v.clone()).unwrap_err();
            assert!(err.0.contains(want), "{v:?}: {err} should contain {want:?}");
        }
    }

    #[test]
    fn unknown_option_keys_are_kept_and_ignored() {
        let v = list(vec![
            16.into(),
            1.into(),
            dict! {"x_future" => vec![Value::Null], "acknowledge" => true}.into(),
            "t".into(),
        ]);
        let m = Message::from_value(v.clone()).unwrap();
        assert_eq!(m.to_value(), v);
    }
}
