//! RFC 7692: the permessage-deflate extension — negotiation for both roles, and the codec.
//!
//! A compressed message is one raw DEFLATE stream flushed with `Z_SYNC_FLUSH`, minus the
//! trailing `00 00 ff ff` (§7.2.1); the receiver appends those four bytes before inflating the
//! last fragment (§7.2.2). With context takeover the LZ77 window carries across messages; with
//! `*_no_context_takeover` each message starts afresh.
//!
//! # Memory
//!
//! A zlib-rs compressor holds about 250 KiB plus four bytes per window byte (380 KiB at 15
//! bits), whatever the level; a decompressor about 47 KiB. Kept per connection, that is most of
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

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::connection::Role;
use crate::error::ProtocolError;
use crate::extensions::ExtensionOffer;

pub const EXTENSION_NAME: &str = "permessage-deflate";
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// What permessage-deflate may keep per connection between messages; see the module docs.
///
/// | policy | kept per idle connection | server → client | client → server |
/// |---|---|---|---|
/// | `Fast` | nothing | no context takeover | no context takeover |
/// | `Balanced` (default) | the last 8 KiB sent | context takeover | no context takeover |
/// | `Max` | a compressor and a decompressor (~430 KiB) | context takeover | context takeover |
///
/// `Balanced` asks the client for `client_no_context_takeover` (RFC 7692 §7.1.1.2), which
/// browsers honour; what a server sends, usually the larger direction, keeps its context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CompressionPolicy {
    Fast,
    #[default]
    Balanced,
    Max,
}

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

/// What one side wants from permessage-deflate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeflateConfig {
    /// Ask (client) or require (server) that the server compress each message afresh.
    pub server_no_context_takeover: bool,
    /// Ask (server) or promise (client) that the client compress each message afresh.
    pub client_no_context_takeover: bool,
    /// The largest LZ77 window the server may use, 8..=15.
    pub server_max_window_bits: u8,
    /// The largest LZ77 window the client may use, 8..=15.
    pub client_max_window_bits: u8,
    /// Messages shorter than this are sent uncompressed.
    pub threshold: usize,
    /// zlib compression level, 0..=9.
    pub level: u32,
    /// With context takeover on what we send: keep only this many of the last bytes sent
    /// between messages, and borrow a shared compressor for each message. `None` keeps a
    /// compressor per connection.
    pub retained_window: Option<usize>,
}

/// The bytes of sent data [`CompressionPolicy::Balanced`] keeps: on a stream of JSON market
/// ticks they compress as well as python-websockets' 12-bit window (`benches/deflate.py`).
pub const BALANCED_RETAINED_WINDOW: usize = 8 << 10;

impl DeflateConfig {
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

/// The parameters agreed in the opening handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateParams {
    pub server_no_context_takeover: bool,
    pub client_no_context_takeover: bool,
    pub server_max_window_bits: u8,
    pub client_max_window_bits: u8,
}

