// The demo page's Market tab (issue #17), driven by clicks in headless Chromium (playwright-core):
// the tab opens its own WAMP session at /wamp (wamp.2.json, realm1) only when first opened,
// subscribes to demo.market.tick. by prefix and fills a table and a canvas chart with the ticks;
// a click on a symbol calls demo.market.quote, an unknown symbol shows the WAMP error URI; a
// server restart on the same port is survived with backoff and a new subscription. Screenshots
// at desktop (1280×900) and phone (390×844) widths go to interop/out/demo-market-{desktop,phone}.png,
// and neither width may scroll sideways.
//
//   node --test interop/browser/market.test.mjs
//
// Needs `cargo build --release -p sockeye-cli` (SOCKEYE_BIN or $CARGO_TARGET_DIR/release/sockeye
// overrides the path) and scripts/setup-browser.sh. Without them the tests are skipped, unless
// SOCKEYE_REQUIRE_INTEROP=1, when they fail.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { openDemoPage, repo, servePlainInChromium, skipUnlessReady, startServer, stopServer } from './common.mjs';

const skip = skipUnlessReady();
const OUT = path.join(repo, 'interop/out');
const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };
const SYMBOLS = ['SOCK', 'EYE', 'RUST', 'CRAB', 'TOKIO'];
const PRICE = /^\d+\.\d\d$/;

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

/** A fresh tab on the demo page at `origin` (`openDemoPage` in common.mjs); `sent` holds WAMP messages. */
const openPage = (t, origin = base, expected) => openDemoPage(t, context, origin, { expected, decode: JSON.parse });

/** Opens the Market tab and waits for its WAMP session. */
async function openMarket(page) {
  await page.click('#tab-market');
  await page.locator('#market-state[data-state=open]').waitFor({ timeout: 15000 });
}

/** Waits until the page has seen `n` more tick EVENTs than it had seen when called. */
async function moreTicks(page, n, timeout = 15000) {
  const from = await page.evaluate(() => market.ticks);
  await page.waitForFunction(([from, n]) => market.ticks >= from + n, [from, n], { timeout });
}

/** Neither the document nor any element in it may be wider than the viewport. */
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

/** Text boxes stay wide enough to type in. */
async function assertUsableControls(page, what) {
  const narrow = await page.evaluate(() =>
    [...document.querySelectorAll('input[type=text]')]
      .filter((el) => el.offsetParent !== null && el.getBoundingClientRect().width < 128)
      .map((el) => `#${el.id} ${Math.round(el.getBoundingClientRect().width)} px`),
  );
  assert.deepEqual(narrow, [], `${what}: text boxes too narrow to type in`);
}

/**
 * The chart's coloured pixels: grid lines and labels are grey, so a pixel whose channels differ
 * by 60 or more belongs to a symbol's line. Returns the count and the colours of the table's
 * swatches that show up in the canvas (at least 5 pixels within 40 of each channel).
 */
async function chartInk(page) {
  return page.evaluate(() => {
    const c = document.getElementById('market-chart');
    const pixels = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const swatches = [...document.querySelectorAll('#market-rows tr')].map((row) => {
      const [r, g, b] = getComputedStyle(row.querySelector('.swatch')).backgroundColor.match(/\d+/g).map(Number);
      return { symbol: row.dataset.symbol, rgb: [r, g, b], n: 0 };
    });
    let coloured = 0;
    for (let i = 0; i < pixels.length; i += 4) {
      const [r, g, b, a] = pixels.slice(i, i + 4);
      if (a < 128 || Math.max(r, g, b) - Math.min(r, g, b) < 60) continue;
      coloured++;
      for (const s of swatches) {
        if (Math.abs(s.rgb[0] - r) < 40 && Math.abs(s.rgb[1] - g) < 40 && Math.abs(s.rgb[2] - b) < 40) s.n++;
      }
    }
    return { coloured, lines: swatches.filter((s) => s.n >= 5).map((s) => s.symbol) };
  });
}

