"""Answer every call after one second of ringing, and print every MESSAGE.

python examples/answer_bot.py --listen udp:127.0.0.1:5080
"""

from __future__ import annotations

import argparse
import asyncio

from sipwire import Call, UserAgent


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", default="udp:127.0.0.1:5080")
    args = parser.parse_args()
    async with UserAgent("sip:bot@127.0.0.1", listen=[args.listen]) as ua:

        @ua.on_call
        async def pick_up(call: Call) -> None:
            print(f"incoming call from {call.remote}")
            await call.ring()
            await asyncio.sleep(1)
            await call.answer()
            async for event in call.events():
                print(f"  {event}")
            print(f"call ended ({call.end_status})")

        print(f"listening on {args.listen}", flush=True)
        async for message in ua.messages():
            print(f"MESSAGE from {message.from_.uri}: {message.body.decode()}")


if __name__ == "__main__":
    try:
        asyncio.run(main())  # Ctrl-C cancels main(): the agent hangs up its calls and closes
    except KeyboardInterrupt:
        raise SystemExit(130) from None  # 128 + SIGINT, as shells expect
