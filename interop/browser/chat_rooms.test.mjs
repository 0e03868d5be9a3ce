// The demo page's chat rooms (issue #15), driven by clicks in headless Chromium (playwright-core).
// The Chat tab's room field joins /chat/ROOM?name=NAME offering the `sockeye.chat.v1`
// subprotocol, and shows the JSON protocol: messages with their sender, the member count, join
// and leave notices. Tabs in two rooms see only their own room's messages. A tab that leaves
// the page and comes back rejoins with since/epoch and is given what it missed (recovered). A
// tab whose socket drops comes back by itself with backoff: after a restart of a lone
// `sockeye serve` the history is gone (a new epoch: recovered false), while with two nodes over
// NATS (JetStream keeps the log) it is given what a tab on the other node said meanwhile. A
// console socket on /chat without the subprotocol still gets the seed's plain text.
//
//   node --test interop/browser/chat_rooms.test.mjs
//
// Needs `cargo build --release -p sockeye-cli` (SOCKEYE_BIN or $CARGO_TARGET_DIR/release/sockeye
// overrides the path) and scripts/setup-browser.sh; the two-node test also needs nats-server
// (SOCKEYE_NATS_SERVER overrides /usr/sbin/nats-server). Without them the tests are skipped,
// unless SOCKEYE_REQUIRE_INTEROP=1, when they fail.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openDemoPage, servePlainInChromium, skipUnlessReady, startServer, stopServer } from './common.mjs';

const NATS = process.env.SOCKEYE_NATS_SERVER ?? '/usr/sbin/nats-server';
const skip = skipUnlessReady();
const skipCluster = skip || skipUnlessReady([[NATS, 'apt-get install nats-server']]);

let served;
let context;
let base;

before(async () => {
  if (skip) return;
  served = await servePlainInChromium();
  ({ base, context } = served);
});

after(async () => {
  await served?.close();
});

/** A fresh tab on the demo page at `origin`: `openDemoPage` in common.mjs. */
const openPage = (t, origin = base, expected) => openDemoPage(t, context, origin, { expected });

/** Joins `room` as `name` from the Chat tab and waits for the welcome. */
async function join(page, room, name) {
  await page.click('#tab-chat');
  await page.fill('#chat-room', room);
  await page.fill('#chat-name', name);
  await page.click('#chat-join');
  await inRoom(page, room, name);
}

async function inRoom(page, room, name, timeout = 10000) {
  await page.locator('#chat-state', { hasText: `(as ${name} in ${room})` }).waitFor({ timeout });
}

async function say(page, text) {
  await page.fill('#chat-text', text);
  await page.press('#chat-text', 'Enter');
}

/** Waits for a line of the chat log containing `text`. */
async function sees(page, text, timeout = 10000) {
  await page.locator('#chat-log div', { hasText: text }).waitFor({ timeout });
}

/** The chat log's messages (lines with a sender), and their offsets. */
const messages = (page) => page.locator('#chat-log div:has(.name)').allTextContents();
const offsets = (page) => page.$$eval('#chat-log div:has(.name)', (lines) => lines.map((l) => l.dataset.offset));

const settle = () => new Promise((resolve) => setTimeout(resolve, 300));

