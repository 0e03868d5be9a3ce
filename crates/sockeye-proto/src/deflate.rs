//! RFC 7692: the permessage-deflate extension — negotiation for both roles, and the codec.
//!
//! A compressed message is one raw DEFLATE stream flushed with `Z_SYNC_FLUSH`, minus the
//! trailing `00 00 ff ff` (§7.2.1); the receiver appends those four bytes before inflating the
//! last fragment (§7.2.2). With context takeover the LZ77 window carries across messages; with
//! `*_no_context_takeover` each message starts afresh.
//!
//! # Memory
//!
//! A zlib-rs compressor holds about 243 KiB plus four bytes per window byte (371 KiB at 15
//! bits), whatever the level; a decompressor about 46 KiB (`compressor_bytes`,
//! `DECOMPRESSOR_BYTES`). Kept per connection, that is most of
//! what an idle browser connection costs, so what a connection keeps between messages is a
//! [`CompressionPolicy`]:
//!
//! - without context takeover in a direction, nothing is kept: each message borrows a
//!   compressor (or decompressor) from a small process-wide cache and returns it reset;
//! - with context takeover and [`DeflateConfig::retained_window`] set, only the last bytes
//!   sent are kept. The next message borrows a compressor; if it is still the one this
//!   connection used last, the stream simply continues, else it is primed with those bytes
//!   (`deflateSetDictionary`). The peer's window holds everything we sent, so references into
//!   the last N bytes are valid for any N up to the negotiated window;
//! - otherwise (policy `max`) the connection owns its zlib state.
//!
//! A message whose compressed form is not smaller than itself is sent uncompressed, as RFC 7692
//! §6 allows per message. The peer's inflater never sees it, so ours must forget it too: it is
//! left out of the retained bytes, or the owned compressor is reset (the next message then
//! refers to nothing before it, which any window allows).
//!
//! # Without the `deflate` feature
//!
//! Negotiation is compiled but never used: [`AVAILABLE`] is false, so the handshake neither
//! offers nor accepts the extension, a response that names it fails the client's handshake,
//! and [`PerMessageDeflate`] has no values, so RSV1 stays a reserved bit that fails the
//! connection with 1002 (RFC 6455 §5.2).

use crate::extensions::ExtensionOffer;

#[cfg(feature = "deflate")]
mod codec;
#[cfg(feature = "deflate")]
pub use codec::{
    compressor_bytes, memory, release_idle_shared, set_shared_compressors, DeflateMemory,
    PerMessageDeflate, DECOMPRESSOR_BYTES, DEFAULT_SHARED_COMPRESSORS,
};

/// Whether this build has the codec (the `deflate` feature), and so negotiates the extension.
pub const AVAILABLE: bool = cfg!(feature = "deflate");

/// The extension token in `Sec-WebSocket-Extensions` (RFC 7692 §7).
pub const EXTENSION_NAME: &str = "permessage-deflate";

/// What permessage-deflate may keep per connection between messages; see the module docs.
///
/// | policy | kept per idle connection | server → client | client → server |
/// |---|---|---|---|
/// | `Fast` | nothing | no context takeover | no context takeover |
/// | `Balanced` (default) | the last 8 KiB sent | context takeover | no context takeover |
/// | `Max` | a compressor and a decompressor (~418 KiB) | context takeover | context takeover |
///
/// `Balanced` asks the client for `client_no_context_takeover` (RFC 7692 §7.1.1.2), which
/// browsers honour; what a server sends, usually the larger direction, keeps its context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CompressionPolicy {
    /// No context takeover either way: each message is compressed on its own, and nothing is
    /// kept between messages. Least memory, worst ratio on small similar messages.
    Fast,
    /// Context takeover for what this side sends, through a retained window of
    /// [`BALANCED_RETAINED_WINDOW`] bytes; none for what the client sends.
    #[default]
    Balanced,
    /// Context takeover both ways, with a compressor and a decompressor owned by each
    /// connection. Best ratio, most memory.
    Max,
}

