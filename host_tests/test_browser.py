"""host_tests/browser.py's waits, without a browser: a page between documents is not an error."""

from __future__ import annotations

from typing import Any

import pytest

from host_tests.browser import NAVIGATING, Browser, BrowserError


class Scripted(Browser):
    """A Browser whose evaluations answer from a list (an exception there is raised)."""

    def __init__(self, answers: list[Any]) -> None:  # no Chromium started
        self.answers = answers

    def eval(self, script: str) -> Any:
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_an_evaluation_that_meets_a_navigation_is_waited_past() -> None:
    page = Scripted(
        [
            ["http://ha/config/devices/device/1", "loading"],
            BrowserError(f"Runtime.evaluate: {{'message': '{NAVIGATING[0]}'}}"),
            BrowserError(f"Runtime.evaluate: {{'message': '{NAVIGATING[1]}'}}"),
            ["http://ha/config/devices/device/1", "complete"],
        ]
    )
    page.wait_loaded("/device/1", timeout=5)
    assert page.answers == []


def test_any_other_error_of_an_evaluation_still_fails_the_wait() -> None:
    page = Scripted([BrowserError("Runtime.evaluate: {'message': 'Target crashed'}")])
    with pytest.raises(BrowserError, match="Target crashed"):
        page.wait_loaded("/device/1", timeout=5)
