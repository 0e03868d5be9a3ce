// Headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core) against the real
// `sockeye serve` binary: permessage-deflate negotiated by a browser, text and binary
// messages of 1 byte to 8 MiB echoed through /echo and checked in the page (bytes and
// SHA-256), subprotocol selection, a clean close with code and reason, and a screenshot of
// the demo page in interop/out/demo-page.png.
//
//   node --test interop/browser/*.test.mjs
//
// Needs `cargo build --release -p sockeye-cli` (SOCKEYE_BIN or $CARGO_TARGET_DIR/release/sockeye
// overrides the path) and scripts/setup-browser.sh. Without them the tests are skipped, unless
// SOCKEYE_REQUIRE_INTEROP=1, when they fail.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { firstPage, repo, servePlainInChromium, skipUnlessReady, startServer, stopServer } from './common.mjs';

const skip = skipUnlessReady();

let served;
let context;
let page;
let base;

before(async () => {
  if (skip) return;
  served = await servePlainInChromium([]);
  ({ base, context } = served);
  page = await firstPage(context);
  // The demo page: same origin as the sockets, and a secure context (loopback) for crypto.subtle.
  await page.goto(`${base}/`);
});

after(async () => {
  await served?.close();
});

test('permessage-deflate is negotiated with Chromium', { skip }, async () => {
  const r = await page.evaluate(async () => {
    const socket = new WebSocket(`ws://${location.host}/echo`);
    await new Promise((resolve, reject) => {
      socket.onopen = resolve;
      socket.onerror = () => reject(new Error('error event'));
    });
    const extensions = socket.extensions;
    socket.close();
    return { extensions };
  });
  assert.match(r.extensions, /^permessage-deflate\b/, `extensions: ${r.extensions}`);
});

// Runs in the page: every size and kind through /echo, checked byte for byte and by SHA-256,
// with the extensions the socket negotiated.
async function roundTripInPage() {
  const MiB = 1 << 20;
  const SIZES = [1, 125, 126, 65535, 65536, MiB, 8 * MiB];
  let x = 2463534242;
  const next = () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
  const enc = new TextEncoder();
  const makeText = (size) => {
    const parts = [];
    let len = 0;
    for (let seq = 0; len < size; seq++) {
      const r = next();
      const rec = `{"seq":${seq},"sym":"ÉTH-€","px":${(r % 1000000) / 100},"qty":${r >>> 22},"note":"naïve 🐟"}\n`;
      parts.push(rec);
      len += enc.encode(rec).length;
    }
    const bytes = enc.encode(parts.join(''));
    let cut = size;
    while (cut > 0 && (bytes[cut] & 0xc0) === 0x80) cut--;
    const out = new Uint8Array(size).fill(0x20);
    out.set(bytes.subarray(0, cut));
    return new TextDecoder('utf-8', { fatal: true }).decode(out);
  };
  const makeBinary = (size, random) => {
    const out = new Uint8Array(size);
    for (let i = 0; i < size; i++) out[i] = random ? next() >>> 24 : i % 16 < 8 ? i : (next() >>> 24) & 0x0f;
    return out.buffer;
  };
  const hex = async (data) => {
    const bytes = typeof data === 'string' ? enc.encode(data) : data;
    const digest = await crypto.subtle.digest('SHA-256', bytes);
    return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
  };
  const sameBytes = (a, b) => {
    const [u, v] = [new Uint8Array(a), new Uint8Array(b)];
    if (u.length !== v.length) return false;
    for (let i = 0; i < u.length; i++) if (u[i] !== v[i]) return false;
    return true;
  };

  const socket = new WebSocket(`ws://${location.host}/echo`);
  socket.binaryType = 'arraybuffer';
  const inbox = [];
  let wake = null;
  socket.onmessage = (e) => {
    inbox.push(e.data);
    if (wake) wake();
  };
  await new Promise((resolve, reject) => {
    socket.onopen = resolve;
    socket.onerror = () => reject(new Error('error event'));
  });
  const nextMessage = async () => {
    while (!inbox.length) await new Promise((resolve) => (wake = resolve));
    return inbox.shift();
  };
  const results = [];
  for (const size of SIZES) {
    for (const kind of ['text', 'binary', 'random']) {
      const sent = kind === 'text' ? makeText(size) : makeBinary(size, kind === 'random');
      const t0 = performance.now();
      socket.send(sent);
      const got = await nextMessage();
      const ms = Math.round(performance.now() - t0);
      const typeOk = kind === 'text' ? typeof got === 'string' : got instanceof ArrayBuffer;
      const sentLen = typeof sent === 'string' ? enc.encode(sent).length : sent.byteLength;
      const equal = typeOk && (kind === 'text' ? got === sent : sameBytes(got, sent));
      const [want, have] = [await hex(sent), typeOk ? await hex(got) : 'wrong type'];
      results.push({ kind, size, sentLen, typeOk, equal, hashEqual: want === have, ms });
    }
  }
  const extensions = socket.extensions;
  socket.close(1000);
  return { results, extensions };
}

