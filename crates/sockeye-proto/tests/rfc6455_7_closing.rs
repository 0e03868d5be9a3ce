//! RFC 6455 §7 (Closing the Connection), with §5.5.1 (Close) and §7.4 (Status Codes): the
//! closing handshake from either side, who closes TCP, the close event, and invalid close frames.

mod common;

use common::*;
use sockeye_proto::frame::OpCode;
use sockeye_proto::{
    CloseCode, CloseFrame, ConnectionConfig, DataKind, Event, ProtocolError, Role, State,
    UsageError,
};

#[test]
fn peer_close_is_echoed_with_the_same_code_and_reason() {
    let mut s = conn(Role::Server);
    s.receive_data(&mask_frames(b"\x88\x05\x03\xe8bye", KEY));
    assert_eq!(
        events(&mut s),
        [Event::CloseReceived(Some(CloseFrame::new(1000, "bye")))]
    );
    assert_eq!(take_written(&mut s), b"\x88\x05\x03\xe8bye");

    let mut c = conn(Role::Client);
    c.receive_data(b"\x88\x05\x03\xe8bye");
    assert_eq!(
        events(&mut c),
        [Event::CloseReceived(Some(CloseFrame::new(1000, "bye")))]
    );
    assert_eq!(
        take_written(&mut c),
        b"\x88\x85\x37\xfa\x21\x3d\x34\x12\x43\x44\x52"
    );
}

#[test]
fn peer_close_with_application_code_is_echoed() {
    for role in ROLES {
        let mut c = conn(role);
        c.receive_data(&from_peer(role, b"\x88\x06\x0f\xa0done"));
        let out = written_frames(&mut c);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].payload, b"\x0f\xa0done");
        assert_eq!(c.close_event().code, CloseCode(4000));
        assert_eq!(c.close_event().reason, "done");
    }
}

#[test]
fn server_asks_to_close_tcp_after_the_handshake_and_client_does_not() {
    for role in ROLES {
        let mut c = conn(role);
        c.receive_data(&from_peer(role, b"\x88\x02\x03\xe8"));
        events(&mut c);
        assert_eq!(c.state(), State::Closed);
        // §7.1.1: "the underlying TCP connection ... SHOULD be closed first by the server".
        assert_eq!(c.eof_to_send(), role == Role::Server, "{role:?}");
    }
}

#[test]
fn close_event_is_clean_with_the_peer_code_after_the_peer_starts_closing() {
    for role in ROLES {
        let mut c = conn(role);
        c.receive_data(&from_peer(role, b"\x88\x04\x03\xe9hi"));
        events(&mut c);
        let ce = c.close_event();
        assert_eq!(ce.code, CloseCode::GOING_AWAY);
        assert_eq!(ce.reason, "hi");
        assert!(ce.was_clean);
        // The client then sees the server close TCP; the event does not change.
        c.receive_eof();
        assert_eq!(c.close_event(), ce);
        assert_eq!(c.state(), State::Closed);
    }
}

#[test]
fn locally_started_close_completes_when_the_peer_echoes() {
    for role in ROLES {
        let mut c = conn(role);
        c.send_close(Some(CloseFrame::new(1000, "bye"))).unwrap();
        assert_eq!(c.state(), State::Closing);
        assert!(c.close_expected());
        assert!(!c.eof_to_send());
        let out = written_frames(&mut c);
        assert_eq!(out[0].payload, b"\x03\xe8bye");

        // Data still arrives until the peer's close frame (§7.1.2 half-close).
        c.receive_data(&from_peer(role, b"\x81\x04late\x88\x02\x03\xe8"));
        assert_eq!(
            events(&mut c),
            [
                text("late"),
                Event::CloseReceived(Some(CloseFrame::new(1000, "")))
            ]
        );
        assert!(c.write_buf().is_empty(), "{role:?}: no second close frame");
        assert_eq!(c.state(), State::Closed);
        assert_eq!(c.eof_to_send(), role == Role::Server);
        let ce = c.close_event();
        assert_eq!((ce.code, ce.was_clean), (CloseCode::NORMAL, true));
    }
}

#[test]
fn close_without_code_reports_1005_and_is_echoed_empty() {
    for role in ROLES {
        let mut c = conn(role);
        c.receive_data(&from_peer(role, b"\x88\x00"));
        assert_eq!(events(&mut c), [Event::CloseReceived(None)]);
        let out = written_frames(&mut c);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].opcode, out[0].payload.len()), (OpCode::Close, 0));
        let ce = c.close_event();
        assert_eq!(ce.code, CloseCode::NO_STATUS);
        assert_eq!(ce.reason, "");
        assert!(ce.was_clean);
    }
    let mut s = conn(Role::Server);
    s.receive_data(&mask_frames(b"\x88\x00", KEY));
    events(&mut s);
    assert_eq!(take_written(&mut s), b"\x88\x00");
}

