# MicroPython code (host-only, run on the virtual board): the host's pyright and ruff's
# f-string rule judge it as CPython, so they are told so here.
# pyright: reportMissingImports=false, reportAttributeAccessIssue=false
# ruff: noqa: UP031
# The benchmark's measuring side, MicroPython code run on the virtual board (host-only, never
# flashed). tools/bench.py writes a short main.py that boots the program under test exactly as
# the board would (sensornode: firmware.app.start(), then node.step() until it is connected;
# the bare loop: join, connect, one reading), takes gc.mem_alloc() after gc.collect() (the
# resident heap) and only then imports this module, so its own code is not in that figure.
#
# Every cycle here makes a reading due and runs it without sleeping: sensornode's node.step(now)
# with node.next_reading = now, the bare loop's cycle(). Results go to the console as one line,
# "bench: <json>", which tools/bench.py reads.
import gc
import json
import sys
import time
from array import array

_ALLOC_WINDOW = 250  # cycles per window with the collector off: sees every byte allocated
_PROFILE_MAX = 2000  # cycles in the per-part profile
_AS_SHIPPED = 20  # cycles timed before TCP_NODELAY is set
# Linux's values (the unix port's socket module does not name them)
_IPPROTO_TCP = 6
_TCP_NODELAY = 1


def report(doc):
    print("bench: " + json.dumps(doc))


class Firmware:
    # sensornode: one cycle is node.step(now) with a reading due.
    def __init__(self, node):
        self.node = node
        self.now = 0

    def socket(self):
        return self.node.session.transport.sock.raw  # the TCP socket under the watched one

    def prepare(self):
        now = time.ticks_ms()
        self.now = now
        self.node.next_reading = now

    def run(self):
        self.node.step(self.now)

    def counters(self):
        n = self.node
        return (n.seq, n.sent, n.session.connects, n.sensors.errors, n.outbox.count)

    def problem(self, before, cycles):
        # None when every cycle's reading went out on the same connection, else what went wrong.
        seq, sent, connects, errors, queued = self.counters()
        if connects != before[2]:
            return "the MQTT link dropped %d time(s)" % (connects - before[2])
        if errors != before[3]:
            return "%d sensor read(s) failed" % (errors - before[3])
        if seq - before[0] != cycles or sent - before[1] != cycles or queued:
            return "%d of %d readings taken, %d sent" % (seq - before[0], cycles, sent - before[1])
        return None


class Bare:
    # The bare loop: one cycle is cycle() (json.dumps, publish, PUBACK).
    def __init__(self, bare):
        self.bare = bare

    def socket(self):
        return self.bare.client.sock

    def prepare(self):
        pass

    def run(self):
        self.bare.cycle()

    def counters(self):
        return (self.bare.seq,)

    def problem(self, before, cycles):
        done = self.bare.seq - before[0]
        return None if done == cycles else "%d of %d readings sent" % (done, cycles)


