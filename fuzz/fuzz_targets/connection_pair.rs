//! A client and a server, with or without permessage-deflate, driven by arbitrary application
//! calls; the bytes each writes are delivered to the other in arbitrary chunks. Every message
//! sent arrives intact and in order, every ping comes back as a pong, usage errors are exactly
//! the ones the calls deserve, and a closing handshake at the end is clean on both sides.
//!
//! Input: byte 0 picks the setup (bit 0 deflate, bit 1 client no context takeover, bit 2
//! server no context takeover, bits 3-4 window bits 15/12/9/8, bit 5 compress everything
//! (threshold 0), bits 6-7 compression level 0/1/6/9); byte 1: bits 0-6 the chunk size of
//! deliveries (0: all at once), bit 7 a compressor of each side's own between messages
//! (`retained_window: None`, as `CompressionPolicy::Max`) instead of the last 8 KiB sent and a
//! shared compressor (`BALANCED_RETAINED_WINDOW`, the default policy). Then operations: an op
//! byte (bits 0-2 what, bit 3 which side, bits 4-7 a repeat count for the payload) and, for
//! data, a length byte and that many payload bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockeye_proto::deflate::BALANCED_RETAINED_WINDOW;
use sockeye_proto::{
    CloseCode, CloseFrame, Connection, ConnectionConfig, DataKind, DataMessage, DeflateConfig,
    DeflateParams, Event, PerMessageDeflate, Role, UsageError,
};

struct Side {
    conn: Connection,
    /// What this side has received: data messages, and pings and pongs.
    messages: Vec<DataMessage>,
    pings: Vec<Vec<u8>>,
    pongs: Vec<Vec<u8>>,
    /// What this side sent, as the peer should see it.
    sent: Vec<DataMessage>,
    sent_pings: Vec<Vec<u8>>,
    /// The fragmented message being sent.
    fragment: Option<(DataKind, Vec<u8>)>,
}

impl Side {
    fn new(conn: Connection) -> Self {
        Side {
            conn,
            messages: Vec::new(),
            pings: Vec::new(),
            pongs: Vec::new(),
            sent: Vec::new(),
            sent_pings: Vec::new(),
            fragment: None,
        }
    }

    fn drain(&mut self) {
        while let Some(event) = self.conn.poll_event() {
            match event {
                Event::Message(m) => self.messages.push(m),
                Event::Ping(p) => self.pings.push(p.to_vec()),
                Event::Pong(p) => self.pongs.push(p.to_vec()),
                _ => {}
            }
        }
        assert!(
            self.conn.error().is_none(),
            "{:?} failed: {:?}",
            self.conn.role(),
            self.conn.error()
        );
    }
}

fn message(kind: DataKind, payload: Vec<u8>) -> DataMessage {
    match kind {
        DataKind::Text => DataMessage::text(String::from_utf8(payload).expect("text is UTF-8")),
        DataKind::Binary => DataMessage::binary(payload),
    }
}

/// Moves everything `from` wrote to `to`, `chunk` bytes at a time (0: at once).
fn deliver(from: &mut Side, to: &mut Side, chunk: usize) {
    let wire = from.conn.write_buf().split();
    if chunk == 0 {
        to.conn.receive_data(&wire);
        to.drain();
    } else {
        for piece in wire.chunks(chunk) {
            to.conn.receive_data(piece);
            to.drain();
        }
    }
}

fn pump(client: &mut Side, server: &mut Side, chunk: usize) {
    for _ in 0..4 {
        deliver(client, server, chunk);
        deliver(server, client, chunk);
    }
}

