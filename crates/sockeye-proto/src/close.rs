//! RFC 6455 §5.5.1 and §7.4: close frames and status codes.

use crate::error::{ProtocolError, UsageError};

/// A close status code (§7.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(pub u16);

impl CloseCode {
    pub const NORMAL: CloseCode = CloseCode(1000);
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    pub const UNSUPPORTED_DATA: CloseCode = CloseCode(1003);
    /// Reported when a close frame had no status code; never sent.
    pub const NO_STATUS: CloseCode = CloseCode(1005);
    /// Reported when the connection ended without a close frame; never sent.
    pub const ABNORMAL: CloseCode = CloseCode(1006);
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    pub const POLICY_VIOLATION: CloseCode = CloseCode(1008);
    pub const MESSAGE_TOO_BIG: CloseCode = CloseCode(1009);
    pub const MANDATORY_EXTENSION: CloseCode = CloseCode(1010);
    pub const INTERNAL_ERROR: CloseCode = CloseCode(1011);
    pub const SERVICE_RESTART: CloseCode = CloseCode(1012);
    pub const TRY_AGAIN_LATER: CloseCode = CloseCode(1013);
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

/// The longest reason that fits a control frame beside the two-byte code.
pub const MAX_REASON_LEN: usize = 123;

/// The body of a close frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    pub code: CloseCode,
    pub reason: String,
}

impl CloseFrame {
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

    /// Appends the payload encoding to `dst`.
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
