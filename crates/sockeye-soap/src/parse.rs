//! Reading one SOAP 1.2 envelope into a [`Request`], or the fault that answers it.
//!
//! One pass over quick-xml's namespace-aware events with a small state machine; nothing is
//! buffered but the body being built, so what a message costs is its bytes plus the open
//! elements, which [`Limits`] bounds.

use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::name::{NamespaceResolver, ResolveResult};
use quick_xml::reader::NsReader;
use quick_xml::XmlVersion;

use crate::{
    Element, Fault, FaultCode, Limits, Request, RequestError, SOAP11_ENVELOPE_NS,
    SOAP12_ENVELOPE_NS, WSA_NS,
};

/// The roles a header block may name and still be for us (Part 1 §5.2.2): an endpoint is
/// always "next" and the "ultimateReceiver"; it plays no other role. A block without a role
/// is for the ultimate receiver.
const ROLE_NEXT: &str = "http://www.w3.org/2003/05/soap-envelope/role/next";
const ROLE_ULTIMATE_RECEIVER: &str =
    "http://www.w3.org/2003/05/soap-envelope/role/ultimateReceiver";

/// Reads one SOAP 1.2 envelope (the bytes of one WebSocket text message).
///
/// On success the request has its `wsa:MessageID` and `wsa:Action` (when the header had them)
/// and the first child element of `env:Body`. Otherwise the error holds the fault to send
/// back, and the `wsa:MessageID` when it had been read, for the fault's `wsa:RelatesTo`:
///
/// - VersionMismatch: the root is an `Envelope`, but not in the SOAP 1.2 namespace (a SOAP 1.1
///   envelope, say; Part 1 §5.4.7);
/// - MustUnderstand: a header block for this node has `env:mustUnderstand="true"` and is not
///   WS-Addressing (Part 1 §5.2.3, §5.4.8);
/// - Sender: anything else, from bytes that are not UTF-8 XML to an empty `env:Body`, a DTD,
///   a processing instruction, an undefined entity, or a message over `limits`.
///
/// Never panics, whatever the bytes.
pub fn parse_request(xml: &[u8], limits: &Limits) -> Result<Request, RequestError> {
    let mut parser = Parser::default();
    parser.run(xml, limits).map_err(|fault| RequestError {
        fault,
        message_id: parser.message_id.take(),
    })
}

fn sender(reason: impl Into<String>) -> Fault {
    Fault::new(FaultCode::Sender, reason)
}

/// Where the parser is in the envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Part {
    /// Before the Envelope, or directly inside it.
    #[default]
    Outside,
    Header,
    Body,
}

/// The WS-Addressing header whose text is being collected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    MessageId,
    Action,
}

#[derive(Debug, Default)]
struct Parser {
    message_id: Option<String>,
    action: Option<String>,
    /// Elements open now: 1 inside the Envelope, 2 inside Header or Body, 3 inside a header
    /// block or the body's element.
    depth: usize,
    /// Elements started so far, for `Limits::max_elements`.
    elements: usize,
    part: Part,
    seen_header: bool,
    seen_body: bool,
    /// The Envelope has ended: only whitespace and comments may follow.
    envelope_done: bool,
    /// The header block being read when it is `wsa:MessageID` or `wsa:Action`, and its text.
    field: Option<(Field, String)>,
    /// The first header block that had to be understood and was not, as (namespace, local
    /// name). The fault waits for the end of the Header, so that a `wsa:MessageID` after the
    /// block still makes it into `wsa:RelatesTo`.
    not_understood: Option<(String, String)>,
    /// The body elements open now, outermost first.
    building: Vec<Element>,
    /// The first complete child of `env:Body`.
    body: Option<Element>,
}

