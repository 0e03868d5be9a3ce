//! RFC 6455 §5.2 (Base Framing Protocol): reserved bits and opcodes, the three payload length
//! encodings, frames split across reads, and headers that claim more than the limits allow.

mod common;

use common::*;
use sockeye_proto::{Connection, ConnectionConfig, Event, ProtocolError, Role};

#[test]
fn reserved_bits_without_extension_fail_with_1002() {
    // RSV1, RSV2, RSV3 and all three, on a text frame and on a ping.
    for rsv in [0x40u8, 0x20, 0x10, 0x70] {
        for frame in [[0x81 | rsv, 0x00], [0x89 | rsv, 0x00]] {
            for role in ROLES {
                let c = assert_fails(
                    role,
                    ConnectionConfig::default(),
                    &from_peer(role, &frame),
                    1002,
                );
                assert_eq!(
                    c.error(),
                    Some(&ProtocolError::ReservedBits),
                    "{frame:02x?}"
                );
            }
        }
    }
}

#[test]
fn reserved_bits_on_a_continuation_fail_with_1002() {
    assert_both_fail(b"\x01\x03Hel\xa0\x02lo", 1002);
}

#[test]
fn reserved_opcodes_3_to_7_and_b_to_f_fail_with_1002() {
    for op in (0x3u8..=0x7).chain(0xb..=0xf) {
        for role in ROLES {
            let frame = [0x80 | op, 0x00];
            let c = assert_fails(
                role,
                ConnectionConfig::default(),
                &from_peer(role, &frame),
                1002,
            );
            assert_eq!(c.error(), Some(&ProtocolError::ReservedOpcode(op)));
            // With a payload and without FIN too.
            let frame = [op, 0x02, b'h', b'i'];
            assert_fails(
                role,
                ConnectionConfig::default(),
                &from_peer(role, &frame),
                1002,
            );
        }
    }
}

#[test]
fn reserved_opcode_after_a_valid_message_fails_after_delivering_it() {
    for role in ROLES {
        let mut c = conn(role);
        c.receive_data(&from_peer(role, b"\x81\x02hi\x83\x00"));
        assert_eq!(c.poll_event(), Some(text("hi")));
        assert!(c.error().is_none(), "frames are parsed one event at a time");
        assert_eq!(c.poll_event(), None);
        assert_eq!(c.error(), Some(&ProtocolError::ReservedOpcode(3)));
        let frames = written_frames(&mut c);
        assert_eq!(close_code(&frames[0]), Some(1002));
    }
}

fn frame_with_len(len: usize, header: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let payload = sample_binary(len);
    let mut frame = header.to_vec();
    frame.extend_from_slice(&payload);
    (frame, payload)
}

#[test]
fn payload_lengths_in_7_16_and_64_bits_are_received() {
    let cases: &[(usize, &[u8])] = &[
        (0, b"\x82\x00"),
        (1, b"\x82\x01"),
        (125, b"\x82\x7d"),
        (126, b"\x82\x7e\x00\x7e"),
        (256, b"\x82\x7e\x01\x00"),
        (65535, b"\x82\x7e\xff\xff"),
        (65536, b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),
        (100_000, b"\x82\x7f\x00\x00\x00\x00\x00\x01\x86\xa0"),
    ];
    for &(len, header) in cases {
        let (frame, payload) = frame_with_len(len, header);
        for role in ROLES {
            assert_eq!(receive_ok(role, &frame), [binary(&payload)], "len {len}");
        }
    }
}

#[test]
fn non_minimal_length_encodings_are_read_by_value() {
    // §5.2 requires senders to use the minimal encoding; a receiver reading the value is
    // lenient but never misframes.
    for role in ROLES {
        let evs = receive_ok(
            role,
            b"\x81\x7e\x00\x02hi\x81\x7f\x00\x00\x00\x00\x00\x00\x00\x02yo",
        );
        assert_eq!(evs, [text("hi"), text("yo")]);
    }
}

