"""tools/fetch_umqtt.py: umqtt.simple from the package index by name, its hashes checked.

Everything but the last section runs offline, on a small sdist the tests build themselves and a
fake index served on 127.0.0.1. The last section goes to the real index through the real tool
and is skipped when the index cannot be reached."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools import fetch_umqtt
from tools.brokers import Broker
from tools.fetch_umqtt import (
    FetchError,
    extract_module,
    parse_pip_config_list,
    project_url,
    redact,
    select_file,
    verify_sdist,
    write_module,
)

ROOT = Path(__file__).resolve().parent.parent
MODULE_TEXT = b"class MQTTClient:\n    pass\n"
WAIT_S = 60.0  # only there so a failure cannot hang


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_sdist(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


SDIST = make_sdist(
    {
        "micropython-umqtt.simple-1.3.4/umqtt/simple.py": MODULE_TEXT,
        "micropython-umqtt.simple-1.3.4/micropython_umqtt.simple.egg-info/PKG-INFO": b"x",
    }
)


def page(filename: str, url: str, digest: str | None) -> dict:
    entry: dict = {"filename": filename, "url": url, "hashes": {}}
    if digest is not None:
        entry["hashes"]["sha256"] = digest
    return {"meta": {"api-version": "1.1"}, "name": "micropython-umqtt-simple", "files": [entry]}


# --- pure parts ------------------------------------------------------------------------------


def test_matching_hashes_pass() -> None:
    verify_sdist(SDIST, sha(SDIST), sha(SDIST))


def test_download_differing_from_the_index_hash_is_refused() -> None:
    with pytest.raises(FetchError, match="does not match the index's sha256"):
        verify_sdist(SDIST + b"tampered", sha(SDIST), sha(SDIST))


def test_index_file_differing_from_the_pinned_hash_is_refused() -> None:
    other = make_sdist({"p-1.3.4/umqtt/simple.py": b"evil = 1\n"})
    with pytest.raises(FetchError, match="differs from the one pinned"):
        verify_sdist(other, sha(other), sha(SDIST))


def test_index_without_a_sha256_is_refused() -> None:
    with pytest.raises(FetchError, match="no sha256"):
        verify_sdist(SDIST, None, sha(SDIST))


def test_index_hash_in_capitals_is_accepted() -> None:
    verify_sdist(SDIST, sha(SDIST).upper(), sha(SDIST))


def test_extract_returns_umqtt_simple_py_from_the_top_folder() -> None:
    assert extract_module(SDIST) == MODULE_TEXT


def test_extract_ignores_a_simple_py_deeper_in_the_archive() -> None:
    sdist = make_sdist({"p-1/tests/umqtt/simple.py": b"wrong"})
    with pytest.raises(FetchError, match="has no umqtt/simple.py"):
        extract_module(sdist)


def test_extract_writes_nothing_to_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    extract_module(make_sdist({"p-1/umqtt/simple.py": b"x", "../escape.py": b"y"}))
    assert list(tmp_path.iterdir()) == []
    assert not (tmp_path.parent / "escape.py").exists()


def test_select_file_picks_the_pinned_versions_sdist() -> None:
    listing = {
        "files": [
            {"filename": "micropython-umqtt.simple-1.3.3.tar.gz"},
            {"filename": "micropython-umqtt.simple-1.3.4.tar.gz"},
        ]
    }
    assert select_file(listing, "1.3.4")["filename"].endswith("1.3.4.tar.gz")


def test_select_file_names_what_the_index_has_when_the_version_is_missing() -> None:
    listing = {"files": [{"filename": "micropython-umqtt.simple-1.3.tar.gz"}]}
    with pytest.raises(FetchError, match=r"no micropython-umqtt-simple 1\.3\.4.*1\.3\.tar\.gz"):
        select_file(listing, "1.3.4")


def test_project_url_has_one_slash_between_index_and_name() -> None:
    assert project_url("https://idx.example/simple/") == project_url("https://idx.example/simple")
    assert project_url("https://idx.example/simple") == (
        "https://idx.example/simple/micropython-umqtt-simple/"
    )


def test_redact_hides_credentials_in_an_index_url() -> None:
    assert redact("https://user:s3cret@idx.example/simple") == "https://idx.example/simple"


def test_pip_config_list_is_parsed() -> None:
    text = "global.cert='/etc/ssl/ca.pem'\n:env:.timeout='60'\nglobal.index-url='http://i/s'\n"
    assert parse_pip_config_list(text) == {
        "global.cert": "/etc/ssl/ca.pem",
        ":env:.timeout": "60",
        "global.index-url": "http://i/s",
    }


def test_environment_overrides_pip_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch_umqtt, "pip_config", lambda: {"global.index-url": "http://file/s"})
    monkeypatch.setenv("PIP_INDEX_URL", "http://env/s")
    assert fetch_umqtt.index_url() == "http://env/s"


def test_configured_index_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch_umqtt, "pip_config", lambda: {"global.index-url": "http://file/s"})
    monkeypatch.delenv("PIP_INDEX_URL", raising=False)
    assert fetch_umqtt.index_url() == "http://file/s"


def test_without_configuration_pips_own_default_index_is_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pip._internal.models.index import PyPI

    monkeypatch.setattr(fetch_umqtt, "pip_config", lambda: {})
    monkeypatch.delenv("PIP_INDEX_URL", raising=False)
    assert fetch_umqtt.index_url() == PyPI.simple_url


def test_pips_certificate_bundle_is_trusted(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []
    monkeypatch.setattr(fetch_umqtt, "pip_setting", lambda key: "/etc/pip-ca.pem")
    monkeypatch.setattr(
        fetch_umqtt.ssl, "create_default_context", lambda cafile=None: seen.append(cafile)
    )
    fetch_umqtt.ssl_context()
    assert seen == ["/etc/pip-ca.pem"]


def test_module_is_written_without_an_init_py(tmp_path: Path) -> None:
    target = tmp_path / "out" / "umqtt" / "simple.py"
    write_module(target, MODULE_TEXT)
    assert target.read_bytes() == MODULE_TEXT
    assert sorted(p.name for p in target.parent.iterdir()) == ["simple.py"]


# --- the whole fetch, against a fake index on 127.0.0.1 --------------------------------------


class FakeIndex:
    """Serves {path: (content type, body)} on 127.0.0.1; counts requests."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[str, bytes]] = {}
        self.requests: list[str] = []
        routes, requests = self.routes, self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                requests.append(self.path)
                if self.path not in routes:
                    self.send_error(404)
                    return
                content_type, body = routes[self.path]
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/simple"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def serve_project(self, sdist: bytes, index_digest: str | None, file_url: str) -> None:
        listing = page("micropython-umqtt.simple-1.3.4.tar.gz", file_url, index_digest)
        self.routes["/simple/micropython-umqtt-simple/"] = (
            fetch_umqtt.SIMPLE_JSON,
            json.dumps(listing).encode(),
        )
        self.routes["/files/umqtt-1.3.4.tar.gz"] = ("application/octet-stream", sdist)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def index(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeIndex]:
    """A fake index that pip's configuration points at, and pins matching the test sdist."""
    fake = FakeIndex()
    monkeypatch.setenv("PIP_INDEX_URL", fake.url)
    monkeypatch.setattr(fetch_umqtt, "SDIST_SHA256", sha(SDIST))
    monkeypatch.setattr(fetch_umqtt, "MODULE_SHA256", sha(MODULE_TEXT))
    yield fake
    fake.close()