test('the Market tab opens one WAMP session at /wamp, and only when it is first opened', { skip, timeout: 30000 }, async (t) => {
  const { page, sockets, sent } = await openPage(t);
  assert.equal(await page.getAttribute('#tab-market', 'role'), 'tab');
  assert.equal(await page.getAttribute('#tab-market', 'aria-selected'), 'false');
  assert.equal(await page.isVisible('#view-market'), false);
  // The other tabs leave /wamp alone.
  await page.click('#tab-chat');
  await page.click('#tab-console');
  await page.waitForTimeout(300);
  assert.deepEqual(sockets, []);

  await openMarket(page);
  assert.equal(await page.textContent('#market-state'), 'open');
  assert.equal(await page.textContent('#market-protocol'), 'wamp.2.json');
  assert.deepEqual(sockets, [`${base.replace('http:', 'ws:')}/wamp`]);
  assert.equal(await page.isVisible('#view-console'), false);
  assert.deepEqual(
    await page.$$eval('[role=tab]', (tabs) => tabs.map((tab) => `${tab.id}=${tab.getAttribute('aria-selected')}`)),
    ['tab-console=false', 'tab-chat=false', 'tab-market=true'],
  );
  // What went on the wire: HELLO for realm1, one prefix subscription, the symbols call.
  const [hello, subscribe] = sent;
  assert.equal(hello[0], 1);
  assert.equal(hello[1], 'realm1');
  assert.deepEqual(hello[2].authmethods, ['anonymous']);
  assert.equal(hello[2].roles.caller.features.progressive_call_results, true);
  assert.deepEqual(subscribe.slice(0, 1).concat(subscribe.slice(2)), [32, { match: 'prefix', get_retained: true }, 'demo.market.tick.']);
  assert.ok(sent.some((m) => m[0] === 48 && m[3] === 'demo.market.symbols'), JSON.stringify(sent));

  // Leaving the tab and coming back reuses the session.
  await page.click('#tab-console');
  await page.click('#tab-market');
  await page.waitForTimeout(300);
  assert.equal(sockets.length, 1);
  assert.equal(await page.textContent('#market-state'), 'open');
});

test('ticks fill the table, the message rate is above 0 and the chart draws a line per symbol', { skip, timeout: 30000 }, async (t) => {
  const { page } = await openPage(t);
  await openMarket(page);
  // demo.market.symbols gives the rows, and ticks fill them.
  await page.waitForFunction(
    (n) => [...document.querySelectorAll('#market-rows tr .last')].filter((td) => td.textContent !== '-').length === n,
    SYMBOLS.length,
    { timeout: 15000 },
  );
  assert.deepEqual(await page.$$eval('#market-rows tr', (rows) => rows.map((r) => r.dataset.symbol)), SYMBOLS);
  for (const symbol of SYMBOLS) {
    const cells = await page.locator(`[data-symbol="${symbol}"] td`).allTextContents();
    assert.equal(cells.length, 3);
    for (const cell of cells) assert.match(cell, PRICE, `${symbol}: ${cells}`);
    const [bid, ask] = cells.map(Number);
    assert.ok(bid <= ask, `${symbol}: bid ${bid} > ask ${ask}`);
  }
  // The table keeps changing: 5 symbols at 10 ticks/s move some price within a second or two.
  const table = await page.textContent('#market-rows');
  await page.waitForFunction((before) => document.getElementById('market-rows').textContent !== before, table, { timeout: 5000 });
  await moreTicks(page, 50);
  const rate = Number(await page.textContent('#market-rate'));
  assert.ok(rate > 0, `messages/s: ${rate}`);
  assert.match(await page.textContent('#market-buffered'), /^\d+$/);

  const ink = await chartInk(page);
  assert.ok(ink.coloured > 100, `the chart has ${ink.coloured} coloured pixels`);
  assert.ok(ink.lines.length >= 3, `lines drawn in the colours of ${ink.lines}`);
});

test('clicking a symbol shows its quote, and an unknown symbol shows demo.market.error.unknown_symbol', { skip, timeout: 30000 }, async (t) => {
  const { page } = await openPage(t);
  await openMarket(page);
  await page.locator('[data-symbol="EYE"] td.last', { hasText: PRICE }).waitFor();

  /** Waits for the quote of `symbol` and checks its numbers. */
  async function quoteShows(symbol) {
    await page.locator('#market-quote .q-symbol', { hasText: new RegExp(`^${symbol}$`) }).waitFor({ timeout: 10000 });
    const [bid, ask, last] = await Promise.all(['bid', 'ask', 'last'].map((f) => page.textContent(`#market-quote .q-${f}`)));
    for (const n of [bid, ask, last]) assert.match(n, PRICE, `${symbol} quote: ${await page.textContent('#market-quote')}`);
    assert.ok(Number(bid) <= Number(ask), `${symbol} quote: bid ${bid} > ask ${ask}`);
    assert.match(await page.textContent('#market-quote .q-seq'), /^\d+$/);
    assert.equal(await page.textContent('#market-error'), '');
  }

  // Anywhere on the row, or its symbol button.
  await page.click('[data-symbol="EYE"] td.last');
  await quoteShows('EYE');
  await page.click('[data-symbol="SOCK"] button');
  await quoteShows('SOCK');

  await page.fill('#market-symbol-input', 'NOPE');
  await page.click('#market-quote-button');
  const error = page.locator('#market-error', { hasText: 'demo.market.error.unknown_symbol' });
  await error.waitFor({ timeout: 10000 });
  assert.equal(await error.isVisible(), true);
  assert.equal(await page.textContent('#market-error code'), 'demo.market.error.unknown_symbol');
  assert.match(await page.textContent('#market-error'), /unknown symbol "NOPE"/);
  assert.equal(await page.locator('#market-quote .q-symbol').count(), 0, 'the old quote is gone');

  // Enter asks too, and a good answer clears the error.
  await page.fill('#market-symbol-input', 'TOKIO');
  await page.press('#market-symbol-input', 'Enter');
  await quoteShows('TOKIO');
});

