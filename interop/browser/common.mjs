// What the browser tests share: where the binary, Chromium and playwright-core live, the
// skip-or-fail rule for missing pieces, Chromium's launch flags, starting `sockeye serve`, and
// opening the demo page in a tab that fails the test on page errors.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const repo = path.resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const CHROMIUM = process.env.SOCKEYE_CHROMIUM ?? '/usr/bin/chromium';
export const BIN =
  process.env.SOCKEYE_BIN ??
  path.join(path.resolve(repo, process.env.CARGO_TARGET_DIR ?? 'target'), 'release/sockeye');
export const playwrightPackage = path.join(repo, 'interop/node/node_modules/playwright-core/package.json');

/**
 * The `skip` option for `test()`: false when everything needed is there, else the reason. With
 * SOCKEYE_REQUIRE_INTEROP=1 (scripts/test.sh, CI) a missing piece throws instead.
 * `extra` lists more [file, how to get it] pairs.
 */
export function skipUnlessReady(extra = []) {
  const missing = [
    [BIN, 'cargo build --release -p sockeye-cli'],
    [CHROMIUM, 'scripts/setup-browser.sh'],
    [playwrightPackage, 'scripts/setup-node.sh'],
    ...extra,
  ]
    .filter(([file]) => !existsSync(file))
    .map(([file, fix]) => `no ${file} (run ${fix})`)
    .join('; ');
  if (missing && process.env.SOCKEYE_REQUIRE_INTEROP === '1') throw new Error(missing);
  if (missing) console.log(`skipping: ${missing}`);
  return missing || false;
}

// Without the networking flags Chromium keeps calling home, which a closed network punishes.
export const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Launches Chromium with a fresh profile; `close()` ends it and removes the profile. */
export async function launchChromium({ args = [], viewport = { width: 900, height: 700 } } = {}) {
  const { chromium } = createRequire(playwrightPackage)('playwright-core');
  const userDataDir = mkdtempSync(path.join(tmpdir(), 'sockeye-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [...ARGS, ...args],
    viewport,
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Starts `sockeye serve` and waits for its first LISTENING line: a plain listener on an
 * ephemeral port, or with `{ plain: false }` only the listeners `extra` names.
 */
export async function startServer(extra = [], { plain = true } = {}) {
  const listen = plain ? ['--listen', '127.0.0.1:0'] : [];
  const proc = spawn(BIN, ['serve', ...listen, ...extra], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: proc.stdout });
  const addr = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('sockeye serve printed no LISTENING line')), 20000);
    proc.once('exit', (code) => reject(new Error(`sockeye serve exited with ${code}`)));
    lines.on('line', (line) => {
      const m = /^LISTENING (\S+)$/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
  });
  return { proc, addr };
}

/** Kills a server started by `startServer` (if it is still running) and waits for it. */
export async function stopServer(proc) {
  if (proc && proc.exitCode === null && proc.signalCode === null) {
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGKILL');
    await exited;
  }
}

/**
 * `sockeye serve` on a plain listener (`startServer(extra)`) and Chromium
 * (`launchChromium(launch)`): `base` is the server's http:// origin and `context` the browser's.
 * `close()` ends both.
 */
export async function servePlainInChromium(extra = [], launch = {}) {
  const { proc, addr } = await startServer(extra);
  let browser;
  try {
    browser = await launchChromium(launch);
  } catch (e) {
    await stopServer(proc);
    throw e;
  }
  return {
    proc,
    base: `http://${addr}`,
    context: browser.context,
    async close() {
      await browser.close();
      await stopServer(proc);
    },
  };
}

/** The browser's first tab (or a new one), its console copied to ours. */
export async function firstPage(context) {
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (msg) => console.log(`page: ${msg.text()}`));
  return page;
}

/**
 * A fresh tab in `context` on the demo page at `origin`, closed after the test `t`. Errors in
 * the page fail the test, except those `expected(text)` accepts. `sockets` collects the URL of
 * every WebSocket the page opens, and `sent` the text frames it sends on them, each passed
 * through `decode`.
 */
export async function openDemoPage(t, context, origin, { expected = () => false, decode = (text) => text } = {}) {
  const page = await context.newPage();
  const problems = [];
  const sockets = [];
  const sent = [];
  page.on('console', (msg) => {
    console.log(`page: ${msg.text()}`);
    if (msg.type() === 'error' && !expected(msg.text())) problems.push(msg.text());
  });
  page.on('pageerror', (e) => problems.push(`uncaught ${e.name}: ${e.message}`));
  page.on('websocket', (ws) => {
    sockets.push(ws.url());
    ws.on('framesent', ({ payload }) => typeof payload === 'string' && sent.push(decode(payload)));
  });
  t.after(async () => {
    await page.close();
    assert.deepEqual(problems, [], 'errors in the page');
  });
  await page.goto(`${origin}/`);
  return { page, sockets, sent };
}

// ---- certificates for the wss:// and HTTP/2 tests ----

export const OPENSSL = process.env.SOCKEYE_OPENSSL ?? '/usr/bin/openssl';

const openssl = (args, input) => execFileSync(OPENSSL, args, { input, stdio: ['pipe', 'pipe', 'pipe'] });

/** A CA and a server certificate for 127.0.0.1 and localhost signed by it, in `dir`. */
export function makeCertificates(dir) {
  const f = (name) => path.join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(['req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '1',
    '-subj', '/CN=Sockeye test CA', '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  openssl(['req', '-new', ...ec, '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=localhost']);
  writeFileSync(
    f('server.ext'),
    'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' +
      'keyUsage=critical,digitalSignature\nbasicConstraints=CA:FALSE\n',
  );
  openssl(['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'),
    '-CAcreateserial', '-days', '1', '-extfile', f('server.ext'), '-out', f('server.pem')]);
  // base64(SHA-256(SubjectPublicKeyInfo)) of the server certificate: Chromium's pin.
  const pubkey = openssl(['x509', '-in', f('server.pem'), '-pubkey', '-noout']);
  const spki = openssl(['pkey', '-pubin', '-outform', 'der'], pubkey);
  const spkiHash = openssl(['dgst', '-sha256', '-binary'], spki).toString('base64');
  return { cert: f('server.pem'), key: f('server.key'), spkiHash };
}

/**
 * `sockeye serve` on a TLS listener with a certificate made for the run, and Chromium trusting
 * it by its SPKI pin, on the demo page at the server's https:// origin. `close()` stops both
 * and removes the certificates.
 */
export async function serveTlsInChromium(extra = []) {
  const certDir = mkdtempSync(path.join(tmpdir(), 'sockeye-tls-certs-'));
  const { cert, key, spkiHash } = makeCertificates(certDir);
  const { proc, addr } = await startServer(
    ['--listen-tls', '127.0.0.1:0', '--tls-cert', cert, '--tls-key', key, ...extra],
    { plain: false },
  );
  const browser = await launchChromium({ args: [`--ignore-certificate-errors-spki-list=${spkiHash}`] });
  const page = await firstPage(browser.context);
  const origin = `https://${addr}`;
  const response = await page.goto(`${origin}/`);
  return {
    proc,
    page,
    origin,
    status: response.status(),
    async close() {
      await browser.close();
      await stopServer(proc);
      rmSync(certDir, { recursive: true, force: true });
    },
  };
}
