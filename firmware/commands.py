# Commands arrive as JSON on <base>/<id>/cmd. parse() decides whether one is well-formed; run()
# does it to the running node. Every refusal says why in words a person can act on. Commands are
# rare: node.py loads this module for each one and drops it after.
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


def run(node, raw, now):
    # Parses one command, does it and answers with an event (firmware/report.py).
    try:
        name, value, req = parse(raw)
    except CommandError as e:
        node.command_errors += 1
        node.log("cmd", "rejected: %s" % e)
        _event(node, "error", False, str(e), None, now)
        return
    node.log("cmd", name if value is None else "%s %s" % (name, value))
    if name == "interval":
        _set(node, name, "interval_s", value, req, now)
    elif name == "set" and isinstance(value, tuple):  # parse() guarantees it
        _set(node, name, value[0], value[1], req, now)
    elif name == "get":
        _get(node, value, req, now)
    elif name == "update":
        _update(node, value, req, now)
    elif name == "ping":
        _event(node, name, True, "pong", req, now)
    elif name == "heartbeat":
        from firmware import report

        report.send_heartbeat(node, now)
        _event(node, name, True, "heartbeat sent", req, now)
    elif name == "reboot":
        _event(node, name, True, "rebooting", req, now)
        node.reboot_requested = True


def _apply(node, key, value, now):
    # What the running node can take at once (settings.NOW).
    node.cfg[key] = value
    if key == "interval_s":
        node.interval_ms = int(value * 1000)
        node.next_reading = node.clock.ticks_add(now, node.interval_ms)
        node.ha_key = None  # HA's configs say the interval: the next connect works the key out
    elif key == "heartbeat_s":
        node.heartbeat_ms = int(value * 1000)
        node.next_heartbeat = node.clock.ticks_add(now, node.heartbeat_ms)


def _set(node, name, key, value, req, now):
    # Checked by config.py's rules, written to config.json, applied now or at the next boot.
    try:
        from firmware import settings

        try:
            applied, reason = settings.store(key, value, node.log, node.config_path)
        except settings.SettingError as e:
            _refuse(node, name, str(e), req, now)
            return
        finally:
            from firmware.unload import drop

            drop("settings", "config", "atomic")
    except (OSError, MemoryError, ImportError) as e:
        _refuse(
            node, name, "%s not saved: config.json could not be written (%r)" % (key, e), req, now
        )
        return
    shown = value if type(value) not in (list, dict) else "(%d items)" % len(value)
    if applied:
        _apply(node, key, value, now)
        detail = "%s is now %s: applied now and saved in config.json" % (key, shown)
    else:
        detail = "%s = %s saved in config.json; applied after a reboot: %s" % (key, shown, reason)
    node.log("cmd", detail)
    _event(node, name, True, detail, req, now)


def _refuse(node, name, why, req, now):
    node.command_errors += 1
    node.log("cmd", "%s refused: %s" % (name, why))
    _event(node, name, False, why, req, now)


def _event(node, name, ok, detail, req, now):
    from firmware import report

    report.send_event(node, name, ok, detail, req, now)


def _get(node, key, req, now):
    value = node.cfg
    if key is not None:
        for part in key.split("."):
            if type(value) is not dict or part not in value:
                _refuse(node, "get", "no setting %r in the running configuration" % key, req, now)
                return
            value = value[part]
    _event(node, "get", True, value, req, now)


def _update(node, size, req, now):
    # An update offered (make ota): firmware/ota.py stays loaded while it downloads.
    if node.ota_key is None:
        _refuse(node, "update", "updates are off: secrets.json has no ota_key", req, now)
        return
    if node.update is not None and node.update.done:
        _refuse(node, "update", "an update is downloaded; the board reboots into it", req, now)
        return
    try:
        from firmware import ota

        up = ota.Update(node.ota_key, node.stats.version, ota.board_mpy(), node.log)
        first = up.start(size)
    except Exception as e:  # UpdateError, or a filesystem that will not take the pieces
        from firmware import report

        report.update_failed(node, e, now, req)
        return
    node.update = up
    node.update_req = req
    node.log("update", "offered a manifest of %d bytes; downloading" % size)
    ota.want(node, first, now)