/// Reads `fast`, `balanced` or `max` (lower case), as in a configuration file or a command
/// line.
impl std::str::FromStr for CompressionPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fast" => Ok(CompressionPolicy::Fast),
            "balanced" => Ok(CompressionPolicy::Balanced),
            "max" => Ok(CompressionPolicy::Max),
            _ => Err(format!(
                "unknown compression policy {s:?} (fast, balanced or max)"
            )),
        }
    }
}

/// What one side wants from permessage-deflate: the negotiation parameters of RFC 7692 §7.1
/// and how to compress once agreed.
///
/// The same struct serves both roles; each field says what it means for each. Start from
/// [`DeflateConfig::with_policy`] rather than filling every field.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateConfig {
    /// That the server compress each message afresh (§7.1.1.1). A client offers it and fails
    /// the handshake if the response does not have it; a server always does so, and says so.
    pub server_no_context_takeover: bool,
    /// That the client compress each message afresh (§7.1.1.2). A client promises it in its
    /// offer; a server asks for it in its response, which the client must then honour.
    pub client_no_context_takeover: bool,
    /// The largest LZ77 window the server may use, as a base-2 logarithm (§7.1.2.1), 8..=15
    /// (values outside are taken as the nearest bound); 15 puts no limit and is not sent. A client refuses a response
    /// above it; a server uses the smaller of it and the client's offer.
    pub server_max_window_bits: u8,
    /// The largest LZ77 window the client may use (§7.1.2.2), 8..=15 (values outside are taken
    /// as the nearest bound). A
    /// client always offers the parameter so that a server may lower it; a server can lower
    /// it only when the client offered the parameter.
    pub client_max_window_bits: u8,
    /// Whole messages shorter than this many bytes are sent uncompressed. Fragments sent with
    /// [`Connection::send_fragment`](crate::connection::Connection::send_fragment) ignore it.
    pub threshold: usize,
    /// zlib compression level, 0..=9; higher values are taken as 9. Ignored at an 8-bit
    /// window, which is sent as stored blocks.
    pub level: u32,
    /// With context takeover on what we send: keep only this many of the last bytes sent
    /// between messages (at most the negotiated window), and borrow a shared compressor for
    /// each message. `None` keeps a compressor per connection. Unused without context
    /// takeover.
    pub retained_window: Option<usize>,
}

/// The bytes of sent data [`CompressionPolicy::Balanced`] keeps: on a stream of JSON market
/// ticks they compress as well as python-websockets' 12-bit window (`benches/deflate.py`).
pub const BALANCED_RETAINED_WINDOW: usize = 8 << 10;

impl DeflateConfig {
    /// `server_max_window_bits` within 8..=15, the nearest bound when set outside: zlib has no
    /// other windows, and a value outside would otherwise reach it.
    fn server_bits(&self) -> u8 {
        self.server_max_window_bits.clamp(8, 15)
    }

    /// `client_max_window_bits` within 8..=15, as [`server_bits`](Self::server_bits).
    fn client_bits(&self) -> u8 {
        self.client_max_window_bits.clamp(8, 15)
    }

    /// The configuration of a [`CompressionPolicy`], at zlib level 6 with a 32-byte threshold.
    pub fn with_policy(policy: CompressionPolicy) -> Self {
        let (server_nct, client_nct, retained) = match policy {
            CompressionPolicy::Fast => (true, true, None),
            CompressionPolicy::Balanced => (false, true, Some(BALANCED_RETAINED_WINDOW)),
            CompressionPolicy::Max => (false, false, None),
        };
        DeflateConfig {
            server_no_context_takeover: server_nct,
            client_no_context_takeover: client_nct,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
            threshold: 32,
            level: 6,
            retained_window: retained,
        }
    }
}

impl Default for DeflateConfig {
    fn default() -> Self {
        DeflateConfig::with_policy(CompressionPolicy::default())
    }
}

