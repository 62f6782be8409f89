"""(a) Calls a method a Rust agent exposes, through aio-pika's RPC pattern,
as a munggoggo 0.4 agent does, and checks its result, its error, and that
a pickle naming Python code is refused.

usage: call_rust.py URL METHOD
Prints one line per check; exits 1 on the first failure.
"""
import asyncio
import datetime
import sys

import aio_pika
from aio_pika.patterns import RPC


async def main(url: str, method: str) -> None:
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        rpc = await RPC.create(channel)
        result = await asyncio.wait_for(rpc.call(method, kwargs={"x": 6, "y": 7}), 20)
        check(result == 42, f"result {result!r}")
        try:
            await asyncio.wait_for(rpc.call(method, kwargs={"x": 6}), 20)
        except asyncio.TimeoutError:
            fail("error: the call timed out instead of raising")
        except Exception as e:  # the pickled exception of the Rust agent
            text = str(e)
            check(isinstance(e, RuntimeError) and "`y`" in text, f"error {type(e).__name__}: {text}")
        else:
            fail("error: a call without `y` succeeded")
        # A pickle that names Python code (here the class datetime.date) is
        # refused by the Rust side, never loaded.
        try:
            await asyncio.wait_for(rpc.call(method, kwargs={"x": datetime.date(2020, 1, 1), "y": 7}), 20)
        except asyncio.TimeoutError:
            fail("global: the call timed out instead of raising")
        except Exception as e:
            text = str(e)
            check(isinstance(e, RuntimeError) and "global" in text, f"global {type(e).__name__}: {text}")
        else:
            fail("global: a call with a class instance succeeded")
        await rpc.close()
    finally:
        await connection.close()


def check(ok: bool, what: str) -> None:
    print(("ok " if ok else "FAILED ") + what, flush=True)
    if not ok:
        sys.exit(1)


def fail(what: str) -> None:
    check(False, what)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
