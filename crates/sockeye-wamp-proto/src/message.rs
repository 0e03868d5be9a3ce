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

/// Message codes.
pub mod code {
    pub const HELLO: u64 = 1;
    pub const WELCOME: u64 = 2;
    pub const ABORT: u64 = 3;
    pub const CHALLENGE: u64 = 4;
    pub const AUTHENTICATE: u64 = 5;
    pub const GOODBYE: u64 = 6;
    pub const ERROR: u64 = 8;
    pub const PUBLISH: u64 = 16;
    pub const PUBLISHED: u64 = 17;
    pub const SUBSCRIBE: u64 = 32;
    pub const SUBSCRIBED: u64 = 33;
    pub const UNSUBSCRIBE: u64 = 34;
    pub const UNSUBSCRIBED: u64 = 35;
    pub const EVENT: u64 = 36;
    pub const CALL: u64 = 48;
    pub const CANCEL: u64 = 49;
    pub const RESULT: u64 = 50;
    pub const REGISTER: u64 = 64;
    pub const REGISTERED: u64 = 65;
    pub const UNREGISTER: u64 = 66;
    pub const UNREGISTERED: u64 = 67;
    pub const INVOCATION: u64 = 68;
    pub const INTERRUPT: u64 = 69;
    pub const YIELD: u64 = 70;
}

/// A message that breaks the protocol: wrong shape, wrong types, ids out of range, an unknown
/// message code. The text names the offending field; it is for people (and the ABORT's
/// `message` detail), not for matching.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProtocolViolation(pub String);

impl ProtocolViolation {
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
    #[default]
    Empty,
    Args(Vec<Value>),
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

    pub fn new(args: Vec<Value>, kwargs: Dict) -> Self {
        match (args.is_empty(), kwargs.is_empty()) {
            (true, true) => Payload::Empty,
            (_, true) => Payload::Args(args),
            _ => Payload::ArgsKwargs(args, kwargs),
        }
    }

    pub fn args(&self) -> &[Value] {
        match self {
            Payload::Args(a) | Payload::ArgsKwargs(a, _) => a,
            _ => &[],
        }
    }

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
pub enum Message {
    Hello {
        realm: String,
        details: Dict,
    },
    Welcome {
        session: u64,
        details: Dict,
    },
    Abort {
        details: Dict,
        reason: String,
    },
    Challenge {
        method: String,
        extra: Dict,
    },
    Authenticate {
        signature: String,
        extra: Dict,
    },
    Goodbye {
        details: Dict,
        reason: String,
    },
    Error {
        request_type: u64,
        request: u64,
        details: Dict,
        error: String,
        payload: Payload,
    },
    Publish {
        request: u64,
        options: Dict,
        topic: String,
        payload: Payload,
    },
    Published {
        request: u64,
        publication: u64,
    },
    Subscribe {
        request: u64,
        options: Dict,
        topic: String,
    },
    Subscribed {
        request: u64,
        subscription: u64,
    },
    Unsubscribe {
        request: u64,
        subscription: u64,
    },
    Unsubscribed {
        request: u64,
    },
    Event {
        subscription: u64,
        publication: u64,
        details: Dict,
        payload: Payload,
    },
    Call {
        request: u64,
        options: Dict,
        procedure: String,
        payload: Payload,
    },
    Cancel {
        request: u64,
        options: Dict,
    },
    Result {
        request: u64,
        details: Dict,
        payload: Payload,
    },
    Register {
        request: u64,
        options: Dict,
        procedure: String,
    },
    Registered {
        request: u64,
        registration: u64,
    },
    Unregister {
        request: u64,
        registration: u64,
    },
    Unregistered {
        request: u64,
    },
    Invocation {
        request: u64,
        registration: u64,
        details: Dict,
        payload: Payload,
    },
    Interrupt {
        request: u64,
        options: Dict,
    },
    Yield {
        request: u64,
        options: Dict,
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
