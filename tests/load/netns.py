"""The fuzzer's private network namespace (see :mod:`tests.load.fuzz`).

:func:`enter_private_netns` moves this process into a new network namespace
that has only ``lo``; :func:`udp_rcvbuf_errors` reads the namespace's count
of UDP datagrams the kernel dropped.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import socket
import struct
from pathlib import Path

__all__ = ["enter_private_netns", "udp_rcvbuf_errors"]


def enter_private_netns() -> str | None:
    """Move this process into a new network namespace with only ``lo`` (up).

    Returns None on success, else why not. Needs CAP_SYS_ADMIN, or
    unprivileged user namespaces (then a user namespace is made too). Must
    run before any thread is started.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    clone_newnet, clone_newuser = 0x40000000, 0x10000000
    if libc.unshare(clone_newnet) != 0:
        first = os.strerror(ctypes.get_errno())
        uid, gid = os.getuid(), os.getgid()
        if libc.unshare(clone_newuser | clone_newnet) != 0:
            return f"unshare(CLONE_NEWNET): {first}; with CLONE_NEWUSER: " + os.strerror(
                ctypes.get_errno()
            )
        with contextlib.suppress(OSError):
            Path("/proc/self/setgroups").write_text("deny")
        Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1")
        Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1")
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            request = struct.pack("16sh22x", b"lo", 0)
            flags = struct.unpack("16sh22x", fcntl.ioctl(sock, siocgifflags, request))[1]
            fcntl.ioctl(sock, siocsifflags, struct.pack("16sh22x", b"lo", flags | iff_up))
    except OSError as exc:
        return f"cannot bring lo up in the new namespace: {exc}"
    names = [name for _, name in socket.if_nameindex()]
    if names != ["lo"]:
        return f"the new namespace has interfaces {names}"
    return None


def udp_rcvbuf_errors() -> int:
    """RcvbufErrors of /proc/net/snmp (this network namespace): datagrams the kernel dropped."""
    try:
        lines = Path("/proc/net/snmp").read_text().splitlines()
    except OSError:
        return 0
    udp = [line.split() for line in lines if line.startswith("Udp:")]
    if len(udp) < 2 or "RcvbufErrors" not in udp[0]:
        return 0
    return int(udp[1][udp[0].index("RcvbufErrors")])
