"""Session timers (RFC 4028): negotiation of the interval and of the refresher.

``Session-Expires: <delta-seconds>[;refresher=uac|uas]`` travels in the
INVITE/UPDATE and its 2xx; ``Min-SE`` bounds it from below, and 422 asks
for a larger one. Once the session is confirmed the refresher sends a
refresh at half the interval; the other side sends BYE if none arrived
by ``interval - min(32, interval / 3)`` (§10).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sipwire.message import Request, Response
from sipwire.timerheap import TimerHandle

if TYPE_CHECKING:
    from sipwire.core.client import ClientRequest
    from sipwire.core.host import SessionHost

__all__ = ["SessionTimer", "parse_session_expires"]


def parse_session_expires(value: str | None) -> tuple[int, str | None] | None:
    """``"1800;refresher=uac"`` → (1800, "uac"); None when absent or malformed."""
    if not value:
        return None
    head, *params = value.split(";")
    interval = _delta(head)
    if interval is None:
        return None
    refresher = None
    for param in params:
        name, _, val = param.partition("=")
        if name.strip().lower() == "refresher" and val.strip().lower() in ("uac", "uas"):
            refresher = val.strip().lower()
    return interval, refresher


def _delta(text: str) -> int | None:
    text = text.strip()
    if not text.isdigit() or len(text) > 10:
        return None
    return int(text)


class SessionTimer:
    """The RFC 4028 state of one session; mixed into the session classes."""

    def __init__(self, host: SessionHost) -> None:
        self._st_host = host
        self.session_interval: int | None = None
        """The negotiated interval in seconds, None without session timers."""
        self.we_refresh = False
        self.peer_allow: list[str] = []
        self._st_timer: TimerHandle | None = None

    # -- hooks --------------------------------------------------------------------------------
    def refresh_session(self, now: float) -> None:
        """Hook: send a session refresh."""
        raise NotImplementedError

    def session_expired(self, now: float) -> None:
        """Hook: the session expired without a refresh."""
        raise NotImplementedError

    # -- the requests we send -------------------------------------------------------------------
    def session_timer_for_request(self) -> list[tuple[str, str]]:
        """Session-Expires / Min-SE for an INVITE or UPDATE we send."""
        config = self._st_host.config
        interval = self.session_interval or config.session_expires
        if interval is None:
            return []
        refresher = ";refresher=uac" if self.session_interval is not None else ""
        return [("Session-Expires", f"{interval}{refresher}"), ("Min-SE", str(config.min_se))]

    def session_timer_from_2xx(self, response: Response, now: float) -> None:
        """The 2xx to our INVITE/UPDATE: take the interval and who refreshes (§7.2)."""
        self.peer_allow = response.allow or self.peer_allow
        parsed = parse_session_expires(response.headers.get("Session-Expires"))
        if parsed is None:
            self.session_interval = None
            self.stop_session_timer()
            return
        self.session_interval, refresher = parsed
        self.we_refresh = refresher != "uas"
        self.arm_session_timer(now)

    def retry_422(self, creq: ClientRequest, response: Response, now: float) -> bool:
        """422 Session Interval Too Small: send the INVITE again with the Min-SE asked for."""
        min_se = _delta((response.headers.get("Min-SE") or "0").split(";")[0]) or 0
        request = creq.request
        current = parse_session_expires(request.headers.get("Session-Expires"))
        if min_se <= 0 or (current is not None and current[0] >= min_se):
            return False
        request.headers.set("Session-Expires", str(min_se))
        request.headers.set("Min-SE", str(min_se))
        request.headers.set("CSeq", f"{request.cseq.seq + 1} {request.method}")
        creq.final = None
        creq.provisional = None
        creq.targets = None
        self._st_host.sender.send(creq, now)
        return True

    # -- the requests we receive -----------------------------------------------------------------
    def check_session_interval(self, request: Request) -> Response | None:
        """422 with our Min-SE when the requested interval is below it (§8.1)."""
        parsed = parse_session_expires(request.headers.get("Session-Expires"))
        min_se = self._st_host.config.min_se
        if parsed is not None and parsed[0] < min_se:
            return request.reply(422, headers=[("Min-SE", str(min_se))])
        return None

    def session_timer_for_2xx(self, request: Request, now: float) -> list[tuple[str, str]]:
        """Session-Expires (and Require: timer) for our 2xx to an INVITE/UPDATE (§9)."""
        self.peer_allow = request.allow or self.peer_allow
        config = self._st_host.config
        parsed = parse_session_expires(request.headers.get("Session-Expires"))
        peer_supports = "timer" in request.supported
        if parsed is None:
            if config.session_expires is None:
                self.session_interval = None
                return []
            interval, refresher = config.session_expires, None
        else:
            interval, refresher = parsed
            if config.session_expires is not None:
                interval = min(interval, max(config.session_expires, config.min_se))
        if refresher is None:
            refresher = "uac" if peer_supports else "uas"
        self.session_interval = interval
        self.we_refresh = refresher == "uas"
        headers = [("Session-Expires", f"{interval};refresher={refresher}")]
        if refresher == "uac":
            headers.append(("Require", "timer"))
        self.arm_session_timer(now)
        return headers

    # -- the timer ---------------------------------------------------------------------------
    def arm_session_timer(self, now: float) -> None:
        """(Re)start the refresh or expiry timer from ``now``."""
        self.stop_session_timer()
        interval = self.session_interval
        if interval is None:
            return
        if self.we_refresh:
            self._st_timer = self._st_host.timers.schedule(now + interval / 2, self._refresh)
        else:
            wait = interval - min(32.0, interval / 3)
            self._st_timer = self._st_host.timers.schedule(now + wait, self.session_expired)

    def _refresh(self, now: float) -> None:
        self.refresh_session(now)

    def stop_session_timer(self) -> None:
        """Cancel the refresh or expiry timer."""
        if self._st_timer is not None:
            self._st_timer.cancel()
            self._st_timer = None
