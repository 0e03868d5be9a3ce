//! Requests read, replies and faults written, and what hostile messages get. "Part 1" is
//! SOAP 1.2 Part 1: Messaging Framework (Second Edition).

use std::time::{Duration, Instant};

use proptest::prelude::*;

use crate::*;

const SQ: &str = "urn:sockeye:demo:stockquote";

/// What zeep 4.3.3 sends for `GetQuote(symbol='SOCK')` with the StockQuote WSDL: its own
/// prefixes, WS-Addressing declared on the Header, the XML declaration in single quotes.
const ZEEP_GET_QUOTE: &str = "<?xml version='1.0' encoding='utf-8'?>\n\
<soap-env:Envelope xmlns:soap-env=\"http://www.w3.org/2003/05/soap-envelope\">\
<soap-env:Header xmlns:wsa=\"http://www.w3.org/2005/08/addressing\">\
<wsa:Action>urn:sockeye:demo:stockquote/GetQuote</wsa:Action>\
<wsa:MessageID>urn:uuid:62202065-1b68-4e8c-842d-db212a4c220e</wsa:MessageID>\
<wsa:To>ws://127.0.0.1:9/soap</wsa:To></soap-env:Header>\
<soap-env:Body><ns0:GetQuote xmlns:ns0=\"urn:sockeye:demo:stockquote\">\
<ns0:symbol>SOCK</ns0:symbol></ns0:GetQuote></soap-env:Body></soap-env:Envelope>";

fn parse(xml: &str) -> Result<Request, RequestError> {
    parse_request(xml.as_bytes(), &Limits::default())
}

/// An envelope with `header` inside env:Header and `body` inside env:Body.
fn envelope(header: &str, body: &str) -> String {
    format!(
        "<env:Envelope xmlns:env=\"{SOAP12_ENVELOPE_NS}\" xmlns:wsa=\"{WSA_NS}\">\
         <env:Header><wsa:MessageID>urn:uuid:m1</wsa:MessageID>{header}</env:Header>\
         <env:Body>{body}</env:Body></env:Envelope>"
    )
}

const PING: &str = "<Ping xmlns=\"urn:x\"/>";

/// Asserts a Sender fault whose reason contains `why`, and returns the error.
#[track_caller]
fn assert_sender(result: Result<Request, RequestError>, why: &str) -> RequestError {
    let err = result.expect_err("a fault");
    assert_eq!(err.fault.code, FaultCode::Sender, "{err}");
    assert!(err.fault.reason.contains(why), "{err}");
    err
}

fn quote() -> Element {
    let field = |name: &str, text: &str| Element::new(Some(SQ), name).with_text(text);
    Element::new(Some(SQ), "GetQuoteResponse").with_child(
        Element::new(Some(SQ), "quote")
            .with_child(field("symbol", "SOCK"))
            .with_child(field("bid", "101.23"))
            .with_child(field("ask", "101.27"))
            .with_child(field("last", "101.25"))
            .with_child(field("time", "2026-12-05T10:00:00.123Z")),
    )
}

// ---- Part 1 §5: the envelope ----

#[test]
fn zeep_request_is_read_whatever_its_prefixes_part1_5() {
    let request = parse(ZEEP_GET_QUOTE).unwrap();
    assert_eq!(
        request.message_id.as_deref(),
        Some("urn:uuid:62202065-1b68-4e8c-842d-db212a4c220e")
    );
    assert_eq!(
        request.action.as_deref(),
        Some("urn:sockeye:demo:stockquote/GetQuote")
    );
    assert_eq!(
        request.body,
        Element::new(Some(SQ), "GetQuote")
            .with_child(Element::new(Some(SQ), "symbol").with_text("SOCK"))
    );
    assert_eq!(request.body.child("symbol").unwrap().text, "SOCK");
}

