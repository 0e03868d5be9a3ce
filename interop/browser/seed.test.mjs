// The seed document's browser snippets, run as they are written (in page.evaluate, headless
// Chromium driven by playwright-core) against the real `sockeye serve` binary: the hello demo,
// the four events in order, close(1000, "Work complete") as the server sees it, readyState 0 to
// 3, binaryType "blob" and "arraybuffer", subprotocols ["soap", "wamp"], the bufferedAmount
// loop moving 32 MiB, a killed server (1006, not clean) and a graceful shutdown (1001, clean).
// Each test starts its own server, since some of them kill it.
//
//   node --test interop/browser/*.test.mjs
//
// Needs `cargo build --release -p sockeye-cli` (SOCKEYE_BIN or $CARGO_TARGET_DIR/release/sockeye
// overrides the path) and scripts/setup-browser.sh. Without them the tests are skipped, unless
// SOCKEYE_REQUIRE_INTEROP=1, when they fail.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { launchChromium, skipUnlessReady, startServer, stopServer } from './common.mjs';

const skip = skipUnlessReady();

let browser;
let context;

before(async () => {
  if (skip) return;
  browser = await launchChromium();
  context = browser.context;
});

after(async () => {
  await browser?.close();
});

/** Starts `sockeye serve` for one test; `t.after` kills it if the test did not. */
async function serveForTest(t, extra = []) {
  const { proc: child, addr } = await startServer(extra);
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  t.after(() => stopServer(child));
  return { child, exited, base: `http://${addr}`, ws: `ws://${addr}` };
}

/** A fresh tab on the server's demo page (same origin as the sockets), closed after the test. */
async function openPage(t, server) {
  const page = await context.newPage();
  page.on('console', (msg) => console.log(`page: ${msg.text()}`));
  t.after(() => page.close());
  await page.goto(`${server.base}/`);
  return page;
}

test('the hello demo: "My name is John" → "Hello from server, John!", then 1000 "Bye!"', { skip, timeout: 30000 }, async (t) => {
  const server = await serveForTest(t);
  const page = await openPage(t, server);
  const r = await page.evaluate(
    (url) =>
      new Promise((resolve) => {
        const seen = [];
        let greetedAt = 0;
        // The seed's snippet, with the demo server's URL replaced by ours.
        let socket = new WebSocket(url);

        socket.onopen = function (e) {
          seen.push('open');
          socket.send('My name is John');
        };

        socket.onmessage = function (event) {
          greetedAt = performance.now();
          seen.push(`message ${event.data}`);
          console.log(`data from the server: ${event.data}`);
        };

        socket.onclose = function (event) {
          if (event.wasClean) {
            console.log(`connection closed: code=${event.code} reason=${event.reason}`);
          } else {
            // the process died or the network failed: event.code is 1006
            console.log('connection died');
          }
          seen.push('close');
          resolve({
            seen,
            code: event.code,
            reason: event.reason,
            wasClean: event.wasClean,
            afterGreetingMs: performance.now() - greetedAt,
          });
        };

        socket.onerror = function (error) {
          seen.push('error');
        };
      }),
    `${server.ws}/hello`,
  );
  assert.deepEqual(r.seen, ['open', 'message Hello from server, John!', 'close']);
  assert.deepEqual({ code: r.code, reason: r.reason, wasClean: r.wasClean }, { code: 1000, reason: 'Bye!', wasClean: true });
  assert.ok(r.afterGreetingMs >= 4500 && r.afterGreetingMs < 8000, `closed ${r.afterGreetingMs} ms after the greeting`);
});

