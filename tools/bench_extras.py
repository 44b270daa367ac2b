"""Optional parts of the firmware, each measured as heap on top of the idle node.

The bench boots sensornode as `.mpy` with every feature on (bench_boards.FEATURES), steps it to
its first reading (the idle node), then for each row here boots it again with the row's config
and files and runs the row's code; the figure is the heap in use after that code (collected),
minus the idle node's resident heap measured the same way in the same run. It is printed on both
runtimes, in the table's "on top of the idle node" rows, and kept in bench.json under "extras".

To add a row, append an Extra to EXTRAS:

    Extra(
        "setup portal up",                       # the table's words for it
        code="from firmware import portal\\n_p = portal.start(node.wifi.sta)",
        config={"wifi": {"rounds_before_ap": 1}}, # merged over FEATURES (None: as FEATURES)
        files={"ca.pem": b"..."},                 # written into the board's filesystem first
    )

- code runs in main.py's globals with `node`, `board`, `gc` and `time` in scope, after the
  node's first reading went out; whatever it keeps in a global (`_p` above) is what the figure
  holds. Step the node with `node.step(time.ticks_ms())` if the part needs the loop to run.
- A row whose code raises (ImportError on a runtime without ssl, say) shows "n/a" and the one
  line of the error, in the table and in bench.json: a missing part is said, never guessed.
- config changes the boot itself (e.g. {"mqtt": {"tls": True, "port": ...}} for "TLS on"): the
  figure still compares with the plain idle node, so it is what that setting costs.
- Keep the code small: it is compiled on the board, and its own bytecode is part of the figure
  (a few hundred bytes at most).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Extra:
    name: str
    code: str = ""
    config: dict[str, Any] | None = None
    files: dict[str, bytes] = field(default_factory=dict)


# The setup portal's rows: the access point up with its portal, a browser's GET / served, every
# connection slot holding half a request, the access point down again. On the virtual board
# port 80 is a free port on 127.0.0.1 (bsp/socket.py).
# The join is only ever touched inside functions: a reference left in a stale slot of the
# script's own frame would keep it (and its modules) on the heap after the access point is down.
_PORTAL_UP = (
    "def _up():\n    global _j\n    from firmware.wifi_join import Join\n"
    "    _j = Join(node.wifi)\n    _j.start_ap()\n"
    "def _serve():\n    for _ in range(50):\n"
    "        node.step(time.ticks_ms())\n        _j.ap.poll(time.ticks_ms())\n"
    "_up()\nimport socket\n"
)
_PAGE_VIEW = (
    "_a = socket.getaddrinfo('0.0.0.0', 80)[0][-1]\n"
    "_c = socket.socket()\n_c.connect(_a)\n_c.send(b'GET / HTTP/1.0\\r\\n\\r\\n')\n"
    "_serve()\n_c.close()\n"
)
_SLOTS = (
    "_cs = [socket.socket() for _ in range(4)]\n"
    "for _c in _cs:\n    _c.connect(_a)\n    _c.send(b'GET / HTTP/1.1\\r\\n')\n"
    "_serve()\n"
)
_PORTAL_DOWN = (
    "def _down():\n    global _j\n    _j.ap.stop()\n    _j = None\n"
    "_down()\nfrom firmware.unload import drop\ndrop('wifi_join', 'provision')\n"
)
_HA_DEVICE = (
    "import json\n"
    "from firmware import ha\n"
    "_d = ha.Device(node.topics, node.ha_prefix, board.uid(), board.name, board.mac())\n"
    "_k = node.sensors.keys\n"
    "_s = [(s.spec, _k[s.start : s.start + s.n]) for s in node.sensors.slots]\n"
)

# An update over the air halfway through its download (firmware/ota.py, loaded only for it):
# a manifest signed on the board with the node's key, then pieces fed to the node's own loop as
# they would arrive, up to 15 KB into a 30 KB file. What the row holds is the update module, its
# manifest, hashes and the node's state for it; the pieces themselves are garbage once written.
_UPDATE = (
    "import hashlib, struct\n"
    "from firmware import ota as _ota\n"
    "node.ota_key = 'bench-update-key-0'\n"
    "_z = (1024, 1024, 30720)\n"
    "_ls = ['format 1', 'version 9.9.9', 'counter 1', 'mpy %d' % _ota.board_mpy(), 'force 1']\n"
    "for _i, _p in enumerate(('boot.py', 'main.py', 'firmware/otaboot.mpy')):\n"
    "    _h = hashlib.sha256()\n"
    "    for _o in range(0, _z[_i], 1024):\n"
    "        _h.update(bytes([_i]) * 1024)\n"
    "    _ls.append('%s %d %s' % (_ota._hex(_h.digest()), _z[_i], _p))\n"
    "_b = ('\\n'.join(_ls) + '\\n').encode()\n"
    "_h = _ota.Hmac(b'bench-update-key-0')\n"
    "_h.update(_b)\n"
    "_b += b'hmac ' + _h.hexdigest().encode() + b'\\n'\n"
    'node.session.commands.append(\'{"cmd": "update", "value": %d}\' % len(_b))\n'
    "node.step(time.ticks_ms())\n"
    "_u = node.update\n"
    "while _u.index < 3 or _u.offset < 15360:\n"
    "    _w = [int(_x) for _x in _u.want().split()]\n"
    "    _d = _b[_w[1] : _w[1] + _w[2]] if _w[0] == 0 else bytes([_w[0] - 1]) * _w[2]\n"
    "    node.session.piece = struct.pack('>HI', _w[0], _w[1]) + _d\n"
    "    node.step(time.ticks_ms())\n"
    "del _b, _d, _h, _ls, _u, _w, _ota\n"
)

EXTRAS: list[Extra] = [
    # A broker outage long enough to fill the outbox: every reading waits as bytes.
    Extra(
        "outbox full (100 readings waiting)",
        code=(
            "node.session.drop(time.ticks_ms(), 'bench: outbox')\n"
            "node.session.next_attempt = time.ticks_add(time.ticks_ms(), 3600000)\n"
            "for _ in range(len(node.outbox.slots)):\n"
            "    _now = time.ticks_ms()\n"
            "    node.next_reading = _now\n"
            "    node.step(_now)"
        ),
    ),
    # The setup portal (firmware/portal.py) as the access point brings it up: module, sockets,
    # and the networks of the page's last scan; then with every connection slot mid-request; then
    # after the access point went down, which drops the module again.
    Extra("setup portal up, page served once", code=_PORTAL_UP + _PAGE_VIEW),
    Extra("setup portal up, 4 connections mid-request", code=_PORTAL_UP + _PAGE_VIEW + _SLOTS),
    Extra("setup portal after it went down", code=_PORTAL_UP + _PAGE_VIEW + _PORTAL_DOWN),
    Extra("an update downloading (15 KB into a 30 KB file)", code=_UPDATE),
    # Home Assistant discovery: the idle node has announced (its boot built the configs into the
    # record, ha.txt, which its first connect replayed) and dropped the modules. Off: what the
    # announcement leaves resident, as a negative figure (0: nothing).
    Extra("HA discovery off (minus what discovery keeps)", config={"ha_discovery": False}),
    # A reconnect: the record's module and one config, a line at a time, as ha_record.replay()
    # reads it.
    Extra(
        "HA discovery replayed at a reconnect (module + one config's lines)",
        code="from firmware import ha_record\n"
        "_f = open(ha_record.PATH, 'rb')\n"
        "_l = [_f.readline() for _ in range(3)]",
    ),
    # Built at a connect, as when the boot had not the heap for it: the module, the device block
    # and one config text, built and sent one at a time.
    Extra(
        "HA discovery built (module + one config text)",
        code=_HA_DEVICE + "_t = next(ha.reading_configs(_d, _s, 1))[1].encode()",
    ),
    # For comparison: every config text of this node (one key, ten diagnostics) held at once.
    Extra(
        "HA discovery, all texts held at once",
        code=_HA_DEVICE
        + "_t = [c[1].encode() for c in ha.reading_configs(_d, _s, 1)]\n"
        + "_t += [c[1].encode() for c in ha.diagnostic_configs(_d)]",
    ),
]


def tls_extras(port: int | None, ca_der: bytes) -> list[Extra]:
    """TLS on, against the bench's Mosquitto TLS listener on 127.0.0.1:port (its certificate
    signed by the CA ca_der, made at run time): verified with that CA as ca_file, and without a
    ca_file. Each row first checks the node is online over TLS as configured, so a link that
    did not come up is "n/a", never a figure. port None: no TLS listener could be started."""
    check = (
        "import ssl\n"  # a runtime without it (the 32-bit build) says so, as the row's error
        "if not (node.session.online and node.session.transport.security == {!r}):\n"
        "    raise OSError('not online over TLS ({})')"
    )
    if port is None:
        why = "raise OSError('TLS needs Mosquitto, which is not installed')"
        return [Extra("TLS on, verified (ca.der)", code=why), Extra("TLS on, unverified", code=why)]
    mqtt = {"tls": True, "port": port}
    return [
        Extra(
            "TLS on, verified (ca.der)",
            code=check.format("verified", "verified"),
            config={"mqtt": {**mqtt, "ca_file": "ca.der"}},
            files={"ca.der": ca_der},
        ),
        Extra(
            "TLS on, unverified",
            code=check.format("unverified", "unverified"),
            config={"mqtt": mqtt},
        ),
    ]