#[test]
fn reply_to_a_zeep_request_round_trips_with_relates_to_and_action() {
    let request = parse(ZEEP_GET_QUOTE).unwrap();
    let action = "urn:sockeye:demo:stockquote/GetQuoteResponse";
    let reply = response(request.message_id.as_deref(), Some(action), &quote());
    assert!(reply.starts_with(&format!(
        "<env:Envelope xmlns:env=\"{SOAP12_ENVELOPE_NS}\" xmlns:wsa=\"{WSA_NS}\"><env:Header>\
         <wsa:MessageID>urn:uuid:"
    )));
    assert!(reply.contains(
        "<wsa:RelatesTo>urn:uuid:62202065-1b68-4e8c-842d-db212a4c220e</wsa:RelatesTo>\
         <wsa:Action>urn:sockeye:demo:stockquote/GetQuoteResponse</wsa:Action></env:Header>"
    ));
    assert!(reply.contains(
        "<env:Body><GetQuoteResponse xmlns=\"urn:sockeye:demo:stockquote\"><quote>\
         <symbol>SOCK</symbol><bid>101.23</bid>"
    ));
    // The reply is itself a SOAP 1.2 message this parser reads back to the same body.
    let back = parse(&reply).unwrap();
    assert_eq!(back.body, quote());
    assert_eq!(back.action.as_deref(), Some(action));
    let id = back.message_id.unwrap();
    assert!(id.starts_with("urn:uuid:") && id.len() == 45, "{id}");
}

#[test]
fn replies_get_a_fresh_message_id_each() {
    let a = parse(&response(None, None, &quote())).unwrap();
    let b = parse(&response(None, None, &quote())).unwrap();
    assert_ne!(a.message_id, b.message_id);
    assert_eq!(a.action, None);
}

#[test]
fn indentation_comments_and_cdata_are_not_content() {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- a request -->\n{}\n",
        envelope(
            "",
            "\n  <q:GetQuotes xmlns:q=\"urn:sockeye:demo:stockquote\">\n    \
             <q:symbol>SOCK</q:symbol><!-- x -->\n    <q:symbol><![CDATA[<CRAB>]]></q:symbol>\n  \
             </q:GetQuotes>\n"
        )
    );
    let request = parse(&xml).unwrap();
    assert_eq!(request.body.text, "");
    let symbols: Vec<_> = request
        .body
        .children_named("symbol")
        .map(|s| s.text.as_str())
        .collect();
    assert_eq!(symbols, ["SOCK", "<CRAB>"]);
}

#[test]
fn only_the_first_body_element_is_the_request_but_all_are_checked() {
    let request = parse(&envelope("", "<a xmlns=\"urn:x\"/><b xmlns=\"urn:x\"/>")).unwrap();
    assert_eq!(request.body.name, "a");
    assert_sender(
        parse(&envelope("", "<a xmlns=\"urn:x\"/><b>&nope;</b>")),
        "undefined entity",
    );
}

#[test]
fn not_xml_is_a_sender_fault_part1_5_4_6() {
    assert_sender(parse("hello"), "text outside env:Envelope");
    assert_sender(parse(""), "env:Envelope was expected");
    assert_sender(parse("<env:Envelope"), "not well-formed");
    let in_body = |body: &str| parse(&envelope("", body));
    assert_sender(in_body("<a><b></a>"), "not well-formed");
    assert_sender(in_body("<a>&</a>"), "not well-formed");
    assert_sender(in_body("<a b='1' b='2'/>"), "attribute");
    assert_sender(in_body("<a b=1/>"), "attribute");
    assert_sender(in_body("<p:a/>"), "prefix p is not declared");
    for name in ["a:b:c", ":a", "a:", "1a", "a;b", "a\u{2000}b"] {
        assert_sender(
            in_body(&format!("<{name} xmlns:a=\"urn:a\"/>")),
            "not a valid element name",
        );
    }
    assert!(in_body("<é.x-1_·/>").is_ok());
    assert_sender(in_body("<a>\u{1}</a>"), "U+0001");
    assert_sender(in_body("<a>&#1;</a>"), "U+0001");
    assert_sender(in_body("<a>&#xD800;</a>"), "character reference");
    assert_sender(in_body("<a><!-- a -- b --></a>"), "not well-formed");
    assert_sender(
        parse_request(b"<a>\xff</a>", &Limits::default()),
        "not UTF-8",
    );
    let unclosed = envelope("", "<a>").replace("</env:Envelope>", "");
    assert_sender(parse(&unclosed), "");
}

#[test]
fn a_root_that_is_not_an_envelope_is_a_sender_fault() {
    assert_sender(
        parse("<GetQuote xmlns=\"urn:x\"/>"),
        "not a SOAP 1.2 env:Envelope",
    );
}

