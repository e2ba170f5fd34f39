"""Which revision a host may run under a ``Rollout``: pure, one decision per pass.

Inputs: the rollout (from the head revision's manifests), the host's wave, the head, the
host's own ``History`` (the ledger under its state dir: when it first saw each head, since
when each gate has held, the revision it moved to, those that passed and those that
failed), what its last pass did, and ``Gates`` (the fleet as Prometheus sees it; None
without Prometheus). Output: the revision to plan, the new history, and why a newer one
is held.

Release: wave ``k`` is released for revision ``R`` when every gate ``0..k`` has held for
its soak and the wave's windows allow now. Gate 0 opens when the host first saw ``R``
(plus the wave's own query if it has one); gate ``j`` watches wave ``j-1`` (every host of
it healthy on ``R``, plus the wave's query). Without Prometheus gate ``j`` opens when wave
``j-1`` was released, so waves follow each other by soak time from the first-seen time.
A revision that changes nothing this host runs is released at once.

Failure: a gate about this host's wave or an earlier one that reads FAILING for ``R``,
or this host's own failed pass on ``R``, marks ``R`` failed: it is never moved to again.
With ``onFailure: rollback`` a host on a failed revision goes back to the newest revision
that passed here; with ``hold`` it stays (until a newer revision is released: a fix goes
forward). A host that never moved anywhere takes the head: it joins where the fleet is.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Protocol

from reconciler.desired import waves
from reconciler.desired.waves import FleetView, GateReading, Reading
from reconciler.manifests.rollout import OnFailure, Rollout
from reconciler.model import cron

MAX_SEEN = 32  # heads remembered; older ones can no longer be candidates
MAX_GOOD = 8


class Gates(Protocol):
    """The fleet's Prometheus, as a decision needs it (``edges.http.prometheus``)."""

    def view(self) -> FleetView: ...

    def holds(self, query: str) -> bool | None:
        """Whether ``query`` returns anything; None when Prometheus did not answer."""


@dataclass(frozen=True)
class History:
    seen: tuple[tuple[str, float], ...] = ()  # heads, oldest first, with first-seen time
    open_since: Mapping[str, float] = field(default_factory=dict)  # "rev/gate" -> since
    target: str | None = None  # the revision this host moved to
    good: tuple[str, ...] = ()  # revisions whose pass went well here, newest last
    failed: frozenset[str] = frozenset()

    def first_seen(self, revision: str) -> float | None:
        return next((at for rev, at in self.seen if rev == revision), None)

    def newer_than(self, revision: str | None) -> tuple[str, ...]:
        """Heads seen after ``revision``, oldest first (all of them if it was never seen)."""
        order = [rev for rev, _at in self.seen]
        start = order.index(revision) + 1 if revision in order else 0
        return tuple(order[start:])


@dataclass(frozen=True)
class Decision:
    revision: str  # the revision to plan and apply this pass
    wave: str
    history: History
    held: str = ""  # why a newer revision is not applied ("" when none is held)
    rolled_back: str | None = None  # the failed revision this host leaves
    # When the held head is released here if its gates stay open (soak left, and the soaks
    # of the gates after it); None: not a matter of time (a gate pending, failing, unknown).
    eta: float | None = None


def see(history: History, head: str, now: float) -> History:
    if history.first_seen(head) is not None:
        return history
    return replace(history, seen=(*history.seen, (head, now))[-MAX_SEEN:])


def after_pass(history: History, revision: str, ok: bool) -> History:
    """What the last pass on ``revision`` teaches: it passed here, or it failed here."""
    if ok:
        good = (*(g for g in history.good if g != revision), revision)[-MAX_GOOD:]
        return replace(history, good=good)
    return replace(history, failed=history.failed | {revision})


