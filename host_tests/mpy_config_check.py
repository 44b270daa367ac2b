# Runs under the real MicroPython runtime (unix port) and under CPython alike:
#     .venv/bin/micropython host_tests/mpy_config_check.py config|secrets|files|commands [DIR]
# Feeds firmware/config.py and firmware/commands.py the same inputs on either runtime and prints
# one "<case>\t<result>" line per result, written so that equal behaviour prints equal text
# (sorted dict keys, non-ASCII escaped as MicroPython's repr does). test_config.py and
# test_commands.py run it under both and compare. "files" writes its files into DIR.
# The firmware is found from this file's folder (sys.path[0] is the script's folder on both
# runtimes; a relative entry such as "." would be taken from the current directory instead).
import json
import sys

_here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
sys.path.insert(0, _here + "/..")
if sys.implementation.name != "micropython":
    sys.path.insert(0, _here + "/stubs")  # CPython needs the stand-in micropython module

from firmware import config  # noqa: E402
from firmware.commands import NAMES, CommandError, parse  # noqa: E402


def ascii_text(s):
    # MicroPython's repr() escapes every non-ASCII character; CPython's keeps printable ones.
    out = []
    for c in s:
        o = ord(c)
        if o < 0x80:
            out.append(c)
        elif o <= 0xFF:
            out.append(f"\\x{o:02x}")
        elif o <= 0xFFFF:
            out.append(f"\\u{o:04x}")
        else:
            out.append(f"\\U{o:08x}")
    return "".join(out)


def canon(v):
    # One text for one value on both runtimes: dict order differs between them.
    t = type(v)
    if t is dict:
        return "{" + ", ".join(sorted([canon(k) + ": " + canon(v[k]) for k in v])) + "}"
    if t is list or t is tuple:
        return "[" + ", ".join([canon(x) for x in v]) + "]"
    return ascii_text(repr(v))


def crash(e):
    return "CRASH " + type(e).__name__ + ": " + ascii_text(str(e))


class Console:
    def __init__(self):
        self.lines = []

    def __call__(self, tag, msg):
        self.lines.append(ascii_text(tag + ": " + msg))


def validated(fn, src, sort_lines=False):
    con = Console()
    try:
        out, problems = fn(src, con)
    except Exception as e:
        return crash(e)
    lines = sorted(con.lines) if sort_lines else con.lines
    return f"problems={problems} out={canon(out)} log={' | '.join(lines)}"


def deep(depth):
    v = []
    for _ in range(depth):
        v = [v]
    return v


def sensor(**fields):
    return fields


GOOD = {
    "device_id": "greenhouse-1",
    "base_topic": "home/sensors",
    "hostname": "greenhouse-node",
    "mqtt": {"host": "broker.local", "port": 8883, "keepalive": 60, "qos": 0, "tls": True},
    "wifi": {"attempt_s": 20, "rounds_before_ap": 5},
    "interval_s": 2.5,
    "heartbeat_s": 120,
    "outbox_size": 50,
    "watchdog_s": 30,
    "ha_discovery": False,
    "sensors": [
        {"type": "sim", "name": "air", "base": 18.5, "seed": 7, "delta": 0.1},
        {"type": "dht22", "name": "room", "pin": 4, "filter": {"type": "median", "size": 3}},
        {"type": "bme280", "name": "out", "i2c": 1, "address": 119, "filter": {"type": "ema"}},
        {"type": "adc", "name": "soil", "pin": 34, "scale": -0.5},
    ],
}