/// The parameters agreed in the opening handshake, the same for both ends. Pass them to
/// `PerMessageDeflate::new` with the local role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateParams {
    /// The server compresses each message without reference to earlier ones.
    pub server_no_context_takeover: bool,
    /// The client compresses each message without reference to earlier ones.
    pub client_no_context_takeover: bool,
    /// The server's LZ77 window, as a base-2 logarithm (8..=15).
    pub server_max_window_bits: u8,
    /// The client's LZ77 window, as a base-2 logarithm (8..=15).
    pub client_max_window_bits: u8,
}

/// The negotiation failed; the client fails the connection (§7.1). Holds what was wrong with
/// the server's response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid permessage-deflate response: {0}")]
pub struct NegotiationError(pub &'static str);

#[derive(Default)]
struct RawParams {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: the value-less client offer.
    client_max_window_bits: Option<Option<u8>>,
}

/// Reads the parameters of one offer or response; an unknown, duplicate or invalid parameter
/// makes it unacceptable (§7.1).
fn parse_params(offer: &ExtensionOffer) -> Result<RawParams, &'static str> {
    let mut p = RawParams::default();
    let bits = |v: &Option<String>| -> Result<u8, &'static str> {
        let v = v.as_deref().ok_or("window bits without a value")?;
        if v.is_empty()
            || v.len() > 2
            || !v.bytes().all(|b| b.is_ascii_digit())
            || v.starts_with('0')
        {
            return Err("invalid window bits");
        }
        match v.parse::<u8>() {
            Ok(n @ 8..=15) => Ok(n),
            _ => Err("invalid window bits"),
        }
    };
    for (key, val) in &offer.params {
        match key.as_str() {
            "server_no_context_takeover" => {
                if p.server_no_context_takeover || val.is_some() {
                    return Err("bad server_no_context_takeover");
                }
                p.server_no_context_takeover = true;
            }
            "client_no_context_takeover" => {
                if p.client_no_context_takeover || val.is_some() {
                    return Err("bad client_no_context_takeover");
                }
                p.client_no_context_takeover = true;
            }
            "server_max_window_bits" => {
                if p.server_max_window_bits.is_some() {
                    return Err("duplicate server_max_window_bits");
                }
                p.server_max_window_bits = Some(bits(val)?);
            }
            "client_max_window_bits" => {
                if p.client_max_window_bits.is_some() {
                    return Err("duplicate client_max_window_bits");
                }
                p.client_max_window_bits = Some(match val {
                    None => None,
                    Some(_) => Some(bits(val)?),
                });
            }
            _ => return Err("unknown parameter"),
        }
    }
    Ok(p)
}

impl DeflateConfig {
    /// The client's offer (§7.1). `client_max_window_bits` is always offered, so a server may
    /// ask for a smaller client window. Window bits of 15 are left out (or sent without a
    /// value), since 15 is the default.
    pub fn client_offer(&self) -> ExtensionOffer {
        let mut params = Vec::new();
        if self.server_no_context_takeover {
            params.push(("server_no_context_takeover".into(), None));
        }
        if self.client_no_context_takeover {
            params.push(("client_no_context_takeover".into(), None));
        }
        if self.server_bits() < 15 {
            params.push((
                "server_max_window_bits".into(),
                Some(self.server_bits().to_string()),
            ));
        }
        params.push((
            "client_max_window_bits".into(),
            (self.client_bits() < 15).then(|| self.client_bits().to_string()),
        ));
        ExtensionOffer {
            name: EXTENSION_NAME.into(),
            params,
        }
    }

    /// The server's choice among the client's offers: the first acceptable permessage-deflate
    /// offer, and the response to send for it. `None` declines them all; the handshake then
    /// goes on without the extension (§7.1). An offer with an unknown, repeated or invalid
    /// parameter is skipped.
    pub fn server_accept(
        &self,
        offers: &[ExtensionOffer],
    ) -> Option<(DeflateParams, ExtensionOffer)> {
        offers
            .iter()
            .filter(|o| o.name == EXTENSION_NAME)
            .find_map(|offer| self.accept_one(offer))
    }

