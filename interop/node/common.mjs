// Shared by the Node peers: deterministic test messages, hashing, option sets.
import { createHash } from 'node:crypto';

export const MiB = 1 << 20;
// Around every frame-length boundary of RFC 6455 (7-bit, 16-bit, 64-bit), up to 8 MiB.
export const SIZES = [1, 125, 126, 65535, 65536, MiB, 8 * MiB];
// text: compressible JSON-ish UTF-8 with multi-byte characters; binary: compressible bytes;
// random: incompressible bytes (deflate falls back to stored blocks).
export const KINDS = ['text', 'binary', 'random'];

// `perMessageDeflate` for ws, client and server alike: "deflate" is `true` (ws' defaults, the
// ones real users have), "nct" asks for no context takeover in both directions, "bits9" for
// 9-bit LZ77 windows in both directions.
export function deflateOption(mode) {
  switch (mode) {
    case 'deflate':
      return true;
    case 'nct':
      return { serverNoContextTakeover: true, clientNoContextTakeover: true };
    case 'bits9':
      // The smallest window zlib deflates with: both sides held to 512-byte windows.
      return { serverMaxWindowBits: 9, clientMaxWindowBits: 9 };
    case 'none':
      return false;
    default:
      throw new Error(`unknown mode ${mode}`);
  }
}

export function sha256(data) {
  return createHash('sha256').update(data).digest('hex');
}

function prng(seed) {
  // xorshift32: cheap, deterministic, good enough to defeat LZ77.
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

/** A deterministic message of exactly `size` bytes: a string for text, a Buffer otherwise. */
export function makeMessage(kind, size, seed = size) {
  const next = prng(seed * 2654435761 + kind.length);
  if (kind === 'random') {
    const buf = Buffer.allocUnsafe(size);
    for (let i = 0; i < size; i += 4) {
      const v = next();
      buf[i] = v;
      if (i + 1 < size) buf[i + 1] = v >>> 8;
      if (i + 2 < size) buf[i + 2] = v >>> 16;
      if (i + 3 < size) buf[i + 3] = v >>> 24;
    }
    return buf;
  }
  if (kind === 'binary') {
    const buf = Buffer.allocUnsafe(size);
    let v = 0;
    for (let i = 0; i < size; i++) {
      if (i % 64 === 0) v = next();
      buf[i] = (i % 16 < 8 ? i & 0xff : v >>> (8 * (i % 4))) & 0xff;
    }
    return buf;
  }
  const parts = [];
  let len = 0;
  for (let seq = 0; len < size; seq++) {
    const r = next();
    const rec = `{"seq":${seq},"sym":"ÉTH-€","px":${(r % 1000000) / 100},"qty":${r >>> 22},"side":"${
      r & 1 ? 'buy' : 'sell'
    }","note":"naïve café 🐟"}\n`;
    parts.push(rec);
    len += Buffer.byteLength(rec);
  }
  const bytes = Buffer.from(parts.join(''));
  let cut = size;
  while (cut > 0 && (bytes[cut] & 0xc0) === 0x80) cut--; // keep whole code points
  return Buffer.concat([bytes.subarray(0, cut), Buffer.alloc(size - cut, 0x20)]).toString('utf8');
}

export function byteLength(msg) {
  return typeof msg === 'string' ? Buffer.byteLength(msg) : msg.length;
}

const SYMBOLS = ['AAPL', 'MSFT', 'NVDA', 'AMZN', 'GOOGL', 'META', 'TSLA', 'BRK.B', 'JPM', 'V', 'XOM', 'UNH',
  'JNJ', 'WMT', 'MA', 'PG', 'HD', 'CVX', 'MRK', 'ABBV', 'KO', 'PEP', 'AVGO', 'COST', 'ADBE', 'CSCO', 'TMO',
  'MCD', 'ACN', 'NFLX', 'ABT', 'CRM', 'LIN', 'DHR', 'AMD', 'TXN', 'NKE', 'ORCL', 'PM', 'INTC', 'QCOM', 'UPS',
  'IBM', 'CAT', 'GS', 'BA', 'SBUX', 'AMGN', 'GE', 'BLK'];

/** A stream of realistic market-data ticks (~1 KiB of JSON each): random walks over 50 symbols. */
export function tickStream(seed = 42) {
  const next = prng(seed);
  const unit = () => next() / 4294967296;
  const px = SYMBOLS.map(() => 20 + unit() * 800);
  const vol = SYMBOLS.map(() => Math.floor(unit() * 1e7));
  let seq = 0;
  let t = Date.UTC(2026, 10, 25, 14, 30);
  return () => {
    const i = next() % SYMBOLS.length;
    px[i] *= 1 + (unit() - 0.5) * 0.002;
    vol[i] += 1 + (next() % 5000);
    t += next() % 7;
    const mid = px[i];
    const tick = +(mid * 0.0001).toFixed(4) || 0.01;
    const level = (side, k) => ({
      price: +(mid + side * (k + 0.5) * tick).toFixed(2),
      size: 100 * (1 + (next() % 50)),
      orders: 1 + (next() % 12),
    });
    return JSON.stringify({
      type: 'quote',
      seq: ++seq,
      ts: new Date(t).toISOString().replace('Z', `${String(next() % 1000).padStart(3, '0')}Z`),
      venue: ['XNAS', 'XNYS', 'ARCX', 'BATS'][next() % 4],
      symbol: SYMBOLS[i],
      bid: +(mid - tick / 2).toFixed(2),
      ask: +(mid + tick / 2).toFixed(2),
      last: +(mid + (unit() - 0.5) * tick).toFixed(2),
      lastSize: 100 * (1 + (next() % 20)),
      volume: vol[i],
      vwap: +(mid * (1 + (unit() - 0.5) * 0.001)).toFixed(4),
      book: {
        bids: Array.from({ length: 10 }, (_, k) => level(-1, k)),
        asks: Array.from({ length: 10 }, (_, k) => level(1, k)),
      },
      conditions: next() % 3 ? ['regular'] : ['regular', 'odd_lot'],
      halted: false,
    });
  };
}
