# Configuration: every default in one place, every field validated before anything runs.
# A wrong field is reported by name and value (never a secret's value) and replaced by its default;
# a broken or missing file means defaults. Nothing here raises on bad input.
import json

from firmware import atomic
from firmware.log import why
from firmware.payload import READING_MAX, reading_bound
from firmware.sensor_setup import sensor_keys
from firmware.unload import drop

drop("sensor_setup")  # sensor_keys holds what it needs; the rest need not outlive the validation

# Every key the firmware understands, with its default. docs/config.md explains each one.
DEFAULTS = {
    "device_id": None,  # None: <board>-<last 6 hex digits of machine.unique_id()>
    "base_topic": "sensornode",
    "hostname": None,  # None: the device id
    "mqtt": {
        "host": None,  # the one setting without a default
        "port": 1883,
        "keepalive": 30,
        "qos": 1,
        "tls": False,
        "ca_file": None,
    },
    "wifi": {
        "attempt_s": 15,  # how long one join attempt may take
        "rounds_before_ap": 3,  # failed rounds over all known networks before the provisioning AP
    },
    "interval_s": 10,
    "heartbeat_s": 60,
    "outbox_size": 100,
    "watchdog_s": 0,
    "ha_discovery": True,
    "ha_prefix": "homeassistant",  # Home Assistant's discovery prefix (its MQTT setting)
    "console_readings": True,  # a console line per reading: the serial console is not silent
    "sensors": [{"type": "sim", "name": "temperature"}],
}

SENSOR_TYPES = ("sim", "mcu", "dht11", "dht22", "ds18b20", "bme280", "adc")
RESERVED_KEYS = ("seq", "uptime_ms", "ts")

# Per sensor type: (field, default, check); a REQUIRED field missing makes the entry unusable.
REQUIRED = "required"


# A check is a (predicate, description) pair: MicroPython functions take no attributes.
def _number(lo, hi):
    return (
        lambda v: type(v) in (int, float) and lo <= v <= hi,
        "a number from %s to %s" % (lo, hi),
    )


def _integer(lo, hi):
    return (lambda v: type(v) is int and lo <= v <= hi, "a whole number from %d to %d" % (lo, hi))


def _one_of(*choices):
    want = "one of " + ", ".join([repr(c) for c in choices])
    return (lambda v: type(v) is type(choices[0]) and v in choices, want)


_boolean = (lambda v: v is True or v is False, "true or false")


def _bad_char(v):
    # The first control character (U+0000 included) or lone surrogate in a text, or None: no
    # text field may hold one (a NUL in a topic broke every connect; a surrogate cannot even
    # be encoded).
    for c in v:
        n = ord(c)
        if n < 0x20 or n == 0x7F or 0xD800 <= n <= 0xDFFF:
            return n
    return None


def _is_text(v, lo, hi, allowed):
    # Lengths in bytes (what Wi-Fi and MQTT limit); letters and digits in ASCII only, since
    # str.isalpha() is Unicode-aware on CPython but ASCII-only on the boards.
    if type(v) is not str or _bad_char(v) is not None or not lo <= len(v.encode()) <= hi:
        return False
    if allowed is not None:
        for c in v:
            if not ("a" <= c <= "z" or "A" <= c <= "Z" or "0" <= c <= "9" or c in allowed):
                return False
    return True


def _text(lo, hi, allowed=None):
    want = "text of %d to %d characters" % (lo, hi)
    if allowed is not None:
        want += " (letters, digits and %s)" % " ".join(allowed)
    return (lambda v: _is_text(v, lo, hi, allowed), want)


def _optional(check):
    ok = check[0]
    return (lambda v: v is None or ok(v), check[1] + ", or null")


def _is_base_topic(v):
    if type(v) is not str or not 1 <= len(v) <= 64 or v[0] == "/" or v[-1] == "/":
        return False
    if _bad_char(v) is not None:
        return False
    return "+" not in v and "#" not in v and "//" not in v


_topic_level = _text(1, 64, "-_")
_base_topic = (_is_base_topic, "a topic of 1 to 64 characters without +, #, // or an outer /")

_PIN = _integer(0, 48)

