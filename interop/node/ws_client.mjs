// Node `ws` as a client of an echo server: every size and kind of message both ways, each
// echo checked by SHA-256; permessage-deflate negotiated and visibly shrinking the wire bytes;
// then a close with a code and reason, echoed cleanly.
//
//   node ws_client.mjs ws://127.0.0.1:PORT/ --mode deflate|nct|bits9|none
//
// Prints one JSON line per check ({"ok": true|false, ...}); exits 1 if any failed.
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { KINDS, SIZES, byteLength, deflateOption, makeMessage, sha256 } from './common.mjs';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { mode: { type: 'string', default: 'deflate' } },
});
const url = positionals[0];
const mode = values.mode;
let failed = 0;
function report(ok, fields) {
  if (!ok) failed++;
  console.log(JSON.stringify({ ok, ...fields }));
}

const ws = new WebSocket(url, {
  perMessageDeflate: deflateOption(mode),
  maxPayload: 64 << 20,
});
ws.binaryType = 'nodebuffer';
let responseExtensions = '';
ws.on('upgrade', (res) => {
  responseExtensions = res.headers['sec-websocket-extensions'] ?? '';
});
const inbox = [];
let waiting = null;
ws.on('message', (data, isBinary) => {
  inbox.push({ data, isBinary });
  if (waiting) waiting();
});
const closed = new Promise((resolve) => {
  ws.onclose = (ev) => resolve({ code: ev.code, reason: ev.reason, wasClean: ev.wasClean });
});
ws.on('error', (e) => {
  report(false, { check: 'error', error: String(e) });
});
async function nextMessage() {
  while (inbox.length === 0) {
    await new Promise((resolve) => {
      waiting = resolve;
    });
    waiting = null;
  }
  return inbox.shift();
}

await new Promise((resolve, reject) => {
  ws.once('open', resolve);
  ws.once('error', reject);
});

const deflate = mode !== 'none';
{
  const ext = ws.extensions;
  let ok = deflate ? ext === 'permessage-deflate' : ext === '';
  if (mode === 'nct') {
    ok &&=
      /(^|;)\s*server_no_context_takeover\b/.test(responseExtensions) &&
      /(^|;)\s*client_no_context_takeover\b/.test(responseExtensions);
  }
  report(ok, { check: 'negotiated', mode, extensions: ext, response: responseExtensions });
}

const sock = ws._socket;
for (const size of SIZES) {
  for (const kind of KINDS) {
    const msg = makeMessage(kind, size);
    const want = sha256(msg);
    const [out0, in0] = [sock.bytesWritten, sock.bytesRead];
    const t0 = performance.now();
    ws.send(msg, { binary: kind !== 'text' });
    const { data, isBinary } = await nextMessage();
    const ms = performance.now() - t0;
    const wireOut = sock.bytesWritten - out0;
    const wireIn = sock.bytesRead - in0;
    const got = sha256(data);
    let ok = got === want && isBinary === (kind !== 'text') && data.length === byteLength(msg);
    // Compression must show on the wire for large compressible messages, both directions
    // (the binary kind has too few short repeats for a 512-byte window).
    const shrinks = deflate && size >= 65536 && (kind === 'text' || (kind === 'binary' && mode !== 'bits9'));
    if (shrinks) ok &&= wireOut < size / 2 && wireIn < size / 2;
    report(ok, {
      check: 'echo',
      kind,
      size,
      sha256: got,
      equal: got === want,
      wire_out: wireOut,
      wire_in: wireIn,
      ms: Math.round(ms),
    });
  }
}

ws.close(4001, 'node client done');
const ev = await closed;
report(ev.code === 4001 && ev.reason === 'node client done' && ev.wasClean, { check: 'close', ...ev });
process.exit(failed ? 1 : 0);
