# Wiring: builds the node's parts from the configuration with the board's real collaborators.
# Decisions live in the modules it wires; this one only connects them to the hardware. Boot
# only: app.py imports it once the configuration is read, and drops it once the node is built.
import random
import time

from firmware.log import log, reading_echo


def build(board, cfg, secrets, problems, restart):
    # The node, from what validated.boot() found: (board, node, wdt). restart: this boot ran
    # config.py's checks, so it starts over once the HA record is kept too (validated.restart).
    if problems:
        log("config", "%d problem(s) above; running with defaults in their place" % problems)
    from firmware.session import Topics

    device = board.device_id(cfg["device_id"])
    topics = Topics(cfg["base_topic"], device, secrets["ota_key"] is not None)
    log("boot", "device %s, topics %s/%s/..." % (device, cfg["base_topic"], device))
    sta = board.station(cfg["hostname"] or device)
    ha_key = _ha_record(board, cfg, topics) if cfg["ha_discovery"] else None
    if restart:
        from firmware import validated

        validated.restart(board, log)  # returns only when it must not restart
        del validated
    board, node, wdt = _wire(board, cfg, secrets, topics, sta)
    node.ha_key = ha_key
    return board, node, wdt


def _ha_record(board, cfg, topics):
    # Home Assistant's configs, built into their record (ha_record.py) now, while the heap holds
    # little but the board: every connect replays them, and ha.py never meets the running
    # node's heap. Returns the record's key, or None without the heap for it here (then the
    # first connect builds them).
    from firmware import ha_record
    from firmware.sensor_setup import described
    from firmware.unload import drop

    try:
        uid = board.uid()
        mac = board.mac()
        sensors = described(cfg["sensors"])
        interval_ms = int(cfg["interval_s"] * 1000)  # as node.py holds it
        k = ha_record.key(
            cfg["ha_prefix"], uid, board.name, board.version, mac, interval_ms, topics, sensors
        )
        if not ha_record.holds(k):
            from firmware import ha

            device = ha.Device(topics, cfg["ha_prefix"], uid, board.name, mac)
            ha.announce(None, device, sensors, interval_ms / 1000, k)
    except MemoryError:
        # On the boot that checked new files the checks' names hold heap; the boot after the
        # restart tries again, and without a restart the first connect does.
        log("ha", "not enough heap to build the announcement now; the next boot or connect will")
        k = None
    drop("ha_record", "ha", "sensor_setup", "atomic", "version")
    return k


def _wire(board, cfg, secrets, topics, sta):
    # The parts are imported only now that config.py has left the heap: the boot's peak holds
    # the validation tables or the running code, never both.
    from firmware.node import Node, Outbox
    from firmware.payload import ReadingEncoder
    from firmware.sensors import SensorSet
    from firmware.session import Session
    from firmware.transport import Transport, timeout_for
    from firmware.wifi import WifiManager

    device = topics.device
    mq = cfg["mqtt"]

    import umqtt.simple

    ca = _ca_data(board, mq["ca_file"]) if mq["tls"] else None
    # Keywords, not positions: a swapped port and keepalive (both ints) would otherwise pass.
    transport = Transport(
        umqtt=umqtt.simple,
        client_id=device,
        host=mq["host"] if ca is not False else None,
        port=mq["port"],
        user=secrets["mqtt"]["user"],
        password=secrets["mqtt"]["password"],
        keepalive=mq["keepalive"],
        tls=mq["tls"],
        ca_data=ca,
        timeout_s=timeout_for(mq["keepalive"]),
        clock=time,
        log=log,
    )
    session = Session(
        transport=transport,
        topics=topics,
        keepalive_s=mq["keepalive"],
        clock=time,
        backoff=(1000, 60000, random.getrandbits),
        log=log,
        where="%s:%d" % (mq["host"], mq["port"]),
    )
    wifi = WifiManager(
        sta=sta,
        networks=secrets["wifi"],
        clock=time,
        backoff=(2000, 120000, random.getrandbits),
        log=log,
        attempt_ms=int(cfg["wifi"]["attempt_s"] * 1000),
        rounds_before_ap=cfg["wifi"]["rounds_before_ap"],
        ap=(device + "-setup", secrets["ap_password"]),  # built only when needed
        board=board,
    )
    sensors = SensorSet(cfg["sensors"], log, time)
    echo = cfg["console_readings"]
    head = b"reading: " if echo else b""  # log.reading_echo
    encoder = ReadingEncoder(sensors.keys, sensors.values, sensors.due, head)
    node = Node(
        cfg=cfg,
        clock=time,
        wifi=wifi,
        session=session,
        sensors=sensors,
        outbox=Outbox(cfg["outbox_size"]),
        encoder=encoder,
        stats=board,
        log=log,
        echo=reading_echo(encoder) if echo else None,
    )
    node.ota_key = secrets["ota_key"]
    session.updates = node.ota_key is not None
    if node.ota_key is None:
        log("update", "no ota_key in secrets.json: updates over the air are off")
    return board, node, board.watchdog(cfg["watchdog_s"])


def _ca_data(board, path):
    # The CA certificate as DER, None without a ca_file, or False when the file named cannot be
    # used: then the board does not connect at all rather than trust any server.
    if not path:
        return None
    from firmware.cert import der

    try:
        return der(board.read_file(path))
    except OSError:
        problem = "not found on the board"
    except ValueError as e:
        problem = str(e)
    log(
        "mqtt",
        "ca_file %r: %s; not connecting until it is fixed (make provision)" % (path, problem),
    )
    return False
