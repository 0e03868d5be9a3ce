// Headless Chromium on HTTP/2 to `sockeye serve --listen-tls …`: the demo page arrives over h2
// (ALPN), and the page's WebSockets ride that same connection as extended CONNECT streams
// (RFC 8441), which `/metrics` confirms by counting their handshakes under http_version="2".
// Over it, the seed's snippets: the events in order, echo, a close code and reason, the hello
// demo, subprotocols, and 1001 "Going Away" for every socket on SIGTERM.
//
//   node --test interop/browser/http2.test.mjs
//
// Needs `cargo build --release -p sockeye-cli`, scripts/setup-browser.sh and openssl; without
// them the test is skipped, unless SOCKEYE_REQUIRE_INTEROP=1, when it fails.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { OPENSSL, serveTlsInChromium, skipUnlessReady } from './common.mjs';

const skip = skipUnlessReady([[OPENSSL, 'apt-get install openssl']]);

let served;
let server;
let exited;
let page;

before(async () => {
  if (skip) return;
  served = await serveTlsInChromium(['--log-level', 'warn']);
  ({ proc: server, page } = served);
  exited = new Promise((resolve) => server.once('exit', (code, signal) => resolve({ code, signal })));
  assert.equal(served.status, 200);
});

after(async () => {
  await served?.close();
});

/** The handshakes `/metrics` counts for one HTTP version, fetched by the page (over h2 too). */
async function handshakes(version) {
  const text = await page.evaluate(async () => (await fetch('/metrics')).text());
  const m = new RegExp(`^sockeye_handshakes_accepted_total\\{http_version="${version}"\\} (\\d+)$`, 'm').exec(text);
  assert.ok(m, `no counter for HTTP/${version} in\n${text}`);
  return Number(m[1]);
}

test('the page and its WebSockets share one HTTP/2 connection: events, echo, close code and reason, hello, subprotocols', { skip, timeout: 60000 }, async () => {
  const protocol = await page.evaluate(() => performance.getEntriesByType('navigation')[0].nextHopProtocol);
  assert.equal(protocol, 'h2', 'the page did not arrive over HTTP/2');
  const before = { h1: await handshakes('1.1'), h2: await handshakes('2') };

  const r = await page.evaluate(async () => {
    const base = `wss://${location.host}`;
    // The seed's four events, in order, on /echo.
    const events = [];
    const socket = new WebSocket(`${base}/echo`, ['soap', 'wamp']);
    socket.binaryType = 'arraybuffer';
    const closed = new Promise((resolve) => {
      socket.onclose = (e) => {
        events.push('close');
        resolve({ code: e.code, reason: e.reason, wasClean: e.wasClean });
      };
    });
    socket.onerror = () => events.push('error');
    await new Promise((resolve) => {
      socket.onopen = () => {
        events.push('open');
        resolve();
      };
    });
    const echoed = new Promise((resolve) => {
      socket.onmessage = (e) => {
        events.push('message');
        resolve(e.data);
      };
    });
    socket.send('over HTTP/2 é🐟');
    const echo = await echoed;
    socket.close(1000, 'Work complete');
    const close = await closed;

    // The hello demo.
    const hello = new WebSocket(`${base}/hello`);
    const greeting = await new Promise((resolve, reject) => {
      hello.onopen = () => hello.send('My name is John');
      hello.onmessage = (e) => resolve(e.data);
      hello.onerror = () => reject(new Error('hello: error event'));
    });
    hello.close(1000);
    return { events, echo, close, protocol: socket.protocol, extensions: socket.extensions, greeting };
  });
  console.log(JSON.stringify(r));
  assert.deepEqual(r.events, ['open', 'message', 'close']);
  assert.equal(r.echo, 'over HTTP/2 é🐟');
  assert.deepEqual(r.close, { code: 1000, reason: 'Work complete', wasClean: true });
  assert.equal(r.protocol, 'soap');
  assert.match(r.extensions, /^permessage-deflate\b/);
  assert.equal(r.greeting, 'Hello from server, John!');

  // Both sockets arrived as HTTP/2 handshakes and none as HTTP/1.1.
  assert.equal(await handshakes('2'), before.h2 + 2);
  assert.equal(await handshakes('1.1'), before.h1);
});

test('SIGTERM: every HTTP/2 WebSocket gets 1001 "Going Away" (wasClean true) and the server exits 0', { skip, timeout: 30000 }, async () => {
  const opened = page.evaluate(async () => {
    window.__closes = [];
    const sockets = ['/echo', '/chat', '/hello'].map((p) => new WebSocket(`wss://${location.host}${p}`));
    await Promise.all(sockets.map((s) => new Promise((resolve) => (s.onopen = resolve))));
    window.__closed = Promise.all(
      sockets.map(
        (s, i) =>
          new Promise((resolve) => {
            s.onclose = (e) => resolve({ i, code: e.code, reason: e.reason, wasClean: e.wasClean });
          }),
      ),
    );
  });
  await opened;
  const counted = await handshakes('2');
  assert.ok(counted >= 3, `only ${counted} HTTP/2 handshakes counted`);
  server.kill('SIGTERM');
  const closes = await page.evaluate(() => window.__closed);
  assert.deepEqual(
    closes,
    [0, 1, 2].map((i) => ({ i, code: 1001, reason: 'Going Away', wasClean: true })),
  );
  assert.deepEqual(await exited, { code: 0, signal: null });
});
