# Reads past a PUBLISH the node does not take (over transport.IN_MAX, or QoS 2): named on the
# console, read past a scratch buffer at a time, and acknowledged at QoS 1 so that the broker's
# in-flight window does not fill up with it. Also past any other packet that comes outside the
# exchange waiting for it, which umqtt would return without reading to its end. Rare, so it is
# loaded for the packet and dropped.
from micropython import const

from firmware.transport import IN_MAX

_TOPIC_MAX = const(200)  # the longest topic a skipped message is named by
_PUBLISH = const(0x30)


def skip(sock, op, size):
    # `sock` is the transport's WatchedSocket, just past the packet's first byte and length.
    if op & 0xF0 != _PUBLISH:
        drain(sock, size)
        return
    topic = ""
    pid = None
    rest = size
    if rest >= 2:
        n = sock._recv(2)
        n = n[0] << 8 | n[1] if len(n) == 2 else rest
        rest -= 2
        if n <= min(rest, _TOPIC_MAX):
            try:
                topic = sock._recv(n).decode()
            except ValueError:  # not UTF-8: unnamed
                pass
        else:
            drain(sock, min(n, rest))
        rest -= n
        if op & 6 == 2 and rest >= 2:
            pid = sock._recv(2)
            rest -= 2
    why = "QoS 2 is not supported" if op & 4 else "over the %d bytes this node takes" % IN_MAX
    msg = "skipped a message of %d bytes on %s (%s)" % (size, topic or "?", why)
    if op & 1 and topic:
        msg += "; it is retained: clear it with mosquitto_pub -r -n -t '%s'" % topic
    sock.log("mqtt", msg)
    drain(sock, rest)
    if pid is not None and len(pid) == 2:
        sock.write(b"\x40\x02")
        sock.write(pid)


def drain(sock, n):
    # Reads n bytes past umqtt, into the write buffer (empty: every read flushes it first);
    # what the wrapper holds of them, read before anyone asked, first.
    if sock.first is not None and n > 0:
        n -= len(sock._recv(min(n, len(sock.first))))
    while n > 0:
        sock._timeout(0)
        got = sock.sock.readinto(sock.out, min(n, len(sock.out)))
        if got is None:
            got = len(sock._wait() or b"")
        if not got:
            raise OSError(-1)
        sock.rx = True
        n -= got