def test_fetch_writes_umqtt_simple_py_into_the_out_folder(index: FakeIndex, tmp_path: Path) -> None:
    index.serve_project(SDIST, sha(SDIST), "/files/umqtt-1.3.4.tar.gz")
    fetch_umqtt.fetch(tmp_path)
    assert (tmp_path / "umqtt" / "simple.py").read_bytes() == MODULE_TEXT


def test_fetch_follows_a_file_url_relative_to_the_project_page(
    index: FakeIndex, tmp_path: Path
) -> None:
    index.serve_project(SDIST, sha(SDIST), "../../files/umqtt-1.3.4.tar.gz")
    fetch_umqtt.fetch(tmp_path)
    assert "/files/umqtt-1.3.4.tar.gz" in index.requests


def test_fetch_asks_the_index_for_its_json_api(index: FakeIndex, tmp_path: Path) -> None:
    index.routes["/simple/micropython-umqtt-simple/"] = ("text/html", b"<html></html>")
    with pytest.raises(FetchError, match="not the JSON simple API"):
        fetch_umqtt.fetch(tmp_path)


def test_fetch_with_a_tampered_download_writes_nothing(index: FakeIndex, tmp_path: Path) -> None:
    index.serve_project(SDIST + b"!", sha(SDIST), "/files/umqtt-1.3.4.tar.gz")
    with pytest.raises(FetchError, match="index's sha256"):
        fetch_umqtt.fetch(tmp_path)
    assert not (tmp_path / "umqtt").exists()


def test_fetch_of_a_republished_file_writes_nothing(index: FakeIndex, tmp_path: Path) -> None:
    other = make_sdist({"p-1.3.4/umqtt/simple.py": b"evil = 1\n"})
    index.serve_project(other, sha(other), "/files/umqtt-1.3.4.tar.gz")
    with pytest.raises(FetchError, match="pinned"):
        fetch_umqtt.fetch(tmp_path)
    assert not (tmp_path / "umqtt").exists()


