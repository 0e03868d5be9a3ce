//! RFC 6455 §5.1 (Overview) and §5.3 (Client-to-Server Masking): a client masks every frame, a
//! server masks none, and each side fails the connection with 1002 when the peer breaks the rule.

mod common;

use common::*;
use sockeye_proto::frame::OpCode;
use sockeye_proto::{CloseFrame, ConnectionConfig, Event, ProtocolError, Role, State};

/// RFC 6455 §5.7: "A single-frame masked text message".
const MASKED_HELLO: &[u8] = b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
/// RFC 6455 §5.7: "A single-frame unmasked text message".
const UNMASKED_HELLO: &[u8] = b"\x81\x05Hello";

#[test]
fn server_receives_unmasked_frame_fails_with_1002() {
    let c = assert_fails(
        Role::Server,
        ConnectionConfig::default(),
        UNMASKED_HELLO,
        1002,
    );
    assert_eq!(c.error(), Some(&ProtocolError::UnmaskedFrameFromClient));
}

#[test]
fn client_receives_masked_frame_fails_with_1002() {
    let c = assert_fails(
        Role::Client,
        ConnectionConfig::default(),
        MASKED_HELLO,
        1002,
    );
    assert_eq!(c.error(), Some(&ProtocolError::MaskedFrameFromServer));
}

#[test]
fn server_receives_unmasked_control_frames_fails_with_1002() {
    for wire in [&b"\x89\x00"[..], b"\x8a\x02hi", b"\x88\x02\x03\xe8"] {
        let c = assert_fails(Role::Server, ConnectionConfig::default(), wire, 1002);
        assert_eq!(c.error(), Some(&ProtocolError::UnmaskedFrameFromClient));
    }
}

#[test]
fn client_receives_masked_control_frames_fails_with_1002() {
    for wire in [
        &b"\x89\x80\x01\x02\x03\x04"[..],
        b"\x8a\x82\x01\x02\x03\x04\x69\x6b",
        b"\x88\x82\x00\x00\x00\x00\x03\xe8",
    ] {
        let c = assert_fails(Role::Client, ConnectionConfig::default(), wire, 1002);
        assert_eq!(c.error(), Some(&ProtocolError::MaskedFrameFromServer));
    }
}

#[test]
fn server_receives_unmasked_continuation_mid_message_fails_with_1002() {
    // A masked first fragment, then an unmasked continuation.
    let mut wire = mask_frames(b"\x01\x03Hel", KEY);
    wire.extend_from_slice(b"\x80\x02lo");
    let c = assert_fails(Role::Server, ConnectionConfig::default(), &wire, 1002);
    assert_eq!(c.error(), Some(&ProtocolError::UnmaskedFrameFromClient));
}

#[test]
fn server_unmasks_the_rfc_masked_hello() {
    let mut s = conn(Role::Server);
    s.receive_data(MASKED_HELLO);
    assert_eq!(events(&mut s), [text("Hello")]);
    assert!(s.error().is_none());
    assert!(s.write_buf().is_empty());
}

#[test]
fn client_reads_the_rfc_unmasked_hello() {
    let mut c = conn(Role::Client);
    c.receive_data(UNMASKED_HELLO);
    assert_eq!(events(&mut c), [text("Hello")]);
    assert!(c.error().is_none());
}

#[test]
fn server_accepts_masked_empty_frame_with_any_key() {
    let mut s = conn(Role::Server);
    s.receive_data(b"\x81\x80\xde\xad\xbe\xef\x82\x80\x00\x00\x00\x00");
    assert_eq!(events(&mut s), [text(""), binary(b"")]);
    assert!(s.error().is_none());
}

#[test]
fn server_unmasks_payload_split_at_every_offset() {
    // The key must stay aligned when a masked payload arrives in two reads.
    let payload = b"The quick brown fox jumps over the lazy dog";
    let mut frame = vec![0x82, payload.len() as u8];
    frame.extend_from_slice(payload);
    let wire = mask_frames(&frame, [0xa1, 0xb2, 0xc3, 0xd4]);
    for cut in 0..=wire.len() {
        let mut s = conn(Role::Server);
        s.receive_data(&wire[..cut]);
        let mut evs = events(&mut s);
        s.receive_data(&wire[cut..]);
        evs.extend(events(&mut s));
        assert_eq!(evs, [binary(payload)], "cut at {cut}");
    }
}