test('screenshots at desktop (1280×900) and phone (390×844) widths, with no sideways scrolling', { skip, timeout: 60000 }, async (t) => {
  const { page } = await openPage(t);
  await openMarket(page);
  await moreTicks(page, 100);
  await page.click('[data-symbol="SOCK"]');
  await page.locator('#market-quote .q-symbol', { hasText: 'SOCK' }).waitFor();
  for (const [size, name] of [
    [DESKTOP, 'desktop'],
    [PHONE, 'phone'],
  ]) {
    await page.setViewportSize(size);
    await moreTicks(page, 10); // a redraw at the new size
    await assertNoSidewaysScroll(page, `market at ${size.width} px`);
    await assertUsableControls(page, `market at ${size.width} px`);
    const ink = await chartInk(page);
    assert.ok(ink.coloured > 100, `market at ${size.width} px: the chart has ${ink.coloured} coloured pixels`);
    await page.screenshot({ path: path.join(OUT, `demo-market-${name}.png`), fullPage: true });
  }
  await page.setViewportSize(DESKTOP);
});

test('after a server restart on the same port the tab reconnects with backoff and ticks flow again', { skip, timeout: 90000 }, async (t) => {
  let { proc, addr } = await startServer();
  t.after(() => stopServer(proc));
  // While the server is down, each attempt makes Chromium log that its WebSocket failed.
  let restarting = false;
  const refused = new RegExp(`^WebSocket connection to 'ws://${addr.replace(/\./g, '\\.')}/wamp' failed: `);
  const { page, sockets, sent } = await openPage(t, `http://${addr}`, (text) => restarting && refused.test(text));
  await openMarket(page);
  await moreTicks(page, 20);

  // Killed: the socket drops (1006), and the tab counts down to its next attempt.
  restarting = true;
  await stopServer(proc);
  await page.locator('#market-state[data-state=reconnecting]', { hasText: /^reconnecting in \d+\.\d s$/ }).waitFor({ timeout: 5000 });
  // Let one attempt fail against the closed port before the server comes back.
  await page.waitForFunction(() => market.attempt >= 2, null, { timeout: 5000 });
  const attemptsWhileDown = sockets.length - 1;
  ({ proc } = await startServer(['--listen', addr], { plain: false }));
  await page.locator('#market-state[data-state=open]').waitFor({ timeout: 10000 });
  restarting = false;
  // 0.25-0.5 s, then 0.5-1 s: a couple of attempts, not a storm.
  assert.ok(attemptsWhileDown >= 1 && attemptsWhileDown <= 3, `${attemptsWhileDown} attempts while the server was down`);
  assert.equal(await page.textContent('#market-protocol'), 'wamp.2.json');
  await moreTicks(page, 20);
  const subscriptions = sent.filter((m) => m[0] === 32 && m[3] === 'demo.market.tick.');
  assert.ok(subscriptions.length >= 2, 'subscribed again on the new session');

  // Shut down gracefully (SIGTERM): the router says GOODBYE, the tab answers and comes back.
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  restarting = true;
  proc.kill('SIGTERM');
  await page.waitForFunction(() => market.attempt >= 1, null, { timeout: 10000 });
  await exited;
  assert.ok(
    sent.some((m) => m[0] === 6 && m[2] === 'wamp.close.goodbye_and_out'),
    'the tab answered the GOODBYE',
  );
  ({ proc } = await startServer(['--listen', addr], { plain: false }));
  await page.locator('#market-state[data-state=open]').waitFor({ timeout: 15000 });
  restarting = false;
  await moreTicks(page, 20);
  await page.click('[data-symbol="CRAB"]');
  await page.locator('#market-quote .q-symbol', { hasText: 'CRAB' }).waitFor({ timeout: 10000 });
});
