"""(b) Exposes a method through aio-pika's RPC pattern, as a munggoggo 0.4
agent with the RPC subsystem does, for a Rust agent and the CLI to call.

usage: expose.py URL METHOD
The method is `(x, y, flag=None, **kw) -> x * y` like 0.4's
example_rpc_method, and raises ValueError("y must not be 0") for y == 0.
Prints "ready" once it consumes the method queue, then serves until its
standard input closes; it deletes the method queue before it exits.
"""
import asyncio
import sys

import aio_pika
from aio_pika.patterns import RPC


async def multiply(x, y, flag=None, **kw):
    if y == 0:
        raise ValueError("y must not be 0")
    return x * y


async def main(url: str, method: str) -> None:
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        rpc = await RPC.create(channel)
        await rpc.register(method, multiply, auto_delete=False)
        print("ready", flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)
        await rpc.unregister(multiply)
        await channel.queue_delete(method)
        await rpc.close()
    finally:
        await connection.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