#[test]
fn send_close_without_code_writes_an_empty_close_frame() {
    let mut s = conn(Role::Server);
    s.send_close(None).unwrap();
    assert_eq!(take_written(&mut s), b"\x88\x00");
    let mut c = conn(Role::Client);
    c.send_close(None).unwrap();
    assert_eq!(take_written(&mut c), b"\x88\x80\x37\xfa\x21\x3d");
}

#[test]
fn invalid_close_codes_fail_with_1002() {
    for code in [
        0u16, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
    ] {
        let mut frame = b"\x88\x02".to_vec();
        frame.extend_from_slice(&code.to_be_bytes());
        for role in ROLES {
            let c = assert_fails(
                role,
                ConnectionConfig::default(),
                &from_peer(role, &frame),
                1002,
            );
            assert_eq!(c.error(), Some(&ProtocolError::InvalidCloseCode(code)));
        }
    }
}

#[test]
fn valid_close_codes_are_accepted() {
    for code in [
        1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999,
        4000, 4999,
    ] {
        let mut frame = b"\x88\x02".to_vec();
        frame.extend_from_slice(&code.to_be_bytes());
        for role in ROLES {
            let evs = receive_ok(role, &frame);
            assert_eq!(
                evs,
                [Event::CloseReceived(Some(CloseFrame::new(code, "")))],
                "{code}"
            );
        }
    }
}

#[test]
fn close_payload_of_one_byte_fails_with_1002() {
    for role in ROLES {
        let c = assert_fails(
            role,
            ConnectionConfig::default(),
            &from_peer(role, b"\x88\x01\x03"),
            1002,
        );
        assert_eq!(c.error(), Some(&ProtocolError::InvalidClosePayload));
    }
}

#[test]
fn close_reason_with_invalid_utf8_fails_with_1007() {
    for frame in [
        &b"\x88\x03\x03\xe8\xff"[..],
        b"\x88\x04\x03\xe8\xc0\xaf",
        b"\x88\x05\x03\xe8\xed\xa0\x80",
        b"\x88\x04\x03\xe8\xe2\x82",
    ] {
        for role in ROLES {
            let c = assert_fails(
                role,
                ConnectionConfig::default(),
                &from_peer(role, frame),
                1007,
            );
            assert_eq!(c.error(), Some(&ProtocolError::InvalidUtf8));
        }
    }
}

#[test]
fn close_reason_of_123_bytes_is_accepted() {
    let mut frame = b"\x88\x7d\x03\xe8".to_vec();
    frame.extend_from_slice(&[b'r'; 123]);
    for role in ROLES {
        let evs = receive_ok(role, &frame);
        assert_eq!(
            evs,
            [Event::CloseReceived(Some(CloseFrame::new(
                1000,
                "r".repeat(123)
            )))]
        );
    }
}

#[test]
fn eof_without_close_reports_1006_not_clean() {
    for role in ROLES {
        let mut c = conn(role);
        c.receive_data(&from_peer(role, b"\x81\x02hi"));
        assert_eq!(events(&mut c), [text("hi")]);
        c.receive_eof();
        assert_eq!(c.state(), State::Closed);
        let ce = c.close_event();
        assert_eq!(ce.code, CloseCode::ABNORMAL);
        assert!(!ce.was_clean);
        assert!(
            c.write_buf().is_empty(),
            "no close frame to a closed transport"
        );
    }
}

#[test]
fn eof_in_the_middle_of_a_frame_reports_1006() {
    for role in ROLES {
        let mut c = conn(role);
        c.receive_data(&from_peer(role, b"\x81\x05Hel"));
        c.receive_eof();
        assert!(events(&mut c).is_empty());
        assert_eq!(c.close_event().code, CloseCode::ABNORMAL);
        assert!(!c.close_event().was_clean);
    }
}

#[test]
fn eof_after_our_close_without_the_peer_close_is_not_clean() {
    for role in ROLES {
        let mut c = conn(role);
        c.send_close(Some(CloseFrame::new(1000, ""))).unwrap();
        c.receive_eof();
        assert_eq!(c.state(), State::Closed);
        let ce = c.close_event();
        assert_eq!((ce.code, ce.was_clean), (CloseCode::ABNORMAL, false));
    }
}