# (case, JSON text or a value built here). JSON text goes through the runtime's own json module.
CONFIG = [
    ("good", json.dumps(GOOD)),
    ("empty", "{}"),
    ("host-only", '{"mqtt": {"host": "broker.local"}}'),
    ("port-as-text", '{"mqtt": {"host": "b", "port": "1883"}}'),
    ("port-as-float", '{"mqtt": {"host": "b", "port": 1883.0}}'),
    ("interval-true", '{"mqtt": {"host": "b"}, "interval_s": true}'),
    ("qos-false", '{"mqtt": {"host": "b", "qos": false}}'),
    ("edges", '{"interval_s": 0.05, "heartbeat_s": 86400, "outbox_size": 1000}'),
    ("just-outside", '{"interval_s": 0.04, "heartbeat_s": 86401, "outbox_size": 0}'),
    ("heartbeat-short", '{"mqtt": {"host": "b"}, "interval_s": 120, "heartbeat_s": 60}'),
    ("bad-names", '{"base_topic": "a/+/b", "device_id": "a/b", "hostname": "a b"}'),
    ("long-value", '{"base_topic": "/' + "x" * 100 + '"}'),
    ("unknown-key", '{"mqtt": {"host": "b"}, "colour": "red"}'),
    ("mqtt-not-object", '{"mqtt": "broker.local"}'),
    ("wifi-not-object", '{"mqtt": {"host": "b"}, "wifi": [1]}'),
    ("top-list", "[]"),
    ("top-text", '"config"'),
    ("top-null", "null"),
    ("sensors-not-list", '{"sensors": "sim"}'),
    ("sensors-empty", '{"sensors": []}'),
    (
        "sensors-mixed",
        json.dumps(
            {
                "sensors": [
                    sensor(type="sim", name="a"),
                    sensor(type="thermistor", name="b"),
                    sensor(type="sim", name="a b"),
                    sensor(type="sim", name="seq"),
                    sensor(type="sim", name="a"),
                    sensor(type="dht11", name="c"),
                    sensor(type="dht22", name="d", pin=True),
                    sensor(type="ds18b20", name="e", pin=5, rom="28ff"),
                    sensor(type="mcu", name="f", delta=False, max_silence_s=0),
                    "sim",
                    sensor(type="adc", name="g", pin=34, gain=2),
                ]
            }
        ),
    ),
    (
        "filters",
        json.dumps(
            {
                "sensors": [
                    sensor(type="sim", name="a", filter={"type": "median", "size": 2}),
                    sensor(type="sim", name="b", filter={"type": "median", "size": 15}),
                    sensor(type="sim", name="c", filter={"type": "ema", "alpha": True}),
                    sensor(type="sim", name="d", filter={"type": "ema", "alpha": 0.01}),
                    sensor(type="sim", name="g", filter={"type": "ema", "size": 3}),
                ]
            }
        ),
    ),
    ("filter-unknown-type", '{"sensors": [{"type": "sim", "name": "t", "filter": {"type": "x"}}]}'),
    ("non-text-key", {"mqtt": {"host": "b"}, 1: 2}),  # MicroPython's json reads {1: 2}
    ("nonascii-name", '{"sensors": [{"type": "sim", "name": "temp\\u00e9rature"}]}'),
    ("filter-type-list", '{"sensors": [{"type": "sim", "name": "t", "filter": {"type": [1]}}]}'),
    ("deep-value", {"mqtt": {"host": "b"}, "interval_s": deep(2000)}),
    ("nul-in-base-topic", '{"mqtt": {"host": "b"}, "base_topic": "home\\u0000x"}'),
    (
        "control-characters",
        '{"device_id": "a\\u0007", "hostname": "n\\t1", "mqtt": {"host": "b\\n", "ca_file":'
        ' "\\u007fca.der"}, "sensors": [{"type": "sim", "name": "t\\u001b"}]}',
    ),
    ("lone-surrogates", '{"base_topic": "a\\ud800", "mqtt": {"host": "\\udfffb"}}'),
]

