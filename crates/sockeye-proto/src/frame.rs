//! RFC 6455 §5.2: the base framing protocol.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-------+-+-------------+-------------------------------+
//! |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//! |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//! |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//! | |1|2|3|       |K|             |                               |
//! +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
//! |     Extended payload length continued, if payload len == 127  |
//! + - - - - - - - - - - - - - - - +-------------------------------+
//! |                               |Masking-key, if MASK set to 1  |
//! +-------------------------------+-------------------------------+
//! ```

use crate::error::ProtocolError;

/// The longest possible frame header: 2 bytes, a 64-bit length and a masking key.
pub const MAX_HEADER_LEN: usize = 14;

/// Control frames carry at most 125 bytes of payload (§5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// RSV1, the bit permessage-deflate uses to mark a compressed message (RFC 7692 §6).
pub const RSV1: u8 = 0b100;
/// RSV2; no extension this crate knows gives it a meaning, so a frame with it set fails the
/// connection.
pub const RSV2: u8 = 0b010;
/// RSV3; as [`RSV2`].
pub const RSV3: u8 = 0b001;

/// A frame's opcode (§5.2, §11.8): what the payload is.
///
/// Holds all 16 values of the 4-bit field, so parsing never fails on an opcode; the
/// connection rejects [`OpCode::Reserved`] with [`ProtocolError::ReservedOpcode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// 0x0: a later fragment of the message in progress (§5.4).
    Continuation,
    /// 0x1: the first frame of a text message; the whole message is UTF-8 (§5.6).
    Text,
    /// 0x2: the first frame of a binary message (§5.6).
    Binary,
    /// 0x8: the closing handshake (§5.5.1).
    Close,
    /// 0x9: asks the peer for a pong (§5.5.2).
    Ping,
    /// 0xA: the answer to a ping, or an unsolicited heartbeat (§5.5.3).
    Pong,
    /// 0x3-0x7 are reserved for further non-control frames, 0xB-0xF for control frames.
    Reserved(u8),
}

impl OpCode {
    /// The opcode in the low four bits of `bits`; the high bits are ignored, so the first
    /// byte of a frame can be passed as it is.
    pub fn from_u8(bits: u8) -> OpCode {
        match bits & 0x0f {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xa => OpCode::Pong,
            other => OpCode::Reserved(other),
        }
    }

    /// The 4-bit value. For [`OpCode::Reserved`] only the low four bits of the held value
    /// count.
    pub fn as_u8(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xa,
            OpCode::Reserved(bits) => bits & 0x0f,
        }
    }

    /// Control frames have the high bit of the opcode set (§5.5).
    pub fn is_control(self) -> bool {
        self.as_u8() & 0x8 != 0
    }
}

/// Everything in a frame but its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// The frame is the last of its message (§5.4). Always set on control frames.
    pub fin: bool,
    /// RSV1..RSV3 as the low three bits (`RSV1 = 0b100`).
    pub rsv: u8,
    /// What the payload is.
    pub opcode: OpCode,
    /// The masking key, present exactly when the MASK bit is set: on every frame a client
    /// sends and on none a server sends (§5.3).
    pub mask: Option<[u8; 4]>,
    /// Payload length in bytes, at most 2^63 - 1 (§5.2). Not checked against any limit here.
    pub payload_len: u64,
}

impl FrameHeader {
    /// Parses a header from the start of `buf`.
    ///
    /// Returns `Ok(None)` when more bytes are needed, or the header and its length in bytes.
    /// Only the rules of §5.2 that concern the header's encoding are checked here; what a header
    /// means in context (masking by role, control frame rules, fragmentation) is checked by the
    /// connection. The one error is [`ProtocolError::InvalidPayloadLength`]; a length not
    /// encoded in the fewest bytes is accepted.
    pub fn parse(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, ProtocolError> {
        if buf.len() < 2 {
            return Ok(None);
        }
        let (b0, b1) = (buf[0], buf[1]);
        let masked = b1 & 0x80 != 0;
        let (payload_len, mut at) = match b1 & 0x7f {
            126 => {
                if buf.len() < 4 {
                    return Ok(None);
                }
                (u16::from_be_bytes([buf[2], buf[3]]) as u64, 4)
            }
            127 => {
                if buf.len() < 10 {
                    return Ok(None);
                }
                let mut be = [0; 8];
                be.copy_from_slice(&buf[2..10]);
                let len = u64::from_be_bytes(be);
                // "the most significant bit MUST be 0"
                if len >> 63 != 0 {
                    return Err(ProtocolError::InvalidPayloadLength);
                }
                (len, 10)
            }
            len => (len as u64, 2),
        };
        let mask = if masked {
            if buf.len() < at + 4 {
                return Ok(None);
            }
            let key = [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]];
            at += 4;
            Some(key)
        } else {
            None
        };
        let header = FrameHeader {
            fin: b0 & 0x80 != 0,
            rsv: (b0 >> 4) & 0b111,
            opcode: OpCode::from_u8(b0),
            mask,
            payload_len,
        };
        Ok(Some((header, at)))
    }

