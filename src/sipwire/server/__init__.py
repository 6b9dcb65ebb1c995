"""``sipwire serve``: the registrar (and later the proxy) as one asyncio server.

One process, one transaction layer; the registrar and the proxy are two roles
of its transaction user. Driven by the sans-I/O ``sipwire.registrar`` and
persisting through ``sipwire.store``.
"""
