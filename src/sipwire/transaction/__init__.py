"""RFC 3261 §17: the transaction layer, as sans-I/O state machines.

Time is an input (``handle_timer(now)``), never read from a clock.
"""
