// One-off measurement (not a test): the server-side memory of idle WebSocket connections.
// Opens --count connections to a fresh `sockeye serve` /echo, sends one ~1 KiB JSON tick each
// way on each (compressed both ways: threshold 0), and diffs the server's VmRSS/RssAnon from
// /proc/PID/status against a warmed-up baseline. Modes: none (--no-compression), deflate
// (context takeover), no_context_takeover (both directions), server_no_context_takeover (the
// server compresses each message afresh, the client keeps its window).
//
//   node interop/node/measure_conn_memory.mjs --bin target/release/sockeye [--count 1000]
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { tickStream } from './common.mjs';
import { sleep, startServe } from './serve_process.mjs';

const { values } = parseArgs({
  options: {
    bin: { type: 'string', default: 'target/release/sockeye' },
    count: { type: 'string', default: '1000' },
  },
});
const count = Number(values.count);
const MODES = {
  none: { client: false, server: ['--no-compression'] },
  deflate: { client: { threshold: 0 }, server: [] },
  no_context_takeover: {
    client: { threshold: 0, serverNoContextTakeover: true, clientNoContextTakeover: true },
    server: [],
  },
  server_no_context_takeover: { client: { threshold: 0, serverNoContextTakeover: true }, server: [] },
};
const gen = tickStream();

async function openOne(addr, client) {
  const ws = new WebSocket(`ws://${addr}/echo`, { perMessageDeflate: client });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const echoed = new Promise((resolve) => ws.once('message', resolve));
  ws.send(gen());
  await echoed;
  return ws;
}

async function openMany(addr, client, n) {
  const sockets = [];
  for (let i = 0; i < n; i += 50) {
    const batch = Array.from({ length: Math.min(50, n - i) }, () => openOne(addr, client));
    sockets.push(...(await Promise.all(batch)));
  }
  return sockets;
}

async function closeAll(sockets) {
  await Promise.all(
    sockets.map((ws) => {
      const closed = new Promise((resolve) => ws.once('close', resolve));
      ws.close(1000);
      return closed;
    }),
  );
}

for (const [mode, { client, server }] of Object.entries(MODES)) {
  const serve = await startServe(values.bin, server);
  // Warm up: runtime threads, allocator arenas, a first round of buffers.
  await closeAll(await openMany(serve.addr, client, 100));
  await sleep(500);
  const before = serve.rss();
  const sockets = await openMany(serve.addr, client, count);
  await sleep(1000);
  const open = serve.rss();
  const extensions = sockets[0].extensions || '(none)';
  await closeAll(sockets);
  await sleep(1000);
  const after = serve.rss();
  const perConn = (key) => +((open[key] - before[key]) / count).toFixed(1);
  console.log(
    JSON.stringify({
      mode,
      count,
      extensions,
      rss_kib_before: before.VmRSS,
      rss_kib_open: open.VmRSS,
      rss_kib_after_close: after.VmRSS,
      per_connection_kib_VmRSS: perConn('VmRSS'),
      per_connection_kib_RssAnon: perConn('RssAnon'),
    }),
  );
  await serve.stop();
}
process.exit(0);
