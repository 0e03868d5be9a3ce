//! A single-frame message (RFC 6455 §5.2) leaves the read buffer as the `Bytes` it arrived in.
//! These tests prove that it is not moved on the way: a read buffer that already has room for
//! the frame is used as it is, however much of the payload came in the same read as the header.
//! (A reservation that ignored the payload bytes already read copied every large message once
//! more: 20% of the server's CPU at 1 MiB.)

mod common;

use common::{mask_frames, KEY};
use sockeye_proto::{Connection, ConnectionConfig, DataMessage, Event, Role};

/// An unmasked binary frame with FIN set and a payload of `len` bytes.
fn binary_frame(len: usize) -> (Vec<u8>, Vec<u8>) {
    let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let mut frame = vec![0x82];
    match len {
        0..=125 => frame.push(len as u8),
        126..=0xffff => {
            frame.push(126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            frame.push(127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&payload);
    (frame, payload)
}

/// Feeds `wire` to a server whose read buffer has room for all of it, `first` bytes in the first
/// read and the rest in 64 KiB reads, and returns the message with the buffer's start address.
fn receive_in_reads(wire: &[u8], first: usize) -> (DataMessage, *const u8) {
    let mut conn = Connection::new(Role::Server, ConnectionConfig::default());
    conn.read_buf().reserve(wire.len());
    let start = conn.read_buf().as_ptr();
    let mut rest = wire;
    let mut step = first;
    let mut events = Vec::new();
    while !rest.is_empty() {
        let (now, later) = rest.split_at(step.min(rest.len()));
        conn.read_buf().extend_from_slice(now);
        conn.process();
        while let Some(event) = conn.poll_event() {
            events.push(event);
        }
        rest = later;
        step = 64 << 10;
    }
    assert_eq!(events.len(), 1, "one message expected, got {events:?}");
    match events.pop() {
        Some(Event::Message(message)) => (message, start),
        other => panic!("expected a message, got {other:?}"),
    }
}

#[test]
fn whole_frame_message_is_handed_out_from_the_buffer_it_was_read_into_rfc6455_5_2() {
    for len in [16 << 10, 1 << 20] {
        let (frame, payload) = binary_frame(len);
        let wire = mask_frames(&frame, KEY);
        let header = wire.len() - len;
        for first in [header + 1, 4 << 10, 64 << 10, wire.len()] {
            let (message, start) = receive_in_reads(&wire, first);
            let DataMessage::Binary(bytes) = message else {
                panic!("expected a binary message");
            };
            assert_eq!(&bytes[..], &payload[..], "{len} B, first read {first} B");
            assert_eq!(
                bytes.as_ptr(),
                start.wrapping_add(header),
                "{len} B, first read {first} B: the payload was moved out of the read buffer"
            );
        }
    }
}

#[test]
fn a_buffer_too_small_for_the_frame_grows_once_and_the_message_stays_whole() {
    let len = 256 << 10;
    let (frame, payload) = binary_frame(len);
    let wire = mask_frames(&frame, KEY);
    let mut conn = Connection::new(Role::Server, ConnectionConfig::default());
    let (head, rest) = wire.split_at(4 << 10);
    conn.read_buf().extend_from_slice(head);
    conn.process();
    assert!(
        conn.read_buf().capacity() >= len,
        "after the header the buffer has room for the whole payload"
    );
    let grown = conn.read_buf().as_ptr();
    conn.read_buf().extend_from_slice(rest);
    conn.process();
    match conn.poll_event() {
        Some(Event::Message(DataMessage::Binary(bytes))) => {
            assert_eq!(&bytes[..], &payload[..]);
            assert_eq!(bytes.as_ptr(), grown, "no second reallocation");
        }
        other => panic!("expected a binary message, got {other:?}"),
    }
}

/// The I/O layer sizes its reads from `read_size_hint`. A read that fills its buffer to the brim
/// cannot tell a drained socket from one with more to read, and tokio then spends a system call
/// to find out; so the hint always leaves room beyond what the peer is expected to have sent.
#[test]
fn read_size_hint_leaves_room_beyond_the_frame_being_received_rfc6455_5_2() {
    let max_header = sockeye_proto::frame::MAX_HEADER_LEN;
    let (frame, _) = binary_frame(16 << 10);
    let wire = mask_frames(&frame, KEY);
    let header = wire.len() - (16 << 10);
    let mut conn = Connection::new(Role::Server, ConnectionConfig::default());
    assert_eq!(conn.read_size_hint(), max_header, "nothing known yet");

    conn.read_buf().extend_from_slice(&wire[..4 << 10]);
    conn.process();
    let rest = wire.len() - (4 << 10);
    assert_eq!(conn.read_size_hint(), rest + max_header, "mid-frame");
    let spare = conn.read_buf().capacity() - conn.read_buf().len();
    assert!(
        spare >= conn.read_size_hint(),
        "the core's own reservation covers the hint ({spare} < {})",
        conn.read_size_hint()
    );

    conn.read_buf().extend_from_slice(&wire[4 << 10..]);
    conn.process();
    assert!(matches!(conn.poll_event(), Some(Event::Message(_))));
    assert_eq!(
        conn.read_size_hint(),
        wire.len() + max_header,
        "between frames: a frame like the last one ({header} B header) and the next header"
    );
}

#[test]
fn read_size_hint_follows_the_last_frame_and_stops_at_the_whole_frame_limit() {
    let max_header = sockeye_proto::frame::MAX_HEADER_LEN;
    let mut conn = Connection::new(Role::Server, ConnectionConfig::default());
    for len in [2 << 20, 100, 1 << 20] {
        let (frame, _) = binary_frame(len);
        let wire = mask_frames(&frame, KEY);
        conn.read_buf().extend_from_slice(&wire);
        conn.process();
        assert!(matches!(conn.poll_event(), Some(Event::Message(_))));
        let expected = wire.len().min(1 << 20) + max_header;
        assert_eq!(conn.read_size_hint(), expected, "after a {len} B frame");
    }
}