# Home Assistant's sensor device classes that take state_class measurement (2024.3), each with
# the units HA accepts for it; an empty unit is "no unit". A string, not a dict: this module
# leaves the heap after boot either way, but a dict of lists would double the boot's peak for it.
_HA_UNITS = (
    ";apparent_power:VA;aqi:;atmospheric_pressure:Pa|bar|cbar|hPa|inHg|kPa|mbar|mmHg|psi;"
    "battery:%;carbon_dioxide:ppm;carbon_monoxide:ppm;current:A|mA;"
    "data_rate:B/s|GB/s|Gbit/s|GiB/s|KiB/s|MB/s|Mbit/s|MiB/s|bit/s|kB/s|kbit/s;"
    "data_size:B|EB|EiB|GB|Gbit|GiB|KiB|MB|Mbit|MiB|PB|PiB|TB|TiB|YB|YiB|ZB|ZiB|bit|kB|kbit;"
    "distance:cm|ft|in|km|m|mi|mm|yd;duration:d|h|min|ms|s;energy_storage:GJ|MJ|MWh|Wh|kWh;"
    "frequency:GHz|Hz|MHz|kHz;humidity:%;illuminance:lx;irradiance:BTU/(h⋅ft²)|W/m²;"
    "moisture:%;nitrogen_dioxide:µg/m³;nitrogen_monoxide:µg/m³;"
    "nitrous_oxide:µg/m³;ozone:µg/m³;ph:;pm1:µg/m³;"
    "pm10:µg/m³;pm25:µg/m³;power:W|kW;power_factor:|%;"
    "precipitation:cm|in|mm;precipitation_intensity:in/d|in/h|mm/d|mm/h;"
    "pressure:Pa|bar|cbar|hPa|inHg|kPa|mbar|mmHg|psi;reactive_power:var;"
    "signal_strength:dB|dBm;sound_pressure:dB|dBA;"
    "speed:ft/s|in/d|in/h|km/h|kn|m/s|mm/d|mm/h|mph;sulphur_dioxide:µg/m³;"
    "temperature:K|°C|°F;volatile_organic_compounds:µg/m³;"
    "volatile_organic_compounds_parts:ppb|ppm;voltage:V|mV;"
    "volume_flow_rate:L/min|ft³/min|gal/min|m³/h;"
    "volume_storage:CCF|L|fl. oz.|ft³|gal|mL|m³;weight:g|kg|lb|mg|oz|st|µg;"
    "wind_speed:ft/s|km/h|kn|m/s|mph;"
)


def ha_units(device_class):
    # The units HA takes for a device class ("" standing for none), or None for no such class.
    if type(device_class) is not str or not device_class or ";" in device_class:
        return None
    start = _HA_UNITS.find(";" + device_class + ":")
    if start < 0:
        return None
    start += len(device_class) + 2
    return _HA_UNITS[start : _HA_UNITS.find(";", start)].split("|")


_HA_CLASS = (lambda v: ha_units(v) is not None, "a Home Assistant sensor device class")
# What Home Assistant shows with a sim or adc value (the other drivers know their own).
_HA_FIELDS = (
    ("unit", None, _optional(_text(1, 16))),
    ("device_class", None, _optional(_HA_CLASS)),
)


def _is_rom(v):
    if type(v) is not str or len(v) != 16:
        return False
    for c in v:
        if c not in "0123456789abcdefABCDEF":
            return False
    return True


# As binascii.hexlify(rom) prints it: family code (28) first.
_ROM = (_is_rom, "16 hex digits, family code first (28...)")

