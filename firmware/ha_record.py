# The record of the Home Assistant announcement (ha.txt), and its replay. The configs are the
# same texts at every connect while nothing they are built from changes, so a connect sends them
# line by line from the record instead of loading ha.py to build them: building them was the
# node's largest heap peak, and ha.py's names stay out of the qstr pools of a board that booted
# on these files before.
# ha.py builds the configs and writes a new record when the key differs (a new configuration,
# firmware, board, interval_s, or no record yet): at boot (wiring.py), before the node's code has
# loaded; at a connect only when the boot could not (no heap for it), and then sends them too.
#
# The record: its key on the first line, then each config as two lines, topic and payload
# (compact JSON, one line). Written to ha.txt.tmp and renamed over ha.txt (atomic.py), so a
# power cut leaves the old record or the new one. The retained configs of keys a build at boot
# no longer has wait in ha.txt.clear, a topic a line, until a connect has cleared them.
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


def key(prefix, uid, board, version, mac, interval_ms, topics, sensors):
    # The hash of everything the configs are built from, as hex: the prefix, the board, its chip
    # and MAC, the firmware's version, the interval (expire_after), the topics and the sensors
    # (each spec with its keys).
    facts = [
        prefix,
        uid,
        board,
        version,
        mac,
        interval_ms,
        topics.readings.decode(),
        topics.status.decode(),
        topics.heartbeat.decode(),
        sensors,
    ]
    h = hashlib.sha256()
    _feed(h, facts)
    return binascii.hexlify(h.digest()).decode()


def holds(k, path=PATH):
    # True when the record was written for key k.
    try:
        with open(path, "rb") as f:
            return f.readline() == k.encode() + b"\n"
    except OSError:
        return False


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
                    return _clear(session, now, path + ".clear")
                if msg[-1:] != b"\n":
                    return None  # not a whole record (a file cut short): ha.py writes a new one
                if not session.publish(memoryview(topic)[:-1], memoryview(msg)[:-1], True, 0, now):
                    return False
    except OSError:  # none, or unreadable: built again
        return None


def _clear(session, now, path):
    # Clears the retained configs a build at boot left to clear (ha.py), at QoS 1; the list goes
    # once all are out. True when none is left.
    try:
        f = open(path, "rb")  # noqa: SIM115 -- closed below, before the list is removed
    except OSError:
        return True
    try:
        for line in f:
            if not session.publish(memoryview(line)[:-1], b"", True, 1, now):
                return False
    finally:
        f.close()
    import os

    try:
        os.remove(path)
    except OSError:
        pass
    return True


def came_online(node, now):
    # The announcement at a connect from the record. None when it was replayed (or the link
    # failed on the way: the next connect tries again); else (uid, key, sensors described), what
    # ha.came_online() needs to build the configs and write the next record, once this module
    # has left. The key the boot found (node.ha_key) is taken as it is: nothing it is made of
    # changes while the node runs, but the interval (commands.py forgets the key then).
    k = node.ha_key
    if k is not None and replay(node.session, now, k) is not None:
        return None
    uid = node.stats.uid()
    keys = node.sensors.keys  # each sensor kept, with the keys it fills, as the set has them
    sensors = [(s.spec, keys[s.start : s.start + s.n]) for s in node.sensors.slots]
    if k is None:  # no key from the boot, or the interval changed since
        st = node.stats
        k = key(
            node.ha_prefix,
            uid,
            st.name,
            st.version,
            st.mac(),
            node.interval_ms,
            node.topics,
            sensors,
        )
        if replay(node.session, now, k) is not None:
            return None
    return uid, k, sensors
