//! `parse_request` and `validate_request` never panic on arbitrary bytes, and what the server
//! builds from an accepted request (negotiation, the 101 response) or a refused one (the error
//! response) does not panic either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockeye_proto::handshake::{
    accept_response, is_upgrade_request, parse_request, validate_request, write_response,
};
use sockeye_proto::DeflateConfig;

fuzz_target!(|data: &[u8]| {
    let req = match parse_request(data, 8192) {
        Ok(Some((req, len))) => {
            assert!(len <= data.len());
            req
        }
        Ok(None) => {
            assert!(data.len() <= 8192);
            return;
        }
        Err(err) => {
            let (resp, body) = err.response();
            let _ = write_response(&resp, body.as_bytes());
            return;
        }
    };
    let _ = is_upgrade_request(&req);
    match validate_request(&req) {
        Ok(offer) => {
            let protocol = offer.select_protocol(&["chat", "superchat"]);
            let negotiated = offer.negotiate(protocol, Some(&DeflateConfig::default()));
            let resp = accept_response(&offer, &negotiated);
            let wire = write_response(&resp, b"");
            assert!(wire.starts_with(b"HTTP/1.1 101 "));
        }
        Err(err) => {
            let (resp, body) = err.response();
            assert!(resp.status().as_u16() >= 400);
            let _ = write_response(&resp, body.as_bytes());
        }
    }
});
