//! RFC 6455 §5.5 (Control Frames): at most 125 bytes, never fragmented; a ping is answered with
//! a pong carrying the same payload (§5.5.2), and pongs are reported (§5.5.3).

mod common;

use common::*;
use sockeye_proto::connection::PONG_BACKLOG;
use sockeye_proto::frame::OpCode;
use sockeye_proto::{
    CloseFrame, ConnectionConfig, DataMessage, Event, ProtocolError, Role, UsageError,
};

fn control(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x80 | opcode];
    if payload.len() < 126 {
        frame.push(payload.len() as u8);
    } else {
        frame.push(126);
        frame.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    }
    frame.extend_from_slice(payload);
    frame
}

#[test]
fn ping_with_126_bytes_fails_with_1002() {
    let mut frame = b"\x89\x7e\x00\x7e".to_vec();
    frame.extend_from_slice(&[b'p'; 126]);
    for role in ROLES {
        let c = assert_fails(
            role,
            ConnectionConfig::default(),
            &from_peer(role, &frame),
            1002,
        );
        assert_eq!(c.error(), Some(&ProtocolError::ControlFrameTooBig));
    }
}

#[test]
fn control_frames_over_125_bytes_fail_with_1002_even_with_a_short_length_encoding() {
    for opcode in [0x8, 0x9, 0xa] {
        for len in [126usize, 200, 65535] {
            let frame = control(opcode, &vec![b'x'; len]);
            for role in ROLES {
                let c = assert_fails(
                    role,
                    ConnectionConfig::default(),
                    &from_peer(role, &frame),
                    1002,
                );
                assert_eq!(c.error(), Some(&ProtocolError::ControlFrameTooBig));
            }
        }
    }
    // A 64-bit length encoding of a small value is still judged by the value.
    let mut frame = b"\x89\x7f\x00\x00\x00\x00\x00\x00\x00\x7e".to_vec();
    frame.extend_from_slice(&[b'x'; 126]);
    assert_both_fail(&frame, 1002);
}

#[test]
fn ping_with_125_bytes_is_answered() {
    let payload: Vec<u8> = (0..125u8).collect();
    for role in ROLES {
        let mut c = conn(role);
        c.receive_data(&from_peer(role, &control(0x9, &payload)));
        assert_eq!(events(&mut c), [Event::Ping(payload.clone().into())]);
        let out = written_frames(&mut c);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].opcode, &out[0].payload), (OpCode::Pong, &payload));
    }
}

#[test]
fn fragmented_ping_fails_with_1002() {
    for role in ROLES {
        let c = assert_fails(
            role,
            ConnectionConfig::default(),
            &from_peer(role, b"\x09\x00"),
            1002,
        );
        assert_eq!(c.error(), Some(&ProtocolError::FragmentedControlFrame));
    }
}

#[test]
fn fragmented_pong_and_close_fail_with_1002() {
    for frame in [&b"\x0a\x01x"[..], b"\x08\x02\x03\xe8"] {
        for role in ROLES {
            let c = assert_fails(
                role,
                ConnectionConfig::default(),
                &from_peer(role, frame),
                1002,
            );
            assert_eq!(c.error(), Some(&ProtocolError::FragmentedControlFrame));
        }
    }
}

#[test]
fn fragmented_ping_inside_a_fragmented_message_fails_with_1002() {
    assert_both_fail(b"\x01\x01a\x09\x01p\x80\x01b", 1002);
}

#[test]
fn server_auto_pong_echoes_the_payload_exactly() {
    let payload: Vec<u8> = (0..=255u8).rev().take(125).collect();
    let mut s = conn(Role::Server);
    s.receive_data(&mask_frames(&control(0x9, &payload), KEY));
    assert_eq!(events(&mut s), [Event::Ping(payload.clone().into())]);
    let mut expected = b"\x8a\x7d".to_vec();
    expected.extend_from_slice(&payload);
    assert_eq!(take_written(&mut s), expected);
}

#[test]
fn client_auto_pong_echoes_the_payload_exactly() {
    let mut c = conn(Role::Client);
    c.receive_data(b"\x89\x05Hello");
    assert_eq!(events(&mut c), [Event::Ping(b"Hello"[..].into())]);
    // RFC 6455 §5.7: "A single-frame masked text message", as a pong.
    assert_eq!(
        take_written(&mut c),
        b"\x8a\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"
    );
}

#[test]
fn empty_ping_gets_an_empty_pong() {
    let mut s = conn(Role::Server);
    s.receive_data(&mask_frames(b"\x89\x00", KEY));
    assert_eq!(events(&mut s), [Event::Ping(b""[..].into())]);
    assert_eq!(take_written(&mut s), b"\x8a\x00");
}

#[test]
fn every_ping_gets_its_own_pong_in_order() {
    for role in ROLES {
        let mut c = conn(role);
        c.receive_data(&from_peer(role, b"\x89\x01a\x89\x01b\x89\x01c"));
        assert_eq!(events(&mut c).len(), 3);
        let pongs: Vec<Vec<u8>> = written_frames(&mut c)
            .into_iter()
            .map(|f| {
                assert_eq!(f.opcode, OpCode::Pong);
                f.payload
            })
            .collect();
        assert_eq!(pongs, [b"a", b"b", b"c"]);
    }
}

