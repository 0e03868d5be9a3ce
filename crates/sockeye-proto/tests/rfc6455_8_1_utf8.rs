//! RFC 6455 §8.1 (Handling Errors in UTF-8-Encoded Data): a text message that is not valid
//! UTF-8 fails the connection with 1007, as soon as the first invalid byte arrives, while code
//! points split across fragments or reads are valid.

mod common;

use common::*;
use sockeye_proto::{ConnectionConfig, Event, ProtocolError};

fn text_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mut f = vec![first, payload.len() as u8];
    f.extend_from_slice(payload);
    f
}

#[test]
fn invalid_utf8_in_a_single_frame_fails_with_1007() {
    for payload in [
        &b"\xff"[..],
        b"\xc0\xaf",                                                       // overlong '/'
        b"\xed\xa0\x80",                                                   // surrogate U+D800
        b"\xf4\x90\x80\x80",                                               // above U+10FFFF
        b"\xe2\x82",                                                       // truncated at the end
        b"\x80",                                                           // lone continuation byte
        b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited", // Autobahn 6.3.1
    ] {
        for role in ROLES {
            let frame = text_frame(0x81, payload);
            let c = assert_fails(
                role,
                ConnectionConfig::default(),
                &from_peer(role, &frame),
                1007,
            );
            assert_eq!(
                c.error(),
                Some(&ProtocolError::InvalidUtf8),
                "{payload:02x?}"
            );
        }
    }
}

#[test]
fn binary_messages_are_not_checked_for_utf8() {
    for role in ROLES {
        assert_eq!(receive_ok(role, b"\x82\x02\xc0\xaf"), [binary(b"\xc0\xaf")]);
    }
}

#[test]
fn valid_multibyte_text_in_a_single_frame_is_delivered() {
    let s = "κόσμε 🌍 \u{10FFFF} \u{FFFD}";
    for role in ROLES {
        assert_eq!(receive_ok(role, &text_frame(0x81, s.as_bytes())), [text(s)]);
    }
}

#[test]
fn invalid_byte_in_the_first_fragment_fails_before_the_final_fragment() {
    for role in ROLES {
        let mut c = conn(role);
        // A first fragment, not final, with an invalid byte in its middle.
        c.receive_data(&from_peer(role, b"\x01\x05ab\xffcd"));
        let evs = events(&mut c);
        assert_failed_with(&mut c, 1007, &evs, b"first fragment");
        assert_eq!(c.error(), Some(&ProtocolError::InvalidUtf8));
    }
}

#[test]
fn invalid_sequence_across_fragments_fails_at_the_second_fragment() {
    for role in ROLES {
        let mut c = conn(role);
        // κόσμε, then the start of a 4-byte sequence; the next fragment makes it > U+10FFFF.
        c.receive_data(&from_peer(
            role,
            b"\x01\x0c\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4",
        ));
        assert!(events(&mut c).is_empty());
        assert!(
            c.error().is_none(),
            "{role:?}: f4 may still start a valid code point"
        );
        c.receive_data(&from_peer(role, b"\x00\x01\x90"));
        let evs = events(&mut c);
        assert_failed_with(&mut c, 1007, &evs, b"second fragment");
    }
}

#[test]
fn code_point_split_across_fragments_is_valid() {
    for role in ROLES {
        // U+20AC € = e2 82 ac, one byte per fragment.
        let evs = receive_ok(role, b"\x01\x01\xe2\x00\x01\x82\x80\x01\xac");
        assert_eq!(evs, [text("€")]);
        // U+1F30D 🌍 = f0 9f 8c 8d, split 1 + 3 and 3 + 1, with a ping between.
        let evs = receive_ok(role, b"\x01\x01\xf0\x89\x00\x80\x03\x9f\x8c\x8d");
        assert_eq!(evs, [Event::Ping(b""[..].into()), text("🌍")]);
        let evs = receive_ok(role, b"\x01\x03\xf0\x9f\x8c\x00\x00\x80\x01\x8d");
        assert_eq!(evs, [text("🌍")]);
    }
}

#[test]
fn valid_text_split_into_two_fragments_at_every_byte_is_valid() {
    let s = "héllo κόσμε 🌍!";
    let bytes = s.as_bytes();
    for at in 0..=bytes.len() {
        let mut frames = text_frame(0x01, &bytes[..at]);
        frames.extend(text_frame(0x80, &bytes[at..]));
        for role in ROLES {
            assert_eq!(receive_ok(role, &frames), [text(s)], "split at {at}");
        }
    }
}

#[test]
fn text_ending_inside_a_code_point_fails_with_1007_at_the_final_fragment() {
    for role in ROLES {
        let mut c = conn(role);
        c.receive_data(&from_peer(role, b"\x01\x02ok\x00\x01\xe2"));
        assert!(events(&mut c).is_empty());
        assert!(c.error().is_none());
        c.receive_data(&from_peer(role, b"\x80\x01\x82"));
        let evs = events(&mut c);
        assert_failed_with(&mut c, 1007, &evs, b"final fragment");
    }
}

#[test]
fn invalid_utf8_fed_byte_by_byte_fails_at_the_first_bad_byte() {
    // Autobahn 6.4.1: κόσμε, then f4 90 80 80 (above U+10FFFF), then "edited", in one frame.
    let payload = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80edited";
    let frame = text_frame(0x81, payload);
    // f4 is at payload index 11; 90 at 12 is the first byte that cannot be valid.
    let bad = 12;
    for role in ROLES {
        let wire = from_peer(role, &frame);
        let header_len = wire.len() - payload.len();
        let mut c = conn(role);
        for (i, b) in wire.iter().enumerate() {
            c.receive_data(std::slice::from_ref(b));
            assert!(events(&mut c).is_empty());
            let fed = i + 1;
            if fed < header_len + bad + 1 {
                assert!(
                    c.error().is_none(),
                    "{role:?}: failed early at wire byte {i}"
                );
            } else {
                assert_eq!(
                    c.error(),
                    Some(&ProtocolError::InvalidUtf8),
                    "{role:?}: not failed at wire byte {i}"
                );
                if fed == header_len + bad + 1 {
                    let out = written_frames(&mut c);
                    assert_eq!(close_code(&out[0]), Some(1007));
                }
            }
        }
        assert!(c.write_buf().is_empty(), "{role:?}: one close frame only");
    }
}

#[test]
fn valid_text_fed_byte_by_byte_is_delivered() {
    let s = "κόσμε 🌍 \u{10FFFF}";
    for role in ROLES {
        let mut c = conn(role);
        let evs = feed_bytewise(&mut c, &from_peer(role, &text_frame(0x81, s.as_bytes())));
        assert_eq!(evs, [text(s)]);
        assert!(c.error().is_none());
    }
}

#[test]
fn surrogate_split_across_fragments_fails_with_1007() {
    for role in ROLES {
        let mut c = conn(role);
        c.receive_data(&from_peer(role, b"\x01\x01\xed"));
        assert!(c.error().is_none());
        c.receive_data(&from_peer(role, b"\x00\x01\xa0"));
        let evs = events(&mut c);
        assert_failed_with(&mut c, 1007, &evs, b"ed | a0");
    }
}
