#!/usr/bin/env python3
"""echo_server.py's endpoints over TLS (wss://), built on Python `websockets` and `ssl`.

Usage: tls_echo_server.py --cert CERT.pem --key KEY.pem [--port 0]
                          [--compression {none,deflate}] [--client-ca CA.pem]

Used as an independent TLS peer by Sockeye's interop tests (interop/tests/python_tls.rs).
Same paths and behaviour as echo_server.py (whose handler it reuses): echo, /close-4001,
/ping, /fragmented, /fragmented-exact. The TLS context offers ALPN "http/1.1"; with
--client-ca it requires a client certificate issued by that CA (mutual TLS), and the
/client-cert path first sends the client certificate's subject commonName as text.

stdout protocol: exactly one line, ``LISTENING <port>``, printed and flushed once the
server accepts connections. Logs go to stderr. Exit 1 (no LISTENING line) if the
certificate, key or port cannot be used. Stops on SIGTERM / SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import ssl
import sys

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from echo_server import handler as echo_handler


def client_common_name(ws: ServerConnection) -> str:
    ssl_object = ws.transport.get_extra_info("ssl_object")
    cert = ssl_object.getpeercert() if ssl_object else None
    for rdn in (cert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return value
    return "(none)"


async def handler(ws: ServerConnection) -> None:
    path = ws.request.path.split("?", 1)[0] if ws.request else "/"
    if path == "/client-cert":
        try:
            await ws.send(client_common_name(ws))
        except ConnectionClosed:
            return
    await echo_handler(ws)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = ephemeral")
    parser.add_argument("--cert", required=True, help="PEM certificate chain")
    parser.add_argument("--key", required=True, help="PEM private key")
    parser.add_argument("--client-ca", help="require client certificates from this CA")
    parser.add_argument("--compression", choices=["none", "deflate"], default="none")
    args = parser.parse_args()

    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(args.cert, args.key)
        if args.client_ca:
            context.load_verify_locations(args.client_ca)
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        print(f"tls_echo_server: cannot load certificates: {exc}", file=sys.stderr)
        return 1
    context.set_alpn_protocols(["http/1.1"])

    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))

    try:
        server = await serve(
            handler,
            args.host,
            args.port,
            ssl=context,
            compression="deflate" if args.compression == "deflate" else None,
            max_size=64 * 1024 * 1024,
            ping_interval=None,
            close_timeout=10,
        )
    except OSError as exc:
        print(f"tls_echo_server: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1

    async with server:
        port = server.sockets[0].getsockname()[1]
        sys.stdout.write(f"LISTENING {port}\n")
        sys.stdout.flush()
        await stop
    return 0


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main()))
    except KeyboardInterrupt:
        sys.exit(130)
