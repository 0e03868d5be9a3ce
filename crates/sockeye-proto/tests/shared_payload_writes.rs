//! Large server payloads and prepared (framed-once) messages are queued as shared `Bytes`
//! beside the write buffer. These tests prove that what reaches the wire is byte for byte what
//! the copying path writes (RFC 6455 §5.2 framing, §5.4 control frames between messages), in
//! order, however the I/O layer splits its writes.

mod common;

use std::io::IoSlice;

use common::{conn, mask_frames, KEY};
use sockeye_proto::bytes::Bytes;
use sockeye_proto::{Connection, DataMessage, Event, PreparedMessage, Role};

/// Drains a connection through `write_slices`/`advance_written`, writing at most `step` bytes
/// at a time, as a socket taking partial writes would.
fn drain_vectored(conn: &mut Connection, step: usize) -> Vec<u8> {
    let mut wire = Vec::new();
    while conn.buffered_amount() > 0 {
        let mut slices = [IoSlice::new(&[]); 4];
        let used = conn.write_slices(&mut slices);
        assert!(used > 0, "bytes are buffered but no slice was given");
        let mut taken = 0;
        for slice in &slices[..used] {
            let k = slice.len().min(step - taken);
            wire.extend_from_slice(&slice[..k]);
            taken += k;
            if taken == step {
                break;
            }
        }
        conn.advance_written(taken);
    }
    wire
}

fn payload(len: usize, seed: u8) -> Bytes {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect::<Vec<u8>>()
        .into()
}

/// The same commands on a server whose owned sends are written by copy.
fn expected_wire(script: &[DataMessage], ping_after: usize) -> Vec<u8> {
    let mut copy = conn(Role::Server);
    for (i, m) in script.iter().enumerate() {
        copy.send(m).unwrap();
        if i == ping_after {
            copy.send_ping(b"between").unwrap();
        }
    }
    copy.write_buf().to_vec()
}

#[test]
fn owned_server_payloads_reach_the_wire_unchanged_and_in_order_5_2() {
    let script = [
        DataMessage::Binary(payload(20, 1)),
        DataMessage::Binary(payload(16 << 10, 2)),
        DataMessage::text("x".repeat(70_000)),
        DataMessage::Binary(payload(1024, 3)),
        DataMessage::Binary(payload(1023, 4)),
    ];
    let expected = expected_wire(&script, 1);
    for step in [1, 7, 1000, 4096, usize::MAX] {
        let mut server = conn(Role::Server);
        for (i, m) in script.iter().enumerate() {
            server.send_owned(m.clone()).unwrap();
            if i == 1 {
                server.send_ping(b"between").unwrap();
            }
        }
        assert!(server.has_queued_payloads(), "large payloads were copied");
        assert_eq!(server.buffered_amount(), expected.len());
        let wire = drain_vectored(&mut server, step.min(expected.len()));
        assert_eq!(wire, expected, "step {step}");
        assert_eq!(server.buffered_amount(), 0);
        assert!(!server.has_queued_payloads());
    }
}

#[test]
fn write_buf_gathers_queued_payloads_for_a_copying_io_layer() {
    let script = [
        DataMessage::Binary(payload(5000, 5)),
        DataMessage::Binary(payload(10, 6)),
        DataMessage::Binary(payload(3000, 7)),
    ];
    let expected = expected_wire(&script, 0);
    let mut server = conn(Role::Server);
    server.send_owned(script[0].clone()).unwrap();
    server.send_ping(b"between").unwrap();
    // Half written by vectors, the rest by the copying path.
    let mut slices = [IoSlice::new(&[]); 4];
    let used = server.write_slices(&mut slices);
    let first: Vec<u8> = slices[..used].iter().flat_map(|s| s.to_vec()).collect();
    server.advance_written(first.len() / 2);
    server.send_owned(script[1].clone()).unwrap();
    server.send_owned(script[2].clone()).unwrap();
    let mut wire = first[..first.len() / 2].to_vec();
    wire.extend_from_slice(&server.write_buf().split());
    assert_eq!(wire, expected);
    assert!(!server.has_queued_payloads());
}

#[test]
fn a_prepared_message_is_one_shared_frame_for_every_server_connection() {
    let prepared = PreparedMessage::text("tick ".repeat(10));
    let mut servers: Vec<Connection> = (0..3).map(|_| conn(Role::Server)).collect();
    for server in &mut servers {
        server.send_prepared(&prepared).unwrap();
        let mut slices = [IoSlice::new(&[]); 4];
        assert_eq!(server.write_slices(&mut slices), 1);
        // The very bytes of the prepared frame, not a copy of them.
        assert_eq!(slices[0].as_ptr(), prepared.frame().as_ptr());
        assert_eq!(slices[0].len(), prepared.frame().len());
    }
    let mut copy = conn(Role::Server);
    copy.send_text(&"tick ".repeat(10)).unwrap();
    assert_eq!(&prepared.frame()[..], &copy.write_buf()[..]);
    for mut server in servers {
        assert_eq!(drain_vectored(&mut server, 3), &prepared.frame()[..]);
    }
}

#[test]
fn a_client_masks_a_prepared_message_as_any_other_5_3() {
    let prepared = PreparedMessage::binary(payload(300, 8));
    let mut client = conn(Role::Client);
    client.send_prepared(&prepared).unwrap();
    assert!(!client.has_queued_payloads());
    assert_eq!(
        client.write_buf().to_vec(),
        mask_frames(&prepared.frame()[..], KEY)
    );
}

#[test]
fn a_peer_receives_prepared_and_owned_messages_intact() {
    let big = payload(200_000, 9);
    let prepared = PreparedMessage::binary(big.clone());
    let mut server = conn(Role::Server);
    server.send_prepared(&prepared).unwrap();
    server.send_owned(DataMessage::Binary(big.clone())).unwrap();
    let wire = drain_vectored(&mut server, 65_536);
    let mut client = conn(Role::Client);
    client.receive_data(&wire);
    for _ in 0..2 {
        match client.poll_event() {
            Some(Event::Message(DataMessage::Binary(b))) => assert_eq!(b, big),
            other => panic!("expected the binary message, got {other:?}"),
        }
    }
    assert_eq!(prepared.message(), DataMessage::Binary(big));
}

#[test]
fn sends_after_close_are_refused_on_the_shared_paths_too_7_1_2() {
    let mut server = conn(Role::Server);
    server.send_close(None).unwrap();
    assert!(server
        .send_owned(DataMessage::Binary(payload(4096, 1)))
        .is_err());
    assert!(server
        .send_prepared(&PreparedMessage::text("late"))
        .is_err());
}
