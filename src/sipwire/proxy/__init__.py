"""The proxy of RFC 3261 §16, sans-I/O: validation, routing, forking, response selection."""