    fn accept_one(&self, offer: &ExtensionOffer) -> Option<(DeflateParams, ExtensionOffer)> {
        let raw = parse_params(offer).ok()?;
        let mut params = Vec::new();
        // server_no_context_takeover: the client asked for it, or we want it anyway.
        let server_nct = raw.server_no_context_takeover || self.server_no_context_takeover;
        if server_nct {
            params.push(("server_no_context_takeover".into(), None));
        }
        // client_no_context_takeover: a server MAY include it whether offered or not (§7.1.1.2);
        // we do when offered (it lets us drop the inflate window) or configured.
        let client_nct = raw.client_no_context_takeover || self.client_no_context_takeover;
        if client_nct {
            params.push(("client_no_context_takeover".into(), None));
        }
        //   Req.    Resp.   Result (server_max_window_bits)
        //   None    None    15, or ours when smaller
        //   N       M ≤ N   M
        let server_bits = match raw.server_max_window_bits {
            Some(n) => n.min(self.server_bits()),
            None => self.server_bits(),
        };
        if server_bits < 15 {
            params.push((
                "server_max_window_bits".into(),
                Some(server_bits.to_string()),
            ));
        }
        //   Req.    Resp.   Result (client_max_window_bits)
        //   absent  absent  15 (we may not ask for less)
        //   None    M       M (ours when < 15)
        //   N       M ≤ N   M
        let client_bits = match raw.client_max_window_bits {
            None => 15,
            Some(offered) => {
                let bits = self.client_bits().min(offered.unwrap_or(15));
                if bits < 15 || offered.is_some() {
                    params.push(("client_max_window_bits".into(), Some(bits.to_string())));
                }
                bits
            }
        };
        Some((
            DeflateParams {
                server_no_context_takeover: server_nct,
                client_no_context_takeover: client_nct,
                server_max_window_bits: server_bits,
                client_max_window_bits: client_bits,
            },
            ExtensionOffer {
                name: EXTENSION_NAME.into(),
                params,
            },
        ))
    }

    /// Checks the server's response to [`DeflateConfig::client_offer`] (§7.1.1, §7.1.2). An
    /// error means the client must fail the connection: the server accepted something this
    /// side did not offer.
    pub fn client_accept(
        &self,
        response: &ExtensionOffer,
    ) -> Result<DeflateParams, NegotiationError> {
        let raw = parse_params(response).map_err(NegotiationError)?;
        if self.server_no_context_takeover && !raw.server_no_context_takeover {
            return Err(NegotiationError("server_no_context_takeover refused"));
        }
        let server_bits = raw.server_max_window_bits.unwrap_or(15);
        if server_bits > self.server_bits() {
            return Err(NegotiationError("server_max_window_bits above the offer"));
        }
        let client_bits = match raw.client_max_window_bits {
            None => self.client_bits(),
            Some(None) => return Err(NegotiationError("client_max_window_bits without a value")),
            Some(Some(bits)) if bits > self.client_bits() => {
                return Err(NegotiationError("client_max_window_bits above the offer"))
            }
            Some(Some(bits)) => bits,
        };
        Ok(DeflateParams {
            server_no_context_takeover: raw.server_no_context_takeover,
            client_no_context_takeover: raw.client_no_context_takeover
                || self.client_no_context_takeover,
            server_max_window_bits: server_bits,
            client_max_window_bits: client_bits,
        })
    }
}

/// The codec of a build without the `deflate` feature: an enum with no variants, so that a
/// connection's `Option<Box<PerMessageDeflate>>` is always `None` and every compressed path
/// compiles to nothing.
#[cfg(not(feature = "deflate"))]
#[derive(Debug)]
pub enum PerMessageDeflate {}

