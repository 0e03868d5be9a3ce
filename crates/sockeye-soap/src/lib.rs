//! SOAP 1.2 over WebSocket, the `soap` subprotocol of [MS-SWSB]: each WebSocket text message
//! carries one SOAP 1.2 envelope.
//!
//! This crate is sans-I/O: it turns the bytes of one message into a [`Request`] (or a
//! [`RequestError`] holding the [`Fault`] to send back), and writes replies ([`response`]) and
//! faults ([`fault`]) as strings. It never reads a socket or a clock; the caller owns the
//! WebSocket and sends what it gets.
//!
//! ```
//! use sockeye_soap::{parse_request, response, Element, Limits};
//!
//! let xml = br#"<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"
//!                           xmlns:a="http://www.w3.org/2005/08/addressing">
//!   <e:Header><a:MessageID>urn:uuid:1</a:MessageID><a:Action>urn:x/Ping</a:Action></e:Header>
//!   <e:Body><Ping xmlns="urn:x"/></e:Body>
//! </e:Envelope>"#;
//! let request = parse_request(xml, &Limits::default()).unwrap();
//! assert_eq!(request.body.name, "Ping");
//! let pong = Element::new(Some("urn:x"), "Pong");
//! let reply = response(request.message_id.as_deref(), Some("urn:x/Pong"), &pong);
//! assert!(reply.contains("<wsa:RelatesTo>urn:uuid:1</wsa:RelatesTo>"));
//! ```
//!
//! What the parser refuses, and why (SOAP 1.2 Part 1 is "Part 1" below):
//!
//! - a document type declaration, so no entity is ever defined, let alone expanded
//!   (Part 1 §5: "The XML infoset of a SOAP message MUST NOT contain a document type
//!   declaration information item"); billion laughs and external entities end there;
//! - processing instructions (Part 1 §5: receivers "SHOULD generate a SOAP fault with a Value
//!   of Code set to env:Sender");
//! - a reference to an entity that is not one of XML's five predefined ones;
//! - more than [`Limits::max_bytes`] before parsing starts, and more than
//!   [`Limits::max_depth`] levels or [`Limits::max_elements`] elements while it runs, so that
//!   what a message costs is bounded by the limits whatever it holds.
//!
//! [MS-SWSB]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-swsb/
#![warn(missing_docs)]

mod element;
mod parse;
mod write;

#[cfg(test)]
mod tests;

pub use element::Element;
pub use parse::parse_request;
pub use write::{escape_attribute, fault, response};

/// The WebSocket subprotocol that SOAP over WebSocket ([MS-SWSB]) is negotiated with.
///
/// [MS-SWSB]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-swsb/
pub const SUBPROTOCOL: &str = "soap";

/// The SOAP 1.2 envelope namespace (Part 1 §5.1), bound to `env` in what this crate writes.
pub const SOAP12_ENVELOPE_NS: &str = "http://www.w3.org/2003/05/soap-envelope";

/// The SOAP 1.1 envelope namespace: an envelope in it gets a VersionMismatch fault.
pub const SOAP11_ENVELOPE_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";

/// The WS-Addressing 1.0 namespace, bound to `wsa` in what this crate writes. Its header
/// blocks are understood, so `mustUnderstand` on them never faults.
pub const WSA_NS: &str = "http://www.w3.org/2005/08/addressing";

/// The `wsa:Action` of every fault (WS-Addressing 1.0 SOAP Binding §6).
pub const WSA_FAULT_ACTION: &str = "http://www.w3.org/2005/08/addressing/soap/fault";

/// How much one message may cost the parser. Checked before parsing (`max_bytes`) and while
/// it runs (the others): a message over any of them gets a Sender fault, having cost at most
/// its bytes plus `max_depth` open elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest message, in bytes; 1 MiB by default.
    pub max_bytes: usize,
    /// Deepest nesting of elements, the Envelope being level 1; 64 by default. Keep it modest:
    /// dropping or comparing an [`Element`] tree recurses once per level.
    pub max_depth: usize,
    /// Most elements in one message, the Envelope included; 10,000 by default.
    pub max_elements: usize,
}

impl Limits {
    /// Limits of bytes, nesting depth and elements, usable in a `const`.
    pub const fn new(max_bytes: usize, max_depth: usize, max_elements: usize) -> Self {
        Limits {
            max_bytes,
            max_depth,
            max_elements,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::new(1 << 20, 64, 10_000)
    }
}

/// A SOAP 1.2 request as the application sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `wsa:MessageID` from the header, whitespace trimmed: what the reply's `wsa:RelatesTo`
    /// names.
    pub message_id: Option<String>,
    /// `wsa:Action` from the header, whitespace trimmed: the operation asked for.
    pub action: Option<String>,
    /// The first child element of `env:Body`; further ones are checked and dropped.
    pub body: Element,
}

/// The fault codes of SOAP 1.2 (Part 1 §5.4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultCode {
    /// The root was not an Envelope in the SOAP 1.2 namespace (a SOAP 1.1 envelope, say).
    VersionMismatch,
    /// A header block targeted at this node and marked `mustUnderstand` was not understood.
    MustUnderstand,
    /// A header or body block used an encoding style this node does not support.
    DataEncodingUnknown,
    /// The message was malformed or lacked what the service needs; resending it as it is
    /// will fail again.
    Sender,
    /// The message was fine, processing it failed; it may succeed later.
    Receiver,
}

impl FaultCode {
    /// The local name of the code in the envelope namespace, as in `env:Sender`.
    pub const fn local_name(self) -> &'static str {
        match self {
            FaultCode::VersionMismatch => "VersionMismatch",
            FaultCode::MustUnderstand => "MustUnderstand",
            FaultCode::DataEncodingUnknown => "DataEncodingUnknown",
            FaultCode::Sender => "Sender",
            FaultCode::Receiver => "Receiver",
        }
    }
}

/// A SOAP 1.2 fault (Part 1 §5.4): what [`fault`] writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// `env:Code/env:Value`.
    pub code: FaultCode,
    /// `env:Code/env:Subcode/env:Value`, an application-defined QName as (namespace, local
    /// name), such as `("urn:sockeye:demo:stockquote", "UnknownSymbol")`.
    pub subcode: Option<(String, String)>,
    /// `env:Reason/env:Text`, in English: for people, not programs.
    pub reason: String,
}

impl Fault {
    /// A fault without a subcode.
    pub fn new(code: FaultCode, reason: impl Into<String>) -> Self {
        Fault {
            code,
            subcode: None,
            reason: reason.into(),
        }
    }

    /// The same fault with the subcode `{namespace}local`.
    pub fn with_subcode(mut self, namespace: impl Into<String>, local: impl Into<String>) -> Self {
        self.subcode = Some((namespace.into(), local.into()));
        self
    }
}

/// Why a message is not a request the application can act on, and the fault to answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestError {
    /// The fault to send back (with [`fault`]).
    pub fault: Fault,
    /// The `wsa:MessageID`, when the parser had read it before it stopped, so that the fault
    /// can carry `wsa:RelatesTo` and the client can tell which request failed.
    pub message_id: Option<String>,
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SOAP {} fault: {}",
            self.fault.code.local_name(),
            self.fault.reason
        )
    }
}

impl std::error::Error for RequestError {}
