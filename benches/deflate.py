#!/usr/bin/env python3
"""permessage-deflate: server memory per idle browser connection, and bytes on the wire.

Issue #16. Runs every contender side by side in one invocation, interleaved over rounds (the
contender order rotates each round), and reports medians over rounds.

What it measures, per contender and round (a fresh server process each time, pinned with
`taskset -c 0` on 127.0.0.1, port 0; the client runs pinned to CPU 1):

1. Memory per idle deflate connection. After one warm-up connection (handshake, one message,
   close), the server's VmRSS (/proc/PID/status) is read; then N connections (`--connections`,
   default 1000) are opened, each offering exactly what Chromium offers,

       Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits

   and each sends ONE compressed text message (a JSON market tick of about 150 B) and reads its
   echo. The echo's first frame must have RSV1 (0x40 of its first byte) set, i.e. the server
   compressed it; connections whose echo came back uncompressed are counted and reported. With
   all N open (they answer pings, nothing else), after `--settle` seconds (default 3: `sockeye serve` frees shared zlib state unused for 1-2 s) VmRSS is
   read again: (RSS_after - RSS_before) / N, in KiB. Then all are closed and the server stopped.

2. Bytes on the wire on a market-data stream. M messages (`--messages`, default 10000),
   generated deterministically from a seeded PRNG (no clock): JSON ticks of 100-200 B (symbol,
   seq, bid, ask, last, sizes, volume, time...) and, every 100th message, an order-book snapshot
   of about 2 KiB (40 price levels). They go over ONE connection with Chromium's offer, at most
   `--window` (default 64) in flight; the server echoes each. From the server's raw frames:
   payload bytes of its data frames (as compressed on the wire) and the same with frame headers,
   against the raw message bytes: ratio = server payload bytes / raw bytes. Echoes are checked
   byte for byte. The negotiated `Sec-WebSocket-Extensions` response header is reported, and
   the server's CPU time per message goes to the raw results only (utime+stime from
   /proc/PID/stat, in clock ticks of 1/SC_CLK_TCK s, usually 10 ms; with a Python client:
   indicative at best).

3. Bytes on the wire with many connections at once (skip with `--no-wire-many`). K connections
   (`--wire-connections`, default 100, also with --quick), each with Chromium's offer, each sent
   the SAME first W messages of the stream above (`--wire-messages`, default 2000, quick 500),
   interleaved round robin: message 1 on connection 1, 2, ..., K, then message 2 on 1..K, and so
   on, at most `--wire-window` (default 4) in flight per connection; the sender waits on a full
   connection rather than skipping it, so the connections stay within a few messages of each
   other and the server sees all K active at once. The server echoes. Payload bytes of the
   server's data frames over all K connections / (K x raw stream bytes) -> ratio; echoes are
   checked byte for byte and the uncompressed ones (RSV1 clear) counted. Why: sockeye-balanced
   keeps only the last 8 KiB sent per connection and borrows a zlib compressor from a shared
   cache of 64; with more than 64 connections active, a message may find its connection's
   compressor taken and prime a fresh one from the retained window, so it can compress worse
   than on one connection. The report also gives the server's CPU time over the cell per
   message echoed (utime+stime from /proc/PID/stat in ticks of 1/SC_CLK_TCK s; coarse: it
   counts everything the server does, paced by a Python client). Runs on the same server
   process, after 2.

The client is python-websockets' sans-I/O `ClientProtocol` with
`ClientPerMessageDeflateFactory(client_max_window_bits=True)` (whose offer is checked to be
exactly Chromium's) over raw asyncio streams, with a small frame scanner of its own on the
bytes received, so RSV1 and the bytes on the wire are seen as they came.

Contenders (`--contenders a,b,...`):
  sockeye-fast, sockeye-balanced, sockeye-max   `sockeye serve --compression POLICY` (/echo)
  sockeye-current                               `sockeye serve` with no compression flag
  python-websockets                             websockets.asyncio.server.serve, defaults
  node-ws                                       ws WebSocketServer, perMessageDeflate: true
                                                (benches/deflate_ws_server.mjs)
  yawc                                          benches/target/release/yawc ADDR --deflate
The policy -> flags mapping is SOCKEYE_POLICY_ARGS below.

Run (with the interop venv's python, which has `websockets`):

    PY=$(scripts/setup-python.sh)
    taskset -c 1 $PY benches/deflate.py                      # 1000 connections, 10000 messages,
                                                             # 100 x 2000 messages, 3 rounds
    $PY benches/deflate.py --quick                           # 200 connections, 2000 messages,
                                                             # 100 x 500 messages, 1 round
    $PY benches/deflate.py --quick --contenders sockeye-current,python-websockets,node-ws,yawc

Writes `--out` (default benches/results/YYYY-MM-DD-deflate.md) and the raw results, one JSON
object per measurement, beside it (.jsonl). Needs Linux (/proc, taskset), node for node-ws.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import random
import re
import resource
import shlex
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

CHROMIUM_OFFER = "permessage-deflate; client_max_window_bits"

# `sockeye serve` flags per contender. The --compression flag is issue #16's; sockeye-current is
# the binary's default config with no flag.
SOCKEYE_POLICY_ARGS = {
    "sockeye-fast": ["--compression", "fast"],
    "sockeye-balanced": ["--compression", "balanced"],
    "sockeye-max": ["--compression", "max"],
    "sockeye-current": [],
    "sockeye-off": ["--no-compression"],
}
OTHER_CONTENDERS = ["python-websockets", "node-ws", "yawc"]
ALL_CONTENDERS = list(SOCKEYE_POLICY_ARGS) + OTHER_CONTENDERS
DEFAULT_CONTENDERS = ["sockeye-fast", "sockeye-balanced", "sockeye-max"] + OTHER_CONTENDERS
BASELINE = "python-websockets"
PATH = "/echo"


# ---------------------------------------------------------------------------------------------
# The market-data stream, deterministic.

SYMBOLS = [
    "AAPL", "MSFT", "GOOGL", "AMZN", "NVDA", "META", "TSLA", "JPM", "V", "XOM", "UNH", "JNJ",
    "WMT", "PG", "MA", "HD", "CVX", "KO", "PEP", "AVGO", "COST", "ADBE", "CRM", "NFLX",
]
VENUES = ["XNAS", "XNYS", "ARCX", "BATS", "EDGX", "IEXG"]
MPIDS = ["NSDQ", "ARCA", "EDGX", "BATS", "CDRG", "GSCO", "MSCO", "VIRT", "JPMS", "UBSS"]
EPOCH_MS = 1767364200000  # 2026-01-02T14:30:00Z, a fixed origin: nothing here reads a clock


def _iso(ms: int) -> str:
    t = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def market_stream(count: int, seed: int = 16) -> list[bytes]:
    """`count` JSON messages: ticks of 100-200 B, every 100th an order book of about 2 KiB."""
    rng = random.Random(seed)
    price = {s: round(rng.uniform(20, 900), 2) for s in SYMBOLS}
    volume = {s: rng.randint(100_000, 5_000_000) for s in SYMBOLS}
    ms = EPOCH_MS
    out = []
    for seq in range(1, count + 1):
        ms += rng.randint(0, 25)
        sym = rng.choice(SYMBOLS)
        p = max(1.0, price[sym] * (1 + rng.gauss(0, 0.0004)))
        price[sym] = p
        tick = 0.01
        if seq % 100 == 0:
            levels = 20
            bids, asks = [], []
            bid = round(p - tick * rng.randint(1, 3), 2)
            ask = round(p + tick * rng.randint(1, 3), 2)
            for i in range(levels):
                bids.append({"px": round(bid - i * tick * rng.randint(1, 4), 2),
                             "qty": rng.randint(1, 60) * 100, "n": rng.randint(1, 25),
                             "mpid": rng.choice(MPIDS)})
                asks.append({"px": round(ask + i * tick * rng.randint(1, 4), 2),
                             "qty": rng.randint(1, 60) * 100, "n": rng.randint(1, 25),
                             "mpid": rng.choice(MPIDS)})
            msg = {"type": "book", "symbol": sym, "seq": seq, "time": _iso(ms),
                   "depth": levels, "bids": bids, "asks": asks}
        else:
            spread = tick * rng.randint(1, 6)
            bid = round(p - spread / 2, 2)
            ask = round(bid + spread, 2)
            last = round(rng.choice([bid, ask, p]), 2)
            volume[sym] += rng.randint(1, 40) * 100
            msg = {"type": "tick", "symbol": sym, "seq": seq, "bid": bid, "ask": ask,
                   "last": last, "volume": volume[sym], "time": _iso(ms)}
            # Optional fields, as feeds have them, so sizes spread over 100-200 B.
            if rng.random() < 0.7:
                msg["bid_size"] = rng.randint(1, 50) * 100
                msg["ask_size"] = rng.randint(1, 50) * 100
            if rng.random() < 0.5:
                msg["venue"] = rng.choice(VENUES)
            if rng.random() < 0.3:
                msg["conditions"] = rng.sample(["@", "F", "T", "I", "Z", "4"], rng.randint(1, 3))
            if rng.random() < 0.2:
                msg["vwap"] = round(p * (1 + rng.gauss(0, 0.001)), 4)
        data = json.dumps(msg, separators=(",", ":")).encode()
        if msg["type"] == "tick":
            while len(data) < 100:  # never in practice; keeps the 100-200 B promise
                msg["pad"] = msg.get("pad", "") + "-"
                data = json.dumps(msg, separators=(",", ":")).encode()
            for extra in ("vwap", "conditions", "venue"):  # the rare few over 200 B
                if len(data) <= 200:
                    break
                if extra in msg:
                    del msg[extra]
                    data = json.dumps(msg, separators=(",", ":")).encode()
            assert 100 <= len(data) <= 200, data
        out.append(data)
    return out


def idle_tick(i: int) -> bytes:
    """The one message of idle connection i: a tick of about 150 B."""
    rng = random.Random(1_000_000 + i)
    sym = SYMBOLS[i % len(SYMBOLS)]
    p = rng.uniform(20, 900)
    msg = {"type": "tick", "symbol": sym, "seq": i + 1, "bid": round(p, 2),
           "ask": round(p + 0.02, 2), "last": round(p + 0.01, 2),
           "volume": rng.randint(100_000, 5_000_000),
           "time": _iso(EPOCH_MS + i * 7), "venue": VENUES[i % len(VENUES)]}
    return json.dumps(msg, separators=(",", ":")).encode()


# ---------------------------------------------------------------------------------------------
# The client: websockets' sans-I/O protocol over asyncio streams, plus a raw frame scanner.

def _ws():
    try:
        from websockets.client import ClientProtocol
        from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
        from websockets.frames import Frame, Opcode
        from websockets.http11 import Response
        from websockets.protocol import State
        from websockets.uri import parse_uri
    except ImportError as e:
        sys.exit(f"{e}: run with the interop venv's python: PY=$(scripts/setup-python.sh); "
                 f"$PY {sys.argv[0]} ...")
    return ClientProtocol, ClientPerMessageDeflateFactory, Frame, Opcode, Response, State, parse_uri


class FrameScanner:
    """Parses the server's raw bytes after the HTTP response: its frames as they came."""

    def __init__(self):
        self.buf = bytearray()
        self.in_handshake = True
        self.reset()

    def reset(self):
        self.data_payload = 0      # payload bytes of data frames (opcodes 0, 1, 2)
        self.data_total = 0        # the same with frame headers
        self.all_total = 0         # every frame, control frames included
        self.messages = []         # per complete data message: RSV1 of its first frame
        self._msg_rsv1 = None

    def feed(self, data: bytes):
        self.buf += data
        if self.in_handshake:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            del self.buf[:end + 4]
            self.in_handshake = False
        buf, pos, n = self.buf, 0, len(self.buf)
        while n - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            length, hl = b1 & 0x7F, 2
            if length == 126:
                if n - pos < 4:
                    break
                length, hl = struct.unpack_from("!H", buf, pos + 2)[0], 4
            elif length == 127:
                if n - pos < 10:
                    break
                length, hl = struct.unpack_from("!Q", buf, pos + 2)[0], 10
            if b1 & 0x80:
                hl += 4
            if n - pos < hl + length:
                break
            pos += hl + length
            opcode, fin, rsv1 = b0 & 0x0F, bool(b0 & 0x80), bool(b0 & 0x40)
            self.all_total += hl + length
            if opcode in (0, 1, 2):
                self.data_payload += length
                self.data_total += hl + length
                if opcode != 0:
                    self._msg_rsv1 = rsv1
                if fin:
                    self.messages.append(self._msg_rsv1)
                    self._msg_rsv1 = None
        del buf[:pos]


