# The setup page's form, loaded by portal.py when a form is submitted and dropped after: its
# fields as settings, checked by the rules config.json and secrets.json are held to at boot,
# merged into what the two files hold and written atomically.
import json

from firmware.portal import CONFIG, SECRETS, read_json


def apply(body, check=None):
    # (error, what the form shows again, the network to join, whether a restart is needed).
    # error is "" when the settings were written; ValueError or UnicodeError for a malformed
    # body, OSError when a file could not be written.
    form = parse_form(body)
    changes = settings(form)
    said = _problems_by_config(changes) if check is None else problems(changes, check)
    shown = dict(form)
    shown.pop("password", None)
    shown.pop("mqtt_password", None)
    if said:
        return said, shown, None, False
    cfg = read_json(CONFIG)
    secrets = read_json(SECRETS)
    restart = merge(changes, cfg, secrets)
    if restart:
        write_json(CONFIG, cfg)
    write_json(SECRETS, secrets)
    return "", shown, secrets["wifi"][0], restart


def _problems_by_config(changes):
    # The boot-time rules are loaded for this one check (about 24 KB) and dropped after it.
    from firmware import config
    from firmware.unload import drop

    try:
        return problems(changes, config.check)
    finally:
        del config
        drop("config")


def _unquote(text):
    # application/x-www-form-urlencoded: + is a space, %XX a byte; the bytes are UTF-8.
    raw = text.replace(b"+", b" ")
    if b"%" not in raw:
        return raw.decode()
    out = bytearray()
    parts = raw.split(b"%")
    out += parts[0]
    for part in parts[1:]:
        if len(part) < 2:
            raise ValueError("bad escape")
        out.append(int(part[:2], 16))
        out += part[2:]
    return bytes(out).decode()


def parse_form(body):
    # {name: value} from a form body; ValueError for a malformed one.
    out = {}
    for pair in body.split(b"&"):
        if not pair:
            continue
        name, _, value = pair.partition(b"=")
        out[_unquote(name)] = _unquote(value)
    return out


def write_json(path, doc):
    # Atomic (firmware/atomic.py, as config.json's settings are written): a power cut leaves
    # the old file or the new one.
    from firmware import atomic

    atomic.write_json(path, doc)


def settings(form):
    # The form's fields as setting paths and typed values: {path: value}; what is left empty is
    # not changed (an empty Wi-Fi password is an open network, and is a change).
    out = {"wifi.ssid": form.get("ssid", "").strip(), "wifi.password": form.get("password", "")}
    host = form.get("host", "").strip()
    if host:
        out["mqtt.host"] = host
        port = form.get("port", "").strip() or "1883"
        out["mqtt.port"] = int(port) if port.isdigit() and len(port) < 7 else port
    for field, path in (("user", "mqtt.user"), ("mqtt_password", "mqtt.password")):
        if form.get(field, ""):
            out[path] = form[field]
    device = form.get("device", "").strip()
    if device:
        out["device_id"] = device
    return out


def problems(changes, check):
    # The first setting that breaks its rule, in the console's words, or "".
    for path in changes:
        said = check(path, changes[path])
        if said:
            return said
    return ""


def _section(doc, key):
    # doc[key] as a dict to change, made one if it is missing or not an object.
    part = doc.get(key)
    if type(part) is not dict:
        part = doc[key] = {}
    return part


def merge(changes, cfg, secrets):
    # Applies changes to the two documents in place; True when what changed takes a restart to
    # be used (the broker, its login, the device name): the Wi-Fi network is used at once.
    net = {"ssid": changes["wifi.ssid"], "password": changes["wifi.password"]}
    nets = secrets.get("wifi")
    nets = nets if type(nets) is list else []
    secrets["wifi"] = [net] + [
        n for n in nets if type(n) is not dict or n.get("ssid") != net["ssid"]
    ]
    before = json.dumps(cfg)
    for doc, keys in ((secrets, ("user", "password")), (cfg, ("host", "port"))):
        for key in keys:
            if "mqtt." + key in changes:
                _section(doc, "mqtt")[key] = changes["mqtt." + key]
    if "device_id" in changes:
        cfg["device_id"] = changes["device_id"]
    return json.dumps(cfg) != before or "mqtt.user" in changes or "mqtt.password" in changes
