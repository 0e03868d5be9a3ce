//! RFC 7692 (permessage-deflate): the §7.2.3 wire examples, round trips between a client and a
//! server that negotiated the extension, RSV1 on the first frame only (§6, §6.1), and the frames
//! an endpoint must refuse.

mod common;

use common::*;
use sockeye_proto::frame::OpCode;
use sockeye_proto::{
    CompressionPolicy, Connection, ConnectionConfig, DataKind, DataMessage, DeflateConfig, Event,
    PerMessageDeflate, ProtocolError, Role,
};

/// A connection of `role` with permessage-deflate negotiated between two endpoints configured
/// with `cfg`. A client masks with [`KEY`].
fn deflate_conn(role: Role, cfg: &DeflateConfig) -> Connection {
    let params = negotiate(cfg, cfg);
    let mut c = Connection::new(role, ConnectionConfig::default())
        .with_deflate(Some(PerMessageDeflate::new(role, params, cfg)));
    if role == Role::Client {
        c.set_fixed_mask_key_for_tests(KEY);
    }
    c
}

/// Context takeover both ways, each side with its own zlib state.
fn threshold_0() -> DeflateConfig {
    let mut config = DeflateConfig::with_policy(CompressionPolicy::Max);
    config.threshold = 0;
    config
}

fn policy_threshold_0(policy: CompressionPolicy) -> DeflateConfig {
    let mut config = DeflateConfig::with_policy(policy);
    config.threshold = 0;
    config
}

const POLICIES: [CompressionPolicy; 3] = [
    CompressionPolicy::Fast,
    CompressionPolicy::Balanced,
    CompressionPolicy::Max,
];

fn no_context_takeover() -> DeflateConfig {
    let mut config = DeflateConfig::default();
    config.server_no_context_takeover = true;
    config.client_no_context_takeover = true;
    config.threshold = 0;
    config
}

/// Feeds frames (unmasked literals) to a deflate connection of `role` and returns the events,
/// checking that it did not fail.
fn deflate_receive(role: Role, frames: &[u8]) -> Vec<Event> {
    let mut c = deflate_conn(role, &threshold_0());
    c.receive_data(&from_peer(role, frames));
    let evs = events(&mut c);
    assert!(c.error().is_none(), "{role:?}: {:?}", c.error());
    evs
}

fn deflate_fails(role: Role, frames: &[u8], code: u16) -> Connection {
    let mut c = deflate_conn(role, &threshold_0());
    let wire = from_peer(role, frames);
    c.receive_data(&wire);
    let evs = events(&mut c);
    assert_failed_with(&mut c, code, &evs, &wire);
    c
}

// ---- §7.2.3 examples ----

#[test]
fn rfc7692_7_2_3_1_hello_is_received_by_a_client() {
    let mut c = deflate_conn(Role::Client, &DeflateConfig::default());
    c.receive_data(b"\xc1\x07\xf2\x48\xcd\xc9\xc9\x07\x00");
    assert_eq!(events(&mut c), [text("Hello")]);
    assert!(c.error().is_none());
}

#[test]
fn rfc7692_7_2_3_1_hello_is_received_by_both_roles_in_one_read_and_byte_by_byte() {
    let frame = b"\xc1\x07\xf2\x48\xcd\xc9\xc9\x07\x00";
    for role in ROLES {
        assert_eq!(deflate_receive(role, frame), [text("Hello")]);
        let mut c = deflate_conn(role, &DeflateConfig::default());
        assert_eq!(
            feed_bytewise(&mut c, &from_peer(role, frame)),
            [text("Hello")]
        );
    }
}

#[test]
fn rfc7692_7_2_3_1_fragmented_hello_is_received() {
    for role in ROLES {
        let evs = deflate_receive(role, b"\x41\x03\xf2\x48\xcd\x80\x04\xc9\xc9\x07\x00");
        assert_eq!(evs, [text("Hello")]);
    }
}

#[test]
fn rfc7692_7_2_3_2_second_hello_uses_the_shared_window() {
    for role in ROLES {
        let evs = deflate_receive(
            role,
            b"\xc1\x07\xf2\x48\xcd\xc9\xc9\x07\x00\xc1\x05\xf2\x00\x11\x00\x00",
        );
        assert_eq!(evs, [text("Hello"), text("Hello")]);
    }
}