def test_fetch_does_nothing_when_the_file_is_already_right(
    index: FakeIndex, tmp_path: Path
) -> None:
    write_module(tmp_path / "umqtt" / "simple.py", MODULE_TEXT)
    message = fetch_umqtt.fetch(tmp_path)
    assert "nothing to do" in message
    assert index.requests == []


def test_fetch_replaces_a_file_with_other_content(index: FakeIndex, tmp_path: Path) -> None:
    index.serve_project(SDIST, sha(SDIST), "/files/umqtt-1.3.4.tar.gz")
    write_module(tmp_path / "umqtt" / "simple.py", b"edited by hand\n")
    assert fetch_umqtt.fetch(tmp_path).startswith("umqtt: replaced")
    assert (tmp_path / "umqtt" / "simple.py").read_bytes() == MODULE_TEXT


def test_cli_failure_exits_1_with_the_reason(
    index: FakeIndex, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert fetch_umqtt.main(["--out", str(tmp_path)]) == 1  # the fake index has no project page
    assert "HTTP 404" in capsys.readouterr().err


# --- the real index, through the real tool ---------------------------------------------------


@pytest.fixture(scope="module")
def fetched(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`python -m tools.fetch_umqtt` run once against the index pip is configured with."""
    try:
        fetch_umqtt.fetch_project_page(fetch_umqtt.index_url(), fetch_umqtt.ssl_context())
    except FetchError as exc:
        if "cannot reach" in str(exc):
            pytest.skip(f"package index unreachable: {exc}")
        raise
    out = tmp_path_factory.mktemp("umqtt")
    done = subprocess.run(
        [sys.executable, "-m", "tools.fetch_umqtt", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=WAIT_S,
    )
    assert done.returncode == 0, done.stderr
    return out


def test_real_fetch_leaves_the_pinned_simple_py_and_no_init_py(fetched: Path) -> None:
    files = sorted(str(p.relative_to(fetched)) for p in fetched.rglob("*"))
    assert files == ["umqtt", "umqtt/simple.py"]
    assert sha((fetched / "umqtt" / "simple.py").read_bytes()) == fetch_umqtt.MODULE_SHA256


def test_real_fetch_again_does_nothing(fetched: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tools.fetch_umqtt", "--out", str(fetched)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=WAIT_S,
    )
    assert done.returncode == 0
    assert "nothing to do" in done.stdout


MICROPYTHON = Path(sys.executable).parent / "micropython"
needs_micropython = pytest.mark.skipif(
    not MICROPYTHON.exists(), reason="the MicroPython unix port is not installed in the venv"
)

PUBLISH_ON_MICROPYTHON = """
import sys
sys.path.insert(0, sys.argv[1])
from umqtt.simple import MQTTClient
c = MQTTClient(b"mp-check", "127.0.0.1", port=int(sys.argv[2]), keepalive=30)
c.set_callback(lambda topic, msg: None)
c.set_last_will(b"sensornode/mp-check/status", b"offline", retain=True, qos=1)
c.connect()
c.publish(b"sensornode/mp-check/status", b"online", retain=True, qos=1)
c.disconnect()
print("published")
"""


@needs_micropython
def test_fetched_module_imports_as_a_namespace_package_on_micropython(fetched: Path) -> None:
    code = f"import sys; sys.path.insert(0, {str(fetched)!r}); import umqtt.simple; print('ok')"
    done = subprocess.run(
        [str(MICROPYTHON), "-c", code], capture_output=True, text=True, timeout=WAIT_S
    )
    assert done.stdout.strip() == "ok", done.stderr


@needs_micropython
def test_fetched_module_publishes_to_a_real_broker_from_micropython(
    fetched: Path, tmp_path: Path
) -> None:
    script = tmp_path / "publish.py"
    script.write_text(PUBLISH_ON_MICROPYTHON)
    with Broker("auto") as broker:
        done = subprocess.run(
            [str(MICROPYTHON), str(script), str(fetched), str(broker.port)],
            capture_output=True,
            text=True,
            timeout=WAIT_S,
        )
        assert done.stdout.strip() == "published", done.stderr
        listen = subprocess.Popen(
            [sys.executable, "-m", "tools.listen", "--broker", broker.address, "--json"]
            + ["--device", "mp-check"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        watchdog = threading.Timer(WAIT_S, listen.kill)  # a silent listener must not hang
        watchdog.start()
        try:
            assert listen.stdout is not None
            record = json.loads(listen.stdout.readline())  # the retained status
        finally:
            watchdog.cancel()
            listen.kill()
            listen.wait()
    assert (record["kind"], record["payload"]) == ("status", "online")


def test_the_tool_names_no_index_host() -> None:
    # The index URL comes from pip's configuration or pip's own default, never from our code.
    assert "://" not in (ROOT / "tools" / "fetch_umqtt.py").read_text()