#[test]
fn payload_lengths_in_7_16_and_64_bits_are_sent_minimally() {
    let cases: &[(usize, &[u8])] = &[
        (0, b"\x82\x00"),
        (125, b"\x82\x7d"),
        (126, b"\x82\x7e\x00\x7e"),
        (65535, b"\x82\x7e\xff\xff"),
        (65536, b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),
    ];
    for &(len, header) in cases {
        let payload = sample_binary(len);
        let mut s = conn(Role::Server);
        s.send_binary(&payload).unwrap();
        let wire = take_written(&mut s);
        assert_eq!(&wire[..header.len()], header, "server len {len}");
        assert_eq!(&wire[header.len()..], &payload[..]);

        let mut c = conn(Role::Client);
        c.send_binary(&payload).unwrap();
        let wire = take_written(&mut c);
        let mut masked_header = header.to_vec();
        masked_header[1] |= 0x80;
        masked_header.extend_from_slice(&KEY);
        assert_eq!(
            &wire[..masked_header.len()],
            masked_header,
            "client len {len}"
        );
        let frames = decode_frames(&wire);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].payload, payload);
    }
}

#[test]
fn length_with_most_significant_bit_set_fails_with_1002() {
    for role in ROLES {
        let frame = b"\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x01";
        let c = assert_fails(
            role,
            ConnectionConfig::default(),
            &from_peer(role, frame),
            1002,
        );
        assert_eq!(c.error(), Some(&ProtocolError::InvalidPayloadLength));
    }
}

/// Several frames of every kind, to be received in one read or in many.
const MIXED: &[u8] = b"\x81\x05Hello\
\x01\x03Hel\x89\x04ping\x00\x01l\x8a\x00\x80\x01o\
\x82\x7e\x00\x80\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\
\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\
\x20\x21\x22\x23\x24\x25\x26\x27\x28\x29\x2a\x2b\x2c\x2d\x2e\x2f\
\x30\x31\x32\x33\x34\x35\x36\x37\x38\x39\x3a\x3b\x3c\x3d\x3e\x3f\
\x40\x41\x42\x43\x44\x45\x46\x47\x48\x49\x4a\x4b\x4c\x4d\x4e\x4f\
\x50\x51\x52\x53\x54\x55\x56\x57\x58\x59\x5a\x5b\x5c\x5d\x5e\x5f\
\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f\
\x70\x71\x72\x73\x74\x75\x76\x77\x78\x79\x7a\x7b\x7c\x7d\x7e\x7f\
\x81\x00\
\x88\x04\x03\xe8ok";

fn mixed_events() -> Vec<Event> {
    vec![
        text("Hello"),
        Event::Ping(b"ping"[..].into()),
        Event::Pong(b""[..].into()),
        text("Hello"),
        binary(&(0u8..0x80).collect::<Vec<_>>()),
        text(""),
        Event::CloseReceived(Some(sockeye_proto::CloseFrame::new(1000, "ok"))),
    ]
}

#[test]
fn frames_in_one_read_give_every_event_in_order() {
    for role in ROLES {
        assert_eq!(receive_ok(role, MIXED), mixed_events(), "{role:?}");
    }
}

#[test]
fn frames_split_byte_by_byte_give_the_same_events_and_output() {
    for role in ROLES {
        let wire = from_peer(role, MIXED);
        let mut at_once = conn(role);
        at_once.receive_data(&wire);
        let expected = events(&mut at_once);
        assert_eq!(expected, mixed_events());

        let mut bytewise = conn(role);
        let evs = feed_bytewise(&mut bytewise, &wire);
        assert_eq!(evs, expected, "{role:?}");
        assert!(bytewise.error().is_none());
        assert_eq!(
            take_written(&mut bytewise),
            take_written(&mut at_once),
            "{role:?}: same pong and close echo"
        );
        assert_eq!(bytewise.eof_to_send(), at_once.eof_to_send());
    }
}

#[test]
fn frames_split_at_every_point_give_the_same_events() {
    for role in ROLES {
        let wire = from_peer(role, MIXED);
        for cut in 0..=wire.len() {
            let mut c = conn(role);
            c.receive_data(&wire[..cut]);
            let mut evs = events(&mut c);
            c.receive_data(&wire[cut..]);
            evs.extend(events(&mut c));
            assert_eq!(evs, mixed_events(), "{role:?} cut at {cut}");
        }
    }
}

