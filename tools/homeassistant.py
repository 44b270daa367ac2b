"""A real Home Assistant on 127.0.0.1 for `make test-ha`, configured without a browser.

    with HomeAssistant(hass, broker=("127.0.0.1", 1883), prefix="homeassistant") as ha:
        ha.states()                      # REST: every entity's state and attributes
        ha.ws("config/entity_registry/list")
        ha.recorded_states("sensor.x")   # every state the recorder wrote for it

Its configuration folder is laid out before the first start, as onboarding would leave it:
one owner with a long-lived access token (`.storage/auth`; the token is signed here with the
refresh token's key, as HA signs it), onboarding done, and an MQTT config entry pointing at
the broker with discovery under `prefix`. The owner can also sign in from 127.0.0.1 without a
password (trusted_networks), which is what lets headless Chromium open the frontend.
HA runs with `--skip-pip` (tools/ha_install.py installed what it needs), the recorder
committing every second.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import signal
import sqlite3
import subprocess
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

from tools.brokers import HOST, free_port
from tools.started import Started

START_TIMEOUT_S = 180.0  # a cold start compiles the frontend's translations and the recorder's DB
STOP_TIMEOUT_S = 30.0
TOKEN_LIFETIME_S = 10 * 365 * 86400

_CONFIGURATION = """\
homeassistant:
  name: sensornode test
  latitude: 52.37
  longitude: 4.89
  elevation: 0
  unit_system: metric
  time_zone: UTC
  currency: EUR
  country: NL
  auth_providers:
    - type: trusted_networks
      trusted_networks: [127.0.0.1/32]
      allow_bypass_login: true
    - type: homeassistant
http:
  server_host: 127.0.0.1
  server_port: {port}
recorder:
  commit_interval: 1
logger:
  default: warning