impl Parser {
    fn run(&mut self, xml: &[u8], limits: &Limits) -> Result<Request, Fault> {
        // Checked before anything is parsed: an oversized message costs nothing but its bytes.
        if xml.len() > limits.max_bytes {
            return Err(sender(format!(
                "the message is {} bytes, over this endpoint's limit of {}",
                xml.len(),
                limits.max_bytes
            )));
        }
        // A WebSocket text message is UTF-8 (RFC 6455 §5.6), and so is every XML document
        // without an encoding declaration; validating once here lets every later step work on
        // `str`.
        let text = std::str::from_utf8(xml).map_err(|e| {
            sender(format!(
                "the message is not UTF-8 (invalid byte at {})",
                e.valid_up_to()
            ))
        })?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        // XML 1.0 §2.2: control characters other than tab, CR and LF are not characters of
        // any document; quick-xml lets them through, so refuse them once here.
        if let Some(c) = text.chars().find(|&c| !is_xml_char(c)) {
            return Err(sender(format!(
                "U+{:04X} is not a character XML 1.0 allows",
                u32::from(c)
            )));
        }
        let mut reader = NsReader::from_str(text);
        // Comments with `--` and mismatched end tags are not well-formed XML either.
        reader.config_mut().enable_all_checks(true);
        let mut first = true;
        loop {
            let event = match reader.read_event() {
                Ok(event) => event,
                Err(e) => {
                    return Err(sender(format!(
                        "not well-formed XML at byte {}: {e}",
                        reader.error_position()
                    )))
                }
            };
            let at_start = std::mem::replace(&mut first, false);
            match event {
                Event::Decl(decl) => check_decl(&decl, at_start)?,
                Event::DocType(_) => {
                    // No DTD means no entity declarations: billion laughs and external
                    // entities never get the chance to expand.
                    return Err(sender(
                        "a SOAP message must not contain a document type declaration \
                         (SOAP 1.2 Part 1 §5)",
                    ));
                }
                Event::PI(_) => {
                    return Err(sender(
                        "a SOAP message must not contain processing instructions \
                         (SOAP 1.2 Part 1 §5)",
                    ));
                }
                Event::Comment(_) => {}
                Event::Start(start) => self.start(reader.resolver(), &start, limits)?,
                Event::Empty(start) => {
                    self.start(reader.resolver(), &start, limits)?;
                    self.end()?;
                }
                Event::End(_) => self.end()?,
                Event::Text(t) => {
                    let t = t.xml10_content().map_err(|e| sender(e.to_string()))?;
                    self.text(&t)?;
                }
                Event::CData(t) => {
                    if self.depth == 0 {
                        return Err(sender("a CDATA section outside the envelope"));
                    }
                    let t = t.xml10_content().map_err(|e| sender(e.to_string()))?;
                    self.text(&t)?;
                }
                Event::GeneralRef(r) => {
                    if self.depth == 0 {
                        return Err(sender("a reference outside the envelope"));
                    }
                    let mut buf = [0; 4];
                    self.text(resolve_reference(&r, &mut buf)?)?;
                }
                Event::Eof => return self.finish(),
            }
        }
    }

    fn start(
        &mut self,
        resolver: &NamespaceResolver,
        start: &BytesStart<'_>,
        limits: &Limits,
    ) -> Result<(), Fault> {
        self.elements += 1;
        if self.elements > limits.max_elements {
            return Err(sender(format!(
                "more than {} elements in the message",
                limits.max_elements
            )));
        }
        self.depth += 1;
        // Stopping at the first element too deep keeps every stack (ours, quick-xml's end
        // names and namespace scopes) at `max_depth`, however deep the input would go.
        if self.depth > limits.max_depth {
            return Err(sender(format!(
                "elements nested more than {} deep",
                limits.max_depth
            )));
        }
        if self.envelope_done {
            return Err(sender("an element after the end of env:Envelope"));
        }
        let (namespace, local) = resolve_element(resolver, start)?;
        let header_block = self.part == Part::Header && self.depth == 3;
        let attributes = check_attributes(resolver, start, header_block)?;
        match (self.depth, self.part) {
            (1, _) => check_envelope(namespace.as_deref(), &local)?,
            (2, _) => self.envelope_child(namespace.as_deref(), &local)?,
            (3, Part::Header) => self.header_block(namespace, local, attributes)?,
            (_, Part::Body) => self.building.push(Element {
                namespace,
                name: local,
                text: String::new(),
                children: Vec::new(),
            }),
            // Inside a header block: checked for well-formedness, otherwise not ours to read.
            _ => {}
        }
        Ok(())
    }

    /// Part 1 §5.1: the Envelope holds an optional Header, then a Body, and nothing else.
    fn envelope_child(&mut self, namespace: Option<&str>, local: &str) -> Result<(), Fault> {
        let ours = namespace == Some(SOAP12_ENVELOPE_NS);
        if ours && local == "Header" && !self.seen_header && !self.seen_body {
            self.seen_header = true;
            self.part = Part::Header;
        } else if ours && local == "Body" && !self.seen_body {
            self.seen_body = true;
            self.part = Part::Body;
        } else {
            return Err(sender(format!(
                "env:Envelope holds an optional env:Header then env:Body and nothing else, \
                 not {} (SOAP 1.2 Part 1 §5.1)",
                describe(namespace, local)
            )));
        }
        Ok(())
    }