#[test]
fn ping_is_reported_without_a_pong_when_auto_pong_is_off() {
    for role in ROLES {
        let mut config = ConnectionConfig::default();
        config.auto_pong = false;
        let mut c = conn_with(role, config);
        c.receive_data(&from_peer(role, b"\x89\x02hi"));
        assert_eq!(events(&mut c), [Event::Ping(b"hi"[..].into())]);
        assert!(c.write_buf().is_empty());
        // The application answers itself.
        c.send_pong(b"hi").unwrap();
        let out = written_frames(&mut c);
        assert_eq!(
            (out[0].opcode, out[0].payload.as_slice()),
            (OpCode::Pong, &b"hi"[..])
        );
    }
}

#[test]
fn pong_is_reported_and_not_answered() {
    for role in ROLES {
        let mut c = conn(role);
        c.receive_data(&from_peer(role, b"\x8a\x03abc\x8a\x00"));
        assert_eq!(
            events(&mut c),
            [Event::Pong(b"abc"[..].into()), Event::Pong(b""[..].into())]
        );
        assert!(c.write_buf().is_empty());
        assert!(c.error().is_none());
    }
}

#[test]
fn ping_after_our_close_is_reported_but_not_answered() {
    // §5.5.1: after sending a close frame an endpoint sends nothing more.
    for role in ROLES {
        let mut c = conn(role);
        c.send_close(Some(CloseFrame::new(1000, ""))).unwrap();
        take_written(&mut c);
        c.receive_data(&from_peer(role, b"\x89\x01p"));
        assert_eq!(events(&mut c), [Event::Ping(b"p"[..].into())]);
        assert!(c.write_buf().is_empty(), "{role:?}");
    }
}

#[test]
fn ping_split_across_reads_is_answered_once_complete() {
    for role in ROLES {
        let wire = from_peer(role, b"\x89\x05Hello");
        let mut c = conn(role);
        let evs = feed_bytewise(&mut c, &wire);
        assert_eq!(evs, [Event::Ping(b"Hello"[..].into())]);
        let out = written_frames(&mut c);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].payload, b"Hello");
    }
}

#[test]
fn send_ping_and_pong_check_the_125_byte_limit() {
    for role in ROLES {
        let mut c = conn(role);
        assert_eq!(
            c.send_ping(&[0; 126]),
            Err(UsageError::ControlPayloadTooLong)
        );
        assert_eq!(
            c.send_pong(&[0; 126]),
            Err(UsageError::ControlPayloadTooLong)
        );
        assert!(c.write_buf().is_empty());
        c.send_ping(&[7; 125]).unwrap();
        let out = written_frames(&mut c);
        assert_eq!(out[0].opcode, OpCode::Ping);
        assert_eq!(out[0].payload, [7; 125]);
    }
}

#[test]
fn server_send_ping_writes_unmasked_bytes() {
    let mut s = conn(Role::Server);
    s.send_ping(b"Hello").unwrap();
    s.send_pong(b"").unwrap();
    assert_eq!(take_written(&mut s), b"\x89\x05Hello\x8a\x00");
}

#[test]
fn rfc6455_5_5_3_pings_from_a_peer_that_does_not_read_queue_one_pong_not_one_per_ping() {
    for role in ROLES {
        let mut c = conn(role);
        // 10,000 pings of 125 bytes, and the peer reads nothing: the pongs queue up to the
        // backlog, then only the latest is kept.
        let mut wire = Vec::new();
        for i in 0..10_000u32 {
            let mut payload = vec![b'p'; 121];
            payload.extend_from_slice(&i.to_be_bytes());
            wire.extend(control(0x9, &payload));
        }
        let wire = from_peer(role, &wire);
        for chunk in wire.chunks(4096) {
            c.receive_data(chunk);
            let _ = events(&mut c);
        }
        let pong_len = if role == Role::Client { 131 } else { 127 };
        let frames = written_frames(&mut c);
        // Pongs queue until they pass the backlog; the one after replaces the last.
        let kept = PONG_BACKLOG / pong_len + 1;
        assert_eq!(frames.len(), kept, "{role:?}");
        assert!(frames.iter().all(|f| f.opcode == OpCode::Pong));
        let last = &frames[kept - 1].payload[121..];
        assert_eq!(last, 9_999u32.to_be_bytes(), "{role:?}");
        let before = &frames[kept - 2].payload[121..];
        assert_eq!(before, (kept as u32 - 2).to_be_bytes(), "{role:?}");
    }
}

#[test]
fn rfc6455_5_5_3_over_the_backlog_only_a_pong_with_nothing_queued_after_it_is_replaced() {
    let mut c = conn(Role::Server);
    // A peer that reads nothing, with more than the backlog waiting for it.
    for _ in 0..2 {
        c.send(&DataMessage::Binary(vec![0; PONG_BACKLOG / 2 + 1].into()))
            .unwrap();
    }
    for ping in [&b"one"[..], b"two"] {
        c.receive_data(&from_peer(Role::Server, &control(0x9, ping)));
        let _ = events(&mut c);
    }
    c.send(&DataMessage::Text("between".into())).unwrap();
    for ping in [&b"three"[..], b"four"] {
        c.receive_data(&from_peer(Role::Server, &control(0x9, ping)));
        let _ = events(&mut c);
    }
    let frames = written_frames(&mut c);
    let payloads: Vec<&[u8]> = frames[2..].iter().map(|f| &f.payload[..]).collect();
    assert_eq!(payloads, [&b"two"[..], b"between", b"four"]);
}