#[test]
fn an_envelope_without_body_or_with_an_empty_one_is_a_sender_fault_part1_5_1() {
    let no_body = format!("<e:Envelope xmlns:e=\"{SOAP12_ENVELOPE_NS}\"><e:Header/></e:Envelope>");
    assert_sender(parse(&no_body), "no env:Body");
    let err = assert_sender(parse(&envelope("", " ")), "env:Body is empty");
    // The MessageID had been read: the fault can relate to it.
    assert_eq!(err.message_id.as_deref(), Some("urn:uuid:m1"));
    let empty = format!("<e:Envelope xmlns:e=\"{SOAP12_ENVELOPE_NS}\"/>");
    assert_sender(parse(&empty), "no env:Body");
}

#[test]
fn the_envelope_holds_header_then_body_and_nothing_else_part1_5_1() {
    let ns = SOAP12_ENVELOPE_NS;
    for bad in [
        format!("<e:Envelope xmlns:e=\"{ns}\"><e:Body>{PING}</e:Body><e:Header/></e:Envelope>"),
        format!("<e:Envelope xmlns:e=\"{ns}\"><e:Body>{PING}</e:Body><e:Body/></e:Envelope>"),
        format!("<e:Envelope xmlns:e=\"{ns}\"><Body>{PING}</Body></e:Envelope>"),
        format!("<e:Envelope xmlns:e=\"{ns}\"><e:Body>{PING}</e:Body><x/></e:Envelope>"),
    ] {
        assert_sender(parse(&bad), "Part 1 §5.1");
    }
    assert_sender(
        parse(&envelope("", PING).replace("<env:Body>", "x<env:Body>")),
        "text directly inside env:Envelope",
    );
    assert_sender(
        parse(&format!("{}<x/>", envelope("", PING))),
        "after the end",
    );
    assert_sender(
        parse(&format!("{}x", envelope("", PING))),
        "outside env:Envelope",
    );
    // A header is optional.
    let bare = format!("<e:Envelope xmlns:e=\"{ns}\"><e:Body>{PING}</e:Body></e:Envelope>");
    let request = parse(&bare).unwrap();
    assert_eq!((request.message_id, request.action), (None, None));
}

#[test]
fn a_soap_1_1_envelope_is_a_version_mismatch_part1_5_4_7() {
    let xml = format!(
        "<s:Envelope xmlns:s=\"{SOAP11_ENVELOPE_NS}\"><s:Body>{PING}</s:Body></s:Envelope>"
    );
    let err = parse(&xml).unwrap_err();
    assert_eq!(err.fault.code, FaultCode::VersionMismatch);
    assert!(err.fault.reason.contains("SOAP 1.1"), "{err}");
    let unqualified = parse("<Envelope><Body/></Envelope>").unwrap_err();
    assert_eq!(unqualified.fault.code, FaultCode::VersionMismatch);
}

#[test]
fn an_xml_declaration_must_open_the_message_and_say_utf_8() {
    let body = envelope("", PING);
    assert!(parse(&format!("<?xml version=\"1.0\" encoding=\"utf-8\"?>{body}")).is_ok());
    assert!(parse(&format!("\u{feff}<?xml version=\"1.0\"?>{body}")).is_ok());
    assert_sender(
        parse(&format!(
            "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>{body}"
        )),
        "other than UTF-8",
    );
    assert_sender(parse(&format!("<?xml version=\"1.1\"?>{body}")), "XML 1.0");
    assert_sender(parse(&format!(" <?xml version=\"1.0\"?>{body}")), "");
}

// ---- Part 1 §5.2: header blocks ----

#[test]
fn must_understand_true_or_1_on_an_unknown_block_is_a_must_understand_fault_part1_5_2_3() {
    for value in ["true", "1", " true "] {
        let header = format!(
            "<t:Transaction xmlns:t=\"urn:t\" env:mustUnderstand=\"{value}\">5</t:Transaction>"
        );
        let err = parse(&envelope(&header, PING)).unwrap_err();
        assert_eq!(err.fault.code, FaultCode::MustUnderstand, "{value}");
        assert!(err.fault.reason.contains("{urn:t}Transaction"), "{err}");
        assert_eq!(err.message_id.as_deref(), Some("urn:uuid:m1"));
    }
}