test('tabs in two rooms: each room\'s messages reach only its members, and the shared room counts 2', { skip, timeout: 30000 }, async (t) => {
  const alice = await openPage(t);
  const bob = await openPage(t);
  const carol = await openPage(t);
  // A room name the server would refuse is caught before any socket is opened.
  await bob.page.click('#tab-chat');
  await bob.page.fill('#chat-room', 'two words');
  await bob.page.click('#chat-join');
  await sees(bob.page, 'a room name is 1 to 64 of A-Z, a-z, 0-9, - and _');
  assert.deepEqual(bob.sockets, []);

  await join(alice.page, 'salmon', 'Alice');
  await join(bob.page, 'trout', 'Bob');
  await join(carol.page, 'salmon', 'Carol');
  const ws = base.replace('http:', 'ws:');
  assert.deepEqual(alice.sockets, [`${ws}/chat/salmon?name=Alice`]);
  assert.deepEqual(bob.sockets, [`${ws}/chat/trout?name=Bob`]);
  for (const { page } of [alice, bob, carol]) {
    assert.equal(await page.evaluate(() => chat.ws.protocol), 'sockeye.chat.v1');
  }
  await sees(alice.page, 'Carol joined · 2 here');
  assert.equal(await alice.page.textContent('#chat-count'), '2');
  assert.equal(await carol.page.textContent('#chat-count'), '2');
  assert.equal(await bob.page.textContent('#chat-count'), '1');
  const members = async (page) => (await page.textContent('#chat-members')).split(', ').sort();
  assert.deepEqual(await members(alice.page), ['Alice', 'Carol']);
  assert.deepEqual(await members(carol.page), ['Alice', 'Carol']);
  assert.deepEqual(await members(bob.page), ['Bob']);

  await say(alice.page, 'salmon only');
  await sees(carol.page, 'Alice: salmon only');
  await say(bob.page, 'trout only');
  await say(carol.page, 'also salmon');
  await sees(alice.page, 'Carol: also salmon');
  await sees(bob.page, 'Bob: trout only');
  await settle();
  // Everyone sees their own room's messages, their own included, once, in order; each room
  // has its own log, its offsets counting from 1.
  assert.deepEqual(await messages(alice.page), ['Alice: salmon only', 'Carol: also salmon']);
  assert.deepEqual(await messages(carol.page), await messages(alice.page));
  assert.deepEqual(await messages(bob.page), ['Bob: trout only']);
  assert.deepEqual(await offsets(alice.page), ['1', '2']);
  assert.deepEqual(await offsets(bob.page), ['1']);
  // What the page sends is the plain text.
  assert.deepEqual(alice.sent, ['salmon only']);

  await carol.page.click('#chat-leave');
  await sees(carol.page, 'you left salmon');
  assert.equal(await carol.page.textContent('#chat-state'), '(offline)');
  await sees(alice.page, 'Carol left · 1 here');
  assert.equal(await alice.page.textContent('#chat-count'), '1');
  assert.deepEqual(await members(alice.page), ['Alice']);
});

test('a tab that leaves the page and comes back rejoins with since and epoch and is given what it missed', { skip, timeout: 30000 }, async (t) => {
  const alice = await openPage(t);
  const carol = await openPage(t);
  await join(alice.page, 'reload', 'Alice');
  await join(carol.page, 'reload', 'Carol');
  await say(alice.page, 'before');
  await sees(alice.page, 'Alice: before');
  const epoch = await alice.page.textContent('#chat-epoch');
  assert.equal(await alice.page.textContent('#chat-offset'), '1');

  // Alice is away while Carol says two things.
  await alice.page.goto('about:blank');
  await sees(carol.page, 'Alice left · 1 here');
  await say(carol.page, 'missed 1');
  await sees(carol.page, 'Carol: missed 1');
  await say(carol.page, 'missed 2');
  await sees(carol.page, 'Carol: missed 2');

  // Back on the page, the tab goes back into its room by itself, from where it was.
  await alice.page.goto(`${base}/`);
  await inRoom(alice.page, 'reload', 'Alice');
  assert.equal(await alice.page.isVisible('#view-chat'), true);
  assert.equal(await alice.page.inputValue('#chat-room'), 'reload');
  assert.equal(await alice.page.inputValue('#chat-name'), 'Alice');
  const ws = base.replace('http:', 'ws:');
  assert.equal(alice.sockets.at(-1), `${ws}/chat/reload?name=Alice&since=1&epoch=${encodeURIComponent(epoch)}`);
  await sees(alice.page, 'Carol: missed 2');
  assert.equal(await alice.page.textContent('#chat-recovery'), 'recovered 2');
  assert.equal(await alice.page.textContent('#chat-offset'), '3');
  await say(carol.page, 'live again');
  await sees(alice.page, 'Carol: live again');
  await settle();
  assert.deepEqual(await alice.page.locator('#chat-log div').allTextContents(), [
    'back in reload as Alice: recovered 2 missed messages',
    'Carol: missed 1',
    'Carol: missed 2',
    'Carol: live again',
  ]);
  assert.deepEqual(await offsets(alice.page), ['2', '3', '4']);
  await sees(carol.page, 'Alice joined · 2 here');

  // A plain reload with nothing said meanwhile: back in, nothing missed.
  await alice.page.reload();
  await inRoom(alice.page, 'reload', 'Alice');
  assert.equal(await alice.page.textContent('#chat-recovery'), 'recovered 0');
  assert.equal(alice.sockets.at(-1), `${ws}/chat/reload?name=Alice&since=4&epoch=${encodeURIComponent(epoch)}`);
});

