//! Limits beyond the RFCs (RFC 6455 §10.4, "Implementation-Specific Limits"): the largest frame
//! and the largest message a connection accepts, enforced with 1009 before memory is committed,
//! including for permessage-deflate messages that inflate far beyond their wire size.

mod common;

use common::*;
use sockeye_proto::{ConnectionConfig, DataKind, DeflateConfig, Event, ProtocolError, Role};

fn limits(max_frame_size: usize, max_message_size: usize) -> ConnectionConfig {
    let mut config = ConnectionConfig::default();
    config.max_frame_size = max_frame_size;
    config.max_message_size = max_message_size;
    config
}

#[test]
fn fragmented_message_growing_past_max_message_size_fails_with_1009() {
    for role in ROLES {
        let mut c = conn_with(role, limits(1 << 20, 10));
        c.receive_data(&from_peer(role, b"\x02\x06abcdef"));
        assert!(events(&mut c).is_empty());
        assert!(c.error().is_none());
        // 6 + 5 > 10: refused from the header, before the payload arrives.
        c.receive_data(&from_peer(role, b"\x00\x05"));
        let evs = events(&mut c);
        assert_failed_with(&mut c, 1009, &evs, b"second fragment");
        assert_eq!(c.error(), Some(&ProtocolError::MessageTooBig));
    }
}

#[test]
fn fragmented_message_of_exactly_max_message_size_is_accepted() {
    for role in ROLES {
        let mut c = conn_with(role, limits(1 << 20, 10));
        c.receive_data(&from_peer(role, b"\x01\x06abcdef\x00\x00\x80\x04ghij"));
        assert_eq!(events(&mut c), [text("abcdefghij")]);
        assert!(c.error().is_none());
    }
}

#[test]
fn single_frame_over_max_message_size_fails_with_1009() {
    for role in ROLES {
        let c = assert_fails(
            role,
            limits(1 << 20, 4),
            &from_peer(role, b"\x81\x05hello"),
            1009,
        );
        assert_eq!(c.error(), Some(&ProtocolError::MessageTooBig));
    }
}

#[test]
fn frame_over_max_frame_size_fails_with_1009() {
    for role in ROLES {
        let c = assert_fails(
            role,
            limits(4, 1 << 20),
            &from_peer(role, b"\x82\x05hello"),
            1009,
        );
        assert_eq!(c.error(), Some(&ProtocolError::FrameTooBig));
        // Also a continuation frame.
        let c = assert_fails(
            role,
            limits(4, 1 << 20),
            &from_peer(role, b"\x02\x04abcd\x80\x05hello"),
            1009,
        );
        assert_eq!(c.error(), Some(&ProtocolError::FrameTooBig));
    }
}

#[test]
fn frames_within_max_frame_size_make_a_larger_message() {
    for role in ROLES {
        let mut c = conn_with(role, limits(4, 1 << 20));
        c.receive_data(&from_peer(role, b"\x02\x04abcd\x00\x04efgh\x80\x04ijkl"));
        assert_eq!(events(&mut c), [binary(b"abcdefghijkl")]);
    }
}

#[test]
fn frame_too_big_is_refused_from_its_header_alone() {
    // 16 MiB announced against a 1 MiB limit, no payload sent: the failure does not wait for
    // the payload, and no buffer is sized for it.
    for role in ROLES {
        let mut c = conn_with(role, limits(1 << 20, 1 << 20));
        c.receive_data(&from_peer(
            role,
            b"\x82\x7f\x00\x00\x00\x00\x01\x00\x00\x00",
        ));
        let evs = events(&mut c);
        assert_failed_with(&mut c, 1009, &evs, b"16 MiB header");
        assert!(c.read_buf().capacity() < 64 << 10);
    }
}

fn deflate_threshold_0() -> DeflateConfig {
    let mut config = DeflateConfig::default();
    config.threshold = 0;
    config
}

/// A pair whose `receiver` side accepts messages of at most `max` bytes.
fn limited_pair(receiver: Role, max: usize) -> Pair {
    let small = limits(64 << 20, max);
    let (client_config, server_config) = match receiver {
        Role::Client => (small, ConnectionConfig::default()),
        Role::Server => (ConnectionConfig::default(), small),
    };
    Pair::with_config(
        deflate_threshold_0(),
        deflate_threshold_0(),
        client_config,
        server_config,
    )
}

#[test]
fn compressed_bomb_fails_with_1009() {
    // 16 MiB of zeros compress to about 16 KiB; the receiver's limit is 1 MiB.
    let zeros = vec![0u8; 16 << 20];
    for sender in ROLES {
        let receiver = peer(sender);
        let mut pair = limited_pair(receiver, 1 << 20);
        let (from, to) = pair.sides(sender);
        from.send_binary(&zeros).unwrap();
        let wire = take_written(from);
        assert!(wire.len() < 64 << 10, "bomb is {} bytes", wire.len());
        assert_eq!(wire[0], 0xc2, "compressed (RSV1) binary frame");
        to.receive_data(&wire);
        let evs = events(to);
        assert_failed_with(to, 1009, &evs, b"deflate bomb");
        assert_eq!(to.error(), Some(&ProtocolError::MessageTooBig));
    }
}

