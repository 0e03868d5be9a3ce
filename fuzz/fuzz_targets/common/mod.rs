//! The shared body of the `connection_server` and `connection_client` targets.
//!
//! Input layout: byte 0 chooses the configuration, byte 1 the chunk sizes, and the rest is the
//! byte stream from the peer, fed to `receive_data` in chunks.
//!
//! byte 0: bit 0 permessage-deflate, bit 1 no context takeover, bit 2 small limits (frame 256 B,
//!         message 1 KiB), bit 3 auto pong off, bit 4 the application sends after each chunk,
//!         bit 5 read through `read_buf` + `process` instead of `receive_data`,
//!         bits 6-7 window bits (15, 12, 9, 8).
//! byte 1: 0 feeds everything at once; otherwise chunk sizes cycle through 1..=byte 1.

use sockeye_proto::close::CloseCode;
use sockeye_proto::frame::{FrameHeader, OpCode};
use sockeye_proto::{
    Connection, ConnectionConfig, DataMessage, DeflateConfig, DeflateParams, Event,
    PerMessageDeflate, Role,
};

/// A header can claim up to 2^63 bytes; the connection reserves at most 1 MiB ahead of the
/// payload it holds, and `BytesMut` may double that.
const MAX_READ_BUF: usize = 4 << 20;

pub fn run(role: Role, data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let (flags, chunking, input) = (data[0], data[1], &data[2..]);
    let mut config = ConnectionConfig::default();
    config.auto_pong = flags & 0b1000 == 0;
    if flags & 0b100 != 0 {
        config.max_frame_size = 256;
        config.max_message_size = 1024;
    }
    let mut conn = Connection::new(role, config.clone());
    if flags & 1 != 0 {
        let bits = [15, 12, 9, 8][(flags >> 6) as usize];
        let nct = flags & 0b10 != 0;
        let params = DeflateParams {
            server_no_context_takeover: nct,
            client_no_context_takeover: nct,
            server_max_window_bits: bits,
            client_max_window_bits: bits,
        };
        let mut cfg = DeflateConfig::default();
        cfg.threshold = 0;
        conn = conn.with_deflate(Some(PerMessageDeflate::new(role, params, &cfg)));
    }
    conn.set_fixed_mask_key_for_tests([0x37, 0xfa, 0x21, 0x3d]);

    let mut written = Vec::new();
    let mut rest = input;
    let mut step = 0usize;
    while !rest.is_empty() {
        let n = if chunking == 0 {
            rest.len()
        } else {
            (step % chunking as usize + 1).min(rest.len())
        };
        step += 1;
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        if flags & 0b10_0000 != 0 {
            conn.read_buf().extend_from_slice(chunk);
            conn.process();
        } else {
            conn.receive_data(chunk);
        }
        drain(&mut conn, &config);
        if flags & 0b1_0000 != 0 {
            let _ = conn.send_text("reply");
            let _ = conn.send_ping(b"p");
        }
        assert!(
            conn.read_buf().capacity() <= MAX_READ_BUF,
            "read buffer capacity {}",
            conn.read_buf().capacity()
        );
        written.extend_from_slice(&conn.write_buf().split());
    }
    conn.receive_eof();
    drain(&mut conn, &config);
    let _ = conn.close_event();
    written.extend_from_slice(&conn.write_buf().split());
    check_output(role, &conn, &written);
}

fn drain(conn: &mut Connection, config: &ConnectionConfig) {
    while let Some(event) = conn.poll_event() {
        match event {
            Event::Message(DataMessage::Text(t)) => {
                // `Utf8Bytes::as_str` trusts the validator: check it independently.
                assert!(
                    std::str::from_utf8(t.as_bytes()).is_ok(),
                    "invalid UTF-8 delivered"
                );
                assert!(t.len() <= config.max_message_size);
            }
            Event::Message(DataMessage::Binary(b)) => assert!(b.len() <= config.max_message_size),
            Event::Ping(p) | Event::Pong(p) => assert!(p.len() <= 125),
            Event::CloseReceived(Some(frame)) => assert!(frame.code.is_sendable()),
            Event::CloseReceived(None) => {}
            other => panic!("an event this target does not know: {other:?}"),
        }
    }
}

/// Everything the connection wrote parses as frames, masked by a client and not by a server,
/// with at most one close frame whose code may be sent, and that is the error's code when the
/// connection failed.
fn check_output(role: Role, conn: &Connection, mut wire: &[u8]) {
    let mut closes = 0;
    while !wire.is_empty() {
        let (header, len) = FrameHeader::parse(wire)
            .expect("own output parses")
            .expect("own output is whole frames");
        assert_eq!(header.mask.is_some(), role == Role::Client);
        let end = len + header.payload_len as usize;
        assert!(end <= wire.len(), "truncated frame in own output");
        let mut payload = wire[len..end].to_vec();
        if let Some(key) = header.mask {
            sockeye_proto::mask::apply_mask(&mut payload, key, 0);
        }
        if header.opcode.is_control() {
            assert!(header.fin && payload.len() <= 125);
        }
        if header.opcode == OpCode::Close {
            closes += 1;
            assert!(payload.len() != 1, "one-byte close payload");
            if payload.len() >= 2 {
                let code = CloseCode(u16::from_be_bytes([payload[0], payload[1]]));
                assert!(code.is_sendable(), "close code {code} sent");
                assert!(std::str::from_utf8(&payload[2..]).is_ok());
                if let Some(err) = conn.error() {
                    assert_eq!(code, err.close_code(), "{err:?}");
                    assert!(matches!(code.0, 1002 | 1007 | 1009), "{code}");
                }
            }
        }
        wire = &wire[end..];
    }
    assert!(closes <= 1, "{closes} close frames written");
}
