"""A voice bot: answer, play a prompt, record the caller, react to DTMF.

    python examples/voice_bot.py --listen udp:127.0.0.1:5080 [--prompt hello.wav] [--record-dir DIR]

Each call is answered, hears the prompt (a WAV file of any rate, or a
two-note chime when none is given) and is recorded to ``DIR/<call-id>.wav``.
Digits: ``1`` plays the prompt again, ``2`` reads back the caller's loudness
as tones, ``0`` echoes the caller until ``#``, ``*`` says goodbye and hangs
up. The bot's own code sees every frame the caller sends (``call.audio()``).
Try it with ``sipwire call sip:bot@127.0.0.1:5080 --media --dtmf 12*``.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import numpy as np

from sipwire import Call, RtpConfig, UserAgent


async def measure(call: Call, levels: list[float]) -> None:
    """Keep the loudness (RMS) of the caller's last second: frames carry their timestamp."""
    async for frame in call.audio():
        rms = float(np.sqrt(np.mean(frame.pcm.astype(np.float64) ** 2)))
        levels.append(rms)
        del levels[:-50]


async def greet(call: Call, prompt: str | None) -> None:
    if prompt is not None:
        await call.play(prompt)
    else:
        await call.play_tone(660.0, 0.2)
        await call.play_tone(880.0, 0.3)


async def serve(call: Call, prompt: str | None, record_dir: Path) -> None:
    print(f"call from {call.remote}", flush=True)
    await call.answer()
    call.record(str(record_dir / f"{call.call_id.replace('/', '_')}.wav"))
    levels: list[float] = []
    meter = asyncio.ensure_future(measure(call, levels))
    await greet(call, prompt)
    async for digit in call.dtmf():
        print(f"  DTMF {digit}", flush=True)
        if digit == "1":
            await greet(call, prompt)
        elif digit == "2":
            level = max(levels, default=0.0)
            await call.play_tone(400.0 + min(level, 3000.0) / 5, 0.5)
        elif digit == "0":
            call.echo = True
        elif digit == "#":
            call.echo = False
        elif digit == "*":
            await call.play_tone([350.0, 440.0], 0.5)
            await call.hangup()
            break
    meter.cancel()
    stats = call.media_stats()
    print(f"call ended ({call.end_status}); {stats}", flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", default="udp:127.0.0.1:5080")
    parser.add_argument("--prompt", help="WAV file played to every caller")
    parser.add_argument("--record-dir", default=".", type=Path)
    args = parser.parse_args()
    async with UserAgent("sip:bot@127.0.0.1", listen=[args.listen], rtp=RtpConfig()) as ua:

        @ua.on_call
        async def pick_up(call: Call) -> None:
            try:
                await serve(call, args.prompt, args.record_dir)
            except Exception as exc:  # one call's failure must not stop the bot
                print(f"call failed: {exc!r}", flush=True)

        print(f"listening on {args.listen}", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        raise SystemExit(130) from None
