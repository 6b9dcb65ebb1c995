"""The asyncio edge: sockets, TLS, WebSocket, DNS and the clock live here only."""
