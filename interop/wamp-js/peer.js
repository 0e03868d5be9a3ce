// An autobahn-js WAMP peer for the interop tests (interop/tests/wamp_autobahn.rs).
//
//   node peer.js URL REALM SERIALIZER ROLE
//
// SERIALIZER: json | msgpack | cbor. ROLE: callee | caller | subscriber | publisher | auth |
// timeout_caller | market (the demo market of `sockeye serve`: ticks by prefix subscription,
// quotes, an unknown symbol, progressive history) | driven (commands on stdin, for the cluster
// tests: the protocol is described as DRIVEN in interop/python/wamp_peer.py).
// With WAMP_AUTH='{"method": "ticket|wampcra|cryptosign", "authid": ..., "secret": ...,
// "seed_hex": ...}' in the environment the peer authenticates; role "auth" prints the WELCOME's
// authid, authrole and authmethod and leaves.
// The contract is the same as interop/python/wamp_peer.py: every line on stdout is one JSON
// object; "READY" lines mean registrations or subscriptions are in place; checks print
// {"check": name, "ok": bool, ...}.
'use strict';

const autobahn = require('autobahn');
const nacl = require('tweetnacl');

const [url, realm, serializerName, role] = process.argv.slice(2);
const serializers = {
  json: () => new autobahn.serializer.JSONSerializer(),
  msgpack: () => new autobahn.serializer.MsgpackSerializer(),
  cbor: () => new autobahn.serializer.CBORSerializer(),
};
if (!serializers[serializerName] || !role) {
  console.error('usage: node peer.js URL REALM json|msgpack|cbor callee|caller|subscriber|publisher');
  process.exit(2);
}

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function check(name, ok, detail) {
  out({ check: name, ok: !!ok, detail: detail === undefined ? null : detail });
}

