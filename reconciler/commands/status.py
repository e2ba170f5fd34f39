"""``reconciler status``: what the daemon of a state dir applied, is doing, and last failed.

Reads ``<state_dir>/status.json`` (written atomically by the daemon); says whether that
daemon still runs (it holds the state dir's lock). Build requests are in files of their
own: on a build host, its queue (who asked for what); on a host that asks, what it asked
for and is waiting for.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

from reconciler import settings
from reconciler.daemon import building, control, lock, state
from reconciler.edges.http import requester
from reconciler.edges.state import buildqueue
from reconciler.edges.store.local import Store
from reconciler.errors import ConfigError
from reconciler.loadtest import quarantine
from reconciler.model import timestamps

ONE_SHOT = True


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("status", help="what the daemon applied, is doing, and last failed",
                       description=__doc__)
    settings.add_flags(p, "state_dir")
    p.add_argument("--json", action="store_true", help="print the status as one JSON object")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    conf = settings.resolve(args)
    current = state.read(conf.state_dir)
    if current is None:
        raise ConfigError(f"no daemon has run on state dir {conf.state_dir} "
                          "(no status.json there)")
    pid = lock.holder(conf.state_dir)
    wanted = control.read(conf.state_dir)
    doc = current.to_json()
    doc["running"] = pid is not None
    doc["pid"] = pid
    # The persisted request wins over the daemon's last word: suspend takes effect even
    # before a (stopped) daemon has seen it.
    doc["suspended"] = wanted.suspended
    if pid is None:
        doc["phase"] = "stopped"
    doc["buildRequests"] = build_requests(conf.state_dir)
    doc["building"] = building.read(conf.state_dir) if pid is not None else []
    doc["quarantined"] = quarantine.listed(conf.state_dir)
    doc["loadTests"] = quarantine.results(
        (key.relpath, path) for key, path in Store(conf.store).artifact_paths())
    if args.json:
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(as_text(doc))
    return 0


def build_requests(state_dir: Path) -> dict[str, object]:
    """Both sides' build requests: queued here (a build host), sent from here (waiting)."""
    try:
        queue = buildqueue.read(state_dir)
    except ConfigError as exc:
        return {"error": str(exc), "queued": [], "finished": [],
                "sent": [s.to_json() for s in requester.read_sent(state_dir)]}
    return {"queued": [e.to_json() for e in queue.pending],
            "finished": [f.to_json() for f in queue.finished],
            "sent": [s.to_json() for s in requester.read_sent(state_dir)]}


_TESTS_SHOWN = 30


def _load_test_lines(tests: object) -> list[str]:
    """Each stored driver's load test, the ones not passed first (``--json`` has all)."""
    if not isinstance(tests, list) or not tests:
        return []
    ordered = sorted(tests, key=lambda t: (t.get("result") == "passed", t.get("path")))
    counts: dict[str, int] = {}
    for test in tests:
        counts[str(test.get("result"))] = counts.get(str(test.get("result")), 0) + 1
    lines = ["drivers:   " + ", ".join(f"{n} {what}" for what, n in sorted(counts.items()))
             + " (load tests of the store's drivers)"]
    for test in ordered[:_TESTS_SHOWN]:
        lines += _wrapped(f"  {test.get('path')}:", test.get("summary"), indent=6)
    if len(tests) > _TESTS_SHOWN:
        lines.append(f"  ... and {len(tests) - _TESTS_SHOWN} more (--json lists all)")
    return lines


def _iso(epoch: object) -> str:
    if not isinstance(epoch, int | float):
        return "-"
    at = dt.datetime.fromtimestamp(epoch, dt.UTC)
    return timestamps.iso_utc(at)


def _request_lines(requests: object) -> list[str]:
    if not isinstance(requests, dict):
        return []
    lines = []
    if requests.get("error"):
        lines.append(f"build queue: {_line(requests['error'])}")
    queued = requests.get("queued") or []
    if queued:
        lines.append(f"build requests queued here: {len(queued)}")
        for entry in queued:
            lines.append(f"  {entry.get('path')} for {', '.join(entry.get('hosts') or [])} "
                         f"({', '.join(entry.get('clients') or [])}) since "
                         f"{entry.get('queuedAt')}")
    for done in (requests.get("finished") or [])[-3:]:
        why = f": {_line(done.get('why'), 100)}" if done.get("why") else ""
        lines.append(f"  {done.get('result'):8} {done.get('path')} for "
                     f"{', '.join(done.get('hosts') or [])} at {done.get('at')}{why}")
    sent = requests.get("sent") or []
    if sent:
        lines.append(f"build requests sent: {len(sent)}")
        for item in sent:
            lines.append(f"  {item.get('standing'):8} {item.get('path')} "
                         f"{('at ' + item['upstream']) if item.get('upstream') else ''}: "
                         f"{_line(item.get('detail'), 100)} (asked {item.get('attempts')}x, "
                         f"next {_iso(item.get('nextAt'))})")
    return lines


def _short(revision: object) -> str:
    return str(revision)[:12] if revision else "none"


def _line(text: object, width: int = 160) -> str:
    """The first line of a message, cut: the full text is in --json."""
    lines = str(text or "").strip().splitlines()
    first = lines[0] if lines else ""
    return first if len(first) <= width else first[: width - 1] + "…"


