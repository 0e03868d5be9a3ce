//! RFC 6455 §4: the opening handshake, as values in and values out.
//!
//! Server: [`parse_request`] → [`validate_request`] → [`accept_response`] or
//! [`HandshakeError::response`]. Client: [`ClientHandshake::request`] → [`parse_response`] →
//! [`ClientHandshake::validate_response`]. Nothing here reads or writes a socket.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Version};
use sha1::{Digest, Sha1};

use crate::deflate::{self, DeflateConfig, DeflateParams, EXTENSION_NAME};
use crate::extensions::{format_extensions, parse_extensions, ExtensionOffer};

/// The GUID of §1.3 that `Sec-WebSocket-Accept` hashes with the key.
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Most headers a handshake may carry; more is refused (431).
pub const MAX_HEADERS: usize = 64;

/// Why a handshake failed. On the server each maps to an HTTP response (see
/// [`HandshakeError::response`]); on the client it fails the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The bytes are not an HTTP/1.x request or response head. A server answers 400.
    #[error("malformed HTTP: {0}")]
    MalformedHttp(&'static str),
    /// The head is longer than the caller's `max_size`, or has more than [`MAX_HEADERS`]
    /// headers. Answered with 431.
    #[error("handshake headers too large")]
    HeadersTooLarge,
    /// The request line alone is longer than the head may be.
    /// Answered with 414.
    #[error("request target too long")]
    UriTooLong,
    /// A valid HTTP request that is not a valid WebSocket handshake (§4.2.1); holds the rule
    /// it broke. Answered with 400.
    #[error("bad WebSocket request: {0}")]
    BadRequest(&'static str),
    /// `Sec-WebSocket-Version` is missing, repeated or not 13. Answered with 426 and the
    /// version this side speaks (§4.4).
    #[error("unsupported WebSocket version")]
    UnsupportedVersion,
    /// Client side: the server did not accept the upgrade (not 101, or not 2xx over HTTP/2).
    /// A redirect or an authentication challenge is the caller's to handle (§4.1).
    #[error("server answered {status} instead of 101")]
    UnexpectedStatus {
        /// The HTTP status code the server sent.
        status: u16,
    },
    /// Client side: the server accepted the upgrade but broke a rule of §4.1 (accept value,
    /// `Upgrade`, `Connection`, a subprotocol or extension not offered); holds which.
    #[error("bad WebSocket response: {0}")]
    BadResponse(&'static str),
}

impl HandshakeError {
    /// The HTTP/1.1 response a server sends for this error (§4.2.1, §4.4), and its body: 426
    /// with the supported version for a version mismatch, 431 for oversized headers, 414 for
    /// an oversized request line, 400 with a short text body otherwise. Write it with
    /// [`write_response`].
    pub fn response(&self) -> (Response<()>, String) {
        self.response_for(Version::HTTP_11)
    }

    /// [`HandshakeError::response`] for a request that came over `version`: HTTP/2 forbids
    /// `Upgrade` and `Connection` (RFC 9113 §8.2.2), so its 426 carries only the version.
    pub fn response_for(&self, version: Version) -> (Response<()>, String) {
        let (status, body) = match self {
            HandshakeError::UnsupportedVersion => (
                StatusCode::UPGRADE_REQUIRED,
                "Upgrade Required\n".to_string(),
            ),
            HandshakeError::HeadersTooLarge => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "Request Header Fields Too Large\n".to_string(),
            ),
            HandshakeError::UriTooLong => (StatusCode::URI_TOO_LONG, "URI Too Long\n".to_string()),
            other => (StatusCode::BAD_REQUEST, format!("Bad Request: {other}\n")),
        };
        let mut resp = Response::new(());
        *resp.status_mut() = status;
        if status == StatusCode::UPGRADE_REQUIRED {
            let h = resp.headers_mut();
            h.insert("sec-websocket-version", HeaderValue::from_static("13"));
            if version < Version::HTTP_2 {
                h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
                h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
            }
        }
        (resp, body)
    }
}

/// `Sec-WebSocket-Accept` for a key (§4.2.2): base64 of the SHA-1 of the key and the GUID.
/// `key` is the header value as sent, not its decoded bytes.
pub fn accept_key(key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(GUID);
    BASE64.encode(sha.finalize())
}

/// Encodes 16 bytes as a `Sec-WebSocket-Key`. They must be random and new for each
/// connection (§4.1); the caller supplies them.
pub fn encode_key(nonce: [u8; 16]) -> String {
    BASE64.encode(nonce)
}

// ---------------------------------------------------------------- server

/// Parses an HTTP request head from `buf`. `Ok(None)` needs more bytes; `max_size` bounds the
/// head so that a peer cannot grow the buffer forever.
///
/// Returns the request and the length of its head; bytes after it already belong to the
/// WebSocket. At most [`MAX_HEADERS`] headers are read. Any HTTP version but 1.1 is reported
/// as HTTP/1.0, which [`validate_request`] refuses.
pub fn parse_request(
    buf: &[u8],
    max_size: usize,
) -> Result<Option<(Request<()>, usize)>, HandshakeError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        // Still in the request line: it is the target that is too long (RFC 9110 §15.5.15).
        Ok(httparse::Status::Partial) if buf.len() > max_size && !buf.contains(&b'\n') => {
            return Err(HandshakeError::UriTooLong)
        }
        Ok(httparse::Status::Partial) if buf.len() > max_size => {
            return Err(HandshakeError::HeadersTooLarge)
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HandshakeError::HeadersTooLarge),
        Err(_) => return Err(HandshakeError::MalformedHttp("invalid request")),
    };
    if len > max_size {
        return Err(HandshakeError::HeadersTooLarge);
    }
    let mut builder = Request::builder()
        .method(req.method.unwrap_or("GET"))
        .uri(req.path.unwrap_or("/"))
        .version(if req.version == Some(1) {
            Version::HTTP_11
        } else {
            Version::HTTP_10
        });
    for h in req.headers.iter() {
        builder = builder.header(h.name, h.value);
    }
    let request = builder
        .body(())
        .map_err(|_| HandshakeError::MalformedHttp("invalid request"))?;
    Ok(Some((request, len)))
}

