"""Dropping a module after use (firmware/unload.py): forgotten by sys.modules and the package,
and its heap collected at once."""

import sys
import types

import firmware
from firmware import unload


def test_a_dropped_module_is_forgotten_and_its_heap_collected_at_once(monkeypatch):
    module = types.ModuleType("firmware.used_once")
    sys.modules["firmware.used_once"] = module  # as an import leaves it
    firmware.used_once = module  # type: ignore[attr-defined]
    collected = []
    monkeypatch.setattr(unload.gc, "collect", lambda: collected.append(len(collected)))
    unload.drop("used_once", "never_loaded")
    assert "firmware.used_once" not in sys.modules
    assert not hasattr(firmware, "used_once")
    assert collected == [0]  # once for the lot: the freed code is one block, not holes later


def test_dropping_modules_that_are_not_loaded_collects_nothing(monkeypatch):
    collected = []
    monkeypatch.setattr(unload.gc, "collect", lambda: collected.append(1))
    unload.drop("never_loaded", "nor_this")
    assert collected == []  # the loop drops what an update step may have loaded, every step