test('after a restart of a lone server the tab reconnects with backoff, and is told its history is gone', { skip, timeout: 60000 }, async (t) => {
  let { proc, addr } = await startServer();
  t.after(() => stopServer(proc));
  // While the server is down, each attempt makes Chromium log that its WebSocket failed.
  let restarting = false;
  const refused = new RegExp(`^WebSocket connection to 'ws://${addr.replace(/\./g, '\\.')}/chat/upriver\\?\\S*' failed: `);
  const { page, sockets } = await openPage(t, `http://${addr}`, (text) => restarting && refused.test(text));
  await join(page, 'upriver', 'Alice');
  await say(page, 'before');
  await sees(page, 'Alice: before');
  const epoch = await page.textContent('#chat-epoch');

  restarting = true;
  await stopServer(proc);
  await sees(page, 'connection lost (code 1006); reconnecting');
  await page.locator('#chat-state[data-state=reconnecting]', { hasText: /^\(reconnecting in \d+\.\d s\)$/ }).waitFor({ timeout: 5000 });
  assert.equal(await page.isDisabled('#chat-send'), true, 'no sending while reconnecting');
  // Let one attempt fail against the closed port before the server comes back.
  await page.waitForFunction(() => chat.attempt >= 2, null, { timeout: 5000 });
  const attemptsWhileDown = sockets.length - 1;
  ({ proc } = await startServer(['--listen', addr], { plain: false }));
  await inRoom(page, 'upriver', 'Alice', 15000);
  restarting = false;
  assert.ok(attemptsWhileDown >= 1 && attemptsWhileDown <= 3, `${attemptsWhileDown} attempts while the server was down`);
  assert.match(sockets.at(-1), new RegExp(`/chat/upriver\\?name=Alice&since=1&epoch=${epoch}$`));
  // The new process keeps a new log: the offset it was asked about is not from it.
  await sees(page, 'back in upriver as Alice: could not recover what was missed (history gone or a new epoch)');
  assert.equal(await page.textContent('#chat-recovery'), 'not recovered');
  assert.notEqual(await page.textContent('#chat-epoch'), epoch);
  await say(page, 'after');
  await sees(page, 'Alice: after');
  assert.deepEqual(await offsets(page), ['1', '1']);
});

