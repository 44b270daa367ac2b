"""Read and change a node's settings over MQTT, and wait for its answer.

    python -m tools.remote get DEVICE [KEY] [--broker host:port] [--base sensornode]
    python -m tools.remote set DEVICE KEY VALUE [--broker host:port]

KEY is a config.json key, dotted for nested ones (mqtt.port); VALUE is JSON (30, true, null,
'[{"type": "sim", "name": "t"}]'), or text when it is not JSON. The node checks it with the same
rules as config.json, writes config.json and says whether it applies now or after a reboot. Exit
status: 0 when the node took it, 1 when it refused (its message is printed), 2 when no answer came.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from tools.listen import add_broker_options, broker_option, is_device_id
from tools.watcher import Watcher

ANSWER_S = 10.0
CONNECT_S = 10.0


def command(action: str, key: str | None, value: Any, req: str) -> bytes:
    doc: dict[str, Any] = {"cmd": action, "id": req}
    if key is not None:
        doc["key"] = key
    if action == "set":
        doc["value"] = value
    return json.dumps(doc).encode()


def parse_value(text: str) -> Any:
    """JSON when it is JSON, else the text itself (so `mqtt.host broker.lan` needs no quotes)."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def answer_for(payload: bytes, req: str) -> dict[str, Any] | None:
    """The node's event when it answers request `req`, else None."""
    try:
        doc = json.loads(payload)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) and doc.get("id") == req else None


def show(answer: dict[str, Any]) -> str:
    detail = answer.get("detail")
    if isinstance(detail, (dict, list)):
        return json.dumps(detail, indent=2)
    return str(detail)


def ask(
    broker: tuple[str, int], base: str, device: str, payload: bytes, req: str, wait_s: float
) -> dict[str, Any] | None:
    events = f"{base}/{device}/event"
    name = f"sensornode-remote-{os.getpid()}-{os.urandom(2).hex()}"
    watcher = Watcher(broker, events, client_id=name, wait_s=CONNECT_S)
    try:
        watcher.publish(f"{base}/{device}/cmd", payload)
        found = watcher.inbox.wait(events, lambda m: answer_for(m.payload, req) is not None, wait_s)
        return answer_for(found[1].payload, req)
    except TimeoutError:
        return None
    finally:
        watcher.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.remote", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("action", choices=("get", "set"))
    parser.add_argument("device", help="the node's device id, e.g. esp32-a1b2c3")
    parser.add_argument("key", nargs="?", help="a config.json key, dotted: mqtt.port")
    parser.add_argument("value", nargs="?", help="the new value, as JSON (or plain text)")
    add_broker_options(parser)
    parser.add_argument("--timeout", type=float, default=ANSWER_S, help="seconds to wait")
    args = parser.parse_args(argv)
    broker = broker_option(parser, args.broker)
    if args.action == "set" and (args.key is None or args.value is None):
        parser.error("set needs KEY and VALUE, e.g. set esp32-a1b2c3 interval_s 30")
    if args.action == "get" and args.value is not None:
        parser.error("get takes at most a KEY")
    if not is_device_id(args.device):
        parser.error(f"DEVICE {args.device!r} must be a device id, without / + or #")
    req = f"remote-{os.getpid()}-{os.urandom(2).hex()}"
    value = parse_value(args.value) if args.value is not None else None
    payload = command(args.action, args.key, value, req)
    try:
        answer = ask(broker, args.base, args.device, payload, req, args.timeout)
    except OSError as e:  # the broker cannot be reached, refused us or did not answer
        print(f"remote: {e}", file=sys.stderr)
        return 2
    if answer is None:
        print(
            f"remote: no answer from {args.device} within {args.timeout:g} s "
            "(is it online? `make listen` shows it)",
            file=sys.stderr,
        )
        return 2
    if not answer.get("ok"):
        print(f"remote: {args.device} refused: {show(answer)}", file=sys.stderr)
        return 1
    print(show(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
