//! RFC 6455 §5.5.1 and §7.4: close frames and status codes.

use crate::error::{ProtocolError, UsageError};

/// A close status code (§7.4), as carried in the first two bytes of a close frame.
///
/// Any `u16` can be held, so that a code read off the wire or given by an application can be
/// reported as it is; [`CloseCode::is_sendable`] says whether it may go in a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: the connection did what it was for and is done.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: the endpoint is going away: a server shutting down, a browser leaving the page.
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: the peer broke the protocol. Most [`ProtocolError`]s close with it.
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// 1003: the endpoint cannot accept this kind of data, e.g. binary where it only takes
    /// text.
    pub const UNSUPPORTED_DATA: CloseCode = CloseCode(1003);
    /// Reported when a close frame had no status code; never sent.
    pub const NO_STATUS: CloseCode = CloseCode(1005);
    /// Reported when the connection ended without a close frame; never sent.
    pub const ABNORMAL: CloseCode = CloseCode(1006);
    /// 1007: a message's data does not match its type: invalid UTF-8 in a text message, or,
    /// in this crate, permessage-deflate data that does not inflate.
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    /// 1008: the message breaks the endpoint's policy; the generic code when no other fits.
    pub const POLICY_VIOLATION: CloseCode = CloseCode(1008);
    /// 1009: a frame or message is larger than the endpoint accepts
    /// ([`ConnectionConfig`](crate::connection::ConnectionConfig) limits).
    pub const MESSAGE_TOO_BIG: CloseCode = CloseCode(1009);
    /// 1010: sent by a client whose server did not agree to an extension it needs; the reason
    /// should name the extensions.
    pub const MANDATORY_EXTENSION: CloseCode = CloseCode(1010);
    /// 1011: the server met an unexpected condition and cannot go on.
    pub const INTERNAL_ERROR: CloseCode = CloseCode(1011);
    /// 1012: the server is restarting (IANA registry).
    pub const SERVICE_RESTART: CloseCode = CloseCode(1012);
    /// 1013: the server is overloaded for now; the client may reconnect later (IANA registry).
    pub const TRY_AGAIN_LATER: CloseCode = CloseCode(1013);
    /// 1014: a gateway or proxy got an invalid response from the server behind it (IANA
    /// registry).
    pub const BAD_GATEWAY: CloseCode = CloseCode(1014);
    /// Reported when the TLS handshake failed; never sent.
    pub const TLS_HANDSHAKE: CloseCode = CloseCode(1015);

    /// Whether the code may appear in a close frame: the codes defined by §7.4.1 and the IANA
    /// registry (1012-1014), and the ranges 3000-3999 (registered) and 4000-4999 (private).
    /// 1004, 1005, 1006 and 1015 are reserved and never on the wire.
    pub fn is_sendable(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }

    /// Whether an application may pass the code to `close()`, by the rule browsers apply
    /// (WHATWG WebSockets: 1000, or 3000 to 4999).
    pub fn is_application_allowed(self) -> bool {
        matches!(self.0, 1000 | 3000..=4999)
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        CloseCode(code)
    }
}

impl std::fmt::Display for CloseCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// The longest close reason, in bytes: a control frame's 125 bytes less the two-byte code.
pub const MAX_REASON_LEN: usize = 123;

/// The body of a close frame (§5.5.1): a status code and a UTF-8 reason.
///
/// A close frame with no body has no `CloseFrame`; APIs take or return `Option<CloseFrame>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code.
    pub code: CloseCode,
    /// Text for people and logs, not for programs to parse; may be empty. At most
    /// [`MAX_REASON_LEN`] bytes on the wire.
    pub reason: String,
}

impl CloseFrame {
    /// A close frame with any code and reason, unchecked. The checks are made when it is sent
    /// ([`Connection::send_close`](crate::connection::Connection::send_close)); use
    /// [`CloseFrame::from_application`] for the stricter browser rule.
    pub fn new(code: impl Into<CloseCode>, reason: impl Into<String>) -> Self {
        CloseFrame {
            code: code.into(),
            reason: reason.into(),
        }
    }