#[test]
fn bytes_wanted_counts_the_rest_of_the_payload() {
    for role in ROLES {
        let (frame, payload) = frame_with_len(1000, b"\x82\x7e\x03\xe8");
        let wire = from_peer(role, &frame);
        let header_len = if role == Role::Server { 8 } else { 4 };
        let mut c = conn(role);
        c.receive_data(&wire[..header_len + 100]);
        assert!(events(&mut c).is_empty());
        assert_eq!(c.bytes_wanted(), 900);
        c.receive_data(&wire[header_len + 100..]);
        assert_eq!(events(&mut c), [binary(&payload)]);
        assert_eq!(c.bytes_wanted(), 0);
    }
}

/// A binary frame header claiming 2^63 - 1 bytes, the largest length §5.2 allows.
const HUGE: &[u8] = b"\x82\x7f\x7f\xff\xff\xff\xff\xff\xff\xff";

#[test]
fn header_claiming_2_pow_63_minus_1_bytes_fails_with_1009_without_allocating() {
    for role in ROLES {
        let mut wire = from_peer(role, HUGE);
        // The first payload bytes, as a peer that streams would send them.
        wire.extend_from_slice(&[0u8; 64]);
        let mut c = assert_fails(role, ConnectionConfig::default(), &wire, 1009);
        assert_eq!(c.error(), Some(&ProtocolError::FrameTooBig));
        assert!(
            c.read_buf().capacity() < 64 << 10,
            "{role:?} read buffer capacity {}",
            c.read_buf().capacity()
        );
    }
}

#[test]
fn header_claiming_2_pow_63_minus_1_bytes_without_limits_reserves_at_most_1_mib() {
    let mut unlimited = ConnectionConfig::default();
    unlimited.max_frame_size = usize::MAX;
    unlimited.max_message_size = usize::MAX;
    for role in ROLES {
        let mut c = conn_with(role, unlimited.clone());
        let mut wire = from_peer(role, HUGE);
        wire.extend_from_slice(&[0u8; 64]);
        c.receive_data(&wire);
        assert!(events(&mut c).is_empty());
        assert!(c.error().is_none());
        assert!(
            c.read_buf().capacity() <= (1 << 20) + 4096,
            "{role:?} read buffer capacity {}",
            c.read_buf().capacity()
        );
    }
}

#[test]
fn header_claiming_the_maximum_frame_size_reserves_at_most_1_mib_before_the_payload() {
    for role in ROLES {
        let mut c = conn(role);
        // 64 MiB, exactly the default max_frame_size, with 3 bytes of payload sent.
        let frame = b"\x82\x7f\x00\x00\x00\x00\x04\x00\x00\x00";
        let mut wire = from_peer(role, frame);
        wire.extend_from_slice(b"abc");
        c.receive_data(&wire);
        assert!(events(&mut c).is_empty());
        assert!(c.error().is_none());
        assert!(c.read_buf().capacity() <= (1 << 20) + 4096);
    }
}

#[test]
fn many_small_frames_in_one_read_are_all_delivered() {
    let mut frames = Vec::new();
    for i in 0..1000u32 {
        let s = i.to_string();
        frames.push(0x81);
        frames.push(s.len() as u8);
        frames.extend_from_slice(s.as_bytes());
    }
    for role in ROLES {
        let evs = receive_ok(role, &frames);
        let expected: Vec<Event> = (0..1000u32).map(|i| text(&i.to_string())).collect();
        assert_eq!(evs, expected);
    }
}

#[test]
fn read_buf_and_process_give_the_same_events_as_receive_data() {
    for role in ROLES {
        let wire = from_peer(role, MIXED);
        let mut c: Connection = conn(role);
        for chunk in wire.chunks(7) {
            c.read_buf().extend_from_slice(chunk);
            c.process();
        }
        assert_eq!(events(&mut c), mixed_events());
    }
}
