"""What ``sipwire serve`` counts, for Prometheus (``GET /metrics``, see ``http.py``).

The metrics live in a :class:`~prometheus_client.CollectorRegistry` of the
server's own (never the process-global one: tests run several servers in
one process). Counted as things happen:

- ``sipwire_requests_total{method}``: requests received (new transactions,
  and ACKs outside any);
- ``sipwire_responses_total{method,status}``: final responses the server's
  transaction user sent (stateless 503s of admission are in
  ``sipwire_shed_requests_total`` instead);
- ``sipwire_registrations_total{outcome}``: REGISTERs by outcome:
  ``registered`` (a new binding), ``refreshed``, ``unregistered``,
  ``query``, ``challenged`` (401), ``rejected`` (another 4xx/5xx decided by
  the rules), ``unavailable`` (503: the store failed or was too slow),
  ``busy`` (503: too many REGISTERs in flight);
- ``sipwire_auth_failures_total{reason}``: credentials that did not
  authenticate: ``invalid`` (wrong password, unknown user, malformed),
  ``stale`` (right digest, expired nonce), ``replay`` (a nonce-count used
  before);
- ``sipwire_store_latency_seconds{operation}``: a histogram per store call
  (``get_user``, ``use_nonce_count``, ``bindings``, ``apply``, ``ping``, ``purge``, ``aors``);
- ``sipwire_calls_total{outcome}``: INVITEs the proxy answered (its own answer or
  the one it forwarded), by outcome: ``answered`` (2xx), ``redirected`` (3xx),
  ``challenged`` (401, 407), ``forbidden`` (403), ``not_found`` (404),
  ``timeout`` (408), ``unavailable`` (480), ``busy`` (486, 600), ``cancelled``
  (487), ``declined`` (603), ``rejected`` (another 4xx or 6xx), ``failed`` (5xx);
- ``sipwire_forwarded_requests_total{method}``: requests the proxy sent
  downstream (first transmissions; CANCEL and ACK included).

Read when scraped (:class:`LiveSources`): ``sipwire_transactions`` (in
flight), ``sipwire_proxy_contexts`` (calls and other requests the stateful
proxy is forwarding), ``sipwire_registers_in_flight``, ``sipwire_connections`` (open
stream and WebSocket connections), ``sipwire_shed_requests_total{cause}``
(admission's counters, and ``registrar_busy``). Refreshed by the server
every few seconds: ``sipwire_registered_aors`` (AORs with a live binding,
from the store) and ``sipwire_store_up`` (1 when the store answered its
last check).

Label values are bounded: a method outside RFC 3261 and its extensions is
counted as ``other``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from sipwire.message.validate import KNOWN_METHODS

__all__ = [
    "AUTH_FAILURES",
    "CALL_OUTCOMES",
    "OUTCOMES",
    "STORE_OPERATIONS",
    "LiveSources",
    "Metrics",
    "call_outcome",
]

OUTCOMES: Final = (
    "registered",
    "refreshed",
    "unregistered",
    "query",
    "challenged",
    "rejected",
    "unavailable",
    "busy",
)
AUTH_FAILURES: Final = ("invalid", "stale", "replay")
CALL_OUTCOMES: Final = (
    "answered",
    "redirected",
    "challenged",
    "forbidden",
    "not_found",
    "timeout",
    "unavailable",
    "busy",
    "cancelled",
    "declined",
    "rejected",
    "failed",
)
_CALL_STATUS: Final = {
    401: "challenged",
    407: "challenged",
    403: "forbidden",
    404: "not_found",
    408: "timeout",
    480: "unavailable",
    486: "busy",
    600: "busy",
    487: "cancelled",
    603: "declined",
}


def call_outcome(status: int) -> str:
    """The ``sipwire_calls_total`` outcome of a final response to an INVITE."""
    if status < 300:
        return "answered"
    if status < 400:
        return "redirected"
    outcome = _CALL_STATUS.get(status)
    if outcome is not None:
        return outcome
    return "failed" if 500 <= status < 600 else "rejected"


STORE_OPERATIONS: Final = (
    "get_user",
    "use_nonce_count",
    "bindings",
    "apply",
    "ping",
    "purge",
    "aors",
)
_LATENCY_BUCKETS: Final = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)


@dataclass(slots=True)
class LiveSources:
    """Values read when /metrics is scraped (callables, so nothing is copied meanwhile)."""

    transactions: Callable[[], int] = lambda: 0
    proxy_contexts: Callable[[], int] = lambda: 0
    registers_in_flight: Callable[[], int] = lambda: 0
    connections: Callable[[], int] = lambda: 0
    shed: Callable[[], Mapping[str, int]] = field(default=lambda: {})
    """Cause → requests refused since start."""


class _LiveCollector(Collector):
    def __init__(self, sources: LiveSources) -> None:
        self.sources = sources

    def collect(self) -> Iterable[Metric]:
        sources = self.sources
        yield GaugeMetricFamily(
            "sipwire_transactions", "Transactions in flight.", value=sources.transactions()
        )
        yield GaugeMetricFamily(
            "sipwire_proxy_contexts",
            "Requests the stateful proxy is forwarding (response contexts).",
            value=sources.proxy_contexts(),
        )
        yield GaugeMetricFamily(
            "sipwire_registers_in_flight",
            "REGISTER requests being processed (waiting for the store).",
            value=sources.registers_in_flight(),
        )
        yield GaugeMetricFamily(
            "sipwire_connections",
            "Open stream and WebSocket connections.",
            value=sources.connections(),
        )
        shed = CounterMetricFamily(
            "sipwire_shed_requests",
            "New requests refused before any work (503 or dropped), by cause.",
            labels=["cause"],
        )
        for cause, count in sorted(sources.shed().items()):
            shed.add_metric([cause], count)
        yield shed


class _CountsCollector(Collector):
    """The counters of every message (requests, responses, calls, forwarded requests),
    kept as plain integers by :class:`Metrics`: a prometheus-client ``Counter`` takes a
    lock per increment, and these are counted several times per call."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        metrics = self.metrics
        requests = CounterMetricFamily(
            "sipwire_requests", "SIP requests received, by method.", labels=["method"]
        )
        for method, count in sorted(metrics._requests.items()):
            requests.add_metric([method], count)
        yield requests
        responses = CounterMetricFamily(
            "sipwire_responses",
            "Final responses sent, by request method and status.",
            labels=["method", "status"],
        )
        for (method, status), count in sorted(metrics._responses.items()):
            responses.add_metric([method, str(status)], count)
        yield responses
        calls = CounterMetricFamily(
            "sipwire_calls",
            "INVITE requests answered by the proxy, by outcome.",
            labels=["outcome"],
        )
        for outcome, count in metrics.calls.items():
            calls.add_metric([outcome], count)
        yield calls
        forwarded = CounterMetricFamily(
            "sipwire_forwarded_requests",
            "Requests the proxy sent downstream, by method.",
            labels=["method"],
        )
        for method, count in sorted(metrics._forwarded.items()):
            forwarded.add_metric([method], count)
        yield forwarded


