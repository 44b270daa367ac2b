# Home Assistant MQTT discovery: one retained config message per reading key and per heartbeat
# fact, sent at each connect. Imported for the announcement and dropped after it (node.py): the
# tables and texts here never stay on the heap between connects.
#
# Each text is built, sent and let go before the next one, so the peak is one message. They go
# out as bytes: umqtt sizes a PUBLISH by len(), and "°C" is one character but two bytes.
#
# The messages are JSON put together from the texts below, and the tables are texts too: every
# short string and name in code is interned for the board's lifetime at the first connect (HA's
# abbreviated keys alone were 20 names), a longer text leaves the heap with the module. Every
# value goes in through json.dumps, so a name with a quote in it is still valid JSON.
import json

from micropython import const

from firmware.version import VERSION

PATH = "ha.txt"  # the record of the last announcement: ha_record.py reads and replays it

# One config: name, unique id, state topic, the device block, the firmware version, the rest.
_CONFIG = const('{"name":%s,"uniq_id":%s,"stat_t":%s,"dev":%s,"o":{"name":"sensornode","sw":%s}%s}')
_READING = const(',"val_tpl":%s,"avty_t":%s,"stat_cla":"measurement"')
_DIAGNOSTIC = const(',"val_tpl":%s,"avty_t":%s,"ent_cat":"diagnostic"')
# The status topic itself: off (disconnected) when the last will says offline. It has no
# availability, or it would be unavailable exactly when it has something to say.
_CONNECTIVITY = const(
    ',"ent_cat":"diagnostic","dev_cla":"connectivity","pl_on":"online","pl_off":"offline"'
)

# Board name -> manufacturer and model, "board:maker:model;".
_MAKERS = const(";esp32:Espressif:ESP32;picow:Raspberry Pi:Pico W;")
# A driver's quantity -> its unit (the device class is the quantity's name).
_UNITS = const(";temperature:°C;humidity:%;pressure:hPa;")
# Display precision by driver: what the sensor resolves (DHT11: whole units; DS18B20: 1/16 °C);
# sim and adc get 2: the encoder sends up to three decimals.
_PRECISION = const(";dht11:0;dht22:1;bme280:1;ds18b20:1;mcu:1;")
# Heartbeat facts shown as diagnostic entities, "field|name|unit|device class|state class;",
# empty where HA has nothing to say.
_DIAGNOSTICS = const(
    "rssi|Signal strength|dBm|signal_strength|measurement;"
    "free_heap|Free heap|B|data_size|measurement;"
    "uptime_s|Uptime|s|duration|total_increasing;"
    "reconnects|Reconnects|||total_increasing;"
    "dropped|Readings dropped|||total_increasing;"
    "errors|Errors|||total_increasing;"
    "reset_cause|Reset cause|||;"
    "ip|IP address|||;"
    "version|Firmware version|||"
)


def _lookup(table, key):
    # The text after "key:" in a ";key:value;" table, or None.
    at = table.find(";%s:" % key)
    if at < 0:
        return None
    at += len(key) + 2
    return table[at : table.find(";", at)]


def quantity(spec, key):
    # (unit, device_class, display precision) of one reading key; None where nothing is known.
    kind = spec["type"]
    precision = _lookup(_PRECISION, kind)
    if precision is None:  # sim and adc: what the configuration says
        return (spec.get("unit"), spec.get("device_class"), 2)
    # <name>_<quantity> for dht11, dht22 and bme280; the one key of mcu and ds18b20 is the name
    what = key[len(spec["name"]) + 1 :] or "temperature"
    return (_lookup(_UNITS, what), what, int(precision))


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


def _optional(key, value):
    # key (',"name":') and the value as JSON text, or "" for None.
    return "" if value is None else key + json.dumps(value)


class Device:
    # Who is announcing: the parts of every config message that name the device.
    # uid: the chip's unique id in hex; it, not the device id, names the device and its entities,
    # so a renamed node stays the same device in HA. `block` is the device's JSON text.
    def __init__(self, topics, prefix, uid, board, mac):
        self.topics = topics
        self.prefix = prefix
        self.uid = "sensornode_" + uid
        made = _lookup(_MAKERS, board)
        maker, _, model = made.partition(":") if made else (None, "", board)
        block = '{"ids":[%s],"name":%s,"sw":%s,"mdl":%s' % (
            json.dumps(self.uid),
            json.dumps(topics.device),
            json.dumps(VERSION),
            json.dumps(model),
        )
        block += _optional(',"mf":', maker)
        if mac:
            block += ',"cns":[["mac",%s]]' % json.dumps(mac)
        self.block = block + "}"

    def topic(self, component, object_id):
        return "%s/%s/%s_%s/config" % (self.prefix, component, self.topics.device, object_id)

    def config(self, name, object_id, state_topic, rest):
        # One config message's JSON text; rest: its fields after the common ones, as JSON text.
        return _CONFIG % (
            json.dumps(name),
            json.dumps(self.uid + "_" + object_id),
            json.dumps(state_topic),
            self.block,
            json.dumps(VERSION),
            rest,
        )


def reading_configs(device, sensors, interval_s):
    # Yields (topic, config JSON text) for every reading key, one at a time. sensors: (spec, its
    # JSON keys) for each sensor kept, as the running sensor set has them.
    readings = device.topics.readings.decode()
    status = json.dumps(device.topics.status.decode())
    for spec, keys in sensors:
        for key in keys:
            unit, cls, precision = quantity(spec, key)
            rest = _READING % (json.dumps(value_template(key)), status)
            rest += _optional(',"unit_of_meas":', unit) + _optional(',"dev_cla":', cls)
            rest += _optional(',"sug_dsp_prc":', precision)
            rest += _optional(',"exp_aft":', expire_after(spec, interval_s))
            yield device.topic("sensor", key), device.config(key, key, readings, rest)


