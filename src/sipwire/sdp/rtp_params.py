"""What an m-line says about its RTP transport beyond the codecs: packet time,
the RTCP port, and RTP/RTCP multiplexing.

- ``a=ptime`` and ``a=maxptime`` (RFC 8866 §6.4, §6.5): milliseconds of
  media per packet the side that wrote them wants to receive, and the most
  it can take.
- ``a=rtcp`` (RFC 3605): the port (and optionally the address) RTCP goes to
  when it is not the RTP port + 1::

      rtcp-attribute = "a=rtcp:" port [nettype space addrtype space
                       connection-address] CRLF

- ``a=rtcp-mux`` (RFC 5761 §5.1.1): RTP and RTCP share the RTP port. It is
  in force when the offer had it and the answer kept it.

Sans-I/O: descriptions in, a small value out.
"""

from __future__ import annotations

from dataclasses import dataclass

from sipwire.sdp.session import MediaDescription, SessionDescription

__all__ = ["RtpParameters", "rtp_parameters"]


@dataclass(frozen=True, slots=True)
class RtpParameters:
    """The transport parameters of one negotiated m-line, from our point of view."""

    ptime: int | None = None
    """The peer's ``a=ptime`` (ms), or None."""
    maxptime: int | None = None
    """The peer's ``a=maxptime`` (ms), or None."""
    rtcp_port: int | None = None
    """Where the peer wants RTCP (``a=rtcp``), or None for RTP port + 1."""
    rtcp_address: str | None = None
    """The address of ``a=rtcp`` when it names one, else None (the RTP address)."""
    rtcp_mux: bool = False
    """RTP and RTCP on one port: both descriptions carry ``a=rtcp-mux``."""


def _milliseconds(value: str | None) -> int | None:
    if value is None:
        return None
    text = value.strip()
    # ptime may be fractional in the wild ("20.0"); whole milliseconds are kept.
    whole = text.split(".", 1)[0]
    if not whole.isascii() or not whole.isdigit() or len(whole) > 5:
        return None
    number = int(whole)
    return number if number > 0 else None


def _rtcp(value: str | None) -> tuple[int | None, str | None]:
    """``a=rtcp`` as (port, address); (None, None) when absent or malformed."""
    if value is None:
        return None, None
    parts = value.split()
    if not parts or not parts[0].isascii() or not parts[0].isdigit() or len(parts[0]) > 5:
        return None, None
    port = int(parts[0])
    if not 0 < port <= 65535:
        return None, None
    address = parts[3].split("/", 1)[0] if len(parts) >= 4 else None
    return port, address


def rtp_parameters(
    local: SessionDescription | None, remote: SessionDescription | None, index: int
) -> RtpParameters:
    """The parameters of m-line ``index`` from our description and the peer's.

    Either may be None (not negotiated yet): what it would say is taken as absent.
    """
    theirs: MediaDescription | None = None
    if remote is not None and index < len(remote.media):
        theirs = remote.media[index]
    ours: MediaDescription | None = None
    if local is not None and index < len(local.media):
        ours = local.media[index]
    if theirs is None:
        return RtpParameters()
    port, address = _rtcp(theirs.get("rtcp"))
    return RtpParameters(
        ptime=_milliseconds(theirs.get("ptime")),
        maxptime=_milliseconds(theirs.get("maxptime")),
        rtcp_port=port,
        rtcp_address=address,
        rtcp_mux=ours is not None and ours.has("rtcp-mux") and theirs.has("rtcp-mux"),
    )