class Metrics:
    """The server's metrics; ``render()`` is the /metrics body."""

    def __init__(self) -> None:
        registry = CollectorRegistry()
        self.registry = registry
        self.live = LiveSources()
        registry.register(_LiveCollector(self.live))
        registrations = Counter(
            "sipwire_registrations",
            "REGISTER requests, by outcome.",
            ["outcome"],
            registry=registry,
        )
        auth_failures = Counter(
            "sipwire_auth_failures",
            "Digest credentials that did not authenticate, by reason.",
            ["reason"],
            registry=registry,
        )
        latency = Histogram(
            "sipwire_store_latency_seconds",
            "Time of one store call, by operation.",
            ["operation"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.registered_aors = Gauge(
            "sipwire_registered_aors",
            "Addresses-of-record with at least one live binding (from the store).",
            registry=registry,
        )
        self.store_up = Gauge(
            "sipwire_store_up", "1 when the store answered its last check.", registry=registry
        )
        # Children made once: a label look-up per message would cost more than the count.
        self.outcome = {name: registrations.labels(name) for name in OUTCOMES}
        self.auth_failure = {name: auth_failures.labels(name) for name in AUTH_FAILURES}
        self.store_latency = {name: latency.labels(name) for name in STORE_OPERATIONS}
        # The counts of every message: plain integers, turned into metrics when scraped.
        self.calls: dict[str, int] = dict.fromkeys(CALL_OUTCOMES, 0)
        """INVITEs answered by the proxy, by outcome (``sipwire_calls_total``)."""
        self._requests: dict[str, int] = {}
        self._forwarded: dict[str, int] = {}
        self._responses: dict[tuple[str, int], int] = {}
        registry.register(_CountsCollector(self))

    def request(self, method: str) -> None:
        """Count a request received."""
        counts = self._requests
        if method in counts:
            counts[method] += 1
        else:
            label = method if method in KNOWN_METHODS else "other"
            counts[label] = counts.get(label, 0) + 1

    def response(self, method: str, status: int) -> None:
        """Count a final response sent to a request of ``method``."""
        counts = self._responses
        key = (method, status)
        if key in counts:
            counts[key] += 1
        else:
            key = (method if method in KNOWN_METHODS else "other", status)
            counts[key] = counts.get(key, 0) + 1

    def call(self, status: int) -> str:
        """Count an INVITE answered with ``status``; returns its outcome."""
        outcome = call_outcome(status)
        self.calls[outcome] += 1
        return outcome

    def forwarded(self, method: str) -> None:
        """Count a request sent downstream."""
        counts = self._forwarded
        if method in counts:
            counts[method] += 1
        else:
            label = method if method in KNOWN_METHODS else "other"
            counts[label] = counts.get(label, 0) + 1

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
