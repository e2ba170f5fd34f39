"""The pass's rollout hook: which revision this host plans, and what it remembers after.

``choose`` reads the head's manifests; without a ``Rollout`` the head is planned, as
before. With one, ``desired.rollout.decide`` picks the revision from the host's ledger
(``edges.state.waves``), the fleet's Prometheus (when configured) and whether a revision
changes anything this host runs (its Host and DriverBuilds compared with those of the
revision it runs). ``settle`` writes the ledger once the pass applied. ``plan`` uses
``choose`` alone and writes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from reconciler import logs, runtime
from reconciler.desired import rollout
from reconciler.edges.http import prometheus
from reconciler.edges.state import waves as ledger
from reconciler.manifests.models import ManifestSet
from reconciler.manifests.rollout import OnFailure

log = logs.get(__name__)


@dataclass(frozen=True)
class Choice:
    """The decision, and what the pass exports of it (``daemon.metrics.rollout``)."""

    name: str  # the Rollout's
    host: str
    decision: rollout.Decision
    held_since: float  # when the held head was first seen here; 0 when nothing is held
    rolls_back: bool = False  # onFailure: rollback (a failed pass is retried soon, to go back)

    failed: tuple[str, ...] = ()  # recent revisions that failed here, after this pass

    @property
    def revision(self) -> str:
        return self.decision.revision


def choose(rt: runtime.Runtime, repo: str, head: str, *, applied: str | None,
           clock: Callable[[], float] = time.time) -> Choice | None:
    """None when the head has no Rollout (plan the head); ManifestError if it is invalid."""
    inputs = rt.planner(repo=repo, ref=head).read_inputs()
    if not inputs.manifests.rollouts:
        return None
    plan = inputs.manifests.rollouts[0].value
    hostname = inputs.facts.hostname
    history = ledger.read(rt.settings.state_dir)
    if history.target is None and applied:
        # A lost ledger (or the first pass with a Rollout): start from what runs here.
        history = replace(history, target=applied, good=(applied,))
    now = clock()
    history = rollout.see(history, head, now)

    read = {head: inputs.manifests}

    def manifests_at(revision: str) -> ManifestSet:
        if revision not in read:
            read[revision] = rt.planner(repo=repo, ref=revision).read_inputs().manifests
        return read[revision]

    running = manifests_at(history.target) if history.target else None

    def changes(revision: str) -> bool:
        return running is None or not manifests_at(revision).same_for(running, hostname)

    gates = prometheus.Prometheus.from_settings(rt.settings, plan.metadata.name)
    decision = rollout.decide(plan, hostname, head, now, history, gates=gates,
                              changes=changes)
    if decision.held:
        log.info("rollout.held", wave=decision.wave, revision=decision.revision, head=head,
                 why=decision.held)
    if decision.rolled_back:
        log.warning("rollout.rolled_back", wave=decision.wave, failed=decision.rolled_back,
                    to=decision.revision)
    held_since = (decision.history.first_seen(head) or now) if decision.revision != head else 0
    return Choice(plan.metadata.name, hostname, decision, held_since,
                  plan.spec.on_failure is OnFailure.ROLLBACK)


def settle(rt: runtime.Runtime, choice: Choice, *, ok: bool) -> Choice:
    """Remember the pass: the revision passed here, or failed here (exported as failed)."""
    history = rollout.after_pass(choice.decision.history, choice.revision, ok)
    ledger.write(rt.settings.state_dir, history)
    recent = {rev for rev, _at in history.seen}
    return replace(choice, failed=tuple(sorted(history.failed & recent)))