class Conn:
    def __init__(self, reader, writer, proto, scanner, extensions_header):
        self.reader, self.writer, self.proto, self.scanner = reader, writer, proto, scanner
        self.extensions_header = extensions_header
        self.sent_bytes = 0
        self._parts = []
        self.received = []  # complete data messages (decompressed), not yet taken

    def flush(self):
        out = self.proto.data_to_send()
        if out:
            data = b"".join(out)
            self.sent_bytes += len(data)
            if data:
                self.writer.write(data)

    def feed(self, data: bytes):
        _, _, Frame, Opcode, _, _, _ = WS
        self.scanner.feed(data)
        self.proto.receive_data(data)
        for ev in self.proto.events_received():
            if isinstance(ev, Frame):
                if ev.opcode in (Opcode.TEXT, Opcode.BINARY):
                    self._parts = [ev.data]
                elif ev.opcode == Opcode.CONT:
                    self._parts.append(ev.data)
                else:
                    continue
                if ev.fin:
                    self.received.append(b"".join(self._parts))
                    self._parts = []
        self.flush()  # pongs, close replies

    async def read_once(self, timeout: float) -> bool:
        data = await asyncio.wait_for(self.reader.read(1 << 18), timeout)
        if not data:
            self.proto.receive_eof()
            return False
        self.feed(data)
        return True

    async def close(self, timeout: float = 2.0):
        try:
            _, _, _, _, _, State, _ = WS
            if self.proto.state is State.OPEN:
                self.proto.send_close(1000)
                self.flush()
                await self.writer.drain()
                end = time.monotonic() + timeout
                while self.proto.state is not State.CLOSED and time.monotonic() < end:
                    if not await self.read_once(max(0.01, end - time.monotonic())):
                        break
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            pass
        finally:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass


WS = None


async def ws_connect(host: str, port: int, timeout: float) -> Conn:
    ClientProtocol, Factory, _, _, Response, State, parse_uri = WS
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    proto = ClientProtocol(parse_uri(f"ws://{host}:{port}{PATH}"),
                           extensions=[Factory(client_max_window_bits=True)], max_size=None)
    request = proto.connect()
    if request.headers.get("Sec-WebSocket-Extensions") != CHROMIUM_OFFER:
        del request.headers["Sec-WebSocket-Extensions"]
        request.headers["Sec-WebSocket-Extensions"] = CHROMIUM_OFFER
    proto.send_request(request)
    conn = Conn(reader, writer, proto, FrameScanner(), None)
    conn.flush()
    end = time.monotonic() + timeout
    response = None
    while proto.state is State.CONNECTING:
        data = await asyncio.wait_for(reader.read(1 << 16), max(0.01, end - time.monotonic()))
        if not data:
            proto.receive_eof()
            break
        conn.scanner.feed(data)
        proto.receive_data(data)
        for ev in proto.events_received():
            if isinstance(ev, Response):
                response = ev
        conn.flush()
    if proto.state is not State.OPEN:
        writer.close()
        raise ConnectionError(f"handshake failed: {proto.handshake_exc!r}")
    conn.extensions_header = response.headers.get("Sec-WebSocket-Extensions") if response else None
    return conn


async def echo_one(conn: Conn, msg: bytes, timeout: float) -> tuple[bool, bool, bool]:
    """Sends msg; returns (sent compressed, echo compressed, echo equal)."""
    conn.proto.send_text(msg)
    out = conn.proto.data_to_send()
    sent_compressed = bool(out and out[0][0] & 0x40)
    data = b"".join(out)
    conn.sent_bytes += len(data)
    conn.writer.write(data)
    await conn.writer.drain()
    end = time.monotonic() + timeout
    while not conn.received:
        if not await conn.read_once(max(0.01, end - time.monotonic())):
            raise ConnectionError("closed before the echo")
    echo = conn.received.pop(0)
    return sent_compressed, bool(conn.scanner.messages[0]), echo == msg


# ---------------------------------------------------------------------------------------------
# Servers.

def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_command(name: str, args) -> list[str]:
    listen = "127.0.0.1:0"
    if name in SOCKEYE_POLICY_ARGS:
        return [args.sockeye_bin, "serve", "--listen", listen, "--log-level", "warn",
                *SOCKEYE_POLICY_ARGS[name]]
    if name == "python-websockets":
        return [args.python, os.path.abspath(__file__), "--serve-python"]
    if name == "node-ws":
        return [args.node, os.path.join(HERE, "deflate_ws_server.mjs"), "0"]
    if name == "yawc":
        return [args.yawc_bin, listen, "--deflate"]
    raise ValueError(name)