/// The negotiation failed; the client fails the connection (§7.1).
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
    /// ask for a smaller client window.
    pub fn client_offer(&self) -> ExtensionOffer {
        let mut params = Vec::new();
        if self.server_no_context_takeover {
            params.push(("server_no_context_takeover".into(), None));
        }
        if self.client_no_context_takeover {
            params.push(("client_no_context_takeover".into(), None));
        }
        if self.server_max_window_bits < 15 {
            params.push((
                "server_max_window_bits".into(),
                Some(self.server_max_window_bits.to_string()),
            ));
        }
        params.push((
            "client_max_window_bits".into(),
            (self.client_max_window_bits < 15).then(|| self.client_max_window_bits.to_string()),
        ));
        ExtensionOffer {
            name: EXTENSION_NAME.into(),
            params,
        }
    }

    /// The server's choice among the client's offers: the first acceptable permessage-deflate
    /// offer, and the response to send for it. `None` declines them all.
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
            Some(n) => n.min(self.server_max_window_bits),
            None => self.server_max_window_bits,
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
                let bits = self.client_max_window_bits.min(offered.unwrap_or(15));
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

    /// Checks the server's response to [`DeflateConfig::client_offer`] (§7.1.1, §7.1.2).
    pub fn client_accept(
        &self,
        response: &ExtensionOffer,
    ) -> Result<DeflateParams, NegotiationError> {
        let raw = parse_params(response).map_err(NegotiationError)?;
        if self.server_no_context_takeover && !raw.server_no_context_takeover {
            return Err(NegotiationError("server_no_context_takeover refused"));
        }
        let server_bits = raw.server_max_window_bits.unwrap_or(15);
        if server_bits > self.server_max_window_bits {
            return Err(NegotiationError("server_max_window_bits above the offer"));
        }
        let client_bits = match raw.client_max_window_bits {
            None => self.client_max_window_bits,
            Some(None) => return Err(NegotiationError("client_max_window_bits without a value")),
            Some(Some(bits)) if bits > self.client_max_window_bits => {
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

/// Bytes a zlib-rs compressor allocates for a `bits` window, at any level (measured; the
/// `deflate_memory` test checks it).
pub fn compressor_bytes(bits: u8) -> usize {
    248_960 + (4 << bits.max(9))
}

/// Bytes a zlib-rs decompressor with a 15-bit window allocates once it has inflated.
pub const DECOMPRESSOR_BYTES: usize = 47_552;

/// Compressors and decompressors lent to connections for one message at a time: at most
/// [`set_shared_compressors`] compressors (1024 by default: 380 MiB at 15 bits, held only
/// while that many connections send) and 16 idle decompressors (0.7 MiB), whatever the number
/// of connections. Up to that many connections sending at once each find their own compressor
/// again and continue their stream, as with a compressor of their own; beyond that, a message
/// may find its compressor taken and prime another with its retained window: on this machine
/// 7-20 µs more per message (a 128 KiB hash table cleared and 8 KiB of window hashed).
/// [`release_idle_shared`] frees what has gone unused, so a quiet process holds none of it.
mod shared {
    use super::*;

    pub(super) static COMPRESSORS: AtomicUsize =
        AtomicUsize::new(super::DEFAULT_SHARED_COMPRESSORS);
    const DECOMPRESSORS: usize = 16;

    struct Lent {
        compress: Compress,
        bits: u8,
        level: u32,
        /// The connection whose stream this compressor continues; 0 for none.
        owner: u64,
        /// [`EPOCH`] when it came back.
        epoch: u64,
        /// [`Compressors::returns`] when it came back.
        returned: u64,
    }

    struct Compressors {
        /// Idle compressors that continue a connection's stream, by connection.
        owned: HashMap<u64, Lent>,
        /// Idle compressors that continue none.
        free: Vec<Lent>,
        /// Compressors in existence: idle, or lent for a message.
        alive: usize,
        /// Counts returns, to find the least recently returned.
        returns: u64,
    }

    impl Compressors {
        /// An idle compressor that `fits`, to give to another connection: a free one, else
        /// the most recently returned (`newest`) or the least (`!newest`).
        fn steal(&mut self, fits: impl Fn(&Lent) -> bool, newest: bool) -> Option<Lent> {
            if let Some(i) = self.free.iter().position(&fits) {
                return Some(self.free.remove(i));
            }
            let candidates = self.owned.values().filter(|l| fits(l));
            let owner = if newest {
                candidates.max_by_key(|l| l.returned)
            } else {
                candidates.min_by_key(|l| l.returned)
            }
            .map(|l| l.owner)?;
            self.owned.remove(&owner)
        }
    }

    static COMPRESS: Mutex<Option<Compressors>> = Mutex::new(None);
    static DECOMPRESS: Mutex<Vec<(Decompress, u64)>> = Mutex::new(Vec::new());
    pub(super) static BYTES: AtomicUsize = AtomicUsize::new(0);
    /// Counts [`release_idle`] calls; what came back before the last one has been idle since.
    static EPOCH: AtomicU64 = AtomicU64::new(0);

    fn with_cache<R>(f: impl FnOnce(&mut Compressors) -> R) -> R {
        let mut cache = COMPRESS.lock().unwrap_or_else(|e| e.into_inner());
        f(cache.get_or_insert_with(|| Compressors {
            owned: HashMap::new(),
            free: Vec::new(),
            alive: 0,
            returns: 0,
        }))
    }

    /// A compressor for `bits` and `level`, and whether it still holds `owner`'s stream (then
    /// it must not be reset). Otherwise it is reset, or new: another connection's compressor
    /// is taken only when the cache has made all it may, since that connection will then have
    /// to prime a compressor again.
    pub(super) fn take_compressor(bits: u8, level: u32, owner: u64) -> (Compress, bool) {
        let limit = COMPRESSORS.load(Ordering::Relaxed);
        let fits = |l: &Lent| l.bits == bits && l.level == level;
        let found = with_cache(|cache| {
            if owner != 0 {
                if let Some(mine) = cache.owned.remove(&owner) {
                    return Some(mine);
                }
            }
            if let Some(i) = cache.free.iter().position(fits) {
                return Some(cache.free.remove(i));
            }
            // More connections are sending than the cache holds compressors for. Taking the
            // one returned last is cheap (its memory is still in the CPU's cache) and spares
            // the others: when connections take turns, as a broadcast makes them, the least
            // recently used is exactly the one needed next, and evicting it makes every
            // message miss (100 connections x 1 KiB taking turns: 24 -> 11 us per message, in one thread).
            if cache.alive >= limit {
                if let Some(newest) = cache.steal(fits, true) {
                    return Some(newest);
                }
            }
            cache.alive += 1;
            None
        });
        match found {
            Some(lent) => {
                BYTES.fetch_sub(compressor_bytes(lent.bits), Ordering::Relaxed);
                let continues = owner != 0 && lent.owner == owner;
                let mut compress = lent.compress;
                if !continues {
                    compress.reset();
                }
                (compress, continues)
            }
            None => (new_compressor(bits, level), false),
        }
    }

    pub(super) fn give_compressor(compress: Compress, bits: u8, level: u32, owner: u64) {
        let evicted = with_cache(|cache| {
            cache.returns += 1;
            let lent = Lent {
                compress,
                bits,
                level,
                owner,
                epoch: EPOCH.load(Ordering::Relaxed),
                returned: cache.returns,
            };
            if owner == 0 {
                cache.free.push(lent);
            } else {
                cache.owned.insert(owner, lent);
            }
            BYTES.fetch_add(compressor_bytes(bits), Ordering::Relaxed);
            if cache.alive > COMPRESSORS.load(Ordering::Relaxed) {
                let oldest = cache.steal(|_| true, false);
                if oldest.is_some() {
                    cache.alive -= 1;
                }
                oldest
            } else {
                None
            }
        });
        if let Some(old) = evicted {
            BYTES.fetch_sub(compressor_bytes(old.bits), Ordering::Relaxed);
        }
    }

    /// A lent compressor that will not come back (its connection ended mid-message).
    pub(super) fn forget_compressor() {
        with_cache(|cache| cache.alive = cache.alive.saturating_sub(1));
    }

    pub(super) fn take_decompressor() -> Decompress {
        let found = DECOMPRESS.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match found {
            Some((d, _)) => {
                BYTES.fetch_sub(DECOMPRESSOR_BYTES, Ordering::Relaxed);
                d
            }
            None => Decompress::new_with_window_bits(false, 15),
        }
    }

    pub(super) fn give_decompressor(mut d: Decompress) {
        d.reset(false);
        let mut cache = DECOMPRESS.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() < DECOMPRESSORS {
            cache.push((d, EPOCH.load(Ordering::Relaxed)));
            BYTES.fetch_add(DECOMPRESSOR_BYTES, Ordering::Relaxed);
        }
    }

    /// Frees what no message has taken since the previous call; returns how many.
    pub(super) fn release_idle() -> usize {
        let idle_since = EPOCH.fetch_add(1, Ordering::Relaxed);
        let compressors: Vec<Lent> = with_cache(|cache| {
            let (mut old, free): (Vec<Lent>, _) = std::mem::take(&mut cache.free)
                .into_iter()
                .partition(|l| l.epoch < idle_since);
            cache.free = free;
            let quiet: Vec<u64> = (cache.owned.values())
                .filter(|l| l.epoch < idle_since)
                .map(|l| l.owner)
                .collect();
            old.extend(quiet.iter().filter_map(|owner| cache.owned.remove(owner)));
            cache.alive -= old.len();
            old
        });
        let decompressors: Vec<(Decompress, u64)> = {
            let mut cache = DECOMPRESS.lock().unwrap_or_else(|e| e.into_inner());
            let (old, recent) = std::mem::take(&mut *cache)
                .into_iter()
                .partition(|(_, epoch)| *epoch < idle_since);
            *cache = recent;
            old
        };
        let bytes = compressors
            .iter()
            .map(|l| compressor_bytes(l.bits))
            .sum::<usize>()
            + decompressors.len() * DECOMPRESSOR_BYTES;
        BYTES.fetch_sub(bytes, Ordering::Relaxed);
        compressors.len() + decompressors.len()
    }
}

/// Frees the shared compressors and decompressors that no message has used since the previous
/// call, and returns how many. A server calls it every few seconds so that a process whose
/// connections have gone quiet holds no zlib state at all (`sockeye serve` does, every
/// second); connections that keep sending keep theirs.
pub fn release_idle_shared() -> usize {
    shared::release_idle()
}

/// Compressors the shared cache holds unless [`set_shared_compressors`] says otherwise.
pub const DEFAULT_SHARED_COMPRESSORS: usize = 1024;

/// How many compressors the process-wide cache may hold (default 1024, ~380 KiB each at 15
/// bits): the number of connections that can send at once, under the `fast` and `balanced`
/// policies, without a compressor being reset or primed for them. Takes effect as compressors
/// come back; at least 1.
pub fn set_shared_compressors(n: usize) {
    shared::COMPRESSORS.store(n.max(1), Ordering::Relaxed);
}

fn new_compressor(bits: u8, level: u32) -> Compress {
    // zlib refuses an 8-bit window for raw deflate. Stored blocks have no back-references, so
    // they respect any window the peer asked for.
    if bits < 9 {
        Compress::new_with_window_bits(Compression::none(), false, 9)
    } else {
        Compress::new_with_window_bits(Compression::new(level), false, bits)
    }
}

/// Bytes of zlib state and retained windows held by connections between messages, in this
/// process.
static HELD_BYTES: AtomicUsize = AtomicUsize::new(0);
/// Connections holding any of it.
static HOLDERS: AtomicUsize = AtomicUsize::new(0);
static NEXT_OWNER: AtomicU64 = AtomicU64::new(1);

/// What permessage-deflate holds in this process, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct DeflateMemory {
    /// Bytes held by connections between messages (their own zlib state and retained windows).
    pub connection_bytes: usize,
    /// Connections that hold any.
    pub connections: usize,
    /// Bytes in the shared cache of compressors and decompressors.
    pub shared_bytes: usize,
}

/// The memory permessage-deflate holds now, process-wide. The zlib figures are estimates
/// ([`compressor_bytes`], [`DECOMPRESSOR_BYTES`]); retained windows are counted exactly.
pub fn memory() -> DeflateMemory {
    DeflateMemory {
        connection_bytes: HELD_BYTES.load(Ordering::Relaxed),
        connections: HOLDERS.load(Ordering::Relaxed),
        shared_bytes: shared::BYTES.load(Ordering::Relaxed),
    }
}

/// What the sending side keeps between messages.
#[derive(Debug)]
enum Context {
    /// No context takeover: a shared compressor per message.
    None,
    /// Context takeover through the last `limit` bytes sent and a shared compressor.
    Retained { window: Vec<u8>, limit: usize },
    /// Context takeover through the connection's own compressor.
    Owned,
}

/// The compressor and decompressor of one connection.
pub struct PerMessageDeflate {
    /// Between messages only when `context` is `Owned`; during a message always.
    compress: Option<Compress>,
    decompress: Option<Decompress>,
    context: Context,
    /// Which compressor in the shared cache continues this connection's stream.
    owner: u64,
    compress_bits: u8,
    decompress_reset: bool,
    /// The inbound message's DEFLATE stream ended with a final block (§7.2.3.4): the rest of
    /// the message, and the tail of §7.2.2, are padding.
    inbound_ended: bool,
    /// The size of the last message inflated (at most [`INFLATED_HINT_MAX`]): where the next
    /// message's buffer starts, since messages on one connection tend to be alike.
    inflated_hint: usize,
    level: u32,
    threshold: usize,
    /// What this connection adds to [`HELD_BYTES`].
    held: usize,
}

/// Messages up to this size are inflated into one allocation sized from the previous one; a
/// larger hint would hold memory a smaller message does not need, and larger messages grow by
/// doubling from here.
const INFLATED_HINT_MAX: usize = 64 << 10;

/// Spare capacity an inflated message keeps without a reallocation: up to its own size, or
/// this much for small messages.
const SPARE_KEPT: usize = 4 << 10;

impl std::fmt::Debug for PerMessageDeflate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerMessageDeflate")
            .field("compress_bits", &self.compress_bits)
            .field("context", &self.context)
            .field("decompress_reset", &self.decompress_reset)
            .finish_non_exhaustive()
    }
}

