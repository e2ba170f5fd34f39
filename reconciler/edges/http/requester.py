"""Asking build hosts to build: signed ``POST /v1/build-requests`` to the upstreams that take
them (``build_requests: true``), remembered in ``<state_dir>/build-requests-sent.json``.

A host that may not build (``build: never``) and finds an artifact nowhere asks; the
artifact then appears on a build host's server, where the next upstream check finds it.
The rules (backoff, verdicts, standings) are ``model.asking``'s; this module does the
POSTs over ``edges.http.client`` and keeps the records. The secret is read from the
upstream's ``secret_file`` at each request, so a rotated one is used at once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from secrets import token_urlsafe

from reconciler import logs
from reconciler.edges import atomic, secrets
from reconciler.edges.http import client as httpclient
from reconciler.errors import ConfigError, HttpError
from reconciler.model import asking, buildrequests, hmacsig
from reconciler.model.artifacts import ArtifactKey
from reconciler.model.asking import RequestOutcome, Sent
from reconciler.model.buildrequests import BuildRequestBody, Requested, Verdict
from reconciler.model.upstreams import Upstream

log = logs.get(__name__)
SENT_NAME = "build-requests-sent.json"
Post = Callable[..., tuple[int, dict[str, str], bytes]]


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
    """The upstream's shared secret; ConfigError (permanent: no retry makes a secret
    appear) when it is not configured, unreadable or empty."""
    if upstream.secret_file is None:
        raise ConfigError(f"upstream {upstream.name}: build_requests needs secret_file")
    return secrets.read(upstream.secret_file, f"upstream {upstream.name}'s build request secret")


def _ask(upstream: Upstream, items: Sequence[Requested], hostname: str,
         post: Post) -> tuple[dict[str, tuple[Verdict, str]], str, float]:
    """One POST: each path's verdict, else why nothing was taken and the seconds the
    build host asked us to wait (429, 503)."""
    # The time and a nonce are signed with the body: a build host refuses a replay.
    body = BuildRequestBody(hostname, tuple(items), int(time.time()),
                            token_urlsafe(24)).encode()
    headers = {**dict(upstream.headers), "Content-Type": "application/json",
               buildrequests.SIGNATURE_HEADER: hmacsig.header_value(_secret(upstream), body)}
    status, answer_headers, answer = post(upstream.url + buildrequests.PATH, body, headers,
                                          timeout=upstream.timeout, ca_bundle=upstream.ca_bundle)
    if status in (202, 400):
        verdicts = {v.path: (v.verdict, v.reason) for v in buildrequests.parse_answer(answer)}
        if verdicts:
            return verdicts, "", 0.0
    retry = answer_headers.get("retry-after", "")
    text = answer[:200].decode("utf-8", "replace").strip()
    return {}, f"{upstream.name} answered {status}: {text}", float(retry) if retry.isdigit() else 0


def request_builds(
    upstreams: Sequence[Upstream], keys: Sequence[Requested], state_dir: Path, hostname: str,
    *, now: Callable[[], float] = time.time, post: Post = httpclient.post,
) -> RequestOutcome:
    """Ask the build hosts among ``upstreams`` for ``keys`` (those not asked for within
    their backoff); where each stands. Records of artifacts not in ``keys`` are dropped:
    they are no longer needed."""
    builders = [u for u in upstreams if u.build_requests]
    if not builders:
        return asking.nobody_builds(keys)
    wanted = {k.key.relpath for k in keys}
    earlier = {r.path: r for r in read_sent(state_dir) if r.path in wanted}
    rounds = asking.Round(keys, earlier, now())
    for upstream in builders:
        if not rounds.left:
            break
        try:
            verdicts, problem, wait = _ask(upstream, rounds.left, hostname, post)
        except HttpError as exc:
            rounds.failed(str(exc))
            continue
        if problem:
            rounds.failed(problem, wait)
        else:
            rounds.answered(upstream.name, verdicts)
    records, outcome = rounds.outcome()
    for record, standing in zip(records, outcome.keys, strict=True):
        if standing.posted:
            log.info("build_request.sent", path=record.path, standing=record.standing.value,
                     upstream=record.upstream, detail=record.detail,
                     next_in=round(record.next_at - record.sent_at))
    _write_sent(state_dir, records)
    return outcome


def keep_only(state_dir: Path, keys: Collection[ArtifactKey]) -> None:
    """Drop the records of artifacts not in ``keys``: they arrived, or nothing wants them."""
    kept = {k.relpath for k in keys}
    records = read_sent(state_dir)
    if any(r.path not in kept for r in records):
        _write_sent(state_dir, [r for r in records if r.path in kept])
