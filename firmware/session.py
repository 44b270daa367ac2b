# The MQTT session: connect with a retained last will, say `online` after every connect,
# subscribe to commands again, keep the link proven with our own PINGREQs, and on any failure
# drop the connection and come back with capped, jittered backoff. Commands that arrive are only
# queued here: acting on them inside umqtt's callback could publish from within a publish.
# A retained command is never run: it would come back with every connect (a retained reboot is
# a boot loop). A link that fails soon after its connect is not retried at once: whatever broke
# it (a message the node cannot take, a broker that stops acknowledging) would break the next
# one too, so the backoff goes on growing until a link has lasted _PROVEN_MS.
from micropython import const

from firmware.transport import NO_ANSWER

ONLINE = b"online"
OFFLINE = b"offline"
_CMD_QUEUE = const(4)
_SUBACK_REFUSED = const(0x80)
_PROVEN_MS = const(30000)


class Session:
    def __init__(self, transport, topics, keepalive_s, clock, backoff, log, where):
        self.transport = transport
        self.topics = topics
        self.clock = clock
        self.backoff = backoff
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
                self.connect(now)
            return
        try:
            sock = self.transport.sock
            sock.expect(NO_ANSWER)  # one deadline for every packet this poll reads
            for _ in range(_CMD_QUEUE):
                if self.transport.client.check_msg() is None:
                    break
            sock.expect(0)
            self.transport.flush()  # PUBACKs umqtt wrote for QoS 1 commands
            self._keepalive(now)
            if not self.proven and self.clock.ticks_diff(now, self.since) >= _PROVEN_MS:
                self.proven = True
                self.backoff.reset()
        except Exception as e:  # umqtt raises OSError, asserts, or indexes short reads
            self.drop(now, "lost (%s)" % self.transport.describe(e))

    def _keepalive(self, now):
        if self.clock.ticks_diff(now, self.last_ping) < self.ping_ms:
            return
        sock = self.transport.sock
        if self.ping_outstanding and not sock.rx:
            self.drop(now, "no answer to PINGREQ within %d s" % (2 * self.ping_ms // 1000))
            return
        sock.rx = False
        self.transport.client.ping()
        self.transport.flush()
        self.ping_outstanding = True
        self.last_ping = now

    def connect(self, now):
        try:
            self.transport.open(self.topics.status, OFFLINE, self._on_message)
            # one deadline from the CONNECT to the SUBACK
            self.transport.publish(self.topics.status, ONLINE, True, 1, False)
            self._subscribe()
        except Exception as e:
            self.transport.close()
            why = self.transport.describe(e)
            if not (why.startswith("refused") or why.startswith("TLS")):
                why = "unreachable (%s)" % why
            self._retry(now, why)
            return False
        self.online = True
        self.connects += 1
        self.since = now
        self.proven = False
        self.last_ping = now
        self.ping_outstanding = False
        self.log("mqtt", "connected to %s as %s%s" % (self.where, self.topics.device, self._tls()))
        return True

    def _tls(self):
        security = self.transport.security
        if security == "off":
            return ""
        if security == "verified":
            return " over TLS, certificate verified"
        return " over TLS, unverified: no mqtt.ca_file, so any server is believed"

    def _subscribe(self):
        # A broker whose access rules deny the command topic answers SUBACK 0x80 (umqtt raises
        # it): readings still go out, so the connection stays and only commands are off.
        try:
            self.transport.subscribe(self.topics.cmd, 1, False)
            if self.updates:
                self.transport.subscribe(self.topics.ota, 1, False)
        except self.transport.umqtt.MQTTException as e:
            if not e.args or e.args[0] != _SUBACK_REFUSED:
                raise
            self.log(
                "mqtt",
                "broker refused the subscription to %s; commands are off until the next connect"
                % self.topics.cmd.decode(),
            )

    def _retry(self, now, why):
        wait = self.backoff.next_ms()
        self.next_attempt = self.clock.ticks_add(now, wait)
        self.log("mqtt", "broker %s %s; retry in %d s" % (self.where, why, (wait + 500) // 1000))

    def drop(self, now, why):
        # The connection is gone or unusable: close it (the broker sends our will) and retry.
        self.transport.close()
        if not self.online:
            return
        self.online = False
        if self.proven:
            self.next_attempt = now  # the first retry after a proven link is immediate
            self.log("mqtt", "broker %s %s; reconnecting" % (self.where, why))
        else:
            self._retry(now, why)

    def publish(self, topic, msg, retain, qos, now):
        # True once the broker has it (QoS 1: PUBACK seen); False, with the link dropped, if not.
        if not self.online:
            return False
        if type(msg) is str:  # JSON from payload.py: umqtt counts len(), so it must get bytes
            msg = msg.encode()
        try:
            self.transport.publish(topic, msg, retain, qos)
            return True
        except Exception as e:
            self.drop(now, "lost (%s on publish)" % self.transport.describe(e))
            return False

    def close(self, now):
        # A deliberate goodbye: `offline` first (retained), then DISCONNECT.
        if self.online:
            self.publish(self.topics.status, OFFLINE, True, 1, now)
            self.transport.disconnect()
            self.online = False