def diagnostic_configs(device):
    # Yields (topic, config JSON text) for the heartbeat's facts and the node's connectivity.
    # Object ids carry a "-", which no sensor name has: a sensor called "rssi" cannot collide.
    heartbeat = device.topics.heartbeat.decode()
    status = device.topics.status.decode()
    at = 0
    while at < len(_DIAGNOSTICS):  # row by row: a list of all rows would add to the peak
        end = _DIAGNOSTICS.find(";", at)
        if end < 0:
            end = len(_DIAGNOSTICS)
        field, name, unit, cls, state_class = _DIAGNOSTICS[at:end].split("|")
        at = end + 1
        rest = _DIAGNOSTIC % (json.dumps(value_template(field)), json.dumps(status))
        rest += _optional(',"unit_of_meas":', unit or None) + _optional(',"dev_cla":', cls or None)
        rest += _optional(',"stat_cla":', state_class or None)
        object_id = "diag-" + field
        yield device.topic("sensor", object_id), device.config(name, object_id, heartbeat, rest)
    yield (
        device.topic("binary_sensor", "diag-status"),
        device.config("Connectivity", "diag-status", status, _CONNECTIVITY),
    )


def record_topics(path):
    # The config topics of the last record (bytes), or () when there is none. A line ending in
    # /config is a topic: a payload ends in "}" and the key is hex (a record written before keys
    # were kept is topics alone, and reads the same).
    found = []
    try:
        with open(path, "rb") as f:
            for line in f:
                line = line.rstrip(b"\n")
                if line.endswith(b"/config"):
                    found.append(line)
    except OSError:
        return ()
    return found


# Writing the next record (its format: ha_record.py). A full or failing flash only costs the
# record: the announcement goes on, and the next connect builds again.


def record_start(k, path):
    # The new record, open for its configs, with its key written; None when it cannot be.
    try:
        f = open(path + ".tmp", "wb")  # noqa: SIM115 -- open while the configs go out
        f.write(k.encode() + b"\n")
        return f
    except OSError:
        return None


def record_add(f, path, topic, msg):
    # One config, topic and payload as bytes (the payload has no newline: compact JSON). Returns
    # the record, or None once writing failed.
    if f is None:
        return None
    try:
        f.write(topic + b"\n")
        f.write(msg)
        f.write(b"\n")
        return f
    except OSError:
        record_finish(f, path, False)
        return None


def record_finish(f, path, whole):
    # Closes the new record; whole: it replaces the old one, else it is thrown away.
    if f is None:
        return
    try:
        f.close()
        if whole:
            from firmware import atomic

            atomic.replace(path + ".tmp", path)
            return
    except OSError:
        pass
    import os

    try:
        os.remove(path + ".tmp")
    except OSError:
        pass


def _clear_later(stale, sent, path):
    # Adds the stale topics to the list the next connect clears (ha_record.py), less any that
    # is configured again.
    for topic in record_topics(path):
        if topic not in stale:
            stale.append(topic)
    from firmware import atomic

    try:
        atomic.write(path, b"".join([t + b"\n" for t in stale if t not in sent]))
    except OSError:
        pass  # a full or failing flash: HA keeps those entities until it is told otherwise


def announce(publish, device, sensors, interval_s, k, path=PATH):
    # publish(topic bytes, payload bytes, qos) -> bool (False: the link is gone, stop), or None
    # at boot (wiring.py), which only writes the record. Sends every config, clears the retained
    # configs of keys no longer configured (at boot: lists them for the next connect), and writes
    # the record the connects replay while key k holds (ha_record.py). Returns False when the
    # link failed on the way: the old record stays, and the next connect builds again.
    # Configs go at QoS 0: the next connect sends them all again anyway, and a dozen PUBACK round
    # trips would hold the first readings back. Clears go at QoS 1: once recorded, they are not
    # sent again, so the broker must have them.
    record = record_start(k, path)
    sent = []
    for configs in (reading_configs(device, sensors, interval_s), diagnostic_configs(device)):
        for topic, text in configs:
            topic = topic.encode()
            msg = text.encode()
            if publish is not None and not publish(topic, msg, 0):
                record_finish(record, path, False)
                return False
            sent.append(topic)
            record = record_add(record, path, topic, msg)
    stale = [t for t in record_topics(path) if t not in sent]
    if publish is None:
        _clear_later(stale, sent, path + ".clear")  # before the old record's topics are gone
    else:
        for topic in stale:
            if not publish(topic, b"", 1):
                record_finish(record, path, False)
                return False
    record_finish(record, path, True)
    return True


def came_online(node, now, uid, k, sensors):
    # The running node's announcement at a connect, retained: HA may start after the node, and
    # must get every config. uid: the chip's unique id in hex; k: the record's key; sensors:
    # each sensor with its keys (all three from ha_record.came_online()).
    session = node.session

    def publish(topic, msg, qos):
        return session.publish(topic, msg, True, qos, now)

    device = Device(node.topics, node.ha_prefix, uid, node.stats.name, node.stats.mac())
    announce(publish, device, sensors, node.interval_ms / 1000, k)
