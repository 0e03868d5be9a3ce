//! What can go wrong in the protocol, split by who did it: the peer (`ProtocolError`, which
//! fails the connection with a close code) or the local application (`UsageError`).

use crate::close::CloseCode;

/// The peer broke a rule of RFC 6455 / RFC 7692, or sent more than the limits allow.
///
/// Each variant names the rule; `Display` is short and safe to send as a close reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// An RSV bit was set that no negotiated extension defines (§5.2): any of them without
    /// permessage-deflate, RSV2 or RSV3 with it, or RSV1 on a control or continuation frame
    /// (RFC 7692 §6.1).
    #[error("reserved bits set")]
    ReservedBits,
    /// The frame used opcode 0x3-0x7 or 0xB-0xF, which no extension here defines (§5.2). Holds
    /// the opcode.
    #[error("reserved opcode")]
    ReservedOpcode(u8),
    /// A client received a masked frame; servers must not mask (§5.1).
    #[error("masked frame from server")]
    MaskedFrameFromServer,
    /// A server received an unmasked frame; clients must mask every frame (§5.1).
    #[error("unmasked frame from client")]
    UnmaskedFrameFromClient,
    /// A control frame had FIN clear; control frames cannot be fragmented (§5.5).
    #[error("fragmented control frame")]
    FragmentedControlFrame,
    /// A control frame's payload was over 125 bytes (§5.5).
    #[error("control frame too big")]
    ControlFrameTooBig,
    /// A continuation frame arrived with no fragmented message in progress (§5.4).
    #[error("unexpected continuation frame")]
    UnexpectedContinuation,
    /// A new text or binary frame arrived before the fragmented message in progress ended
    /// (§5.4).
    #[error("expected continuation frame")]
    ExpectedContinuation,
    /// A 64-bit payload length had its most significant bit set (§5.2).
    #[error("invalid payload length")]
    InvalidPayloadLength,
    /// A text message or a close reason was not valid UTF-8 (§8.1). Closes with 1007.
    #[error("invalid UTF-8")]
    InvalidUtf8,
    /// A close frame had a one-byte payload: a body must start with a two-byte code (§5.5.1).
    #[error("invalid close frame")]
    InvalidClosePayload,
    /// A close frame carried a code that may not be sent (§7.4; see
    /// [`CloseCode::is_sendable`]). Holds the code.
    #[error("invalid close code")]
    InvalidCloseCode(u16),
    /// A frame's payload was over [`ConnectionConfig::max_frame_size`](crate::connection::ConnectionConfig).
    /// Closes with 1009.
    #[error("frame too big")]
    FrameTooBig,
    /// A message was over [`ConnectionConfig::max_message_size`](crate::connection::ConnectionConfig), counted
    /// after decompression. Closes with 1009.
    #[error("message too big")]
    MessageTooBig,
    /// A compressed message did not inflate (RFC 7692 §7.2.2). Closes with 1007.
    #[error("invalid compressed data")]
    InvalidCompressedData,
    /// Data arrived after the peer's close frame (§5.5.1: the close frame is the last one an
    /// endpoint sends). [`Connection`](crate::connection::Connection) does not report it: it
    /// discards all input after the peer's close frame.
    #[error("data after close")]
    DataAfterClose,
}

impl ProtocolError {
    /// The status code to close with (§7.4.1): 1007 for invalid UTF-8 or compressed data,
    /// 1009 for size limits, 1002 for the rest.
    pub fn close_code(&self) -> CloseCode {
        match self {
            ProtocolError::InvalidUtf8 | ProtocolError::InvalidCompressedData => {
                CloseCode::INVALID_PAYLOAD
            }
            ProtocolError::FrameTooBig | ProtocolError::MessageTooBig => CloseCode::MESSAGE_TOO_BIG,
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }
}

/// The application asked for something the protocol or the connection's state does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsageError {
    /// A close frame was already sent (by the application, in answer to the peer's, or when
    /// the connection failed), so nothing more may be (§5.5.1).
    #[error("the connection is closing or closed")]
    Closed,
    /// A ping or pong payload was over 125 bytes (§5.5).
    #[error("control frame payload over 125 bytes")]
    ControlPayloadTooLong,
    /// The close code may not be sent: not valid on the wire (§7.4), or, for
    /// [`CloseFrame::from_application`](crate::close::CloseFrame::from_application), not
    /// 1000 or 3000-4999. Holds the code.
    #[error("close code {0} may not be sent")]
    InvalidCloseCode(u16),
    /// The close reason was over [`MAX_REASON_LEN`](crate::close::MAX_REASON_LEN) (123)
    /// bytes.
    #[error("close reason over 123 bytes")]
    CloseReasonTooLong,
    /// A new message was started while a fragmented one is still being sent; finish it first
    /// (§5.4: data frames of two messages cannot interleave).
    #[error("a fragmented message is already being sent")]
    FragmentInProgress,
    /// A continuation fragment was sent with no fragmented message started.
    #[error("no fragmented message is being sent")]
    NoFragmentInProgress,
}
