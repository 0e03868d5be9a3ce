//! RFC 6455 §5.4 (Fragmentation): fragmented messages are reassembled, control frames may come
//! between fragments, continuation frames must continue something, and a sender's fragments go
//! out exactly as asked.

mod common;

use common::*;
use sockeye_proto::{
    CloseFrame, ConnectionConfig, DataKind, Event, ProtocolError, Role, UsageError,
};

#[test]
fn rfc_fragmented_hello_is_reassembled() {
    // RFC 6455 §5.7: "A fragmented unmasked text message".
    for role in ROLES {
        assert_eq!(receive_ok(role, b"\x01\x03Hel\x80\x02lo"), [text("Hello")]);
    }
}

#[test]
fn fragmented_binary_with_empty_fragments_is_reassembled() {
    for role in ROLES {
        let evs = receive_ok(
            role,
            b"\x02\x00\x00\x02\x00\x01\x00\x00\x00\x01\x02\x80\x00",
        );
        assert_eq!(evs, [binary(b"\x00\x01\x02")]);
    }
}

#[test]
fn message_is_delivered_only_after_the_final_fragment() {
    for role in ROLES {
        let mut c = conn(role);
        c.receive_data(&from_peer(role, b"\x01\x03Hel\x00\x01l"));
        assert!(events(&mut c).is_empty());
        c.receive_data(&from_peer(role, b"\x80\x01o"));
        assert_eq!(events(&mut c), [text("Hello")]);
    }
}

#[test]
fn many_fragments_are_reassembled_in_order() {
    let mut frames = vec![0x02, 0x01, 0];
    for i in 1..=254u8 {
        frames.extend_from_slice(&[0x00, 0x01, i]);
    }
    frames.extend_from_slice(&[0x80, 0x01, 255]);
    let all: Vec<u8> = (0..=255u8).collect();
    for role in ROLES {
        assert_eq!(receive_ok(role, &frames), [binary(&all)]);
    }
}

#[test]
fn ping_between_fragments_is_delivered_and_answered_before_the_message() {
    for role in ROLES {
        let mut c = conn(role);
        c.receive_data(&from_peer(role, b"\x01\x03Hel\x89\x04ping\x80\x02lo"));
        assert_eq!(
            events(&mut c),
            [Event::Ping(b"ping"[..].into()), text("Hello")]
        );
        let out = written_frames(&mut c);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].payload, b"ping");
        assert!(c.error().is_none());
    }
}

#[test]
fn control_frames_between_fragments_keep_their_order() {
    for role in ROLES {
        let evs = receive_ok(
            role,
            b"\x02\x01a\x8a\x01x\x00\x01b\x89\x01y\x8a\x01z\x00\x01c\x80\x01d\x81\x02ok",
        );
        assert_eq!(
            evs,
            [
                Event::Pong(b"x"[..].into()),
                Event::Ping(b"y"[..].into()),
                Event::Pong(b"z"[..].into()),
                binary(b"abcd"),
                text("ok"),
            ]
        );
    }
}

#[test]
fn close_between_fragments_drops_the_partial_message() {
    for role in ROLES {
        let evs = receive_ok(role, b"\x01\x03Hel\x88\x02\x03\xe8\x80\x02lo");
        assert_eq!(evs, [Event::CloseReceived(Some(CloseFrame::new(1000, "")))]);
    }
}

#[test]
fn continuation_without_start_fails_with_1002() {
    for frames in [&b"\x80\x02lo"[..], b"\x00\x02lo", b"\x80\x00"] {
        for role in ROLES {
            let c = assert_fails(
                role,
                ConnectionConfig::default(),
                &from_peer(role, frames),
                1002,
            );
            assert_eq!(c.error(), Some(&ProtocolError::UnexpectedContinuation));
        }
    }
}

#[test]
fn continuation_after_a_finished_message_fails_with_1002() {
    for role in ROLES {
        let mut c = conn(role);
        c.receive_data(&from_peer(role, b"\x01\x01a\x80\x01b\x80\x01c"));
        let evs = events(&mut c);
        assert_eq!(evs, [text("ab")]);
        assert_eq!(c.error(), Some(&ProtocolError::UnexpectedContinuation));
        assert_eq!(
            close_code(written_frames(&mut c).last().unwrap()),
            Some(1002)
        );
    }
}

