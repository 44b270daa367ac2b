# Runs under the real MicroPython runtime (unix port) and under CPython alike:
#     .venv/bin/micropython host_tests/mpy_portal_check.py portal
# Feeds the plain functions of firmware/portal.py and portal_form.py (DNS answers, request
# heads, form bodies, the list of networks, the form's settings and their checks, the merge) the
# same inputs on either runtime and prints one "<case>\t<result>" line per result, so that
# test_portal.py can hold the board to what the host tests say.
import json
import sys

_here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
sys.path.insert(0, _here + "/..")
if sys.implementation.name != "micropython":
    sys.path.insert(0, _here + "/stubs")  # CPython needs the stand-in micropython module

from firmware import config, portal, portal_form  # noqa: E402

AP = bytes([192, 168, 4, 1])


def say(case, result):
    # Non-ASCII as JSON escapes it: CPython's json.dumps does, MicroPython's does not.
    text = "".join([c if ord(c) < 0x80 else f"\\u{ord(c):04x}" for c in result])
    print(case + "\t" + text)


def hexed(data):
    return "None" if data is None else "".join([f"{b:02x}" for b in data])


def plain(value):
    # Dicts as sorted [key, value] lists: the two runtimes order dict keys differently.
    if type(value) is dict:
        return [[k, plain(value[k])] for k in sorted(value)]
    if type(value) in (list, tuple):
        return [plain(v) for v in value]
    return value


def query(name, qtype=1):
    out = bytearray(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00")
    for label in name.split("."):
        out.append(len(label))
        out += label.encode()
    return bytes(out) + bytes([0, 0, qtype, 0, 1])


DNS = {
    "a": query("connectivitycheck.gstatic.com"),
    "aaaa": query("example.com", 28),
    "short": b"\x12\x34",
    "response": query("a.b")[:2] + b"\x81\x80" + query("a.b")[4:],
    "two-questions": query("a.b")[:4] + b"\x00\x02" + query("a.b")[6:],
    "label-overrun": query("a.b")[:12] + b"\x3f" + b"a" * 10,
    "pointer": query("a.b")[:12] + b"\xc0\x0c\x00\x01\x00\x01",
}
HEADS = {
    "post": b"POST /save?x=1 HTTP/1.1\r\nHost: a\r\ncontent-length: 12",
    "garbage": b"GARBAGE",
    "no-colon": b"GET / HTTP/1.1\r\nno colon here",
    "delete": b"DELETE / HTTP/1.1",
    "negative": b"POST / HTTP/1.1\r\nContent-Length: -5",
    "megabyte": b"POST / HTTP/1.1\r\nContent-Length: 1048576",
    "chunked": b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked",
    "not-utf8": b"GET /\xff\xfe HTTP/1.1",
}
FORMS = {
    "plain": b"ssid=home&password=home-pass&host=&port=&device=",
    "escapes": b"ssid=caf%C3%A9+net&password=a%26b%3Dc%2B1",
    "bad-escape": b"ssid=%zz",
    "cut-escape": b"ssid=%4",
    "bad-port": b"ssid=home&password=home-pass&host=b&port=abc",
    "big-port": b"ssid=home&password=home-pass&host=b&port=99999",
    "short-password": b"ssid=home&password=short",
    "broker": b"ssid=home&password=home-pass&host=10.1.2.3&port=1885&user=u&device=shed",
}
SCAN = [
    (b"weak", b"", 1, -85, 3, False),
    (b"home", b"", 6, -50, 3, False),
    (b"home", b"", 11, -70, 3, False),
    (b"", b"", 1, -40, 3, True),
    (b"\xff\xfe", b"", 1, -30, 3, False),
    (b"cafe", b"", 3, -65, 0, False),
]


def main():
    for case, packet in sorted(DNS.items()):
        say("dns " + case, hexed(portal.dns_answer(packet, AP)))
    for case, head in sorted(HEADS.items()):
        try:
            say("head " + case, repr(portal.parse_head(head)))
        except portal.HttpError as e:
            say("head " + case, f"HttpError {e.args[0]}")
    for case, body in sorted(FORMS.items()):
        try:
            form = portal_form.parse_form(body)
        except (ValueError, UnicodeError):
            say("form " + case, "refused")
            continue
        changes = portal_form.settings(form)
        say("form " + case, json.dumps(plain(changes)))
        said = portal_form.problems(changes, config.check)
        say("check " + case, said or "ok")
        if not said:
            cfg = {"mqtt": {"host": "a", "qos": 0}}
            secrets = {"wifi": [{"ssid": "home", "password": "old-pass-1"}, {"ssid": "x"}]}
            restart = portal_form.merge(changes, cfg, secrets)
            say("merge " + case, json.dumps(plain([restart, cfg, secrets])))
    say("networks", repr(portal.visible_networks(SCAN)))
    print("done\tportal")


main()
