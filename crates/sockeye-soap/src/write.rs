//! Writing SOAP 1.2 envelopes: replies and faults, with their WS-Addressing headers.
//!
//! The envelope binds `env` and `wsa` on its root; body elements declare their namespace as
//! the default one where it changes, so no prefix of the caller's can clash with ours.

use std::borrow::Cow;

use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesEnd, BytesStart, BytesText, Event};
use quick_xml::name::QName;
use quick_xml::Writer;

use crate::parse::is_xml_char;
use crate::{Element, Fault, FaultCode, SOAP12_ENVELOPE_NS, WSA_FAULT_ACTION, WSA_NS};

/// A SOAP 1.2 envelope carrying `body`, with a header of WS-Addressing 1.0 blocks: a fresh
/// `wsa:MessageID` (`urn:uuid:` and a random UUID), then `wsa:RelatesTo` and `wsa:Action`
/// when given (WS-Addressing 1.0 Core §3.4: a reply relates to the request's MessageID).
///
/// Text is escaped (`<`, `&`, `>`, and CR so that it survives line-end normalisation);
/// characters XML 1.0 cannot carry at all are written as U+FFFD. Element names are written as
/// they are and must be NCNames.
pub fn response(relates_to: Option<&str>, action: Option<&str>, body: &Element) -> String {
    let mut w = EnvelopeWriter::new();
    w.open_envelope(relates_to, action, false);
    w.element(body);
    w.close_envelope()
}

/// A SOAP 1.2 fault envelope (Part 1 §5.4): `env:Code/env:Value`, the optional
/// `env:Subcode/env:Value` as a QName whose prefix the element declares, and
/// `env:Reason/env:Text` with `xml:lang="en"`. Its `wsa:Action` is
/// `http://www.w3.org/2005/08/addressing/soap/fault` and its `wsa:RelatesTo` is `relates_to`
/// when given. A VersionMismatch fault also carries the `env:Upgrade` header naming the
/// envelope this node supports (Part 1 §5.4.7).
pub fn fault(relates_to: Option<&str>, fault: &Fault) -> String {
    let mut w = EnvelopeWriter::new();
    let upgrade = fault.code == FaultCode::VersionMismatch;
    w.open_envelope(relates_to, Some(WSA_FAULT_ACTION), upgrade);
    w.start("env:Fault", &[]);
    w.start("env:Code", &[]);
    w.text_element(
        "env:Value",
        &[],
        &format!("env:{}", fault.code.local_name()),
    );
    if let Some((namespace, local)) = &fault.subcode {
        w.start("env:Subcode", &[]);
        // The QName's prefix is declared on the element that holds it, where it cannot
        // collide with `env` or `wsa`.
        if namespace.is_empty() {
            w.text_element("env:Value", &[], local);
        } else {
            w.text_element(
                "env:Value",
                &[(b"xmlns:sub", namespace)],
                &format!("sub:{local}"),
            );
        }
        w.end("env:Subcode");
    }
    w.end("env:Code");
    w.start("env:Reason", &[]);
    w.text_element("env:Text", &[(b"xml:lang", "en")], &fault.reason);
    w.end("env:Reason");
    w.end("env:Fault");
    w.close_envelope()
}

/// quick-xml's writer over a `Vec`, whose writes cannot fail.
struct EnvelopeWriter {
    w: Writer<Vec<u8>>,
}

impl EnvelopeWriter {
    fn new() -> Self {
        EnvelopeWriter {
            w: Writer::new(Vec::with_capacity(512)),
        }
    }

    fn put(&mut self, event: Event<'_>) {
        self.w
            .write_event(event)
            .expect("writing to a Vec cannot fail");
    }

    /// The Envelope, its header, and the Body's start tag; `upgrade` adds the `env:Upgrade`
    /// block of a VersionMismatch fault.
    fn open_envelope(&mut self, relates_to: Option<&str>, action: Option<&str>, upgrade: bool) {
        self.start(
            "env:Envelope",
            &[(b"xmlns:env", SOAP12_ENVELOPE_NS), (b"xmlns:wsa", WSA_NS)],
        );
        self.start("env:Header", &[]);
        if upgrade {
            self.start("env:Upgrade", &[]);
            self.put(Event::Empty(with_attributes(
                "env:SupportedEnvelope",
                &[(b"qname", "env:Envelope")],
            )));
            self.end("env:Upgrade");
        }
        self.text_element("wsa:MessageID", &[], &fresh_urn_uuid());
        if let Some(id) = relates_to {
            self.text_element("wsa:RelatesTo", &[], id);
        }
        if let Some(action) = action {
            self.text_element("wsa:Action", &[], action);
        }
        self.end("env:Header");
        self.start("env:Body", &[]);
    }

    fn close_envelope(mut self) -> String {
        self.end("env:Body");
        self.end("env:Envelope");
        String::from_utf8(self.w.into_inner()).expect("every piece written was a str")
    }

    fn start(&mut self, name: &str, attributes: &[(&[u8], &str)]) {
        self.put(Event::Start(with_attributes(name, attributes)));
    }

    fn end(&mut self, name: &str) {
        self.put(Event::End(BytesEnd::new(name)));
    }

    fn text(&mut self, text: &str) {
        self.put(Event::Text(BytesText::from_escaped(escape_text(text))));
    }

