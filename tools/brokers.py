"""Start and stop real MQTT brokers on 127.0.0.1 for tests, `make sim` and the benchmark.

    with Broker() as broker:          # mosquitto if installed, else amqtt
        print(broker.host, broker.port)
        broker.kill()                 # outage: SIGKILL, clients see the link drop
        broker.restart()              # back on the same port (retained messages are gone)

Each broker runs as a child process with a throw-away config in a temporary directory:
one listener on 127.0.0.1:<free port>, anonymous clients allowed, no persistence.
`start()` returns only once the broker answers an MQTT CONNECT with a CONNACK.

Mosquitto can also be a TLS listener (`tls=TlsFiles(cert, key)`), require a login
(`passwords={"user": "password"}`, hashed into its password file with mosquitto_passwd) and
apply access rules (`acl=` the text of an acl_file):

    with Broker("mosquitto", tls=TlsFiles(cert, key), passwords={"node": "pw"}, acl=rules):

    python -m tools.brokers [--kind auto|mosquitto|amqtt]   # run one until Ctrl-C
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tools.started import Started

HOST = "127.0.0.1"
KINDS = ("auto", "mosquitto", "amqtt")
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 3.0

# MQTT 3.1.1 CONNECT: clean session, keepalive 10 s, client id "brokers-probe".
_PROBE_ID = b"brokers-probe"
_CONNECT = (
    bytes([0x10, 10 + 2 + len(_PROBE_ID)])
    + b"\x00\x04MQTT\x04\x02\x00\x0a"
    + len(_PROBE_ID).to_bytes(2, "big")
    + _PROBE_ID
)
_CONNACK_ACCEPTED = b"\x20\x02\x00\x00"
_DISCONNECT = b"\xe0\x00"

# amqtt 0.12.1 never acts on a keep-alive timeout (BrokerProtocolHandler.handle_read_timeout is
# a no-op): a client that goes silent without closing its socket (a half-open link) stays
# "connected" forever and its last will is never published. Unless told otherwise, the amqtt
# broker runs with two methods replaced: a client silent for 1.5 x its keep-alive is dropped as
# lost (MQTT-3.1.2-24), which publishes its will.
_AMQTT_KEEPALIVE_FIX = """\
import asyncio
from amqtt.broker import Broker
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler

def handle_read_timeout(self):
    self.keepalive_expired = asyncio.get_running_loop().create_task(self.handle_connection_closed())

init_session = Broker._initialize_client_session

async def initialize_client_session(self, *args):
    handler, session = await init_session(self, *args)
    session.keep_alive += (session.keep_alive + 1) // 2
    return handler, session

BrokerProtocolHandler.handle_read_timeout = handle_read_timeout
Broker._initialize_client_session = initialize_client_session
"""
_AMQTT_MAIN = "from amqtt.scripts.broker_script import main\nmain()\n"

_running: set[Broker] = set()


@dataclass(frozen=True)
class TlsFiles:
    """The server's certificate chain and private key, PEM, for a TLS listener."""

    certfile: Path
    keyfile: Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    """True when a server could listen on 127.0.0.1:port now (as brokers do, with SO_REUSEADDR,
    so connections of a previous broker still in TIME_WAIT do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
        return True


def mosquitto_path() -> str | None:
    """The mosquitto executable, or None when it is not installed."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return "/usr/sbin/mosquitto" if os.access("/usr/sbin/mosquitto", os.X_OK) else None