/// Whether a request asks for a WebSocket at all (`Upgrade: websocket`), as opposed to a plain
/// HTTP request the application may answer itself.
pub fn is_upgrade_request<B>(req: &Request<B>) -> bool {
    header_has_token(req.headers(), header::UPGRADE, "websocket")
}

/// What a valid client handshake asks for, over HTTP/1.1 or HTTP/2: the same negotiation
/// follows from either.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOffer {
    /// `Sec-WebSocket-Key` of an HTTP/1.1 upgrade; `None` for an HTTP/2 extended CONNECT, which
    /// has no key and no accept value (RFC 8441 §4).
    pub key: Option<String>,
    /// `Sec-WebSocket-Protocol`, in the client's order of preference.
    pub protocols: Vec<String>,
    /// `Sec-WebSocket-Extensions`, in order.
    pub extensions: Vec<ExtensionOffer>,
}

/// Checks a client's opening handshake over HTTP/1.1 (RFC 6455 §4.2.1): `GET`, HTTP/1.1 or
/// later, `Host`, `Upgrade: websocket`, `Connection: Upgrade`, version 13 and one key that
/// decodes to 16 bytes. Subprotocol and extension headers are parsed, not judged: the server
/// picks from them with [`ClientOffer::select_protocol`] and [`ClientOffer::negotiate`].
/// `Origin` is not checked; a server that cares checks it itself (§10.2).
pub fn validate_request<B>(req: &Request<B>) -> Result<ClientOffer, HandshakeError> {
    if req.version() == Version::HTTP_2 {
        return Err(HandshakeError::BadRequest(
            "HTTP/2 WebSockets use extended CONNECT",
        ));
    }
    if req.method() != Method::GET {
        return Err(HandshakeError::BadRequest("method must be GET"));
    }
    if req.version() < Version::HTTP_11 {
        return Err(HandshakeError::BadRequest("HTTP/1.1 or later required"));
    }
    let h = req.headers();
    if !h.contains_key(header::HOST) {
        return Err(HandshakeError::BadRequest("missing Host"));
    }
    if !header_has_token(h, header::UPGRADE, "websocket") {
        return Err(HandshakeError::BadRequest("missing Upgrade: websocket"));
    }
    if !header_has_token(h, header::CONNECTION, "upgrade") {
        return Err(HandshakeError::BadRequest("missing Connection: Upgrade"));
    }
    check_version(h)?;
    let mut keys = h.get_all("sec-websocket-key").iter();
    let key = match (keys.next(), keys.next()) {
        (Some(key), None) => key.as_bytes().trim_ascii(),
        _ => return Err(HandshakeError::BadRequest("missing Sec-WebSocket-Key")),
    };
    match BASE64.decode(key) {
        Ok(nonce) if nonce.len() == 16 => {}
        _ => return Err(HandshakeError::BadRequest("invalid Sec-WebSocket-Key")),
    }
    let key = String::from_utf8_lossy(key).into_owned();
    offer_from_headers(h, Some(key))
}

