"""Fetch umqtt.simple for the virtual board from the package index, by name, hash-checked.

    python -m tools.fetch_umqtt [--out build/umqtt]     # -> build/umqtt/umqtt/simple.py

The index's newest micropython-umqtt.simple (1.3.4) is an sdist without setup.py, which
`pip download` refuses; so this reads the index's JSON simple API (PEP 691) at the index URL pip
is configured with (PIP_INDEX_URL, global.index-url in pip's config, else pip's own default),
downloads the pinned version, checks its sha256 against both the index's hash and the one pinned
here, and writes only umqtt/simple.py. There is no umqtt/__init__.py: MicroPython imports the
folder as a namespace package. Running it again when the file is already right does nothing.
"""

from __future__ import annotations

import argparse
import ast
import functools
import hashlib
import io
import json
import os
import ssl
import subprocess
import sys
import tarfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

PROJECT = "micropython-umqtt-simple"  # the name as the simple API spells it (PEP 503)
VERSION = "1.3.4"
# sha256 of micropython-umqtt.simple-1.3.4.tar.gz, as first downloaded and checked against the
# index; it must never change.
SDIST_SHA256 = "b6a2520239e3992c63a7de9370ee9b3d9d27819a90359c521f1c0f7ccab8d12f"
MODULE = "umqtt/simple.py"
# sha256 of umqtt/simple.py inside that sdist: what a finished fetch leaves in --out.
MODULE_SHA256 = "8555d2f654deb8eb0d724f79b0811a78cc94029d070f3d96bbd74288653d63a5"
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "build" / "umqtt"  # what every tool reads
SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
TIMEOUT_S = 60.0


class FetchError(Exception):
    """Anything that stops the fetch; the message says what and what to do."""


# ---------------------------------------------------------------------------------------------
# Pure parts.


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def project_url(index_url: str, project: str = PROJECT) -> str:
    return index_url.rstrip("/") + "/" + project + "/"


def redact(url: str) -> str:
    """The URL without user:password, for messages."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def select_file(page: dict[str, Any], version: str = VERSION) -> dict[str, Any]:
    """The sdist entry for `version` in a PEP 691 project page."""
    suffix = f"-{version}.tar.gz"
    files = [f for f in page.get("files", []) if str(f.get("filename", "")).endswith(suffix)]
    if not files:
        names = ", ".join(f.get("filename", "?") for f in page.get("files", [])) or "none"
        raise FetchError(f"umqtt: the index has no {PROJECT} {version} sdist (files: {names})")
    return files[0]


def verify_sdist(data: bytes, index_sha256: str | None, pinned_sha256: str) -> None:
    """Raise FetchError unless the download matches both the index's hash and ours."""
    got = sha256(data)
    if not index_sha256:
        raise FetchError("umqtt: the index gave no sha256 for the file; refusing to use it")
    if got != index_sha256.lower():
        raise FetchError(
            f"umqtt: download does not match the index's sha256\n"
            f"  index says {index_sha256}\n  downloaded {got}\n"
            "the download was damaged or altered; nothing was written"
        )
    if got != pinned_sha256:
        raise FetchError(
            f"umqtt: the index's file differs from the one pinned in tools/fetch_umqtt.py\n"
            f"  pinned     {pinned_sha256}\n  index file {got}\n"
            f"{PROJECT} {VERSION} was re-published or the index is not the real one; "
            "nothing was written"
        )


def extract_module(sdist: bytes, module: str = MODULE) -> bytes:
    """The bytes of `<top folder>/<module>` in a .tar.gz, read in memory (nothing else is
    extracted, so no path in the archive can write anywhere)."""
    with tarfile.open(fileobj=io.BytesIO(sdist), mode="r:gz") as tar:
        for member in tar.getmembers():
            top, _, rest = member.name.partition("/")
            if rest == module and member.isfile():
                f = tar.extractfile(member)
                if f is not None:
                    return f.read()
    raise FetchError(f"umqtt: the sdist has no {module}")


def module_path(out: Path, module: str = MODULE) -> Path:
    return out / module


def is_current(path: Path, expected_sha256: str) -> bool:
    return path.is_file() and sha256(path.read_bytes()) == expected_sha256


