"""(c) Receives messages a Rust agent sends in 0.4 wire mode and decodes
them the way munggoggo 0.4's SerializableObject.deserialize does: the body
is {"c_type", "c_data"}, c_type names the dataclass, c_data is its JSON
(dataclasses-json's from_json, as 0.4 uses it).

usage: decode.py URL QUEUE TOPIC COUNT
Declares the exclusive queue QUEUE (a direct send to the identity QUEUE
lands there) and binds it to the `topic` exchange with key TOPIC and to
`admin` (fanout); prints "ready", then one JSON line per DemoData message
(other traffic on `admin`, such as peer pings, is skipped as 0.4 does):
{"type", "user_id", "app_id", "timestamp", "c_type", "decoded"}, and exits
after COUNT messages (or fails after 30 s without them).
"""
import asyncio
import json
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Optional

import aio_pika
from dataclasses_json import dataclass_json


@dataclass_json
@dataclass
class DemoData:
    message: str
    date: Optional[datetime] = None


TYPES = {"DemoData": DemoData}


def deserialize(body: bytes):
    envelope = json.loads(body)
    c_type, c_data = envelope["c_type"], envelope["c_data"]
    if not isinstance(c_data, str):
        raise ValueError("c_data is not a string")
    return c_type, TYPES[c_type].from_json(c_data)


def is_user_message(message) -> bool:
    """What 0.4 hands its behaviours: not CONTROL or RPC (peer pings and
    system calls of other agents on the fanout exchange), and here only
    DemoData."""
    if message.type in ("CONTROL", "RPC"):
        return False
    try:
        return json.loads(message.body).get("c_type") in TYPES
    except ValueError:
        return False


async def main(url: str, queue_name: str, topic: str, count: int) -> None:
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(queue_name, exclusive=True)
        await queue.bind("topic", routing_key=topic)
        await queue.bind("admin", routing_key="admin")
        print("ready", flush=True)
        seen = 0
        async with queue.iterator() as messages:
            async for message in messages:
                async with message.process():
                    if not is_user_message(message):
                        continue
                    c_type, obj = deserialize(message.body)
                    date = obj.date
                    if isinstance(date, datetime):
                        date = date.astimezone(timezone.utc).isoformat()
                    print(json.dumps({
                        "type": message.type,
                        "user_id": message.user_id,
                        "app_id": message.app_id,
                        "timestamp": message.timestamp is not None,
                        "routing_key": message.routing_key,
                        "c_type": c_type,
                        "decoded": {"message": obj.message, "date": date},
                    }), flush=True)
                    seen += 1
                    if seen == count:
                        break
    finally:
        await connection.close()


if __name__ == "__main__":
    url, queue, topic, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    asyncio.run(asyncio.wait_for(main(url, queue, topic, count), 30))