class Server:
    def __init__(self, name: str, args):
        self.name = name
        self.cmd = ["taskset", "-c", args.server_cpus, *server_command(name, args)]
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self.stderr, start_new_session=True)
        self.addr = None
        ready = threading.Event()

        def drain():
            for raw in self.proc.stdout:
                line = raw.decode(errors="replace").strip()
                if self.addr is None and line.startswith("LISTENING "):
                    self.addr = line.split()[1]
                    ready.set()
            ready.set()

        threading.Thread(target=drain, daemon=True).start()
        if not ready.wait(15) or self.addr is None:
            self.stderr.seek(0)
            err = self.stderr.read().decode(errors="replace")[-2000:]
            self.stop()
            raise RuntimeError(f"{name}: no LISTENING line from {shlex.join(self.cmd)}: {err}")
        host, port = self.addr.rsplit(":", 1)
        self.host, self.port = host.strip("[]"), int(port)
        self.pid = self.proc.pid  # taskset execs the server: same pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(8)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait()
        self.stderr.close()


def serve_python():
    """The python-websockets contender: an echo server with websockets' default settings."""
    from websockets.asyncio.server import serve

    async def echo(ws):
        async for message in ws:
            await ws.send(message)

    async def main():
        async with serve(echo, "127.0.0.1", 0) as server:
            host, port = server.sockets[0].getsockname()[:2]
            print(f"LISTENING {host}:{port}", flush=True)
            await asyncio.get_running_loop().create_future()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    asyncio.run(main())


# ---------------------------------------------------------------------------------------------
# The measurements.

async def measure_idle(server: Server, n: int, args) -> dict:
    host, port, timeout = server.host, server.port, args.timeout
    # Warm-up: one connection, one message, closed.
    conn = await ws_connect(host, port, timeout)
    await echo_one(conn, idle_tick(0), timeout)
    await conn.close()
    await asyncio.sleep(0.5)
    rss_before = rss_kib(server.pid)

    sem = asyncio.Semaphore(args.parallel)
    release = asyncio.Event()
    opened = asyncio.Event()
    stats = {"ok": 0, "failed": 0, "echo_uncompressed": 0, "sent_uncompressed": 0,
             "echo_mismatch": 0, "dropped": 0, "errors": []}
    headers: dict[str, int] = {}
    remaining = [n]

    def done_opening():
        remaining[0] -= 1
        if remaining[0] == 0:
            opened.set()

    async def hold(i: int):
        conn = None
        try:
            async with sem:
                conn = await ws_connect(host, port, timeout)
                sent_c, echo_c, same = await echo_one(conn, idle_tick(i + 1), timeout)
            stats["ok"] += 1
            stats["sent_uncompressed"] += not sent_c
            stats["echo_uncompressed"] += not echo_c
            stats["echo_mismatch"] += not same
            headers[conn.extensions_header] = headers.get(conn.extensions_header, 0) + 1
        except Exception as e:  # noqa: BLE001 - counted and reported
            stats["failed"] += 1
            if len(stats["errors"]) < 3:
                stats["errors"].append(repr(e))
            if conn:
                conn.writer.close()
            conn = None
        finally:
            done_opening()
        if conn is None:
            return
        # Hold it open: answer pings until released.
        reading = asyncio.ensure_future(_read_until_eof(conn))
        released = asyncio.ensure_future(release.wait())
        await asyncio.wait([reading, released], return_when=asyncio.FIRST_COMPLETED)
        if reading.done():
            stats["dropped"] += 1
            released.cancel()
        else:
            reading.cancel()
            try:
                await reading
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
        async with sem:
            await conn.close()

    t0 = time.monotonic()
    tasks = [asyncio.ensure_future(hold(i)) for i in range(n)]
    await opened.wait()
    open_seconds = time.monotonic() - t0
    await asyncio.sleep(args.settle)
    rss_after = rss_kib(server.pid)
    dropped_before_rss = stats["dropped"]
    release.set()
    await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 120)
    ok = stats["ok"] - dropped_before_rss
    return {
        "rss_before_kib": rss_before, "rss_after_kib": rss_after,
        "kib_per_connection": (rss_after - rss_before) / ok if ok else None,
        "connections_ok": stats["ok"], "connections_failed": stats["failed"],
        "dropped_before_rss": dropped_before_rss,
        "echo_uncompressed": stats["echo_uncompressed"],
        "sent_uncompressed": stats["sent_uncompressed"],
        "echo_mismatch": stats["echo_mismatch"], "errors": stats["errors"],
        "extensions_response": headers, "open_seconds": round(open_seconds, 3),
    }


async def _read_until_eof(conn: Conn):
    while True:
        data = await conn.reader.read(1 << 16)
        if not data:
            return
        conn.feed(data)


async def measure_stream(server: Server, messages: list[bytes], args) -> dict:
    conn = await ws_connect(server.host, server.port, args.timeout)
    conn.scanner.reset()
    sent_bytes0 = conn.sent_bytes
    cpu0, t0 = cpu_seconds(server.pid), time.monotonic()
    m, window = len(messages), args.window
    sent = received = mismatched = 0
    while received < m:
        while sent < m and sent - received < window:
            conn.proto.send_text(messages[sent])
            sent += 1
        conn.flush()
        await conn.writer.drain()
        if not await conn.read_once(args.timeout):
            raise ConnectionError(f"closed after {received} of {m} echoes")
        for echo in conn.received:
            mismatched += echo != messages[received]
            received += 1
        conn.received.clear()
    elapsed = time.monotonic() - t0
    cpu = cpu_seconds(server.pid) - cpu0
    sc = conn.scanner
    raw = sum(len(x) for x in messages)
    result = {
        "messages": m, "raw_bytes": raw,
        "server_payload_bytes": sc.data_payload, "server_frame_bytes": sc.data_total,
        "server_all_frame_bytes": sc.all_total,
        "ratio_payload": sc.data_payload / raw, "ratio_frames": sc.data_total / raw,
        "echoes_compressed": sum(1 for c in sc.messages if c),
        "echoes": len(sc.messages), "echo_mismatch": mismatched,
        "client_bytes_sent": conn.sent_bytes - sent_bytes0,
        "extensions_response": conn.extensions_header,
        "seconds": round(elapsed, 3), "server_cpu_us_per_msg": cpu / m * 1e6,
    }
    await conn.close()
    return result