// Chromium fires `error` only when it must *fail* the connection (handshake refused, protocol
// error), as the HTML standard says; a transport lost after `open` (FIN or RST from a killed
// process) is a close with 1006 and wasClean false, with no error event. So the four events are
// seen on two sockets: open, message, close on one, killed mid-conversation; error, close on the
// next, which finds nobody listening.
test('the four events: open, message, then close 1006 (wasClean false) on SIGKILL; error, close 1006 on a dead server', { skip, timeout: 30000 }, async (t) => {
  const server = await serveForTest(t);
  const page = await openPage(t, server);
  // The seed's handlers, recording instead of logging.
  const watch = (url) => {
    window.sockets ??= [];
    const seen = [];
    window.sockets.push(seen);
    return new Promise((opened) => {
      seen.closed = new Promise((resolve) => {
        let socket = new WebSocket(url);
        socket.onopen = function (e) {
          seen.push({ type: 'open', readyState: socket.readyState });
          socket.send('still there?');
        };
        socket.onmessage = function (event) {
          seen.push({ type: 'message', data: event.data });
          opened();
        };
        socket.onerror = function (error) {
          seen.push({ type: 'error', readyState: socket.readyState });
          opened();
        };
        socket.onclose = function (event) {
          seen.push({ type: 'close', code: event.code, reason: event.reason, wasClean: event.wasClean });
          resolve(seen);
        };
      });
    });
  };
  await page.evaluate(`(${watch})(${JSON.stringify(`${server.ws}/echo`)})`);
  server.child.kill('SIGKILL');
  assert.equal((await server.exited).signal, 'SIGKILL');
  const killed = await page.evaluate(() => window.sockets[0].closed);
  await page.evaluate(`(${watch})(${JSON.stringify(`${server.ws}/echo`)})`);
  const refused = await page.evaluate(() => window.sockets[1].closed);
  console.log(`killed mid-conversation: ${JSON.stringify(killed)}`);
  console.log(`connecting to the dead server: ${JSON.stringify(refused)}`);
  // Should a browser fire `error` for the lost transport too, it must come just before `close`.
  const withoutError = killed.filter((e) => e.type !== 'error');
  assert.deepEqual(withoutError, [
    { type: 'open', readyState: 1 },
    { type: 'message', data: 'still there?' },
    { type: 'close', code: 1006, reason: '', wasClean: false },
  ]);
  if (killed.length === 4) assert.deepEqual(killed[2], { type: 'error', readyState: 3 });
  assert.deepEqual(refused, [
    { type: 'error', readyState: 3 },
    { type: 'close', code: 1006, reason: '', wasClean: false },
  ]);
});

