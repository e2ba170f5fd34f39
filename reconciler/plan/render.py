"""Plans for people (terraform-like) and for scripts (the JSON of the README's "Reading a plan")."""

from __future__ import annotations

import json
from collections import Counter

from reconciler.model.upstreams import Trust
from reconciler.plan.diff import ChangeKind, Op, Plan


def as_json(plan: Plan, held: str = "") -> str:
    """One object, one change a line: readable, and fast for tens of thousands of changes.

    The changes go through json's C encoder in one call (``indent=`` would take the
    pure-Python path, one call per change costs 0.1 s on a large plan), then each is put
    on its own line. Splitting at ``}, {"`` is safe: changes are flat objects, and inside
    an encoded string every ``"`` is escaped, so the sequence only occurs between changes.
    """
    doc = plan.to_json()
    if held:  # a rollout keeps this host off the head revision (daemon.rollout)
        doc["held"] = held
    changes = doc.pop("changes")
    head = json.dumps(doc)[:-1]
    if not changes:
        return head + ', "changes": []}\n'
    body = json.dumps(changes)[1:-1].replace('}, {"', '},\n  {"')
    return f'{head}, "changes": [\n  {body}\n]}}\n'


# As terraform colours its plans: green adds, yellow replaces, red removals (ANSI SGR).
_COLOURS = {Op.FETCH: "32", Op.BUILD: "32", Op.CREATE: "32", Op.REQUEST: "32",
            Op.REPLACE: "33", Op.DELETE: "31", Op.REMOVE: "31"}


def _paint(text: str, sgr: str | None, colour: bool) -> str:
    return f"\x1b[{sgr}m{text}\x1b[0m" if colour and sgr else text


def summary(plan: Plan, *, colour: bool = False) -> str:
    """``2 to build, 1 to replace`` (``no changes`` for an empty plan)."""
    counts = Counter(c.op for c in plan.changes)
    return ", ".join(_paint(f"{counts[op]} to {op.value}", _COLOURS.get(op), colour)
                     for op in Op if counts[op]) or "no changes"


def as_text(plan: Plan, *, colour: bool = False) -> str:
    """The plan for people; ``colour`` (a terminal that wants it) paints each change's
    symbol and operation by what it does."""
    head = f"Host {plan.host} at revision {plan.revision[:12]}"
    head += f" (Host manifest {plan.manifest_host!r})" if plan.manifest_host else (
        " (no Host manifest matches: no Falco here)")
    lines = [_paint(head, "1", colour), *(f"  ({note})" for note in plan.notes), ""]
    kept = [_paint(f"  ({note})", "2", colour) for note in plan.retention]
    if plan.empty:
        lines.append("No changes. The host matches the manifests.")
        lines += ["", *kept] if kept else []
        return "\n".join(lines) + "\n"
    width = max(len(c.op.value) for c in plan.changes)
    for change in plan.changes:
        what = "container " + change.name if change.kind is ChangeKind.CONTAINER else change.name
        if change.source is not None:
            what += f" from {change.source}"
            if change.offers[0].trust is Trust.CHECKSUM:
                what += " (trust: checksum, no signature)"
        sign = _paint(f"{change.op.symbol} {change.op.value:<{width}}",
                      _COLOURS.get(change.op), colour)
        lines.append(f"  {sign}  {what}")
        lines.append(f"      {change.reason_text}")
        if change.needs_adopt:
            lines.append("      (blocked: apply will not replace it without adoption)")
    lines += ["", *kept] if kept else []
    lines += ["", f"Plan: {summary(plan, colour=colour)}."]
    return "\n".join(lines) + "\n"
