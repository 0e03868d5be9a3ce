#!/usr/bin/env python3
"""Run interop scenarios with Python `websockets` against an ECHO server.

Usage: client_scenarios.py URL [--compression {none,deflate}] [--only a,b]

The server at URL must echo every message with the same type (text/binary)
and echo the client's close code and reason in its close frame.

stdout protocol: one JSON object per line, one line per scenario, in the
fixed order of SCENARIOS below (or of --only):
    {"scenario": "<name>", "ok": true|false, "detail": "<text>"}
JSON is ASCII-only (non-ASCII escaped). Nothing else is written to stdout;
a one-line summary goes to stderr. Exit status: 0 if every scenario passed,
1 if any failed, 2 on bad arguments.

Scenarios share one connection, except close_code_reason which uses its own.
After a failed scenario the shared connection is dropped and the next
scenario gets a fresh one, so one failure does not cascade. Each scenario has
a 10 s timeout (connection setup included).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import sys
import time
from typing import Awaitable, Callable

from websockets.asyncio.client import ClientConnection, connect
from websockets.protocol import State

TIMEOUT = 10.0
MIB = 1024 * 1024
MAX_SIZE = 64 * MIB


class Fail(Exception):
    pass


def check(cond: bool, msg: str) -> None:
    if not cond:
        raise Fail(msg)


def describe(value: object) -> str:
    if isinstance(value, (str, bytes)):
        kind = "str" if isinstance(value, str) else "bytes"
        r = repr(value)
        if len(r) > 80:
            r = r[:77] + "..."
        return f"{kind}(len={len(value)}) {r}"
    return repr(value)


async def expect_echo(ws: ClientConnection, expected: str | bytes) -> str:
    got = await ws.recv()
    check(type(got) is type(expected),
          f"expected {type(expected).__name__}, got {describe(got)}")
    check(got == expected, f"payload mismatch: expected {describe(expected)}, got {describe(got)}")
    return f"echoed {describe(got)}"


def sha(data: str | bytes) -> str:
    if isinstance(data, str):
        data = data.encode()
    return hashlib.sha256(data).hexdigest()


async def expect_large(ws: ClientConnection, payload: str | bytes) -> str:
    got = await ws.recv()
    check(type(got) is type(payload),
          f"expected {type(payload).__name__}, got {type(got).__name__} len={len(got)}")
    check(len(got) == len(payload), f"length mismatch: sent {len(payload)}, got {len(got)}")
    h_sent, h_got = sha(payload), sha(got)
    check(h_sent == h_got, f"sha256 mismatch: sent {h_sent}, got {h_got}")
    n = len(got.encode()) if isinstance(got, str) else len(got)
    return f"{type(got).__name__} {n} bytes sha256={h_got[:16]}..."


def random_text(n_bytes: int) -> str:
    """Random text whose UTF-8 encoding is exactly n_bytes long (1-4 byte chars)."""
    rng = random.Random(os.urandom(8))
    alphabet = list("abcdefghijklmnopqrstuvwxyz0123456789 ") + ["é", "ß", "中", "語", "🌍", "🦀"]
    s = "".join(rng.choices(alphabet, k=n_bytes // 2))
    b = s.encode()[:n_bytes].decode("utf-8", errors="ignore")
    return b + "x" * (n_bytes - len(b.encode()))


# --- scenarios on the shared connection -------------------------------------

async def sc_handshake(ws: ClientConnection, opts) -> str:
    exts = [e.name for e in ws.protocol.extensions]
    ext_hdr = ws.response.headers.get("Sec-WebSocket-Extensions") if ws.response else None
    if opts.compression == "deflate":
        check("permessage-deflate" in exts,
              f"permessage-deflate not negotiated (server header: {ext_hdr!r})")
    else:
        check(not exts, f"unexpected extensions negotiated: {ext_hdr!r}")
    return f"status={ws.response.status_code} extensions={ext_hdr!r}"


async def sc_text(ws, opts) -> str:
    msg = "héllo 🌍"
    await ws.send(msg)
    return await expect_echo(ws, msg)


async def sc_binary(ws, opts) -> str:
    msg = bytes(range(256))
    await ws.send(msg)
    return await expect_echo(ws, msg)


async def sc_empty_text(ws, opts) -> str:
    await ws.send("")
    return await expect_echo(ws, "")


async def sc_empty_binary(ws, opts) -> str:
    await ws.send(b"")
    return await expect_echo(ws, b"")


async def sc_large_text(ws, opts) -> str:
    payload = random_text(4 * MIB)
    await ws.send(payload)
    return await expect_large(ws, payload)


async def sc_large_binary(ws, opts) -> str:
    payload = os.urandom(4 * MIB)
    await ws.send(payload)
    return await expect_large(ws, payload)


async def sc_large_text_8mib(ws, opts) -> str:
    payload = random_text(8 * MIB)
    await ws.send(payload)
    return await expect_large(ws, payload)


async def sc_large_binary_8mib(ws, opts) -> str:
    payload = os.urandom(8 * MIB)
    await ws.send(payload)
    return await expect_large(ws, payload)


async def sc_fragmented_text(ws, opts) -> str:
    frags = ["frag-", "ment-", "ed ✓"]
    await ws.send(frags)
    return "3 fragments; " + await expect_echo(ws, "".join(frags))


async def sc_fragmented_binary(ws, opts) -> str:
    frags = [b"\x00\x01\x02", b"\x03\x04\x05\x06", b"\xfd\xfe\xff"]
    await ws.send(frags)
    return "3 fragments; " + await expect_echo(ws, b"".join(frags))


async def sc_fragmented_text_split_utf8(ws, opts) -> str:
    # Code points split across fragment boundaries: é = C3 A9, 🌍 = F0 9F 8C 8D.
    # Legal per RFC 6455 (UTF-8 validity applies to the whole message).
    frags = [b"split-h\xc3", b"\xa9llo-\xf0\x9f", b"\x8c", b"\x8d-end"]
    await ws.send(frags, text=True)
    return "4 fragments; " + await expect_echo(ws, "split-héllo-🌍-end")


async def sc_ping(ws, opts) -> str:
    pong = await ws.ping(b"payload")
    latency = await asyncio.wait_for(pong, TIMEOUT)
    return f"pong for b'payload' after {latency * 1000:.2f} ms"


async def sc_many_small(ws, opts) -> str:
    n = 1000
    msgs: list[str | bytes] = []
    for i in range(n):
        s = f"msg-{i:06d}-".ljust(20, ".")  # exactly 20 bytes
        msgs.append(s if i % 2 == 0 else s.encode())  # alternate text / binary

    async def sender() -> None:
        for m in msgs:
            await ws.send(m)

    async def receiver() -> None:
        for i, m in enumerate(msgs):
            got = await ws.recv()
            check(type(got) is type(m) and got == m,
                  f"message #{i}: expected {describe(m)}, got {describe(got)}")

    await asyncio.gather(sender(), receiver())
    return f"{n} x 20-byte messages (alternating text/binary) echoed in order"


# --- scenario on its own connection ------------------------------------------

async def sc_close_code_reason(url: str, opts) -> str:
    async with connect(url, **connect_kwargs(opts)) as ws:
        t0 = time.monotonic()
        await ws.close(4000, "done here")
        elapsed = time.monotonic() - t0
        rcvd = ws.protocol.close_rcvd
        check(rcvd is not None, "no close frame received from server")
        check(rcvd.code == 4000 and rcvd.reason == "done here",
              f"server close frame was code={rcvd.code} reason={rcvd.reason!r}, "
              f"expected code=4000 reason='done here'")
        check(ws.state is State.CLOSED, f"connection state {ws.state.name}, expected CLOSED")
        # RFC 6455 7.1.1: after the closing handshake the server should close
        # TCP first; websockets waits for that up to close_timeout.
        check(elapsed < 5.0,
              f"close frame echoed, but server did not close TCP (waited {elapsed:.1f} s)")
        return (f"server echoed close code={rcvd.code} reason={rcvd.reason!r}; "
                f"TCP closed after {elapsed * 1000:.1f} ms")


SHARED: dict[str, Callable[[ClientConnection, argparse.Namespace], Awaitable[str]]] = {
    "handshake": sc_handshake,
    "text": sc_text,
    "binary": sc_binary,
    "empty_text": sc_empty_text,
    "empty_binary": sc_empty_binary,
    "large_text_4mib": sc_large_text,
    "large_binary_4mib": sc_large_binary,
    "large_text_8mib": sc_large_text_8mib,
    "large_binary_8mib": sc_large_binary_8mib,
    "fragmented_text": sc_fragmented_text,
    "fragmented_binary": sc_fragmented_binary,
    "fragmented_text_split_utf8": sc_fragmented_text_split_utf8,
    "ping": sc_ping,
    "many_small": sc_many_small,
}
SCENARIOS = list(SHARED) + ["close_code_reason"]


def connect_kwargs(opts) -> dict:
    return dict(
        compression="deflate" if opts.compression == "deflate" else None,
        max_size=MAX_SIZE,
        ping_interval=None,  # no unsolicited keepalive pings
        open_timeout=TIMEOUT,
        close_timeout=10,
        proxy=None,
    )


def emit(name: str, ok: bool, detail: str) -> None:
    sys.stdout.write(json.dumps({"scenario": name, "ok": ok, "detail": detail}) + "\n")
    sys.stdout.flush()


def err_text(exc: BaseException) -> str:
    if isinstance(exc, Fail):
        return str(exc)
    if isinstance(exc, asyncio.TimeoutError):
        return f"timeout after {TIMEOUT:.0f} s"
    return f"{type(exc).__name__}: {exc}"


async def main() -> int:
    parser = argparse.ArgumentParser(description="websockets interop scenarios against an echo server")
    parser.add_argument("url")
    parser.add_argument("--compression", choices=["none", "deflate"], default="none")
    parser.add_argument("--only", help="comma-separated scenario names (default: all, in order)")
    opts = parser.parse_args()

    names = SCENARIOS
    if opts.only:
        names = [n.strip() for n in opts.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in SCENARIOS]
        if unknown:
            parser.error(f"unknown scenario(s) {unknown}; known: {SCENARIOS}")

    ws: ClientConnection | None = None
    results: list[bool] = []
    for name in names:
        try:
            if name == "close_code_reason":
                detail = await asyncio.wait_for(sc_close_code_reason(opts.url, opts), TIMEOUT)
            else:
                async def run() -> str:
                    nonlocal ws
                    if ws is None:
                        ws = await connect(opts.url, **connect_kwargs(opts))
                    return await SHARED[name](ws, opts)
                detail = await asyncio.wait_for(run(), TIMEOUT)
            ok = True
        except Exception as exc:  # noqa: BLE001 - report every failure as a result line
            ok, detail = False, err_text(exc)
            if ws is not None:
                # Drop the (possibly desynchronized) shared connection.
                ws.transport.abort()
                ws = None
        emit(name, ok, detail)
        results.append(ok)

    if ws is not None:
        try:
            await asyncio.wait_for(ws.close(), TIMEOUT)
        except Exception:  # noqa: BLE001
            ws.transport.abort()

    passed = sum(results)
    print(f"client_scenarios: {passed}/{len(results)} scenarios ok", file=sys.stderr)
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