/// Checks an HTTP/2 extended CONNECT (RFC 8441 §4): method CONNECT with `:protocol` =
/// `websocket`, and the same `sec-websocket-*` headers as HTTP/1.1 but no key. `protocol` is the
/// `:protocol` pseudo-header, which HTTP libraries keep outside the header map.
pub fn validate_extended_connect<B>(
    req: &Request<B>,
    protocol: Option<&str>,
) -> Result<ClientOffer, HandshakeError> {
    if req.method() != Method::CONNECT {
        return Err(HandshakeError::BadRequest("method must be CONNECT"));
    }
    match protocol {
        Some(p) if p.eq_ignore_ascii_case("websocket") => {}
        Some(_) => return Err(HandshakeError::BadRequest(":protocol must be websocket")),
        None => return Err(HandshakeError::BadRequest("missing :protocol")),
    }
    if req.uri().authority().is_none() && !req.headers().contains_key(header::HOST) {
        return Err(HandshakeError::BadRequest("missing :authority"));
    }
    check_version(req.headers())?;
    offer_from_headers(req.headers(), None)
}

/// `Sec-WebSocket-Version` must be exactly 13 (§4.4); anything else is answered with 426.
fn check_version(h: &HeaderMap) -> Result<(), HandshakeError> {
    let mut versions = h.get_all("sec-websocket-version").iter();
    match (versions.next(), versions.next()) {
        (Some(v), None) if v.as_bytes().trim_ascii() == b"13" => Ok(()),
        _ => Err(HandshakeError::UnsupportedVersion),
    }
}

/// The part of negotiation that HTTP/1.1 and HTTP/2 share: subprotocols and extensions.
fn offer_from_headers(h: &HeaderMap, key: Option<String>) -> Result<ClientOffer, HandshakeError> {
    let protocols = comma_list(h, "sec-websocket-protocol")?;
    let extensions = parse_extensions(
        h.get_all("sec-websocket-extensions")
            .iter()
            .map(|v| v.as_bytes()),
    )
    .map_err(|_| HandshakeError::BadRequest("invalid Sec-WebSocket-Extensions"))?;
    Ok(ClientOffer {
        key,
        protocols,
        extensions,
    })
}

/// The server's half of negotiation: picks the subprotocol and the extensions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Negotiated {
    /// The subprotocol in use (`Sec-WebSocket-Protocol`); `None` when there is none.
    pub protocol: Option<String>,
    /// The `Sec-WebSocket-Extensions` value agreed on (empty when none).
    pub extensions: String,
    /// The permessage-deflate parameters, when the extension was agreed: build the codec
    /// from them for the connection.
    pub deflate: Option<DeflateParams>,
}

impl ClientOffer {
    /// Picks the first of the server's `supported` protocols (in the server's order of
    /// preference) that the client offered.
    pub fn select_protocol(&self, supported: &[impl AsRef<str>]) -> Option<String> {
        supported
            .iter()
            .map(AsRef::as_ref)
            .find(|p| self.protocols.iter().any(|o| o == p))
            .map(str::to_owned)
    }