// Never called: the type has no values. The signatures match the codec's, so that the
// connection compiles the same way with or without the feature.
#[cfg(not(feature = "deflate"))]
impl PerMessageDeflate {
    pub(crate) fn should_compress(&self, _len: usize) -> bool {
        match *self {}
    }

    pub(crate) fn compress_enabled(&self) -> bool {
        match *self {}
    }

    /// Compresses one fragment of a message; unreachable without the `deflate` feature.
    pub fn compress(&mut self, _input: &[u8], _out: &mut Vec<u8>, _fin: bool) {
        match *self {}
    }

    /// Compresses a whole message; unreachable without the `deflate` feature.
    pub fn compress_message(&mut self, _input: &[u8], _out: &mut Vec<u8>) -> bool {
        match *self {}
    }

    /// Inflates a fragment's payload; unreachable without the `deflate` feature.
    pub fn decompress(
        &mut self,
        _input: &[u8],
        _out: &mut Vec<u8>,
        _limit: usize,
    ) -> Result<(), crate::error::ProtocolError> {
        match *self {}
    }

    /// Ends an inbound message; unreachable without the `deflate` feature.
    pub fn finish_inbound(
        &mut self,
        _out: &mut Vec<u8>,
        _limit: usize,
    ) -> Result<(), crate::error::ProtocolError> {
        match *self {}
    }
}

// The codec is tested with the negotiation that configures it.
#[cfg(all(test, feature = "deflate"))]
mod tests {
    use super::*;
    use crate::connection::Role;
    use crate::error::ProtocolError;
    use crate::extensions::parse_extensions;

    fn offer(s: &str) -> Vec<ExtensionOffer> {
        parse_extensions([s.as_bytes()]).unwrap()
    }

    fn params(nct: bool) -> DeflateParams {
        DeflateParams {
            server_no_context_takeover: nct,
            client_no_context_takeover: nct,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        }
    }

    /// A client's inflater, as the receiving side of the RFC 7692 §7.2.3 examples.
    fn inflater(p: DeflateParams) -> PerMessageDeflate {
        PerMessageDeflate::new(Role::Client, p, &DeflateConfig::default())
    }

    /// Inflates one whole message: its frames' payload, then the §7.2.2 tail.
    fn inflate(d: &mut PerMessageDeflate, wire: &[u8], limit: usize) -> Vec<u8> {
        let mut out = Vec::new();
        d.decompress(wire, &mut out, limit).unwrap();
        d.finish_inbound(&mut out, limit).unwrap();
        out
    }