def write_module(path: Path, content: bytes) -> None:
    """Write atomically: a half-written simple.py never exists under the real name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(content)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------
# pip's configuration and the network.


def parse_pip_config_list(text: str) -> dict[str, str]:
    """`pip config list` output (lines of key='value') as a dict."""
    settings = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            try:
                settings[key.strip()] = str(ast.literal_eval(value.strip()))
            except (ValueError, SyntaxError):
                settings[key.strip()] = value.strip()
    return settings


@functools.cache
def pip_config() -> dict[str, str]:
    """Every setting pip has from its config files, merged as pip merges them. (`pip config get`
    is no use here: in pip 23 it reads only the user's file, not /etc/pip.conf.)"""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "config", "list"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return {}
    return parse_pip_config_list(done.stdout) if done.returncode == 0 else {}


def pip_setting(key: str) -> str | None:
    """A pip option as pip would see it: PIP_<KEY> from the environment, else `global.<key>`."""
    env = os.environ.get("PIP_" + key.upper().replace("-", "_"))
    return env or pip_config().get(f"global.{key}") or None


def index_url() -> str:
    """The index pip installs from: its configured index-url, else pip's built-in default."""
    configured = pip_setting("index-url")
    if configured:
        return configured
    try:
        from pip._internal.models.index import PyPI
    except ImportError as exc:
        raise FetchError(
            "umqtt: pip is not importable, so its default index is unknown; set PIP_INDEX_URL"
        ) from exc
    return PyPI.simple_url


def ssl_context() -> ssl.SSLContext:
    """Trust what pip trusts: its configured certificate bundle (PIP_CERT / global.cert)."""
    cafile = pip_setting("cert")
    return ssl.create_default_context(cafile=cafile) if cafile else ssl.create_default_context()


def http_get(url: str, accept: str, context: ssl.SSLContext) -> tuple[bytes, str]:
    """GET url; (body, content type). Raises FetchError with the URL on any failure."""
    request = urllib.request.Request(
        url, headers={"Accept": accept, "User-Agent": "sensornode-fetch-umqtt"}
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S, context=context) as response:
            return response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        raise FetchError(f"umqtt: {redact(url)} answered HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FetchError(f"umqtt: cannot reach {redact(url)}: {reason}") from exc


def fetch_project_page(index: str, context: ssl.SSLContext) -> tuple[str, dict[str, Any]]:
    url = project_url(index)
    body, content_type = http_get(url, SIMPLE_JSON, context)
    if not content_type.startswith(SIMPLE_JSON):
        raise FetchError(
            f"umqtt: {redact(url)} answered {content_type or 'no content type'}, not the JSON "
            "simple API (PEP 691); use an index that speaks it (PIP_INDEX_URL)"
        )
    try:
        return url, json.loads(body)
    except ValueError as exc:
        raise FetchError(f"umqtt: {redact(url)} sent JSON that does not parse: {exc}") from exc


def fetch(out: Path) -> str:
    """Make `out`/umqtt/simple.py the pinned umqtt.simple; returns what was done, for a person."""
    target = module_path(out)
    if is_current(target, MODULE_SHA256):
        return f"umqtt: {target} is already umqtt.simple {VERSION} (sha256 ok); nothing to do"
    context = ssl_context()
    page_url, page = fetch_project_page(index_url(), context)
    entry = select_file(page)
    file_url = urllib.parse.urljoin(page_url, entry["url"])
    sdist, _ = http_get(file_url, "*/*", context)
    verify_sdist(sdist, entry.get("hashes", {}).get("sha256"), SDIST_SHA256)
    content = extract_module(sdist)
    if sha256(content) != MODULE_SHA256:
        raise FetchError(
            f"umqtt: {MODULE} in the verified sdist does not match MODULE_SHA256 in "
            "tools/fetch_umqtt.py; the two pinned hashes disagree"
        )
    replaced = target.exists()
    write_module(target, content)
    verb = "replaced" if replaced else "wrote"
    return f"umqtt: {verb} {target} ({entry['filename']}, sha256 verified)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.fetch_umqtt",
        description=f"Fetch umqtt.simple {VERSION} from the package index into DIR/umqtt/.",
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="output folder (default %(default)s)"
    )
    args = parser.parse_args(argv)
    try:
        print(fetch(args.out))
    except FetchError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
