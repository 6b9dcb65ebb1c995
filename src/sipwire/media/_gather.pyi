def expand(table: bytes, data: bytes) -> bytearray:
    """Each octet of ``data`` as its 2-byte entry of ``table`` (256 int16 entries)."""

def narrow(table: bytes, data: object) -> bytes:
    """Each int16 of the C-contiguous buffer ``data`` as its octet of ``table`` (65536)."""
