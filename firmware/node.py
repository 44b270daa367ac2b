# The node: one step() of the board's life. Keeps the link up, takes readings on schedule, sends
# them or keeps them in the outbox, sends heartbeats and answers commands. Plain code; every
# collaborator comes in as an argument, so the same step runs under CPython tests and on a board.
from micropython import const

from firmware.unload import drop

_FLUSH_PER_STEP = const(10)  # queued readings sent per step, so commands and pings still run
# ...and no longer than this: a broker that takes most of its deadline for every PUBACK must not
# keep the loop (and the watchdog's feeding) away for ten deadlines in a row
_FLUSH_BUDGET_MS = const(1000)


# Readings taken while offline wait in the outbox: a fixed ring of slots, oldest first out, and
# when it is full the oldest is dropped and counted, so memory stays bounded through any outage.
# It lives here, with the only code that fills and empties it: a module of its own cost the
# board ~180 bytes of heap for good (module, globals, names) for 30 lines.
class Outbox:
    def __init__(self, size):
        self.slots = [None] * size
        self.head = 0  # index of the oldest entry
        self.count = 0
        self.dropped = 0

    def push(self, payload):
        size = len(self.slots)
        if self.count == size:
            self.head = (self.head + 1) % size
            self.count -= 1
            self.dropped += 1
        self.slots[(self.head + self.count) % size] = payload
        self.count += 1

    def peek(self):
        return self.slots[self.head] if self.count else None

    def pop(self):
        # Called only once the oldest entry is safely out.
        payload = self.slots[self.head]
        self.slots[self.head] = None
        self.head = (self.head + 1) % len(self.slots)
        self.count -= 1
        return payload


class Node:
    def __init__(self, cfg, clock, wifi, session, sensors, outbox, encoder, stats, log, echo=None):
        self.clock = clock
        self.echo = echo  # echo(msg, kept): a console line per reading (console_readings), or None
        self.wifi = wifi
        self.session = session
        self.sensors = sensors
        self.outbox = outbox
        self.encoder = encoder
        self.stats = (
            stats  # board facts for the heartbeat: uptime_s(), unix_time(), free_heap() ...
        )
        self.log = log
        self.cfg = cfg  # the running configuration, as `get` answers it
        self.config_path = "config.json"  # where `set` writes
        self.topics = session.topics
        self.qos = cfg["mqtt"]["qos"]
        self.interval_ms = int(cfg["interval_s"] * 1000)
        self.heartbeat_ms = int(cfg["heartbeat_s"] * 1000)
        self.discovery = cfg["ha_discovery"]
        self.ha_prefix = cfg["ha_prefix"]
        self.ha_key = None  # the HA record's key as the boot found it (wiring.py), or None
        now = clock.ticks_ms()
        self.boot = now
        self.next_reading = now
        self.next_heartbeat = now
        self.seq = 0
        self.sent = 0
        self.command_errors = 0
        self.connects_seen = 0
        self.reboot_requested = False
        self.ota_key = None  # secrets.json's ota_key: None, no updates
        self.update = None  # the download under way (firmware/ota.py), loaded only for it
        self.update_asked = 0
        self.update_req = None
        self.news = None  # type: tuple | None  # the last update's (ok, detail), said at connect

    def step(self, now):
        self.wifi.poll(now)
        if self.wifi.up:
            self.session.poll(now)
        elif self.session.online:
            self.session.drop(now, "unreachable: Wi-Fi is down")
        # What runs at a connect, on a command, for a heartbeat or an update is loaded for it and
        # dropped after it (firmware/report.py, commands.py, ota.py): the loop's heap keeps only
        # the reading's code.
        if self.session.connects != self.connects_seen:
            self.connects_seen = self.session.connects
            from firmware import report

            report.came_online(self, now)
            drop("report")
            if self.discovery:
                self._announce(now)
        if self.clock.ticks_diff(now, self.next_reading) >= 0:
            self._take_reading(now)
        if self.outbox.count and self.session.online:
            self._flush(now)
        while self.session.commands:
            from firmware import commands

            commands.run(self, self.session.commands.pop(0), now)
            drop("commands", "report")
        if self.clock.ticks_diff(now, self.next_heartbeat) >= 0:
            self.next_heartbeat = self.clock.ticks_add(now, self.heartbeat_ms)
            if self.session.online:
                from firmware import report

                report.send_heartbeat(self, now)
                drop("report")
        if self.update is not None:
            from firmware import ota

            ota.step(self, now)
            drop("report")
        elif self.session.piece is not None:
            self.session.piece = None  # a piece nobody asked for: ignored

    def _announce(self, now):
        # Home Assistant discovery, once report.py has left: the connect's largest peak. The
        # record is replayed when it holds for what the node is now, else ha.py builds the
        # configs. Discovery is not worth the board: without the heap for it, the node says so
        # and goes on with its readings; the next connect tries again.
        try:
            from firmware import ha_record

            build = ha_record.came_online(self, now)  # None: replayed from the record
            drop("ha_record")
            if build is not None:  # nothing recorded for what the node is now
                from firmware import ha

                ha.came_online(self, now, build[0], build[1], build[2])
                self.ha_key = build[1]  # what the next connects replay
        except MemoryError:
            self.log("ha", "not enough heap to announce; trying again at the next connect")
        drop("ha_record", "ha", "atomic", "version")

    def due_in(self, now):
        # Milliseconds until the next scheduled reading or heartbeat, for the caller's sleep.
        if self.session.piece is not None or self.session.commands:
            return 0  # taken in while a QoS 1 publish waited for its PUBACK: act on it now
        diff = self.clock.ticks_diff
        soonest = min(diff(self.next_reading, now), diff(self.next_heartbeat, now))
        soonest = min(soonest, self.wifi.due_in(now))
        if self.wifi.up:  # the session cannot act without a link: its wishes wait until then
            soonest = min(soonest, self.session.due_in(now))
        return max(0, soonest)

    def _take_reading(self, now):
        # Drift-free schedule; after a long stall it restarts from now instead of catching up.
        nxt = self.clock.ticks_add(self.next_reading, self.interval_ms)
        if self.clock.ticks_diff(nxt, now) <= 0:
            nxt = self.clock.ticks_add(now, self.interval_ms)
        self.next_reading = nxt
        if not self.sensors.sample(now):
            return
        self.seq += 1
        msg = self.encoder.encode(  # the sensors' values and due flags are the encoder's
            self.seq, self.clock.ticks_diff(now, self.boot), self.stats.unix_time(now)
        )
        # self.echo is read where it is used: one more local would take this frame past
        # 11 words, onto the heap at every reading.
        if not self.outbox.count and self._send(msg, now):
            if self.echo is not None:
                self.echo(msg, False)
            return
        self.outbox.push(bytes(msg))  # the encoder's buffer is reused: keep a copy
        if self.echo is not None:
            self.echo(msg, True)

    def _send(self, msg, now):
        if self.session.publish(self.topics.readings, msg, False, self.qos, now):
            self.sent += 1
            return True
        return False

    def _flush(self, now):
        clock = self.clock
        for _ in range(_FLUSH_PER_STEP):
            msg = self.outbox.peek()
            if msg is None or not self._send(msg, now):
                return
            self.outbox.pop()
            if clock.ticks_diff(clock.ticks_ms(), now) >= _FLUSH_BUDGET_MS:
                return
