"""Soak test of `sockeye serve` (issue 19): connections churning for a long time, with
permessage-deflate on, while the server's memory, file descriptors and tasks are sampled.

    interop/.venv/bin/python benches/soak.py [--minutes 30] [--workers 1000] [--hold 9000]
        [--out PREFIX]

Each worker loops: connect to /echo (or /chat one time in ten) offering permessage-deflate, as
Python `websockets` does by default; exchange 1 to 5 messages of 20 B to 16 KiB; then end the
connection one of four ways: a clean close (most), an abort without a close frame, a close
while the server still has data for it that it never reads, or an abort in the middle of the
opening handshake. `--hold N` more connections stay open the whole time (`sockeye bench --mode
idle`, which answers pings), so that the server carries `workers + hold` connections while
they churn; one Python process cannot churn 10,000 at once. Every 5 s the server's RSS (/proc/PID/status), open file descriptors
(/proc/PID/fd) and live tokio tasks (`sockeye_tasks_alive` on /metrics) are sampled. After the
churn stops the script waits for the server to settle and samples again.

Writes PREFIX.csv (the samples), PREFIX.svg (RSS and connections over time, a picture with no
dependencies) and prints one JSON summary line. The server is pinned to CPU 1 and this client
to CPU 0 when the machine has two.
"""

import argparse
import asyncio
import json
import os
import random
import re
import resource
import subprocess
import sys
import time
import urllib.request

import websockets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def metric(addr, name):
    text = urllib.request.urlopen(f"http://{addr}/metrics", timeout=5).read().decode()
    m = re.search(rf"^{name} (\d+)", text, re.M)
    return int(m.group(1)) if m else -1


class Stats:
    def __init__(self):
        self.done = 0
        self.errors = 0
        self.error_kinds = {}
        self.by_end = {"close": 0, "abort": 0, "unread": 0, "handshake": 0}