#[test]
fn rfc7692_7_2_3_3_stored_block_hello_is_received() {
    for role in ROLES {
        let evs = deflate_receive(
            role,
            b"\xc1\x0b\x00\x05\x00\xfa\xff\x48\x65\x6c\x6c\x6f\x00",
        );
        assert_eq!(evs, [text("Hello")]);
    }
}

#[test]
fn rfc7692_7_2_3_4_bfinal_block_hello_is_received() {
    for role in ROLES {
        let evs = deflate_receive(role, b"\xc1\x08\xf3\x48\xcd\xc9\xc9\x07\x00\x00");
        assert_eq!(evs, [text("Hello")]);
    }
}

#[test]
fn rfc7692_7_2_3_4_bfinal_message_then_more_messages_are_received() {
    // A peer that flushes with BFINAL = 1 (§7.2.3.4) ends its DEFLATE stream with each message;
    // the octet after the final block and the appended `00 00 ff ff` make an empty stored block
    // of a new stream, after which the next message starts cleanly.
    for role in ROLES {
        let evs = deflate_receive(
            role,
            b"\xc1\x08\xf3\x48\xcd\xc9\xc9\x07\x00\x00\
\xc1\x08\xf3\x48\xcd\xc9\xc9\x07\x00\x00\
\xc1\x07\xf2\x48\xcd\xc9\xc9\x07\x00",
        );
        assert_eq!(
            evs,
            [text("Hello"), text("Hello"), text("Hello")],
            "{role:?}"
        );
    }
}

#[test]
fn bfinal_block_in_a_first_fragment_keeps_the_rest_of_the_message() {
    // The final block ends in the first fragment; the second fragment holds the empty stored
    // block's header octet.
    for role in ROLES {
        let evs = deflate_receive(
            role,
            b"\x41\x07\xf3\x48\xcd\xc9\xc9\x07\x00\x80\x01\x00\xc1\x07\xf2\x48\xcd\xc9\xc9\x07\x00",
        );
        assert_eq!(evs, [text("Hello"), text("Hello")], "{role:?}");
    }
}

#[test]
fn rfc7692_6_a_message_that_would_not_shrink_is_sent_uncompressed() {
    // "Hello" deflates to 7 bytes (§7.2.3.1); RSV1 is per message (§6), so it goes as it is,
    // in every policy, and an empty message too. The peer still decodes what follows.
    for policy in POLICIES {
        let mut pair = Pair::new(policy_threshold_0(policy), policy_threshold_0(policy));
        for sender in ROLES {
            // The last "Hello" shrinks only where the window holds the one before.
            let takeover = policy != CompressionPolicy::Fast
                && !(policy == CompressionPolicy::Balanced && sender == Role::Client);
            for (t, shrinks) in [
                ("Hello", false),
                ("", false),
                ("Hello, Hello, Hello, Hello, Hello", true),
                ("Hello", takeover),
            ] {
                pair.sides(sender).0.send_text(t).unwrap();
                let wire = take_written(pair.sides(sender).0);
                let frame = &decode_frames(&wire)[0];
                assert_eq!(frame.rsv != 0, shrinks, "{policy:?} {sender:?} {t:?}");
                pair.sides(sender).1.receive_data(&wire);
                assert_eq!(events(pair.sides(sender).1), [text(t)], "{policy:?}");
                assert!(pair.sides(sender).1.error().is_none());
            }
        }
    }
}

#[test]
fn rfc7692_7_2_3_2_server_writes_the_second_message_through_the_shared_window() {
    let mut s = deflate_conn(Role::Server, &threshold_0());
    let t = "Hello, Hello, Hello, Hello, Hello";
    s.send_text(t).unwrap();
    let first = decode_frames(&take_written(&mut s)).remove(0);
    s.send_text(t).unwrap();
    let second = decode_frames(&take_written(&mut s)).remove(0);
    assert!(first.rsv != 0 && second.rsv != 0);
    assert!(second.payload.len() < first.payload.len(), "{second:?}");
}

#[test]
fn client_writes_a_compressed_message_masked() {
    let mut c = deflate_conn(Role::Client, &threshold_0());
    c.send_text("Hello, Hello, Hello, Hello, Hello").unwrap();
    let wire = take_written(&mut c);
    assert_eq!(wire[0], 0xc1, "FIN, RSV1, text");
    assert_eq!(wire[1] & 0x80, 0x80, "masked");
    let mut s = deflate_conn(Role::Server, &threshold_0());
    s.receive_data(&wire);
    assert_eq!(events(&mut s), [text("Hello, Hello, Hello, Hello, Hello")]);
}