    /// The close frame an application may ask for, by the rule browsers apply to
    /// `WebSocket.close(code, reason)`: a code [`CloseCode::is_application_allowed`] allows
    /// (1000, or 3000 to 4999) and a reason of at most [`MAX_REASON_LEN`] bytes. The I/O layer
    /// may still send other codes valid on the wire (1001 on shutdown, 1011).
    pub fn from_application(
        code: CloseCode,
        reason: impl Into<String>,
    ) -> Result<CloseFrame, UsageError> {
        let reason = reason.into();
        if !code.is_application_allowed() {
            return Err(UsageError::InvalidCloseCode(code.0));
        }
        if reason.len() > MAX_REASON_LEN {
            return Err(UsageError::CloseReasonTooLong);
        }
        Ok(CloseFrame { code, reason })
    }

    /// Parses a close frame's payload. `None` means the frame carried no status code, which
    /// is reported as 1005.
    ///
    /// A one-byte payload, a code that [`CloseCode::is_sendable`] rejects, or a reason that is
    /// not UTF-8 is an error (§5.5.1, §7.4).
    pub fn parse(payload: &[u8]) -> Result<Option<CloseFrame>, ProtocolError> {
        match payload.len() {
            0 => Ok(None),
            1 => Err(ProtocolError::InvalidClosePayload),
            _ => {
                let code = CloseCode(u16::from_be_bytes([payload[0], payload[1]]));
                if !code.is_sendable() {
                    return Err(ProtocolError::InvalidCloseCode(code.0));
                }
                let reason = std::str::from_utf8(&payload[2..])
                    .map_err(|_| ProtocolError::InvalidUtf8)?
                    .to_owned();
                Ok(Some(CloseFrame { code, reason }))
            }
        }
    }

    /// Appends the payload encoding to `dst`: the code in network byte order, then the reason.
    /// Nothing is checked here.
    pub fn encode_into(&self, dst: &mut Vec<u8>) {
        dst.extend_from_slice(&self.code.0.to_be_bytes());
        dst.extend_from_slice(self.reason.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_7_4_1_defined_codes_are_sendable() {
        for code in [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999,
        ] {
            assert!(CloseCode(code).is_sendable(), "{code}");
        }
    }

    #[test]
    fn rfc6455_7_4_reserved_and_undefined_codes_are_not_sendable() {
        for code in [
            0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            assert!(!CloseCode(code).is_sendable(), "{code}");
        }
    }

    #[test]
    fn browsers_allow_only_1000_and_3000_to_4999_from_applications() {
        assert!(CloseCode(1000).is_application_allowed());
        assert!(CloseCode(3000).is_application_allowed());
        assert!(CloseCode(4999).is_application_allowed());
        assert!(!CloseCode(1001).is_application_allowed());
        assert!(!CloseCode(2999).is_application_allowed());
        assert!(!CloseCode(5000).is_application_allowed());
        let frame = CloseFrame::from_application(CloseCode(4000), "x".repeat(MAX_REASON_LEN));
        assert_eq!(frame.unwrap().reason.len(), MAX_REASON_LEN);
        assert_eq!(
            CloseFrame::from_application(CloseCode(1001), ""),
            Err(UsageError::InvalidCloseCode(1001))
        );
        assert_eq!(
            CloseFrame::from_application(CloseCode::NORMAL, "x".repeat(MAX_REASON_LEN + 1)),
            Err(UsageError::CloseReasonTooLong)
        );
    }

    #[test]
    fn rfc6455_5_5_1_close_payload_parsing() {
        assert_eq!(CloseFrame::parse(b""), Ok(None));
        assert_eq!(
            CloseFrame::parse(b"\x03"),
            Err(ProtocolError::InvalidClosePayload)
        );
        assert_eq!(
            CloseFrame::parse(b"\x03\xe8bye"),
            Ok(Some(CloseFrame::new(1000, "bye")))
        );
        assert_eq!(
            CloseFrame::parse(b"\x03\xedx"),
            Err(ProtocolError::InvalidCloseCode(1005))
        );
        assert_eq!(
            CloseFrame::parse(b"\x03\xe8\xff"),
            Err(ProtocolError::InvalidUtf8)
        );
    }
}
