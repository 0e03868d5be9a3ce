// Headless Chromium opening wss:// to `sockeye serve --listen-tls … --tls-cert … --tls-key …`.
// The certificates come from a CA made at run time with the openssl command (a temporary
// folder, removed afterwards); Chromium accepts the server certificate by its public key pin
// (--ignore-certificate-errors-spki-list), not by turning verification off. Checked in the page:
// `open`, an echoed text and binary message, permessage-deflate in `extensions`, and a clean close.
//
//   node --test interop/browser/wss.test.mjs
//
// Needs `cargo build --release -p sockeye-cli` (SOCKEYE_BIN or $CARGO_TARGET_DIR/release/sockeye
// overrides the path), scripts/setup-browser.sh and openssl. Without them the test is skipped,
// unless SOCKEYE_REQUIRE_INTEROP=1, when it fails.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { OPENSSL, serveTlsInChromium, skipUnlessReady } from './common.mjs';

const skip = skipUnlessReady([[OPENSSL, 'apt-get install openssl']]);

let served;
let page;

before(async () => {
  if (skip) return;
  served = await serveTlsInChromium();
  page = served.page;
  // The demo page over https: the socket below is same-origin and in a secure context.
  assert.equal(served.status, 200);
});

after(async () => {
  await served?.close();
});

test('Chromium opens wss:// to sockeye serve: echo, permessage-deflate, clean close', { skip }, async () => {
  const r = await page.evaluate(async () => {
    const events = [];
    const socket = new WebSocket(`wss://${location.host}/echo`);
    socket.binaryType = 'arraybuffer';
    const inbox = [];
    let wake = null;
    socket.onmessage = (e) => {
      inbox.push(e.data);
      if (wake) wake();
    };
    await new Promise((resolve, reject) => {
      socket.onopen = () => {
        events.push('open');
        resolve();
      };
      socket.onerror = () => reject(new Error('error event'));
    });
    const nextMessage = async () => {
      while (!inbox.length) await new Promise((resolve) => (wake = resolve));
      return inbox.shift();
    };
    const text = 'hello over wss:// ' + 'é🐟'.repeat(100);
    socket.send(text);
    const echoed = await nextMessage();
    socket.send(new Uint8Array([0, 1, 2, 253, 254, 255]));
    const bin = await nextMessage();
    const closed = new Promise((resolve) => {
      socket.onclose = (e) => resolve({ code: e.code, reason: e.reason, wasClean: e.wasClean });
    });
    socket.close(1000, 'bye');
    return {
      events,
      url: socket.url,
      textEqual: echoed === text,
      binary: bin instanceof ArrayBuffer ? Array.from(new Uint8Array(bin)) : String(bin),
      extensions: socket.extensions,
      close: await closed,
      secure: window.isSecureContext,
    };
  });
  console.log(JSON.stringify(r));
  assert.deepEqual(r.events, ['open']);
  assert.match(r.url, /^wss:\/\/127\.0\.0\.1:\d+\/echo$/);
  assert.equal(r.textEqual, true);
  assert.deepEqual(r.binary, [0, 1, 2, 253, 254, 255]);
  assert.match(r.extensions, /^permessage-deflate\b/, `extensions: ${r.extensions}`);
  assert.deepEqual(r.close, { code: 1000, reason: 'bye', wasClean: true });
  assert.equal(r.secure, true);
});
