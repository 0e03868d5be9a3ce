//! `Sec-WebSocket-Extensions` (RFC 6455 §9.1) and permessage-deflate negotiation (RFC 7692 §7.1)
//! on arbitrary header values, from both sides:
//!
//! - `parse_extensions` never panics, and what `format_extensions` writes parses back to the same
//!   offers;
//! - the server (`DeflateConfig::server_accept`, then `ClientOffer::negotiate` +
//!   `accept_response`) accepts only offers it may, with window bits in 8..=15 and within what
//!   both sides asked, and its response is one the client that made the accepted offer accepts
//!   (`client_accept`, and `ClientHandshake::validate_response` on the whole 101) with the same
//!   parameters;
//! - whatever our client offers (`client_offer`), any server configuration accepts, and the
//!   client accepts the answer;
//! - read as a server's response, the header is accepted by `client_accept` only within the
//!   client's offer.
//!
//! Input: byte 0 the server's configuration, byte 1 the client's (each: bit 0
//! server_no_context_takeover, bit 1 client_no_context_takeover, bits 2-4 and 5-7
//! server_max_window_bits and client_max_window_bits minus 8); the rest is the header, one value
//! per line (`\n` separates repeated headers, which form one list).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockeye_proto::deflate::EXTENSION_NAME;
use sockeye_proto::extensions::{format_extensions, parse_extensions, ExtensionOffer};
use sockeye_proto::handshake::{accept_response, ClientHandshake, ClientOffer};
use sockeye_proto::{DeflateConfig, DeflateParams, PerMessageDeflate, Role};

/// RFC 6455 §1.3's sample key.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fn config(byte: u8) -> DeflateConfig {
    let mut config = DeflateConfig::default();
    config.server_no_context_takeover = byte & 1 != 0;
    config.client_no_context_takeover = byte & 2 != 0;
    config.server_max_window_bits = 8 + ((byte >> 2) & 7);
    config.client_max_window_bits = 8 + (byte >> 5);
    config
}

fn bits_ok(p: &DeflateParams) {
    assert!((8..=15).contains(&p.server_max_window_bits), "{p:?}");
    assert!((8..=15).contains(&p.client_max_window_bits), "{p:?}");
}

/// The value of a parameter in an offer that `server_accept` found acceptable (so each known
/// parameter appears at most once, and window bits are decimal 8..=15).
fn param<'a>(offer: &'a ExtensionOffer, key: &str) -> Option<&'a Option<String>> {
    offer.params.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

fn window(offer: &ExtensionOffer, key: &str) -> Option<u8> {
    param(offer, key)
        .and_then(|v| v.as_deref())
        .map(|v| v.parse().expect("accepted window bits are decimal"))
}

/// The configuration of a client whose offer is `offer`: what it asks of the server, and the
/// largest client window it allows (15 when it sent none or a value-less
/// `client_max_window_bits`).
fn client_that_offered(offer: &ExtensionOffer) -> DeflateConfig {
    let mut config = DeflateConfig::default();
    config.server_no_context_takeover = param(offer, "server_no_context_takeover").is_some();
    config.client_no_context_takeover = param(offer, "client_no_context_takeover").is_some();
    config.server_max_window_bits = window(offer, "server_max_window_bits").unwrap_or(15);
    config.client_max_window_bits = window(offer, "client_max_window_bits").unwrap_or(15);
    config
}

/// `format_extensions` writes what `parse_extensions` reads back to the same offers.
fn reparses(offers: &[ExtensionOffer]) {
    let text = format_extensions(offers);
    let back = parse_extensions([text.as_bytes()])
        .unwrap_or_else(|_| panic!("formatted offers do not parse: {text:?}"));
    assert_eq!(back, offers, "{text:?}");
}

