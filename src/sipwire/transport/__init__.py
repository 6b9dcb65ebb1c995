"""RFC 3261 §18 and RFC 3263: transport decisions as pure functions.

Where a response goes (Via, received, rport), which transport a request
uses, and the order of server targets; no sockets here.
"""
