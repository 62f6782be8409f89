"""A munggoggo 0.4 agent (the real Python original, not an imitation) for
the opt-in test munggoggo-cli/tests/py04.rs; run it with py04's `run` script.

usage: run py04_agent.py IDENTITY TOPIC
Its one behaviour is subscribed to TOPIC and has 0.4's RPC subsystem. It
decodes every user message it receives (direct, topic, fanout) with 0.4's
SerializableObject.deserialize and prints one JSON line per event:
  {"event": "ready"}
  {"event": "received", "type", "routing_key", "c_type", "message"}
Each line "call METHOD" on its standard input calls METHOD through 0.4's
RPC subsystem (aio-pika RPC) with x=6, y=7, then with x=6 alone, and prints
  {"event": "result", "result": ...} and {"event": "error", "error": ...}
It stops when its standard input closes.
"""
import asyncio
import json
import logging
import sys

from behaviour import Behaviour
from core import Core
from messages import SerializableObject

logging.getLogger("aio_pika").setLevel(logging.WARNING)


def emit(**event) -> None:
    print(json.dumps(event), flush=True)


class Listen(Behaviour):
    async def setup(self):
        pass

    async def run(self):
        msg = await self.receive(timeout=0.5)
        if msg is None:
            return
        obj = SerializableObject.deserialize(msg.body.decode())
        emit(
            event="received",
            type=msg.type,
            routing_key=msg.routing_key,
            c_type=type(obj).__name__ if obj is not None else None,
            message=getattr(obj, "message", None),
        )


class Py04Agent(Core):
    def __init__(self, identity: str, topic: str):
        super().__init__(identity=identity)
        self.topic = topic
        self.listen = None

    async def setup(self) -> None:
        self.listen = Listen(self, binding_keys=[self.topic], configure_rpc=True)
        await self.add_runtime_dependency(self.listen)


async def main(identity: str, topic: str) -> None:
    loop = asyncio.get_running_loop()
    async with Py04Agent(identity, topic) as agent:
        emit(event="ready")
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            method = line.split()[1]
            rpc = agent.listen.rpc.rpc  # 0.4's RPC subsystem: an aio-pika RPC
            emit(event="result", result=await asyncio.wait_for(rpc.call(method, kwargs={"x": 6, "y": 7}), 10))
            try:
                await asyncio.wait_for(rpc.call(method, kwargs={"x": 6}), 10)
                emit(event="error", error=None)
            except Exception as e:
                emit(event="error", error=f"{type(e).__name__}: {e}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
