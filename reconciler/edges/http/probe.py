"""Asking a URL only for its status: the seam behind deploy's two checks.

Before a Falco is (re)started, our server must answer a ``HEAD`` on the driver URL its
loader will request; after, Falco's ``/healthz`` must answer a ``GET`` with 200.
``HttpProber`` asks over real HTTP (``client``); ``FakeProber`` (beside it) answers from
a table and records what was asked, for the deploy logic's tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from reconciler.edges.http import client
from reconciler.errors import HttpError


class Prober(Protocol):
    def status(self, method: str, url: str, timeout: float) -> int:
        """The status ``url`` answers to ``method`` ("HEAD" or "GET"), error statuses
        included; ``HttpError`` when nothing answers in time."""
        ...


class HttpProber:
    """Asks over real HTTP."""

    def status(self, method: str, url: str, timeout: float) -> int:
        if method == "HEAD":
            return client.head_status(url, timeout)
        return client.get_status(url, timeout)


@dataclass
class FakeProber:
    """Answers each URL as ``answers`` says: one status, or a status per ask in turn (the
    last one repeated), as a Falco answering 503 until it is ready. Any other URL gets
    ``default``, or nothing answers it (``HttpError``, as a refused connection) when that
    is None. ``asked`` records (method, url) in order."""

    answers: Mapping[str, int | Sequence[int]] = field(default_factory=dict)
    default: int | None = None
    asked: list[tuple[str, str]] = field(default_factory=list)

    def status(self, method: str, url: str, timeout: float) -> int:
        self.asked.append((method, url))
        said = self.answers.get(url, self.default)
        if said is None:
            raise HttpError(f"{method} {url}: connection refused")
        if isinstance(said, int):
            return said
        turn = sum(1 for _method, asked in self.asked if asked == url) - 1
        return said[min(turn, len(said) - 1)]