fn check(from: &Side, to: &Side) {
    assert_eq!(to.messages.len(), from.sent.len(), "message count");
    for (got, want) in to.messages.iter().zip(&from.sent) {
        assert!(
            got == want,
            "message differs: {} vs {} bytes",
            got.len(),
            want.len()
        );
    }
    assert_eq!(to.pings, from.sent_pings);
    assert_eq!(from.pongs, from.sent_pings, "auto pongs echo the pings");
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let (setup, chunk, mut ops) = (data[0], (data[1] & 0x7f) as usize, &data[2..]);
    let own_compressor = data[1] & 0x80 != 0;
    let mut client_conn = Connection::new(Role::Client, ConnectionConfig::default());
    let mut server_conn = Connection::new(Role::Server, ConnectionConfig::default());
    if setup & 1 != 0 {
        let mut cfg = DeflateConfig::default();
        cfg.client_no_context_takeover = setup & 0b10 != 0;
        cfg.server_no_context_takeover = setup & 0b100 != 0;
        cfg.server_max_window_bits = [15, 12, 9, 8][(setup >> 3 & 3) as usize];
        cfg.client_max_window_bits = [15, 12, 9, 8][(setup >> 3 & 3) as usize];
        cfg.threshold = if setup & 0b10_0000 != 0 { 0 } else { 32 };
        cfg.level = [0, 1, 6, 9][(setup >> 6) as usize];
        cfg.retained_window = (!own_compressor).then_some(BALANCED_RETAINED_WINDOW);
        let offer = cfg.client_offer();
        let (params, response): (DeflateParams, _) = cfg
            .server_accept(std::slice::from_ref(&offer))
            .expect("own offer is acceptable");
        let client_params = cfg.client_accept(&response).expect("own response is valid");
        assert_eq!(params, client_params);
        client_conn =
            client_conn.with_deflate(Some(PerMessageDeflate::new(Role::Client, params, &cfg)));
        server_conn =
            server_conn.with_deflate(Some(PerMessageDeflate::new(Role::Server, params, &cfg)));
    }
    let mut client = Side::new(client_conn);
    let mut server = Side::new(server_conn);

    while let Some((&op, rest)) = ops.split_first() {
        ops = rest;
        let what = op & 0b111;
        let (me, peer) = if op & 0b1000 != 0 {
            (&mut server, &mut client)
        } else {
            (&mut client, &mut server)
        };
        if what == 7 {
            deliver(me, peer, chunk);
            continue;
        }
        let Some((&len, rest)) = ops.split_first() else {
            break;
        };
        let len = (len as usize).min(rest.len());
        let (bytes, rest) = rest.split_at(len);
        ops = rest;
        let repeat = (op >> 4) as usize;
        let mut payload = bytes.repeat(1 + repeat * repeat * 16);
        let text = String::from_utf8_lossy(&payload).into_owned();
        match what {
            0 | 1 => {
                let kind = if what == 0 {
                    DataKind::Text
                } else {
                    DataKind::Binary
                };
                if kind == DataKind::Text {
                    payload = text.into_bytes();
                }
                let result = match kind {
                    DataKind::Text => me.conn.send_text(std::str::from_utf8(&payload).unwrap()),
                    DataKind::Binary => me.conn.send_binary(&payload),
                };
                if me.fragment.is_some() {
                    assert_eq!(result, Err(UsageError::FragmentInProgress));
                } else {
                    assert_eq!(result, Ok(()));
                    me.sent.push(message(kind, payload));
                }
            }
            2..=5 => {
                let fin = what == 5;
                let kind = match what {
                    2 => Some(DataKind::Text),
                    3 => Some(DataKind::Binary),
                    _ => None,
                };
                // Text fragments are cut anywhere: the message as a whole stays UTF-8 when every
                // fragment is a whole lossy-decoded string.
                let piece = match kind.or(me.fragment.as_ref().map(|f| f.0)) {
                    Some(DataKind::Text) => text.into_bytes(),
                    _ => payload,
                };
                let result = me.conn.send_fragment(kind, &piece, fin);
                match (kind, &mut me.fragment) {
                    (Some(_), Some(_)) => assert_eq!(result, Err(UsageError::FragmentInProgress)),
                    (None, None) => assert_eq!(result, Err(UsageError::NoFragmentInProgress)),
                    (Some(kind), None) => {
                        assert_eq!(result, Ok(()));
                        me.fragment = Some((kind, piece));
                    }
                    (None, Some((_, buf))) => {
                        assert_eq!(result, Ok(()));
                        buf.extend_from_slice(&piece);
                    }
                }
                if fin && result.is_ok() {
                    let (kind, buf) = me.fragment.take().unwrap();
                    me.sent.push(message(kind, buf));
                }
            }
            6 => {
                payload.truncate(125);
                me.conn.send_ping(&payload).unwrap();
                me.sent_pings.push(payload);
            }
            _ => unreachable!(),
        }
    }

    // Finish what was started, deliver everything, and close.
    for side in [&mut client, &mut server] {
        if let Some((kind, buf)) = side.fragment.take() {
            side.conn.send_fragment(None, b"", true).unwrap();
            side.sent.push(message(kind, buf));
        }
    }
    pump(&mut client, &mut server, chunk);
    check(&client, &server);
    check(&server, &client);

    client
        .conn
        .send_close(Some(CloseFrame::new(1000, "bye")))
        .unwrap();
    pump(&mut client, &mut server, chunk);
    assert!(server.conn.eof_to_send());
    server.conn.receive_eof();
    client.conn.receive_eof();
    for side in [&client, &server] {
        let event = side.conn.close_event();
        assert!(event.was_clean, "{:?} {event:?}", side.conn.role());
        assert_eq!(event.code, CloseCode::NORMAL);
    }
});