    /// Negotiates permessage-deflate if `deflate` is set, the client offered it and this build
    /// has the codec ([`deflate::AVAILABLE`]). `protocol` is taken as it is (usually from
    /// [`ClientOffer::select_protocol`]): it must be one the client offered (§4.2.2).
    pub fn negotiate(
        &self,
        protocol: Option<String>,
        deflate: Option<&DeflateConfig>,
    ) -> Negotiated {
        let accepted = deflate
            .filter(|_| deflate::AVAILABLE)
            .and_then(|cfg| cfg.server_accept(&self.extensions));
        let (deflate, extensions) = match accepted {
            Some((params, response)) => (Some(params), format_extensions(&[response])),
            None => (None, String::new()),
        };
        Negotiated {
            protocol,
            extensions,
            deflate,
        }
    }
}

/// The response that accepts an offer: `101 Switching Protocols` with the accept value over
/// HTTP/1.1 (§4.2.2), `200` over HTTP/2 (RFC 8441 §5). Both carry the negotiated subprotocol and
/// extensions; one that is not a valid header value is left out.
pub fn accept_response(offer: &ClientOffer, negotiated: &Negotiated) -> Response<()> {
    let mut resp = Response::new(());
    let h = resp.headers_mut();
    if let Some(key) = &offer.key {
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(
            "sec-websocket-accept",
            HeaderValue::from_str(&accept_key(key.as_bytes())).expect("base64 is a valid value"),
        );
        *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    }
    let h = resp.headers_mut();
    if let Some(p) = negotiated.protocol.as_deref() {
        if let Ok(v) = HeaderValue::from_str(p) {
            h.insert("sec-websocket-protocol", v);
        }
    }
    if !negotiated.extensions.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&negotiated.extensions) {
            h.insert("sec-websocket-extensions", v);
        }
    }
    resp
}