impl PerMessageDeflate {
    pub fn new(role: Role, params: DeflateParams, config: &DeflateConfig) -> Self {
        let (compress_bits, compress_reset, decompress_reset) = match role {
            Role::Server => (
                params.server_max_window_bits,
                params.server_no_context_takeover,
                params.client_no_context_takeover,
            ),
            Role::Client => (
                params.client_max_window_bits,
                params.client_no_context_takeover,
                params.server_no_context_takeover,
            ),
        };
        let limit = config.retained_window.map(|n| n.min(1 << compress_bits));
        let context = match (compress_reset, limit) {
            (true, _) => Context::None,
            (false, Some(limit)) => Context::Retained {
                window: Vec::new(),
                limit,
            },
            (false, None) => Context::Owned,
        };
        PerMessageDeflate {
            compress: None,
            decompress: None,
            context,
            owner: NEXT_OWNER.fetch_add(1, Ordering::Relaxed),
            compress_bits,
            decompress_reset,
            inbound_ended: false,
            inflated_hint: 0,
            level: config.level.min(9),
            threshold: config.threshold,
            held: 0,
        }
    }

    pub(crate) fn should_compress(&self, len: usize) -> bool {
        len >= self.threshold
    }

    pub(crate) fn compress_enabled(&self) -> bool {
        true
    }

