"""A loopback TCP relay for integration tests: board -> relay -> broker, with a few faults.

    with Relay(("127.0.0.1", broker_port)) as relay:   # listens on 127.0.0.1:relay.port
        ...                      # the board is configured with relay.port as its broker port
        relay.freeze()           # a half-open link: every connection open now stops moving
                                 # bytes both ways; sockets stay open, nothing is read or closed
        relay.refuse()           # stop listening: new connections are refused (ECONNREFUSED),
                                 # connections already open keep forwarding
        relay.listen()           # listen again on the same port

New connections made after freeze() are forwarded normally, so a client that notices the frozen
link and reconnects gets through. When one side of a forwarded connection closes, the relay
closes the other, as a broker that went away would look to the client.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType

HOST = "127.0.0.1"
CHUNK = 65536


@dataclass
class _Link:
    down: socket.socket  # the client's side (the board)
    up: socket.socket  # the broker's side
    frozen: bool = False
    peers: dict[socket.socket, socket.socket] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.peers = {self.down: self.up, self.up: self.down}


class Relay:
    def __init__(self, upstream: tuple[str, int], port: int = 0, *, listening: bool = True) -> None:
        """Relays to `upstream`; listens on `port` (0: a free one, known at once as self.port),
        or, with listening=False, refuses connections until listen() is called."""
        self.upstream = upstream
        self._sel = selectors.DefaultSelector()
        self._lock = threading.Lock()
        self._links: list[_Link] = []
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._listener: socket.socket | None = None
        self._pending: list[tuple[Callable[[], None], threading.Event]] = []
        self._stopping = False
        self.accepted = 0  # connections accepted since start, frozen ones included
        self.port = port
        self._thread = threading.Thread(target=self._run, name="relay", daemon=True)
        self._thread.start()
        if not listening and port == 0:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.bind((HOST, 0))
                self.port = probe.getsockname()[1]
        if listening:
            self.listen()

    def __enter__(self) -> Relay:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the switches, called from the test's thread ----------------------------------------

    def listen(self) -> None:
        """(Re)open the listening socket on self.port (a free port the first time)."""
        with self._lock:
            if self._listener is not None:
                return
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((HOST, self.port))
            s.listen(16)
            s.setblocking(False)
            self.port = s.getsockname()[1]
            self._listener = s
        self._call(lambda: self._sel.register(s, selectors.EVENT_READ, "accept"))

    def refuse(self) -> None:
        """Stop listening: the next connection attempt is refused at once."""
        with self._lock:
            s, self._listener = self._listener, None
        if s is not None:
            self._call(lambda: self._forget(s))

    def freeze(self) -> None:
        """Every connection open now stops forwarding, both ways, without closing anything."""
        with self._lock:
            links = [link for link in self._links if not link.frozen]
            for link in links:
                link.frozen = True

        def unregister() -> None:
            for link in links:
                for s in (link.down, link.up):
                    with contextlib.suppress(KeyError, ValueError):
                        self._sel.unregister(s)

        self._call(unregister)

    def close(self) -> None:
        """Stop the relay and close every socket it holds."""
        with self._lock:
            self._stopping = True
        self._wake_w.send(b"x")
        self._thread.join(5)
        with self._lock:
            links, self._links = self._links, []
            listener, self._listener = self._listener, None
        for link in links:
            link.down.close()
            link.up.close()
        if listener is not None:
            listener.close()
        self._sel.close()
        self._wake_r.close()
        self._wake_w.close()

    # -- the relay's own thread ---------------------------------------------------------------

    def _call(self, fn: Callable[[], None]) -> None:
        # Selector changes happen on the relay's thread: queue them, wake it, wait till done.
        done = threading.Event()
        with self._lock:
            self._pending.append((fn, done))
        self._wake_w.send(b"x")
        if not done.wait(5):
            raise RuntimeError("relay: its thread did not answer within 5 s")

    def _forget(self, s: socket.socket) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._sel.unregister(s)
        s.close()

    def _run(self) -> None:
        while True:
            with self._lock:
                if self._stopping:
                    return
            for key, _ in self._sel.select(1.0):
                if key.fileobj is self._wake_r:
                    with contextlib.suppress(BlockingIOError):
                        self._wake_r.recv(4096)
                    with self._lock:
                        pending, self._pending = self._pending, []
                    for fn, done in pending:
                        fn()
                        done.set()
                elif key.data == "accept":
                    self._accept(key.fileobj)  # type: ignore[arg-type]
                elif isinstance(key.data, _Link):
                    self._pump(key.data, key.fileobj)  # type: ignore[arg-type]

    def _accept(self, listener: socket.socket) -> None:
        try:
            down, _ = listener.accept()
        except (BlockingIOError, OSError):
            return
        down.setblocking(True)
        try:
            up = socket.create_connection(self.upstream, timeout=2)
        except OSError:
            down.close()  # the broker is not there: the client sees its connection closed
            return
        up.settimeout(None)
        link = _Link(down, up)
        with self._lock:
            self._links.append(link)
            self.accepted += 1
        self._sel.register(down, selectors.EVENT_READ, link)
        self._sel.register(up, selectors.EVENT_READ, link)

    def _pump(self, link: _Link, src: socket.socket) -> None:
        if link.frozen:
            return
        dst = link.peers[src]
        try:
            data = src.recv(CHUNK)
            if data:
                dst.sendall(data)
                return
        except OSError:
            pass
        # One side closed or failed: close both, as the other end of a dead link would see it.
        for s in (link.down, link.up):
            with contextlib.suppress(KeyError, ValueError):
                self._sel.unregister(s)
            s.close()
        with self._lock:
            if link in self._links:
                self._links.remove(link)
