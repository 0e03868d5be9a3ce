"""A `websockets` (asyncio) client of the chat rooms of `sockeye serve`, for the cluster tests
(crates/sockeye-cli/tests/cluster_peers.rs).

    python chat_client.py URL

URL is the room's ws:// URL with its query (name, since, epoch). The client offers the
subprotocol sockeye.chat.v1 and prints every JSON object the server sends, one per line, as
it came. On stdin, one JSON object per line: {"say": TEXT} sends TEXT; {"close": true} closes
with 1000 and exits. When the connection ends it prints {"closed": CODE} and exits.
"""

import asyncio
import json
import sys

import websockets


def out(obj):
    print(json.dumps(obj), flush=True)


async def commands(ws):
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            await ws.close(1000)
            return
        command = json.loads(line)
        if "say" in command:
            await ws.send(command["say"])
        elif command.get("close"):
            await ws.close(1000)
            return


async def main(url):
    async with websockets.connect(url, subprotocols=["sockeye.chat.v1"]) as ws:
        if ws.subprotocol != "sockeye.chat.v1":
            out({"error": f"subprotocol {ws.subprotocol!r}"})
            return
        sender = asyncio.create_task(commands(ws))
        try:
            async for message in ws:
                out(json.loads(message))
        except websockets.ConnectionClosed:
            pass
        out({"closed": ws.close_code})
        sender.cancel()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