async def worker(addr, stats, stop, rng):
    payload_cache = {}
    while not stop.is_set():
        end = rng.choices(["close", "abort", "unread", "handshake"], [70, 15, 10, 5])[0]
        path = "/chat" if rng.random() < 0.1 else "/echo"
        try:
            if end == "handshake":
                reader, writer = await asyncio.open_connection(*addr.split(":"))
                writer.write(b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
                await writer.drain()
                writer.transport.abort()
            else:
                ws = await websockets.connect(f"ws://{addr}{path}", max_size=None, open_timeout=30)
                for _ in range(rng.randint(1, 5)):
                    # Chat messages go to every member: small ones, as chats have.
                    size = rng.choice([20, 200] if path == "/chat" else [20, 200, 2000, 16384])
                    msg = payload_cache.setdefault(size, "".join(rng.choice("abcdefgh ") for _ in range(size)))
                    await ws.send(msg)
                    if path == "/echo" and end != "unread":
                        await asyncio.wait_for(ws.recv(), 30)
                if end == "close":
                    await ws.close()
                elif end == "unread":
                    # The server still has echoes for it; it never reads them.
                    await asyncio.sleep(0.05)
                    ws.transport.abort()
                else:
                    ws.transport.abort()
            stats.by_end[end] += 1
            stats.done += 1
        except Exception as e:
            stats.errors += 1
            kind = type(e).__name__
            if isinstance(e, websockets.ConnectionClosed) and e.rcvd is not None:
                kind += f" {e.rcvd.code}"
            stats.error_kinds[kind] = stats.error_kinds.get(kind, 0) + 1
            await asyncio.sleep(0.1)


def svg(samples, path):
    """RSS (MiB) and open connections over time, as a self-contained SVG."""
    w, h, pad = 900, 360, 50
    t_max = max(s["t"] for s in samples) or 1
    rss_max = max(s["rss_mib"] for s in samples) * 1.1 or 1
    conn_max = max(max(s["open"] for s in samples), 1) * 1.1

    def line(key, top, color):
        pts = " ".join(
            f"{pad + (w - 2 * pad) * s['t'] / t_max:.1f},{h - pad - (h - 2 * pad) * s[key] / top:.1f}"
            for s in samples
        )
        return f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{pts}"/>'

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
        f'<rect width="{w}" height="{h}" fill="white"/>',
        f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="#888"/>',
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{h - pad}" stroke="#888"/>',
        line("rss_mib", rss_max, "#1f6feb"),
        line("open", conn_max, "#d1242f"),
        f'<text x="{pad}" y="{pad - 10}" fill="#1f6feb">server RSS, MiB (0 to {rss_max:.0f})</text>',
        f'<text x="{w - pad}" y="{pad - 10}" fill="#d1242f" text-anchor="end">open connections (0 to {conn_max:.0f})</text>',
        f'<text x="{w / 2}" y="{h - 15}" text-anchor="middle">minutes (0 to {t_max / 60:.1f})</text>',
        "</svg>",
    ]
    with open(path, "w") as f:
        f.write("\n".join(parts))


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--minutes", type=float, default=30)
    p.add_argument("--workers", type=int, default=1000)
    p.add_argument("--hold", type=int, default=9000)
    p.add_argument("--binary", default=os.path.join(ROOT, "target/release/sockeye"))
    p.add_argument("--out", default=os.path.join(ROOT, "benches/results", time.strftime("%Y-%m-%d") + "-soak"))
    args = p.parse_args()
    raise_fd_limit()
    two_cpus = (os.cpu_count() or 1) >= 2
    cmd = [args.binary, "serve", "--listen", "127.0.0.1:0", "--max-connections", "100000", "--log-level", "warn"]
    if two_cpus:
        cmd = ["taskset", "-c", "1"] + cmd
        os.sched_setaffinity(0, {0})
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, preexec_fn=raise_fd_limit)
    addr = server.stdout.readline().decode().split()[1]
    # taskset execs the server in place, so the pid is the server's.
    pid = server.pid
    await asyncio.sleep(1)
    samples = []
    start = time.monotonic()

    def sample(phase, stats):
        s = {
            "t": round(time.monotonic() - start, 1),
            "phase": phase,
            "rss_mib": round(rss_kib(pid) / 1024, 2),
            "fds": fds(pid),
            "tasks": metric(addr, "sockeye_tasks_alive"),
            "open": metric(addr, "sockeye_connections_open"),
            "done": stats.done,
            "errors": stats.errors,
        }
        samples.append(s)
        return s

    stats = Stats()
    baseline = sample("baseline", stats)
    holder = None
    if args.hold:
        holder = subprocess.Popen(
            [args.binary, "bench", f"ws://{addr}/echo", "--mode", "idle", "-c", str(args.hold),
             "-w", "0", "-d", str(args.minutes * 60)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=raise_fd_limit)
    stop = asyncio.Event()
    rng = random.Random(1)
    tasks = [asyncio.create_task(worker(addr, stats, stop, random.Random(rng.random()))) for _ in range(args.workers)]
    end_at = start + args.minutes * 60
    while time.monotonic() < end_at:
        await asyncio.sleep(5)
        s = sample("churn", stats)
        print(json.dumps(s), file=sys.stderr, flush=True)
    stop.set()
    await asyncio.wait(tasks, timeout=60)
    if holder:
        holder.terminate()
        holder.wait(30)
    # Connections the server is still draining (lingering closes, write timeouts) end within
    # the server's timeouts; wait them out.
    for _ in range(12):
        await asyncio.sleep(5)
        final = sample("settled", stats)
        if final["open"] == 0 and final["fds"] <= baseline["fds"] and final["tasks"] <= baseline["tasks"]:
            break
    server.terminate()
    server.wait(10)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out + ".csv", "w") as f:
        keys = list(samples[0])
        f.write(",".join(keys) + "\n")
        for s in samples:
            f.write(",".join(str(s[k]) for k in keys) + "\n")
    svg(samples, args.out + ".svg")
    churn = [s for s in samples if s["phase"] == "churn"]
    second_half = churn[len(churn) // 2 :]
    slope = 0.0
    if len(second_half) >= 2:
        dt = (second_half[-1]["t"] - second_half[0]["t"]) / 60
        slope = (second_half[-1]["rss_mib"] - second_half[0]["rss_mib"]) / dt if dt else 0.0
    summary = {
        "minutes": args.minutes,
        "workers": args.workers,
        "held": args.hold,
        "connections": stats.done,
        "errors": stats.errors,
        "error_kinds": stats.error_kinds,
        "ends": stats.by_end,
        "rss_mib": {"baseline": baseline["rss_mib"], "peak": max(s["rss_mib"] for s in samples), "final": final["rss_mib"]},
        "rss_slope_mib_per_min_second_half": round(slope, 3),
        "fds": {"baseline": baseline["fds"], "final": final["fds"]},
        "tasks": {"baseline": baseline["tasks"], "final": final["tasks"]},
        "open_final": final["open"],
        "csv": os.path.relpath(args.out + ".csv", ROOT),
        "svg": os.path.relpath(args.out + ".svg", ROOT),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    asyncio.run(main())