    /// Bytes this connection holds between messages: its own zlib state and retained window.
    pub fn held_bytes(&self) -> usize {
        let window = match &self.context {
            Context::Retained { window, .. } => window.capacity(),
            _ => 0,
        };
        let compress = if self.compress.is_some() {
            compressor_bytes(self.compress_bits)
        } else {
            0
        };
        let decompress = if self.decompress.is_some() {
            DECOMPRESSOR_BYTES
        } else {
            0
        };
        window + compress + decompress
    }

    /// Brings [`HELD_BYTES`] and [`HOLDERS`] up to date after a message; they change only when
    /// what the connection holds does.
    fn account(&mut self) {
        let now = self.held_bytes();
        if now == self.held {
            return;
        }
        if now > self.held {
            HELD_BYTES.fetch_add(now - self.held, Ordering::Relaxed);
        } else {
            HELD_BYTES.fetch_sub(self.held - now, Ordering::Relaxed);
        }
        match (self.held, now) {
            (0, _) => {
                HOLDERS.fetch_add(1, Ordering::Relaxed);
            }
            (_, 0) => {
                HOLDERS.fetch_sub(1, Ordering::Relaxed);
            }
            _ => {}
        }
        self.held = now;
    }

    fn start_message(&mut self) -> Compress {
        if let Some(c) = self.compress.take() {
            return c;
        }
        match &self.context {
            Context::Owned => new_compressor(self.compress_bits, self.level),
            Context::None => shared::take_compressor(self.compress_bits, self.level, 0).0,
            Context::Retained { window, .. } => {
                let (mut c, continues) =
                    shared::take_compressor(self.compress_bits, self.level, self.owner);
                if !continues && !window.is_empty() && self.compress_bits >= 9 {
                    c.set_dictionary(window)
                        .expect("a raw deflate stream takes a dictionary after a reset");
                }
                c
            }
        }
    }