def resolve_kind(kind: str) -> str:
    """Map "auto" to "mosquitto" when it is installed, else "amqtt"; check the others."""
    if kind not in KINDS:
        raise ValueError(f"broker kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if kind == "auto":
        return "mosquitto" if mosquitto_path() else "amqtt"
    return kind


def mosquitto_config(
    port: int,
    tls: TlsFiles | None = None,
    password_file: Path | None = None,
    acl_file: Path | None = None,
) -> str:
    extra = ""
    if tls is not None:
        extra += f"certfile {tls.certfile}\nkeyfile {tls.keyfile}\n"
    if password_file is not None:
        extra += f"password_file {password_file}\n"
    if acl_file is not None:
        extra += f"acl_file {acl_file}\n"
    if extra and os.geteuid() == 0:
        # Started as root (CI), Mosquitto would switch to its own user, which cannot read the
        # password file, the ACL or the key in this private temporary folder.
        extra += "user root\n"
    return (
        f"listener {port} {HOST}\n"
        + extra
        + f"allow_anonymous {'false' if password_file else 'true'}\n"
        "persistence false\n"
        "log_dest stderr\n"
        "log_type error\n"
        "log_type warning\n"
        "log_type notice\n"
    )


def amqtt_config(port: int) -> str:
    # Only the anonymous-auth plugin: no $SYS publisher, no packet logger, no persistence.
    return (
        "listeners:\n"
        "  default:\n"
        "    type: tcp\n"
        f"    bind: {HOST}:{port}\n"
        "plugins:\n"
        "  amqtt.plugins.authentication.AnonymousAuthPlugin:\n"
        "    allow_anonymous: true\n"
    )


def mqtt_ping(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when host:port accepts TCP and answers an MQTT CONNECT with an accepting CONNACK."""
    return connack(host, port, timeout) == _CONNACK_ACCEPTED


def connack(host: str, port: int, timeout: float = 1.0, *, tls: bool = False) -> bytes | None:
    """The CONNACK host:port answers an anonymous MQTT CONNECT with (over TLS, not verifying
    the server: this only asks whether it is up), or None when it does not answer one."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            s: socket.socket | ssl.SSLSocket = raw
            if tls:
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                s = ctx.wrap_socket(raw)
            s.sendall(_CONNECT)
            reply = b""
            while len(reply) < len(_CONNACK_ACCEPTED):
                chunk = s.recv(len(_CONNACK_ACCEPTED) - len(reply))
                if not chunk:
                    return None
                reply += chunk
            if reply[:2] != _CONNACK_ACCEPTED[:2]:
                return None
            if reply == _CONNACK_ACCEPTED:
                s.sendall(_DISCONNECT)
            return reply
    except OSError:
        return None


class Broker(Started):
    """One MQTT broker process on 127.0.0.1; a context manager that stops it on exit."""

    def __init__(
        self,
        kind: str = "auto",
        *,
        port: int | None = None,
        amqtt_keepalive_fix: bool = True,
        tls: TlsFiles | None = None,
        passwords: dict[str, str] | None = None,
        acl: str | None = None,
    ) -> None:
        self.kind = resolve_kind(kind)
        if self.kind != "mosquitto" and (tls or passwords or acl):
            raise ValueError("broker: TLS, passwords and access rules are Mosquitto's here")
        self.host = HOST
        self.port = port if port is not None else free_port()
        self.amqtt_keepalive_fix = amqtt_keepalive_fix
        self.tls = tls
        self.passwords = passwords
        self.acl = acl
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    def __repr__(self) -> str:
        return f"Broker({self.kind!r}, port={self.port}, running={self.running})"

    @property
    def address(self) -> str:
        """The address as host:port, the form `make sim BROKER=...` takes."""
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def command(self, config: Path) -> list[str]:
        if self.kind == "mosquitto":
            exe = mosquitto_path()
            if exe is None:
                raise RuntimeError("broker: mosquitto is not installed (apt-get install mosquitto)")
            return [exe, "-c", str(config)]
        # The same entry point as the `amqtt` console script, run by this very interpreter.
        program = (_AMQTT_KEEPALIVE_FIX if self.amqtt_keepalive_fix else "") + _AMQTT_MAIN
        return [sys.executable, "-c", program, "-c", str(config)]

    def start(self) -> None:
        """Start the broker and wait until it accepts MQTT connections (RuntimeError if not)."""
        if self.running:
            return
        # amqtt does not exit when it cannot listen: it would only time out below.
        if not port_is_free(self.port):
            raise RuntimeError(f"broker: cannot start {self.kind}: {self.address} is in use")
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix=f"sensornode-{self.kind}-")
        workdir = Path(self._dir.name)
        config = workdir / ("mosquitto.conf" if self.kind == "mosquitto" else "amqtt.yaml")
        if self.kind == "mosquitto":
            text = mosquitto_config(
                self.port, self.tls, self._password_file(workdir), self._acl_file(workdir)
            )
        else:
            text = amqtt_config(self.port)
        config.write_text(text)
        with open(self._stderr_path, "ab") as err:
            self._proc = subprocess.Popen(
                self.command(config),
                cwd=workdir,
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
            )
        _running.add(self)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                break
            if connack(self.host, self.port, tls=self.tls is not None) is not None:
                return
            time.sleep(0.05)
        code = self._proc.poll()
        state = f"exited with code {code}" if code is not None else "did not answer in time"
        tail = self.stderr_tail()  # read before stop() removes the folder it is in
        self.stop()
        raise RuntimeError(
            f"broker: {self.kind} on {self.address} {state}; its last output:\n{tail}"
        )

    def _password_file(self, workdir: Path) -> Path | None:
        if self.passwords is None:
            return None
        path = workdir / "passwords"
        path.write_text("".join(f"{user}:{pw}\n" for user, pw in self.passwords.items()))
        path.chmod(0o600)
        # -U hashes the file in place: Mosquitto reads only hashed passwords
        subprocess.run(["mosquitto_passwd", "-U", str(path)], check=True, capture_output=True)
        return path

    def _acl_file(self, workdir: Path) -> Path | None:
        if self.acl is None:
            return None
        path = workdir / "acl"
        path.write_text(self.acl)
        path.chmod(0o600)
        return path

    def stop(self, *, keep_log: bool = False) -> None:
        """SIGTERM, then SIGKILL after 3 s; safe to call at any time, any number of times."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._proc = None
        _running.discard(self)
        if self._dir is not None and not keep_log:
            self._dir.cleanup()
            self._dir = None

    def kill(self) -> None:
        """SIGKILL the broker now, as an outage would; `restart()` brings it back."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def restart(self) -> None:
        """Start again on the same port (after kill() or stop(), or while running)."""
        if self.running:
            self.stop(keep_log=True)
        self.start()

    @property
    def _stderr_path(self) -> Path:
        assert self._dir is not None
        return Path(self._dir.name) / "broker.log"

    def stderr_tail(self, lines: int = 20) -> str:
        """The last lines the broker wrote to stdout/stderr (empty once stopped)."""
        if self._dir is None or not self._stderr_path.exists():
            return ""
        text = self._stderr_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])


@atexit.register
def _stop_all() -> None:
    for broker in list(_running):
        broker.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.brokers",
        description="Run an MQTT broker on 127.0.0.1 (free port) until Ctrl-C.",
    )
    parser.add_argument("--kind", choices=KINDS, default="auto", help="default: %(default)s")
    parser.add_argument("--port", type=int, default=None, help="default: a free port")
    args = parser.parse_args(argv)
    # A SIGTERM ends this process as cleanly as Ctrl-C: the broker is stopped, not orphaned.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    broker = Broker(args.kind, port=args.port)
    try:
        broker.start()
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"broker: {broker.kind} on {broker.address}", flush=True)
    try:
        while broker.running:
            time.sleep(0.5)
        print(f"broker: {broker.kind} exited:\n{broker.stderr_tail()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"broker: stopping {broker.kind}", file=sys.stderr)
        return 0
    finally:
        broker.stop()


if __name__ == "__main__":
    sys.exit(main())