#[test]
fn must_understand_fault_carries_a_message_id_that_comes_after_the_block() {
    let xml = format!(
        "<e:Envelope xmlns:e=\"{SOAP12_ENVELOPE_NS}\"><e:Header>\
         <t:T xmlns:t=\"urn:t\" e:mustUnderstand=\"1\"/>\
         <a:MessageID xmlns:a=\"{WSA_NS}\">urn:uuid:late</a:MessageID>\
         </e:Header><e:Body>{PING}</e:Body></e:Envelope>"
    );
    let err = parse(&xml).unwrap_err();
    assert_eq!(err.fault.code, FaultCode::MustUnderstand);
    assert_eq!(err.message_id.as_deref(), Some("urn:uuid:late"));
}

#[test]
fn blocks_that_need_not_be_understood_are_ignored_part1_5_2_2() {
    for header in [
        // Optional.
        "<t:T xmlns:t=\"urn:t\" env:mustUnderstand=\"false\"/>",
        "<t:T xmlns:t=\"urn:t\" env:mustUnderstand=\"0\"/>",
        "<t:T xmlns:t=\"urn:t\"/>",
        // Not in the envelope namespace, so not SOAP's attribute.
        "<t:T xmlns:t=\"urn:t\" mustUnderstand=\"true\"/>",
        // For a role this endpoint does not play.
        "<t:T xmlns:t=\"urn:t\" env:mustUnderstand=\"true\" \
         env:role=\"http://www.w3.org/2003/05/soap-envelope/role/none\"/>",
        "<t:T xmlns:t=\"urn:t\" env:mustUnderstand=\"true\" env:role=\"urn:auditor\"/>",
        // WS-Addressing is understood.
        "<wsa:To env:mustUnderstand=\"true\">ws://x/soap</wsa:To>",
        "<wsa:Action env:mustUnderstand=\"1\">urn:x/Ping</wsa:Action>",
    ] {
        let request = parse(&envelope(header, PING)).unwrap_or_else(|e| panic!("{header}: {e}"));
        assert_eq!(request.body.name, "Ping");
    }
    // Roles this endpoint plays: "next" and the ultimate receiver.
    for role in ["next", "ultimateReceiver"] {
        let header = format!(
            "<t:T xmlns:t=\"urn:t\" env:mustUnderstand=\"true\" \
             env:role=\"http://www.w3.org/2003/05/soap-envelope/role/{role}\"/>"
        );
        let err = parse(&envelope(&header, PING)).unwrap_err();
        assert_eq!(err.fault.code, FaultCode::MustUnderstand, "{role}");
    }
}

#[test]
fn a_must_understand_that_is_not_a_boolean_is_a_sender_fault_part1_5_2_3() {
    let header = "<t:T xmlns:t=\"urn:t\" env:mustUnderstand=\"yes\"/>";
    assert_sender(parse(&envelope(header, PING)), "not true, false, 1 or 0");
}

#[test]
fn header_blocks_must_be_namespace_qualified_part1_5_2_1() {
    assert_sender(parse(&envelope("<T/>", PING)), "Part 1 §5.2.1");
}

#[test]
fn a_second_message_id_is_an_invalid_addressing_header() {
    let header = "<wsa:MessageID>urn:uuid:m2</wsa:MessageID>";
    let err = assert_sender(
        parse(&envelope(header, PING)),
        "more than one wsa:MessageID",
    );
    assert_eq!(
        err.fault.subcode,
        Some((WSA_NS.to_owned(), "InvalidAddressingHeader".to_owned()))
    );
    assert_eq!(err.message_id.as_deref(), Some("urn:uuid:m1"));
}

// ---- Part 1 §5: no DTD, no processing instructions; limits ----

#[test]
fn billion_laughs_is_refused_at_the_doctype_part1_5() {
    let mut dtd = String::from("<!DOCTYPE lolz [<!ENTITY lol \"lol\">");
    for i in 1..10 {
        let prev = if i == 1 {
            "lol".to_owned()
        } else {
            format!("lol{}", i - 1)
        };
        dtd.push_str(&format!(
            "<!ENTITY lol{i} \"{}\">",
            format!("&{prev};").repeat(10)
        ));
    }
    dtd.push(']');
    dtd.push('>');
    let xml = format!(
        "<?xml version=\"1.0\"?>{dtd}{}",
        envelope("", "<x>&lol9;</x>")
    );
    let started = Instant::now();
    let err = assert_sender(parse(&xml), "document type declaration");
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(err.fault.reason.contains("Part 1 §5"));
}