    /// Ends an outbound message. `sent` is false when the message went uncompressed, and the
    /// peer's window does not hold it.
    fn end_message(&mut self, mut c: Compress, sent: bool) {
        match &self.context {
            Context::Owned => {
                if !sent {
                    c.reset();
                }
                self.compress = Some(c);
            }
            Context::None => shared::give_compressor(c, self.compress_bits, self.level, 0),
            Context::Retained { .. } => {
                let owner = if sent { self.owner } else { 0 };
                shared::give_compressor(c, self.compress_bits, self.level, owner);
            }
        }
        self.account();
    }

    fn retain(&mut self, sent: &[u8]) {
        if let Context::Retained { window, limit } = &mut self.context {
            let limit = *limit;
            if sent.len() >= limit {
                window.clear();
                window.reserve_exact(limit);
                window.extend_from_slice(&sent[sent.len() - limit..]);
            } else {
                let excess = (window.len() + sent.len()).saturating_sub(limit);
                window.drain(..excess);
                if window.capacity() < limit {
                    window.reserve_exact((window.len() + sent.len()).min(limit) - window.len());
                }
                window.extend_from_slice(sent);
            }
        }
    }

    fn deflate_into(c: &mut Compress, mut input: &[u8], out: &mut Vec<u8>, fin: bool) {
        let start = out.len();
        out.reserve(input.len() / 2 + 64);
        loop {
            if out.len() == out.capacity() {
                out.reserve(out.capacity().max(64));
            }
            let before = c.total_in();
            c.compress_vec(input, out, FlushCompress::Sync)
                .expect("deflate of in-memory data cannot fail");
            input = &input[(c.total_in() - before) as usize..];
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
        }
        if fin {
            if out[start..].ends_with(&TAIL) {
                out.truncate(out.len() - TAIL.len());
            } else {
                // zlib writes nothing for a sync flush with no input since the previous one (an
                // empty message after another, or an empty last fragment), but §7.2.1 wants the
                // data to end with an empty stored block: after a flush the stream is
                // byte-aligned, so that block is `00 00 00 ff ff`, and `00` once the tail goes.
                debug_assert_eq!(out.len(), start, "a sync flush ends with 00 00 ff ff");
                out.push(0x00);
            }
        }
    }

