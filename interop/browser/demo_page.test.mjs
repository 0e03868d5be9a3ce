// The demo page `sockeye serve` puts at /, driven by clicks in headless Chromium (playwright-core)
// as a person would use it: connect to /echo, send text, close with a chosen code and reason; an
// invalid close code shows the browser's own exception; a file sent as binary; the throttled
// send; two tabs chatting in the lobby (chat_rooms.test.mjs has the other rooms). Screenshots at
// desktop (1280×900) and phone (390×844) widths go to interop/out/demo-{console,chat}-{desktop,phone}.png,
// and neither width may scroll sideways.
//
//   node --test interop/browser/*.test.mjs
//
// Needs `cargo build --release -p sockeye-cli` (SOCKEYE_BIN or $CARGO_TARGET_DIR/release/sockeye
// overrides the path) and scripts/setup-browser.sh. Without them the tests are skipped, unless
// SOCKEYE_REQUIRE_INTEROP=1, when they fail.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { openDemoPage, repo, servePlainInChromium, skipUnlessReady } from './common.mjs';

const skip = skipUnlessReady();
const OUT = path.join(repo, 'interop/out');
const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };

let served;
let context;
let base;

before(async () => {
  if (skip) return;
  served = await servePlainInChromium([], { viewport: DESKTOP });
  ({ base, context } = served);
  mkdirSync(OUT, { recursive: true });
});

after(async () => {
  await served?.close();
});

/** A fresh tab on the demo page, closed after the test; page errors fail the test. */
async function openPage(t) {
  return (await openDemoPage(t, context, base)).page;
}

/** Waits for a line of the event log (#log) containing `text`, and returns it. */
async function logLine(page, text, cls) {
  const line = page.locator(cls ? `#log .${cls}` : '#log div', { hasText: text }).last();
  await line.waitFor({ timeout: 15000 });
  return line.textContent();
}

async function connect(page, { endpoint = '/echo', binaryType = 'blob', protocols = '' } = {}) {
  await page.selectOption('#endpoint', endpoint);
  await page.selectOption('#binary-type', binaryType);
  await page.fill('#protocols', protocols);
  await page.click('#connect');
  await logLine(page, 'open  protocol=');
  await page.locator('#s-ready', { hasText: '1 (OPEN)' }).waitFor();
}

/** Neither the document nor any element outside the logs may be wider than the viewport. */
async function assertNoSidewaysScroll(page, what) {
  const r = await page.evaluate(() => {
    const vw = document.documentElement.clientWidth;
    const wide = [...document.querySelectorAll('body *')]
      .filter((el) => el.offsetParent !== null && el.getBoundingClientRect().right > vw + 0.5)
      .map((el) => `${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''} right=${Math.round(el.getBoundingClientRect().right)}`);
    return { vw, scrollWidth: document.documentElement.scrollWidth, wide };
  });
  assert.ok(r.scrollWidth <= r.vw, `${what}: page is ${r.scrollWidth} px wide in a ${r.vw} px viewport`);
  assert.deepEqual(r.wide, [], `${what}: elements past the right edge`);
}

/** Text boxes stay wide enough to type in, and each label sits on the line of its control. */
async function assertUsableControls(page, what) {
  const r = await page.evaluate(() => {
    const visible = (el) => el.offsetParent !== null;
    const narrow = [...document.querySelectorAll('input[type=text]')]
      .filter((el) => visible(el) && el.getBoundingClientRect().width < 128)
      .map((el) => `#${el.id} ${Math.round(el.getBoundingClientRect().width)} px`);
    const orphans = [...document.querySelectorAll('label[for]')]
      .filter(visible)
      .filter((label) => {
        const [a, b] = [label.getBoundingClientRect(), document.getElementById(label.htmlFor).getBoundingClientRect()];
        return a.bottom <= b.top || b.bottom <= a.top;
      })
      .map((label) => `label for #${label.htmlFor}`);
    return { narrow, orphans };
  });
  assert.deepEqual(r.narrow, [], `${what}: text boxes too narrow to type in`);
  assert.deepEqual(r.orphans, [], `${what}: labels on another line than their control`);
}

