"""Userspace TCP relay that delays, jitters and re-chunks traffic.

The kernel here has tbf/htb but no netem, so delay and jitter are added by this asyncio proxy
(written here because no Debian package does delay+jitter+re-chunking as a plain TCP relay).
Each direction is a FIFO: a chunk leaves no earlier than its arrival + delay + U(0, jitter), and
never before the previous chunk, so byte order is kept (TCP semantics) while timing changes.

Run: python -m tidewise.traffic.relay --map 10.77.0.1:20443=127.0.0.1:443 ... --delay-ms 10
"""
from __future__ import annotations

import argparse
import asyncio
import random
import signal
import time


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float,
                jitter: float, chunk: int, rng: random.Random) -> None:
    queue: asyncio.Queue = asyncio.Queue()

    async def sender() -> None:
        last = 0.0
        while True:
            due, data = await queue.get()
            if data is None:
                break
            due = max(due, last)
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            last = due
            writer.write(data)
            await writer.drain()
        try:
            writer.write_eof()
        except (OSError, RuntimeError):
            pass

    task = asyncio.create_task(sender())
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            pieces = [data[i:i + chunk] for i in range(0, len(data), chunk)] if chunk else [data]
            for piece in pieces:
                due = time.monotonic() + delay + rng.uniform(0.0, jitter)
                queue.put_nowait((due, piece))
    except (ConnectionError, OSError):
        pass
    queue.put_nowait((0.0, None))
    try:
        await task
    except (ConnectionError, OSError):
        pass


async def _handle(client_r, client_w, target: tuple[str, int], delay: float, jitter: float,
                  chunk: int, rng: random.Random) -> None:
    try:
        server_r, server_w = await asyncio.open_connection(*target)
    except OSError:
        client_w.close()
        return
    await asyncio.gather(_pump(client_r, server_w, delay, jitter, chunk, rng),
                         _pump(server_r, client_w, delay, jitter, chunk, rng))
    for w in (client_w, server_w):
        try:
            w.close()
        except OSError:
            pass


async def serve(mapping: list[tuple[tuple[str, int], tuple[str, int]]], delay_ms: float,
                jitter_ms: float, chunk: int, seed: int) -> None:
    rng = random.Random(seed)
    servers = []
    for (lh, lp), target in mapping:
        def make(t=target):
            return lambda r, w: _handle(r, w, t, delay_ms / 1e3, jitter_ms / 1e3, chunk, rng)
        servers.append(await asyncio.start_server(make(), lh, lp, reuse_address=True))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("relay ready", flush=True)
    await stop.wait()
    for s in servers:
        s.close()


def _addr(text: str) -> tuple[str, int]:
    host, port = text.rsplit(":", 1)
    return host, int(port)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--map", action="append", required=True, help="LISTEN_HOST:PORT=TARGET_HOST:PORT")
    p.add_argument("--delay-ms", type=float, default=0.0)
    p.add_argument("--jitter-ms", type=float, default=0.0)
    p.add_argument("--chunk", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    mapping = [(_addr(m.split("=")[0]), _addr(m.split("=")[1])) for m in a.map]
    asyncio.run(serve(mapping, a.delay_ms, a.jitter_ms, a.chunk, a.seed))


if __name__ == "__main__":
    main()
