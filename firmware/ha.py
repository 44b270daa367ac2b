# Home Assistant MQTT discovery: one retained config message per reading key and per heartbeat
# fact, sent at each connect. Imported for the announcement and dropped after it (node.py): the
# tables and texts here never stay on the heap between connects.
#
# Each text is built, sent and let go before the next one, so the peak is one message. They go
# out as bytes: umqtt sizes a PUBLISH by len(), and "°C" is one character but two bytes.
import json

from firmware.version import VERSION

MEMORY = "ha.txt"  # the config topics announced last, one a line: what a later connect clears

_ORIGIN = {"name": "sensornode", "sw": VERSION}
# Board name -> (manufacturer, model).
_MAKERS = {"esp32": ("Espressif", "ESP32"), "picow": ("Raspberry Pi", "Pico W")}

_TEMPERATURE = ("°C", "temperature")
_QUANTITIES = {
    "temperature": _TEMPERATURE,
    "humidity": ("%", "humidity"),
    "pressure": ("hPa", "pressure"),
}
# Display precision by driver: what the sensor resolves (DHT11: whole units; DS18B20: 1/16 °C).
_PRECISION = {"dht11": 0, "dht22": 1, "bme280": 1, "ds18b20": 1, "mcu": 1}
_OTHER_PRECISION = 2  # sim and adc: the encoder sends up to three decimals

# Heartbeat facts shown as diagnostic entities:
# (field, name, unit, device_class, state_class); None where HA has nothing to say.
_DIAGNOSTICS = (
    ("rssi", "Signal strength", "dBm", "signal_strength", "measurement"),
    ("free_heap", "Free heap", "B", "data_size", "measurement"),
    ("uptime_s", "Uptime", "s", "duration", "total_increasing"),
    ("reconnects", "Reconnects", None, None, "total_increasing"),
    ("dropped", "Readings dropped", None, None, "total_increasing"),
    ("errors", "Errors", None, None, "total_increasing"),
    ("reset_cause", "Reset cause", None, None, None),
    ("ip", "IP address", None, None, None),
    ("version", "Firmware version", None, None, None),
)


def quantity(spec, key):
    # (unit, device_class, display precision) of one reading key; None where nothing is known.
    kind = spec["type"]
    if kind in ("mcu", "ds18b20"):
        return _TEMPERATURE + (1,)
    if kind in _PRECISION:  # dht11, dht22, bme280: <name>_<quantity>
        return _QUANTITIES[key[len(spec["name"]) + 1 :]] + (_PRECISION[kind],)
    return (spec.get("unit"), spec.get("device_class"), _OTHER_PRECISION)


def value_template(field):
    # value_json['...'] takes any key, '2nd_floor' too (value_json.2nd_floor does not parse).
    # A reading without the key (report-on-change) renders '', which a numeric MQTT sensor
    # ignores, so the entity keeps its last state; a null renders None: the state is unknown.
    return "{{ value_json['%s'] if '%s' in value_json else '' }}" % (field, field)


def expire_after(spec, interval_s):
    # Seconds after which HA may call a key's value stale: only a key under report-on-change has
    # a promise (max_silence_s) to break; a reading is taken every interval on top of it.
    if spec["delta"] is None:
        return None
    return int(spec["max_silence_s"] + 2 * interval_s + 0.999)


class Device:
    # Who is announcing: the parts of every config message that name the device.
    # uid: the chip's unique id in hex; it, not the device id, names the device and its entities,
    # so a renamed node stays the same device in HA.
    def __init__(self, topics, prefix, uid, board, mac):
        self.topics = topics
        self.prefix = prefix
        self.uid = "sensornode_" + uid
        maker = _MAKERS.get(board, (None, board))
        dev = {"ids": [self.uid], "name": topics.device, "sw": VERSION, "mdl": maker[1]}
        if maker[0] is not None:
            dev["mf"] = maker[0]
        if mac:
            dev["cns"] = [["mac", mac]]
        self.block = dev

    def topic(self, component, object_id):
        return "%s/%s/%s_%s/config" % (self.prefix, component, self.topics.device, object_id)

    def config(self, name, object_id, state_topic, template):
        return {
            "name": name,
            "uniq_id": self.uid + "_" + object_id,
            "stat_t": state_topic,
            "val_tpl": template,
            "avty_t": self.topics.status.decode(),
            "dev": self.block,
            "o": _ORIGIN,
        }


