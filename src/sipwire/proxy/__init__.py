"""The proxy of RFC 3261 §16, sans-I/O: validation, routing, forking, response selection.

Modules, by responsibility (each names its RFC sections):

- ``policy.py``: what a proxy is (its interfaces) and does by choice (:class:`ProxyPolicy`);
- ``validate.py``: §16.3 request validation (400/416/420/482/483);
- ``routing.py``: §16.4 route preprocessing, Record-Route (RFC 5658 double), flow tokens;
- ``branch.py``: §16.6 forwarding of one copy, the branch and loop detection;
- ``routes.py``: the routing table (TOML-shaped) and the Python routing hook;
- ``targets.py``: the target set (§16.5) from bindings or routes, in q-value groups;
- ``authz.py``: who may use the proxy for what (407, 403), pure;
- ``pipeline.py``: from a request to its target set, with the edge's answers;
- ``context.py``: the response context (§16.7): branches, Timer C, best response, CANCEL;
- ``stateful.py``: :class:`StatefulProxy`, the transaction user of a stateful proxy;
- ``stateless.py``: :class:`StatelessProxy` (§16.11) and stateless forwarding;
- ``events.py``: the questions for the edge (location service, DNS, users, nonces);
"""

from sipwire.proxy.events import (
    LookupTargets,
    LookupUser,
    ProxyEvent,
    RequestAnswered,
    ResolveTargets,
    UseNonceCount,
)
from sipwire.proxy.policy import Interface, ProxyPolicy
from sipwire.proxy.routes import (
    Challenge,
    Decision,
    Local,
    Relay,
    Respond,
    RouteContext,
    RouteHook,
    RoutingTable,
    StaticRoute,
)
from sipwire.proxy.stateful import StatefulProxy
from sipwire.proxy.stateless import StatelessProxy

__all__ = [
    "StatefulProxy",
    "StatelessProxy",
    "Interface",
    "ProxyPolicy",
    "RoutingTable",
    "StaticRoute",
    "RouteContext",
    "RouteHook",
    "Decision",
    "Local",
    "Relay",
    "Respond",
    "Challenge",
    "ProxyEvent",
    "LookupTargets",
    "ResolveTargets",
    "LookupUser",
    "UseNonceCount",
    "RequestAnswered",
]
