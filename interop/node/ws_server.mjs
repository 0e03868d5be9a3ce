// Node `ws` as an echo server. Prints `LISTENING port`, then one JSON line per event:
//   {"event":"open", "extensions", "response_extensions", "offered"}
//   {"event":"message", "binary", "len", "crc32", "wire_in", "wire_out"}   (after the echo is written)
//   {"event":"close", "code", "reason", "wasClean"}
//
//   node ws_server.mjs --mode deflate|nct|bits9|none [--port 0]
import { parseArgs } from 'node:util';
import { crc32 } from 'node:zlib';
import { WebSocketServer } from 'ws';
import { deflateOption } from './common.mjs';

const { values } = parseArgs({
  options: {
    mode: { type: 'string', default: 'deflate' },
    port: { type: 'string', default: '0' },
  },
});
const wss = new WebSocketServer({
  host: '127.0.0.1',
  port: Number(values.port),
  perMessageDeflate: deflateOption(values.mode),
  maxPayload: 64 << 20,
});
const log = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
const responseExtensions = new WeakMap();
wss.on('headers', (headers, req) => {
  const line = headers.find((h) => /^sec-websocket-extensions:/i.test(h));
  responseExtensions.set(req, line ? line.replace(/^[^:]*:\s*/, '') : '');
});
wss.on('connection', (ws, req) => {
  const sock = req.socket;
  let [in0, out0] = [sock.bytesRead, sock.bytesWritten];
  log({
    event: 'open',
    path: req.url,
    extensions: ws.extensions,
    response_extensions: responseExtensions.get(req) ?? '',
    offered: req.headers['sec-websocket-extensions'] ?? '',
  });
  ws.on('message', (data, isBinary) => {
    const wireIn = sock.bytesRead - in0;
    in0 = sock.bytesRead;
    ws.send(data, { binary: isBinary }, () => {
      const wireOut = sock.bytesWritten - out0;
      out0 = sock.bytesWritten;
      log({ event: 'message', binary: isBinary, len: data.length, crc32: crc32(data), wire_in: wireIn, wire_out: wireOut });
    });
  });
  ws.onclose = (ev) => log({ event: 'close', code: ev.code, reason: ev.reason, wasClean: ev.wasClean });
});
wss.on('listening', () => {
  console.log(`LISTENING ${wss.address().port}`);
});
process.on('SIGTERM', () => process.exit(0));
