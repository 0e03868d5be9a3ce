//! `PerMessageDeflate` inflating arbitrary data with a 1 MiB limit never panics and never holds
//! more than the limit (plus the one byte that detects passing it).
//!
//! Input: byte 0 picks the parameters (bit 0 no context takeover); then fragments, each a
//! control byte (bits 0-6: length, bit 7: last fragment of the message) and that many bytes.
//! Messages follow each other on the same inflater, as on a connection, until one fails.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockeye_proto::{DeflateConfig, DeflateParams, PerMessageDeflate, ProtocolError, Role};

const LIMIT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let nct = flags & 1 != 0;
    let params = DeflateParams {
        server_no_context_takeover: nct,
        client_no_context_takeover: nct,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
    };
    let mut d = PerMessageDeflate::new(Role::Client, params, &DeflateConfig::default());
    let mut out = Vec::new();
    while let Some((&ctl, tail)) = rest.split_first() {
        let len = ((ctl & 0x7f) as usize).min(tail.len());
        let (fragment, tail) = tail.split_at(len);
        rest = tail;
        let mut result = d.decompress(fragment, &mut out, LIMIT);
        if result.is_ok() && ctl & 0x80 != 0 {
            result = d.finish_inbound(&mut out, LIMIT);
        }
        assert!(out.capacity() <= LIMIT + 1, "capacity {}", out.capacity());
        match result {
            Ok(()) => assert!(out.len() <= LIMIT, "{} bytes out", out.len()),
            Err(ProtocolError::MessageTooBig) | Err(ProtocolError::InvalidCompressedData) => return,
            Err(other) => panic!("unexpected error {other:?}"),
        }
        if ctl & 0x80 != 0 {
            out = Vec::new();
        }
    }
});
