// One-off measurement (not a test): permessage-deflate's compression ratio and the CPU time of
// `sockeye serve` on a stream of ~1 KiB JSON market ticks echoed through /echo, compared with
// no compression. The ws client compresses every message (threshold 0) so both directions are
// measured; 64 messages are kept in flight.
//
//   node interop/node/measure_deflate.mjs --bin target/release/sockeye [--count 50000]
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { tickStream } from './common.mjs';
import { startServe } from './serve_process.mjs';

const { values } = parseArgs({
  options: {
    bin: { type: 'string', default: 'target/release/sockeye' },
    count: { type: 'string', default: '50000' },
    window: { type: 'string', default: '64' },
  },
});
const count = Number(values.count);
const window = Number(values.window);
const gen = tickStream();
const ticks = Array.from({ length: count }, gen);
const payload = ticks.reduce((n, t) => n + Buffer.byteLength(t), 0);

const MODES = {
  none: { client: false, server: ['--no-compression'] },
  deflate: { client: { threshold: 0 }, server: [] },
  no_context_takeover: {
    client: { threshold: 0, serverNoContextTakeover: true, clientNoContextTakeover: true },
    server: [],
  },
};

console.log(`${count} ticks, ${(payload / count).toFixed(0)} B of JSON on average, ${payload} B in all`);
for (const [mode, { client, server }] of Object.entries(MODES)) {
  const serve = await startServe(values.bin, server);
  const ws = new WebSocket(`ws://${serve.addr}/echo`, { perMessageDeflate: client });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const sock = ws._socket;
  const [out0, in0, cpu0, clientCpu0, t0] = [sock.bytesWritten, sock.bytesRead, serve.cpuMs(), process.cpuUsage(), performance.now()];
  let sent = 0;
  let received = 0;
  await new Promise((resolve) => {
    const pump = () => {
      while (sent < count && sent - received < window) ws.send(ticks[sent++]);
    };
    ws.on('message', () => {
      if (++received === count) resolve();
      else pump();
    });
    pump();
  });
  const wall = performance.now() - t0;
  const serverCpu = serve.cpuMs() - cpu0;
  const c = process.cpuUsage(clientCpu0);
  const wireOut = sock.bytesWritten - out0;
  const wireIn = sock.bytesRead - in0;
  console.log(
    JSON.stringify({
      mode,
      extensions: ws.extensions || '(none)',
      wire_client_to_server: wireOut,
      wire_server_to_client: wireIn,
      ratio_server_to_client: +(wireIn / payload).toFixed(4),
      ratio_client_to_server: +(wireOut / payload).toFixed(4),
      server_cpu_ms: serverCpu,
      server_cpu_us_per_echo: +((serverCpu * 1000) / count).toFixed(2),
      client_cpu_ms: Math.round((c.user + c.system) / 1000),
      wall_ms: Math.round(wall),
    }),
  );
  ws.close(1000);
  await serve.stop();
}
process.exit(0);