test('connect to /echo, send text, see the echo, close with a chosen code and reason', { skip, timeout: 30000 }, async (t) => {
  const page = await openPage(t);
  assert.equal(await page.textContent('#s-ready'), '-');
  assert.equal(await page.isDisabled('#send'), true, 'Send is disabled before connecting');
  await connect(page, { protocols: 'soap, wamp' });
  assert.equal(await page.textContent('#s-protocol'), '"soap"');
  assert.match(await page.textContent('#s-extensions'), /^"permessage-deflate/);
  assert.match(await page.textContent('#s-url'), /^ws:\/\/127\.0\.0\.1:\d+\/echo$/);
  await page.fill('#text', 'My name is John');
  await page.click('#send');
  assert.match(await logLine(page, 'send text', 'out'), /→ send text "My name is John"$/);
  assert.match(await logLine(page, 'message', 'in'), /← message text "My name is John"$/);
  // Enter in the message box sends too.
  await page.fill('#text', 'second one');
  await page.press('#text', 'Enter');
  assert.match(await logLine(page, 'second one', 'in'), /← message text "second one"$/);
  await page.fill('#close-code', '4000');
  await page.fill('#close-reason', 'tests done');
  await page.click('#close');
  assert.match(await logLine(page, 'close(4000'), /close\(4000, "tests done"\)$/);
  assert.match(await logLine(page, 'close code='), /close code=4000 reason="tests done" wasClean=true$/);
  await page.locator('#s-ready', { hasText: '3 (CLOSED)' }).waitFor();
  assert.equal(await page.isDisabled('#send'), true, 'Send is disabled after closing');
  assert.equal(await page.isDisabled('#close'), true, 'Close is disabled after closing');
});

test('invalid close codes and reasons show the browser\'s own exception, and the socket stays open', { skip, timeout: 30000 }, async (t) => {
  const page = await openPage(t);
  await connect(page);
  // Browsers let scripts close with 1000 or 3000-4999 only: 1001 is the browser's own code and
  // anything below 1000 is not a close code at all.
  for (const code of ['1001', '999', '1006', '5000']) {
    await page.fill('#close-code', code);
    await page.click('#close');
    const line = await logLine(page, `close() threw`, 'err');
    assert.match(line, new RegExp(`close\\(\\) threw InvalidAccessError: .*${code}`), line);
    await page.evaluate(() => (document.getElementById('log').textContent = ''));
  }
  // A reason longer than 123 bytes of UTF-8 is a SyntaxError.
  await page.fill('#close-code', '1000');
  await page.fill('#close-reason', 'é'.repeat(62));
  await page.click('#close');
  assert.match(await logLine(page, 'close() threw', 'err'), /close\(\) threw SyntaxError: /);
  assert.equal(await page.textContent('#s-ready'), '1 (OPEN)');
  await page.fill('#text', 'still open');
  await page.click('#send');
  await logLine(page, 'still open', 'in');
  await page.fill('#close-reason', 'ok now');
  await page.click('#close');
  assert.match(await logLine(page, 'close code='), /close code=1000 reason="ok now" wasClean=true$/);
});

test('a file picked with the file input goes out as binary and comes back as Blob or ArrayBuffer', { skip, timeout: 30000 }, async (t) => {
  const page = await openPage(t);
  await connect(page);
  const bytes = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 7) & 0xff));
  await page.setInputFiles('#file', { name: 'fish.bin', mimeType: 'application/octet-stream', buffer: bytes });
  await page.click('#send-file');
  assert.match(await logLine(page, 'fish.bin', 'out'), /→ send ArrayBuffer\(300\) from fish\.bin$/);
  assert.match(await logLine(page, 'message', 'in'), /← message Blob\(300\)$/);
  // binaryType can change on an open socket; the next message arrives as an ArrayBuffer.
  await page.selectOption('#binary-type', 'arraybuffer');
  await page.click('#send-file');
  assert.match(await logLine(page, 'ArrayBuffer(300)', 'in'), /← message ArrayBuffer\(300\)$/);
  // Without a file, the page says so instead of throwing.
  await page.setInputFiles('#file', []);
  await page.click('#send-file');
  await logLine(page, 'pick a file first', 'err');
  await page.click('#close');
  await logLine(page, 'wasClean=true');
});