    /// Encodes the header with the shortest length encoding (§5.2: "the minimal number of bytes
    /// MUST be used"). Returns the bytes written to the front of `dst`.
    ///
    /// `payload_len` must be below 2^63 and only the low three bits of `rsv` are used; neither
    /// is checked. The payload is not touched: masking it is the caller's job.
    pub fn encode(&self, dst: &mut [u8; MAX_HEADER_LEN]) -> usize {
        dst[0] = (self.fin as u8) << 7 | (self.rsv & 0b111) << 4 | self.opcode.as_u8();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut at = if self.payload_len < 126 {
            dst[1] = mask_bit | self.payload_len as u8;
            2
        } else if self.payload_len <= u16::MAX as u64 {
            dst[1] = mask_bit | 126;
            dst[2..4].copy_from_slice(&(self.payload_len as u16).to_be_bytes());
            4
        } else {
            dst[1] = mask_bit | 127;
            dst[2..10].copy_from_slice(&self.payload_len.to_be_bytes());
            10
        };
        if let Some(key) = self.mask {
            dst[at..at + 4].copy_from_slice(&key);
            at += 4;
        }
        at
    }

    /// The number of bytes [`FrameHeader::encode`] writes: 2 to [`MAX_HEADER_LEN`].
    pub fn encoded_len(&self) -> usize {
        let len = match self.payload_len {
            0..=125 => 2,
            126..=0xffff => 4,
            _ => 10,
        };
        len + if self.mask.is_some() { 4 } else { 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse_all(bytes: &[u8]) -> (FrameHeader, usize) {
        FrameHeader::parse(bytes).unwrap().unwrap()
    }

    #[test]
    fn rfc6455_5_7_unmasked_text_hello() {
        let (h, n) = parse_all(&[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        assert_eq!(n, 2);
        assert!(h.fin);
        assert_eq!(h.opcode, OpCode::Text);
        assert_eq!(h.payload_len, 5);
        assert_eq!(h.mask, None);
    }

    #[test]
    fn rfc6455_5_7_masked_text_hello() {
        let (h, n) = parse_all(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f]);
        assert_eq!(n, 6);
        assert_eq!(h.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
        assert_eq!(h.payload_len, 5);
    }

    #[test]
    fn rfc6455_5_7_fragmented_text_first_frame_has_no_fin() {
        let (h, _) = parse_all(&[0x01, 0x03, 0x48, 0x65, 0x6c]);
        assert!(!h.fin);
        assert_eq!(h.opcode, OpCode::Text);
        let (h, _) = parse_all(&[0x80, 0x02, 0x6c, 0x6f]);
        assert!(h.fin);
        assert_eq!(h.opcode, OpCode::Continuation);
    }

    #[test]
    fn rfc6455_5_7_256_bytes_binary_uses_16_bit_length() {
        let (h, n) = parse_all(&[0x82, 0x7e, 0x01, 0x00]);
        assert_eq!((h.opcode, h.payload_len, n), (OpCode::Binary, 256, 4));
    }

    #[test]
    fn rfc6455_5_7_64_kib_binary_uses_64_bit_length() {
        let (h, n) = parse_all(&[0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00]);
        assert_eq!((h.payload_len, n), (65536, 10));
    }

    #[test]
    fn rfc6455_5_2_length_with_most_significant_bit_is_rejected() {
        let bytes = [0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            FrameHeader::parse(&bytes),
            Err(ProtocolError::InvalidPayloadLength)
        );
    }

    #[test]
    fn incomplete_headers_need_more_bytes() {
        let full = [0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4];
        for cut in 0..full.len() {
            assert_eq!(FrameHeader::parse(&full[..cut]), Ok(None), "cut at {cut}");
        }
        assert!(FrameHeader::parse(&full).unwrap().is_some());
    }

    #[test]
    fn rfc6455_5_2_reserved_opcodes_are_values() {
        for bits in [0x3, 0x7, 0xb, 0xf] {
            let (h, _) = parse_all(&[0x80 | bits, 0]);
            assert_eq!(h.opcode, OpCode::Reserved(bits));
        }
        assert!(OpCode::Reserved(0xb).is_control());
        assert!(!OpCode::Reserved(0x3).is_control());
    }

    fn opcode() -> impl Strategy<Value = OpCode> {
        (0u8..16).prop_map(OpCode::from_u8)
    }

    proptest! {
        #[test]
        fn any_header_round_trips(
            fin: bool,
            rsv in 0u8..8,
            op in opcode(),
            mask: Option<[u8; 4]>,
            payload_len in prop_oneof![0u64..=125, 126u64..=65535, 65536u64..(1 << 63)],
        ) {
            let header = FrameHeader { fin, rsv, opcode: op, mask, payload_len };
            let mut buf = [0; MAX_HEADER_LEN];
            let n = header.encode(&mut buf);
            prop_assert_eq!(n, header.encoded_len());
            prop_assert_eq!(FrameHeader::parse(&buf[..n]), Ok(Some((header, n))));
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..20)) {
            let _ = FrameHeader::parse(&bytes);
        }
    }
}