/// The server's answer to `offers`, checked against the client that made the accepted offer.
fn server_side(server: &DeflateConfig, offers: &[ExtensionOffer]) {
    let Some((params, response)) = server.server_accept(offers) else {
        return;
    };
    bits_ok(&params);
    reparses(std::slice::from_ref(&response));
    assert_eq!(response.name, EXTENSION_NAME);
    // The accepted offer is the first permessage-deflate offer the server accepts on its own.
    let offer = offers
        .iter()
        .filter(|o| o.name == EXTENSION_NAME)
        .find(|o| server.server_accept(std::slice::from_ref(*o)).is_some())
        .expect("one offer was accepted");
    assert_eq!(
        server.server_accept(std::slice::from_ref(offer)),
        Some((params, response.clone()))
    );

    // Within what each side asked for (RFC 7692 §7.1.1, §7.1.2).
    assert!(params.server_max_window_bits <= server.server_max_window_bits);
    if let Some(asked) = window(offer, "server_max_window_bits") {
        assert!(
            params.server_max_window_bits <= asked,
            "{offer:?} {params:?}"
        );
    }
    if let Some(allowed) = param(offer, "client_max_window_bits") {
        assert!(params.client_max_window_bits <= server.client_max_window_bits);
        if let Some(allowed) = allowed {
            assert!(params.client_max_window_bits <= allowed.parse::<u8>().unwrap());
        }
    } else {
        // A client that did not offer client_max_window_bits may not be asked for a smaller
        // window (§7.1.2.2).
        assert_eq!(params.client_max_window_bits, 15, "{offer:?}");
    }
    if server.server_no_context_takeover || param(offer, "server_no_context_takeover").is_some() {
        assert!(params.server_no_context_takeover);
    }
    if server.client_no_context_takeover || param(offer, "client_no_context_takeover").is_some() {
        assert!(params.client_no_context_takeover);
    }

    // The client that made this offer accepts the response, with the same parameters.
    let client = client_that_offered(offer);
    let agreed = client
        .client_accept(&response)
        .unwrap_or_else(|e| panic!("{e}: offer {offer:?}, response {response:?}"));
    assert_eq!(agreed, params, "offer {offer:?}, response {response:?}");

    // The same through the handshake: negotiate, the 101, and the client's check of it.
    let client_offer = ClientOffer {
        key: Some(KEY.into()),
        protocols: Vec::new(),
        extensions: offers.to_vec(),
    };
    let negotiated = client_offer.negotiate(None, Some(server));
    assert_eq!(negotiated.deflate, Some(params));
    let resp = accept_response(&client_offer, &negotiated);
    let handshake = ClientHandshake {
        key: KEY.into(),
        protocols: Vec::new(),
        deflate: Some(client),
    };
    let seen = handshake
        .validate_response(&resp)
        .unwrap_or_else(|e| panic!("{e}: {resp:?}"));
    assert_eq!(seen.deflate, Some(params));

    let _ = PerMessageDeflate::new(Role::Server, params, server);
    let _ = PerMessageDeflate::new(Role::Client, params, handshake.deflate.as_ref().unwrap());
}

fuzz_target!(|data: &[u8]| {
    let [s, c, header @ ..] = data else {
        return;
    };
    let (server, client) = (config(*s), config(*c));

    // Whatever our client offers, a server accepts, and the client accepts its answer.
    let offer = client.client_offer();
    reparses(std::slice::from_ref(&offer));
    let (params, response) = server
        .server_accept(std::slice::from_ref(&offer))
        .unwrap_or_else(|| panic!("{server:?} refuses {offer:?}"));
    bits_ok(&params);
    assert_eq!(client.client_accept(&response), Ok(params), "{response:?}");
    server_side(&server, std::slice::from_ref(&offer));

    let Ok(offers) = parse_extensions(header.split(|&b| b == b'\n')) else {
        return;
    };
    reparses(&offers);
    server_side(&server, &offers);

    // The header as a server's response to `client`.
    for ext in offers.iter().filter(|o| o.name == EXTENSION_NAME) {
        if let Ok(p) = client.client_accept(ext) {
            bits_ok(&p);
            assert!(p.server_max_window_bits <= client.server_max_window_bits);
            assert!(p.client_max_window_bits <= client.client_max_window_bits);
            assert!(p.server_no_context_takeover || !client.server_no_context_takeover);
            assert!(p.client_no_context_takeover || !client.client_no_context_takeover);
        }
    }
});