async def measure_many(server: Server, messages: list[bytes], args) -> dict:
    """K connections, each echoing the same stream, sent round robin (see the docstring, 3.)."""
    k, m, window = args.wire_connections, len(messages), args.wire_window
    sem = asyncio.Semaphore(args.parallel)

    async def open_one():
        async with sem:
            return await ws_connect(server.host, server.port, args.timeout)

    opened = await asyncio.gather(*(open_one() for _ in range(k)), return_exceptions=True)
    conns = [c for c in opened if isinstance(c, Conn)]
    if len(conns) < k:
        await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)
        first = next(c for c in opened if not isinstance(c, Conn))
        raise ConnectionError(f"{k - len(conns)} of {k} connections failed to open: {first!r}")
    headers: dict[str, int] = {}
    for c in conns:
        headers[str(c.extensions_header)] = headers.get(str(c.extensions_header), 0) + 1
        c.scanner.reset()
    sent_bytes0 = sum(c.sent_bytes for c in conns)
    sent, received = [0] * k, [0] * k
    space = [asyncio.Event() for _ in range(k)]
    mismatched, failure = [0], []
    max_spread = [0]  # most echoes ahead of the slowest connection, sampled as echoes arrive

    async def reader(j: int, c: Conn):
        try:
            while received[j] < m:
                data = await c.reader.read(1 << 16)
                if not data:
                    raise ConnectionError(f"connection {j} closed after {received[j]} of {m} echoes")
                c.feed(data)
                for echo in c.received:
                    mismatched[0] += echo != messages[received[j]]
                    received[j] += 1
                c.received.clear()
                space[j].set()
        except Exception as e:  # noqa: BLE001 - raised by the sender
            failure.append(e)
            for ev in space:
                ev.set()

    cpu0, t0 = cpu_seconds(server.pid), time.monotonic()
    tasks = [asyncio.ensure_future(reader(j, c)) for j, c in enumerate(conns)]
    try:
        for i in range(m):
            msg = messages[i]
            for j, c in enumerate(conns):
                while sent[j] - received[j] >= window:
                    space[j].clear()
                    await asyncio.wait_for(space[j].wait(), args.timeout)
                    if failure:
                        raise failure[0]
                c.proto.send_text(msg)
                sent[j] += 1
                c.flush()
            if i % 16 == 15:
                spread = max(received) - min(received)
                if spread > max_spread[0]:
                    max_spread[0] = spread
                for c in conns:
                    if c.writer.transport.get_write_buffer_size() > 1 << 16:
                        await c.writer.drain()
        await asyncio.wait_for(asyncio.gather(*tasks), args.timeout)
        if failure:
            raise failure[0]
    finally:
        for t in tasks:
            t.cancel()
    elapsed = time.monotonic() - t0
    cpu = cpu_seconds(server.pid) - cpu0
    raw = k * sum(len(x) for x in messages)
    payload = sum(c.scanner.data_payload for c in conns)
    frames = sum(c.scanner.data_total for c in conns)
    echoes = sum(len(c.scanner.messages) for c in conns)
    compressed = sum(1 for c in conns for x in c.scanner.messages if x)
    result = {
        "connections": k, "messages_per_connection": m, "window": window, "raw_bytes": raw,
        "server_payload_bytes": payload, "server_frame_bytes": frames,
        "ratio_payload": payload / raw, "ratio_frames": frames / raw,
        "echoes_compressed": compressed, "echoes": echoes, "echo_mismatch": mismatched[0],
        "client_bytes_sent": sum(c.sent_bytes for c in conns) - sent_bytes0,
        "extensions_response": headers, "max_echo_spread": max_spread[0],
        "seconds": round(elapsed, 3), "server_cpu_seconds": round(cpu, 3),
        "server_cpu_us_per_msg": cpu / (k * m) * 1e6,
    }
    await asyncio.gather(*(_close_limited(c, sem) for c in conns), return_exceptions=True)
    return result


async def _close_limited(conn: Conn, sem: asyncio.Semaphore):
    async with sem:
        await conn.close()


# ---------------------------------------------------------------------------------------------
# The report.

def fmt_int(x) -> str:
    return f"{x:,}" if isinstance(x, int) else str(x)


