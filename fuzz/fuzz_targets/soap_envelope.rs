//! `sockeye_soap::parse_request` never panics on arbitrary bytes, stays within its limits, and
//! what the server would send back reads back: a request's body written by `response` parses
//! to the same element tree, and the fault for a refused one parses as a fault relating to the
//! same `wsa:MessageID`.
//!
//! The input is the message itself; the seeds are SOAP 1.2 envelopes (zeep's, with prefixes
//! of its own), a SOAP 1.1 one, a DTD, deep nesting and a mustUnderstand header.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockeye_soap::{fault, parse_request, response, Limits, WSA_FAULT_ACTION};

/// Small limits, so that the fuzzer reaches them with short inputs.
const LIMITS: Limits = Limits::new(64 << 10, 16, 256);

/// For reading back what was written: escaping may grow the text, and a reply adds up to six
/// elements (Envelope, Header, MessageID, RelatesTo, Action, Body) around the body.
const READ_BACK: Limits = Limits::new(1 << 20, 16, 256 + 6);

fuzz_target!(|data: &[u8]| {
    match parse_request(data, &LIMITS) {
        Ok(request) => {
            assert!(data.len() <= LIMITS.max_bytes);
            let reply = response(
                request.message_id.as_deref(),
                request.action.as_deref(),
                &request.body,
            );
            let back = parse_request(reply.as_bytes(), &READ_BACK)
                .unwrap_or_else(|e| panic!("a reply does not read back: {e}\n{reply}"));
            assert_eq!(back.body, request.body, "{reply}");
            assert_eq!(back.action, request.action);
        }
        Err(err) => {
            let xml = fault(err.message_id.as_deref(), &err.fault);
            let back = parse_request(xml.as_bytes(), &READ_BACK)
                .unwrap_or_else(|e| panic!("a fault does not read back: {e}\n{xml}"));
            assert_eq!(back.action.as_deref(), Some(WSA_FAULT_ACTION));
            assert_eq!(back.body.name, "Fault");
            if let Some(id) = &err.message_id {
                assert!(xml.contains("wsa:RelatesTo"), "{id}");
            }
        }
    }
});
