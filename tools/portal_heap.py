# MicroPython code (host-only, run by tools/bench_portal.py on the 64-bit and 32-bit unix ports):
# the host's pyright and ruff judge it as CPython, so they are told so here.
# pyright: reportMissingImports=false, reportAttributeAccessIssue=false
# ruff: noqa: UP031
# What the setup portal holds on the heap: after gc.collect(), gc.mem_alloc() before the portal
# is imported, while it is up (having served the page once, so its list of networks is held),
# with every connection slot mid-request, and after it is closed and its module dropped, as
# provision.py does when the access point goes down. Also what one page view allocates.
# Run as: micropython portal_heap.py HTTP_PORT DNS_PORT, with firmware/ (as .mpy or source) on
# sys.path; prints "bench: <json>".
import gc
import json
import socket
import sys
import time

AIR = [
    (b"home", b"\x02\x00\x00\x00\x00\x01", 6, -52, 3, False),
    (b"greenhouse", b"\x02\x00\x00\x00\x00\x02", 1, -68, 3, False),
    (b"neighbour", b"\x02\x00\x00\x00\x00\x03", 11, -84, 0, False),
    (b"cafe-guest", b"\x02\x00\x00\x00\x00\x04", 3, -77, 0, False),
    (b"", b"\x02\x00\x00\x00\x00\x05", 6, -60, 3, True),
]


class Wifi:
    asked = None
    asked_fail = None

    def scan(self):
        return AIR

    def join_now(self, net):
        self.asked = net["ssid"]


def used():
    gc.collect()
    return gc.mem_alloc()


def page_view(portal, port):
    # One GET / from a client in this process, polled until the portal has answered and closed.
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.connect(socket.getaddrinfo("127.0.0.1", port)[0][-1])
    c.send(b"GET / HTTP/1.1\r\nHost: 192.168.4.1\r\n\r\n")
    c.setblocking(False)
    got = 0
    for _ in range(2000):
        portal.poll(time.ticks_ms())
        try:
            data = c.recv(4096)
        except OSError:
            continue
        if not data:
            break
        got += len(data)
    c.close()
    return got


def slots_full(portal, port):
    # Every connection slot holding a half-sent request (each slot's buffer allocated).
    socks = []
    for _ in range(4):
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.connect(socket.getaddrinfo("127.0.0.1", port)[0][-1])
        c.send(b"GET / HTTP/1.1\r\n")
        socks.append(c)
    for _ in range(20):
        portal.poll(time.ticks_ms())
    return socks


def main():
    http, dns = int(sys.argv[1]), int(sys.argv[2])
    log = lambda tag, msg: None  # noqa: E731
    before = used()
    from firmware.portal import Portal

    portal = Portal("192.168.4.1", "esp32-a1b2c3", Wifi(), time, log, http, dns, "127.0.0.1")
    page_bytes = page_view(portal, http)
    up = used()
    gc.collect()
    gc.disable()
    a = gc.mem_alloc()
    page_view(portal, http)
    per_view = gc.mem_alloc() - a
    gc.enable()
    socks = slots_full(portal, http)
    full = used()
    for c in socks:
        c.close()
    portal.close()
    del portal, Portal
    sys.modules.pop("firmware.portal", None)
    import firmware

    if hasattr(firmware, "portal"):
        delattr(firmware, "portal")
    after = used()
    doc = {
        "held_up": up - before,
        "held_full": full - before,
        "alloc_per_page_view": per_view,
        "page_bytes": page_bytes,
        "left_after_down": after - before,
    }
    print("bench: " + json.dumps(doc))


main()
