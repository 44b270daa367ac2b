"""The first-run demo: a broker, one virtual board running the firmware, and the live view.

    python -m tools.sim [--broker host:port] [--duration S]

Everything runs on this machine: the broker on 127.0.0.1 (Mosquitto if installed, else amqtt)
unless --broker names one. The board's serial console goes to build/sim/console.log (and to the
screen between the readings when the output is not a terminal). Ctrl-C or --duration ends it
and stops everything it started.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from pathlib import Path

from tools import listen
from tools.brokers import Broker
from tools.vboard import VirtualBoard
from tools.vboard.__main__ import broker_address

ROOT = Path(__file__).resolve().parent.parent
LOG = ROOT / "build" / "sim" / "console.log"


def keep_console(board: VirtualBoard, path: Path, echo: bool, done: threading.Event) -> None:
    """Copies the board's console lines to path (and stdout when echo) until done is set, and
    once more after: what the board said while it stopped is kept too."""
    path.parent.mkdir(parents=True, exist_ok=True)
    seen = 0
    with path.open("w") as f:
        while True:
            stopping = done.wait(0.2)
            lines = board.console
            for line in lines[seen:]:
                f.write(line + "\n")
                if echo:
                    print(f"console: {line}", flush=True)
            f.flush()
            seen = len(lines)
            if stopping:
                return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.sim", description=__doc__)
    parser.add_argument("--broker", type=broker_address, help="use this broker (host:port)")
    parser.add_argument("--duration", type=float, help="stop after this many seconds")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    done = threading.Event()
    with contextlib.ExitStack() as stack:
        if args.broker is None:
            broker = stack.enter_context(Broker("auto"))
            print(f"sim: {broker.kind} broker on {broker.address}", flush=True)
            address = (broker.host, broker.port)
        else:
            address = args.broker
        board = VirtualBoard(broker=address, workdir=ROOT / "build" / "sim" / "board")
        echo = not sys.stdout.isatty()
        copier = threading.Thread(target=keep_console, args=(board, LOG, echo, done), daemon=True)
        copier.start()
        # Undone in reverse: the board stops first, then the copier takes its last lines.
        stack.callback(copier.join)
        stack.callback(done.set)
        stack.enter_context(board)
        print(f"sim: virtual board {board.device_id} is up; its console: {LOG}", flush=True)
        listen_args = ["--broker", f"{address[0]}:{address[1]}", "--device", board.device_id]
        listen_args += ["--note", f"the board's console: {LOG.relative_to(ROOT)}"]
        if args.duration is not None:
            listen_args += ["--duration", str(args.duration)]
        with contextlib.suppress(KeyboardInterrupt):
            listen.main(listen_args)
        print("sim: stopping the board and the broker", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