SECRETS = [
    (
        "good",
        '{"wifi": [{"ssid": "home", "password": "correct horse"}, {"ssid": "cafe"}],'
        ' "mqtt": {"user": "node", "password": "pw"}, "ap_password": "setup-1234"}',
    ),
    ("empty", "{}"),
    (
        "bad-networks",
        json.dumps(
            {
                "wifi": [
                    {"ssid": "a", "password": ""},
                    "home",
                    {"ssid": ""},
                    {"ssid": "x" * 33},
                    {"ssid": "h", "password": "hunter2"},
                    {"ssid": "h", "password": 12345678},
                    {"ssid": "h", "password": "hunter2" * 10},
                    {"ssid": "b", "password": "", "hidden": True},
                ]
            }
        ),
    ),
    (
        "wrong-passwords",
        '{"mqtt": {"user": 42, "password": ["hunter2"]}, "ap_password": "hunter2"}',
    ),
    ("not-object", "[]"),
    ("wifi-not-list", '{"wifi": {"ssid": "a"}}'),
    ("mqtt-not-object", '{"mqtt": "user:hunter2"}'),
    ("unknown-key", '{"wlan": []}'),
    (
        "control-characters",
        '{"wifi": [{"ssid": "home\\u0000", "password": "correct horse"},'
        ' {"ssid": "cafe", "password": "correct\\nhorse"}],'
        ' "mqtt": {"user": "no\\u0000de", "password": "p\\ud800w"}}',
    ),
]

FILES = [
    ("good", b'{"interval_s": 5}'),
    ("broken", b'{"interval_s": 5'),
    ("empty", b""),
    ("not-utf8", b'{"base_topic": "caf\xe9"}'),
    ("missing", None),
    ("directory", "dir"),
    ("trailing-comma", b'{"interval_s": 5,}'),
    ("byte-order-mark", b'\xef\xbb\xbf{"interval_s": 5}'),
]

COMMANDS = [
    ("interval-int", b'{"cmd": "interval", "value": 30}'),
    ("interval-float-with-id", b'{"cmd": "interval", "value": 2.5, "id": "r1"}'),
    ("interval-lowest", b'{"cmd": "interval", "value": 0.05}'),
    ("interval-highest", b'{"cmd": "interval", "value": 86400}'),
    ("interval-too-low", b'{"cmd": "interval", "value": 0.049}'),
    ("interval-too-high", b'{"cmd": "interval", "value": 86401}'),
    ("interval-true", b'{"cmd": "interval", "value": true}'),
    ("interval-text", b'{"cmd": "interval", "value": "30"}'),
    ("interval-no-value", b'{"cmd": "interval"}'),
    ("interval-huge", b'{"cmd": "interval", "value": 1e400}'),
    ("reboot", b'{"cmd": "reboot"}'),
    ("ping-int-id", b'{"cmd": "ping", "id": 7}'),
    ("heartbeat-null-value", b'{"cmd": "heartbeat", "value": null}'),
    ("ping-with-value", b'{"cmd": "ping", "value": 1}'),
    ("unknown", b'{"cmd": "selfdestruct"}'),
    ("unknown-long", b'{"cmd": "' + b"x" * 100 + b'"}'),
    ("no-cmd", b"{}"),
    ("cmd-number", b'{"cmd": 1}'),
    ("not-json", b"{"),
    ("not-object", b"[]"),
    ("empty", b""),
    ("bad-utf8-in-text", b'{"cmd": "p\xc3ng"}'),
    ("bad-utf8-outside", b"\xff\xfe"),
    ("at-limit", b'{"cmd": "ping"}' + b" " * 241),
    ("over-limit", b'{"cmd": "ping"}' + b" " * 242),
    ("id-true", b'{"cmd": "ping", "id": true}'),
    ("id-float", b'{"cmd": "ping", "id": 1.5}'),
    ("id-too-long", b'{"cmd": "ping", "id": "' + b"x" * 33 + b'"}'),
    ("text-input", '{"cmd": "ping", "id": "r1"}'),
    ("text-non-ascii-id", '{"cmd": "ping", "id": "\u00e9t\u00e9"}'),
    # Messages that are not JSON, which the two runtimes' json modules read differently.
    ("lax-trailing-comma", b'{"cmd": "ping",}'),
    ("lax-missing-colon", b'{"cmd" "reboot"}'),
    ("lax-missing-comma", b'{"cmd": "interval" "value": 5}'),
    ("lax-leading-zero", b'{"cmd": "interval", "value": 030}'),
    ("lax-nan", b'{"cmd": "interval", "value": NaN}'),
    ("lax-byte-order-mark", b'\xef\xbb\xbf{"cmd": "ping"}'),
    ("lax-utf16", b'{\x00"\x00c\x00m\x00d\x00"\x00:\x00"\x00p\x00i\x00n\x00g\x00"\x00}\x00'),
    ("lax-trailing-nul", b'{"cmd": "ping"}\x00'),
]


