//! Helpers shared by the protocol-core integration tests: building connections for either role,
//! turning a frame written as an unmasked byte literal into what a client peer would put on the
//! wire, decoding what a connection wrote, and pairing a client with a server.
//!
//! Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use sockeye_proto::frame::{FrameHeader, OpCode};
use sockeye_proto::{
    CloseCode, Connection, ConnectionConfig, DataMessage, DeflateConfig, DeflateParams, Event,
    PerMessageDeflate, Role,
};

/// The masking key of the RFC 6455 §5.7 examples.
pub const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

pub const ROLES: [Role; 2] = [Role::Client, Role::Server];

/// A connection with the default configuration. A client masks with [`KEY`] so that its output
/// can be compared byte for byte.
pub fn conn(role: Role) -> Connection {
    conn_with(role, ConnectionConfig::default())
}

pub fn conn_with(role: Role, config: ConnectionConfig) -> Connection {
    let mut c = Connection::new(role, config);
    if role == Role::Client {
        c.set_fixed_mask_key_for_tests(KEY);
    }
    c
}

/// The peer's role.
pub fn peer(role: Role) -> Role {
    match role {
        Role::Client => Role::Server,
        Role::Server => Role::Client,
    }
}

/// Frames written as unmasked byte literals, as the peer of `receiver` sends them: unchanged
/// for a client receiver (servers do not mask), masked with [`KEY`] for a server receiver.
pub fn from_peer(receiver: Role, frames: &[u8]) -> Vec<u8> {
    match receiver {
        Role::Client => frames.to_vec(),
        Role::Server => mask_frames(frames, KEY),
    }
}

/// Masks every frame of a concatenation of unmasked frames with `key` (§5.3). The last frame
/// may be cut short (its header must be whole), and lengths are read without validation, so
/// that invalid headers can be masked too.
pub fn mask_frames(mut frames: &[u8], key: [u8; 4]) -> Vec<u8> {
    let mut out = Vec::new();
    while !frames.is_empty() {
        assert!(frames[1] & 0x80 == 0, "frames to mask must be unmasked");
        let (len, payload_len) = match frames[1] & 0x7f {
            126 => (4, u16::from_be_bytes([frames[2], frames[3]]) as u64),
            127 => (10, u64::from_be_bytes(frames[2..10].try_into().unwrap())),
            n => (2, n as u64),
        };
        let end = frames
            .len()
            .min(len + payload_len.min(usize::MAX as u64 >> 1) as usize);
        // The header as written (even a non-minimal length), with the MASK bit and the key.
        out.push(frames[0]);
        out.push(frames[1] | 0x80);
        out.extend_from_slice(&frames[2..len]);
        out.extend_from_slice(&key);
        out.extend(
            frames[len..end]
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ key[i & 3]),
        );
        frames = &frames[end..];
    }
    out
}

/// A decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    pub rsv: u8,
    pub opcode: OpCode,
    pub masked: bool,
    pub payload: Vec<u8>,
}

/// Decodes a concatenation of complete frames, unmasking payloads.
pub fn decode_frames(mut bytes: &[u8]) -> Vec<Frame> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (header, len) = FrameHeader::parse(bytes)
            .expect("valid header")
            .expect("complete header");
        let end = len + header.payload_len as usize;
        assert!(bytes.len() >= end, "truncated frame");
        let mut payload = bytes[len..end].to_vec();
        if let Some(key) = header.mask {
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= key[i & 3];
            }
        }
        out.push(Frame {
            fin: header.fin,
            rsv: header.rsv,
            opcode: header.opcode,
            masked: header.mask.is_some(),
            payload,
        });
        bytes = &bytes[end..];
    }
    out
}

/// Takes everything the connection queued for the network.
pub fn take_written(c: &mut Connection) -> Vec<u8> {
    c.write_buf().split().to_vec()
}

/// Takes and decodes what the connection wrote, checking that a client masked every frame and a
/// server masked none (§5.1).
pub fn written_frames(c: &mut Connection) -> Vec<Frame> {
    let role = c.role();
    let frames = decode_frames(&take_written(c));
    for f in &frames {
        assert_eq!(f.masked, role == Role::Client, "{role:?} masking of {f:?}");
    }
    frames
}

/// Drains every pending event.
pub fn events(c: &mut Connection) -> Vec<Event> {
    let mut out = Vec::new();
    while let Some(e) = c.poll_event() {
        out.push(e);
    }
    out
}

/// The status code of a close frame, if it has one.
pub fn close_code(f: &Frame) -> Option<u16> {
    assert_eq!(f.opcode, OpCode::Close);
    (f.payload.len() >= 2).then(|| u16::from_be_bytes([f.payload[0], f.payload[1]]))
}

/// Feeds `wire` to a fresh connection of `role`, then checks that the connection failed with
/// `code`: no data message was delivered, the last frame written is a close frame with that
/// code, and the error is kept.
pub fn assert_fails(role: Role, config: ConnectionConfig, wire: &[u8], code: u16) -> Connection {
    let mut c = conn_with(role, config);
    c.receive_data(wire);
    let evs = events(&mut c);
    assert_failed_with(&mut c, code, &evs, wire);
    c
}

