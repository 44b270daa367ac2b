# Wiring: reads the config, builds the parts with the board's real collaborators and runs the
# loop. Decisions live in the modules it wires; this one only connects them to the hardware.
import random
import select
import sys
import time

import machine
from micropython import const

from firmware.board import Board
from firmware.log import end_line, log, reading_echo
from firmware.version import VERSION

_IDLE_MAX_MS = const(1000)  # the loop looks at the Wi-Fi link at least this often


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


def _checked(say):
    # config.py's checks, loaded only when validated.py has no result for these files, and
    # dropped before validated.py writes the result and reads it back.
    from firmware import config

    found = config.load(say)
    del config
    from firmware.unload import drop

    drop("config")
    return found


def _load_config(board):
    # (config, secrets, problems, restart): validated.py, and config.py's checks on a boot on
    # new files, leave the heap. restart: this boot checked, so it starts over once what is
    # built from the configuration (the HA record) is kept too (validated.restart).
    from firmware import validated

    again = validated.restarted(board)
    log("boot", "sensornode %s on %s, reset cause: %s" % (VERSION, board.name, board.reset_cause))
    cfg, secrets, problems, checked = validated.load(log, _checked)
    del validated
    from firmware.unload import drop

    drop("config", "validated", "atomic")
    return cfg, secrets, problems, checked and not again


def build():
    board = Board(log)
    cfg, secrets, problems, restart = _load_config(board)
    if problems:
        log("config", "%d problem(s) above; running with defaults in their place" % problems)
    from firmware.session import Topics

    device = board.device_id(cfg["device_id"])
    topics = Topics(cfg["base_topic"], device, secrets["ota_key"] is not None)
    log("boot", "device %s, topics %s/%s/..." % (device, cfg["base_topic"], device))
    sta = board.station(cfg["hostname"] or device)
    if cfg["ha_discovery"]:
        _ha_record(board, cfg, topics)
    if restart:
        from firmware import validated

        validated.restart(board, log)  # returns only when it must not restart
        del validated
    return _wire(board, cfg, secrets, topics, sta)


def _ha_record(board, cfg, topics):
    # Home Assistant's configs, built into their record (ha_record.py) now, while the heap holds
    # little but the board: every connect replays them, and ha.py never meets the running
    # node's heap. Without the heap for it here, the first connect builds them.
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
        log("ha", "not enough heap to build the announcement at boot; the first connect will")
    drop("ha_record", "ha", "sensor_setup", "atomic", "version")


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
    encoder = ReadingEncoder(sensors.keys, b"reading: " if echo else b"")  # log.reading_echo
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


def _sleep(poller, watched, wrapped, ms):
    # Sleeps ms, waking early when the broker sends something on wrapped (the link's
    # WatchedSocket, None without a link); returns the socket the poller now watches, which is
    # registered again after each reconnect.
    if wrapped is None:
        time.sleep_ms(ms)
        return watched
    if wrapped is not watched:
        if watched is not None:
            try:
                poller.unregister(watched.sock)
            except (OSError, ValueError, KeyError):
                pass
        poller.register(wrapped.sock, select.POLLIN)
    for _ in poller.ipoll(ms):  # ipoll: no result list allocated per wake
        break
    return wrapped


_CRASH_RESET_MS = const(10000)
# What only the boot runs. start() forgets it once the node is built: the functions' bytecode
# and strings would otherwise stay on the heap for the board's lifetime.
_BOOT_ONLY = const(
    (
        "build",
        "_wire",
        "_ha_record",
        "_load_config",
        "_checked",
        "_ca_data",
        "Board",
        "reading_echo",
        "VERSION",
    )
)


def start():
    # build(), then the boot's code leaves the heap; returns (board, node, wdt).
    parts = build()
    g = globals()
    for name in _BOOT_ONLY:
        g.pop(name, None)
    from firmware.unload import drop

    drop("version")  # Board keeps the text; ha.py loads it again for a connect's announcement
    return parts


def run():
    try:
        try:
            loop(*start())
        except Exception as e:
            # A bug must not leave a board nobody can reach dead: say what happened, then start
            # over. Ctrl-C (not an Exception) still stops to the REPL, here and during the pause.
            sys.print_exception(e)
            try:
                from firmware import trial

                trial.crashed(e)
            except Exception:
                pass  # the reset below is what matters
            log(
                "boot",
                "unexpected error; resetting in %d s (Ctrl-C for the REPL)"
                % (_CRASH_RESET_MS // 1000),
            )
            time.sleep_ms(_CRASH_RESET_MS)
            machine.reset()
    except KeyboardInterrupt:
        # A person asking for the prompt, not an error: one line instead of a traceback.
        end_line()
        log("boot", "stopped by Ctrl-C; the REPL is yours, Ctrl-D restarts the board")


def loop(board, node, wdt):
    from firmware import trial

    deadline, wdt = trial.begin(node, wdt)
    del trial
    transport = node.session.transport
    poller = select.poll()
    watched = None
    # Fed at least twice per watchdog period however idle the node is.
    longest = _IDLE_MAX_MS if wdt is None else min(_IDLE_MAX_MS, board.wdt_ms // 2)
    log("boot", "running; Ctrl-C stops to the REPL")
    while True:
        now = time.ticks_ms()
        node.step(now)
        if node.reboot_requested:
            log("boot", "rebooting on command")
            node.session.close(now)
            board.reset()
        if deadline is not None:  # new firmware on trial (firmware/trial.py)
            from firmware import trial

            deadline = trial.step(deadline, node, now)
        if wdt is not None:
            wdt.feed()
        ms = min(node.due_in(time.ticks_ms()), longest)
        watched = _sleep(poller, watched, transport.sock, ms)