    /// Compresses one fragment of a message into `out`. On the last fragment the trailing
    /// `00 00 ff ff` is removed (§7.2.1). Every fragment of a message started compressed is
    /// compressed; [`PerMessageDeflate::compress_message`] may send a whole message as it is.
    pub fn compress(&mut self, input: &[u8], out: &mut Vec<u8>, fin: bool) {
        let mut c = self.start_message();
        Self::deflate_into(&mut c, input, out, fin);
        self.retain(input);
        if fin {
            self.end_message(c, true);
        } else {
            self.compress = Some(c);
        }
    }

    /// Compresses a whole message into `out` and returns true, or returns false when the
    /// compressed form would not be smaller: the message is then to be sent uncompressed,
    /// and nothing of it is kept.
    pub fn compress_message(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        let mut c = self.start_message();
        let start = out.len();
        Self::deflate_into(&mut c, input, out, true);
        let smaller = out.len() - start < input.len();
        if smaller {
            self.retain(input);
        } else {
            out.truncate(start);
        }
        self.end_message(c, smaller);
        smaller
    }

    /// Inflates a fragment's payload into `out`, failing with `MessageTooBig` as soon as the
    /// output would pass `limit`; memory never grows past `limit + 1` bytes for the message.
    pub fn decompress(
        &mut self,
        mut input: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), ProtocolError> {
        if self.inbound_ended {
            return Ok(());
        }
        // Inflate with the largest window: it decodes streams made with any smaller one.
        let reset = self.decompress_reset;
        let d = self.decompress.get_or_insert_with(|| {
            if reset {
                shared::take_decompressor()
            } else {
                Decompress::new_with_window_bits(false, 15)
            }
        });
        loop {
            if out.len() == out.capacity() {
                if out.len() > limit {
                    return Err(ProtocolError::MessageTooBig);
                }
                let target = if out.capacity() == 0 {
                    // One byte over the last message's size, so that inflating the §7.2.2 tail
                    // into a full buffer does not double it. (Starting every message at 4 KiB
                    // and doubling zeroed and copied ~60 KiB per 16 KiB message: flate2 fills
                    // the spare capacity with zeros before each call.)
                    (self.inflated_hint + 1).max(input.len() * 2)
                } else {
                    (out.len() * 2).max(input.len() * 2).max(4096)
                }
                .min(limit.saturating_add(1));
                out.reserve_exact(target.saturating_sub(out.len()).max(1));
            }
            let (in0, out0) = (d.total_in(), d.total_out());
            let status = d
                .decompress_vec(input, out, FlushDecompress::Sync)
                .map_err(|_| ProtocolError::InvalidCompressedData)?;
            let consumed = (d.total_in() - in0) as usize;
            let produced = d.total_out() - out0;
            input = &input[consumed..];
            if out.len() > limit {
                return Err(ProtocolError::MessageTooBig);
            }
            if status == Status::StreamEnd {
                // A final block ends the stream (§7.2.3.4); what follows it in this message is
                // padding, and the next message starts a new stream.
                d.reset(false);
                self.inbound_ended = true;
                return Ok(());
            }
            let room_left = out.len() < out.capacity();
            if room_left && (input.is_empty() || (consumed == 0 && produced == 0)) {
                return Ok(());
            }
        }
    }