#[test]
fn no_context_takeover_repeats_the_same_bytes_for_the_same_message() {
    for role in ROLES {
        let mut c = deflate_conn(role, &no_context_takeover());
        let t = "Hello, Hello, Hello, Hello, Hello";
        c.send_text(t).unwrap();
        let first = decode_frames(&take_written(&mut c));
        c.send_text(t).unwrap();
        let second = decode_frames(&take_written(&mut c));
        assert_eq!(first, second, "{role:?}");
        assert!(first[0].rsv != 0);
    }
}

#[test]
fn empty_compressed_message_is_received_as_empty() {
    for role in ROLES {
        assert_eq!(deflate_receive(role, b"\xc1\x01\x00"), [text("")]);
    }
}

#[test]
fn empty_last_fragment_is_sent_as_one_zero_byte() {
    for sender in ROLES {
        let mut pair = Pair::new(threshold_0(), threshold_0());
        let from = pair.sides(sender).0;
        from.send_fragment(Some(DataKind::Text), b"Hello", false)
            .unwrap();
        from.send_fragment(None, b"", true).unwrap();
        let frames = decode_frames(&from.write_buf().clone());
        assert_eq!(frames[1].payload, b"\x00", "{sender:?}");
        assert_eq!(pair.pump(sender), [text("Hello")]);
        pair.sides(sender).0.send_text("Hello again").unwrap();
        assert_eq!(pair.pump(sender), [text("Hello again")]);
        // And an empty message made only of empty fragments.
        let from = pair.sides(sender).0;
        from.send_fragment(Some(DataKind::Binary), b"", false)
            .unwrap();
        from.send_fragment(None, b"", true).unwrap();
        assert_eq!(pair.pump(sender), [binary(b"")]);
        pair.sides(sender).0.send_text("Hello").unwrap();
        assert_eq!(pair.pump(sender), [text("Hello")]);
    }
}

#[test]
fn many_empty_and_small_messages_in_a_row_round_trip() {
    for cfg in [threshold_0(), no_context_takeover()] {
        let mut pair = Pair::new(cfg.clone(), cfg);
        for sender in ROLES {
            for i in 0..50 {
                let t = if i % 3 == 0 {
                    String::new()
                } else {
                    "ab".repeat(i % 7)
                };
                pair.sides(sender).0.send_text(&t).unwrap();
                assert_eq!(pair.pump(sender), [text(&t)], "{sender:?} message {i}");
            }
        }
    }
}

// ---- RSV1 ----

#[test]
fn rsv1_is_set_on_compressed_messages_only() {
    for role in ROLES {
        // The default threshold is 32 bytes.
        let mut c = deflate_conn(role, &DeflateConfig::default());
        c.send_text("short").unwrap();
        c.send_text(&"long enough to compress ".repeat(4)).unwrap();
        c.send_binary(&[0; 100]).unwrap();
        c.send_ping(&[0; 100]).unwrap();
        let frames = written_frames(&mut c);
        let rsv: Vec<(OpCode, u8)> = frames.iter().map(|f| (f.opcode, f.rsv)).collect();
        assert_eq!(
            rsv,
            [
                (OpCode::Text, 0),
                (OpCode::Text, 0b100),
                (OpCode::Binary, 0b100),
                (OpCode::Ping, 0),
            ]
        );
    }
}

#[test]
fn rsv1_is_set_on_the_first_fragment_only() {
    let mut s = deflate_conn(Role::Server, &threshold_0());
    s.send_fragment(Some(DataKind::Text), b"Hel", false)
        .unwrap();
    s.send_ping(b"").unwrap();
    s.send_fragment(None, b"", false).unwrap();
    s.send_fragment(None, b"lo", true).unwrap();
    let wire = take_written(&mut s);
    let frames = decode_frames(&wire);
    assert_eq!(wire[0], 0x41, "text, RSV1, no FIN");
    let heads: Vec<(bool, u8, OpCode)> = frames.iter().map(|f| (f.fin, f.rsv, f.opcode)).collect();
    assert_eq!(
        heads,
        [
            (false, 0b100, OpCode::Text),
            (true, 0, OpCode::Ping),
            (false, 0, OpCode::Continuation),
            (true, 0, OpCode::Continuation),
        ]
    );
    let mut c = deflate_conn(Role::Client, &threshold_0());
    c.receive_data(&wire);
    assert_eq!(events(&mut c), [Event::Ping(b""[..].into()), text("Hello")]);
}