    fn header_block(
        &mut self,
        namespace: Option<String>,
        local: String,
        attributes: BlockAttributes,
    ) -> Result<(), Fault> {
        let Some(namespace) = namespace else {
            return Err(sender(format!(
                "header block {local} is not namespace qualified (SOAP 1.2 Part 1 §5.2.1)"
            )));
        };
        if namespace == WSA_NS {
            // Every WS-Addressing header is understood: MessageID and Action are read, the
            // others (To, ReplyTo, ...) name this endpoint or the anonymous reply channel,
            // which is the WebSocket itself.
            let field = match local.as_str() {
                "MessageID" => Some(Field::MessageId),
                "Action" => Some(Field::Action),
                _ => None,
            };
            self.field = field.map(|f| (f, String::new()));
        } else if attributes.must_understand && attributes.for_us && self.not_understood.is_none() {
            self.not_understood = Some((namespace, local));
        }
        Ok(())
    }

    fn end(&mut self) -> Result<(), Fault> {
        match (self.depth, self.part) {
            (1, _) => self.envelope_done = true,
            (2, Part::Header) => {
                self.part = Part::Outside;
                if let Some((namespace, local)) = self.not_understood.take() {
                    return Err(Fault::new(
                        FaultCode::MustUnderstand,
                        format!(
                            "header block {{{namespace}}}{local} is marked mustUnderstand and \
                             is not understood here (SOAP 1.2 Part 1 §5.2.3)"
                        ),
                    ));
                }
            }
            (2, _) => self.part = Part::Outside,
            (3, Part::Header) => self.end_header_block()?,
            (_, Part::Body) => {
                if let Some(mut element) = self.building.pop() {
                    if !element.children.is_empty() && is_xml_whitespace(&element.text) {
                        element.text.clear();
                    }
                    match self.building.last_mut() {
                        Some(parent) => parent.children.push(element),
                        None if self.body.is_none() => self.body = Some(element),
                        // Later children of Body are checked, then dropped.
                        None => {}
                    }
                }
            }
            _ => {}
        }
        self.depth -= 1;
        Ok(())
    }

    fn end_header_block(&mut self) -> Result<(), Fault> {
        let Some((field, text)) = self.field.take() else {
            return Ok(());
        };
        // Both are xs:anyURI, whose whitespace is collapsed.
        let value = text.trim_matches(is_xml_whitespace_char).to_owned();
        let (slot, name) = match field {
            Field::MessageId => (&mut self.message_id, "MessageID"),
            Field::Action => (&mut self.action, "Action"),
        };
        if slot.is_some() {
            // WS-Addressing 1.0 SOAP Binding §6.4.1: InvalidAddressingHeader, with the
            // subsubcode InvalidCardinality that a single subcode cannot carry.
            return Err(sender(format!(
                "more than one wsa:{name} header (invalid cardinality)"
            ))
            .with_subcode(WSA_NS, "InvalidAddressingHeader"));
        }
        *slot = Some(value);
        Ok(())
    }