def _wrapped(head: str, text: object, indent: int = 4, width: int = 100) -> list[str]:
    """``head`` then the whole message, each of its lines wrapped under it: the cause of a
    failure is what a person came for, so it is never cut (a build's last log lines too)."""
    body = [line.rstrip() for line in str(text or "").strip().splitlines() if line.strip()]
    if not body:
        return [head]
    first = textwrap.wrap(f"{head} {body[0].strip()}", width=width,
                          subsequent_indent=" " * indent) or [head]
    rest = [wrapped for line in body[1:]
            for wrapped in textwrap.wrap(line, width=width, initial_indent=" " * indent,
                                         subsequent_indent=" " * (indent + 2))]
    return first + rest


def _applied(doc: dict[str, object]) -> str:
    revision = doc.get("appliedRevision")
    if not revision:
        return "applied:   nothing yet"
    return f"applied:   {_short(revision)} at {doc.get('appliedAt') or 'an unknown time'}"


def _outcome_lines(record: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for outcome in record.get("outcomes") or []:
        lines += _wrapped(f"  {outcome.get('result'):8} {outcome.get('op')} "
                          f"{outcome.get('name')}:", outcome.get("message"), indent=13)
    return lines


def _doing(doc: dict[str, object], last: object) -> list[str]:
    """What it builds now, and the last pass that changed something when a quieter pass
    came after it."""
    lines: list[str] = []
    builds = doc.get("building")
    for build in builds if isinstance(builds, list) else []:
        if isinstance(build, dict):
            lines.append(f"building:  {build.get('artifact')}: {build.get('step')} since "
                         f"{build.get('stepSince')} (started {build.get('since')})")
    changes = doc.get("lastChanges")
    if isinstance(changes, dict) and isinstance(last, dict) and \
            changes.get("number") != last.get("number"):
        lines.append(f"changed:   pass {changes.get('number')} {changes.get('result')} at "
                     f"{_short(changes.get('revision'))}, finished {changes.get('finishedAt')}")
        lines += _outcome_lines(changes)
    return lines


def as_text(doc: dict[str, object]) -> str:
    lines = []
    running = f"running (pid {doc['pid']})" if doc.get("running") else "not running"
    phase = str(doc.get("phase") or "")
    # The phase says "suspended" once the daemon saw it; the request alone says it before.
    said = ", suspended" if doc.get("suspended") and "suspend" not in phase else ""
    lines.append(f"daemon:    {running}, {phase}{said}")
    served = doc.get("serving") or "-"
    lines.append(f"serving:   {served}" if doc.get("running")
                 else f"served:    {served} (until it stopped)")
    lines.append("           (details of every outcome and error: --json)")
    lines.append(_applied(doc))
    head = doc.get("headRevision")
    lines.append(f"head:      {_short(head) if head else 'not read yet'}")
    if doc.get("held"):
        lines.append(f"rollout:   {_line(doc.get('held'))}")
    rejected = doc.get("rejected")
    if isinstance(rejected, dict):
        lines += _wrapped(f"refused:   {_short(rejected.get('revision'))} since "
                          f"{rejected.get('at')}:", rejected.get("reason"), indent=11)
    current = doc.get("currentPass")
    if isinstance(current, dict):
        lines.append(f"now:       pass {current.get('number')} since {current.get('startedAt')}"
                     f" ({', '.join(current.get('trigger') or [])})")
    last = doc.get("lastPass")
    lines += _doing(doc, last)
    if isinstance(last, dict):
        lines.append(f"last pass: {last.get('number')} {last.get('result')} at "
                     f"{_short(last.get('revision'))}, {last.get('seconds')} s, "
                     f"finished {last.get('finishedAt')}: {_line(last.get('message'))}")
        lines += _outcome_lines(last)
    kernels = doc.get("kernels")
    if isinstance(kernels, list) and kernels:
        lines.append("kernels:   (drivers for the next boot too; as of the last pass that planned)")
        for kernel in kernels:
            lines.append(f"  {kernel.get('release'):28} "
                         f"{'running' if kernel.get('running') else 'installed':9} "
                         f"{'ready' if kernel.get('ready') else 'NOT READY':9} "
                         f"{kernel.get('artifact')}")
    if doc.get("nextRetryAt"):
        lines.append(f"retry:     attempt {doc.get('retryAttempt')} at {doc.get('nextRetryAt')}")
    alerts = doc.get("alerts")
    if isinstance(alerts, dict):
        lines.append(f"alerts:    {alerts.get('sent', 0)} sent, {alerts.get('failed', 0)} "
                     f"failed, {alerts.get('dropped', 0)} dropped")
    lines += _request_lines(doc.get("buildRequests"))
    lines += _load_test_lines(doc.get("loadTests"))
    held_back = doc.get("quarantined")
    for held in held_back if isinstance(held_back, list) else []:
        lines += _wrapped(f"held back: {held.get('path')} at {_iso(held.get('at'))}, load "
                          f"test {held.get('result')}:",
                          "\n".join(held.get("reasons") or []), indent=11)
    errors = doc.get("errors")
    if isinstance(errors, list) and errors:
        lines.append("errors:")
        for error in errors[-5:]:
            lines += _wrapped(f"  {error.get('at')} {_short(error.get('revision'))}:",
                              error.get("message"), indent=6)
    return "\n".join(lines) + "\n"