#[test]
fn failed_connection_ignores_further_input() {
    for (role, bad) in [(Role::Server, UNMASKED_HELLO), (Role::Client, MASKED_HELLO)] {
        let mut c = conn(role);
        c.receive_data(bad);
        assert!(events(&mut c).is_empty());
        let frames = written_frames(&mut c);
        assert_eq!(frames.len(), 1);
        assert_eq!(close_code(&frames[0]), Some(1002));
        assert_eq!(c.state(), State::Closing);

        // A valid message, a ping and a close frame after the failure: all ignored.
        let good = from_peer(role, b"\x81\x02hi\x89\x01p\x88\x02\x03\xe8");
        c.receive_data(&good);
        assert!(events(&mut c).is_empty(), "{role:?}");
        assert!(
            c.write_buf().is_empty(),
            "{role:?}: no pong, no second close"
        );
        assert!(c.read_buf().is_empty(), "{role:?}: input is not buffered");
        assert!(c.error().is_some());
    }
}

#[test]
fn client_output_is_the_rfc_masked_hello_with_its_key() {
    let mut c = conn(Role::Client);
    c.send_text("Hello").unwrap();
    assert_eq!(take_written(&mut c), MASKED_HELLO);
}

#[test]
fn server_output_is_the_rfc_unmasked_hello() {
    let mut s = conn(Role::Server);
    s.send_text("Hello").unwrap();
    assert_eq!(take_written(&mut s), UNMASKED_HELLO);
}

#[test]
fn client_masks_every_frame_type() {
    let mut c = conn(Role::Client);
    c.send_text("Hello").unwrap();
    c.send_binary(b"\x00\x01\x02").unwrap();
    c.send_ping(b"ping").unwrap();
    c.send_pong(b"").unwrap();
    c.send_close(Some(CloseFrame::new(1000, "bye"))).unwrap();
    assert_eq!(
        take_written(&mut c),
        [
            &b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"[..],
            b"\x82\x83\x37\xfa\x21\x3d\x37\xfb\x23",
            b"\x89\x84\x37\xfa\x21\x3d\x47\x93\x4f\x5a",
            b"\x8a\x80\x37\xfa\x21\x3d",
            b"\x88\x85\x37\xfa\x21\x3d\x34\x12\x43\x44\x52",
        ]
        .concat()
    );
}

#[test]
fn client_auto_pong_is_masked() {
    let mut c = conn(Role::Client);
    c.receive_data(b"\x89\x03abc");
    assert_eq!(events(&mut c), [Event::Ping(b"abc"[..].into())]);
    assert_eq!(
        take_written(&mut c),
        b"\x8a\x83\x37\xfa\x21\x3d\x56\x98\x42"
    );
}

#[test]
fn client_output_decodes_back_on_a_server() {
    let mut c = conn(Role::Client);
    let mut s = conn(Role::Server);
    let big = sample_binary(70_000);
    c.send_text("héllo wörld").unwrap();
    c.send_binary(&big).unwrap();
    c.send_ping(b"\xff\x00").unwrap();
    c.send_close(Some(CloseFrame::new(4000, "done"))).unwrap();
    s.receive_data(&take_written(&mut c));
    assert_eq!(
        events(&mut s),
        [
            text("héllo wörld"),
            binary(&big),
            Event::Ping(b"\xff\x00"[..].into()),
            Event::CloseReceived(Some(CloseFrame::new(4000, "done"))),
        ]
    );
    assert!(s.error().is_none());
}

#[test]
fn client_with_random_keys_uses_different_keys() {
    // Default connections draw keys from the OS; 8 equal keys in a row would mean no masking
    // randomness at all (chance 2^-224 otherwise).
    let mut c = sockeye_proto::Connection::new(Role::Client, ConnectionConfig::default());
    for _ in 0..8 {
        c.send_binary(b"x").unwrap();
    }
    let wire = take_written(&mut c);
    let keys: Vec<&[u8]> = wire.chunks(7).map(|f| &f[2..6]).collect();
    assert!(keys.iter().any(|k| *k != keys[0]), "keys {keys:02x?}");
    for f in decode_frames(&wire) {
        assert!(f.masked);
        assert_eq!(
            (f.opcode, f.payload.as_slice()),
            (OpCode::Binary, &b"x"[..])
        );
    }
}
