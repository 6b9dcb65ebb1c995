"""sipp's built-in ``uac_pcap`` scenario toward ``sipwire answer --record``: the
G.711 A-law speech and the RFC 4733 digit that sip-tester ships (replayed from
pcap files) are recorded, with the audio's energy in the speech band, and the
digit is printed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from sipwire import read_wav
from tests.aio.media.helpers import band_share
from tests.cli.cli_helpers import answerer, wait_for
from tests.interop.sipp import SIPP, free_port

PCAPS = Path("/usr/share/sip-tester")

pytestmark = [
    pytest.mark.skipif(SIPP is None, reason="sipp not installed (Debian: sip-tester)"),
    pytest.mark.skipif(
        not (PCAPS / "g711a.pcap").exists(), reason="sip-tester's pcap files are not installed"
    ),
    pytest.mark.timeout(90),
]


def test_sipp_uac_pcap_is_recorded_and_its_digit_printed(tmp_path: Path) -> None:
    assert SIPP is not None
    port, sipp_port = free_port(), free_port()
    (tmp_path / "pcap").symlink_to(PCAPS)  # the scenario plays pcap/g711a.pcap ...
    recording = tmp_path / "speech.wav"
    with answerer(
        tmp_path / "answer", f"udp:127.0.0.1:{port}", extra=("--record", str(recording))
    ) as server:
        sipp = subprocess.run(
            [
                SIPP, "-sn", "uac_pcap", f"127.0.0.1:{port}", "-m", "1", "-i", "127.0.0.1",
                "-p", str(sipp_port), "-nostdin", "-timeout", "40",
            ],
            cwd=tmp_path, capture_output=True, timeout=60, check=False,
        )  # fmt: skip
        assert sipp.returncode == 0, sipp.stderr.decode(errors="replace")
        out = wait_for(server.stdout, "media PCMA/8000")
    assert [line for line in out.splitlines() if line.startswith("DTMF")] == ["DTMF 1"]
    pcm = read_wav(recording)
    assert len(pcm) > 4 * 8000
    speech = pcm.astype(np.float64)
    assert np.sqrt(np.mean(speech**2)) > 300
    assert band_share(pcm, 100.0, 3800.0) > 0.8