"""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def access_token(refresh_id: str, jwt_key: str, now: int) -> str:
    """A JWT (HS256) as HA's auth makes one for a refresh token: iss, iat, exp."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = {"iss": refresh_id, "iat": now, "exp": now + TOKEN_LIFETIME_S}
    body = _b64(json.dumps(claims).encode())
    sig = hmac.new(jwt_key.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{_b64(sig)}"


def _store(key: str, version: int, data: dict[str, Any], minor: int = 1) -> str:
    return json.dumps({"version": version, "minor_version": minor, "key": key, "data": data})


def lay_out(config: Path, port: int, broker: tuple[str, int], prefix: str) -> str:
    """Writes HA's configuration folder; returns the owner's access token."""
    storage = config / ".storage"
    storage.mkdir(parents=True, exist_ok=True)
    (config / "configuration.yaml").write_text(_CONFIGURATION.format(port=port))
    user_id, refresh_id, jwt_key = (
        secrets.token_hex(16),
        secrets.token_hex(16),
        secrets.token_hex(64),
    )
    now = datetime.now(UTC)
    auth = {
        "users": [
            {
                "id": user_id,
                "group_ids": ["system-admin"],
                "is_owner": True,
                "is_active": True,
                "name": "Owner",
                "system_generated": False,
                "local_only": False,
            }
        ],
        "groups": [
            {"id": "system-admin", "name": "Administrators"},
            {"id": "system-users", "name": "Users"},
            {"id": "system-read-only", "name": "Read Only"},
        ],
        "credentials": [],
        "refresh_tokens": [
            {
                "id": refresh_id,
                "user_id": user_id,
                "client_id": None,
                "client_name": "sensornode test",
                "client_icon": None,
                "token_type": "long_lived_access_token",
                "created_at": now.isoformat(),
                "access_token_expiration": float(TOKEN_LIFETIME_S),
                "token": secrets.token_hex(64),
                "jwt_key": jwt_key,
                "last_used_at": None,
                "last_used_ip": None,
                "expire_at": None,
                "credential_id": None,
                "version": "2024.3.3",
            }
        ],
    }
    (storage / "auth").write_text(_store("auth", 1, auth))
    done = {"done": ["user", "core_config", "analytics", "integration"]}
    (storage / "onboarding").write_text(_store("onboarding", 4, done))
    entry = {
        "entry_id": secrets.token_hex(16),
        "version": 1,
        "minor_version": 1,
        "domain": "mqtt",
        "title": f"{broker[0]}:{broker[1]}",
        "data": {
            "broker": broker[0],
            "port": broker[1],
            "discovery": True,
            "discovery_prefix": prefix,
        },
        "options": {},
        "pref_disable_new_entities": False,
        "pref_disable_polling": False,
        "source": "user",
        "unique_id": None,
        "disabled_by": None,
    }
    (storage / "core.config_entries").write_text(
        _store("core.config_entries", 1, {"entries": [entry]})
    )
    return access_token(refresh_id, jwt_key, int(now.timestamp()))


class HomeAssistant(Started):
    def __init__(
        self,
        hass: Path,
        broker: tuple[str, int],
        prefix: str = "homeassistant",
        config: Path | None = None,
    ) -> None:
        self.hass = hass
        self.port = free_port()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if config is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="hass-")
            config = Path(self._tmp.name)
        self.config = config
        self.token = lay_out(config, self.port, broker, prefix)
        self.url = f"http://{HOST}:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None
        self.started_in_s = 0.0

    def release(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()

    @property
    def log_path(self) -> Path:
        return self.config / "home-assistant.log"

    def start(self) -> None:
        """Starts hass and returns once it says it is running with MQTT loaded."""
        began = time.monotonic()
        cmd = ["nice", "-n", "5", str(self.hass), "-c", str(self.config), "--skip-pip"]
        out = open(self.config / "hass.stdout", "wb")  # noqa: SIM115 (the child keeps it open)
        self._proc = subprocess.Popen(
            [*cmd, "--log-no-color"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
        out.close()
        deadline = began + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"hass exited with {self._proc.returncode}:\n{self.log_tail()}")
            try:
                cfg = self.get("/api/config")
                if cfg.get("state") == "RUNNING" and "mqtt" in cfg.get("components", []):
                    self.started_in_s = time.monotonic() - began
                    return
            except OSError:
                pass
            time.sleep(1.0)
        self.stop()
        raise TimeoutError(f"hass not running after {START_TIMEOUT_S:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        proc = self._proc
        if proc is None:
            return
        self._proc = None
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def get(self, path: str) -> Any:
        req = urllib.request.Request(
            self.url + path, headers={"Authorization": f"Bearer {self.token}"}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def states(self) -> dict[str, dict[str, Any]]:
        """entity_id -> {"state", "attributes", ...} for every entity HA has a state for."""
        return {s["entity_id"]: s for s in self.get("/api/states")}

    def ws(self, command: str, **fields: Any) -> Any:
        """One websocket API command's result (e.g. config/device_registry/list)."""
        with connect(f"ws://{HOST}:{self.port}/api/websocket", open_timeout=10) as sock:
            json.loads(sock.recv(10))  # auth_required
            sock.send(json.dumps({"type": "auth", "access_token": self.token}))
            if json.loads(sock.recv(10)).get("type") != "auth_ok":
                raise RuntimeError("hass refused the access token")
            sock.send(json.dumps({"id": 1, "type": command, **fields}))
            reply = json.loads(sock.recv(30))
        if not reply.get("success"):
            raise RuntimeError(f"hass: {command} failed: {reply.get('error')}")
        return reply["result"]

    def recorded_states(self, entity_ids: list[str]) -> dict[str, list[str]]:
        """Every state the recorder has written for these entities, oldest first."""
        db = self.config / "home-assistant_v2.db"
        out: dict[str, list[str]] = {e: [] for e in entity_ids}
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as con:
            rows = con.execute(
                "SELECT m.entity_id, s.state FROM states s "
                "JOIN states_meta m ON s.metadata_id = m.metadata_id ORDER BY s.state_id"
            )
            for entity_id, state in rows:
                if entity_id in out:
                    out[entity_id].append(state)
        return out
