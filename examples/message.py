"""Send one instant message (RFC 3428).

python examples/message.py sip:bob@127.0.0.1:5080 "hello"
"""

from __future__ import annotations

import asyncio
import sys

from sipwire import UserAgent


async def main(target: str, text: str) -> None:
    async with UserAgent("sip:alice@127.0.0.1", listen=["udp:127.0.0.1:0"]) as ua:
        response = await ua.message(target, text)
        print(f"{response.status} {response.reason}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