_TOP = (
    ("device_id", _optional(_topic_level)),
    ("base_topic", _base_topic),
    ("hostname", _optional(_text(1, 32, "-"))),
    # The interval command's range (commands.INTERVAL_MIN_S/MAX_S; test_config holds them equal).
    # Not imported: loading commands from here kept all of config.py on the heap after boot.
    ("interval_s", _number(0.05, 86400)),
    ("heartbeat_s", _number(1, 86400)),
    ("outbox_size", _integer(1, 1000)),
    ("watchdog_s", _integer(0, 3600)),
    ("ha_discovery", _boolean),
    ("ha_prefix", _topic_level),
    ("console_readings", _boolean),
)
_MQTT = (
    ("host", _optional(_text(1, 253))),
    ("port", _integer(1, 65535)),
    ("keepalive", _integer(5, 65535)),
    ("qos", _one_of(0, 1)),
    ("tls", _boolean),
    ("ca_file", _optional(_text(1, 64))),
)
_WIFI = (
    ("attempt_s", _number(1, 120)),
    ("rounds_before_ap", _integer(0, 1000)),
)
_SENSOR_FIELDS = {
    "sim": (
        ("base", 20.0, _number(-1e6, 1e6)),
        ("amplitude", 5.0, _number(0, 1e6)),
        ("period_s", 600, _number(1, 1e6)),
        ("noise", 0.2, _number(0, 1e6)),
        ("seed", 1, _integer(0, 0x7FFFFFFF)),
    )
    + _HA_FIELDS,
    "mcu": (),
    "dht11": (("pin", REQUIRED, _PIN),),
    "dht22": (("pin", REQUIRED, _PIN),),
    "ds18b20": (("pin", REQUIRED, _PIN), ("rom", None, _optional(_ROM))),
    "bme280": (
        ("i2c", 0, _integer(0, 1)),
        ("sda", None, _optional(_PIN)),
        ("scl", None, _optional(_PIN)),
        ("address", 0x76, _one_of(0x76, 0x77)),
    ),
    "adc": (
        ("pin", REQUIRED, _PIN),
        ("scale", 1.0, _number(-1e9, 1e9)),
        ("offset", 0.0, _number(-1e9, 1e9)),
    )
    + _HA_FIELDS,
}
_SENSOR_COMMON = (
    ("delta", None, _optional(_number(0, 1e9))),
    # ticks_diff() measures at most 2**29 ms (6.2 days)
    ("max_silence_s", 300, _number(1, 86400 * 6)),
)
_FILTERS = {
    "median": (("size", 5, _integer(3, 15)),),
    "ema": (("alpha", 0.3, _number(0.01, 1)),),
}
_NAME = _text(1, 32, "_")
_SSID = _text(1, 32)
_PASSPHRASE = _text(8, 63)
_WIFI_PASSWORD = (lambda v: v == "" or _PASSPHRASE[0](v), "empty or 8 to 63 characters")
_LOGIN = _optional(_text(1, 256))
# The key that signs updates (HMAC-SHA256): long enough that it cannot be guessed.
_OTA_KEY = _optional(_text(16, 128))
# The secrets one at a time, as check() takes them: (path, check, whether the value is secret).
_SECRETS = (
    ("wifi.ssid", _SSID, False),
    ("wifi.password", _WIFI_PASSWORD, True),
    ("mqtt.user", _LOGIN, False),
    ("mqtt.password", _LOGIN, True),
    ("ap_password", _optional(_PASSPHRASE), True),
    ("ota_key", _OTA_KEY, True),
)


def _small(value):
    # Whether repr(value) is cheap and short: no nesting, no long text, few items.
    items = value.values() if type(value) is dict else value
    if len(items) > 8:
        return False
    for item in items:
        if type(item) in (list, dict) or (type(item) is str and len(item) > 40):
            return False
    return True


def _shown(value):
    # A bad value as a message shows it: one line of at most 40 characters, and never the repr
    # of something huge or deeply nested (which could exhaust a board's stack).
    if type(value) in (list, dict) and not _small(value):
        kind = "a list" if type(value) is list else "an object"
        return "%s of %d items" % (kind, len(value))
    text = repr(value[:41] if type(value) is str else value)
    return text if len(text) <= 40 else text[:37] + "..."


def _problem(path, value, want, secret):
    # What is wrong with a value, in words; a control character or lone surrogate by its name
    # and code (the value itself is not shown: the console would print it raw).
    n = _bad_char(value) if type(value) is str else None
    if n is not None:
        what = "a lone surrogate" if n >= 0xD800 else "a control character"
        return "%s contains %s%s" % (path, what, "" if secret else " (U+%04X)" % n)
    return "%s = %s is not %s" % (path, "(hidden)" if secret else _shown(value), want)


class _Report:
    # Counts what was wrong so the caller can say "running on defaults" once, at the end.
    def __init__(self, log, tag):
        self.log = log
        self.tag = tag
        self.problems = 0

    def bad(self, path, value, want, then, secret=False):
        self.problems += 1
        self.log(self.tag, "%s; %s" % (_problem(path, value, want, secret), then))

    def say(self, msg):
        self.problems += 1
        self.log(self.tag, msg)


def _fields(src, defaults, table, path, report):
    # Copies the fields of `table` from src into a new dict; a bad value gets its default.
    out = {}
    for key, check in table:
        default = defaults[key]
        if key not in src:
            out[key] = default
            continue
        value = src[key]
        if check[0](value):
            out[key] = value
        else:
            report.bad(path + key, value, check[1], "using " + _shown(default))
            out[key] = default
    return out


def _key(path, key):
    # A key as the console shows it: plain when it is plain, else quoted and shortened.
    name = path + str(key)
    if len(name) > 40 or not _is_text(name, 1, 40, "_-.[]"):
        return _shown(name)
    return name


def _unknown(src, known, path, report):
    for key in src:
        if key not in known:
            report.say("unknown key %s ignored" % _key(path, key))


def _known(table):
    return [row[0] for row in table]