#[test]
fn new_text_while_fragmented_fails_with_1002() {
    for frames in [
        &b"\x01\x03Hel\x81\x02lo"[..],
        b"\x01\x03Hel\x01\x02lo",
        b"\x02\x01a\x82\x01b",
        b"\x02\x01a\x00\x01b\x81\x01c",
    ] {
        for role in ROLES {
            let c = assert_fails(
                role,
                ConnectionConfig::default(),
                &from_peer(role, frames),
                1002,
            );
            assert_eq!(c.error(), Some(&ProtocolError::ExpectedContinuation));
        }
    }
}

#[test]
fn server_send_fragment_writes_the_rfc_fragmented_hello_with_a_ping_between() {
    let mut s = conn(Role::Server);
    s.send_fragment(Some(DataKind::Text), b"Hel", false)
        .unwrap();
    s.send_ping(b"").unwrap();
    s.send_fragment(None, b"lo", true).unwrap();
    assert_eq!(take_written(&mut s), b"\x01\x03Hel\x89\x00\x80\x02lo");
}

#[test]
fn client_send_fragment_writes_masked_fragments() {
    let mut c = conn(Role::Client);
    c.send_fragment(Some(DataKind::Text), b"Hel", false)
        .unwrap();
    c.send_fragment(None, b"", false).unwrap();
    c.send_fragment(None, b"lo", true).unwrap();
    assert_eq!(
        take_written(&mut c),
        b"\x01\x83\x37\xfa\x21\x3d\x7f\x9f\x4d\
\x00\x80\x37\xfa\x21\x3d\
\x80\x82\x37\xfa\x21\x3d\x5b\x95"
    );
}

#[test]
fn binary_send_fragment_uses_the_binary_opcode_first() {
    let mut s = conn(Role::Server);
    s.send_fragment(Some(DataKind::Binary), b"\x00", false)
        .unwrap();
    s.send_fragment(None, b"\x01", true).unwrap();
    assert_eq!(take_written(&mut s), b"\x02\x01\x00\x80\x01\x01");
    // A single fragment with FIN is a whole message.
    s.send_fragment(Some(DataKind::Binary), b"\x02", true)
        .unwrap();
    assert_eq!(take_written(&mut s), b"\x82\x01\x02");
}

#[test]
fn send_fragment_output_is_reassembled_by_the_peer() {
    for role in ROLES {
        let mut sender = conn(role);
        let mut receiver = conn(peer(role));
        sender
            .send_fragment(Some(DataKind::Text), "κό".as_bytes(), false)
            .unwrap();
        // A code point split across fragments.
        sender
            .send_fragment(None, &"σμε".as_bytes()[..3], false)
            .unwrap();
        sender.send_pong(b"p").unwrap();
        sender
            .send_fragment(None, &"σμε".as_bytes()[3..], true)
            .unwrap();
        receiver.receive_data(&take_written(&mut sender));
        assert_eq!(
            events(&mut receiver),
            [Event::Pong(b"p"[..].into()), text("κόσμε")]
        );
        assert!(receiver.error().is_none());
    }
}

#[test]
fn send_fragment_misuse_is_a_usage_error() {
    for role in ROLES {
        let mut c = conn(role);
        assert_eq!(
            c.send_fragment(None, b"x", true),
            Err(UsageError::NoFragmentInProgress)
        );
        c.send_fragment(Some(DataKind::Text), b"a", false).unwrap();
        assert_eq!(
            c.send_fragment(Some(DataKind::Binary), b"x", false),
            Err(UsageError::FragmentInProgress)
        );
        assert_eq!(c.send_text("x"), Err(UsageError::FragmentInProgress));
        assert_eq!(c.send_binary(b"x"), Err(UsageError::FragmentInProgress));
        // Control frames are allowed in the middle of a fragmented message.
        c.send_ping(b"").unwrap();
        c.send_fragment(None, b"b", true).unwrap();
        c.send_text("after").unwrap();
        let frames = written_frames(&mut c);
        assert_eq!(frames.len(), 4, "{role:?}: the refused calls wrote nothing");
    }
}