#[test]
fn an_external_entity_is_refused_at_the_doctype_part1_5() {
    let xml = format!(
        "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>{}",
        envelope("", "<x>&e;</x>")
    );
    assert_sender(parse(&xml), "document type declaration");
    // Without the DTD, the reference alone is to an undefined entity.
    assert_sender(parse(&envelope("", "<x>&e;</x>")), "undefined entity &e;");
    assert_sender(parse(&envelope("", "<x a=\"&e;\"/>")), "attribute value");
}

#[test]
fn predefined_entities_and_character_references_are_resolved() {
    let request = parse(&envelope(
        "",
        "<x xmlns=\"urn:x\">&lt;&gt;&amp;&apos;&quot;&#233;&#x1F980;</x>",
    ))
    .unwrap();
    assert_eq!(request.body.text, "<>&'\"é🦀");
}

#[test]
fn processing_instructions_are_refused_part1_5() {
    assert_sender(
        parse(&envelope("", "<?php echo 1; ?><x/>")),
        "processing instructions",
    );
    assert_sender(
        parse(&format!(
            "<?xml-stylesheet href=\"a\"?>{}",
            envelope("", PING)
        )),
        "processing instructions",
    );
}

#[test]
fn ten_thousand_levels_of_nesting_fail_fast_at_max_depth() {
    let depth = 10_000;
    let body = format!("{}{}", "<a>".repeat(depth), "</a>".repeat(depth));
    let xml = envelope("", &body);
    let started = Instant::now();
    let err = assert_sender(parse(&xml), "nested more than 64 deep");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(err.message_id.as_deref(), Some("urn:uuid:m1"));
    // Not even closed: it stops at the 65th level all the same.
    let unclosed = format!(
        "<e:Envelope xmlns:e=\"{SOAP12_ENVELOPE_NS}\"><e:Body>{}",
        "<a>".repeat(depth)
    );
    assert_sender(parse(&unclosed), "nested more than 64 deep");
    // Up to the limit is fine.
    // Envelope and Body are levels 1 and 2.
    let deep = format!("{}{}", "<a>".repeat(62), "</a>".repeat(62));
    assert!(parse(&envelope("", &deep)).is_ok());
    let too_deep = format!("{}{}", "<a>".repeat(63), "</a>".repeat(63));
    assert!(parse(&envelope("", &too_deep)).is_err());
}

#[test]
fn more_elements_than_max_elements_is_a_sender_fault() {
    let limits = Limits {
        max_elements: 100,
        ..Limits::default()
    };
    // Envelope, Header, MessageID, Body, the request: 5, plus its children.
    let fits = envelope("", &format!("<r>{}</r>", "<i/>".repeat(95)));
    assert!(parse_request(fits.as_bytes(), &limits).is_ok());
    let over = envelope("", &format!("<r>{}</r>", "<i/>".repeat(96)));
    assert_sender(
        parse_request(over.as_bytes(), &limits),
        "more than 100 elements",
    );
}

#[test]
fn an_oversized_message_is_refused_before_it_is_parsed() {
    let limits = Limits::default();
    let big = envelope("", &format!("<x>{}</x>", "a".repeat(limits.max_bytes)));
    assert_sender(
        parse_request(big.as_bytes(), &limits),
        "over this endpoint's limit",
    );
    // Not even looked at: bytes that are not XML get the same answer.
    let junk = vec![0xffu8; limits.max_bytes + 1];
    assert_sender(parse_request(&junk, &limits), "over this endpoint's limit");
    let small = Limits {
        max_bytes: 100,
        ..limits
    };
    assert_sender(
        parse_request(ZEEP_GET_QUOTE.as_bytes(), &small),
        "limit of 100",
    );
}

// ---- Part 1 §5.4: faults ----

/// The parts of a fault envelope, read back with this crate's own parser.
fn read_fault(xml: &str) -> (Request, String, Option<String>, String) {
    let request = parse(xml).unwrap();
    assert_eq!(request.action.as_deref(), Some(WSA_FAULT_ACTION));
    let fault = &request.body;
    assert_eq!(
        (fault.namespace.as_deref(), fault.name.as_str()),
        (Some(SOAP12_ENVELOPE_NS), "Fault")
    );
    let code = fault.child("Code").unwrap();
    let value = code.child("Value").unwrap().text.clone();
    let subcode = code
        .child("Subcode")
        .map(|s| s.child("Value").unwrap().text.clone());
    let reason = fault
        .child("Reason")
        .unwrap()
        .child("Text")
        .unwrap()
        .text
        .clone();
    (request.clone(), value, subcode, reason)
}

