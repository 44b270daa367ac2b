# What the node says besides its readings: at each connect (the clock, the last update's news),
# in heartbeats and in events. None of it runs every cycle, so node.py loads this module for the
# moment it is needed and drops it after. Home Assistant discovery (ha.py) is node.py's to call
# after this module has left: the announcement is the connect's peak.
import json

from firmware.session import ONLINE


def came_online(node, now):
    # Home Assistant discovery is node.py's to call, after this module has left the heap.
    node.stats.sync_time()
    node.next_heartbeat = now  # a heartbeat right after each connect says how the outage went
    news = node.news
    if news is not None:
        node.news = None
        node.log("update", news[1])
        send_event(node, "update", news[0], news[1], None, now)
    up = node.update
    if up is not None and not up.done:
        from firmware import ota

        ota.want(node, up.want(), now)  # a piece asked for before the drop is gone


def send_heartbeat(node, now):
    st = node.stats
    session = node.session
    msg = heartbeat(
        node.clock.ticks_diff(now, node.boot) // 1000,
        node.wifi.rssi(),
        st.free_heap(),
        st.reset_cause,
        st.version,
        node.wifi.ip(),
        node.sent,
        node.outbox.count,
        node.outbox.dropped,
        session.reconnects,
        node.sensors.errors + node.command_errors + session.commands_lost,
        session.transport.security,
        st.mpy,
    )
    session.publish(node.topics.heartbeat, msg, False, 0, now)
    # `online` again, retained: a broker that published an old connection's will late (amqtt
    # after a half-open link) is corrected within one heartbeat.
    session.publish(node.topics.status, ONLINE, True, 0, now)


def send_event(node, name, ok, detail, req, now):
    node.session.publish(node.topics.event, event(name, ok, detail, req), False, 0, now)


def update_failed(node, e, now, req=None):
    # The download stops; what arrived stays on the filesystem for the next offer to resume.
    node.update = None
    node.command_errors += 1
    detail = e if type(e) is str else "refused: %s" % (str(e) or e.__class__.__name__)
    node.log("update", detail)
    send_event(node, "update", False, detail, req if req is not None else node.update_req, now)
    from firmware.unload import drop

    drop("ota", "otaboot", "atomic")


def heartbeat(
    uptime_s,
    rssi,
    free_heap,
    reset_cause,
    version,
    ip,
    sent,
    buffered,
    dropped,
    reconnects,
    errors,
    tls="off",
    mpy=None,
):
    return json.dumps(
        {
            "uptime_s": uptime_s,
            "rssi": rssi,
            "free_heap": free_heap,
            "reset_cause": reset_cause,
            "version": version,
            "ip": ip,
            "sent": sent,
            "buffered": buffered,
            "dropped": dropped,
            "reconnects": reconnects,
            "errors": errors,
            "tls": tls,  # off, verified (against mqtt.ca_file) or unverified
            "mpy": mpy,  # sys.implementation._mpy: what make ota compiles for
        }
    )


def event(name, ok, detail, req=None):
    doc = {"event": name, "ok": ok, "detail": detail}
    if req is not None:
        doc["id"] = req
    return json.dumps(doc)