function checkRoundTrips(results) {
  for (const r of results) {
    console.log(JSON.stringify(r));
    assert.deepEqual(
      { sentLen: r.sentLen, typeOk: r.typeOk, equal: r.equal, hashEqual: r.hashEqual },
      { sentLen: r.size, typeOk: true, equal: true, hashEqual: true },
      `${r.kind} of ${r.size} bytes`,
    );
}
assert.equal(results.length, 21);
}

test('text and binary messages of 1 B to 8 MiB round-trip through /echo', { skip, timeout: 300000 }, async () => {
  const { results, extensions } = await page.evaluate(roundTripInPage);
  assert.equal(extensions, 'permessage-deflate; client_no_context_takeover');
  checkRoundTrips(results);
});

// The default policy is `balanced`, above; the others negotiate differently with Chromium's
// offer (`permessage-deflate; client_max_window_bits`).
for (const [policy, expected] of [
  ['fast', 'permessage-deflate; server_no_context_takeover; client_no_context_takeover'],
  ['max', 'permessage-deflate'],
]) {
  test(`the same round trips with --compression ${policy}`, { skip, timeout: 300000 }, async () => {
    const { proc, addr } = await startServer(['--compression', policy]);
    const other = await context.newPage();
    try {
      await other.goto(`http://${addr}/`);
      const { results, extensions } = await other.evaluate(roundTripInPage);
      assert.equal(extensions, expected);
      checkRoundTrips(results);
    } finally {
      await other.close();
      await stopServer(proc);
    }
  });
}

test('new WebSocket(url, ["soap", "wamp"]) opens with "soap"', { skip }, async () => {
  const protocol = await page.evaluate(async () => {
    const socket = new WebSocket(`ws://${location.host}/echo`, ['soap', 'wamp']);
    await new Promise((resolve, reject) => {
      socket.onopen = resolve;
      socket.onerror = () => reject(new Error('error event'));
    });
    socket.close();
    return socket.protocol;
  });
  assert.equal(protocol, 'soap');
});

test('close(1000, "Work complete") closes cleanly with that code and reason', { skip }, async () => {
  const ev = await page.evaluate(async () => {
    const socket = new WebSocket(`ws://${location.host}/echo`);
    await new Promise((resolve, reject) => {
      socket.onopen = resolve;
      socket.onerror = () => reject(new Error('error event'));
    });
    const closed = new Promise((resolve) => {
      socket.onclose = (e) => resolve({ code: e.code, reason: e.reason, wasClean: e.wasClean });
    });
    socket.close(1000, 'Work complete');
    return closed;
  });
  assert.deepEqual(ev, { code: 1000, reason: 'Work complete', wasClean: true });
});

test('the demo page connects, echoes and closes (screenshot in interop/out)', { skip }, async () => {
  await page.goto(`${base}/`);
  await page.fill('#protocols', 'soap, wamp');
  await page.click('#connect');
  await page.locator('#log', { hasText: 'open' }).waitFor();
  await page.fill('#text', 'My name is John');
  await page.click('#send');
  await page.locator('#log .in', { hasText: 'My name is John' }).waitFor();
  await page.click('#close');
  await page.locator('#log', { hasText: 'wasClean=true' }).waitFor();
  await page.locator('#s-ready', { hasText: '3 (CLOSED)' }).waitFor();
  assert.equal(await page.textContent('#s-protocol'), '"soap"');
  assert.match(await page.textContent('#s-extensions'), /^"permessage-deflate/);
  const log = await page.textContent('#log');
  assert.match(log, /close code=1000 reason="Work complete" wasClean=true/);
  mkdirSync(path.join(repo, 'interop/out'), { recursive: true });
  await page.screenshot({ path: path.join(repo, 'interop/out/demo-page.png'), fullPage: true });
});