test('the throttled send moves 2 MiB, sending only when bufferedAmount is 0, and draws the chart', { skip, timeout: 60000 }, async (t) => {
  const page = await openPage(t);
  await connect(page, { binaryType: 'arraybuffer' });
  await page.fill('#throttle-mib', '2');
  await page.click('#throttle');
  assert.match(await logLine(page, 'throttled send of'), /throttled send of 2097152 bytes started$/);
  assert.match(await logLine(page, 'throttled send done'), /throttled send done: 2097152 bytes in \d+ ms$/);
  // 32 chunks of 64 KiB, each echoed back.
  await page.waitForFunction(() => document.querySelectorAll('#log .in').length === 32, null, { timeout: 15000 });
  const echoes = await page.locator('#log .in').allTextContents();
  assert.ok(echoes.every((l) => l.endsWith('← message ArrayBuffer(65536)')), echoes.join('\n'));
  assert.equal(await page.textContent('#s-buffered'), '0');
  // The chart samples bufferedAmount at each tick and right after each send, so even a link
  // that drains between ticks shows every 64 KiB chunk queued.
  const peak = await page.evaluate(() => Math.max(...samples.map((s) => s[1])));
  assert.equal(peak, 65536);
  const inked = await page.evaluate(() => {
    const c = document.getElementById('chart');
    const pixels = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < pixels.length; i += 4) if (pixels[i] !== 0) n++;
    return n;
  });
  assert.ok(inked > 100, `the chart has ${inked} painted pixels`);
  await page.click('#close');
  await logLine(page, 'wasClean=true');
});

test('two tabs join the chat (the lobby) with names and see each other\'s messages', { skip, timeout: 30000 }, async (t) => {
  const alice = await openPage(t);
  const bob = await openPage(t);
  for (const [page, name] of [
    [alice, 'Alice'],
    [bob, 'Bob'],
  ]) {
    await page.click('#tab-chat');
    assert.equal(await page.isVisible('#view-console'), false);
    assert.equal(await page.textContent('#chat-state'), '(offline)');
    // An empty room field is the lobby.
    await page.fill('#chat-name', name);
    await page.click('#chat-join');
    await page.locator('#chat-state', { hasText: `(as ${name} in lobby)` }).waitFor();
  }
  await alice.locator('#chat-log div', { hasText: 'Bob joined · 2 here' }).waitFor();
  assert.equal(await alice.textContent('#chat-count'), '2');
  await alice.fill('#chat-text', 'hi Bob 🐟');
  await alice.click('#chat-send');
  await bob.locator('#chat-log div', { hasText: 'Alice: hi Bob 🐟' }).waitFor();
  assert.equal(await alice.inputValue('#chat-text'), '', 'the input is cleared after sending');
  await bob.fill('#chat-text', '<b>hello</b> Alice');
  await bob.press('#chat-text', 'Enter');
  await alice.locator('#chat-log div', { hasText: 'Bob: <b>hello</b> Alice' }).waitFor();
  // Names are bold, and markup in messages stays text.
  assert.equal(await alice.locator('#chat-log b').count(), 0);
  assert.equal(await alice.locator('#chat-log .name', { hasText: 'Bob:' }).count(), 1);
  const aliceSees = await alice.locator('#chat-log div').allTextContents();
  const bobSees = await bob.locator('#chat-log div').allTextContents();
  assert.deepEqual(aliceSees, [
    'you joined lobby as Alice',
    'Bob joined · 2 here',
    'Alice: hi Bob 🐟',
    'Bob: <b>hello</b> Alice',
  ]);
  assert.deepEqual(bobSees, ['you joined lobby as Bob', ...aliceSees.slice(2)]);
  // Joining again under another name replaces Alice's socket rather than adding a second one,
  // and picks up where she was (since/epoch), so she sees each message once.
  await alice.fill('#chat-name', 'Alicia');
  await alice.click('#chat-join');
  await alice.locator('#chat-state', { hasText: '(as Alicia in lobby)' }).waitFor();
  await bob.locator('#chat-log div', { hasText: 'Alicia joined' }).waitFor();
  await bob.locator('#chat-log div', { hasText: 'Alice left' }).waitFor();
  assert.equal(await alice.textContent('#chat-recovery'), 'recovered 0');
  await alice.fill('#chat-text', 'once');
  await alice.click('#chat-send');
  await bob.locator('#chat-log div', { hasText: 'Alicia: once' }).waitFor();
  await alice.locator('#chat-log div', { hasText: 'Alicia: once' }).waitFor();
  await new Promise((resolve) => setTimeout(resolve, 300));
  const messages = (page) => page.locator('#chat-log div:has(.name)').allTextContents();
  assert.deepEqual(await messages(alice), ['Alice: hi Bob 🐟', 'Bob: <b>hello</b> Alice', 'Alicia: once']);
  assert.deepEqual(await messages(bob), await messages(alice));
  assert.ok(
    (await alice.locator('#chat-log div').allTextContents()).includes('back in lobby as Alicia: recovered 0 missed messages'),
  );
  assert.equal(await bob.textContent('#chat-count'), '2');
});

