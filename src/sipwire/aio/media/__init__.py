"""Media sessions at the asyncio edge: RTP/RTCP sockets per call, the media
clock, audio files and tones, and the audio methods of a call.

- :mod:`.config`: :class:`RtpConfig` (how an agent carries audio) and what
  it reports (:class:`MediaStats`, :class:`MediaTimeout`, :class:`DtmfReceived`);
- :mod:`.ports`: RTP/RTCP port pairs from a range;
- :mod:`.transform`: the stage between packets and the socket (plain, or SRTP);
- :mod:`.rates`: the application's audio rate to and from the codec's;
- :mod:`.stream`: one audio stream on its sockets;
- :mod:`.sources`: what a stream sends, and the readers of what it receives;
- :mod:`.session`: the media of each call and the agent's media clock;
- :mod:`.audio`: WAV in (any format, resampled) and out, tones;
- :mod:`.api`: ``call.play()``, ``record()``, ``audio()``, ``send_audio()``,
  ``send_dtmf()``, ``dtmf()``, ``media_stats()``.
"""

from sipwire.aio.media.api import CallAudioMixin, NoMediaError
from sipwire.aio.media.audio import WavFormatError, WavWriter, read_wav, resample, tone
from sipwire.aio.media.config import DtmfReceived, MediaStats, MediaTimeout, RtpConfig
from sipwire.aio.media.ports import NoFreePort, PortAllocator, RtpSockets
from sipwire.aio.media.rates import RateAdapter
from sipwire.aio.media.session import (
    CallMedia,
    MediaEnded,
    MediaEvent,
    MediaManager,
    MediaStarted,
)
from sipwire.aio.media.stream import AudioStream, StreamParams
from sipwire.aio.media.transform import PLAIN, PacketTransform, PlainTransform, SrtpTransform

__all__ = [
    "RtpConfig",
    "MediaStats",
    "MediaTimeout",
    "DtmfReceived",
    "MediaEnded",
    "MediaStarted",
    "MediaEvent",
    "MediaManager",
    "CallMedia",
    "CallAudioMixin",
    "NoMediaError",
    "AudioStream",
    "StreamParams",
    "PortAllocator",
    "RtpSockets",
    "NoFreePort",
    "PacketTransform",
    "PlainTransform",
    "PLAIN",
    "SrtpTransform",
    "RateAdapter",
    "WavWriter",
    "WavFormatError",
    "read_wav",
    "resample",
    "tone",
]