@dataclass
class _Evaluation:
    """One pass's gate readings and the open-since times they keep."""

    rollout: Rollout
    now: float
    gates: Gates | None
    view: FleetView | None
    before: Mapping[str, float]
    open_since: dict[str, float] = field(default_factory=dict)
    queries: dict[str, bool | None] = field(default_factory=dict)
    eta: dict[str, float] = field(default_factory=dict)  # revision -> when, if only time

    def custom(self, query: str, revision: str, watched: str) -> GateReading:
        if self.gates is None:
            return GateReading(Reading.UNKNOWN, why="the wave has a gate query but no "
                               "Prometheus is configured (prometheus_url)")
        text = query.replace("$revision", revision).replace("$wave", watched)
        if text not in self.queries:
            self.queries[text] = self.gates.holds(text)
        answer = self.queries[text]
        if answer is None:
            return GateReading(Reading.UNKNOWN, why="Prometheus did not answer the gate query")
        return GateReading(Reading.OPEN if answer else Reading.PENDING,
                           why="" if answer else "the gate query returns nothing yet")

    def reading(self, revision: str, j: int) -> GateReading | None:
        """Gate ``j`` for ``revision``; None: time-based (no Prometheus, no query)."""
        wave = self.rollout.spec.waves[j]
        watched = self.rollout.spec.waves[j - 1].name if j else ""
        if j and self.view is not None:
            found = waves.read_gate(self.view, watched, revision)
            if found.state is not Reading.OPEN or wave.gate is None:
                return found
        if wave.gate is not None:
            return self.custom(wave.gate, revision, watched)
        return None if self.view is None or not j else GateReading(Reading.OPEN)

    def release(self, revision: str, first_seen: float, k: int) -> str:
        """"" when wave ``k`` is released for ``revision``, else why not."""
        spec = self.rollout.spec
        opened = first_seen
        for j in range(k + 1):
            wave = spec.waves[j]
            watched = spec.waves[j - 1].name if j else ""
            found = self.reading(revision, j)
            if found is not None and found.state is not Reading.OPEN:
                return _waits(spec.waves[k].name, watched or "its gate", found.describe(revision))
            if found is not None and j:
                key = f"{revision}/{j}"
                opened = self.open_since[key] = self.before.get(key, self.now)
            elif found is not None:
                opened = max(opened, self.before.get(f"{revision}/0", self.now))
                self.open_since[f"{revision}/0"] = opened
            if self.now < opened + wave.soak_seconds:
                self.eta[revision] = opened + sum(w.soak_seconds for w in spec.waves[j:k + 1])
                held = found.describe(revision) + " for " if found is not None and j else ""
                return _waits(spec.waves[k].name, watched or "its soak", (
                    f"{held}{cron.show_duration(self.now - opened)} of {wave.soak} soak"
                    f"{'' if j else f' since {revision[:12]} was first seen'}"))
            opened += wave.soak_seconds
        why = waves.window_hold(spec.waves[k], dt.datetime.fromtimestamp(self.now, dt.UTC))
        return f"held: wave {spec.waves[k].name} is {why}" if why else ""

    def failing(self, revision: str, k: int) -> str:
        """Why ``revision`` reads FAILING at a gate up to the one watching wave ``k``."""
        if self.view is None:
            return ""
        spec = self.rollout.spec
        for j in range(1, min(k + 2, len(spec.waves) + 1)):
            watched = spec.waves[j - 1].name
            found = waves.read_gate(self.view, watched, revision)
            if found.state is Reading.FAILING:
                return f"wave {watched}: {found.describe(revision)}"
        return ""


def _waits(wave: str, on: str, detail: str) -> str:
    return f"held: wave {wave} waits for {on} ({detail})"


def decide(rollout: Rollout, hostname: str, head: str, now: float, history: History, *,
           gates: Gates | None, changes: Callable[[str], bool]) -> Decision:
    """The revision this host runs this pass. ``changes(R)``: whether ``R`` changes anything
    this host runs, against the revision it moved to."""
    k = waves.wave_of(rollout, hostname)
    wave = rollout.spec.waves[k].name
    history = see(history, head, now)
    view = gates.view() if gates is not None else None
    run = _Evaluation(rollout, now, gates, view, history.open_since)
    failed = set(history.failed)
    why_failed: dict[str, str] = {}
    for revision in {head, *history.newer_than(history.target),
                     *([history.target] if history.target else [])}:
        why = run.failing(revision, k)
        if why:
            failed.add(revision)
            why_failed[revision] = why
    if history.target is None:
        return Decision(head, wave, replace(history, target=head, failed=frozenset(failed)))
    held = ""
    chosen: str | None = None
    for revision in reversed(history.newer_than(history.target)):
        if revision in failed:
            held = held or (f"held: {revision[:12]} failed "
                            f"({why_failed.get(revision, 'its pass failed here')})")
            continue
        seen_at = history.first_seen(revision) or now
        why = run.release(revision, seen_at, k) if changes(revision) else ""
        if not why:
            chosen = revision
            break
        held = held or why
    rolled_back = None
    if chosen is None:
        chosen = history.target
        if chosen in failed and rollout.spec.on_failure is OnFailure.ROLLBACK:
            back = next((g for g in reversed(history.good) if g not in failed), None)
            if back is not None and back != chosen:
                rolled_back, chosen = chosen, back
                held = (f"held: {rolled_back[:12]} failed "
                        f"({why_failed.get(rolled_back, 'its pass failed here')}); "
                        f"rolled back to {back[:12]}")
    if chosen == head:
        held = ""
    kept = replace(history, target=chosen, open_since=run.open_since, failed=frozenset(failed))
    return Decision(chosen, wave, kept, held, rolled_back,
                    run.eta.get(head) if chosen != head else None)
