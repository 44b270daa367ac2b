# Commands arrive as JSON on <base>/<id>/cmd. parse() decides whether one is well-formed; what a
# command does is the node's business. Every refusal says why in words a person can act on.
import json

from micropython import const

MAX_BYTES = const(1024)  # a set of the whole sensor list fits
INTERVAL_MIN_S = 0.05
INTERVAL_MAX_S = 86400
NAMES = ("interval", "reboot", "ping", "heartbeat", "set", "get", "update")
UPDATE_MAX = const(8192)  # the longest manifest (firmware/ota.py's MANIFEST_MAX)
_KEY_MAX = const(40)


class CommandError(Exception):
    pass


def parse(msg):
    # Returns (name, value, request_id); raises CommandError with a message for anything else.
    # set's value is (key, value); get's is the key or None (the whole configuration).
    if type(msg) is str:
        msg = msg.encode()
    if len(msg) > MAX_BYTES:
        raise CommandError("command of %d bytes is over the %d-byte limit" % (len(msg), MAX_BYTES))
    try:
        doc = json.loads(msg)
    except (ValueError, UnicodeError):
        raise CommandError("command is not valid JSON") from None
    if type(doc) is not dict:
        raise CommandError('command is not a JSON object like {"cmd": "ping"}')
    name = doc.get("cmd")
    if type(name) is not str:
        raise CommandError('command has no "cmd" text field')
    if name not in NAMES:
        raise CommandError("unknown command %r; known: %s" % (name[:32], ", ".join(NAMES)))
    req = doc.get("id")
    if req is not None and not (type(req) in (str, int) and len(str(req)) <= 32):
        raise CommandError('"id" must be text or a number of at most 32 characters')
    value = doc.get("value")
    if name == "interval":
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not INTERVAL_MIN_S <= value <= INTERVAL_MAX_S
        ):
            raise CommandError(
                "interval needs a value in seconds from %s to %d" % (INTERVAL_MIN_S, INTERVAL_MAX_S)
            )
    elif name == "set":
        if "value" not in doc:
            raise CommandError('set needs a "value" (null is a value: write it out)')
        value = (_key(doc, True), value)
    elif name == "get":
        value = _key(doc, False)
    elif name == "update":
        if isinstance(value, bool) or type(value) is not int or not 0 < value <= UPDATE_MAX:
            raise CommandError("update needs the manifest's size in bytes (make ota sends it)")
    elif value is not None:
        raise CommandError("%s takes no value" % name)
    return name, value, req


def _key(doc, required):
    key = doc.get("key")
    if key is None and not required:
        return None
    if type(key) is not str or not 0 < len(key) <= _KEY_MAX:
        raise CommandError(
            '"key" must name a setting as config.json does, e.g. "interval_s" or "mqtt.port"'
        )
    return key
