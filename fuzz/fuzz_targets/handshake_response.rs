//! `parse_response` and `ClientHandshake::validate_response` never panic on arbitrary bytes.
//! The client offers two subprotocols and permessage-deflate, with the RFC 6455 §1.3 sample key,
//! so inputs that carry its accept value reach the subprotocol and extension checks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockeye_proto::handshake::{parse_response, ClientHandshake};
use sockeye_proto::{DeflateConfig, PerMessageDeflate, Role};

fuzz_target!(|data: &[u8]| {
    let client = ClientHandshake {
        key: "dGhlIHNhbXBsZSBub25jZQ==".into(),
        protocols: vec!["chat".into(), "superchat".into()],
        deflate: Some({
            let mut config = DeflateConfig::default();
            config.client_max_window_bits = 12;
            config
        }),
    };
    let Ok(Some((resp, len))) = parse_response(data, 8192) else {
        return;
    };
    assert!(len <= data.len());
    if let Ok(negotiated) = client.validate_response(&resp) {
        if let Some(protocol) = &negotiated.protocol {
            assert!(client.protocols.contains(protocol));
        }
        if let Some(params) = negotiated.deflate {
            assert!((8..=15).contains(&params.server_max_window_bits));
            assert!((8..=12).contains(&params.client_max_window_bits));
            let cfg = client.deflate.as_ref().unwrap();
            let _ = PerMessageDeflate::new(Role::Client, params, cfg);
        }
    }
});
