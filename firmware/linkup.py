# Bringing the MQTT link up: umqtt.simple's connect with a retained last will, TLS set up the way
# each version takes it, `online` after every connect and the subscriptions again. It runs at a
# connect only (boot, and after each drop), so session.py imports it for the connect and drops
# it after: the loop's heap does not carry it.
from micropython import const

from firmware.session import OFFLINE, ONLINE
from firmware.transport import WatchedSocket

_CONNACK = const(0x20)
_PUBACK = const(0x40)
_BIRTH = const(0x33)  # PUBLISH at QoS 1, retained
_SUBACK = const(0x90)
_SUBACK_REFUSED = const(0x80)


def connect(session, now):
    # One attempt; on failure the link is closed and the next attempt scheduled (linkdown.py).
    t = session.transport
    topics = session.topics
    try:
        open_client(t, topics.status, OFFLINE, session._on_message)
        # one deadline from the CONNECT to the SUBACK
        sock = t.sock  # the wrapper open_client() put under umqtt
        sock.expect(_PUBACK, False)
        if not sock.publish(topics.status, ONLINE, _BIRTH):
            t._acked()
        # one sequence of packet ids on the link: the wrapper's publishes, umqtt's subscribes
        t.client.pid = sock.pid
        _subscribe(session)
        sock.pid = t.client.pid
    except Exception as e:
        t.close()
        from firmware.linkdown import describe, retry

        why = describe(t, e)
        if not (why.startswith("refused") or why.startswith("TLS")):
            why = "unreachable (%s)" % why
        retry(session, now, why)
        return False
    session.online = True
    session.connects += 1
    session.since = now
    session.proven = False
    session.last_ping = now
    session.ping_outstanding = False
    session.log(
        "mqtt", "connected to %s as %s%s" % (session.where, topics.device, _tls(t.security))
    )
    return True


def _tls(security):
    if security == "off":
        return ""
    if security == "verified":
        return " over TLS, certificate verified"
    return " over TLS, unverified: no mqtt.ca_file, so any server is believed"


def _subscribe(session):
    # A broker whose access rules deny the command topic answers SUBACK 0x80 (umqtt raises
    # it): readings still go out, so the connection stays and only commands are off.
    t = session.transport
    try:
        subscribe(t, session.topics.cmd)
        if session.updates:
            subscribe(t, session.topics.ota)
    except t.umqtt.MQTTException as e:
        if not e.args or e.args[0] != _SUBACK_REFUSED:
            raise
        session.log(
            "mqtt",
            "broker refused the subscription to %s; commands are off until the next connect"
            % session.topics.cmd.decode(),
        )


def subscribe(transport, topic):
    # At QoS 1, within the connect's running deadline.
    sock = transport.sock
    sock.expect(_SUBACK, False)
    try:
        transport.client.subscribe(topic, 1)
    finally:
        sock.expect(0)


class _Sockets:
    # Stands in for the socket module inside umqtt.simple during a connect: every socket it
    # makes gets the timeout at once (1.3.4 and 1.4.0 take none, so a broker that accepts TCP
    # but never answers would hang the board, TLS handshake included) and, without TLS, is
    # watched from the CONNECT on, so the CONNACK too has a deadline. The last one is kept:
    # under TLS it is the only handle on the TCP socket, which the timeouts must go to.
    def __init__(self, real, transport):
        self.real = real
        self.transport = transport
        self.last = None

    def socket(self, *args):
        t = self.transport
        s = self.real.socket(*args)
        s.settimeout(t.timeout_s)
        self.last = s
        if t.tls:  # TLS wraps it itself, later
            return s
        w = WatchedSocket(s, t.timeout_s, t.clock, t.log)
        w.expect(_CONNACK)
        return w

    def getaddrinfo(self, *args):
        return self.real.getaddrinfo(*args)


def open_client(transport, will_topic, will_msg, on_message):
    # Connects and returns the CONNACK's session-present flag; raises OSError, or
    # MQTTException with the refusal code, or whatever a confused umqtt asserts. umqtt.simple
    # gets its own socket module back afterwards, whatever happened.
    t = transport
    t.close()
    umqtt = t.umqtt
    real = umqtt.socket
    sockets = umqtt.socket = _Sockets(real, t)
    try:
        client_id, host, port, user, password, keepalive = t.args
        c = umqtt.MQTTClient(_b(client_id), host, port, _b(user), _b(password), keepalive)
        if t.tls:
            _tls_setup(c, host, t.ca_data)
        c.set_last_will(will_topic, will_msg, True, 1)
        c.set_callback(on_message)
        t.client = c
        present = False
        if t.connect_takes_timeout:
            try:
                present = c.connect(True, t.timeout_s)
            except TypeError:  # 1.3.4 and 1.4.0: the sockets' own timeout bounds the connect
                t.connect_takes_timeout = False
        if not t.connect_takes_timeout:
            present = c.connect(True)
    finally:
        umqtt.socket = real
    if type(c.sock) is not WatchedSocket:  # TLS: wrapped only now, around the TLS socket
        c.sock = WatchedSocket(c.sock, t.timeout_s, t.clock, t.log, sockets.last)
    t.sock = c.sock
    return present


def _b(text):
    # umqtt sizes strings with len(): it gets bytes
    return text if text is None else text.encode()


def _tls_setup(client, host, ca_data):
    # Sets TLS up the way each umqtt.simple takes it, verifying on all of them: 1.4.0 and later
    # wrap the socket with the SSLContext in `ssl`; 1.3.4 only tests `ssl` for truth and calls
    # ussl.wrap_socket(sock, **ssl_params), whose cert_reqs defaults to CERT_NONE, so the
    # parameters must ask for verification themselves. (1.6.0 and later also keep ssl_params,
    # but use them only when `ssl` is True, which it never is here: no attribute tells the
    # versions apart, and none needs to.)
    import ssl

    mode = ssl.CERT_REQUIRED if ca_data else ssl.CERT_NONE
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca_data:
        ctx.load_verify_locations(cadata=ca_data)
    ctx.verify_mode = mode
    client.ssl = ctx
    client.ssl_params = {"server_hostname": host, "cert_reqs": mode, "cadata": ca_data}