def _put(doc, key, value):
    if value is not None:
        doc[key] = value


def reading_configs(device, specs, interval_s):
    # Yields (topic, config dict) for every reading key, one at a time.
    from firmware.sensor_setup import keys_for
    from firmware.unload import drop

    drop("sensor_setup")  # keys_for holds what it needs until the announcing is over

    readings = device.topics.readings.decode()
    for spec in specs:
        for key in keys_for(spec):
            unit, cls, precision = quantity(spec, key)
            doc = device.config(key, key, readings, value_template(key))
            doc["stat_cla"] = "measurement"
            _put(doc, "unit_of_meas", unit)
            _put(doc, "dev_cla", cls)
            _put(doc, "sug_dsp_prc", precision)
            _put(doc, "exp_aft", expire_after(spec, interval_s))
            yield device.topic("sensor", key), doc


def diagnostic_configs(device):
    # Yields (topic, config dict) for the heartbeat's facts and the node's connectivity. Object
    # ids carry a "-", which no sensor name has: a sensor called "rssi" cannot collide.
    heartbeat = device.topics.heartbeat.decode()
    for field, name, unit, cls, state_class in _DIAGNOSTICS:
        doc = device.config(name, "diag-" + field, heartbeat, value_template(field))
        doc["ent_cat"] = "diagnostic"
        _put(doc, "unit_of_meas", unit)
        _put(doc, "dev_cla", cls)
        _put(doc, "stat_cla", state_class)
        yield device.topic("sensor", "diag-" + field), doc
    # The status topic itself: off (disconnected) when the last will says offline. It has no
    # availability, or it would be unavailable exactly when it has something to say.
    doc = device.config("Connectivity", "diag-status", device.topics.status.decode(), None)
    del doc["val_tpl"]
    del doc["avty_t"]
    doc["ent_cat"] = "diagnostic"
    doc["dev_cla"] = "connectivity"
    doc["pl_on"] = "online"
    doc["pl_off"] = "offline"
    yield device.topic("binary_sensor", "diag-status"), doc


def remembered(path=MEMORY):
    # The topics the last announcement sent, or () when there is no record of one.
    from firmware import atomic

    try:
        text = atomic.read(path)
    except OSError:
        return ()
    return [t for t in text.decode().split("\n") if t]


def remember(topics, path=MEMORY):
    # Written only when the set of topics changed, so the flash sees a write per re-provision,
    # not per connect; atomically, so a power cut leaves the old record or the new one.
    from firmware import atomic

    atomic.write(path, "\n".join(topics).encode())


def announce(publish, device, specs, interval_s, path=MEMORY):
    # publish(topic bytes, payload bytes, qos) -> bool (False: the link is gone, stop). Sends
    # every config, clears the retained configs of keys no longer configured, and records what it
    # sent. Returns False when the link failed on the way (the next connect tries again).
    # Configs go at QoS 0: the next connect sends them all again anyway, and a dozen PUBACK round
    # trips would hold the first readings back. Clears go at QoS 1: once recorded, they are not
    # sent again, so the broker must have them.
    sent = []
    for configs in (reading_configs(device, specs, interval_s), diagnostic_configs(device)):
        for topic, doc in configs:
            if not publish(topic.encode(), json.dumps(doc).encode(), 0):
                return False
            sent.append(topic)
    before = remembered(path)
    for topic in before:
        if topic not in sent and not publish(topic.encode(), b"", 1):
            return False
    if before != sent:
        try:
            remember(sent, path)
        except OSError:
            pass  # a full or failing flash: the next connect clears the same topics again
    return True