/// Serialises a response head and body as HTTP/1.1, whatever the response's version. Adds
/// `Content-Length` to any response but a 101 that does not have one, so that the client
/// knows where the body ends.
pub fn write_response(resp: &Response<()>, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + body.len());
    let status = resp.status();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in resp.headers() {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if status != StatusCode::SWITCHING_PROTOCOLS
        && !resp.headers().contains_key(header::CONTENT_LENGTH)
    {
        out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

// ---------------------------------------------------------------- client

/// What the client asks for, kept to check the response.
#[derive(Debug, Clone)]
pub struct ClientHandshake {
    /// The `Sec-WebSocket-Key` to send, from [`encode_key`] on 16 fresh random bytes.
    pub key: String,
    /// Subprotocols to offer, in order of preference; each must be an HTTP token. The server
    /// may pick one or none.
    pub protocols: Vec<String>,
    /// The permessage-deflate offer; ignored by a build without the codec
    /// ([`deflate::AVAILABLE`]).
    pub deflate: Option<DeflateConfig>,
}

impl ClientHandshake {
    /// The offer to send, if this build can honour it.
    fn deflate_offer(&self) -> Option<&DeflateConfig> {
        self.deflate.as_ref().filter(|_| deflate::AVAILABLE)
    }

    /// The request head (§4.1). `host` is the `Host` header value, `target` the path and query.
    /// `extra` headers come last. Those named `Host`, `Upgrade`, `Connection`,
    /// `Sec-WebSocket-Key`, `Sec-WebSocket-Version` or `Sec-WebSocket-Extensions` are dropped;
    /// `Sec-WebSocket-Protocol` is not, so offer subprotocols through `protocols` only.
    ///
    /// Everything is written as given: `host`, `target` and the extra names and values must
    /// not contain CR or LF.
    pub fn request(&self, host: &str, target: &str, extra: &[(String, String)]) -> Vec<u8> {
        let mut out = format!(
            "GET {target} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n",
            self.key
        );
        if !self.protocols.is_empty() {
            out.push_str(&format!(
                "Sec-WebSocket-Protocol: {}\r\n",
                self.protocols.join(", ")
            ));
        }
        if let Some(cfg) = self.deflate_offer() {
            out.push_str(&format!(
                "Sec-WebSocket-Extensions: {}\r\n",
                format_extensions(&[cfg.client_offer()])
            ));
        }
        for (name, value) in extra {
            let reserved = [
                "host",
                "upgrade",
                "connection",
                "sec-websocket-key",
                "sec-websocket-version",
                "sec-websocket-extensions",
            ];
            if reserved.iter().any(|r| name.eq_ignore_ascii_case(r)) {
                continue;
            }
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        out.push_str("\r\n");
        out.into_bytes()
    }

    /// Checks the server's response (§4.1, the client's "MUST _Fail the WebSocket
    /// Connection_" list), and returns what was agreed. Any error means the client closes the
    /// transport without a WebSocket close frame.
    pub fn validate_response<B>(&self, resp: &Response<B>) -> Result<Negotiated, HandshakeError> {
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            return Err(HandshakeError::UnexpectedStatus {
                status: resp.status().as_u16(),
            });
        }
        let h = resp.headers();
        if !header_has_token(h, header::UPGRADE, "websocket") {
            return Err(HandshakeError::BadResponse("missing Upgrade: websocket"));
        }
        if !header_has_token(h, header::CONNECTION, "upgrade") {
            return Err(HandshakeError::BadResponse("missing Connection: Upgrade"));
        }
        let expected = accept_key(self.key.as_bytes());
        match h.get("sec-websocket-accept") {
            Some(v) if v.as_bytes().trim_ascii() == expected.as_bytes() => {}
            _ => return Err(HandshakeError::BadResponse("wrong Sec-WebSocket-Accept")),
        }
        self.negotiated_from(h)
    }

    /// Checks the answer to an HTTP/2 extended CONNECT (RFC 8441 §5): any 2xx opens the
    /// WebSocket, and there is no accept value; subprotocol and extensions are checked as over
    /// HTTP/1.1.
    pub fn validate_extended_connect_response<B>(
        &self,
        resp: &Response<B>,
    ) -> Result<Negotiated, HandshakeError> {
        if !resp.status().is_success() {
            return Err(HandshakeError::UnexpectedStatus {
                status: resp.status().as_u16(),
            });
        }
        self.negotiated_from(resp.headers())
    }

    /// The `sec-websocket-*` headers of an HTTP/2 extended CONNECT (RFC 8441 §5): the same
    /// offer as [`ClientHandshake::request`] without the key. Callers put `:protocol` =
    /// `websocket` in whatever form their HTTP/2 library takes it.
    pub fn extended_connect_headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("sec-websocket-version", HeaderValue::from_static("13"));
        if !self.protocols.is_empty() {
            if let Ok(v) = HeaderValue::from_str(&self.protocols.join(", ")) {
                h.insert("sec-websocket-protocol", v);
            }
        }
        if let Some(cfg) = self.deflate_offer() {
            if let Ok(v) = HeaderValue::from_str(&format_extensions(&[cfg.client_offer()])) {
                h.insert("sec-websocket-extensions", v);
            }
        }
        h
    }

    fn negotiated_from(&self, h: &HeaderMap) -> Result<Negotiated, HandshakeError> {
        let protocols = comma_list(h, "sec-websocket-protocol")
            .map_err(|_| HandshakeError::BadResponse("invalid Sec-WebSocket-Protocol"))?;
        let protocol = match protocols.as_slice() {
            [] => None,
            [p] if self.protocols.contains(p) => Some(p.clone()),
            _ => return Err(HandshakeError::BadResponse("subprotocol not offered")),
        };
        let exts = parse_extensions(
            h.get_all("sec-websocket-extensions")
                .iter()
                .map(|v| v.as_bytes()),
        )
        .map_err(|_| HandshakeError::BadResponse("invalid Sec-WebSocket-Extensions"))?;
        let mut deflate = None;
        for ext in &exts {
            match (self.deflate_offer(), ext.name.as_str()) {
                (Some(cfg), EXTENSION_NAME) if deflate.is_none() => {
                    deflate =
                        Some(cfg.client_accept(ext).map_err(|_| {
                            HandshakeError::BadResponse("invalid permessage-deflate")
                        })?);
                }
                _ => return Err(HandshakeError::BadResponse("extension not offered")),
            }
        }
        Ok(Negotiated {
            protocol,
            extensions: format_extensions(&exts),
            deflate,
        })
    }
}

/// Parses an HTTP response head from `buf`. `Ok(None)` needs more bytes.
///
/// Returns the response and the length of its head; bytes after it are already WebSocket
/// frames. `max_size` bounds an incomplete head only: a complete head is accepted whatever
/// its length. At most [`MAX_HEADERS`] headers are read.
pub fn parse_response(
    buf: &[u8],
    max_size: usize,
) -> Result<Option<(Response<()>, usize)>, HandshakeError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > max_size => {
            return Err(HandshakeError::HeadersTooLarge)
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HandshakeError::HeadersTooLarge),
        Err(_) => return Err(HandshakeError::MalformedHttp("invalid response")),
    };
    let mut builder = Response::builder().status(resp.code.unwrap_or(0));
    for h in resp.headers.iter() {
        builder = builder.header(h.name, h.value);
    }
    let response = builder
        .body(())
        .map_err(|_| HandshakeError::MalformedHttp("invalid response"))?;
    Ok(Some((response, len)))
}