def fmt(x, digits=1) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def write_report(path: str, results: list[dict], meta: dict, contenders: list[str]):
    def runs(kind, name):
        return [r for r in results if r["kind"] == kind and r["contender"] == name and "error" not in r]

    def errors(name):
        return [r for r in results if r["contender"] == name and "error" in r]

    idle_med, wire_med = {}, {}
    for name in contenders:
        vals = [r["kib_per_connection"] for r in runs("idle", name) if r["kib_per_connection"] is not None]
        idle_med[name] = statistics.median(vals) if vals else None
        vals = [r["ratio_payload"] for r in runs("stream", name)]
        wire_med[name] = statistics.median(vals) if vals else None

    L = []
    L.append("# permessage-deflate: memory per idle browser connection and bytes on the wire\n")
    L.append(f"Issue #16. `{meta['command']}`, {meta['date']}, commit `{meta['commit']}`, "
             f"{meta['cpus']} CPUs ({meta['cpu_model']}), load average {meta['load_start']} at the "
             f"start and {meta['load_end']} at the end. Servers pinned to CPU {meta['server_cpus']}, "
             f"the client (Python, websockets {meta['websockets']}) to CPU {meta['client_cpus']}; "
             f"{meta['rounds']} round(s), contenders interleaved in a rotated order, a fresh server "
             f"process per contender and round. Every connection offers exactly Chromium's "
             f"`Sec-WebSocket-Extensions: {CHROMIUM_OFFER}`.\n")
    L.append("## Memory per idle deflate connection\n")
    L.append(f"{meta['connections']} connections, each sending one compressed ~150 B JSON tick and "
             f"reading its echo, then held idle; (VmRSS with them open, {meta['settle']} s after the "
             f"last opened − VmRSS after one warm-up connection) / connections. Median over rounds.\n")
    L.append(f"| contender | KiB per idle connection | min–max | × {BASELINE} | server RSS before (MiB) "
             f"| echoes not compressed | failed |")
    L.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in contenders:
        rs = runs("idle", name)
        if not rs:
            L.append(f"| {name} | failed: {errors(name)[0]['error'][:120] if errors(name) else 'no run'} "
                     f"| | | | | |")
            continue
        vals = [r["kib_per_connection"] for r in rs if r["kib_per_connection"] is not None]
        base = idle_med.get(BASELINE)
        ratio = fmt(idle_med[name] / base, 2) if base and idle_med[name] is not None else "—"
        before = statistics.median(r["rss_before_kib"] for r in rs) / 1024
        unc = sum(r["echo_uncompressed"] for r in rs)
        tot = sum(r["connections_ok"] for r in rs)
        failed = sum(r["connections_failed"] + r["dropped_before_rss"] for r in rs)
        L.append(f"| {name} | {fmt(idle_med[name])} | {fmt(min(vals))}–{fmt(max(vals))} | {ratio} "
                 f"| {before:.1f} | {unc} of {tot} | {failed} |")
    L.append("")
    s = meta["stream"]
    L.append("## Bytes on the wire, market-data stream\n")
    L.append(f"{s['messages']} messages (seed {s['seed']}) over one connection, {meta['window']} in "
             f"flight, echoed: {s['ticks']} ticks of {s['tick_min']}–{s['tick_max']} B (mean "
             f"{s['tick_mean']:.0f} B) and {s['books']} order-book snapshots of "
             f"{s['book_min']}–{s['book_max']} B (mean {s['book_mean']:.0f} B), {fmt_int(s['raw_bytes'])} B "
             f"raw. Ratio: payload bytes of the server's frames / raw bytes (lower is better); "
             f"\"with headers\" counts the frame headers too. The echoes are checked byte for byte.\n")
    L.append(f"| contender | payload / raw | with headers / raw | × {BASELINE} | server payload bytes "
             f"| echoes compressed | negotiated `Sec-WebSocket-Extensions` |")
    L.append("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for name in contenders:
        rs = runs("stream", name)
        if not rs:
            L.append(f"| {name} | failed: {errors(name)[0]['error'][:120] if errors(name) else 'no run'} "
                     f"| | | | | |")
            continue
        ratios = [r["ratio_payload"] for r in rs]
        spread = "" if max(ratios) == min(ratios) else f" ({min(ratios):.4f}–{max(ratios):.4f})"
        base = wire_med.get(BASELINE)
        x = fmt(wire_med[name] / base, 3) if base else "—"
        hdr = statistics.median(r["ratio_frames"] for r in rs)
        pay = int(statistics.median(r["server_payload_bytes"] for r in rs))
        comp = f"{rs[0]['echoes_compressed']} of {rs[0]['echoes']}"
        negotiated = sorted({r["extensions_response"] or "(none)" for r in rs})
        L.append(f"| {name} | {wire_med[name]:.4f}{spread} | {hdr:.4f} | {x} | {fmt_int(pay)} | {comp} "
                 f"| {'; '.join(f'`{h}`' for h in negotiated)} |")
    L.append("")
    many = meta.get("many")
    if many:
        many_med = {}
        for name in contenders:
            vals = [r["ratio_payload"] for r in runs("many", name)]
            many_med[name] = statistics.median(vals) if vals else None
        L.append(f"## Bytes on the wire, {many['connections']} connections at once\n")
        L.append(f"{many['connections']} connections, each with Chromium's offer, each sent the same "
                 f"first {many['messages']} messages of the stream above ({many['books']} of them order "
                 f"books; {fmt_int(many['raw_bytes'])} B raw per connection, "
                 f"{fmt_int(many['raw_bytes'] * many['connections'])} B in all), interleaved round robin: "
                 f"message 1 on connections 1, 2, ..., {many['connections']}, then message 2 on each, "
                 f"and so on, at most {many['window']} in flight per connection, so the server has all "
                 f"{many['connections']} connections active at once. The server echoes. Ratio: payload "
                 f"bytes of the server's data frames over all connections / raw bytes (lower is "
                 f"better); echoes checked byte for byte. Server CPU: utime+stime of the server "
                 f"process (/proc/PID/stat, in {1000 // os.sysconf('SC_CLK_TCK')} ms ticks) over the "
                 f"cell / messages echoed, a coarse figure: it counts all the server does per message "
                 f"(reading, inflating the client's message, deflating the echo, framing, syscalls, "
                 f"and a runtime's own overhead for python-websockets and node-ws), paced by a "
                 f"single Python client on the other CPU. Median over rounds.\n")
        L.append(f"| contender | payload / raw | × {BASELINE} | server CPU µs/msg | echoes compressed |")
        L.append("| --- | ---: | ---: | ---: | ---: |")
        for name in contenders:
            rs = runs("many", name)
            if not rs:
                errs = [r for r in errors(name) if r["kind"] in ("many", "start")]
                L.append(f"| {name} | failed: {errs[0]['error'][:120] if errs else 'no run'} | | | |")
                continue
            ratios = [r["ratio_payload"] for r in rs]
            spread = "" if max(ratios) == min(ratios) else f" ({min(ratios):.4f}–{max(ratios):.4f})"
            base = many_med.get(BASELINE)
            x = fmt(many_med[name] / base, 3) if base else "—"
            cpu = statistics.median(r["server_cpu_us_per_msg"] for r in rs)
            comp = f"{sum(r['echoes_compressed'] for r in rs)} of {sum(r['echoes'] for r in rs)}"
            L.append(f"| {name} | {many_med[name]:.4f}{spread} | {x} | {cpu:.1f} | {comp} |")
        L.append("")
    notes = []
    for name in contenders:
        rs = runs("idle", name)
        unc = sum(r["echo_uncompressed"] for r in rs)
        if unc:
            notes.append(f"- {name}: {unc} of {sum(r['connections_ok'] for r in rs)} idle-connection "
                         f"echoes came back uncompressed (RSV1 clear).")
        if sum(r["echo_mismatch"] for r in rs):
            notes.append(f"- {name}: some idle echoes differed from what was sent.")
        for r in runs("stream", name):
            if r["echo_mismatch"]:
                notes.append(f"- {name}: {r['echo_mismatch']} stream echoes differed from what was sent.")
                break
        for r in runs("many", name):
            if r["echo_mismatch"]:
                notes.append(f"- {name}: {r['echo_mismatch']} echoes of the {r['connections']}-connection "
                             f"cell differed from what was sent.")
                break
        hs = set()
        for r in runs("many", name):
            hs.update(r["extensions_response"])
        if len(hs) > 1:
            notes.append(f"- {name}: the {many['connections']} connections got several responses: "
                         f"{sorted(hs)}")
        if sum(r["sent_uncompressed"] for r in rs):
            notes.append(f"- {name}: the client sent some messages uncompressed.")
        for r in errors(name):
            notes.append(f"- {name}, round {r['round']}, {r['kind']}: {r['error']}")
        hs = set()
        for r in rs:
            hs.update(r["extensions_response"])
        if len(hs) > 1:
            notes.append(f"- {name}: idle connections got several responses: {sorted(map(str, hs))}")
    if notes:
        L.append("## Notes\n")
        L.extend(notes)
        L.append("")
    L.append(f"Raw results: `{os.path.basename(meta['jsonl'])}` beside this file.\n")
    with open(path, "w") as f:
        f.write("\n".join(L))


# ---------------------------------------------------------------------------------------------

def preflight(contenders: list[str], args):
    for name in contenders:
        if name in SOCKEYE_POLICY_ARGS:
            if not os.access(args.sockeye_bin, os.X_OK):
                sys.exit(f"{name}: no executable {args.sockeye_bin} (--sockeye-bin)")
            flags = SOCKEYE_POLICY_ARGS[name]
            if flags:
                help_text = subprocess.run([args.sockeye_bin, "serve", "--help"], capture_output=True,
                                           text=True).stdout
                if not re.search(rf"(^|\s){re.escape(flags[0])}(\s|=|$)", help_text, re.M):
                    sys.exit(f"{name}: `{args.sockeye_bin} serve` has no {flags[0]} flag yet; "
                             f"try --contenders sockeye-current,{','.join(OTHER_CONTENDERS)}")
        elif name == "yawc" and not os.access(args.yawc_bin, os.X_OK):
            sys.exit(f"yawc: no executable {args.yawc_bin} (--yawc-bin); build it with `cargo build "
                     f"--release -j1 --manifest-path benches/peers/Cargo.toml --bin yawc`")
        elif name == "node-ws":
            if not os.path.isdir(os.path.join(ROOT, "interop/node/node_modules/ws")):
                sys.exit("node-ws: interop/node/node_modules/ws is missing (npm ci in interop/node)")
        elif name not in ALL_CONTENDERS:
            sys.exit(f"unknown contender {name}; known: {', '.join(ALL_CONTENDERS)}")


def main():
    if "--serve-python" in sys.argv[1:]:
        return serve_python()
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--contenders", default=",".join(DEFAULT_CONTENDERS),
                   help=f"comma-separated, of: {', '.join(ALL_CONTENDERS)}")
    p.add_argument("--connections", type=int, help="idle connections per run (default 1000)")
    p.add_argument("--messages", type=int, help="market-data messages (default 10000)")
    p.add_argument("--rounds", type=int, help="rounds (default 3)")
    p.add_argument("--quick", action="store_true",
                   help="200 connections, 2000 messages, 500 per connection x 100, 1 round")
    p.add_argument("--window", type=int, default=64, help="stream messages in flight (64)")
    p.add_argument("--wire-connections", type=int, default=100,
                   help="connections of the many-connection wire cell (100, also with --quick)")
    p.add_argument("--wire-messages", type=int,
                   help="messages per connection of that cell (default 2000, --quick 500)")
    p.add_argument("--wire-window", type=int, default=4,
                   help="messages in flight per connection in that cell (4)")
    p.add_argument("--no-wire-many", action="store_true", help="skip the many-connection wire cell")
    p.add_argument("--parallel", type=int, default=16, help="connections opened at once (16)")
    p.add_argument("--settle", type=float, default=3.0, help="seconds before the RSS reading (3)")
    p.add_argument("--timeout", type=float, default=20.0, help="per-step timeout in seconds")
    p.add_argument("--seed", type=int, default=16, help="market-data PRNG seed (16)")
    p.add_argument("--sockeye-bin", default=os.path.join(ROOT, "target/release/sockeye"))
    p.add_argument("--yawc-bin", default=os.path.join(HERE, "target/release/yawc"))
    p.add_argument("--python", default=sys.executable, help="python of the python-websockets server")
    p.add_argument("--node", default="node")
    p.add_argument("--server-cpus", default="0")
    p.add_argument("--client-cpus", default="1")
    p.add_argument("--out", help="markdown report (default benches/results/YYYY-MM-DD-deflate.md)")
    args = p.parse_args()
    q = args.quick
    args.connections = args.connections or (200 if q else 1000)
    args.messages = args.messages or (2000 if q else 10000)
    args.rounds = args.rounds or (1 if q else 3)
    args.wire_messages = args.wire_messages or (500 if q else 2000)
    contenders = [c for c in args.contenders.split(",") if c]
    global WS
    WS = _ws()
    preflight(contenders, args)

    cpus = {int(c) for part in args.client_cpus.split(",") for c in
            (range(int(part.split("-")[0]), int(part.split("-")[-1]) + 1))}
    try:
        os.sched_setaffinity(0, cpus & os.sched_getaffinity(0) or os.sched_getaffinity(0))
    except OSError:
        pass
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, max(args.connections, args.wire_connections) * 2 + 256))
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    out = args.out or os.path.join(HERE, "results", f"{datetime.date.today()}-deflate.md")
    jsonl = os.path.splitext(out)[0] + ".jsonl"
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)

    messages = market_stream(max(args.messages, args.wire_messages), args.seed)
    many_messages = messages[:args.wire_messages]
    messages = messages[:args.messages]
    ticks = [len(x) for i, x in enumerate(messages) if (i + 1) % 100]
    books = [len(x) for i, x in enumerate(messages) if (i + 1) % 100 == 0] or [0]
    import websockets
    meta = {
        "command": shlex.join(["benches/deflate.py", *sys.argv[1:]]),
        "date": str(datetime.date.today()),
        "commit": subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                                 capture_output=True, text=True).stdout.strip() or "?",
        "cpus": os.cpu_count(), "cpu_model": _cpu_model(), "load_start": _load(),
        "server_cpus": args.server_cpus, "client_cpus": args.client_cpus,
        "websockets": websockets.__version__, "rounds": args.rounds,
        "connections": args.connections, "settle": args.settle, "window": args.window,
        "jsonl": jsonl, "kernel": platform.release(),
        "stream": {"messages": len(messages), "seed": args.seed,
                   "raw_bytes": sum(map(len, messages)), "ticks": len(ticks),
                   "tick_min": min(ticks), "tick_max": max(ticks),
                   "tick_mean": statistics.mean(ticks), "books": len(books) if books != [0] else 0,
                   "book_min": min(books), "book_max": max(books),
                   "book_mean": statistics.mean(books)},
        "many": None if args.no_wire_many else {
            "connections": args.wire_connections, "messages": len(many_messages),
            "window": args.wire_window, "raw_bytes": sum(map(len, many_messages)),
            "books": sum(1 for i in range(len(many_messages)) if (i + 1) % 100 == 0)},
    }
    print(f"# {meta['command']}: {len(contenders)} contenders x {args.rounds} rounds, "
          f"{args.connections} idle connections, {len(messages)} messages "
          f"({meta['stream']['raw_bytes']} B raw)"
          + ("" if args.no_wire_many else
             f", {len(many_messages)} messages x {args.wire_connections} connections"),
          file=sys.stderr)

    results = []
    with open(jsonl, "w") as raw:
        def record(r):
            results.append(r)
            raw.write(json.dumps(r) + "\n")
            raw.flush()

        for rnd in range(1, args.rounds + 1):
            k = (rnd - 1) % len(contenders)
            for name in contenders[k:] + contenders[:k]:
                base = {"round": rnd, "contender": name, "date": meta["date"]}
                server = None
                try:
                    server = Server(name, args)
                    base["command"] = shlex.join(server.cmd)
                    try:
                        r = asyncio.run(measure_idle(server, args.connections, args))
                        record({**base, "kind": "idle", **r})
                        print(f"round {rnd} {name:18} idle: {fmt(r['kib_per_connection'], 2)} KiB/conn "
                              f"({r['connections_ok']} ok, {r['connections_failed']} failed, "
                              f"{r['echo_uncompressed']} echoes uncompressed) "
                              f"{r['extensions_response']}", file=sys.stderr)
                    except Exception as e:  # noqa: BLE001 - reported
                        record({**base, "kind": "idle", "error": repr(e)})
                        print(f"round {rnd} {name} idle: {e!r}", file=sys.stderr)
                    if not server.alive():
                        raise RuntimeError("server exited")
                    try:
                        r = asyncio.run(measure_stream(server, messages, args))
                        record({**base, "kind": "stream", **r})
                        print(f"round {rnd} {name:18} wire: {r['ratio_payload']:.4f} of raw, "
                              f"{r['echoes_compressed']}/{r['echoes']} compressed, "
                              f"{r['seconds']} s, `{r['extensions_response']}`", file=sys.stderr)
                    except Exception as e:  # noqa: BLE001 - reported
                        record({**base, "kind": "stream", "error": repr(e)})
                        print(f"round {rnd} {name} stream: {e!r}", file=sys.stderr)
                    if not args.no_wire_many:
                        if not server.alive():
                            raise RuntimeError("server exited")
                        try:
                            r = asyncio.run(measure_many(server, many_messages, args))
                            record({**base, "kind": "many", **r})
                            print(f"round {rnd} {name:18} wire x{r['connections']}: "
                                  f"{r['ratio_payload']:.4f} of raw, {r['echoes_compressed']}/"
                                  f"{r['echoes']} compressed, {r['server_cpu_us_per_msg']:.1f} "
                                  f"us/msg server CPU, {r['seconds']} s", file=sys.stderr)
                        except Exception as e:  # noqa: BLE001 - reported
                            record({**base, "kind": "many", "error": repr(e)})
                            print(f"round {rnd} {name} wire many: {e!r}", file=sys.stderr)
                except Exception as e:  # noqa: BLE001 - reported
                    record({**base, "kind": "start", "error": repr(e)})
                    print(f"round {rnd} {name}: {e!r}", file=sys.stderr)
                finally:
                    if server is not None:
                        server.stop()
    meta["load_end"] = _load()
    write_report(out, results, meta, contenders)
    print(f"wrote {out} and {jsonl}", file=sys.stderr)


def _load() -> str:
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


if __name__ == "__main__":
    main()
