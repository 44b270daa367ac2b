# The node: one step() of the board's life. Keeps the link up, takes readings on schedule, sends
# them or keeps them in the outbox, sends heartbeats and answers commands. Plain code; every
# collaborator comes in as an argument, so the same step runs under CPython tests and on a board.
from micropython import const

from firmware import payload
from firmware.session import ONLINE

_FLUSH_PER_STEP = const(10)  # queued readings sent per step, so commands and pings still run
# ...and no longer than this: a broker that takes most of its deadline for every PUBACK must not
# keep the loop (and the watchdog's feeding) away for ten deadlines in a row
_FLUSH_BUDGET_MS = const(1000)
_UPDATE_ASK_MS = const(3000)  # a piece not here by then is asked for again
_UPDATE_SILENCE_MS = const(30000)  # a host silent this long has gone: the download stops


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
        if self.session.connects != self.connects_seen:
            self.connects_seen = self.session.connects
            self._came_online(now)
        if self.clock.ticks_diff(now, self.next_reading) >= 0:
            self._take_reading(now)
        if self.outbox.count and self.session.online:
            self._flush(now)
        while self.session.commands:
            self._command(self.session.commands.pop(0), now)
        if self.clock.ticks_diff(now, self.next_heartbeat) >= 0:
            self.next_heartbeat = self.clock.ticks_add(now, self.heartbeat_ms)
            self.send_heartbeat(now)
        if self.update is not None or self.session.piece is not None:
            self._updating(now)

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

    def _came_online(self, now):
        self.stats.sync_time()
        if self.discovery:
            self._announce(now)
        self.next_heartbeat = now  # a heartbeat right after each connect says how the outage went
        if self.news is not None:
            news = self.news
            self.news = None
            self.log("update", news[1])
            self.say_update(news[0], news[1], now)
        if self.update is not None and not self.update.done:
            self._want(self.update.want(), now)  # a piece asked for before the drop is gone

    def _announce(self, now):
        # Retained: HA may start after the node, and must get every config.
        from firmware import ha
        from firmware.unload import drop

        session = self.session

        def publish(topic, msg, qos):
            return session.publish(topic, msg, True, qos, now)

        st = self.stats
        device = ha.Device(self.topics, self.ha_prefix, st.uid(), st.name, self.wifi.mac())
        ha.announce(publish, device, self.sensors.specs, self.interval_ms / 1000)
        del ha, device
        drop("ha", "atomic")

    def _take_reading(self, now):
        # Drift-free schedule; after a long stall it restarts from now instead of catching up.
        nxt = self.clock.ticks_add(self.next_reading, self.interval_ms)
        if self.clock.ticks_diff(nxt, now) <= 0:
            nxt = self.clock.ticks_add(now, self.interval_ms)
        self.next_reading = nxt
        if not self.sensors.sample(now):
            return
        self.seq += 1
        msg = self.encoder.encode(
            self.seq,
            self.clock.ticks_diff(now, self.boot),
            self.stats.unix_time(now),
            self.sensors.values,
            self.sensors.due,
        )
        echo = self.echo
        if not self.outbox.count and self._send(msg, now):
            if echo is not None:
                echo(msg, False)
            return
        self.outbox.push(bytes(msg))  # the encoder's buffer is reused: keep a copy
        if echo is not None:
            echo(msg, True)

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

    def send_heartbeat(self, now):
        if not self.session.online:
            return
        st = self.stats
        msg = payload.heartbeat(
            self.clock.ticks_diff(now, self.boot) // 1000,
            self.wifi.rssi(),
            st.free_heap(),
            st.reset_cause,
            st.version,
            self.wifi.ip(),
            self.sent,
            self.outbox.count,
            self.outbox.dropped,
            self.session.reconnects,
            self.sensors.errors + self.command_errors + self.session.commands_lost,
            self.session.transport.security,
            st.mpy,
        )
        self.session.publish(self.topics.heartbeat, msg, False, 0, now)
        # `online` again, retained: a broker that published an old connection's will late (amqtt
        # after a half-open link) is corrected within one heartbeat.
        self.session.publish(self.topics.status, ONLINE, True, 0, now)

    def _event(self, name, ok, detail, req, now):
        self.session.publish(self.topics.event, payload.event(name, ok, detail, req), False, 0, now)

    def _command(self, raw, now):
        # Commands are rare: commands.py is loaded for the parse and leaves the heap after it.
        from firmware import commands
        from firmware.unload import drop

        try:
            name, value, req = commands.parse(raw)
        except commands.CommandError as e:
            self.command_errors += 1
            self.log("cmd", "rejected: %s" % e)
            self._event("error", False, str(e), None, now)
            return
        finally:
            drop("commands")
        self.log("cmd", name if value is None else "%s %s" % (name, value))
        if name == "interval":
            self._set(name, "interval_s", value, req, now)
        elif name == "set" and isinstance(value, tuple):  # parse() guarantees it
            self._set(name, value[0], value[1], req, now)
        elif name == "get":
            self._get(value, req, now)
        elif name == "update":
            self._start_update(value, req, now)
        elif name == "ping":
            self._event(name, True, "pong", req, now)
        elif name == "heartbeat":
            self.send_heartbeat(now)
            self._event(name, True, "heartbeat sent", req, now)
        elif name == "reboot":
            self._event(name, True, "rebooting", req, now)
            self.reboot_requested = True

    def _apply(self, key, value, now):
        # What the running node can take at once (settings.NOW).
        self.cfg[key] = value
        if key == "interval_s":
            self.interval_ms = int(value * 1000)
            self.next_reading = self.clock.ticks_add(now, self.interval_ms)
        elif key == "heartbeat_s":
            self.heartbeat_ms = int(value * 1000)
            self.next_heartbeat = self.clock.ticks_add(now, self.heartbeat_ms)

    def _set(self, name, key, value, req, now):
        # Checked by config.py's rules, written to config.json, applied now or at the next boot.
        try:
            from firmware import settings

            try:
                applied, reason = settings.store(key, value, self.log, self.config_path)
            except settings.SettingError as e:
                self._refuse(name, str(e), req, now)
                return
            finally:
                from firmware.unload import drop

                drop("settings", "config", "atomic")
        except (OSError, MemoryError, ImportError) as e:
            self._refuse(
                name, "%s not saved: config.json could not be written (%r)" % (key, e), req, now
            )
            return
        shown = value if type(value) not in (list, dict) else "(%d items)" % len(value)
        if applied:
            self._apply(key, value, now)
            detail = "%s is now %s: applied now and saved in config.json" % (key, shown)
        else:
            detail = "%s = %s saved in config.json; applied after a reboot: %s" % (
                key,
                shown,
                reason,
            )
        self.log("cmd", detail)
        self._event(name, True, detail, req, now)

    def _refuse(self, name, why, req, now):
        self.command_errors += 1
        self.log("cmd", "%s refused: %s" % (name, why))
        self._event(name, False, why, req, now)

    def _get(self, key, req, now):
        value = self.cfg
        if key is not None:
            for part in key.split("."):
                if type(value) is not dict or part not in value:
                    self._refuse(
                        "get", "no setting %r in the running configuration" % key, req, now
                    )
                    return
                value = value[part]
        self._event("get", True, value, req, now)

    # -- updates over the air (firmware/ota.py; the switch is otaboot.py's, at the next boot) --

    def say_update(self, ok, detail, now):
        self._event("update", ok, detail, None, now)

    def _start_update(self, size, req, now):
        if self.ota_key is None:
            self._refuse("update", "updates are off: secrets.json has no ota_key", req, now)
            return
        if self.update is not None and self.update.done:
            self._refuse("update", "an update is downloaded; the board reboots into it", req, now)
            return
        try:
            from firmware import ota

            up = ota.Update(self.ota_key, self.stats.version, ota.board_mpy(), self.log)
            first = up.start(size)
        except Exception as e:  # UpdateError, or a filesystem that will not take the pieces
            self._update_failed(e, now, req)
            return
        self.update = up
        self.update_req = req
        self.log("update", "offered a manifest of %d bytes; downloading" % size)
        self._want(first, now)

    def _want(self, want, now):
        self.update_asked = now
        # QoS 0: no PUBACK to wait for per piece; a lost request is asked again after a while
        self.session.publish(self.topics.ota_want, want, False, 0, now)

    def _updating(self, now):
        piece = self.session.piece
        self.session.piece = None
        up = self.update
        if up is None:
            return  # a piece nobody asked for: ignored
        if up.done:
            if not self.outbox.count:  # nothing kept in RAM is lost by the reboot
                self.reboot_requested = True
            return
        if piece is None:
            waited = self.clock.ticks_diff(now, self.update_asked)
            if waited > _UPDATE_SILENCE_MS:
                self._update_failed(
                    "no piece came for %d s; what arrived is kept and a new make ota resumes it"
                    % (_UPDATE_SILENCE_MS // 1000),
                    now,
                )
            elif waited > _UPDATE_ASK_MS:
                self._want(up.want(), now)
            return
        try:
            want = up.piece(piece)
        except Exception as e:
            self._update_failed(e, now)
            return
        if want is not None:
            self._want(want, now)
            return
        detail = "%s downloaded and verified; rebooting into it on trial" % up.version
        self._event("update", True, detail, self.update_req, now)

    def _update_failed(self, e, now, req=None):
        self.update = None
        self.command_errors += 1
        detail = e if type(e) is str else "refused: %s" % (str(e) or e.__class__.__name__)
        self.log("update", detail)
        self._event("update", False, detail, req if req is not None else self.update_req, now)
        from firmware.unload import drop

        drop("ota", "otaboot", "atomic")