#[test]
fn each_fault_code_is_written_as_an_env_qname_part1_5_4_6() {
    for code in [
        FaultCode::VersionMismatch,
        FaultCode::MustUnderstand,
        FaultCode::DataEncodingUnknown,
        FaultCode::Sender,
        FaultCode::Receiver,
    ] {
        let xml = fault(Some("urn:uuid:r1"), &Fault::new(code, "why"));
        assert!(
            xml.contains("<wsa:RelatesTo>urn:uuid:r1</wsa:RelatesTo>"),
            "{xml}"
        );
        assert!(
            xml.contains("<env:Text xml:lang=\"en\">why</env:Text>"),
            "{xml}"
        );
        let (_, value, subcode, reason) = read_fault(&xml);
        assert_eq!(value, format!("env:{}", code.local_name()));
        assert_eq!((subcode, reason.as_str()), (None, "why"));
        // Part 1 §5.4.7: a VersionMismatch fault says which envelope is supported.
        assert_eq!(
            xml.contains(
                "<env:Upgrade><env:SupportedEnvelope qname=\"env:Envelope\"/></env:Upgrade>"
            ),
            code == FaultCode::VersionMismatch,
            "{xml}"
        );
    }
}

#[test]
fn a_subcode_is_a_qname_whose_prefix_is_declared_part1_5_4_6_1_2() {
    let unknown =
        Fault::new(FaultCode::Sender, "no such symbol: NOPE").with_subcode(SQ, "UnknownSymbol");
    let xml = fault(None, &unknown);
    assert!(
        xml.contains(
            "<env:Subcode><env:Value xmlns:sub=\"urn:sockeye:demo:stockquote\">sub:UnknownSymbol\
         </env:Value></env:Subcode>"
        ),
        "{xml}"
    );
    assert!(!xml.contains("RelatesTo"));
    let (_, value, subcode, reason) = read_fault(&xml);
    assert_eq!(value, "env:Sender");
    assert_eq!(subcode.as_deref(), Some("sub:UnknownSymbol"));
    assert_eq!(reason, "no such symbol: NOPE");
}

#[test]
fn the_fault_for_a_bad_request_relates_to_its_message_id() {
    let err = parse(&envelope("", "")).unwrap_err();
    let xml = fault(err.message_id.as_deref(), &err.fault);
    assert!(xml.contains("<wsa:RelatesTo>urn:uuid:m1</wsa:RelatesTo>"));
    assert!(xml.contains("<env:Value>env:Sender</env:Value>"));
}

// ---- escaping ----

#[test]
fn escaping_survives_a_write_and_a_reparse() {
    let nasty = "a < b && c > d \"quoted\" 'single' ]]> tab\there\r\nCRLF é 中文 🦀";
    let body = Element::new(Some("urn:x?a=1&b=\"2\""), "Echo")
        .with_child(Element::new(None, "text").with_text(nasty))
        .with_child(Element::new(Some("urn:y"), "other").with_text("&amp; stays literal"));
    let reply = response(Some("urn:uuid:<&\">"), Some("urn:x/Echo?a&b"), &body);
    let back = parse(&reply).unwrap();
    assert_eq!(back.body, body);
    assert_eq!(back.action.as_deref(), Some("urn:x/Echo?a&b"));
    let reason = "bad symbol <NOPE> & \"friends\" — ünïcödé";
    let xml = fault(
        Some("urn:uuid:<&>"),
        &Fault::new(FaultCode::Sender, reason).with_subcode("urn:a&b\"c", "X"),
    );
    let (_, _, _, back) = read_fault(&xml);
    assert_eq!(back, reason);
    assert!(xml.contains("<wsa:RelatesTo>urn:uuid:&lt;&amp;&gt;</wsa:RelatesTo>"));
}