def parsed(msg):
    try:
        return "ok " + canon(parse(msg))
    except CommandError as e:
        return "refused " + ascii_text(str(e))
    except Exception as e:
        return crash(e)


def well_formed(result):
    # The contract of parse(), checked on whichever runtime runs this.
    name, value, req = result
    if name not in NAMES:
        return False
    if name == "interval":
        if type(value) not in (int, float) or not 0.05 <= value <= 86400:
            return False
    elif value is not None:
        return False
    return req is None or (type(req) in (str, int) and len(str(req)) <= 32)


class Lcg:
    # The same pseudo-random sequence on both runtimes.
    def __init__(self, seed):
        self.x = seed

    def below(self, n):
        self.x = (self.x * 1103515245 + 12345) & 0x7FFFFFFF
        return (self.x >> 8) % n

    def pick(self, seq):
        return seq[self.below(len(seq))]


TEMPLATES = [
    b'{"cmd": "interval", "value": 30, "id": "r1"}',
    b'{"cmd": "ping", "id": 12}',
    b'{"cmd": "reboot"}',
    b'{"cmd": "heartbeat", "value": null}',
    b'{"cmd": "interval", "value": 0.05}',
]
JSON_BYTES = b'{}[]":,0123456789.-+e tnulfasr\\'


def fuzz_message(rnd):
    if rnd.below(3) == 0:
        return bytes([rnd.below(256) for _ in range(rnd.below(300))])
    msg = bytearray(rnd.pick(TEMPLATES))
    for _ in range(1 + rnd.below(3)):
        at = rnd.below(len(msg) + 1)
        c = rnd.pick(JSON_BYTES) if rnd.below(4) else rnd.below(256)
        how = rnd.below(3)
        if how == 0 and at < len(msg):
            msg[at] = c
        elif how == 1 and at < len(msg):
            msg = msg[:at] + msg[at + 1 :]
        else:
            msg = msg[:at] + bytearray([c]) + msg[at:]
    return bytes(msg)


def fuzz_commands(n):
    # Prints what was accepted (so the runtimes can be compared) and what broke the contract.
    rnd = Lcg(20240601)
    crashes = broken = 0
    for i in range(n):
        msg = fuzz_message(rnd)
        try:
            result = parse(msg)
        except CommandError:
            continue
        except Exception as e:
            crashes += 1
            print(f"fuzz-commands\t#{i} {msg.hex()} {crash(e)}")
            continue
        if not well_formed(result):
            broken += 1
        print(f"fuzz-commands\t#{i} {msg.hex()} ok {canon(result)}")
    print(f"fuzz-commands\tcrashes={crashes} broken={broken}")


POOL = [None, True, False, 0, 1, -1, 5, 30, 48, 49, 0.05, 0.04, 2.5, 86400, 86401, 1e9]
POOL += ["", "x", "a/b", "node-1", "sim", "median", "temperature", "t", "seq", "x" * 70]
# No object of two keys: the runtimes show their keys in different orders. No filter of unknown
# type either: its message lists the known ones in dict order (config-filter-unknown-type).
POOL += [[], [1, "a"], {}, {"alpha": 2}, {"a": [None]}]
FIELDS = ["base", "amplitude", "period_s", "noise", "seed", "pin", "rom", "i2c", "sda", "scl"]
FIELDS += ["address", "scale", "offset", "delta", "max_silence_s", "colour"]


MQTT_KEYS = ["host", "port", "keepalive", "qos", "tls", "ca_file", "user"]


def fuzz_value(rnd, choices):
    return rnd.pick(choices) if rnd.below(2) else rnd.pick(POOL)


def fuzz_section(rnd, keys):
    if rnd.below(6) == 0:
        return rnd.pick(POOL)
    out = {}
    for key in keys:
        if rnd.below(2):
            out[key] = rnd.pick(POOL)
    return out


