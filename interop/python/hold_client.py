#!/usr/bin/env python3
"""Connect with Python `websockets`, print CONNECTED, then hold the connection.

Usage: hold_client.py URL [--max-seconds N]

stdout protocol: after the opening handshake succeeds, exactly one line
``CONNECTED`` (flushed); then nothing. The process then idles (still answering
pings) until it is killed - the interop test SIGKILLs it to make the TCP
connection drop without a close frame (server should report 1006,
wasClean=false). If the connection cannot be opened it prints one line
``CONNECT_FAILED <reason>`` and exits 1. It idles even if the server closes
the connection; it exits only when killed, or with status 0 after
--max-seconds (optional safety net against orphaned processes).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from websockets.asyncio.client import connect


async def main() -> int:
    parser = argparse.ArgumentParser(description="connect and hold a WebSocket connection")
    parser.add_argument("url")
    parser.add_argument("--compression", choices=["none", "deflate"], default="none")
    parser.add_argument("--max-seconds", type=float, default=None,
                        help="exit 0 after this long (default: never; safety net for orphans)")
    opts = parser.parse_args()

    try:
        ws = await connect(
            opts.url,
            compression="deflate" if opts.compression == "deflate" else None,
            ping_interval=None,
            open_timeout=10,
            proxy=None,
        )
    except Exception as exc:  # noqa: BLE001
        print(f"CONNECT_FAILED {type(exc).__name__}: {exc}".replace("\n", " "), flush=True)
        return 1

    print("CONNECTED", flush=True)
    # Keep `ws` referenced; its reader task answers pings while we sleep.
    if opts.max_seconds is None:
        await asyncio.Event().wait()
    else:
        await asyncio.sleep(opts.max_seconds)
    del ws
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
