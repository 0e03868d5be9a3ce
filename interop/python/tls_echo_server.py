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
import ssl
import sys

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from echo_server import handler as echo_handler, serve_until, stop_on_signals


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

    return await serve_until(
        stop_on_signals(), "tls_echo_server", handler, args.host, args.port, args.compression,
        64 * 1024 * 1024, ssl=context,
    )


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main()))
    except KeyboardInterrupt:
        sys.exit(130)
