from sipwire.message.message import Request, Response

def parse(data: bytes) -> Request | Response | None:
    """Parse the common forms of a message in C; None hands ``data`` to the Python parser."""