#[test]
fn client_fragments_have_rsv1_on_the_first_frame_only() {
    let mut c = deflate_conn(Role::Client, &threshold_0());
    c.send_fragment(Some(DataKind::Binary), &[1; 50], false)
        .unwrap();
    c.send_fragment(None, &[2; 50], true).unwrap();
    let wire = take_written(&mut c);
    assert_eq!(wire[0], 0x42, "binary, RSV1, no FIN");
    let frames = decode_frames(&wire);
    assert_eq!(frames[1].rsv, 0);
    assert!(frames[1].fin);
}

#[test]
fn rsv1_on_a_continuation_fails_with_1002() {
    for role in ROLES {
        for frames in [
            &b"\x41\x03\xf2\x48\xcd\xc0\x04\xc9\xc9\x07\x00"[..],
            b"\x01\x03Hel\xc0\x02lo",
        ] {
            let c = deflate_fails(role, frames, 1002);
            assert_eq!(c.error(), Some(&ProtocolError::ReservedBits));
        }
    }
}

#[test]
fn rsv1_without_negotiated_deflate_fails_with_1002() {
    for role in ROLES {
        let c = assert_fails(
            role,
            ConnectionConfig::default(),
            &from_peer(role, b"\xc1\x07\xf2\x48\xcd\xc9\xc9\x07\x00"),
            1002,
        );
        assert_eq!(c.error(), Some(&ProtocolError::ReservedBits));
    }
}

#[test]
fn rsv1_on_control_frames_fails_with_1002() {
    // RFC 7692 §6.1: "An endpoint MUST NOT set the "Per-Message Compressed" bit of control
    // frames".
    for role in ROLES {
        for frame in [&b"\xc9\x00"[..], b"\xca\x00", b"\xc8\x02\x03\xe8"] {
            let c = deflate_fails(role, frame, 1002);
            assert_eq!(c.error(), Some(&ProtocolError::ReservedBits));
        }
    }
}

#[test]
fn rsv2_and_rsv3_with_deflate_fail_with_1002() {
    for role in ROLES {
        for frame in [&b"\xa1\x00"[..], b"\x91\x00", b"\xe1\x01\x00"] {
            deflate_fails(role, frame, 1002);
        }
    }
}

#[test]
fn uncompressed_messages_are_accepted_with_deflate_negotiated() {
    for role in ROLES {
        let evs = deflate_receive(
            role,
            b"\x81\x05Hello\xc1\x07\xf2\x48\xcd\xc9\xc9\x07\x00\x82\x01\x00\xc1\x05\xf2\x00\x11\x00\x00",
        );
        assert_eq!(
            evs,
            [text("Hello"), text("Hello"), binary(b"\x00"), text("Hello")]
        );
    }
}

// ---- invalid compressed data ----

#[test]
fn invalid_compressed_data_fails_with_1007() {
    for role in ROLES {
        // BTYPE 11 is reserved in DEFLATE.
        let c = deflate_fails(role, b"\xc1\x04\xff\xff\xff\xff", 1007);
        assert_eq!(c.error(), Some(&ProtocolError::InvalidCompressedData));
        // A stored block whose NLEN is not the complement of LEN.
        let c = deflate_fails(role, b"\xc1\x08\x00\x02\x00\x00\x00\xff\xfe\x00", 1007);
        assert_eq!(c.error(), Some(&ProtocolError::InvalidCompressedData));
    }
}

#[test]
fn compressed_text_with_invalid_utf8_fails_with_1007() {
    for role in ROLES {
        // A stored block holding ff fe.
        let c = deflate_fails(role, b"\xc1\x08\x00\x02\x00\xfd\xff\xff\xfe\x00", 1007);
        assert_eq!(c.error(), Some(&ProtocolError::InvalidUtf8));
    }
}

#[test]
fn compressed_binary_with_the_same_bytes_is_delivered() {
    for role in ROLES {
        let evs = deflate_receive(role, b"\xc2\x08\x00\x02\x00\xfd\xff\xff\xfe\x00");
        assert_eq!(evs, [binary(b"\xff\xfe")]);
    }
}

