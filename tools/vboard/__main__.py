"""Run one virtual board in the foreground, its console on the terminal, until Ctrl-C.

    python -m tools.vboard [--broker host:port] [--id hex] [--board esp32|picow] [--fs dir]
                           [--heap size] [--serial path]

Without --broker a broker is started for the board (Mosquitto if installed, else amqtt).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import time
from pathlib import Path

from tools.vboard import layout
from tools.vboard.supervisor import VirtualBoard


def broker_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not host:port")
    return host, int(port)


def hex_id(text: str) -> str:
    try:
        if len(bytes.fromhex(text)) >= 3:
            return text
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"{text!r} is not a unique id in hex (3 bytes or more)")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tools.vboard",
        description="Run the firmware on a virtual board until Ctrl-C.",
    )
    parser.add_argument(
        "--broker",
        type=broker_address,
        help="host:port of the MQTT broker (default: start one); ignored with --fs, whose "
        "config.json names the broker",
    )
    parser.add_argument(
        "--id", type=hex_id, default="a1b2c3d4e5f6", help="machine.unique_id() in hex"
    )
    parser.add_argument("--board", choices=layout.BOARDS, default="esp32")
    parser.add_argument("--fs", type=Path, help="a flashed board's filesystem, used as is")
    parser.add_argument("--heap", help="MicroPython heap size, e.g. 200k (default: the port's)")
    parser.add_argument("--serial", help="a pty for the board's raw REPL (not yet available)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.serial:
        print(
            "vboard: --serial is not available yet (the raw REPL on a pty comes later); "
            "run without it to see the console here",
            file=sys.stderr,
        )
        return 2
    # SIGTERM and a closed terminal end the supervisor as cleanly as Ctrl-C: the `with` blocks
    # below stop the board and the broker, nothing is orphaned.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(0))
    with contextlib.ExitStack() as stack:
        broker = args.broker
        if broker is None and args.fs is None:
            from tools.brokers import Broker

            started = stack.enter_context(Broker("auto"))
            print(f"vboard: started {started.kind} on {started.address}", flush=True)
            broker = (started.host, started.port)
        board = VirtualBoard(
            fs=args.fs, board=args.board, uid=args.id, broker=broker, heap=args.heap, echo=True
        )
        print(f"vboard: {board.device_id} powering on; Ctrl-C stops it", flush=True)
        try:
            stack.enter_context(board)
            while True:
                time.sleep(0.5)
        except KeyboardInterrupt:
            print("vboard: stopping", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