#[test]
fn characters_xml_cannot_carry_are_written_as_replacement_characters() {
    let body = Element::new(None, "x").with_text("bell\u{7} nul\u{0} \u{fffe}");
    let back = parse(&response(None, None, &body)).unwrap();
    assert_eq!(back.body.text, "bell\u{fffd} nul\u{fffd} \u{fffd}");
}

#[test]
fn an_unqualified_element_inside_a_qualified_one_undeclares_the_default() {
    let body = Element::new(Some("urn:x"), "outer").with_child(Element::new(None, "inner"));
    let reply = response(None, None, &body);
    assert!(
        reply.contains("<outer xmlns=\"urn:x\"><inner xmlns=\"\"/></outer>"),
        "{reply}"
    );
    assert_eq!(parse(&reply).unwrap().body, body);
}

// ---- properties ----

/// Text with everything escaping must handle, and the characters XML cannot carry.
fn text() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[a-z<>&\"' \t\r\n\u{0}-\u{1f}é中🦀\u{fffe}\\]]{0,40}").unwrap()
}

/// What `text` reads back as: characters XML 1.0 cannot carry become U+FFFD.
fn as_written(s: &str) -> String {
    s.chars()
        .map(|c| {
            if crate::parse::is_xml_char(c) {
                c
            } else {
                '\u{fffd}'
            }
        })
        .collect()
}

/// Bytes that matter to XML more often than chance would pick them.
fn mutation_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        prop::sample::select(b"<>&;:=\"'/!?[]# \nxa0".to_vec()),
        any::<u8>(),
    ]
}

proptest! {
    #[test]
    fn any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_request(&bytes, &Limits::default());
    }

    #[test]
    fn any_bytes_after_a_valid_prefix_never_panic(
        cut in 0..ZEEP_GET_QUOTE.len(),
        tail in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut bytes = ZEEP_GET_QUOTE.as_bytes()[..cut].to_vec();
        bytes.extend_from_slice(&tail);
        let _ = parse_request(&bytes, &Limits { max_depth: 4, max_elements: 8, ..Limits::default() });
    }

    /// What the fuzz target checks, on mutations of a valid request: whatever is accepted
    /// comes back out of `response` as the same tree, and whatever is refused gets a fault that
    /// reads back.
    #[test]
    fn mutated_requests_are_answered_with_replies_that_read_back(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 0..4u8, mutation_byte()), 1..6),
    ) {
        let mut bytes = ZEEP_GET_QUOTE.as_bytes().to_vec();
        for (at, op, byte) in edits {
            let i = at.index(bytes.len() + 1);
            match op {
                0 => bytes.insert(i, byte),
                1 if i < bytes.len() => { bytes.remove(i); }
                2 if i < bytes.len() => bytes[i] = byte,
                _ => {
                    // Duplicate a slice, as a fuzzer splices inputs.
                    let j = (i + usize::from(byte)).min(bytes.len());
                    let slice = bytes[i..j].to_vec();
                    bytes.splice(i..i, slice);
                }
            }
        }
        match parse_request(&bytes, &Limits::default()) {
            Ok(request) => {
                let reply = response(request.message_id.as_deref(), request.action.as_deref(), &request.body);
                let back = parse(&reply).map_err(|e| TestCaseError::fail(format!("{e}\n{reply}")))?;
                prop_assert_eq!(back.body, request.body);
                prop_assert_eq!(back.action, request.action);
            }
            Err(err) => {
                let (_, value, _, _) = read_fault(&fault(err.message_id.as_deref(), &err.fault));
                prop_assert_eq!(value, format!("env:{}", err.fault.code.local_name()));
            }
        }
    }

    #[test]
    fn any_text_round_trips_through_a_reply(a in text(), b in text(), reason in text()) {
        let body = Element::new(Some("urn:x"), "r")
            .with_child(Element::new(None, "a").with_text(a.clone()))
            .with_child(Element::new(Some("urn:y"), "b").with_text(b.clone()));
        let back = parse(&response(Some(&a), Some("urn:x/r"), &body)).unwrap();
        prop_assert_eq!(&back.body.children[0].text, &as_written(&a));
        prop_assert_eq!(&back.body.children[1].text, &as_written(&b));
        let xml = fault(Some(&b), &Fault::new(FaultCode::Receiver, reason.clone()));
        let (_, _, _, back) = read_fault(&xml);
        prop_assert_eq!(back, as_written(&reason));
    }
}