test('socket.close(1000, "Work complete") reaches the server with its code and reason', { skip, timeout: 30000 }, async (t) => {
  const server = await serveForTest(t);
  const page = await openPage(t, server);
  const ev = await page.evaluate(
    (url) =>
      new Promise((resolve) => {
        let socket = new WebSocket(url);
        socket.onopen = () => {
          // The closing party:
          socket.close(1000, 'Work complete');
        };
        // The other party (here /echo) sees the code and reason, and sends them back.
        socket.onclose = (event) => resolve({ code: event.code, reason: event.reason, wasClean: event.wasClean });
      }),
    `${server.ws}/echo`,
  );
  assert.deepEqual(ev, { code: 1000, reason: 'Work complete', wasClean: true });
  // The server counts the close code it received when the connection's task ends, just after
  // the browser's close event.
  let metrics = '';
  for (let i = 0; i < 50; i++) {
    metrics = await (await fetch(`${server.base}/metrics`)).text();
    if (metrics.includes('sockeye_closes_total{code="1000"} 1\n')) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.match(metrics, /^sockeye_closes_total\{code="1000"\} 1$/m, metrics);
  assert.match(metrics, /^sockeye_connections_open 0$/m, metrics);
});

test('readyState goes 0 (connecting), 1 (open), 2 (closing), 3 (closed)', { skip, timeout: 30000 }, async (t) => {
  const server = await serveForTest(t);
  const page = await openPage(t, server);
  const states = await page.evaluate(
    (url) =>
      new Promise((resolve) => {
        const states = [];
        let socket = new WebSocket(url);
        states.push(['after new WebSocket', socket.readyState]);
        socket.onopen = () => {
          states.push(['open', socket.readyState]);
          socket.close(1000, 'Work complete');
          states.push(['after close()', socket.readyState]);
        };
        socket.onclose = () => {
          states.push(['close', socket.readyState]);
          resolve(states);
        };
      }),
    `${server.ws}/echo`,
  );
  assert.deepEqual(states, [
    ['after new WebSocket', 0],
    ['open', 1],
    ['after close()', 2],
    ['close', 3],
  ]);
});

test('binaryType: "blob" by default (data instanceof Blob), and "arraybuffer"', { skip, timeout: 30000 }, async (t) => {
  const server = await serveForTest(t);
  const page = await openPage(t, server);
  const r = await page.evaluate(
    (url) =>
      new Promise((resolve, reject) => {
        const bytes = new Uint8Array(256).map((_, i) => i);
        const results = [];
        let socket = new WebSocket(url);
        results.push({ defaultBinaryType: socket.binaryType });
        socket.onerror = () => reject(new Error('error event'));
        socket.onopen = () => socket.send(bytes);
        socket.onmessage = async (event) => {
          const data = event.data;
          const got = new Uint8Array(data instanceof Blob ? await data.arrayBuffer() : data);
          results.push({
            binaryType: socket.binaryType,
            isBlob: data instanceof Blob,
            isArrayBuffer: data instanceof ArrayBuffer,
            size: got.length,
            same: got.every((b, i) => b === bytes[i]),
          });
          if (socket.binaryType === 'blob') {
            socket.binaryType = 'arraybuffer';
            socket.send(bytes.buffer);
          } else {
            socket.close();
            resolve(results);
          }
        };
      }),
    `${server.ws}/echo`,
  );
  assert.deepEqual(r, [
    { defaultBinaryType: 'blob' },
    { binaryType: 'blob', isBlob: true, isArrayBuffer: false, size: 256, same: true },
    { binaryType: 'arraybuffer', isBlob: false, isArrayBuffer: true, size: 256, same: true },
  ]);
});

test('new WebSocket(url, ["soap", "wamp"]): the server picks "soap"', { skip, timeout: 30000 }, async (t) => {
  const server = await serveForTest(t);
  const page = await openPage(t, server);
  const r = await page.evaluate(
    (url) =>
      new Promise((resolve, reject) => {
        let socket = new WebSocket(url, ['soap', 'wamp']);
        socket.onerror = () => reject(new Error('error event'));
        socket.onopen = () => {
          resolve({ protocol: socket.protocol, extensions: socket.extensions });
          socket.close();
        };
      }),
    `${server.ws}/echo`,
  );
  assert.equal(r.protocol, 'soap');
  assert.match(r.extensions, /^permessage-deflate\b/);
});

test('the bufferedAmount loop (send only when bufferedAmount == 0) moves 32 MiB through /echo', { skip, timeout: 120000 }, async (t) => {
  const server = await serveForTest(t);
  const page = await openPage(t, server);
  const r = await page.evaluate(
    (url) =>
      new Promise((resolve, reject) => {
        const TOTAL = 32 << 20;
        const CHUNK = 1 << 20;
        let sent = 0;
        let echoed = 0;
        let corrupt = 0;
        let ticks = 0;
        let waits = 0;
        const afterSend = [];
        // Chunk i is filled with the byte i, so that every echoed byte can be checked.
        const moreData = () => new Uint8Array(CHUNK).fill((sent / CHUNK) & 0xff);
        let socket = new WebSocket(url);
        socket.binaryType = 'arraybuffer';
        socket.onerror = () => reject(new Error('error event'));
        socket.onmessage = (event) => {
          const got = new Uint8Array(event.data);
          const want = (echoed / CHUNK) & 0xff;
          if (got.length !== CHUNK || !got.every((b) => b === want)) corrupt++;
          echoed += got.length;
          if (echoed === TOTAL) {
            socket.close(1000, 'Work complete');
            resolve({ sent, echoed, corrupt, ticks, waits, afterSend });
          }
        };
        socket.onopen = () => {
          // The seed's loop: every 100 ms, send more only if nothing is queued.
          const timer = setInterval(() => {
            ticks++;
            if (sent >= TOTAL) {
              clearInterval(timer);
              return;
            }
            if (socket.bufferedAmount == 0) {
              socket.send(moreData());
              sent += CHUNK;
              afterSend.push(socket.bufferedAmount);
            } else {
              waits++;
            }
          }, 100);
        };
      }),
    `${server.ws}/echo`,
  );
  console.log(`ticks ${r.ticks}, ticks waiting for bufferedAmount to drain ${r.waits}`);
  assert.equal(r.sent, 32 << 20);
  assert.equal(r.echoed, 32 << 20);
  assert.equal(r.corrupt, 0);
  // send() queues synchronously: right after it, bufferedAmount holds the whole chunk.
  assert.equal(r.afterSend.length, 32);
  assert.ok(r.afterSend.every((n) => n === 1 << 20), `bufferedAmount after send: ${r.afterSend}`);
});

test('SIGTERM: every client gets 1001 "Going Away" (wasClean true) and the server exits 0', { skip, timeout: 30000 }, async (t) => {
  const server = await serveForTest(t);
  const page = await openPage(t, server);
  await page.evaluate(
    (base) =>
      Promise.all(
        ['/echo', '/hello', '/chat'].map(
          (endpoint) =>
            new Promise((opened, failed) => {
              window.closes ??= [];
              let socket = new WebSocket(base + endpoint);
              socket.onerror = () => failed(new Error(`error event on ${endpoint}`));
              window.closes.push(
                new Promise((resolve) => {
                  socket.onclose = (event) =>
                    resolve({ endpoint, code: event.code, reason: event.reason, wasClean: event.wasClean });
                }),
              );
              socket.onopen = opened;
            }),
        ),
      ),
    server.ws,
  );
  server.child.kill('SIGTERM');
  const closes = await page.evaluate(() => Promise.all(window.closes));
  assert.deepEqual(
    closes,
    ['/echo', '/hello', '/chat'].map((endpoint) => ({ endpoint, code: 1001, reason: 'Going Away', wasClean: true })),
  );
  assert.deepEqual(await server.exited, { code: 0, signal: null });
});