// ---------------------------------------------------------------- helpers

/// Whether a comma-separated header contains `token`, case-insensitively (RFC 7230 §7).
fn header_has_token(h: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    h.get_all(name).iter().any(|v| {
        v.as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

fn comma_list(h: &HeaderMap, name: &str) -> Result<Vec<String>, HandshakeError> {
    let mut out = Vec::new();
    for value in h.get_all(name) {
        let value = value
            .to_str()
            .map_err(|_| HandshakeError::BadRequest("invalid header value"))?;
        for item in value.split(',') {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            if !item.bytes().all(crate::extensions::is_tchar) {
                return Err(HandshakeError::BadRequest("invalid Sec-WebSocket-Protocol"));
            }
            out.push(item.to_owned());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n";

    fn request(bytes: &[u8]) -> Request<()> {
        parse_request(bytes, 8192).unwrap().unwrap().0
    }

    fn with_header(name: &str, value: Option<&str>) -> Vec<u8> {
        let text = std::str::from_utf8(RFC_REQUEST).unwrap();
        let mut lines: Vec<String> = text
            .split("\r\n")
            .filter(|l| {
                !l.to_ascii_lowercase()
                    .starts_with(&format!("{}:", name.to_ascii_lowercase()))
            })
            .map(str::to_owned)
            .collect();
        if let Some(v) = value {
            lines.insert(1, format!("{name}: {v}"));
        }
        lines.join("\r\n").into_bytes()
    }

    #[test]
    fn rfc6455_1_3_accept_key_of_the_sample_nonce() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn rfc6455_4_2_1_server_accepts_the_sample_request() {
        let req = request(RFC_REQUEST);
        assert_eq!(req.uri().path(), "/chat");
        let offer = validate_request(&req).unwrap();
        assert_eq!(offer.protocols, ["chat", "superchat"]);
        let chosen = offer.select_protocol(&["superchat", "chat"]);
        assert_eq!(
            chosen.as_deref(),
            Some("superchat"),
            "the server's preference wins"
        );
        let resp = accept_response(&offer, &offer.negotiate(chosen, None));
        let wire = String::from_utf8(write_response(&resp, b"")).unwrap();
        assert!(wire.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(wire.contains("sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(wire.contains("sec-websocket-protocol: superchat\r\n"));
    }

    #[test]
    fn rfc6455_4_2_1_connection_header_is_matched_token_wise() {
        let req = request(&with_header("Connection", Some("keep-alive, Upgrade")));
        assert!(validate_request(&req).is_ok());
        let req = request(&with_header("Connection", Some("keep-alive, upgraded")));
        assert!(validate_request(&req).is_err());
    }

    #[test]
    fn rfc6455_4_2_1_missing_or_bad_headers_get_400() {
        for (name, value) in [
            ("Host", None),
            ("Upgrade", None),
            ("Upgrade", Some("h2c")),
            ("Connection", None),
            ("Sec-WebSocket-Key", None),
            ("Sec-WebSocket-Key", Some("dG9vIHNob3J0")),
            ("Sec-WebSocket-Key", Some("not base64!!")),
        ] {
            let err = validate_request(&request(&with_header(name, value))).unwrap_err();
            assert_eq!(err.response().0.status(), 400, "{name}: {value:?}");
        }
        let post = String::from_utf8_lossy(RFC_REQUEST).replacen("GET", "POST", 1);
        assert_eq!(
            validate_request(&request(post.as_bytes()))
                .unwrap_err()
                .response()
                .0
                .status(),
            400
        );
        let http10 = String::from_utf8_lossy(RFC_REQUEST).replacen("HTTP/1.1", "HTTP/1.0", 1);
        assert!(validate_request(&request(http10.as_bytes())).is_err());
    }

    #[test]
    fn rfc6455_4_4_wrong_version_gets_426_with_the_supported_version() {
        for version in [Some("8"), None] {
            let err = validate_request(&request(&with_header("Sec-WebSocket-Version", version)))
                .unwrap_err();
            assert_eq!(err, HandshakeError::UnsupportedVersion);
            let (resp, _) = err.response();
            assert_eq!(resp.status(), 426);
            assert_eq!(resp.headers()["sec-websocket-version"], "13");
        }
    }

    fn extended_connect(headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder()
            .method(Method::CONNECT)
            .version(Version::HTTP_2)
            .uri("https://server.example.com/chat");
        for (name, value) in headers {
            b = b.header(*name, *value);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn rfc8441_4_extended_connect_negotiates_like_http11_and_answers_200() {
        let req = extended_connect(&[
            ("sec-websocket-version", "13"),
            ("sec-websocket-protocol", "chat, superchat"),
            (
                "sec-websocket-extensions",
                "permessage-deflate; client_max_window_bits",
            ),
        ]);
        let offer = validate_extended_connect(&req, Some("websocket")).unwrap();
        assert_eq!(offer.key, None);
        assert_eq!(offer.protocols, ["chat", "superchat"]);
        let negotiated = offer.negotiate(
            offer.select_protocol(&["superchat"]),
            Some(&DeflateConfig::default()),
        );
        let resp = accept_response(&offer, &negotiated);
        assert_eq!(resp.status(), 200);
        assert!(!resp.headers().contains_key("sec-websocket-accept"));
        assert!(!resp.headers().contains_key(header::UPGRADE));
        assert!(!resp.headers().contains_key(header::CONNECTION));
        assert_eq!(resp.headers()["sec-websocket-protocol"], "superchat");
        assert!(resp.headers()["sec-websocket-extensions"]
            .to_str()
            .unwrap()
            .starts_with("permessage-deflate"));
    }

    #[test]
    fn rfc8441_4_connect_without_websocket_protocol_is_refused() {
        let req = extended_connect(&[("sec-websocket-version", "13")]);
        for protocol in [None, Some("connect-udp")] {
            let err = validate_extended_connect(&req, protocol).unwrap_err();
            assert_eq!(err.response_for(Version::HTTP_2).0.status(), 400);
        }
        let get = Request::builder()
            .version(Version::HTTP_2)
            .uri("https://x/")
            .body(())
            .unwrap();
        assert!(validate_extended_connect(&get, Some("websocket")).is_err());
        assert!(
            validate_request(&get).is_err(),
            "an HTTP/2 GET is not an upgrade"
        );
    }

    #[test]
    fn rfc8441_4_wrong_version_gets_426_without_connection_headers() {
        let req = extended_connect(&[("sec-websocket-version", "8")]);
        let err = validate_extended_connect(&req, Some("websocket")).unwrap_err();
        let (resp, _) = err.response_for(Version::HTTP_2);
        assert_eq!(resp.status(), 426);
        assert_eq!(resp.headers()["sec-websocket-version"], "13");
        assert!(!resp.headers().contains_key(header::UPGRADE));
        assert!(!resp.headers().contains_key(header::CONNECTION));
    }

    #[test]
    fn rfc8441_5_client_accepts_2xx_and_checks_the_subprotocol() {
        let hs = client(&["soap", "wamp"]);
        let h = hs.extended_connect_headers();
        assert_eq!(h["sec-websocket-version"], "13");
        assert_eq!(h["sec-websocket-protocol"], "soap, wamp");
        assert!(!h.contains_key("sec-websocket-key"));
        let ok = Response::builder()
            .status(200)
            .header("sec-websocket-protocol", "wamp")
            .body(())
            .unwrap();
        assert_eq!(
            hs.validate_extended_connect_response(&ok)
                .unwrap()
                .protocol
                .as_deref(),
            Some("wamp")
        );
        let refused = Response::builder().status(404).body(()).unwrap();
        assert_eq!(
            hs.validate_extended_connect_response(&refused),
            Err(HandshakeError::UnexpectedStatus { status: 404 })
        );
        let unoffered = Response::builder()
            .status(200)
            .header("sec-websocket-protocol", "mqtt")
            .body(())
            .unwrap();
        assert!(hs.validate_extended_connect_response(&unoffered).is_err());
    }

    #[test]
    fn handshake_head_is_bounded() {
        let mut big = b"GET / HTTP/1.1\r\n".to_vec();
        big.extend(std::iter::repeat_n(b'a', 10_000));
        assert!(matches!(
            parse_request(&big, 8192),
            Err(HandshakeError::HeadersTooLarge)
        ));
        let partial = b"GET / HTTP/1.1\r\nHost: x\r\n";
        assert!(matches!(parse_request(partial, 8192), Ok(None)));
        assert!(matches!(
            parse_request(b"\x16\x03\x01garbage\r\n\r\n", 8192),
            Err(HandshakeError::MalformedHttp(_))
        ));
    }

    fn client(protocols: &[&str]) -> ClientHandshake {
        ClientHandshake {
            key: "dGhlIHNhbXBsZSBub25jZQ==".into(),
            protocols: protocols.iter().map(|s| s.to_string()).collect(),
            deflate: None,
        }
    }

    fn response(extra: &str) -> Response<()> {
        let text = format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n{extra}\r\n");
        parse_response(text.as_bytes(), 8192).unwrap().unwrap().0
    }

    #[test]
    fn rfc6455_4_1_client_request_has_the_required_headers() {
        let req = client(&["soap", "wamp"]).request(
            "example.com:8080",
            "/chat?x=1",
            &[
                ("Origin".into(), "http://example.com".into()),
                ("Host".into(), "evil".into()),
            ],
        );
        let req = request(&req);
        assert_eq!(req.uri(), "/chat?x=1");
        assert_eq!(req.headers()["host"], "example.com:8080");
        assert_eq!(req.headers()["origin"], "http://example.com");
        assert_eq!(req.headers().get_all("host").iter().count(), 1);
        let offer = validate_request(&req).unwrap();
        assert_eq!(offer.protocols, ["soap", "wamp"]);
    }

    #[test]
    fn rfc6455_4_1_client_checks_the_accept_key() {
        assert!(client(&[]).validate_response(&response("")).is_ok());
        let mut wrong = client(&[]);
        wrong.key = "AAAAAAAAAAAAAAAAAAAAAA==".into();
        assert_eq!(
            wrong.validate_response(&response("")),
            Err(HandshakeError::BadResponse("wrong Sec-WebSocket-Accept"))
        );
    }

    #[test]
    fn rfc6455_4_1_client_refuses_a_protocol_it_did_not_offer() {
        let ok = client(&["soap", "wamp"])
            .validate_response(&response("Sec-WebSocket-Protocol: wamp\r\n"))
            .unwrap();
        assert_eq!(ok.protocol.as_deref(), Some("wamp"));
        assert!(client(&["soap"])
            .validate_response(&response("Sec-WebSocket-Protocol: wamp\r\n"))
            .is_err());
        assert!(client(&[])
            .validate_response(&response("Sec-WebSocket-Protocol: wamp\r\n"))
            .is_err());
    }

    #[test]
    fn rfc6455_4_1_client_refuses_an_extension_it_did_not_offer() {
        assert!(client(&[])
            .validate_response(&response(
                "Sec-WebSocket-Extensions: permessage-deflate\r\n"
            ))
            .is_err());
        let mut with_deflate = client(&[]);
        with_deflate.deflate = Some(DeflateConfig::default());
        let n = with_deflate
            .validate_response(&response(
                "Sec-WebSocket-Extensions: permessage-deflate\r\n",
            ))
            .unwrap();
        assert!(n.deflate.is_some());
        assert_eq!(n.extensions, "permessage-deflate");
    }

    #[test]
    fn non_101_response_is_an_error_with_the_status() {
        let resp = parse_response(b"HTTP/1.1 403 Forbidden\r\n\r\n", 8192)
            .unwrap()
            .unwrap()
            .0;
        assert_eq!(
            client(&[]).validate_response(&resp),
            Err(HandshakeError::UnexpectedStatus { status: 403 })
        );
    }
}
