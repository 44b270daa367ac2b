# Settings over MQTT: {"cmd": "set", "key": "mqtt.port", "value": 1884} checks the value with
# config.py's own rules, writes config.json atomically and says whether the running node took it
# now or takes it at the next boot, and why. Loaded for one command and dropped after it: the
# validation tables are ~24 KB of heap that the loop does not need.
import json

from micropython import const

from firmware import atomic, config

CONFIG = "config.json"
# What the running node applies at once; everything else is read when the board boots.
NOW = ("interval_s", "heartbeat_s")
_LATER = const(
    (
        ("mqtt.", "the broker connection is set up at boot"),
        ("wifi.", "Wi-Fi is set up at boot"),
        ("sensors", "the sensors and the reading buffer are set up at boot"),
        ("device_id", "the topics are built at boot"),
        ("base_topic", "the topics are built at boot"),
        ("hostname", "the hostname is given to Wi-Fi at boot"),
        ("outbox_size", "the outbox is allocated at boot"),
        ("watchdog_s", "the watchdog is armed at boot and cannot be disarmed"),
        ("ha_discovery", "discovery is announced at each connect from what was read at boot"),
    )
)


class SettingError(Exception):
    pass


def _path(key):
    # ("mqtt", "port") for "mqtt.port"; SettingError for a key config.json does not have.
    parts = key.split(".")
    if len(parts) > 2 or parts[0] not in config.DEFAULTS:
        raise SettingError("unknown setting %r; known: %s" % (key[:40], ", ".join(_known())))
    section = config.DEFAULTS[parts[0]]
    if type(section) is dict:
        if len(parts) != 2 or parts[1] not in section:
            raise SettingError(
                "%s has the settings %s"
                % (parts[0], ", ".join([parts[0] + "." + k for k in section]))
            )
    elif len(parts) != 1:
        raise SettingError("%s has no settings inside it" % parts[0])
    return parts


def _known():
    out = []
    for k in config.DEFAULTS:
        out.append(k + ".*" if type(config.DEFAULTS[k]) is dict else k)
    return out


def check(key, value):
    # The validator's own words for what is wrong with this value, or None.
    _path(key)
    if key == "mqtt.host" and value is None:
        # Valid in a file, but sent over MQTT it would cut the node off from the sender for good.
        return "mqtt.host = None would leave the node without a broker, unreachable to undo it"
    if key != "sensors":
        return config.check(key, value)
    # The sensor list as a whole, by the same pass the boot makes over it.
    found = []
    config.validate({"sensors": value, "mqtt": {"host": "x"}}, lambda tag, msg: found.append(msg))
    for msg in found:
        if msg.startswith("sensors"):
            # "sensors[0].pin = 99 is not ...; sensor skipped": refused, nothing is skipped
            return msg.rsplit("; ", 1)[0]
    return None


def when(key):
    # (now, why) for a key that check() accepted.
    if key in NOW:
        return True, None
    for prefix, reason in _LATER:
        if key.startswith(prefix):
            return False, reason
    return False, "it is read at boot"


def _source(path, log):
    # config.json as the board has it (not as validated: unknown keys a newer firmware may
    # understand are kept); a missing or broken file starts from nothing.
    try:
        doc = json.loads(atomic.read(path).decode())
    except OSError:
        return {}
    except ValueError:
        log("set", "%s is not valid JSON; writing a new one with this setting only" % path)
        return {}
    return doc if type(doc) is dict else {}


def store(key, value, log, path=CONFIG):
    # Checks, then writes config.json with the new value. Returns (now, why); raises SettingError.
    problem = check(key, value)
    if problem is not None:
        raise SettingError(problem)
    parts = _path(key)
    doc = _source(path, log)
    if len(parts) == 1:
        doc[key] = value
    else:
        section = doc.get(parts[0])
        if type(section) is not dict:
            section = doc[parts[0]] = {}
        section[parts[1]] = value
    atomic.write(path, json.dumps(doc).encode())
    return when(key)