/// Checks that `c` failed with `code` after producing `evs`.
pub fn assert_failed_with(c: &mut Connection, code: u16, evs: &[Event], wire: &[u8]) {
    let role = c.role();
    assert!(
        !evs.iter().any(|e| matches!(e, Event::Message(_))),
        "{role:?} delivered a message for {wire:02x?}: {evs:?}"
    );
    let err = c
        .error()
        .unwrap_or_else(|| panic!("{role:?} did not fail for {wire:02x?}; events {evs:?}"));
    assert_eq!(
        err.close_code(),
        CloseCode(code),
        "{role:?} error {err:?} for {wire:02x?}"
    );
    let frames = written_frames(c);
    let last = frames.last().expect("a close frame is written");
    assert_eq!(close_code(last), Some(code), "{role:?} for {wire:02x?}");
    assert_eq!(
        c.eof_to_send(),
        role == Role::Server,
        "{role:?} eof_to_send"
    );
    let ce = c.close_event();
    assert_eq!(ce.code, CloseCode::ABNORMAL);
    assert!(!ce.was_clean);
}

/// Feeds `frames` (unmasked byte literals) to a fresh connection of each role, masking them for
/// the server, and checks the failure code.
pub fn assert_both_fail(frames: &[u8], code: u16) {
    for role in ROLES {
        assert_fails(
            role,
            ConnectionConfig::default(),
            &from_peer(role, frames),
            code,
        );
    }
}

/// Feeds `frames` to a fresh connection of each role and returns the events, checking that
/// neither failed.
pub fn receive_ok(role: Role, frames: &[u8]) -> Vec<Event> {
    let mut c = conn(role);
    let wire = from_peer(role, frames);
    c.receive_data(&wire);
    let evs = events(&mut c);
    assert!(
        c.error().is_none(),
        "{role:?} failed with {:?} on {wire:02x?}",
        c.error()
    );
    evs
}

pub fn text(s: &str) -> Event {
    Event::Message(DataMessage::text(s))
}

pub fn binary(b: &[u8]) -> Event {
    Event::Message(DataMessage::binary(b.to_vec()))
}

/// Feeds `wire` one byte at a time, draining events after each byte.
pub fn feed_bytewise(c: &mut Connection, wire: &[u8]) -> Vec<Event> {
    let mut out = Vec::new();
    for b in wire {
        c.receive_data(std::slice::from_ref(b));
        out.extend(events(c));
    }
    out
}

// ---- permessage-deflate pairs ----

/// Negotiates permessage-deflate between a client configured with `client_cfg` and a server
/// configured with `server_cfg`, as the opening handshake does, and returns the agreed
/// parameters.
pub fn negotiate(client_cfg: &DeflateConfig, server_cfg: &DeflateConfig) -> DeflateParams {
    let offer = client_cfg.client_offer();
    let (server_params, response) = server_cfg
        .server_accept(std::slice::from_ref(&offer))
        .expect("server accepts the offer");
    let client_params = client_cfg
        .client_accept(&response)
        .expect("client accepts the response");
    assert_eq!(client_params, server_params);
    client_params
}

/// A client and a server that negotiated permessage-deflate.
pub struct Pair {
    pub client: Connection,
    pub server: Connection,
}

impl Pair {
    pub fn new(client_cfg: DeflateConfig, server_cfg: DeflateConfig) -> Pair {
        Pair::with_config(
            client_cfg,
            server_cfg,
            ConnectionConfig::default(),
            ConnectionConfig::default(),
        )
    }

    pub fn with_config(
        client_cfg: DeflateConfig,
        server_cfg: DeflateConfig,
        client_config: ConnectionConfig,
        server_config: ConnectionConfig,
    ) -> Pair {
        let params = negotiate(&client_cfg, &server_cfg);
        let client = Connection::new(Role::Client, client_config).with_deflate(Some(
            PerMessageDeflate::new(Role::Client, params, &client_cfg),
        ));
        let server = Connection::new(Role::Server, server_config).with_deflate(Some(
            PerMessageDeflate::new(Role::Server, params, &server_cfg),
        ));
        Pair { client, server }
    }

    /// The connection of `role` and its peer.
    pub fn sides(&mut self, sender: Role) -> (&mut Connection, &mut Connection) {
        match sender {
            Role::Client => (&mut self.client, &mut self.server),
            Role::Server => (&mut self.server, &mut self.client),
        }
    }

    /// Moves what `sender` wrote to its peer and returns the peer's events, checking that the
    /// peer did not fail.
    pub fn pump(&mut self, sender: Role) -> Vec<Event> {
        let (from, to) = self.sides(sender);
        let wire = take_written(from);
        to.receive_data(&wire);
        let evs = events(to);
        assert!(to.error().is_none(), "receiver failed: {:?}", to.error());
        evs
    }
}

/// Deterministic test data: a mix of repetitive text and pseudo-random bytes, so that
/// compression has something to find and something to struggle with. Valid UTF-8 (ASCII).
pub fn sample_text(len: usize) -> String {
    let words = [
        "sockeye ",
        "salmon ",
        "frame ",
        "deflate ",
        "\n",
        "websocket ",
    ];
    let mut s = String::with_capacity(len + 16);
    let mut x: u32 = 0x9e37_79b9;
    while s.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        if x % 3 == 0 {
            s.push((b'a' + (x >> 8) as u8 % 26) as char);
        } else {
            s.push_str(words[(x >> 4) as usize % words.len()]);
        }
    }
    s.truncate(len);
    s
}

pub fn sample_binary(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    (0..len)
        .map(|i| {
            if i % 64 < 32 {
                (i % 7) as u8
            } else {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            }
        })
        .collect()
}
