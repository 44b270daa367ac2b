"""manifest.py, for freezing the firmware into a MicroPython image: what it asks for."""

from pathlib import Path
from typing import Any

from firmware.version import VERSION

ROOT = Path(__file__).resolve().parent.parent


def run_manifest() -> dict[str, list[Any]]:
    # The manifest's functions as MicroPython's manifestfile.py offers them, recording calls.
    calls: dict[str, list[Any]] = {"metadata": [], "require": [], "package": [], "module": []}
    scope = {
        "metadata": lambda **kw: calls["metadata"].append(kw),
        "require": lambda name, **kw: calls["require"].append(name),
        "package": lambda path, **kw: calls["package"].append(path),
        "module": lambda path, **kw: calls["module"].append(path),
        "include": lambda path, **kw: None,
    }
    exec(compile((ROOT / "manifest.py").read_text(), "manifest.py", "exec"), scope)
    return calls


def test_manifest_version_is_the_firmware_version():
    assert run_manifest()["metadata"][0]["version"] == VERSION


def test_manifest_freezes_the_firmware_package_and_requires_umqtt_simple():
    calls = run_manifest()
    assert calls["package"] == ["firmware"]
    assert calls["require"] == ["umqtt.simple"]


def test_manifest_leaves_boot_and_main_on_the_filesystem():
    # boot.py and main.py stay files: the board runs them from its filesystem at boot.
    assert run_manifest()["module"] == []