/** `nats-server -js` on a free loopback port, its store in a temporary directory. */
async function startNats() {
  const port = await new Promise((resolve) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
  const store = mkdtempSync(path.join(tmpdir(), 'sockeye-nats-'));
  const proc = spawn(NATS, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', store], { stdio: 'ignore' });
  for (let i = 0; ; i++) {
    const up = await new Promise((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => resolve(socket.end() && true)).on('error', () => resolve(false));
    });
    if (up) break;
    if (i === 200) throw new Error(`nats-server did not listen on ${port}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return {
    url: `nats://127.0.0.1:${port}`,
    async stop() {
      await stopServer(proc);
      rmSync(store, { recursive: true, force: true });
    },
  };
}

test('tabs on two nodes over NATS chat, and a tab whose node is killed and restarted gets what it missed', { skip: skipCluster, timeout: 90000 }, async (t) => {
  const nats = await startNats();
  const node = (name, listen = []) =>
    startServer([...listen, '--cluster', nats.url, '--node-name', name], { plain: listen.length === 0 });
  let one;
  let two;
  t.after(async () => {
    await stopServer(one?.proc);
    await stopServer(two?.proc);
    await nats.stop();
  });
  one = await node('one');
  two = await node('two');
  let restarting = false;
  const refused = new RegExp(`^WebSocket connection to 'ws://${one.addr.replace(/\./g, '\\.')}/chat/estuary\\?\\S*' failed: `);
  const alice = await openPage(t, `http://${one.addr}`, (text) => restarting && refused.test(text));
  const carol = await openPage(t, `http://${two.addr}`);
  await join(alice.page, 'estuary', 'Alice');
  await join(carol.page, 'estuary', 'Carol');
  // Presence crosses nodes (within 10 s, by issue #15's bound).
  await sees(alice.page, 'Carol joined · 2 here');
  assert.equal(await carol.page.textContent('#chat-count'), '2');
  await say(alice.page, 'from node one');
  await sees(carol.page, 'Alice: from node one');
  await say(carol.page, 'from node two');
  await sees(alice.page, 'Carol: from node two');
  const epoch = await alice.page.textContent('#chat-epoch');
  assert.equal(await alice.page.textContent('#chat-offset'), '2');

  // Alice's node dies; Carol, on the other node, talks on.
  restarting = true;
  await stopServer(one.proc);
  await sees(alice.page, 'connection lost (code 1006); reconnecting');
  await say(carol.page, 'while one was down 1');
  await sees(carol.page, 'Carol: while one was down 1');
  await say(carol.page, 'while one was down 2');
  await sees(carol.page, 'Carol: while one was down 2');
  one = await node('one', ['--listen', one.addr]);
  await inRoom(alice.page, 'estuary', 'Alice', 20000);
  restarting = false;
  assert.match(alice.sockets.at(-1), new RegExp(`/chat/estuary\\?name=Alice&since=2&epoch=${epoch}$`));
  await sees(alice.page, 'Carol: while one was down 2');
  assert.equal(await alice.page.textContent('#chat-recovery'), 'recovered 2');
  await say(carol.page, 'live');
  await sees(alice.page, 'Carol: live');
  await settle();
  assert.deepEqual(await messages(alice.page), [
    'Alice: from node one',
    'Carol: from node two',
    'Carol: while one was down 1',
    'Carol: while one was down 2',
    'Carol: live',
  ]);
  assert.deepEqual(await offsets(alice.page), ['1', '2', '3', '4', '5']);
  assert.deepEqual(await messages(carol.page), await messages(alice.page));
  assert.ok(
    (await alice.page.locator('#chat-log div').allTextContents()).includes('back in estuary as Alice: recovered 2 missed messages'),
  );
});

test('a console socket on /chat without the subprotocol still gets the seed\'s plain text', { skip, timeout: 30000 }, async (t) => {
  const console_ = await openPage(t);
  await console_.page.selectOption('#endpoint', '/chat');
  await console_.page.fill('#protocols', '');
  await console_.page.click('#connect');
  await console_.page.locator('#log div', { hasText: 'open  protocol=""' }).waitFor();
  const alice = await openPage(t);
  await join(alice.page, 'lobby', 'Alice');
  await say(alice.page, 'plain for the seed');
  await sees(alice.page, 'Alice: plain for the seed');
  const line = console_.page.locator('#log .in', { hasText: 'plain for the seed' });
  await line.waitFor({ timeout: 10000 });
  assert.match(await line.textContent(), /← message text "plain for the seed"$/);
  await settle();
  // Only the message: presence and welcomes are for the JSON protocol.
  assert.equal(await console_.page.locator('#log .in').count(), 1);
});
