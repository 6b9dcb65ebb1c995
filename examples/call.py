"""Place a call, hold it, resume it and hang up.

python examples/call.py sip:bob@127.0.0.1:5080 [--password SECRET]
"""

from __future__ import annotations

import argparse
import asyncio

from sipwire import RequestFailed, UserAgent


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("target")
    parser.add_argument("--aor", default="sip:alice@127.0.0.1")
    parser.add_argument("--password")
    args = parser.parse_args()
    async with UserAgent(args.aor, password=args.password, listen=["udp:127.0.0.1:0"]) as ua:
        try:
            call = await ua.call(args.target, timeout=30)
        except RequestFailed as exc:
            print(f"call failed: {exc.status} {exc.reason}")
            return
        print(f"answered: {call}")
        await asyncio.sleep(1)
        await call.hold()
        print("on hold")
        await asyncio.sleep(1)
        await call.resume()
        print("resumed")
        await call.send_info("Signal=5\r\nDuration=160\r\n")
        await call.hangup()
        print(f"ended ({call.end_status})")


if __name__ == "__main__":
    asyncio.run(main())
