# MicroPython code (host-only, run on the virtual board): the host's pyright and ruff's
# f-string rule judge it as CPython, so they are told so here.
# pyright: reportMissingImports=false, reportAttributeAccessIssue=false
# ruff: noqa: UP031
# The floor sensornode is measured against (tools/bench.py), MicroPython code for a board: join
# Wi-Fi, connect with umqtt.simple, then publish one JSON reading per cycle at QoS 1 (sensornode's
# default) and nothing else: no reconnect, no outbox, no commands, no keepalive pings, no
# heartbeat, no discovery, no config file. The reading has sensornode's keys, built the plain way
# with json.dumps, and its temperature is sensornode's simulated waveform without noise or filter.
#
#     import bare_loop
#     bare_loop.run("192.168.1.10", 1883, "home", "secret", "esp32-a1b2c3", 1000)
import json
import math
import time
from binascii import hexlify

import network
from machine import unique_id
from umqtt.simple import MQTTClient

_TWO_PI = 2 * math.pi
_PERIOD_MS = 600000  # the sim sensor's defaults: 20 + 5 sin(2 pi t / 600 s)


def join(ssid, password):
    sta = network.WLAN(network.STA_IF)
    sta.active(True)
    sta.connect(ssid, password)
    while not sta.isconnected():
        time.sleep_ms(20)
    return sta


class Bare:
    def __init__(self, host, port, device):
        client_id = "bare-" + hexlify(unique_id()).decode()
        self.client = MQTTClient(client_id, host, port)
        self.topic = "sensornode/" + device + "/readings"
        self.boot = time.ticks_ms()
        self.seq = 0

    def connect(self):
        self.client.connect()

    def reading(self):
        self.seq += 1
        uptime_ms = time.ticks_diff(time.ticks_ms(), self.boot)
        temperature = 20.0 + 5.0 * math.sin(_TWO_PI * (uptime_ms % _PERIOD_MS) / _PERIOD_MS)
        return json.dumps(
            {
                "seq": self.seq,
                "uptime_ms": uptime_ms,
                "ts": int(time.time()),
                "temperature": round(temperature, 3),
            }
        )

    def cycle(self):
        # One reading cycle: build the reading, publish it, wait for the broker's PUBACK.
        self.client.publish(self.topic, self.reading(), False, 1)


def run(host, port, ssid, password, device, interval_ms):
    join(ssid, password)
    bare = Bare(host, port, device)
    bare.connect()
    print("bare: connected to %s:%d as %s" % (host, port, device))
    due = time.ticks_ms()
    while True:
        bare.cycle()
        due = time.ticks_add(due, interval_ms)
        wait = time.ticks_diff(due, time.ticks_ms())
        if wait > 0:
            time.sleep_ms(wait)