def _section(src, key, table, report):
    defaults = DEFAULTS[key]
    if key not in src:
        return dict(defaults)
    value = src[key]
    if type(value) is not dict:
        report.bad(key, value, "an object", "using defaults")
        return dict(defaults)
    _unknown(value, _known(table), key + ".", report)
    return _fields(value, defaults, table, key + ".", report)


def _typed_fields(spec, table, path, report):
    # Like _fields, with per-row defaults; returns None when a REQUIRED field is missing or bad.
    out = {}
    for key, default, check in table:
        if key in spec:
            value = spec[key]
            if check[0](value):
                out[key] = value
                continue
            if default is REQUIRED:
                report.bad(path + key, value, check[1], "sensor skipped")
                return None
            report.bad(path + key, value, check[1], "using " + _shown(default))
        elif default is REQUIRED:
            report.say("%s%s is missing; sensor skipped" % (path, key))
            return None
        out[key] = default
    return out


def _filter(value, path, report):
    if value is None:
        return None
    kind = value.get("type") if type(value) is dict else None
    if type(kind) is not str or kind not in _FILTERS:
        want = "null or an object with type median or ema"
        report.bad(path, value, want, "no filter")
        return None
    table = _FILTERS[kind]
    _unknown(value, ["type"] + _known(table), path + ".", report)
    out = _typed_fields(value, table, path + ".", report)
    if out is None:
        return None
    out["type"] = kind
    return out


def _sensor(spec, i, names, report):
    path = "sensors[%d]." % i
    if type(spec) is not dict:
        report.bad(path[:-1], spec, "an object", "sensor skipped")
        return None
    kind = spec.get("type")
    if kind not in SENSOR_TYPES:
        report.bad(path + "type", kind, "one of " + ", ".join(SENSOR_TYPES), "sensor skipped")
        return None
    name = spec.get("name")
    if not _NAME[0](name) or name in RESERVED_KEYS:
        report.bad(path + "name", name, _NAME[1] + ", not seq, uptime_ms or ts", "sensor skipped")
        return None
    table = _SENSOR_FIELDS[kind] + _SENSOR_COMMON
    _unknown(spec, ["type", "name", "filter"] + _known(table), path, report)
    out = _typed_fields(spec, table, path, report)
    if out is None:
        return None
    if kind == "bme280" and (out["sda"] is None) != (out["scl"] is None):
        report.say("%ssda and scl go together; using the bus's default pins" % path)
        out["sda"] = out["scl"] = None
    units = ha_units(out.get("device_class"))  # None without a (valid) device class
    if units is not None and (out["unit"] or "") not in units:
        cls = out["device_class"]
        want = " or ".join([repr(u) if u else "null" for u in units])
        report.bad(
            path + "unit",
            out["unit"],
            "what Home Assistant takes for %s (%s)" % (cls, want),
            "device_class ignored",
        )
        out["device_class"] = None
    out["type"] = kind
    out["name"] = name
    out["filter"] = _filter(spec.get("filter"), path + "filter", report)
    keys = sensor_keys(kind, name)
    for key in keys:
        if key in names:
            report.bad(
                path + "name", name, "a name whose keys no other sensor has", "sensor skipped"
            )
            return None
    if reading_bound(names + list(keys)) > READING_MAX:
        report.say(
            "%sname: with %r the readings could pass %d bytes; sensor skipped (fewer sensors "
            "or shorter names)" % (path, name, READING_MAX)
        )
        return None
    names.extend(keys)
    return out


def _sensors(src, report):
    value = src.get("sensors", DEFAULTS["sensors"])
    if type(value) is not list:
        report.bad("sensors", value, "a list", "using the simulated sensor")
        value = DEFAULTS["sensors"]
    names = []
    out = []
    for i, spec in enumerate(value):
        sensor = _sensor(spec, i, names, report)
        if sensor is not None:
            out.append(sensor)
    return out


def validate(src, log, tag="config"):
    # Returns (config, problems): a complete config dict, whatever src holds.
    report = _Report(log, tag)
    if type(src) is not dict:
        report.bad("config", src, "an object", "running on defaults")
        src = {}
    _unknown(src, _known(_TOP) + ["mqtt", "wifi", "sensors"], "", report)
    cfg = _fields(src, DEFAULTS, _TOP, "", report)
    cfg["mqtt"] = _section(src, "mqtt", _MQTT, report)
    cfg["wifi"] = _section(src, "wifi", _WIFI, report)
    cfg["sensors"] = _sensors(src, report)
    if cfg["mqtt"]["host"] is None:
        report.say("mqtt.host is not set: no broker to publish to; readings wait in the outbox")
    if cfg["heartbeat_s"] < cfg["interval_s"]:
        log(tag, "heartbeat_s is shorter than interval_s: heartbeats will outnumber readings")
    return cfg, report.problems