    /// Ends an inbound message: inflates the tail that §7.2.2 says to append.
    pub fn finish_inbound(&mut self, out: &mut Vec<u8>, limit: usize) -> Result<(), ProtocolError> {
        // After a final block the stream is complete; the tail would start a stored block in
        // the next message's fresh stream and desynchronise it.
        let result = if std::mem::take(&mut self.inbound_ended) {
            Ok(())
        } else {
            self.decompress(&TAIL, out, limit)
        };
        if result.is_err() {
            self.decompress = None;
        } else if self.decompress_reset {
            if let Some(d) = self.decompress.take() {
                shared::give_decompressor(d);
            }
        }
        if result.is_ok() {
            self.inflated_hint = out.len().min(INFLATED_HINT_MAX);
            // A small message after a large one got the large one's buffer; the application
            // may keep the message for long, so it should not hold the other's memory too.
            if out.capacity() - out.len() > out.len().max(SPARE_KEPT) {
                out.shrink_to_fit();
            }
        }
        self.account();
        result
    }
}

impl Drop for PerMessageDeflate {
    fn drop(&mut self) {
        if self.compress.is_some() && !matches!(self.context, Context::Owned) {
            shared::forget_compressor();
        }
        if self.held > 0 {
            HELD_BYTES.fetch_sub(self.held, Ordering::Relaxed);
            HOLDERS.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
            hello.capacity() <= SPARE_KEPT,
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