test('screenshots at desktop (1280×900) and phone (390×844) widths, with no sideways scrolling', { skip, timeout: 60000 }, async (t) => {
  const page = await openPage(t);
  await connect(page, { protocols: 'soap, wamp' });
  await page.fill('#text', 'My name is John');
  await page.click('#send');
  await logLine(page, 'My name is John', 'in');
  await page.setInputFiles('#file', { name: 'fish.bin', mimeType: 'application/octet-stream', buffer: Buffer.alloc(1000) });
  await page.click('#send-file');
  await logLine(page, 'Blob(1000)', 'in');
  await page.fill('#close-code', '1001');
  await page.click('#close');
  await logLine(page, 'InvalidAccessError', 'err');
  await page.fill('#throttle-mib', '2');
  await page.click('#throttle');
  await logLine(page, 'throttled send done');
  for (const [size, name] of [
    [DESKTOP, 'desktop'],
    [PHONE, 'phone'],
  ]) {
    await page.setViewportSize(size);
    await assertNoSidewaysScroll(page, `console at ${size.width} px`);
    await assertUsableControls(page, `console at ${size.width} px`);
    await page.screenshot({ path: path.join(OUT, `demo-console-${name}.png`), fullPage: true });
  }

  const other = await openPage(t);
  for (const [p, who] of [
    [page, 'Alice'],
    [other, 'Bob'],
  ]) {
    await p.click('#tab-chat');
    await p.fill('#chat-room', 'upstream');
    await p.fill('#chat-name', who);
    await p.click('#chat-join');
    await p.locator('#chat-state', { hasText: `(as ${who} in upstream)` }).waitFor();
  }
  await page.locator('#chat-log div', { hasText: 'Bob joined' }).waitFor();
  await other.fill('#chat-text', 'Anyone up for a swim upstream?');
  await other.click('#chat-send');
  await page.locator('#chat-log div', { hasText: 'swim upstream' }).waitFor();
  for (const [size, name] of [
    [DESKTOP, 'desktop'],
    [PHONE, 'phone'],
  ]) {
    await page.setViewportSize(size);
    await assertNoSidewaysScroll(page, `chat at ${size.width} px`);
    await assertUsableControls(page, `chat at ${size.width} px`);
    await page.screenshot({ path: path.join(OUT, `demo-chat-${name}.png`), fullPage: true });
  }
});