def _network(entry, i, report):
    path = "wifi[%d]." % i
    if type(entry) is not dict:
        report.say("%s is not an object with ssid and password; network skipped" % path[:-1])
        return None
    ssid = entry.get("ssid")
    if not _SSID[0](ssid):
        report.bad(path + "ssid", ssid, _SSID[1], "network skipped")
        return None
    password = entry.get("password", "")
    if not _WIFI_PASSWORD[0](password):
        report.bad(path + "password", password, _WIFI_PASSWORD[1], "network skipped", True)
        return None
    for key in entry:
        if key not in ("ssid", "password"):
            report.say("unknown key %s ignored" % _key(path, key))
    return {"ssid": ssid, "password": password}


def validate_secrets(src, log):
    # Same contract as validate(); values are never printed, only field names.
    report = _Report(log, "secrets")
    out = {"wifi": [], "mqtt": {"user": None, "password": None}, "ap_password": None}
    out["ota_key"] = None
    if type(src) is not dict:
        report.say("secrets.json is not a JSON object; no Wi-Fi networks known")
        return out, report.problems
    _unknown(src, ("wifi", "mqtt", "ap_password", "ota_key"), "", report)
    nets = src.get("wifi", [])
    if type(nets) is not list:
        report.say("wifi is not a list of {ssid, password}; no Wi-Fi networks known")
        nets = []
    for i, entry in enumerate(nets):
        net = _network(entry, i, report)
        if net is not None:
            out["wifi"].append(net)
    mqtt = src.get("mqtt", {})
    if type(mqtt) is not dict:
        report.say("mqtt is not an object with user and password; connecting without login")
        mqtt = {}
    _unknown(mqtt, ("user", "password"), "mqtt.", report)
    for key in ("user", "password"):
        value = mqtt.get(key)
        if _LOGIN[0](value):
            out["mqtt"][key] = value
        else:
            report.bad("mqtt." + key, value, "text or null", "left empty", key == "password")
    ap = src.get("ap_password")
    if ap is None or _PASSPHRASE[0](ap):
        out["ap_password"] = ap
    else:
        report.bad("ap_password", ap, "8 to 63 characters", "the setup AP will be open", True)
    key = src.get("ota_key")
    if _OTA_KEY[0](key):
        out["ota_key"] = key
    else:
        report.bad("ota_key", key, _OTA_KEY[1], "updates over the air are off", True)
    return out, report.problems


def _rule(path):
    # (check, secret) for one setting's path, e.g. "mqtt.port" or "wifi.ssid"; None if unknown.
    for prefix, table in (("", _TOP), ("mqtt.", _MQTT), ("wifi.", _WIFI)):
        for key, check in table:
            if prefix + key == path:
                return check, False
    for key, check, secret in _SECRETS:
        if key == path:
            return check, secret
    return None


def check(path, value):
    # One setting by the rules config.json and secrets.json are held to, for whoever changes
    # a setting while the board runs (the setup page, a command): None when the value is good,
    # else the words the console would use ("mqtt.port = 'abc' is not a whole number from 1 to
    # 65535"). Secrets are shown as (hidden). Sensors are not settings one at a time.
    rule = _rule(path)
    if rule is None:
        return "unknown key %s" % _key("", path)
    ok, want = rule[0]
    if ok(value):
        return None
    return _problem(path, value, want, rule[1])


def read_json(path, log, tag):
    # Returns the parsed file, or None with a message when it is missing or not JSON.
    try:
        data = atomic.read(path)
        if data[:3] == b"\xef\xbb\xbf":  # a UTF-8 BOM, as some editors write one
            data = data[3:]
        return json.loads(data.decode())
    except OSError:
        log(tag, path + " not found; running on defaults")
    except (ValueError, RuntimeError, MemoryError) as e:
        # RuntimeError: nesting deeper than the parser's stack (RecursionError on CPython)
        log(tag, "%s is not valid JSON (%s); running on defaults" % (path, why(e)))
    return None


def load(log, config_path="config.json", secrets_path="secrets.json"):
    # Boot-time entry: (config, secrets, problems). Never raises on file content.
    src = read_json(config_path, log, "config")
    cfg, problems = validate({} if src is None else src, log)
    src = read_json(secrets_path, log, "secrets")
    secrets, more = validate_secrets({} if src is None else src, log)
    return cfg, secrets, problems + more
