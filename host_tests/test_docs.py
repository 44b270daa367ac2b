"""The project's own documents (docs/, linked from the README) name what the code has."""

import inspect
import re
from pathlib import Path

from firmware import commands, config, report

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def keys(tree: dict, prefix: str = "") -> list[str]:
    out = []
    for key, value in tree.items():
        if isinstance(value, dict):
            out += keys(value, prefix + key + ".")
        else:
            out.append(prefix + key)
    return out


def test_the_readme_links_every_page_in_docs():
    readme = (ROOT / "README.md").read_text()
    for page in DOCS.glob("*.md"):
        assert f"(docs/{page.name})" in readme, page.name


def test_every_config_key_is_explained_in_the_config_reference():
    text = (DOCS / "config.md").read_text()
    for key in keys(config.DEFAULTS):
        assert f"`{key}`" in text or f"`{key.split('.')[-1]}`" in text, key


def test_every_sensor_type_is_in_the_config_reference():
    text = (DOCS / "config.md").read_text()
    for kind in config.SENSOR_TYPES:
        assert f"`{kind}`" in text, kind


def test_every_heartbeat_field_is_explained_in_the_topic_contract():
    text = (DOCS / "topics.md").read_text()
    for name in inspect.signature(report.heartbeat).parameters:
        assert re.search(rf"^\| `{name}` \|", text, re.M), name


def test_every_command_is_in_the_topic_contract():
    text = (DOCS / "topics.md").read_text()
    for name in commands.NAMES:
        assert f'{{"cmd": "{name}"' in text, name


def test_no_code_points_at_a_document_outside_the_repository():
    for path in [*ROOT.glob("firmware/*.py"), *ROOT.glob("tools/**/*.py")]:
        assert "design.md" not in path.read_text(), path
