"""The virtual board's USB serial port: a pseudo-terminal, named by a symlink the host tools open.

    port = SerialPort(Path("/tmp/ttyVB0"), on_input=lambda data: ...)
    port.open()                 # /tmp/ttyVB0 -> /dev/pts/N, raw, 8 bits, no echo
    port.write(b"hello\\n")      # to whoever has the port open (as "hello\\r\\n")
    port.close()                # the symlink goes; the pty with it

The program on the host side (mpremote, a terminal) opens the pty's slave through the symlink;
the supervisor holds the master. What the host sends arrives at `on_input` (on the port's own
thread); what the board prints goes out through `write`, which does what a board's stdout does
to text: a lone "\\n" goes out as "\\r\\n". Like a USB serial port, the port drops the board's
output while nobody has it open; while the host has it open but does not read, the board is
held back for up to STALL_S, then its output is dropped until the host reads again. The
slave's termios are raw (cfmakeraw) so every byte value passes unchanged in both directions;
pyserial sets the same when it opens the port.
"""

from __future__ import annotations

import os
import select
import termios
import threading
import time
from collections.abc import Callable
from pathlib import Path

POLL_S = 0.05  # how often the port looks for a host that has opened it, and at the closing flag
STALL_S = 2.0  # how long the board's output waits for a host that has the port open but reads not


def make_raw(fd: int) -> None:
    """cfmakeraw(3) on a terminal: no line editing, echo, signals or CR/NL mapping; 8 bits."""
    attrs = termios.tcgetattr(fd)
    attrs[0] &= ~(
        termios.IGNBRK
        | termios.BRKINT
        | termios.PARMRK
        | termios.ISTRIP
        | termios.INLCR
        | termios.IGNCR
        | termios.ICRNL
        | termios.IXON
        | termios.IXOFF
    )
    attrs[1] &= ~termios.OPOST
    attrs[2] = (attrs[2] & ~(termios.CSIZE | termios.PARENB)) | termios.CS8
    attrs[3] &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
    attrs[6][termios.VMIN] = 1
    attrs[6][termios.VTIME] = 0
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


def cook(data: bytes, after_cr: bool) -> bytes:
    """A board's text output on the wire: every "\\n" not already after a "\\r" becomes "\\r\\n".

    after_cr: the previous chunk ended with "\\r" (its "\\r\\n" may be split across chunks)."""
    cooked = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if after_cr and data[:1] == b"\n":
        cooked = cooked[1:]
    return cooked


class SerialPort:
    def __init__(self, path: Path, on_input: Callable[[bytes], None]) -> None:
        self.path = Path(path)
        self.device = ""  # the pty slave, e.g. /dev/pts/3, once open
        self._on_input = on_input
        self._master = -1
        self._closing = threading.Event()
        self._reader: threading.Thread | None = None
        self._write_lock = threading.Lock()
        self._after_cr = False
        self._stalled = False  # the host has the port open but has stopped reading

    def open(self) -> None:
        """Creates the pty and the symlink to its slave (replacing a stale symlink, not a file)."""
        if self.path.is_symlink():
            self.path.unlink()
        elif self.path.exists():
            raise FileExistsError(f"vboard: {self.path} exists and is not a symlink; left as it is")
        master, slave = os.openpty()
        try:
            make_raw(slave)
            self.device = os.ttyname(slave)
        finally:
            os.close(slave)  # the host opens it; while nobody does, the master sees POLLHUP
        os.set_blocking(master, False)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.symlink_to(self.device)
        except OSError:
            os.close(master)
            raise
        self._master = master
        self._closing.clear()
        self._reader = threading.Thread(target=self._read, name="vboard-serial", daemon=True)
        self._reader.start()

    def close(self) -> None:
        """Removes the symlink (if it still names this pty) and closes the pty."""
        self._closing.set()
        if self._reader is not None:
            self._reader.join()
            self._reader = None
        try:
            if os.readlink(self.path) == self.device:
                self.path.unlink()
        except OSError:
            pass
        with self._write_lock:
            if self._master >= 0:
                os.close(self._master)
                self._master = -1

    @property
    def connected(self) -> bool:
        """Whether a program on the host has the port open."""
        if self._master < 0:
            return False
        poller = select.poll()
        poller.register(self._master, select.POLLIN)
        return not any(flags & select.POLLHUP for _, flags in poller.poll(0))

    def write(self, data: bytes) -> None:
        """The board's output, to the host as a board sends it (see the module's docstring)."""
        with self._write_lock:
            if self._master < 0 or not data:
                return
            cooked = cook(data, self._after_cr)
            self._after_cr = data[-1:] == b"\r"
            self._send(cooked)

    def _send(self, data: bytes) -> None:
        poller = select.poll()
        poller.register(self._master, select.POLLOUT)
        view = memoryview(data)
        deadline: float | None = None
        while view and not self._closing.is_set():
            # Once a host has been seen not reading, output that does not fit is dropped at once
            # until the host reads again; before that, it waits up to STALL_S for room.
            events = poller.poll(0 if self._stalled else int(POLL_S * 1000))
            flags = events[0][1] if events else 0
            if flags & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
                self._stalled = False
                return  # nobody has the port open: the output is lost, as on a board
            if flags & select.POLLOUT:
                try:
                    sent = os.write(self._master, view)
                except BlockingIOError:
                    sent = 0
                except OSError:
                    return
                if sent:
                    view = view[sent:]
                    deadline = None
                    self._stalled = False
                    continue
            now = time.monotonic()
            if deadline is None:
                deadline = now + STALL_S
            if self._stalled or now >= deadline:
                self._stalled = True
                return  # the port is open but nobody reads it: the rest is lost

    def _read(self) -> None:
        poller = select.poll()
        poller.register(self._master, select.POLLIN)
        while not self._closing.is_set():
            events = poller.poll(int(POLL_S * 1000))
            if not events:
                continue
            if events[0][1] & select.POLLIN:
                try:
                    data = os.read(self._master, 4096)
                except BlockingIOError:
                    continue
                except OSError:  # EIO: the last program that had the port open closed it
                    data = b""
                if data:
                    self._on_input(data)
                    continue
            self._closing.wait(POLL_S)  # nobody has the port open (POLLHUP): look again soon