#[test]
fn data_after_the_peer_close_is_ignored() {
    for role in ROLES {
        let evs = receive_ok(role, b"\x88\x02\x03\xe8\x81\x02hi\x89\x00");
        assert_eq!(evs, [Event::CloseReceived(Some(CloseFrame::new(1000, "")))]);
        let mut c = conn(role);
        c.receive_data(&from_peer(role, b"\x88\x02\x03\xe8"));
        events(&mut c);
        take_written(&mut c);
        let mut late = from_peer(role, b"\x81\x02hi\x89\x00");
        late.extend_from_slice(b"\xff\xff\xff");
        c.receive_data(&late);
        assert!(events(&mut c).is_empty());
        assert!(c.write_buf().is_empty(), "{role:?}: no pong after close");
        assert!(
            c.error().is_none(),
            "{role:?}: garbage after close is not an error"
        );
    }
}

#[test]
fn send_after_close_is_usage_error_closed() {
    for role in ROLES {
        let mut c = conn(role);
        c.send_close(Some(CloseFrame::new(1000, ""))).unwrap();
        take_written(&mut c);
        assert_eq!(c.send_text("x"), Err(UsageError::Closed));
        assert_eq!(c.send_binary(b"x"), Err(UsageError::Closed));
        assert_eq!(c.send_ping(b""), Err(UsageError::Closed));
        assert_eq!(c.send_pong(b""), Err(UsageError::Closed));
        assert_eq!(c.send_close(None), Err(UsageError::Closed));
        assert_eq!(
            c.send_fragment(Some(DataKind::Text), b"x", true),
            Err(UsageError::Closed)
        );
        assert!(c.write_buf().is_empty());
    }
}

#[test]
fn send_after_the_peer_close_is_usage_error_closed() {
    for role in ROLES {
        let mut c = conn(role);
        c.receive_data(&from_peer(role, b"\x88\x00"));
        events(&mut c);
        take_written(&mut c);
        assert_eq!(c.send_text("x"), Err(UsageError::Closed));
        assert!(c.write_buf().is_empty());
    }
}

#[test]
fn send_after_failure_is_usage_error_closed() {
    for role in ROLES {
        let mut c = conn(role);
        c.receive_data(&from_peer(role, b"\x83\x00"));
        events(&mut c);
        take_written(&mut c);
        assert_eq!(c.send_text("x"), Err(UsageError::Closed));
        assert_eq!(c.send_close(None), Err(UsageError::Closed));
    }
}

#[test]
fn send_close_with_reserved_codes_is_a_usage_error() {
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000] {
        for role in ROLES {
            let mut c = conn(role);
            assert_eq!(
                c.send_close(Some(CloseFrame::new(code, ""))),
                Err(UsageError::InvalidCloseCode(code))
            );
            assert!(c.write_buf().is_empty());
            assert_eq!(c.state(), State::Open);
            // The connection is still usable.
            c.send_close(Some(CloseFrame::new(1000, ""))).unwrap();
        }
    }
}

#[test]
fn send_close_with_a_reason_over_123_bytes_is_a_usage_error() {
    for role in ROLES {
        let mut c = conn(role);
        assert_eq!(
            c.send_close(Some(CloseFrame::new(1000, "x".repeat(124)))),
            Err(UsageError::CloseReasonTooLong)
        );
        c.send_close(Some(CloseFrame::new(1000, "x".repeat(123))))
            .unwrap();
        let out = written_frames(&mut c);
        assert_eq!(out[0].payload.len(), 125);
    }
}

#[test]
fn application_fail_sends_the_error_code() {
    for role in ROLES {
        let mut c = conn(role);
        c.fail(ProtocolError::InvalidUtf8);
        let out = written_frames(&mut c);
        assert_eq!(close_code(&out[0]), Some(1007));
        assert_eq!(&out[0].payload[2..], b"invalid UTF-8");
        assert_eq!(c.eof_to_send(), role == Role::Server);
        assert!(c.close_expected());
        assert_eq!(c.close_event().code, CloseCode::ABNORMAL);
    }
}

#[test]
fn failure_after_our_close_sends_no_second_close_frame() {
    for role in ROLES {
        let mut c = conn(role);
        c.send_close(Some(CloseFrame::new(1000, ""))).unwrap();
        take_written(&mut c);
        c.receive_data(&from_peer(role, b"\x83\x00"));
        events(&mut c);
        assert!(c.error().is_some());
        assert!(c.write_buf().is_empty(), "{role:?}");
    }
}
