"""Clients for the setup portal's tests: DNS queries, and many HTTP clients at once that never
block (so a test drives the portal's poll() between their steps, or watches a virtual board)."""

from __future__ import annotations

import errno
import socket
import struct
import time
from collections.abc import Callable

_RETRY = (errno.EAGAIN, errno.ENOTCONN, errno.EINPROGRESS, errno.EALREADY)


def query(name: str, qtype: int = 1, ident: int = 0x1234) -> bytes:
    """A standard DNS query for one name."""
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
    head = struct.pack(">HHHHHH", ident, 0x0100, 1, 0, 0, 0)
    return head + labels + b"\0" + struct.pack(">HH", qtype, 1)


def status(answer: bytes) -> int:
    """An HTTP answer's status code; 0 for a socket closed without one."""
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0


def crowd(
    address: tuple[str, int],
    requests: list[bytes],
    seconds: float,
    step: Callable[[], None] = lambda: None,
) -> list[bytes]:
    """Opens one connection per request at once, sends each request whole as soon as its
    connection is up, and returns what each got back before the server closed it (b"" for
    a refused or reset connection). `step` runs between rounds (a portal's poll()). Raises
    TimeoutError when some connection is neither answered nor closed within `seconds`."""
    socks = []
    for _ in requests:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex(address)
        socks.append(s)
    got = [b""] * len(socks)
    unsent = set(range(len(socks)))
    open_ = set(range(len(socks)))
    deadline = time.monotonic() + seconds
    try:
        while open_:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(open_)} of {len(socks)} connections still open")
            step()
            for i in list(open_):
                if not _advance(socks[i], i, requests[i], unsent, got):
                    open_.discard(i)
            time.sleep(0.002)
    finally:
        for s in socks:
            s.close()
    return got


def _advance(s: socket.socket, i: int, request: bytes, unsent: set[int], got: list[bytes]) -> bool:
    # One step of one client; False once its connection is over.
    try:
        if i in unsent:
            s.sendall(request)
            unsent.discard(i)
        chunk = s.recv(65536)
    except OSError as e:
        return e.errno in _RETRY
    got[i] += chunk
    return bool(chunk)