def fuzz_sensor(rnd):
    if rnd.below(8) == 0:
        return rnd.pick(POOL)
    spec = {}
    if rnd.below(8):
        spec["type"] = fuzz_value(rnd, list(config.SENSOR_TYPES) + ["thermistor"])
    if rnd.below(8):
        spec["name"] = fuzz_value(rnd, ["t", "u", "room", "a b", "seq"])
    for key in FIELDS:
        if rnd.below(4) == 0:
            spec[key] = rnd.pick(POOL)
    if rnd.below(2):
        # one statement each: MicroPython evaluates {k: v} value first, CPython key first
        kind = rnd.pick(["median", "ema"])
        key = rnd.pick(["size", "alpha", "x"])
        spec["filter"] = {"type": kind, key: rnd.pick(POOL)}
    return spec


def fuzz_config(rnd):
    doc = {}
    for key in ("device_id", "base_topic", "hostname", "interval_s", "heartbeat_s"):
        if rnd.below(3) == 0:
            doc[key] = rnd.pick(POOL)
    for key in ("outbox_size", "watchdog_s", "ha_discovery", "colour"):
        if rnd.below(3) == 0:
            doc[key] = rnd.pick(POOL)
    if rnd.below(2):
        doc["mqtt"] = fuzz_section(rnd, MQTT_KEYS)
    if rnd.below(3) == 0:
        doc["wifi"] = fuzz_section(rnd, ["attempt_s", "rounds_before_ap", "ssid"])
    if rnd.below(4):
        doc["sensors"] = [fuzz_sensor(rnd) for _ in range(rnd.below(5))]
    return doc


def fuzz_secrets(rnd):
    doc = {}
    if rnd.below(4):
        nets = []
        for _ in range(rnd.below(4)):
            net = {}
            if rnd.below(4):
                net["ssid"] = fuzz_value(rnd, ["home", "", "x" * 33])
            if rnd.below(4):
                net["password"] = fuzz_value(rnd, ["", "hunter22", "hunter2"])
            nets.append(net if rnd.below(8) else rnd.pick(POOL))
        doc["wifi"] = nets if rnd.below(8) else rnd.pick(POOL)
    if rnd.below(2):
        doc["mqtt"] = fuzz_section(rnd, ["user", "password", "port"])
    if rnd.below(3) == 0:
        doc["ap_password"] = fuzz_value(rnd, ["hunter22", "hunter2"])
    return doc


def load(src):
    return json.loads(src) if type(src) is str else src


def check_config():
    for name, src in CONFIG:
        print(f"config-{name}\t{validated(config.validate, load(src))}")
    rnd = Lcg(7)
    for i in range(300):
        print(f"fuzz-config\t#{i} {validated(config.validate, fuzz_config(rnd), True)}")


def check_secrets():
    for name, src in SECRETS:
        print(f"secrets-{name}\t{validated(config.validate_secrets, load(src))}")
    rnd = Lcg(11)
    for i in range(300):
        result = validated(config.validate_secrets, fuzz_secrets(rnd), True)
        print(f"fuzz-secrets\t#{i} {result}")


def check_files(folder):
    import os

    for name, content in FILES:
        path = folder + "/" + name + ".json"
        if type(content) is str:
            os.mkdir(path)
        elif content is not None:
            with open(path, "wb") as f:
                f.write(content)
        con = Console()
        try:
            result = canon(config.read_json(path, con, "config"))
        except Exception as e:
            result = crash(e)
        lines = [line.replace(path, "FILE") for line in con.lines]
        # The parser's own words differ between runtimes; whether there are any does not.
        lines = [line.split(" (")[0] + (" ()" if " ()" in line else "") for line in lines]
        print(f"file-{name}\t{result} log={' | '.join(lines)}")


def check_commands():
    for name, msg in COMMANDS:
        print(f"command-{name}\t{parsed(msg)}")
    fuzz_commands(3000)


def main(argv):
    what = argv[1] if len(argv) > 1 else "config"
    if what == "config":
        check_config()
    elif what == "secrets":
        check_secrets()
    elif what == "files":
        check_files(argv[2])
    elif what == "commands":
        check_commands()
    print("done\t" + what)


if __name__ == "__main__":
    main(sys.argv)
