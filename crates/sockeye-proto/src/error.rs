//! What can go wrong in the protocol, split by who did it: the peer (`ProtocolError`, which
//! fails the connection with a close code) or the local application (`UsageError`).

use crate::close::CloseCode;

/// The peer broke a rule of RFC 6455 / RFC 7692, or sent more than the limits allow.
///
/// Each variant names the rule; `Display` is short and safe to send as a close reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    #[error("reserved bits set")]
    ReservedBits,
    #[error("reserved opcode")]
    ReservedOpcode(u8),
    #[error("masked frame from server")]
    MaskedFrameFromServer,
    #[error("unmasked frame from client")]
    UnmaskedFrameFromClient,
    #[error("fragmented control frame")]
    FragmentedControlFrame,
    #[error("control frame too big")]
    ControlFrameTooBig,
    #[error("unexpected continuation frame")]
    UnexpectedContinuation,
    #[error("expected continuation frame")]
    ExpectedContinuation,
    #[error("invalid payload length")]
    InvalidPayloadLength,
    #[error("invalid UTF-8")]
    InvalidUtf8,
    #[error("invalid close frame")]
    InvalidClosePayload,
    #[error("invalid close code")]
    InvalidCloseCode(u16),
    #[error("frame too big")]
    FrameTooBig,
    #[error("message too big")]
    MessageTooBig,
    #[error("invalid compressed data")]
    InvalidCompressedData,
    #[error("data after close")]
    DataAfterClose,
}

impl ProtocolError {
    /// The status code to close with (§7.4.1).
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
    #[error("the connection is closing or closed")]
    Closed,
    #[error("control frame payload over 125 bytes")]
    ControlPayloadTooLong,
    #[error("close code {0} may not be sent")]
    InvalidCloseCode(u16),
    #[error("close reason over 123 bytes")]
    CloseReasonTooLong,
    #[error("a fragmented message is already being sent")]
    FragmentInProgress,
    #[error("no fragmented message is being sent")]
    NoFragmentInProgress,
}