def alloc_per_cycle(t, cycles):
    # Mean and median bytes allocated per cycle, the collector off in windows of _ALLOC_WINDOW.
    per = array("i", range(cycles))
    done = 0
    while done < cycles:
        n = min(_ALLOC_WINDOW, cycles - done)
        gc.collect()
        gc.disable()
        for i in range(done, done + n):
            t.prepare()
            a = gc.mem_alloc()
            t.run()
            per[i] = gc.mem_alloc() - a
        gc.enable()
        done += n
    s = sorted(per)
    return sum(s) / cycles, s[cycles // 2]


def profile(parts, cycles):
    # parts: [(name, callable)] run in order each cycle; per part the median microseconds and the
    # mean bytes allocated, the collector off in windows.
    n = len(parts)
    times = [array("i", range(cycles)) for _ in range(n)]
    allocs = [0] * n
    ticks_us = time.ticks_us
    diff = time.ticks_diff
    done = 0
    while done < cycles:
        m = min(_ALLOC_WINDOW, cycles - done)
        gc.collect()
        gc.disable()
        for i in range(done, done + m):
            for j in range(n):
                fn = parts[j][1]
                a = gc.mem_alloc()
                t = ticks_us()
                fn()
                times[j][i] = diff(ticks_us(), t)
                allocs[j] += gc.mem_alloc() - a
        gc.enable()
        done += m
    out = {}
    for j in range(n):
        s = sorted(times[j])
        out[parts[j][0]] = {"median_us": s[cycles // 2], "alloc_bytes": allocs[j] / cycles}
    return out


def _stats(times, n):
    s = sorted(times)
    return {"median_us": s[n // 2], "mean_us": sum(s) / n, "p90_us": s[n * 9 // 10]}


def oncpu_ns():
    # This thread's time on a CPU in nanoseconds (/proc/thread-self/schedstat), or -1. The
    # kernel updates it whenever the thread blocks, and a cycle blocks on its PUBACK.
    try:
        with open("/proc/thread-self/schedstat") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return -1


def alone(kind, program, cycles):
    # CPU per cycle of one program alone in its board process: this thread's CPU time over the
    # cycles, and the time around each (wall: the PUBACK's round trip included). Alone, because
    # in one process with the other program each one's garbage changed what the other's
    # allocations cost (their heap is one).
    t = Firmware(program) if kind == "sensornode" else Bare(program)
    t.socket().setsockopt(_IPPROTO_TCP, _TCP_NODELAY, 1)
    for _ in range(min(200, cycles)):
        t.prepare()
        t.run()
    times = array("i", range(cycles))
    before = t.counters()
    gc.collect()
    c0 = oncpu_ns()
    _timed(t, times)
    c1 = oncpu_ns()
    cpu = _stats(times, cycles)
    cpu["oncpu_us"] = (c1 - c0) / 1000 / cycles if c0 >= 0 else None
    report({"kind": kind, "cycles": cycles, "cpu": cpu, "problem": t.problem(before, cycles)})


def _timed(t, times):
    # One cycle per entry of times, each timed around its run() in microseconds.
    ticks_us = time.ticks_us
    diff = time.ticks_diff
    for i in range(len(times)):
        t.prepare()
        a = ticks_us()
        t.run()
        times[i] = diff(ticks_us(), a)


def firmware_parts(node):
    # node.step()'s path when a reading is due and the link is up, one call per part, plus one
    # call of the bsp's WLAN.isconnected() (C on a real board), which wifi.poll makes once a second.
    state = {"now": 0, "msg": None}
    sta = node.wifi.sta

    def clock():
        state["now"] = time.ticks_ms()

    def sample():
        node.sensors.sample(state["now"])

    def encode():
        node.seq += 1
        state["msg"] = node.encoder.encode(
            node.seq, time.ticks_diff(state["now"], node.boot), node.stats.unix_time(state["now"])
        )

    def publish():
        if node.session.publish(node.topics.readings, state["msg"], False, node.qos, state["now"]):
            node.sent += 1

    return [
        ("clock", clock),
        ("wifi.poll", lambda: node.wifi.poll(state["now"])),
        ("bsp isconnected per call", sta.isconnected),
        ("session.poll", lambda: node.session.poll(state["now"])),
        ("sensors.sample", sample),
        ("encoder.encode", encode),
        ("session.publish", publish),
    ]


def bare_parts(bare):
    state = {"msg": None}

    def reading():
        state["msg"] = bare.reading()

    def publish():
        bare.client.publish(bare.topic, state["msg"], False, 1)

    return [("reading (json.dumps)", reading), ("client.publish", publish)]


def measure(kind, program, resident, cycles):
    # kind: "sensornode" (program: the Node) or "bare" (program: bare_loop.Bare). Heap,
    # allocation and a per-part profile; CPU is alone()'s, a run of its own. (Endurance runs
    # are inline in bench.py's main.py.)
    t = Firmware(program) if kind == "sensornode" else Bare(program)
    # As shipped, umqtt.simple writes a PUBLISH in five pieces; with Nagle on, the second waits
    # for the broker's delayed ACK (about 40 ms on Linux). Both programs are timed that way first,
    # then their socket gets TCP_NODELAY so that a cycle is the work and not that wait.
    shipped = array("i", range(_AS_SHIPPED))
    for i in range(_AS_SHIPPED):
        t.prepare()
        a = time.ticks_us()
        t.run()
        shipped[i] = time.ticks_diff(time.ticks_us(), a)
    t.socket().setsockopt(_IPPROTO_TCP, _TCP_NODELAY, 1)
    warm = min(200, cycles)
    for _ in range(warm):
        t.prepare()
        t.run()
    before = t.counters()
    mean, median = alloc_per_cycle(t, cycles)
    problem = t.problem(before, cycles)
    console = None
    if kind == "sensornode" and program.echo is not None:
        # What the console line per reading (console_readings) costs: the same cycles without it.
        echo, program.echo = program.echo, None
        quiet, _ = alloc_per_cycle(t, cycles)
        program.echo = echo
        console = mean - quiet
    n = min(cycles, _PROFILE_MAX)
    parts = firmware_parts(program) if kind == "sensornode" else bare_parts(program)
    prof = profile(parts, n)
    gc.collect()
    report(
        {
            "kind": kind,
            "cycles": cycles,
            "resident_heap_bytes": resident,
            "alloc_per_cycle_bytes": mean,
            "alloc_per_cycle_median_bytes": median,
            "console_line_alloc_bytes": console,
            "as_shipped_cycle_us": sorted(shipped)[_AS_SHIPPED // 2],
            "profile": prof,
            "problem": problem,
            # the program's own modules, for the heap's breakdown by module
            "modules": sorted([m for m in sys.modules if "." in m]),
        }
    )
