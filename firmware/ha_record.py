# The record of the last Home Assistant announcement (ha.txt), and its replay. The configs are
# the same texts at every connect while nothing they are built from changes, so a reconnect
# sends them again line by line from the record instead of loading ha.py to build them: the
# announcement was the node's largest heap peak, and its names stay out of the qstr pools.
# ha.py builds the configs, sends them and writes a new record (ha.py's record_* functions)
# when the key differs: a new configuration, firmware, board, interval_s, or no record yet.
#
# The record: its key on the first line, then each config as two lines, topic and payload
# (compact JSON, one line). Written to ha.txt.tmp and renamed over ha.txt (atomic.py), so a
# power cut leaves the old record or the new one.
import binascii
import hashlib
import json

PATH = "ha.txt"


def _feed(h, v):
    # v into the hash h the same way whatever order its dicts were filled in: json.dumps keeps a
    # dict's own order, and a sensor's spec as config.py builds it (a first boot) and as
    # validated.json gives it back (every later boot) iterate differently.
    if type(v) is dict:
        h.update(b"{")
        for k in sorted(v):
            _feed(h, k)
            _feed(h, v[k])
        h.update(b"}")
    elif type(v) is list or type(v) is tuple:
        h.update(b"[")
        for x in v:
            _feed(h, x)
        h.update(b"]")
    else:
        h.update(json.dumps(v).encode())
        h.update(b",")


def key(node, uid, sensors):
    # The hash of everything the configs are built from, as hex: the sensors (each spec with its
    # keys), the interval (expire_after), the topics, the prefix, the board, its chip and MAC,
    # and the firmware's version.
    t = node.topics
    facts = [
        node.ha_prefix,
        uid,
        node.stats.name,
        node.stats.version,
        node.stats.mac(),
        node.interval_ms,
        t.readings.decode(),
        t.status.decode(),
        t.heartbeat.decode(),
        sensors,
    ]
    h = hashlib.sha256()
    _feed(h, facts)
    return binascii.hexlify(h.digest()).decode()


def replay(session, now, k, path=PATH):
    # Sends every config of the record, retained at QoS 0 as ha.py does. True once all went
    # out; False when the link failed on the way; None when there is no whole record for key k.
    # A line is read at a time, and sent without a copy (a memoryview without its newline).
    try:
        with open(path, "rb") as f:
            if f.readline() != k.encode() + b"\n":
                return None
            while True:
                topic = f.readline()
                msg = f.readline()
                if not topic:
                    return True
                if msg[-1:] != b"\n":
                    return None  # not a whole record (a file cut short): ha.py writes a new one
                if not session.publish(memoryview(topic)[:-1], memoryview(msg)[:-1], True, 0, now):
                    return False
    except OSError:  # none, or unreadable: built again
        return None


def came_online(node, now):
    # The announcement at a connect from the record. None when it was replayed (or the link
    # failed on the way: the next connect tries again); else (uid, key, sensors described), what
    # ha.came_online() needs to build the configs and write the next record, once this module
    # has left.
    uid = node.stats.uid()
    keys = node.sensors.keys  # each sensor kept, with the keys it fills, as the set has them
    sensors = [(s.spec, keys[s.start : s.start + s.n]) for s in node.sensors.slots]
    k = key(node, uid, sensors)
    if replay(node.session, now, k) is not None:
        return None
    return uid, k, sensors
