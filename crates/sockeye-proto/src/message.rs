//! Complete messages as the application sees them.

use bytes::{BufMut, Bytes, BytesMut};

use crate::frame::{FrameHeader, OpCode, MAX_HEADER_LEN};

/// UTF-8 text held in reference-counted bytes, so a text message moves from the receive buffer
/// to the application (and back out, for an echo or a broadcast) without a copy.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Utf8Bytes(Bytes);

impl Utf8Bytes {
    /// Wraps bytes that were validated as UTF-8 by this crate.
    pub(crate) fn from_validated(bytes: Bytes) -> Self {
        debug_assert!(std::str::from_utf8(&bytes).is_ok());
        Utf8Bytes(bytes)
    }

    /// Validates `bytes` as UTF-8.
    pub fn try_from_bytes(bytes: Bytes) -> Result<Self, crate::utf8::InvalidUtf8> {
        crate::utf8::validate(&bytes)?;
        Ok(Utf8Bytes(bytes))
    }

    /// Wraps a string literal without copying it.
    pub fn from_static(text: &'static str) -> Self {
        Utf8Bytes(Bytes::from_static(text.as_bytes()))
    }

    /// The text. Costs nothing: the bytes were validated when the value was made.
    #[allow(unsafe_code)]
    pub fn as_str(&self) -> &str {
        // SAFETY: every constructor either validated the bytes (`try_from_bytes`, and
        // `from_validated` after the connection's UTF-8 validator accepted them) or took them
        // from a `str`/`String`; `Bytes` is immutable, so they stay valid. Re-validating on
        // every access would scan each received text message twice.
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }

    /// The UTF-8 bytes, as the shared buffer (clone it to keep a reference without a copy).
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    /// The UTF-8 bytes, without a copy.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// Length in bytes, not characters.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the text is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::ops::Deref for Utf8Bytes {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Debug for Utf8Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_str().fmt(f)
    }
}

impl std::fmt::Display for Utf8Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_str().fmt(f)
    }
}

impl From<String> for Utf8Bytes {
    fn from(s: String) -> Self {
        Utf8Bytes(Bytes::from(s))
    }
}

impl From<&str> for Utf8Bytes {
    fn from(s: &str) -> Self {
        Utf8Bytes(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl PartialEq<str> for Utf8Bytes {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Utf8Bytes {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// A complete data message (RFC 6455 §5.6), however many frames it came in. Control frames
/// (ping, pong, close) are not messages; see [`Event`](crate::connection::Event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataMessage {
    /// A text message (opcode 0x1): valid UTF-8, checked on receipt.
    Text(Utf8Bytes),
    /// A binary message (opcode 0x2): bytes the protocol does not interpret.
    Binary(Bytes),
}

impl DataMessage {
    /// A text message. A `String` is taken without a copy, a `&str` is copied.
    pub fn text(text: impl Into<Utf8Bytes>) -> Self {
        DataMessage::Text(text.into())
    }

    /// A binary message. `Bytes`, `Vec<u8>` and `&'static [u8]` are taken without a copy.
    pub fn binary(data: impl Into<Bytes>) -> Self {
        DataMessage::Binary(data.into())
    }

    /// The payload as bytes, whatever the type: for a text message, its UTF-8.
    pub fn payload(&self) -> &[u8] {
        match self {
            DataMessage::Text(t) => t.as_bytes(),
            DataMessage::Binary(b) => b,
        }
    }

    /// Payload length in bytes (before any compression).
    pub fn len(&self) -> usize {
        self.payload().len()
    }

    /// Whether the payload is empty. An empty message is still a message.
    pub fn is_empty(&self) -> bool {
        self.payload().is_empty()
    }
}

/// A data message framed once, for sending to many connections (a broadcast): servers queue
/// the same reference-counted frame on every connection, with no per-connection copy, masking
/// or framing. Cloning is cheap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedMessage {
    /// An unmasked, uncompressed, final frame (RFC 6455 §5.2): header then payload.
    frame: Bytes,
    header_len: usize,
    opcode: OpCode,
}

impl PreparedMessage {
    /// Frames `message`. The payload is copied once, into the frame.
    pub fn new(message: &DataMessage) -> Self {
        let (opcode, payload) = match message {
            DataMessage::Text(t) => (OpCode::Text, &t.as_bytes()[..]),
            DataMessage::Binary(b) => (OpCode::Binary, &b[..]),
        };
        let header = FrameHeader {
            fin: true,
            rsv: 0,
            opcode,
            mask: None,
            payload_len: payload.len() as u64,
        };
        let mut head = [0; MAX_HEADER_LEN];
        let header_len = header.encode(&mut head);
        let mut frame = BytesMut::with_capacity(header_len + payload.len());
        frame.put_slice(&head[..header_len]);
        frame.put_slice(payload);
        PreparedMessage {
            frame: frame.freeze(),
            header_len,
            opcode,
        }
    }

    /// Frames a text message.
    pub fn text(text: impl Into<Utf8Bytes>) -> Self {
        PreparedMessage::new(&DataMessage::Text(text.into()))
    }

    /// Frames a binary message.
    pub fn binary(data: impl Into<Bytes>) -> Self {
        PreparedMessage::new(&DataMessage::Binary(data.into()))
    }

    /// The whole frame as a server sends it: unmasked, uncompressed, FIN set. A client cannot
    /// send these bytes as they are, since it must mask.
    pub fn frame(&self) -> &Bytes {
        &self.frame
    }

    /// The message's payload, inside the frame.
    pub fn payload(&self) -> &[u8] {
        &self.frame[self.header_len..]
    }

    /// [`OpCode::Text`] or [`OpCode::Binary`].
    pub fn opcode(&self) -> OpCode {
        self.opcode
    }

    /// The message again, sharing the frame's bytes.
    pub fn message(&self) -> DataMessage {
        let payload = self.frame.slice(self.header_len..);
        match self.opcode {
            OpCode::Text => DataMessage::Text(Utf8Bytes(payload)),
            _ => DataMessage::Binary(payload),
        }
    }
}

impl From<DataMessage> for PreparedMessage {
    fn from(message: DataMessage) -> Self {
        PreparedMessage::new(&message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_bytes_rejects_invalid_text() {
        assert!(Utf8Bytes::try_from_bytes(Bytes::from_static(b"\xff")).is_err());
        let ok = Utf8Bytes::try_from_bytes(Bytes::from_static("héllo".as_bytes())).unwrap();
        assert_eq!(ok.as_str(), "héllo");
    }
}