#[test]
fn compressed_first_fragment_with_invalid_utf8_fails_before_the_final_fragment() {
    for role in ROLES {
        let c = deflate_fails(role, b"\x41\x07\x00\x02\x00\xfd\xff\xff\xfe", 1007);
        assert_eq!(c.error(), Some(&ProtocolError::InvalidUtf8));
    }
}

// ---- round trips ----

const SIZES: [usize; 12] = [
    0,
    1,
    31,
    32,
    33,
    125,
    126,
    1000,
    65535,
    65536,
    100_000,
    1 << 20,
];

fn round_trip_all_sizes(client_cfg: DeflateConfig, server_cfg: DeflateConfig) {
    let mut pair = Pair::new(client_cfg, server_cfg);
    for sender in ROLES {
        for &len in &SIZES {
            let t = sample_text(len);
            pair.sides(sender).0.send_text(&t).unwrap();
            assert_eq!(pair.pump(sender), [text(&t)], "{sender:?} text {len}");
            let b = sample_binary(len);
            pair.sides(sender).0.send_binary(&b).unwrap();
            assert_eq!(pair.pump(sender), [binary(&b)], "{sender:?} binary {len}");
        }
    }
}

#[test]
fn round_trips_from_0_bytes_to_1_mib_with_context_takeover() {
    round_trip_all_sizes(threshold_0(), threshold_0());
}

#[test]
fn round_trips_from_0_bytes_to_1_mib_without_context_takeover() {
    round_trip_all_sizes(no_context_takeover(), no_context_takeover());
}

#[test]
fn round_trips_from_0_bytes_to_1_mib_with_each_compression_policy() {
    for policy in POLICIES {
        round_trip_all_sizes(policy_threshold_0(policy), policy_threshold_0(policy));
    }
}

#[test]
fn round_trips_with_the_default_threshold_mix_compressed_and_plain_messages() {
    round_trip_all_sizes(DeflateConfig::default(), DeflateConfig::default());
}

#[test]
fn round_trips_with_small_windows() {
    for bits in [8u8, 9, 12] {
        let mut cfg = DeflateConfig::default();
        cfg.server_max_window_bits = bits;
        cfg.client_max_window_bits = bits;
        cfg.threshold = 0;
        let params = negotiate(&cfg, &cfg);
        assert_eq!(
            (params.server_max_window_bits, params.client_max_window_bits),
            (bits, bits)
        );
        let mut pair = Pair::new(cfg.clone(), cfg);
        for sender in ROLES {
            for len in [0, 100, 5000, 70_000] {
                let t = sample_text(len);
                pair.sides(sender).0.send_text(&t).unwrap();
                assert_eq!(pair.pump(sender), [text(&t)], "{bits} bits, {len}");
            }
        }
    }
}

#[test]
fn one_sided_no_context_takeover_round_trips() {
    let mut server_only = DeflateConfig::default();
    server_only.server_no_context_takeover = true;
    server_only.threshold = 0;
    let mut pair = Pair::new(server_only.clone(), threshold_0());
    for sender in ROLES {
        for i in 0..5 {
            let t = sample_text(1000 + i);
            pair.sides(sender).0.send_text(&t).unwrap();
            assert_eq!(pair.pump(sender), [text(&t)]);
        }
    }
}

#[test]
fn compressed_fragmented_messages_round_trip() {
    for cfg in [threshold_0(), no_context_takeover()] {
        let mut pair = Pair::new(cfg.clone(), cfg);
        for sender in ROLES {
            for round in 0..3 {
                let t = sample_text(200_000 + round);
                let parts: Vec<&[u8]> = t.as_bytes().chunks(70_001).collect();
                let from = pair.sides(sender).0;
                from.send_fragment(Some(DataKind::Text), parts[0], false)
                    .unwrap();
                from.send_ping(b"mid").unwrap();
                from.send_fragment(None, b"", false).unwrap();
                for (i, part) in parts[1..].iter().enumerate() {
                    from.send_fragment(None, part, i == parts.len() - 2)
                        .unwrap();
                }
                assert_eq!(
                    pair.pump(sender),
                    [Event::Ping(b"mid"[..].into()), text(&t)],
                    "{sender:?} round {round}"
                );
                // The peer's auto pong goes back and is reported.
                assert_eq!(pair.pump(peer(sender)), [Event::Pong(b"mid"[..].into())]);
                // Then a whole message on the same window.
                let b = sample_binary(3000 + round);
                pair.sides(sender).0.send_binary(&b).unwrap();
                assert_eq!(pair.pump(sender), [binary(&b)]);
            }
        }
    }
}

