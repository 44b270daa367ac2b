# The MQTT session: connect with a retained last will, say `online` after every connect,
# subscribe to commands again, keep the link proven with our own PINGREQs, and on any failure
# drop the connection and come back with capped, jittered backoff. Commands that arrive are only
# queued here: acting on them inside umqtt's callback could publish from within a publish.
# A retained command is never run: it would come back with every connect (a retained reboot is
# a boot loop). A link that fails soon after its connect is not retried at once: whatever broke
# it (a message the node cannot take, a broker that stops acknowledging) would break the next
# one too, so the backoff goes on growing until a link has lasted _PROVEN_MS.
# What every cycle runs stays here; the connect (linkup.py) and what a failed link needs
# (linkdown.py) are imported for the job and dropped after it.
from micropython import const

ONLINE = b"online"
OFFLINE = b"offline"
_CMD_QUEUE = const(4)
_PROVEN_MS = const(30000)
# transport.expect()'s answer awaited by no packet: one deadline for all the reads of a poll.
# Not imported from transport.py: the boot that builds the HA record needs Topics, not the
# transport's code on the heap.
_NO_ANSWER = const(-1)


# The MQTT topic contract (docs/topics.md), built once at boot so the loop never formats a topic.
# Topics are bytes, as umqtt hands them back and as they go on the wire: nothing is encoded per
# publish. device stays text, for the console and JSON. The session owns them (everything else
# reaches them as session.topics): a module of their own cost the board its module object, its
# globals and two names for good.
class Topics:
    def __init__(self, base, device, updates):
        # updates: an ota_key is set. Without one the update topics are never used, and a node
        # does not keep them for good (None).
        prefix = (base + "/" + device + "/").encode()
        self.device = device
        self.status = prefix + b"status"
        self.readings = prefix + b"readings"
        self.heartbeat = prefix + b"heartbeat"
        self.cmd = prefix + b"cmd"
        self.event = prefix + b"event"
        self.ota = prefix + b"ota" if updates else None  # an update's pieces, from the host
        self.ota_want = prefix + b"ota/want" if updates else None  # the piece the node asks for


class Session:
    def __init__(self, transport, topics, keepalive_s, clock, backoff, log, where):
        self.transport = transport
        self.topics = topics
        self.clock = clock
        self.backoff = backoff  # (base_ms, cap_ms, randbits): firmware/backoff.py
        self.failures = 0  # failed links in a row; a proven link sets it back to 0
        self.log = log
        self.where = where  # "host:port", for messages
        # Ping three times per keepalive; two pings without a byte back mean the link is dead,
        # which is noticed within 2/3 of the keepalive, before the broker gives up on us.
        self.ping_ms = keepalive_s * 1000 // 3
        self.online = False
        self.next_attempt = clock.ticks_ms()
        self.last_ping = 0
        self.ping_outstanding = False
        self.since = 0  # when the current link came up
        self.proven = False  # it has lasted _PROVEN_MS: the backoff starts again from its base
        self.connects = 0
        self.commands = []  # raw command payloads, oldest first, at most _CMD_QUEUE
        self.commands_lost = 0
        self.updates = False  # subscribe to the update topic too (an ota_key is set)
        self.piece = None  # the last update piece: the node asks for one at a time

    @property
    def reconnects(self):
        return self.connects - 1 if self.connects else 0

    def _on_message(self, topic, msg):
        # Some brokers (amqtt) push retained messages of other clients' subscriptions at connect:
        # only our own command topic is a command.
        if topic != self.topics.cmd:
            if self.updates and topic == self.topics.ota:
                self.piece = msg
            return
        if self.transport.sock.retained:
            cmd = self.topics.cmd.decode()
            self.log(
                "cmd",
                "ignored a retained command on %s (clear it: mosquitto_pub -r -n -t '%s')"
                % (cmd, cmd),
            )
            return
        if len(self.commands) >= _CMD_QUEUE:
            self.commands_lost += 1  # counted in the heartbeat's errors
            self.log("cmd", "more than %d commands at once; this one is dropped" % _CMD_QUEUE)
        else:
            # umqtt has already read it whole; commands.parse() refuses it by its real size.
            self.commands.append(msg)

    def due_in(self, now):
        # Milliseconds until this session wants poll() again for its own sake.
        if self.transport.host is None:
            return 60000
        target = (
            self.clock.ticks_add(self.last_ping, self.ping_ms) if self.online else self.next_attempt
        )
        return self.clock.ticks_diff(target, now)

    def poll(self, now):
        # Connects when due, else reads what arrived and keeps the link proven.
        if self.transport.host is None:
            return  # no broker configured: config.py said so at boot
        if not self.online:
            if self.clock.ticks_diff(now, self.next_attempt) >= 0:
                from firmware import linkup
                from firmware.unload import drop

                linkup.connect(self, now)
                drop("linkup", "linkdown")
            return
        try:
            t = self.transport
            sock = t.sock
            if sock.ready():  # something came: umqtt reads it (the usual poll finds nothing)
                sock.expect(_NO_ANSWER)  # one deadline for every packet this poll reads
                for _ in range(_CMD_QUEUE):
                    if t.client.check_msg() is None:
                        break
                sock.expect(0)
                t.flush()  # PUBACKs umqtt wrote for QoS 1 commands
            if self.clock.ticks_diff(now, self.last_ping) >= self.ping_ms:  # a ping is due
                if self.ping_outstanding and not sock.rx:
                    why = "no answer to PINGREQ within %d s" % (2 * self.ping_ms // 1000)
                    self.drop(now, why)
                    return
                sock.rx = False
                t.client.ping()
                t.flush()
                self.ping_outstanding = True
                self.last_ping = now
            if not self.proven and self.clock.ticks_diff(now, self.since) >= _PROVEN_MS:
                self.proven = True
                self.failures = 0
        except Exception as e:  # umqtt raises OSError, asserts, or indexes short reads
            self._lost(now, e, "lost (%s)")

    def drop(self, now, why):
        # The connection is gone or unusable: close it (the broker sends our will) and retry.
        self.transport.close()
        if not self.online:
            return
        self.online = False
        if self.proven:
            self.next_attempt = now  # the first retry after a proven link is immediate
            self.log("mqtt", "broker %s %s; reconnecting" % (self.where, why))
            return
        from firmware.linkdown import retry
        from firmware.unload import drop

        retry(self, now, why)
        drop("linkdown")

    def _lost(self, now, e, form):
        # A read or a publish failed: `form` says where, linkdown.py says why in words.
        from firmware.linkdown import describe
        from firmware.unload import drop

        self.drop(now, form % describe(self.transport, e))
        drop("linkdown")

    def publish(self, topic, msg, retain, qos, now):
        # True once the broker has it (QoS 1: PUBACK seen); False, with the link dropped, if not.
        if not self.online:
            return False
        if type(msg) is str:  # JSON from report.py: umqtt counts len(), so it must get bytes
            msg = msg.encode()
        try:
            self.transport.publish(topic, msg, retain, qos)
            return True
        except Exception as e:
            self._lost(now, e, "lost (%s on publish)")
            return False

    def close(self, now):
        # A deliberate goodbye (a reboot): `offline` first (retained), then DISCONNECT.
        if self.online:
            from firmware.linkdown import goodbye
            from firmware.unload import drop

            goodbye(self, now)
            drop("linkdown")
