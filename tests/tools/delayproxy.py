#!/usr/bin/env python3
"""delayproxy.py — a link with a round-trip time, for tests on a kernel
without netem: listens on LISTEN_HOST:LISTEN_PORT, forwards each connection
to TARGET_HOST:TARGET_PORT, and hands every chunk on DELAY_MS after it
arrived, in order, in both directions (RTT = 2 x DELAY_MS; pipelined
traffic is not slowed beyond that). Writes the bound port to PORT_FILE.

usage: delayproxy.py LISTEN_HOST LISTEN_PORT TARGET_HOST TARGET_PORT DELAY_MS PORT_FILE
Test use only."""
import asyncio
import sys


async def pipe(reader, writer, delay):
    """Copy reader to writer, each chunk DELAY seconds after it came."""
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def send():
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                break
            writer.write(data)
            await writer.drain()
        writer.close()

    sender = asyncio.ensure_future(send())
    try:
        while True:
            data = await reader.read(65536)
            queue.put_nowait((loop.time() + delay, data or None))
            if not data:
                break
    except (ConnectionError, OSError):
        queue.put_nowait((loop.time(), None))
    try:
        await sender
    except (ConnectionError, OSError):
        pass


async def main():
    lhost, lport, thost, tport, delay_ms, port_file = sys.argv[1:7]
    delay = float(delay_ms) / 1000.0

    async def handle(creader, cwriter):
        try:
            treader, twriter = await asyncio.open_connection(thost, int(tport))
        except OSError:
            cwriter.close()
            return
        await asyncio.gather(pipe(creader, twriter, delay), pipe(treader, cwriter, delay))

    server = await asyncio.start_server(handle, lhost, int(lport))
    with open(port_file + ".tmp", "w") as f:
        f.write("%d\n" % server.sockets[0].getsockname()[1])
    import os
    os.rename(port_file + ".tmp", port_file)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
