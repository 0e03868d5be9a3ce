// Node `ws` echo server for benches/deflate.py: `node benches/deflate_ws_server.mjs [PORT]`.
// A WebSocketServer with `perMessageDeflate: true` and ws's defaults otherwise (among them a
// 1024 B threshold: smaller messages are sent uncompressed), echoing every message as it came
// (text stays text). Listens on 127.0.0.1 (port 0 picks one) and prints `LISTENING addr`.
import { createRequire } from 'node:module';

const require = createRequire(new URL('../interop/node/package.json', import.meta.url));
const { WebSocketServer } = require('ws');

const port = Number(process.argv[2] || 0);
const wss = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: true });
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => {});
});
wss.on('listening', () => {
  const { address, port } = wss.address();
  process.stdout.write(`LISTENING ${address}:${port}\n`);
});
const stop = () => { wss.close(); process.exit(0); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