#[test]
fn compressed_messages_fed_byte_by_byte_round_trip() {
    let mut pair = Pair::new(threshold_0(), threshold_0());
    for sender in ROLES {
        let t = sample_text(3000);
        let (from, to) = pair.sides(sender);
        from.send_text(&t).unwrap();
        from.send_fragment(Some(DataKind::Binary), b"abcabcabc", false)
            .unwrap();
        from.send_fragment(None, b"abcabcabc", true).unwrap();
        let wire = take_written(from);
        let evs = feed_bytewise(to, &wire);
        assert_eq!(evs, [text(&t), binary(b"abcabcabcabcabcabc")]);
        assert!(to.error().is_none());
    }
}

#[test]
fn highly_compressible_message_round_trips_with_a_small_wire_size() {
    let mut pair = Pair::new(threshold_0(), threshold_0());
    for sender in ROLES {
        let zeros = vec![0u8; 1 << 20];
        pair.sides(sender).0.send_binary(&zeros).unwrap();
        let wire_len = pair.sides(sender).0.buffered_amount();
        assert!(wire_len < 8 << 10, "{wire_len} bytes on the wire");
        assert_eq!(
            pair.pump(sender),
            [Event::Message(DataMessage::binary(zeros))]
        );
    }
}

#[test]
fn empty_compressed_payload_is_an_empty_message_and_keeps_the_window_in_step() {
    for role in [Role::Client, Role::Server] {
        let evs = deflate_receive(
            role,
            &[
                0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, // "Hello"
                0xc1, 0x00, // "" with no deflate data at all
                0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00, // "Hello" from the shared window
            ],
        );
        assert_eq!(
            evs,
            vec![text("Hello"), text(""), text("Hello")],
            "{role:?}"
        );
    }
}

#[test]
fn balanced_connections_sharing_compressors_stay_in_step_with_their_peers() {
    // More connections than the shared cache has compressors, sending in turn: most messages
    // find their compressor taken and prime a fresh one with the retained window. Each peer
    // must still inflate every message, and a message repeating an earlier one must still
    // compress to a few bytes through the window.
    // Eight compressors for the whole binary: any number is valid for the other tests.
    sockeye_proto::deflate::set_shared_compressors(8);
    let cfg = DeflateConfig::with_policy(CompressionPolicy::Balanced);
    let mut pairs: Vec<Pair> = (0..40)
        .map(|_| Pair::new(cfg.clone(), cfg.clone()))
        .collect();
    for round in 0..30 {
        for (i, pair) in pairs.iter_mut().enumerate() {
            let t = format!(
                r#"{{"type":"tick","symbol":"S{}","seq":{round},"bid":{}.25,"ask":{}.27}}"#,
                i % 7,
                100 + round,
                100 + round
            );
            pair.server.send_text(&t).unwrap();
            let wire = take_written(&mut pair.server);
            let frame = decode_frames(&wire).remove(0);
            if round > 0 {
                assert!(frame.rsv != 0);
                assert!(
                    frame.payload.len() < t.len() / 2,
                    "{} of {}",
                    frame.payload.len(),
                    t.len()
                );
            }
            pair.client.receive_data(&wire);
            assert_eq!(events(&mut pair.client), [text(&t)]);
            assert!(pair.client.error().is_none());
        }
    }
}

#[test]
fn rfc7692_7_1_2_window_bits_configured_outside_8_to_15_are_taken_as_the_nearest_bound() {
    for (client_bits, server_bits) in [(16, 16), (0, 0), (7, 255)] {
        let mut client_cfg = DeflateConfig::default();
        client_cfg.client_max_window_bits = client_bits;
        client_cfg.server_max_window_bits = server_bits;
        client_cfg.threshold = 0;
        let mut server_cfg = client_cfg.clone();
        server_cfg.client_max_window_bits = server_bits;
        server_cfg.server_max_window_bits = client_bits;
        let mut pair = Pair::new(client_cfg, server_cfg);
        for sender in [Role::Client, Role::Server] {
            let text = "a message that compresses, a message that compresses";
            pair.sides(sender).0.send_text(text).unwrap();
            assert_eq!(
                pair.pump(sender),
                [Event::Message(DataMessage::text(text))],
                "{client_bits}/{server_bits}"
            );
        }
    }
}