    fn text_element(&mut self, name: &str, attributes: &[(&[u8], &str)], text: &str) {
        self.start(name, attributes);
        self.text(text);
        self.end(name);
    }

    /// Writes `root` and its descendants without recursion, so that no tree is too deep to
    /// write.
    fn element(&mut self, root: &Element) {
        enum Step<'a> {
            /// An element to open, and the default namespace in scope where it goes.
            Open(&'a Element, Option<&'a str>),
            Close(&'a Element),
        }
        // `env` and `wsa` are prefixes; the default namespace is none until an element sets it.
        let mut steps = vec![Step::Open(root, None)];
        while let Some(step) = steps.pop() {
            match step {
                Step::Open(element, inherited) => {
                    let namespace = element.namespace.as_deref();
                    let declare = [(b"xmlns".as_slice(), namespace.unwrap_or(""))];
                    let attributes: &[(&[u8], &str)] = if namespace == inherited {
                        &[]
                    } else {
                        &declare
                    };
                    let start = with_attributes(&element.name, attributes);
                    if element.text.is_empty() && element.children.is_empty() {
                        self.put(Event::Empty(start));
                        continue;
                    }
                    self.put(Event::Start(start));
                    if !element.text.is_empty() {
                        self.text(&element.text);
                    }
                    steps.push(Step::Close(element));
                    for child in element.children.iter().rev() {
                        steps.push(Step::Open(child, namespace));
                    }
                }
                Step::Close(element) => self.end(&element.name),
            }
        }
    }
}

/// A start tag with attributes escaped here rather than by quick-xml, which leaves tab, CR and
/// LF as they are and so lets attribute-value normalisation turn them into spaces.
fn with_attributes<'a>(name: &'a str, attributes: &[(&'a [u8], &str)]) -> BytesStart<'a> {
    let mut start = BytesStart::new(name);
    for &(key, value) in attributes {
        start.push_attribute(Attribute {
            key: QName(key),
            value: Cow::Owned(escape_attribute(value).into_owned().into_bytes()),
        });
    }
    start
}

/// Character data that reads back as `text`: `>` too, so that `]]>` never appears, and CR as a
/// reference, because a parser turns a literal one into LF (XML 1.0 §2.11).
fn escape_text(text: &str) -> Cow<'_, str> {
    escape(text, |c| match c {
        '<' => Some("&lt;"),
        '>' => Some("&gt;"),
        '&' => Some("&amp;"),
        '\r' => Some("&#13;"),
        _ => None,
    })
}

/// An attribute value in double quotes that reads back as `value`: tab, LF and CR as
/// references, which attribute-value normalisation leaves alone (XML 1.0 §3.3.3).
pub fn escape_attribute(value: &str) -> Cow<'_, str> {
    escape(value, |c| match c {
        '<' => Some("&lt;"),
        '&' => Some("&amp;"),
        '"' => Some("&quot;"),
        '\t' => Some("&#9;"),
        '\n' => Some("&#10;"),
        '\r' => Some("&#13;"),
        _ => None,
    })
}

/// `s` with each character `special` maps replaced, and characters XML 1.0 cannot carry in any
/// form (most C0 controls, U+FFFE, U+FFFF) replaced by U+FFFD. Borrows when nothing changes,
/// which is nearly always.
fn escape(s: &str, special: impl Fn(char) -> Option<&'static str>) -> Cow<'_, str> {
    let needs = |c: char| special(c).is_some() || !is_xml_char(c);
    let Some(first) = s.find(needs) else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len() + 16);
    out.push_str(&s[..first]);
    for c in s[first..].chars() {
        match special(c) {
            Some(escaped) => out.push_str(escaped),
            None if is_xml_char(c) => out.push(c),
            None => out.push('\u{fffd}'),
        }
    }
    Cow::Owned(out)
}

/// `urn:uuid:` and a version 4 UUID (RFC 9562 §5.4), for `wsa:MessageID`: unique is all it
/// must be.
fn fresh_urn_uuid() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        fallback_random(&mut b);
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// When the OS will not give randomness: std's per-process random SipHash keys over a counter
/// still give IDs that are unique within the process and unlikely to repeat across processes.
fn fallback_random(b: &mut [u8; 16]) {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    for (i, half) in b.chunks_mut(8).enumerate() {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(n);
        h.write_usize(i);
        half.copy_from_slice(&h.finish().to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_borrows_plain_text_and_replaces_what_xml_cannot_carry() {
        assert!(matches!(escape_text("SOCK 101.25 ä"), Cow::Borrowed(_)));
        assert_eq!(escape_text("a<b&c>]]>\r"), "a&lt;b&amp;c&gt;]]&gt;&#13;");
        assert_eq!(escape_text("\u{1}\u{fffe}x"), "\u{fffd}\u{fffd}x");
        assert_eq!(
            escape_attribute("\"<&\t\n\r'"),
            "&quot;&lt;&amp;&#9;&#10;&#13;'"
        );
    }

    #[test]
    fn message_ids_are_version_4_uuids_and_differ() {
        let a = fresh_urn_uuid();
        let b = fresh_urn_uuid();
        assert_ne!(a, b);
        let uuid = a.strip_prefix("urn:uuid:").unwrap();
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "4");
        assert!(matches!(&uuid[19..20], "8" | "9" | "a" | "b"));
        let mut b = [0u8; 16];
        fallback_random(&mut b);
        assert_ne!(b, [0u8; 16]);
    }
}
