"""What ships: package.json for mip agrees with the tree, and the example configs are valid."""

import json
from pathlib import Path

from firmware import config
from firmware.version import VERSION

ROOT = Path(__file__).resolve().parent.parent


def package():
    return json.loads((ROOT / "package.json").read_text())


def test_package_version_is_the_firmware_version():
    assert package()["version"] == VERSION


def test_package_installs_boot_main_and_every_firmware_module():
    want = {"boot.py", "main.py"} | {f"firmware/{p.name}" for p in (ROOT / "firmware").glob("*.py")}
    assert {dest for dest, _src in package()["urls"]} == want


def test_package_urls_are_relative_to_the_package_file():
    assert all(dest == src for dest, src in package()["urls"])


def test_package_pulls_in_umqtt_simple():
    assert ["umqtt.simple", "latest"] in package()["deps"]


def test_config_example_is_valid(log):
    cfg, problems = config.validate(json.loads((ROOT / "config.example.json").read_text()), log)
    assert (problems, len(cfg["sensors"])) == (0, 6), log.text()


def test_secrets_example_is_valid(log):
    doc = json.loads((ROOT / "secrets.example.json").read_text())
    secrets, problems = config.validate_secrets(doc, log)
    assert (problems, len(secrets["wifi"])) == (0, 2), log.text()


def test_real_config_files_are_ignored_by_git():
    ignored = (ROOT / ".gitignore").read_text().split()
    assert "/config.json" in ignored and "/secrets.json" in ignored
