"""Register at a PBX or registrar (auth name may differ from the extension), then wait.

python examples/register.py sip:alice@pbx.example.com --user 1001 --password SECRET

The agent listens on every interface; Via and Contact carry the address of the
default route.
"""

from __future__ import annotations

import argparse
import asyncio

from sipwire import UserAgent


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("aor")
    parser.add_argument("--registrar")
    parser.add_argument("--user")
    parser.add_argument("--password", required=True)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    async with UserAgent(
        args.aor, username=args.user, password=args.password, listen=["udp:0.0.0.0:0"]
    ) as ua:
        registration = await ua.register(args.registrar, expires=300)
        print(f"registered for {registration.granted} s; bindings: {registration.bindings}")
        await asyncio.sleep(args.seconds)  # refreshes happen by themselves
        await ua.unregister(registration)
        print("unregistered")


if __name__ == "__main__":
    asyncio.run(main())
