"""One `with` for what the host tools start and stop: a broker, a virtual board, a browser,
Home Assistant."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class Started:
    """Something that `start()` brings up and `stop()` ends; `with` does both, then
    `release()` frees what outlives a stop (a temporary folder that a restart would reuse)."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def release(self) -> None:
        pass

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        self.release()
