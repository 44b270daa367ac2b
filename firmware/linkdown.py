# A link that failed or would not come up, and the deliberate goodbye: why, in words for the
# console (a CONNACK refusal by name, a certificate TLS did not accept, an errno by name), when
# to try again, and DISCONNECT. None of it runs in a working cycle: session.py and linkup.py
# import it when a link drops or a connect fails, and drop it after.
REFUSALS = {
    1: "unacceptable protocol version",
    2: "client id rejected",
    3: "server unavailable",
    4: "bad username or password",
    5: "not authorised",
}


def refusal(code):
    return REFUSALS.get(code, "refused with code %s" % code)


def describe(transport, e):
    # A short reason for a console line: the CONNACK refusal by name, a certificate the
    # TLS handshake did not accept, else the errno's name.
    args = e.args
    if isinstance(e, transport.umqtt.MQTTException) and args and type(args[0]) is int:
        return "refused: " + refusal(args[0])
    if transport.tls and isinstance(e, ValueError) and args and type(args[0]) is str:
        # mbedtls's verify report, e.g. "The certificate is not correctly signed by the
        # trusted CA", or "... Common Name (CN) does not match with the expected CN"
        return "TLS: certificate not trusted (%s)" % args[0].strip()
    if isinstance(e, OSError) and args:
        return errno_name(args[0])
    return "%s %s" % (type(e).__name__, args[0] if args else "")


def errno_name(code):
    import errno

    if code == -1:
        return "closed by the broker"  # umqtt's way of saying the peer closed
    for name in (
        "ECONNREFUSED",
        "ECONNRESET",
        "ETIMEDOUT",
        "EHOSTUNREACH",
        "ECONNABORTED",
        "ENOTCONN",
        "EPIPE",
        "ENOENT",
    ):
        if getattr(errno, name, None) == code:
            return name
    return "error %s" % code


def retry(session, now, why):
    # The next attempt after the backoff's wait, said on the console.
    from firmware.backoff import next_wait
    from firmware.unload import drop

    wait = next_wait(session)
    drop("backoff")
    session.next_attempt = session.clock.ticks_add(now, wait)
    session.log("mqtt", "broker %s %s; retry in %d s" % (session.where, why, (wait + 500) // 1000))


def goodbye(session, now):
    # A deliberate goodbye: `offline` first (retained), then DISCONNECT, so the broker
    # discards the last will.
    from firmware.session import OFFLINE

    session.publish(session.topics.status, OFFLINE, True, 1, now)
    t = session.transport
    if t.client is not None:
        try:
            t.client.disconnect()
        except OSError:
            pass
        t.client = None
        t.sock = None
    session.online = False