// Deep equality on JSON-like values.
function same(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

const ECHO_ARGS = ['héllo 🌍', 1.5, -7, [1, { a: null }], true];
const ECHO_KWARGS = { x: [true, false], nested: { s: 'ü' }, big: 9007199254740991 };

async function callee(session) {
  await session.register('com.interop.add2', (args) => args[0] + args[1]);
  await session.register('com.interop.echo', (args, kwargs) => new autobahn.Result(args || [], kwargs || {}));
  await session.register('com.interop.countdown', async (args, kwargs, details) => {
    const n = args[0];
    for (let i = n; i >= 1; i--) {
      if (details.progress) {
        details.progress([i]);
      }
    }
    return 'liftoff';
  });
  await session.register('com.interop.fail', () => {
    throw new autobahn.Error('com.interop.error.failed', [1, 'two'], { why: 'because' });
  });
  // Callers are named in the invocation when they ask (disclose_me) or when the
  // registration says so (disclose_caller).
  await session.register('com.interop.whoami', (args, kwargs, details) => details.caller || null, {
    disclose_caller: true,
  });
  out({ ready: true });
}

async function caller(session) {
  check('add2', (await session.call('com.interop.add2', [2, 3])) === 5);

  const echoed = await session.call('com.interop.echo', ECHO_ARGS, ECHO_KWARGS);
  check('echo args/kwargs', same(echoed.args, ECHO_ARGS) && same(echoed.kwargs, ECHO_KWARGS), echoed);

  const progress = [];
  const final = await session.call('com.interop.countdown', [3], {}, {
    receive_progress: true,
  }).then(
    (r) => r,
    (e) => e,
    (p) => progress.push(p.args ? p.args[0] : p),
  );
  check('progressive results', same(progress, [3, 2, 1]) && final === 'liftoff', { progress, final });

  try {
    await session.call('com.interop.fail');
    check('error with args/kwargs', false, 'no error');
  } catch (e) {
    check(
      'error with args/kwargs',
      e.error === 'com.interop.error.failed' && same(e.args, [1, 'two']) && same(e.kwargs, { why: 'because' }),
      { error: e.error, args: e.args, kwargs: e.kwargs },
    );
  }

  try {
    await session.call('com.interop.nothing');
    check('no such procedure', false, 'no error');
  } catch (e) {
    check('no such procedure', e.error === 'wamp.error.no_such_procedure', e.error);
  }

  const who = await session.call('com.interop.whoami', [], {}, { disclose_me: true });
  check('caller disclosure', who === session.id, { who, me: session.id });
  out({ done: true });
}

async function subscriber(session) {
  const events = [];
  let finish;
  const finished = new Promise((resolve) => { finish = resolve; });
  const onEvent = (args, kwargs, details) => {
    events.push({ args: args || [], kwargs: kwargs || {}, topic: details.topic || null });
    if (kwargs && kwargs.last) {
      finish();
    }
  };
  await session.subscribe('com.interop.topic', onEvent);
  await session.subscribe('com.interop.prefix', onEvent, { match: 'prefix' });
  out({ ready: true });
  await finished;
  out({ events });
}

async function publisher(session) {
  let acks = 0;
  for (let i = 1; i <= 3; i++) {
    await session.publish('com.interop.topic', [i, `msg ${i}`], { i, s: 'ü' }, { acknowledge: true });
    acks++;
  }
  await session.publish('com.interop.prefix.sub', ['via prefix'], {}, { acknowledge: true });
  await session.publish('com.interop.topic', [], { last: true }, { acknowledge: true });
  acks += 2;
  out({ published: acks });
  out({ done: true });
}

// Calls a procedure that never answers with a 300 ms timeout: the router cancels it.
async function timeout_caller(session) {
  try {
    await session.call('com.interop.never', [], {}, { timeout: 300 });
    check('call timeout', false, 'no error');
  } catch (e) {
    check('call timeout', e.error === 'wamp.error.timeout', e.error || String(e));
  }
  out({ done: true });
}

async function market(session) {
  const ticks = {};
  const wrongTopics = [];
  let enough;
  const gotEnough = new Promise((resolve) => { enough = resolve; });
  await session.subscribe('demo.market.tick.', ([tick], kwargs, details) => {
    if (details.topic !== `demo.market.tick.${tick.symbol}`) wrongTopics.push(details.topic);
    (ticks[tick.symbol] ??= []).push(tick.seq);
    const all = Object.values(ticks);
    if (all.length === 5 && all.every((s) => s.length >= 6)) enough();
  }, { match: 'prefix' });
  await Promise.race([
    gotEnough,
    new Promise((_, reject) => setTimeout(() => reject(new Error('too few ticks in 10 s')), 10000)),
  ]);
  const inOrder = Object.values(ticks).every((s) => s.every((x, i) => i === 0 || s[i - 1] < x));
  check('ticks of every symbol, in order, on their topics', inOrder && wrongTopics.length === 0, { ticks, wrongTopics });

  const symbols = await session.call('demo.market.symbols');
  check('symbols', same([...symbols].sort(), Object.keys(ticks).sort()), symbols);

  const quote = await session.call('demo.market.quote', ['SOCK']);
  check('quote', quote.symbol === 'SOCK' && quote.bid > 0 && quote.bid < quote.ask && quote.time.endsWith('Z'), quote);

  try {
    await session.call('demo.market.quote', ['NOPE']);
    check('unknown symbol', false, 'no error');
  } catch (e) {
    check('unknown symbol', e.error === 'demo.market.error.unknown_symbol', e.error || String(e));
  }

  const progress = [];
  const final = await session.call('demo.market.history', ['CRAB', 5], {}, { receive_progress: true }).then(
    (r) => r,
    (e) => { throw e; },
    (p) => progress.push(p.args ? p.args[0] : p),
  );
  const seqs = progress.map((t) => t.seq);
  check(
    'progressive history',
    final === 5 && seqs.length === 5 && seqs.every((x, i) => i === 0 || seqs[i - 1] < x) && progress.every((t) => t.symbol === 'CRAB'),
    { final, seqs },
  );
  out({ done: true });
}

function resultArgs(r) {
  if (r instanceof autobahn.Result) return r.args || [];
  return r === undefined || r === null ? [] : [r];
}

async function driven(session) {
  const calls = {};
  out({ ready: true, session: session.id });
  const lines = require('readline').createInterface({ input: process.stdin });
  for await (const line of lines) {
    const c = JSON.parse(line);
    if (c.op === 'leave') break;
    if (c.op === 'subscribe') {
      await session.subscribe(c.topic, (args, kwargs, details) => {
        out({ event: c.tag, args: args || [], topic: details.topic || null, publisher: details.publisher ?? null });
      }, { match: c.match || 'exact' });
      out({ subscribed: c.tag });
    } else if (c.op === 'publish') {
      try {
        await session.publish(c.topic, c.args || [], {}, { acknowledge: true, ...(c.options || {}) });
        out({ published: c.tag });
      } catch (e) {
        out({ error: c.tag, uri: e.error || String(e) });
      }
    } else if (c.op === 'register') {
      const procedure = c.procedure;
      const proc = c.kind === 'countdown'
        ? (args, kwargs, details) => {
          for (let i = args[0]; i >= 1; i--) {
            if (details.progress) details.progress([i]);
          }
          return 'liftoff';
        }
        : () => {
          out({ invoked: procedure });
          return new Promise(() => {});
        };
      await session.register(procedure, proc);
      out({ registered: procedure });
    } else if (c.op === 'call') {
      // Not awaited: a cancel, or a kill of the callee's node, comes while it runs.
      const call = session.call(c.procedure, c.args || [], {}, c.options || {});
      calls[c.tag] = call;
      call.then(
        (r) => out({ result: c.tag, args: resultArgs(r) }),
        (e) => out({ error: c.tag, uri: e.error || String(e) }),
        (p) => out({ progress: c.tag, args: p.args || [p] }),
      );
    } else if (c.op === 'cancel') {
      calls[c.tag].cancel({ mode: 'kill' });
    } else {
      check('known command', false, c);
    }
  }
}

const roles = { callee, caller, subscriber, publisher, timeout_caller, market, driven, auth: async () => {} };
const options = {
  url,
  realm,
  serializers: [serializers[serializerName]()],
  max_retries: 0,
};
const auth = process.env.WAMP_AUTH ? JSON.parse(process.env.WAMP_AUTH) : null;
if (auth) {
  options.authmethods = [auth.method];
  options.authid = auth.authid;
  let keyPair = null;
  if (auth.method === 'cryptosign') {
    keyPair = nacl.sign.keyPair.fromSeed(Uint8Array.from(Buffer.from(auth.seed_hex, 'hex')));
    options.authextra = { pubkey: autobahn.auth_cryptosign.public_key(keyPair) };
  }
  options.onchallenge = (session, method, extra) => {
    if (method === 'ticket') {
      return auth.secret;
    }
    if (method === 'wampcra') {
      const key = extra.salt
        ? autobahn.auth_cra.derive_key(auth.secret, extra.salt, extra.iterations, extra.keylen)
        : auth.secret;
      return autobahn.auth_cra.sign(key, extra.challenge);
    }
    if (method === 'cryptosign') {
      return autobahn.auth_cryptosign.sign_challenge(keyPair, extra);
    }
    throw new Error(`unexpected challenge ${method}`);
  };
}
const connection = new autobahn.Connection(options);

let opened = false;
connection.onopen = (session, details) => {
  opened = true;
  if (role === 'auth') {
    out({ welcome: { authid: details.authid, authrole: details.authrole, authmethod: details.authmethod } });
  }
  roles[role](session).then(
    () => {
      if (role !== 'callee') {
        connection.close();
      }
    },
    (e) => {
      out({ check: 'unexpected exception', ok: false, detail: String(e && (e.error || e.stack || e)) });
      process.exit(1);
    },
  );
};

connection.onclose = (reason, details) => {
  // An ABORT (refused authentication) ends a connection that never opened, cleanly.
  const ok = opened && reason === 'closed';
  if (!ok) {
    out({ closed: reason, details: details && details.reason });
  }
  process.exit(ok ? 0 : 1);
  return true;
};

connection.open();
