//! The permessage-deflate codec, on flate2 (zlib-rs): compiled with the `deflate` feature.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::{DeflateConfig, DeflateParams};
use crate::connection::Role;
use crate::error::ProtocolError;

/// What ends a `Z_SYNC_FLUSH`, left off the wire (RFC 7692 §7.2.1).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Bytes a zlib-rs compressor allocates for a `bits` window, at any level (measured; the
/// `deflate_memory` test checks it).
pub fn compressor_bytes(bits: u8) -> usize {
    248_960 + (4 << bits.max(9))
}

/// Bytes a zlib-rs decompressor with a 15-bit window allocates once it has inflated.
pub const DECOMPRESSOR_BYTES: usize = 47_552;

/// Compressors and decompressors lent to connections for one message at a time: at most
/// [`set_shared_compressors`] compressors (1024 by default: 371 MiB at 15 bits, held only
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

/// How many compressors the process-wide cache may hold (default 1024, ~371 KiB each at 15
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

/// The compressor and decompressor of one connection, set up from the negotiated
/// [`DeflateParams`]. Give it to the connection with
/// [`Connection::with_deflate`](crate::connection::Connection::with_deflate); the connection
/// calls the methods below, which an application rarely needs.
pub struct PerMessageDeflate {
    /// Between messages only when `context` is `Owned`; during a message always.
    pub(super) compress: Option<Compress>,
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
pub(super) const SPARE_KEPT: usize = 4 << 10;

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
    /// The codec for the local `role`: it compresses with the window and context-takeover
    /// rule of its own direction and inflates the peer's. From `config` only `level`,
    /// `threshold` and `retained_window` are used; the negotiation fields are in `params`.
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
    /// compressed, whatever its size; [`PerMessageDeflate::compress_message`] may send a whole
    /// message as it is.
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
    /// Call it for each fragment in order, then [`PerMessageDeflate::finish_inbound`]. Corrupt
    /// data fails with `InvalidCompressedData`.
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

    /// Ends an inbound message: inflates the tail that §7.2.2 says to append. Call it once per
    /// compressed message, after its last fragment, with the same `out` and `limit`.
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