    #[test]
    fn rfc7692_7_2_3_1_hello_decompresses() {
        let mut d = inflater(params(false));
        let out = inflate(&mut d, &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], 1000);
        assert_eq!(out, b"Hello");
    }

    #[test]
    fn rfc7692_7_2_3_2_shared_window_second_hello_is_shorter() {
        let mut c = PerMessageDeflate::new(Role::Server, params(false), &DeflateConfig::default());
        let (mut first, mut second) = (Vec::new(), Vec::new());
        c.compress(b"Hello", &mut first, true);
        c.compress(b"Hello", &mut second, true);
        assert_eq!(first, [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
        assert_eq!(second, [0xf2, 0x00, 0x11, 0x00, 0x00]);
        let mut d = inflater(params(false));
        for wire in [&first, &second] {
            assert_eq!(inflate(&mut d, wire, 100), b"Hello");
        }
    }

    #[test]
    fn rfc7692_no_context_takeover_repeats_the_first_encoding() {
        let mut c = PerMessageDeflate::new(Role::Server, params(true), &DeflateConfig::default());
        let (mut first, mut second) = (Vec::new(), Vec::new());
        c.compress(b"Hello", &mut first, true);
        c.compress(b"Hello", &mut second, true);
        assert_eq!(first, second);
        assert!(c.compress.is_none(), "no window is kept between messages");
    }

    #[test]
    fn rfc7692_7_2_3_5_stored_block_decompresses() {
        let mut d = inflater(params(false));
        let wire = [
            0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
        ];
        assert_eq!(inflate(&mut d, &wire, 100), b"Hello");
    }

    #[test]
    fn rfc7692_7_2_3_4_bfinal_block_decompresses() {
        let mut d = inflater(params(false));
        let wire = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
        assert_eq!(inflate(&mut d, &wire, 100), b"Hello");
    }

    #[test]
    fn empty_message_compresses_to_one_zero_byte() {
        let mut c = PerMessageDeflate::new(Role::Server, params(false), &DeflateConfig::default());
        let mut out = Vec::new();
        c.compress(b"", &mut out, true);
        assert_eq!(out, [0x00]);
    }

    #[test]
    fn empty_message_after_another_compresses_to_one_zero_byte_and_keeps_the_window_in_step() {
        // A sync flush with no input since the previous one writes nothing; the empty stored
        // block of §7.2.1 must still be there (regression: the payload was empty, and the
        // peer's inflater then read the appended `00 00 ff ff` as the start of a stored block
        // and failed on the next message).
        let max = DeflateConfig::with_policy(CompressionPolicy::Max);
        let mut c = PerMessageDeflate::new(Role::Server, params(false), &max);
        let mut d = inflater(params(false));
        let mut wires = Vec::new();
        for m in [&b"Hello"[..], b"", b"Hello"] {
            let mut wire = Vec::new();
            c.compress(m, &mut wire, true);
            assert_eq!(inflate(&mut d, &wire, 100), m);
            wires.push(wire);
        }
        assert_eq!(wires[1], [0x00]);
        assert_eq!(wires[2], [0xf2, 0x00, 0x11, 0x00, 0x00]);
    }

    #[test]
    fn deflate_bomb_stops_at_the_limit() {
        let mut c = PerMessageDeflate::new(Role::Server, params(false), &DeflateConfig::default());
        let mut wire = Vec::new();
        c.compress(&vec![0u8; 10 << 20], &mut wire, true);
        assert!(wire.len() < 20_000);
        let mut d = inflater(params(false));
        let mut out = Vec::new();
        let limit = 1 << 20;
        assert_eq!(
            d.decompress(&wire, &mut out, limit),
            Err(ProtocolError::MessageTooBig)
        );
        assert!(out.capacity() <= limit + 1, "capacity {}", out.capacity());
    }

    #[test]
    fn a_message_like_the_last_one_inflates_into_one_allocation_of_its_size() {
        let mut c = PerMessageDeflate::new(Role::Server, params(true), &DeflateConfig::default());
        let mut d = inflater(params(true));
        let text = b"sockeye streams sixteen kibibytes. ".repeat(16 << 10 >> 5);
        let mut wire = Vec::new();
        c.compress(&text, &mut wire, true);
        assert_eq!(inflate(&mut d, &wire, 1 << 20), text);
        for _ in 0..2 {
            let out = inflate(&mut d, &wire, 1 << 20);
            assert_eq!(out, text);
            assert_eq!(
                out.capacity(),
                text.len() + 1,
                "sized from the last message"
            );
        }
        // A smaller message after a larger one does not keep the larger one's buffer, and a
        // bigger one grows.
        let mut small = Vec::new();
        c.compress(b"Hello", &mut small, true);
        let hello = inflate(&mut d, &small, 1 << 20);
        assert_eq!(hello, b"Hello");
        assert!(
            hello.capacity() <= codec::SPARE_KEPT,
            "capacity {}",
            hello.capacity()
        );
        assert_eq!(inflate(&mut d, &wire, 1 << 20), text);
    }

    #[test]
    fn corrupt_data_is_invalid() {
        let mut d = inflater(params(false));
        let mut out = Vec::new();
        let r = d
            .decompress(&[0xff, 0xff, 0xff, 0xff], &mut out, 100)
            .and_then(|_| d.finish_inbound(&mut out, 100));
        assert_eq!(r, Err(ProtocolError::InvalidCompressedData));
    }

    #[test]
    fn eight_bit_window_uses_stored_blocks_that_any_peer_inflates() {
        let p = DeflateParams {
            server_max_window_bits: 8,
            ..params(false)
        };
        let mut c = PerMessageDeflate::new(Role::Server, p, &DeflateConfig::default());
        let text = b"abcabcabcabcabcabcabcabc".repeat(100);
        let mut wire = Vec::new();
        c.compress(&text, &mut wire, true);
        assert_eq!(inflate(&mut inflater(p), &wire, 1 << 20), text);
    }

    #[test]
    fn rfc7692_7_1_server_takes_first_acceptable_offer() {
        let cfg = DeflateConfig::with_policy(CompressionPolicy::Max);
        let (p, resp) = cfg
            .server_accept(&offer("permessage-deflate; foo=1, permessage-deflate; client_max_window_bits; server_max_window_bits=10"))
            .unwrap();
        assert_eq!(p.server_max_window_bits, 10);
        assert_eq!(p.client_max_window_bits, 15);
        assert_eq!(
            crate::extensions::format_extensions(&[resp]),
            "permessage-deflate; server_max_window_bits=10"
        );
    }

    #[test]
    fn rfc7692_7_1_server_declines_invalid_offers() {
        let cfg = DeflateConfig::default();
        for bad in [
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; client_max_window_bits=1a",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; unknown",
            "x-webkit-deflate-frame",
        ] {
            assert!(cfg.server_accept(&offer(bad)).is_none(), "{bad}");
        }
    }

    #[test]
    fn rfc7692_7_1_1_server_agrees_to_no_context_takeover_requests() {
        let cfg = DeflateConfig::default();
        let (p, resp) = cfg
            .server_accept(&offer(
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
            ))
            .unwrap();
        assert!(p.server_no_context_takeover && p.client_no_context_takeover);
        assert_eq!(resp.params.len(), 2);
    }

    #[test]
    fn rfc7692_7_1_2_2_client_max_window_bits_value_less_offer() {
        let cfg = DeflateConfig {
            client_max_window_bits: 10,
            ..DeflateConfig::with_policy(CompressionPolicy::Max)
        };
        let (p, resp) = cfg
            .server_accept(&offer("permessage-deflate; client_max_window_bits"))
            .unwrap();
        assert_eq!(p.client_max_window_bits, 10);
        assert_eq!(
            resp.params,
            vec![("client_max_window_bits".into(), Some("10".into()))]
        );
        // Without the client's offer of the parameter the server may not ask for it.
        let (p, resp) = cfg.server_accept(&offer("permessage-deflate")).unwrap();
        assert_eq!(p.client_max_window_bits, 15);
        assert!(resp.params.is_empty());
    }

    #[test]
    fn rfc7692_7_1_client_checks_the_response() {
        let cfg = DeflateConfig::default();
        let one = |s: &str| offer(s).remove(0);
        assert!(cfg.client_accept(&one("permessage-deflate")).is_ok());
        let p = cfg
            .client_accept(&one(
                "permessage-deflate; client_max_window_bits=9; server_no_context_takeover",
            ))
            .unwrap();
        assert_eq!(p.client_max_window_bits, 9);
        assert!(p.server_no_context_takeover);
        for bad in [
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; foo",
        ] {
            assert!(cfg.client_accept(&one(bad)).is_err(), "{bad}");
        }
        let strict = DeflateConfig {
            server_no_context_takeover: true,
            server_max_window_bits: 10,
            ..DeflateConfig::default()
        };
        assert!(strict
            .client_accept(&one("permessage-deflate; server_no_context_takeover"))
            .is_err());
        assert!(strict
            .client_accept(&one(
                "permessage-deflate; server_no_context_takeover; server_max_window_bits=10"
            ))
            .is_ok());
    }
}
