#!/usr/bin/env python3
"""WebSocket echo server built on Python `websockets` (new asyncio API).

Used as an independent peer by Sockeye's interop tests.

stdout protocol: exactly one line, ``LISTENING <port>``, printed and flushed
once the server accepts connections. Nothing else is ever written to stdout
(logs go to stderr). Exit 1 (no LISTENING line) if the server cannot start.
Stops on SIGTERM / SIGINT, and on stdin EOF with --exit-on-stdin-eof.

Paths (query strings are ignored):
  any path      echo: text echoed as text, binary as binary, until close.
                The close frame echoes the client's code and reason
                (websockets does this by default: it echoes the received
                close payload verbatim).
  /close-4001   on connect, closes with code 4001, reason "server says bye".
  /ping         sends a ping with payload b"sockeye"; after the matching pong
                arrives, sends the text message "pong-ok"; then echoes.
  /fragmented   sends text "frag-ment-ed" as 3 fragments ("frag-", "ment-",
                "ed"), then binary bytes 00..08 as 3 fragments (00 01 02 /
                03 04 05 / 06 07 08); then echoes. Uses websockets'
                ws.send(iterable), which puts each fragment in a non-FIN frame
                and ends the message with an EMPTY FIN continuation frame, so
                on the wire each message is 4 frames:
                  TEXT(fin=0,"frag-") CONT(fin=0,"ment-") CONT(fin=0,"ed")
                  CONT(fin=1,"")  -- same shape for the binary message.
  /fragmented-exact  same two messages, but exactly 3 frames each, FIN set on
                the third: TEXT(fin=0) CONT(fin=0) CONT(fin=1); then echoes.

With --compression deflate, websockets compresses each message (RSV1 on its
first frame) and answers a client offer with
"permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"
(client_max_window_bits only if the client offered it).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import threading

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

PING_PAYLOAD = b"sockeye"
FRAG_TEXT = ["frag-", "ment-", "ed"]
FRAG_BINARY = [bytes([0, 1, 2]), bytes([3, 4, 5]), bytes([6, 7, 8])]
PONG_TIMEOUT = 10.0


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        # str -> text frame, bytes -> binary frame: types are preserved.
        await ws.send(message)


async def send_exact_fragments(ws: ServerConnection, chunks: list[bytes], text: bool) -> None:
    """Send one message as exactly len(chunks) frames, FIN on the last one."""
    async with ws.send_context():
        if text:
            ws.protocol.send_text(chunks[0], fin=False)
        else:
            ws.protocol.send_binary(chunks[0], fin=False)
        for chunk in chunks[1:-1]:
            ws.protocol.send_continuation(chunk, fin=False)
        ws.protocol.send_continuation(chunks[-1], fin=True)


async def handler(ws: ServerConnection) -> None:
    path = ws.request.path.split("?", 1)[0] if ws.request else "/"
    try:
        if path == "/close-4001":
            await ws.close(4001, "server says bye")
            return
        if path == "/ping":
            pong = await ws.ping(PING_PAYLOAD)
            try:
                await asyncio.wait_for(pong, PONG_TIMEOUT)
            except asyncio.TimeoutError:
                await ws.close(1011, "no pong received")
                return
            await ws.send("pong-ok")
        elif path == "/fragmented":
            await ws.send(FRAG_TEXT)
            await ws.send(FRAG_BINARY)
        elif path == "/fragmented-exact":
            await send_exact_fragments(ws, [f.encode() for f in FRAG_TEXT], text=True)
            await send_exact_fragments(ws, FRAG_BINARY, text=False)
        await echo(ws)
    except ConnectionClosed:
        pass


def stop_on_signals() -> asyncio.Future:
    """A future that SIGTERM or SIGINT completes."""
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    return stop


async def serve_until(
    stop: asyncio.Future, name: str, handler, host: str, port: int, compression: str,
    max_size: int, **serve_kwargs,
) -> int:
    """Serve `handler` until `stop`, printing the LISTENING line once connections are accepted.

    Returns the exit status: 1 (and no LISTENING line) if it cannot listen on host:port.
    """
    try:
        server = await serve(
            handler,
            host,
            port,
            compression="deflate" if compression == "deflate" else None,
            max_size=max_size,
            ping_interval=None,  # no unsolicited keepalive pings
            close_timeout=10,
            **serve_kwargs,
        )
    except OSError as exc:
        print(f"{name}: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 1

    async with server:
        port = server.sockets[0].getsockname()[1]
        sys.stdout.write(f"LISTENING {port}\n")
        sys.stdout.flush()
        await stop
    return 0


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = ephemeral")
    parser.add_argument("--compression", choices=["none", "deflate"], default="none")
    parser.add_argument(
        "--max-size", type=int, default=64 * 1024 * 1024,
        help="max incoming message size in bytes (default 64 MiB)",
    )
    parser.add_argument(
        "--exit-on-stdin-eof", action="store_true",
        help="stop when stdin is closed (parent died)",
    )
    args = parser.parse_args()

    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)

    loop = asyncio.get_running_loop()
    stop = stop_on_signals()

    if args.exit_on_stdin_eof:
        # Daemon thread: a blocked read must not delay interpreter exit.
        def watch_stdin() -> None:
            try:
                while sys.stdin.buffer.read(65536):
                    pass
            except (OSError, ValueError):
                pass
            loop.call_soon_threadsafe(lambda: stop.done() or stop.set_result(None))
        threading.Thread(target=watch_stdin, daemon=True).start()

    return await serve_until(
        stop, "echo_server", handler, args.host, args.port, args.compression, args.max_size,
    )


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main()))
    except KeyboardInterrupt:
        sys.exit(130)
