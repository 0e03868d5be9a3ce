// Headless Chromium against Sockeye's axum extractor over HTTP/2: `examples/axum_echo` with a
// certificate (TLS, ALPN h2 and http/1.1) serves a page, and the page's WebSocket to /echo rides
// the same HTTP/2 connection (RFC 8441). The example prints one line per accepted socket with
// the HTTP version that carried it, which the test reads.
//
//   node --test interop/browser/axum.test.mjs
//
// Needs `cargo build --release -p sockeye --examples --features axum` (SOCKEYE_AXUM_BIN
// overrides the path), scripts/setup-browser.sh and openssl; without them the test is skipped,
// unless SOCKEYE_REQUIRE_INTEROP=1, when it fails.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { OPENSSL, launchChromium, makeCertificates, repo, skipUnlessReady, stopServer } from './common.mjs';

const AXUM_BIN =
  process.env.SOCKEYE_AXUM_BIN ??
  path.join(path.resolve(repo, process.env.CARGO_TARGET_DIR ?? 'target'), 'release/examples/axum_echo');
const skip = skipUnlessReady([
  [OPENSSL, 'apt-get install openssl'],
  [AXUM_BIN, 'cargo build --release -p sockeye --examples --features axum'],
]);

let server;
let browser;
let page;
let certDir;
let origin;
const lines = [];

before(async () => {
  if (skip) return;
  certDir = mkdtempSync(path.join(tmpdir(), 'sockeye-axum-certs-'));
  const { cert, key, spkiHash } = makeCertificates(certDir);
  server = spawn(AXUM_BIN, ['127.0.0.1:0', cert, key], { stdio: ['ignore', 'pipe', 'inherit'] });
  const addr = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('axum_echo printed no listening line')), 20000);
    server.once('exit', (code) => reject(new Error(`axum_echo exited with ${code}`)));
    createInterface({ input: server.stdout }).on('line', (line) => {
      lines.push(line);
      const m = /^listening on (\S+)$/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
  });
  origin = `https://${addr}`;
  browser = await launchChromium({ args: [`--ignore-certificate-errors-spki-list=${spkiHash}`] });
  page = browser.context.pages()[0] ?? (await browser.context.newPage());
  page.on('console', (msg) => console.log(`page: ${msg.text()}`));
  const response = await page.goto(`${origin}/`);
  assert.equal(response.status(), 200);
});

after(async () => {
  await browser?.close();
  await stopServer(server);
  if (certDir) rmSync(certDir, { recursive: true, force: true });
});

test('Chromium opens a WebSocket through the axum extractor on the page\'s HTTP/2 connection', { skip, timeout: 30000 }, async () => {
  const protocol = await page.evaluate(() => performance.getEntriesByType('navigation')[0].nextHopProtocol);
  assert.equal(protocol, 'h2', 'the page did not arrive over HTTP/2');
  const r = await page.evaluate(async () => {
    const socket = new WebSocket(`wss://${location.host}/echo`, ['soap', 'wamp']);
    socket.binaryType = 'arraybuffer';
    await new Promise((resolve, reject) => {
      socket.onopen = resolve;
      socket.onerror = () => reject(new Error('error event'));
    });
    const next = () => new Promise((resolve) => (socket.onmessage = (e) => resolve(e.data)));
    socket.send('through axum é🐟');
    const text = await next();
    socket.send(new Uint8Array([9, 8, 7]));
    const binary = Array.from(new Uint8Array(await next()));
    const closed = new Promise((resolve) => {
      socket.onclose = (e) => resolve({ code: e.code, reason: e.reason, wasClean: e.wasClean });
    });
    socket.close(4000, 'done');
    return { text, binary, protocol: socket.protocol, extensions: socket.extensions, close: await closed };
  });
  console.log(JSON.stringify(r));
  assert.equal(r.text, 'through axum é🐟');
  assert.deepEqual(r.binary, [9, 8, 7]);
  assert.equal(r.protocol, 'soap');
  assert.match(r.extensions, /^permessage-deflate\b/);
  assert.deepEqual(r.close, { code: 4000, reason: 'done', wasClean: true });
  assert.ok(
    lines.includes('websocket http_version=HTTP/2.0 protocol=Some("soap")'),
    `the example saw no HTTP/2 WebSocket:\n${lines.join('\n')}`,
  );
});
