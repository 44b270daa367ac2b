"""Run one virtual board in the foreground, its console on the terminal, until Ctrl-C.

    python -m tools.vboard [--broker host:port] [--id hex] [--board esp32|picow] [--fs dir]
                           [--heap size] [--serial path] [--umqtt VERSION] [--setup]

Without --broker a broker is started for the board (Mosquitto if installed, else amqtt).
--umqtt gives the board another umqtt.simple than the package index's 1.3.4: any version a
board can have (1.3.4 to 1.8.0), from ../shared/umqtt-simple beside the repository; with 1.3.4
the board also has `ussl`, as MicroPython 1.22 does. With --serial the board has a USB serial
port at `path` (a symlink to a pty, gone when the board stops) with the REPL on it: `mpremote
connect path ...` works as with a board. An empty or new --fs folder is a freshly erased board:
no boot.py or main.py, straight to the REPL.
With --setup the board knows no Wi-Fi network and no broker, as one fresh from the box: its
setup access point comes up after the first round and the console says where its page is
(`setup: portal at http://127.0.0.1:PORT/`); pick `vboard-net` (password `vboard-pass`) there.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import time
from pathlib import Path
from typing import Any

from tools.listen import parse_broker
from tools.vboard import layout
from tools.vboard.supervisor import VirtualBoard

# --setup: nothing known, the setup AP after one failed round; a few networks in the air.
SETUP_SECRETS: dict[str, Any] = {"wifi": []}
SETUP_CONFIG: dict[str, Any] = {"wifi": {"rounds_before_ap": 1}}
SETUP_AIR = layout.DEFAULT_AIR + [
    {"ssid": "greenhouse", "password": "greenhouse-pass", "rssi": -68},
    {"ssid": "neighbour", "password": "", "rssi": -84},
    {"ssid": "hidden-net", "password": "hidden-pass", "rssi": -60, "hidden": True},
]


def broker_address(text: str) -> tuple[str, int]:
    """--broker for argparse: host:port, host (1883) or [v6]:port, as `make listen` reads it."""
    try:
        return parse_broker(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def hex_id(text: str) -> str:
    try:
        if len(bytes.fromhex(text)) >= 3:
            return text
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"{text!r} is not a unique id in hex (3 bytes or more)")


def configured_broker(board: VirtualBoard) -> tuple[str, int] | None:
    """The broker a flashed filesystem's config.json names, if it names one."""
    mqtt = board.config().get("mqtt")
    if not isinstance(mqtt, dict) or not isinstance(mqtt.get("host"), str):
        return None
    port = mqtt.get("port", 1883)
    return mqtt["host"], port if isinstance(port, int) else 1883


def listen_command(broker: tuple[str, int] | None) -> str:
    """The exact `make listen` that watches this board (the broker's port is chosen at run time)."""
    if broker is None:
        return ""
    host, port = broker
    return f"make listen BROKER={f'[{host}]' if ':' in host else host}:{port}"


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
    parser.add_argument(
        "--serial",
        type=Path,
        help="where the board's serial port appears (a symlink to a pty): the REPL, for "
        "mpremote connect PATH",
    )
    parser.add_argument(
        "--umqtt",
        choices=layout.UMQTT_VERSIONS,
        help="the umqtt.simple version the board has, from ../shared/umqtt-simple (default: "
        "the package index's 1.3.4, fetched at setup)",
    )
    parser.add_argument(
        "--setup",
        action="store_true",
        help="a board that knows no network and no broker, so its setup page comes up "
        "(join vboard-net, password vboard-pass, from the page)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.fs is not None and not args.fs.is_dir():
        if args.fs.exists():
            print(f"vboard: --fs {args.fs} is not a folder", file=sys.stderr)
            return 2
        args.fs.mkdir(parents=True)
        print(f"vboard: {args.fs} is new: an erased board", flush=True)
    # SIGTERM and a closed terminal end the supervisor as cleanly as Ctrl-C: the `with` blocks
    # below stop the board and the broker, nothing is orphaned.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(0))
    try:
        layout.umqtt_dir(args.umqtt)
    except FileNotFoundError as e:
        print(e, file=sys.stderr)
        return 2
    with contextlib.ExitStack() as stack:
        broker = args.broker
        if broker is None and args.fs is None:
            from tools.brokers import Broker

            started = stack.enter_context(Broker("auto"))
            print(f"vboard: started {started.kind} on {started.address}", flush=True)
            broker = (started.host, started.port)
        board = VirtualBoard(
            fs=args.fs,
            board=args.board,
            uid=args.id,
            broker=None if args.setup else broker,
            heap=args.heap,
            echo=True,
            serial=args.serial,
            umqtt=args.umqtt,
            config=SETUP_CONFIG if args.setup else None,
            secrets=SETUP_SECRETS if args.setup else None,
        )
        if args.setup:
            board.set_air(SETUP_AIR)
            where = f"{broker[0]}, port {broker[1]}" if broker else "yours"
            print(
                f"vboard: a board fresh from the box; the broker for its page: {where}", flush=True
            )
        print(f"vboard: {board.device_id} powering on; Ctrl-C stops it", flush=True)
        listen = listen_command(broker or configured_broker(board))
        if listen:
            print(f"vboard: watch its readings from another terminal: {listen}", flush=True)
        try:
            stack.enter_context(board)
            if board.serial is not None:
                print(
                    f"vboard: serial port {board.serial} -> {board.serial_device}; "
                    f"mpremote connect {board.serial}",
                    flush=True,
                )
            while True:
                time.sleep(0.5)
        except KeyboardInterrupt:
            print("vboard: stopping", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