    fn text(&mut self, text: &str) -> Result<(), Fault> {
        if let Some(element) = self.building.last_mut() {
            element.text.push_str(text);
            return Ok(());
        }
        if self.depth == 3 && self.part == Part::Header {
            if let Some((_, value)) = &mut self.field {
                value.push_str(text);
            }
            return Ok(());
        }
        if self.depth <= 2 && !is_xml_whitespace(text) {
            let place = match (self.depth, self.part) {
                (0, _) => "outside env:Envelope",
                (1, _) => "directly inside env:Envelope",
                (_, Part::Header) => "directly inside env:Header",
                _ => "directly inside env:Body",
            };
            return Err(sender(format!("text {place}")));
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<Request, Fault> {
        if self.depth > 0 {
            return Err(sender("the message ends inside an element"));
        }
        if !self.envelope_done {
            return Err(sender(
                "no XML element: a SOAP 1.2 env:Envelope was expected",
            ));
        }
        if !self.seen_body {
            return Err(sender(
                "env:Envelope has no env:Body (SOAP 1.2 Part 1 §5.1)",
            ));
        }
        let Some(body) = self.body.take() else {
            return Err(sender(
                "env:Body is empty: it must hold the request's element",
            ));
        };
        Ok(Request {
            message_id: self.message_id.take(),
            action: self.action.take(),
            body,
        })
    }
}

/// Part 1 §5.4.7: an Envelope in another namespace is another version of SOAP. A root that is
/// not an Envelope at all is taken for a message that is not SOAP, which the sender got wrong.
fn check_envelope(namespace: Option<&str>, local: &str) -> Result<(), Fault> {
    if local != "Envelope" {
        return Err(sender(format!(
            "the root element is {}, not a SOAP 1.2 env:Envelope",
            describe(namespace, local)
        )));
    }
    match namespace {
        Some(SOAP12_ENVELOPE_NS) => Ok(()),
        Some(SOAP11_ENVELOPE_NS) => Err(Fault::new(
            FaultCode::VersionMismatch,
            format!("a SOAP 1.1 envelope: this endpoint speaks SOAP 1.2 ({SOAP12_ENVELOPE_NS})"),
        )),
        _ => Err(Fault::new(
            FaultCode::VersionMismatch,
            format!(
                "{} is not a SOAP 1.2 envelope ({SOAP12_ENVELOPE_NS})",
                describe(namespace, local)
            ),
        )),
    }
}

/// The XML declaration may only open the document, and must not claim an encoding other than
/// the UTF-8 that a WebSocket text message is.
fn check_decl(decl: &quick_xml::events::BytesDecl<'_>, at_start: bool) -> Result<(), Fault> {
    if !at_start {
        return Err(sender("an XML declaration that does not open the message"));
    }
    let version = decl
        .version()
        .map_err(|e| sender(format!("a bad XML declaration: {e}")))?;
    if version.as_ref() != b"1.0" {
        return Err(sender("only XML 1.0 is understood here"));
    }
    if let Some(encoding) = decl.encoding() {
        let encoding = encoding.map_err(|e| sender(format!("a bad XML declaration: {e}")))?;
        if !encoding.eq_ignore_ascii_case(b"utf-8") && !encoding.eq_ignore_ascii_case(b"utf8") {
            return Err(sender(
                "the XML declaration names an encoding other than UTF-8, which a WebSocket \
                 text message always is",
            ));
        }
    }
    Ok(())
}

/// The namespace and local name of an element; a prefix with no declaration in scope makes
/// the document not namespace-well-formed.
fn resolve_element(
    resolver: &NamespaceResolver,
    start: &BytesStart<'_>,
) -> Result<(Option<String>, String), Fault> {
    // XML Namespaces §3: a QName is an NCName, or two joined by one colon. quick-xml splits at
    // the first colon and takes most bytes for a name, so `a:b:c` or `a"b` must be caught here
    // (they would come back out of the writer as a different name or none).
    let name = String::from_utf8_lossy(start.name().as_ref()).into_owned();
    let (prefix, local) = match name.split_once(':') {
        Some((prefix, local)) => (Some(prefix), local),
        None => (None, name.as_str()),
    };
    if !prefix.is_none_or(is_ncname) || !is_ncname(local) {
        return Err(sender(format!("{name:?} is not a valid element name")));
    }
    let (namespace, local) = resolver.resolve_element(start.name());
    let namespace = match namespace {
        ResolveResult::Bound(ns) => Some(namespace_name(ns.as_ref())?),
        ResolveResult::Unbound => None,
        ResolveResult::Unknown(prefix) => {
            return Err(sender(format!(
                "the prefix {} is not declared",
                String::from_utf8_lossy(&prefix)
            )))
        }
    };
    let local = String::from_utf8_lossy(local.as_ref()).into_owned();
    Ok((namespace, local))
}

/// A namespace name as the resolver has it, which is the raw attribute value: references in
/// it are resolved here, so that `http:&#x2F;&#x2F;...` is the namespace it spells.
fn namespace_name(raw: &[u8]) -> Result<String, Fault> {
    let name = String::from_utf8_lossy(raw);
    if !name.contains('&') {
        return Ok(name.into_owned());
    }
    quick_xml::escape::unescape(&name)
        .map(|n| n.into_owned())
        .map_err(|e| sender(format!("not well-formed XML: a namespace name: {e}")))
}

/// What a header block's attributes say about who must process it.
#[derive(Debug, Default)]
struct BlockAttributes {
    must_understand: bool,
    /// Its `env:role` is one this endpoint plays.
    for_us: bool,
}

/// Checks every attribute of every element (duplicates, syntax, undefined entities in values),
/// and reads `env:mustUnderstand` and `env:role` when the element is a header block.
fn check_attributes(
    resolver: &NamespaceResolver,
    start: &BytesStart<'_>,
    header_block: bool,
) -> Result<BlockAttributes, Fault> {
    let mut block = BlockAttributes {
        must_understand: false,
        for_us: true,
    };
    for attribute in start.attributes() {
        let attribute =
            attribute.map_err(|e| sender(format!("not well-formed XML: an attribute: {e}")))?;
        let value = attribute
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| sender(format!("not well-formed XML: an attribute value: {e}")))?;
        if !header_block {
            continue;
        }
        let (namespace, local) = resolver.resolve_attribute(attribute.key);
        let ResolveResult::Bound(namespace) = namespace else {
            continue;
        };
        if namespace_name(namespace.as_ref())? != SOAP12_ENVELOPE_NS {
            continue;
        }
        let value = value.trim_matches(is_xml_whitespace_char);
        match local.as_ref() {
            // Part 1 §5.2.3: an xs:boolean.
            b"mustUnderstand" => {
                block.must_understand = match value {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => {
                        return Err(sender(format!(
                            "env:mustUnderstand is {value:?}, not true, false, 1 or 0 \
                             (SOAP 1.2 Part 1 §5.2.3)"
                        )))
                    }
                };
            }
            b"role" => {
                block.for_us = matches!(value, "" | ROLE_NEXT | ROLE_ULTIMATE_RECEIVER);
            }
            _ => {}
        }
    }
    Ok(block)
}

/// The text a reference stands for. Without a DTD only character references and XML's five
/// predefined entities are defined (XML 1.0 §4.1, WFC: Entity Declared).
fn resolve_reference<'b>(reference: &BytesRef<'_>, buf: &'b mut [u8; 4]) -> Result<&'b str, Fault> {
    let c = match reference.resolve_char_ref() {
        Ok(Some(c)) if is_xml_char(c) => c,
        Ok(Some(c)) => {
            return Err(sender(format!(
                "a character reference to U+{:04X}, which XML 1.0 does not allow",
                u32::from(c)
            )))
        }
        Ok(None) => match reference.as_ref() {
            b"lt" => '<',
            b"gt" => '>',
            b"amp" => '&',
            b"apos" => '\'',
            b"quot" => '"',
            name => {
                return Err(sender(format!(
                    "a reference to the undefined entity &{};",
                    String::from_utf8_lossy(name)
                )))
            }
        },
        Err(e) => return Err(sender(format!("a bad character reference: {e}"))),
    };
    Ok(c.encode_utf8(buf))
}

/// XML Namespaces §3 NCName: an XML 1.0 Name (§2.3, productions [4], [4a], [5]) without colons.
fn is_ncname(s: &str) -> bool {
    fn start(c: char) -> bool {
        matches!(c,
            'A'..='Z' | '_' | 'a'..='z' | '\u{c0}'..='\u{d6}' | '\u{d8}'..='\u{f6}'
            | '\u{f8}'..='\u{2ff}' | '\u{370}'..='\u{37d}' | '\u{37f}'..='\u{1fff}'
            | '\u{200c}'..='\u{200d}' | '\u{2070}'..='\u{218f}' | '\u{2c00}'..='\u{2fef}'
            | '\u{3001}'..='\u{d7ff}' | '\u{f900}'..='\u{fdcf}' | '\u{fdf0}'..='\u{fffd}'
            | '\u{10000}'..='\u{effff}')
    }
    fn rest(c: char) -> bool {
        start(c)
            || matches!(c, '-' | '.' | '0'..='9' | '\u{b7}' | '\u{300}'..='\u{36f}' | '\u{203f}'..='\u{2040}')
    }
    let mut chars = s.chars();
    chars.next().is_some_and(start) && chars.all(rest)
}

/// XML 1.0 §2.2, production [2] Char (a `char` is never a surrogate).
pub(crate) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{fffd}' | '\u{10000}'..)
}

fn is_xml_whitespace_char(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

fn is_xml_whitespace(s: &str) -> bool {
    s.chars().all(is_xml_whitespace_char)
}

/// `{namespace}local`, or just `local` when unqualified, for reasons.
fn describe(namespace: Option<&str>, local: &str) -> String {
    match namespace {
        Some(ns) => format!("{{{ns}}}{local}"),
        None => local.to_owned(),
    }
}