#[test]
fn compressed_fragmented_bomb_fails_with_1009_at_the_fragment_that_passes_the_limit() {
    let chunk = vec![b'a'; 256 << 10];
    for sender in ROLES {
        let receiver = peer(sender);
        let mut pair = limited_pair(receiver, 1 << 20);
        let (from, to) = pair.sides(sender);
        from.send_fragment(Some(DataKind::Text), &chunk, false)
            .unwrap();
        for _ in 0..3 {
            from.send_fragment(None, &chunk, false).unwrap();
        }
        // 4 × 256 KiB = 1 MiB exactly: still within the limit.
        to.receive_data(&take_written(from));
        assert!(events(to).is_empty());
        assert!(to.error().is_none(), "{:?}", to.error());
        // One more byte passes it.
        from.send_fragment(None, b"a", false).unwrap();
        to.receive_data(&take_written(from));
        let evs = events(to);
        assert_failed_with(to, 1009, &evs, b"fifth fragment");
    }
}

#[test]
fn compressed_message_of_exactly_max_message_size_is_accepted() {
    let data = sample_binary(1 << 20);
    for sender in ROLES {
        let mut pair = limited_pair(peer(sender), 1 << 20);
        pair.sides(sender).0.send_binary(&data).unwrap();
        assert_eq!(pair.pump(sender), [binary(&data)]);
        // One byte more is refused.
        pair.sides(sender)
            .0
            .send_binary(&sample_binary((1 << 20) + 1))
            .unwrap();
        let (from, to) = pair.sides(sender);
        to.receive_data(&take_written(from));
        let evs = events(to);
        assert_failed_with(to, 1009, &evs, b"limit + 1");
    }
}

#[test]
fn compressed_frame_is_still_bound_by_max_frame_size() {
    for sender in ROLES {
        let receiver_config = limits(1024, 64 << 20);
        let (client_config, server_config) = match sender {
            Role::Server => (receiver_config, ConnectionConfig::default()),
            Role::Client => (ConnectionConfig::default(), receiver_config),
        };
        let mut pair = Pair::with_config(
            deflate_threshold_0(),
            deflate_threshold_0(),
            client_config,
            server_config,
        );
        let (from, to) = pair.sides(sender);
        // Incompressible data: the compressed frame is over 1024 bytes.
        let noise: Vec<u8> = sample_binary(8192)
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ (i as u8).wrapping_mul(151))
            .collect();
        from.send_binary(&noise).unwrap();
        to.receive_data(&take_written(from));
        let evs = events(to);
        assert_failed_with(to, 1009, &evs, b"big compressed frame");
        assert_eq!(to.error(), Some(&ProtocolError::FrameTooBig));
    }
}

#[test]
fn unlimited_max_message_size_with_deflate_receives_messages() {
    // `usize::MAX` is the natural way to say "no limit"; inflating must not overflow on it.
    let unlimited = limits(usize::MAX, usize::MAX);
    let mut pair = Pair::with_config(
        deflate_threshold_0(),
        deflate_threshold_0(),
        unlimited.clone(),
        unlimited,
    );
    for sender in ROLES {
        pair.sides(sender)
            .0
            .send_text("Hello, Hello, Hello")
            .unwrap();
        assert_eq!(
            pair.pump(sender),
            [Event::Message(sockeye_proto::DataMessage::text(
                "Hello, Hello, Hello"
            ))]
        );
    }
}

#[test]
fn a_compressed_message_at_the_limit_is_accepted_though_its_frame_is_larger() {
    // Random bytes do not compress: deflate stores them, and the frame outgrows the message.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let random: Vec<u8> = (0..1 << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    for sender in ROLES {
        let receiver = peer(sender);
        let both = limits(1 << 20, 1 << 20);
        let (client_config, server_config) = match receiver {
            Role::Client => (both, ConnectionConfig::default()),
            Role::Server => (ConnectionConfig::default(), both),
        };
        let mut pair = Pair::with_config(
            deflate_threshold_0(),
            deflate_threshold_0(),
            client_config,
            server_config,
        );
        let (from, to) = pair.sides(sender);
        from.send_fragment(Some(DataKind::Binary), &random, true)
            .unwrap();
        let wire = take_written(from);
        assert_eq!(wire[0], 0xc2, "compressed (RSV1) binary frame");
        assert!(wire.len() > (1 << 20) + 14, "frame of {} bytes", wire.len());
        to.receive_data(&wire);
        let evs = events(to);
        assert!(to.error().is_none(), "{receiver:?}: {:?}", to.error());
        assert!(
            matches!(&evs[..], [Event::Message(sockeye_proto::DataMessage::Binary(b))] if b[..] == random[..]),
            "{receiver:?}"
        );
        // One byte more is over the message limit, whatever the frame's size.
        let mut more = random.clone();
        more.push(0);
        let (from, to) = pair.sides(sender);
        from.send_fragment(Some(DataKind::Binary), &more, true)
            .unwrap();
        let wire = take_written(from);
        to.receive_data(&wire);
        let evs = events(to);
        assert_failed_with(to, 1009, &evs, b"one byte over");
    }
}
