"""The alert sender: each event POSTed as JSON to every configured target, off the loop.

``send`` only queues, so nothing a pass does waits on a webhook: one worker thread takes
the deliveries (an event for one target) in order of when they are due. A delivery that
fails (no answer within ``timeout``, an error status) is due again after an exponential,
jittered backoff (1 s doubling to 60 s) and given up, logged, after ``attempts``; while it
waits, other deliveries go out. Beyond ``bound`` waiting deliveries the oldest is dropped:
a target that is down for long costs memory for ``bound`` events, not more. ``close``
gives the waiting ones a short while (the daemon is stopping) and abandons the rest.

Two shapes (``model.upstreams.AlertFormat``): the generic one, ``{"event", "host",
"revision", "message", "time", "details"}``, and Slack's incoming webhook, ``{"text"}``.
"""

from __future__ import annotations

import heapq
import itertools
import json
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from reconciler import logs
from reconciler.daemon.backoff import Backoff
from reconciler.daemon.events import Event
from reconciler.daemon.state import AlertCounts as Counts
from reconciler.edges.http import client as httpclient
from reconciler.errors import HttpError
from reconciler.model import urls
from reconciler.model.upstreams import AlertFormat, AlertTarget

log = logs.get(__name__)

# POST ``body`` to ``url`` within ``timeout`` seconds, raising HttpError if it is not taken.
Post = Callable[[str, bytes, float], object]


def body(event: Event, target: AlertTarget, host: str) -> bytes:
    """What ``target`` is sent for ``event``, in its format."""
    doc: Mapping[str, Any]
    if target.format is AlertFormat.SLACK:
        doc = {"text": slack_text(event, host)}
    else:
        doc = {"event": event.kind.value, "host": host, "revision": event.revision,
               "message": event.message, "time": event.time, "details": dict(event.details)}
    return json.dumps(doc, sort_keys=False).encode()


def where(url: str) -> str:
    """How logs name a target: its host only, as a webhook's path often holds its secret
    (Slack's does)."""
    return urls.where(url)


def slack_text(event: Event, host: str) -> str:
    """One line; Slack reads ``&``, ``<`` and ``>`` as markup, so they are escaped."""
    text = f"falco-reconciler on {host}: {event.kind.value}: {event.message}"
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass(frozen=True)
class _Delivery:
    event: Event
    target: AlertTarget
    order: int  # when it was queued: a retry keeps it, so the oldest is dropped first
    attempt: int = 1


class Alerts:
    def __init__(
        self, targets: Sequence[AlertTarget], *, host: str,
        post: Post = httpclient.post_json, timeout: float = 5.0, attempts: int = 6,
        backoff: Backoff | None = None, bound: int = 256, rng: random.Random | None = None,
    ) -> None:
        self.targets = tuple(targets)
        self.host = host
        self.post = post
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff or Backoff(base=1.0, cap=60.0)
        self.bound = bound
        self.rng = rng  # None: the module's own (jitter, not secrecy)
        self._due: list[tuple[float, int, _Delivery]] = []  # a heap: (due, order, delivery)
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._closing_at: float | None = None  # past it, the worker abandons what waits
        self._counts = Counts()
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.targets)

    def counts(self) -> Counts:
        with self._wake:
            return self._counts

    def start(self) -> Alerts:
        if self.enabled and self._thread is None:
            self._thread = threading.Thread(target=self._work, name="alerts", daemon=True)
            self._thread.start()
        return self

    def send(self, event: Event) -> None:
        """Queue ``event`` for every target; never waits for the network."""
        if not self.enabled:
            return
        with self._wake:
            if self._closing_at is not None:
                return
            for target in self.targets:
                self._push(time.monotonic(), _Delivery(event, target, next(self._order)))
            self._wake.notify()

    def _push(self, due: float, delivery: _Delivery) -> None:
        heapq.heappush(self._due, (due, delivery.order, delivery))
        while len(self._due) > self.bound:
            # The oldest is the one queued first: the smallest order, wherever it is due.
            oldest = min(range(len(self._due)), key=lambda i: self._due[i][1])
            _due, _order, lost = self._due.pop(oldest)
            heapq.heapify(self._due)
            self._counts = _add(self._counts, dropped=1)
            log.warning("alert.dropped", kind=lost.event.kind.value, url=where(lost.target.url),
                        waiting=len(self._due))

    def close(self, flush: float = 2.0) -> None:
        """Stop: deliveries due within ``flush`` seconds still go; the rest are abandoned."""
        with self._wake:
            if self._closing_at is None:
                self._closing_at = time.monotonic() + flush
            self._wake.notify()
        if self._thread is not None:
            # A POST in flight may take its whole timeout; the thread is a daemon thread,
            # so a target that hangs cannot hold up the exit past this.
            self._thread.join(timeout=flush + self.timeout)

    def _next(self) -> _Delivery | None:
        """The next delivery once it is due; None when closing leaves nothing to do."""
        with self._wake:
            while True:
                now = time.monotonic()
                closing = self._closing_at
                if closing is not None and (not self._due or self._due[0][0] > closing
                                            or now >= closing):
                    self._abandon()
                    return None
                if self._due and self._due[0][0] <= now:
                    return heapq.heappop(self._due)[2]
                until = self._due[0][0] if self._due else None
                if closing is not None:
                    until = min(until, closing) if until is not None else closing
                self._wake.wait(None if until is None else until - now)

    def _abandon(self) -> None:
        if self._due:
            log.warning("alert.abandoned", count=len(self._due),
                        why="the daemon is stopping")
            self._counts = _add(self._counts, failed=len(self._due))
            self._due.clear()

    def _work(self) -> None:
        while (delivery := self._next()) is not None:
            self._deliver(delivery)

    def _deliver(self, delivery: _Delivery) -> None:
        event, target = delivery.event, delivery.target
        try:
            self.post(target.url, body(event, target, self.host), self.timeout)
        except HttpError as exc:
            error = str(exc).replace(target.url, where(target.url))
            with self._wake:
                if delivery.attempt >= self.attempts:
                    self._counts = _add(self._counts, failed=1)
                    log.error("alert.failed", kind=event.kind.value, url=where(target.url),
                              attempts=delivery.attempt, error=error)
                    return
                delay = self.backoff.delay(delivery.attempt, self.rng)
                log.info("alert.retry", kind=event.kind.value, url=where(target.url),
                         attempt=delivery.attempt, seconds=round(delay, 1), error=error)
                self._push(time.monotonic() + delay,
                           replace(delivery, attempt=delivery.attempt + 1))
            return
        with self._wake:
            self._counts = _add(self._counts, sent=1)
        log.info("alert.sent", kind=event.kind.value, url=where(target.url),
                 attempt=delivery.attempt)



def _add(counts: Counts, *, sent: int = 0, failed: int = 0, dropped: int = 0) -> Counts:
    return Counts(counts.sent + sent, counts.failed + failed, counts.dropped + dropped)
