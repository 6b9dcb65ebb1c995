"""The seeds of the fuzzer's mutations (see :mod:`tests.load.fuzz`).

Messages built here (requests of every method, in and out of dialogs, and
responses, with placeholders the :class:`~tests.load.mutate.Mutator` fills
in) and the RFC 4475 / RFC 5118 torture messages, read at run time from
:data:`TORTURE` (default /work/shared/torture, or $SIPWIRE_TORTURE).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.load.sipmsg import sdp_offer

__all__ = ["TORTURE", "Seed", "own_corpus", "seed_corpus", "torture_corpus"]

TORTURE = Path(os.environ.get("SIPWIRE_TORTURE", "/work/shared/torture"))


@dataclass(frozen=True)
class Seed:
    name: str
    data: bytes
    dialog: bool = False
    """An in-dialog request: @TT@ is the server's To tag, @CID@ / @FT@ the dialog's ids."""


_SDP = sdp_offer("@H@").replace(b"40000", b"@RTP@")


def _msg(first: str, headers: Sequence[str], body: bytes = b"", ctype: str = "") -> bytes:
    lines = [first, *headers]
    if body:
        lines.append(f"Content-Type: {ctype or 'application/sdp'}")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _request(
    method: str,
    extra: Sequence[str] = (),
    body: bytes = b"",
    ctype: str = "",
    *,
    uri: str = "sip:answer@@SH@",
    dialog: bool = False,
    cseq: int = 1,
    cseq_method: str | None = None,
) -> bytes:
    to_tag = ";tag=@TT@" if dialog else ""
    headers = [
        "Via: SIP/2.0/UDP @H@:@P@;branch=z9hG4bK@BR@;rport",
        "Max-Forwards: 70",
        'From: "Fuzz" <sip:fuzz@@H@>;tag=@FT@',
        f"To: <sip:answer@@SH@>{to_tag}",
        "Call-ID: @CID@",
        f"CSeq: {cseq} {cseq_method or method}",
        "Contact: <sip:fuzz@@H@:@P@>",
        *extra,
    ]
    return _msg(f"{method} {uri} SIP/2.0", headers, body, ctype)


def _response(status: str, method: str, extra: Sequence[str] = (), body: bytes = b"") -> bytes:
    headers = [
        "Via: SIP/2.0/UDP @SH@;branch=z9hG4bK@BR@;received=127.0.0.1",
        'From: "Fuzz" <sip:fuzz@@H@>;tag=@FT@',
        "To: <sip:answer@@SH@>;tag=@TT@",
        "Call-ID: @CID@",
        f"CSeq: 1 {method}",
        *extra,
    ]
    return _msg(f"SIP/2.0 {status}", headers, body)


def own_corpus() -> list[Seed]:
    """Messages of every kind, with placeholders filled in per datagram."""
    multipart = (
        b"--b1\r\nContent-Type: application/sdp\r\n\r\n"
        + _SDP
        + b"\r\n--b1\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b1--\r\n"
    )
    auth = (
        'Authorization: Digest username="alice", realm="sipwire.test", nonce="abc", '
        'uri="sip:answer@@SH@", response="0123456789abcdef0123456789abcdef", algorithm=MD5, '
        'qop=auth, nc=00000001, cnonce="xyz"'
    )
    out = [
        Seed(
            "invite",
            _request(
                "INVITE",
                ["Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE, PRACK", "Supported: timer"],
                _SDP,
            ),
        ),
        Seed(
            "invite-100rel-timer",
            _request(
                "INVITE",
                [
                    "Supported: 100rel, timer, replaces",
                    "Session-Expires: 1800;refresher=uac",
                    "Min-SE: 90",
                    "Record-Route: <sip:127.0.0.9:5060;lr>",
                    "Expires: 120",
                    "Accept: application/sdp",
                    "Priority: urgent",
                ],
                _SDP,
            ),
        ),
        Seed("invite-no-offer", _request("INVITE", ["Require: 100rel"])),
        Seed(
            "invite-multipart",
            _request("INVITE", [], multipart, 'multipart/mixed;boundary="b1"'),
        ),
        Seed(
            "invite-ipv6",
            _request(
                "INVITE",
                ["Route: <sip:[::1]:5060;lr>"],
                _SDP.replace(b"IN IP4 @H@", b"IN IP6 ::1"),
                uri="sip:answer@[::1]",
            ),
        ),
        Seed("options", _request("OPTIONS", ["Accept: application/sdp", "Supported: path"])),
        Seed(
            "register",
            _request(
                "REGISTER",
                ["Expires: 3600", auth, "Path: <sip:127.0.0.9;lr>"],
                uri="sip:@SH@",
            ),
        ),
        Seed("bye-no-dialog", _request("BYE", cseq=2)),
        Seed("cancel", _request("CANCEL", ['Reason: SIP;cause=487;text="gone"'])),
        Seed("ack-no-dialog", _request("ACK")),
        Seed("message", _request("MESSAGE", [], b"hello \xe2\x98\x83 fuzz", "text/plain")),
        Seed(
            "subscribe",
            _request(
                "SUBSCRIBE", ["Event: presence", "Expires: 600", "Accept: application/pidf+xml"]
            ),
        ),
        Seed(
            "notify",
            _request(
                "NOTIFY",
                ["Event: dialog", "Subscription-State: active;expires=60"],
                b"<x/>",
                "application/dialog-info+xml",
            ),
        ),
        Seed("publish", _request("PUBLISH", ["Event: presence", "Expires: 60"], b"<p/>", "a/b")),
        Seed(
            "refer",
            _request(
                "REFER",
                ["Refer-To: <sip:carol@127.0.0.9?Replaces=abc%3Bto-tag%3D1%3Bfrom-tag%3D2>"],
            ),
        ),
        Seed("info", _request("INFO", [], b"Signal=5\r\nDuration=160\r\n", "application/dtmf")),
        Seed("update", _request("UPDATE", [], _SDP)),
        Seed("prack", _request("PRACK", ["RAck: 1 1 INVITE"])),
        Seed("unknown-method", _request("FROBNICATE", ["Require: frob"])),
        Seed("200-invite", _response("200 OK", "INVITE", ["Contact: <sip:x@@H@>"], _SDP)),
        Seed("180", _response("180 Ringing", "INVITE", ["RSeq: 1", "Require: 100rel"])),
        Seed("100", _response("100 Trying", "INVITE")),
        Seed(
            "401",
            _response(
                "401 Unauthorized",
                "REGISTER",
                ['WWW-Authenticate: Digest realm="x", nonce="n", qop="auth", algorithm=SHA-256'],
            ),
        ),
        Seed("486", _response("486 Busy Here", "INVITE", ["Retry-After: 30 (lunch);duration=60"])),
        Seed("302", _response("302 Moved", "INVITE", ["Contact: <sip:a@127.0.0.9>;q=0.7"])),
        Seed("200-options", _response("200 OK", "OPTIONS", ["Allow: INVITE"])),
    ]
    in_dialog = [
        ("ACK", [], b"", "", 1),
        ("BYE", ["Reason: Q.850;cause=16"], b"", "", 3),
        ("INVITE", ["Session-Expires: 90"], _SDP, "", 4),
        ("UPDATE", [], _SDP, "", 5),
        ("PRACK", ["RAck: 1 1 INVITE"], b"", "", 6),
        ("INFO", [], b"Signal=1\r\n", "application/dtmf-relay", 7),
        ("REFER", ["Refer-To: <sip:x@127.0.0.9>", "Refer-Sub: false"], b"", "", 8),
        (
            "NOTIFY",
            ["Event: refer", "Subscription-State: terminated"],
            b"SIP/2.0 200 OK\r\n",
            "message/sipfrag",
            9,
        ),
        ("MESSAGE", [], b"in dialog", "text/plain", 10),
        ("OPTIONS", [], b"", "", 11),
        ("CANCEL", [], b"", "", 1),
    ]
    for method, extra, body, ctype, cseq in in_dialog:
        data = _request(method, extra, body, ctype, dialog=True, cseq=cseq)
        out.append(Seed(f"dialog-{method.lower()}", data, dialog=True))
    return out


def torture_corpus(root: Path) -> list[Seed]:
    """The RFC 4475 / RFC 5118 messages (raw and wire forms), read as bytes at run time."""
    out: list[Seed] = []
    for rfc in ("rfc4475", "rfc5118"):
        manifest = root / rfc / "manifest.json"
        if not manifest.exists():
            continue
        for entry in json.loads(manifest.read_text(encoding="utf-8")):
            for key in ("file", "wire_file"):
                name = entry.get(key)
                if name and (root / rfc / name).exists():
                    out.append(Seed(f"{rfc}/{name}", (root / rfc / name).read_bytes()))
        for extra in sorted((root / rfc / "extra").glob("*.dat")):
            out.append(Seed(f"{rfc}/extra/{extra.name}", extra.read_bytes()))
    return out


def seed_corpus(torture: Path = TORTURE) -> list[Seed]:
    return own_corpus() + torture_corpus(torture)
