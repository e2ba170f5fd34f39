"""Asking build hosts to build: signed ``POST /v1/build-requests`` to the upstreams that take
them (``build_requests: true``), remembered in ``<state_dir>/build-requests-sent.json``.

A host that may not build (``build: never``) and finds an artifact nowhere asks; the
artifact then appears on a build host's server, where the next upstream check finds it.
Each artifact is asked for at most once per backoff: 30 s after the first request,
doubling to 5 min, so a pass every few seconds does not POST every time; the record
stays while the artifact is still needed and goes once it is not (fetched, or no longer
wanted). Upstreams are asked in order; what one refuses goes to the next. The secret is
read from the upstream's ``secret_file`` at each request, so a rotated one is used at once.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler import logs
from reconciler.edges import atomic
from reconciler.edges.http import client as httpclient
from reconciler.model import buildrequests, hmacsig
from reconciler.model.artifacts import ArtifactKey
from reconciler.model.buildrequests import (
    BuildRequestBody,
    KeyStanding,
    Requested,
    RequestOutcome,
    Standing,
    Verdict,
)
from reconciler.model.upstreams import Upstream

log = logs.get(__name__)
SENT_NAME = "build-requests-sent.json"
FIRST_WAIT = 30.0
LONGEST_WAIT = 300.0
Post = Callable[..., tuple[int, dict[str, str], bytes]]


def wait_after(attempts: int) -> float:
    """Seconds before an artifact asked for ``attempts`` times is asked for again."""
    return min(LONGEST_WAIT, FIRST_WAIT * float(2 ** max(0, attempts - 1)))


@dataclass(frozen=True)
class Sent:
    """One artifact asked for: how often, last when, and what the build hosts said."""

    path: str
    standing: Standing
    upstream: str
    detail: str
    attempts: int
    sent_at: float
    next_at: float

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "standing": self.standing.value, "upstream": self.upstream,
                "detail": self.detail, "attempts": self.attempts, "sentAt": self.sent_at,
                "nextAt": self.next_at}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Sent:
        return cls(str(data["path"]), Standing(str(data["standing"])),
                   str(data.get("upstream", "")), str(data.get("detail", "")),
                   int(data.get("attempts", 1)), float(data.get("sentAt", 0.0)),
                   float(data.get("nextAt", 0.0)))


def sent_path(state_dir: Path) -> Path:
    return state_dir / SENT_NAME


def read_sent(state_dir: Path) -> tuple[Sent, ...]:
    """The artifacts asked for and still needed; none if the file is missing or unreadable
    (a lost record only means asking once more)."""
    try:
        data = json.loads(sent_path(state_dir).read_text(encoding="utf-8"))
        return tuple(Sent.from_json(item) for item in data.get("requests", ()))
    except FileNotFoundError:
        return ()
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("build_request.record_unreadable", path=str(sent_path(state_dir)),
                    error=str(exc))
        return ()


def _write_sent(state_dir: Path, records: Sequence[Sent]) -> None:
    body = json.dumps({"requests": [r.to_json() for r in records]}, indent=2) + "\n"
    atomic.write_bytes(sent_path(state_dir), body.encode())


def _secret(upstream: Upstream) -> bytes:
    if upstream.secret_file is None:
        raise httpclient.HttpError(f"{upstream.name}: build_requests needs secret_file")
    try:
        secret = upstream.secret_file.read_bytes().strip()
    except OSError as exc:
        raise httpclient.HttpError(
            f"cannot read the build request secret {upstream.secret_file}: {exc.strerror}"
        ) from exc
    if not secret:
        raise httpclient.HttpError(f"the build request secret {upstream.secret_file} is empty")
    return secret


def _ask(upstream: Upstream, items: Sequence[Requested], hostname: str,
         post: Post) -> tuple[dict[str, tuple[Verdict, str]], str, float]:
    """One POST: each path's verdict, else why nothing was taken and the seconds the
    build host asked us to wait (429, 503)."""
    # The time and a nonce are signed with the body: a build host refuses a replay.
    body = BuildRequestBody(hostname, tuple(items), int(time.time()),
                            secrets.token_urlsafe(24)).encode()
    headers = {**dict(upstream.headers), "Content-Type": "application/json",
               buildrequests.SIGNATURE_HEADER: hmacsig.header_value(_secret(upstream), body)}
    status, answer_headers, answer = post(upstream.url + buildrequests.PATH, body, headers,
                                          timeout=upstream.timeout, ca_bundle=upstream.ca_bundle)
    if status in (202, 400):
        verdicts = {v.path: (v.verdict, v.reason) for v in buildrequests.parse_answer(answer)}
        if verdicts:
            return verdicts, "", 0.0
    retry = answer_headers.get("Retry-After", "")
    text = answer[:200].decode("utf-8", "replace").strip()
    return {}, f"{upstream.name} answered {status}: {text}", float(retry) if retry.isdigit() else 0


def request_builds(  # noqa: PLR0912 - one loop over upstreams, one over the answers
    upstreams: Sequence[Upstream], keys: Sequence[Requested], state_dir: Path, hostname: str,
    *, now: Callable[[], float] = time.time, post: Post = httpclient.post,
) -> RequestOutcome:
    """Ask the build hosts among ``upstreams`` for ``keys`` (those not asked for within
    their backoff); where each stands. Records of artifacts not in ``keys`` are dropped:
    they are no longer needed."""
    builders = [u for u in upstreams if u.build_requests]
    if not builders:
        return RequestOutcome(tuple(
            KeyStanding(k.key, Standing.NO_BUILD_HOST,
                        detail="no upstream takes build requests (build_requests: true)")
            for k in keys))
    clock = now()
    wanted = {k.key.relpath: k for k in keys}
    earlier = {r.path: r for r in read_sent(state_dir) if r.path in wanted}
    due = [k for k in keys if k.key.relpath not in earlier
           or clock >= earlier[k.key.relpath].next_at]
    answers: dict[str, tuple[Standing, str, str]] = {}
    waits: dict[str, float] = {}
    left = list(due)
    problems: list[str] = []
    for upstream in builders:
        if not left:
            break
        try:
            verdicts, problem, wait = _ask(upstream, left, hostname, post)
        except httpclient.HttpError as exc:
            problems.append(str(exc))
            continue
        if problem:
            problems.append(problem)
            for item in left:
                waits[item.key.relpath] = max(waits.get(item.key.relpath, 0.0), wait)
            continue
        still = []
        for item in left:
            verdict, reason = verdicts.get(item.key.relpath, (Verdict.REJECTED, "no verdict"))
            if verdict is Verdict.REJECTED:
                answers[item.key.relpath] = (Standing.REJECTED, upstream.name,
                                             f"{upstream.name}: {reason}")
                still.append(item)
            else:
                answers[item.key.relpath] = (Standing.PENDING, upstream.name, verdict.value)
        left = still
    records = []
    standings = []
    for item in keys:
        relpath = item.key.relpath
        before = earlier.get(relpath)
        if item in due:
            default = (Standing.UNREACHABLE, "", "; ".join(problems) or "not asked")
            standing, taker, detail = answers.get(relpath, default)
            if standing is Standing.REJECTED and relpath in answers and problems:
                detail += "; " + "; ".join(problems)
            attempts = (before.attempts if before else 0) + 1
            next_at = clock + max(wait_after(attempts), waits.get(relpath, 0.0))
            record = Sent(relpath, standing, taker, detail, attempts, clock, next_at)
            log.info("build_request.sent", path=relpath, standing=standing.value,
                     upstream=taker, detail=detail, next_in=round(next_at - clock))
        else:
            assert before is not None
            record = before
        records.append(record)
        standings.append(KeyStanding(item.key, record.standing, record.upstream, record.detail,
                                     record.next_at, posted=item in due))
    _write_sent(state_dir, records)
    return RequestOutcome(tuple(standings))


def keep_only(state_dir: Path, keys: Collection[ArtifactKey]) -> None:
    """Drop the records of artifacts not in ``keys``: they arrived, or nothing wants them."""
    kept = {k.relpath for k in keys}
    records = read_sent(state_dir)
    if any(r.path not in kept for r in records):
        _write_sent(state_dir, [r for r in records if r.path in kept])
