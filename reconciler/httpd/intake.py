"""Build requests taken by the driver server: ``POST /v1/build-requests`` (model.buildrequests).

Only with ``accept_build_requests``; the handler reads the body (bounded, before anything
else) and hands it here with the peer's address. In order, cheapest first, and nothing
is queued unless every step passes:

1. the client's token bucket (``ratelimit``): 429 with ``Retry-After`` (charged before the
   signature, so guessing signatures is throttled too);
2. the signature over the raw body: 401, nothing parsed, nothing written; bad signatures
   from all clients together are capped (``unsigned``, 429 beyond it) and logged at most
   once a second, so a flood from many addresses costs a 401 each and no more;
3. the body: 400 if it is no build request, or carries no signed time and nonce;
4. the signed time and nonce (``replay``): 401 for a stale body or a nonce seen before,
   so a captured request, even one whose build failed, is never queued again;
5. each artifact: a store path of a driverkit target whose headers this host can fetch
   without URLs, a driver version we know the identity of, this host's architecture, a
   kernel release and version of the manifests' grammar; already in the store is
   ``available``;
6. the queue's bound: 503 with ``Retry-After`` when the new artifacts do not fit.

Then 202 with one verdict per artifact (400 when none was taken) and the daemon is woken
(reason ``build-request``) to build what was queued.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable

from reconciler import logs
from reconciler.edges.state.buildqueue import BuildQueue
from reconciler.edges.store.local import Store
from reconciler.errors import ReconcilerError
from reconciler.httpd import clients
from reconciler.httpd.messages import Response, text
from reconciler.httpd.ratelimit import RateLimiter
from reconciler.httpd.replay import ReplayGuard
from reconciler.httpd.throttle import Throttled
from reconciler.manifests import driverkit, grammar
from reconciler.model import buildrequests, hmacsig, versions
from reconciler.model.artifacts import APT_HEADER_TARGETS as APT_TARGETS
from reconciler.model.artifacts import ArtifactKey
from reconciler.model.buildrequests import KeyVerdict, Requested, Verdict
from reconciler.observe import stored

_log = logs.get("reconciler.httpd")
WAKE_REASON = "build-request"
_RELEASE = re.compile(grammar.RELEASE_PATTERN)
_KERNEL_VERSION = re.compile(grammar.KERNEL_VERSION_PATTERN)
_QUEUE_FULL_RETRY = 60
_UNSIGNED_PER_MINUTE = 600  # bad signatures answered 401 per minute, all clients together
_refusals = Throttled()


def _text(status: int, line: str, **fields: str) -> Response:
    return text(status, line + "\n", fields=tuple(fields.items()))


def key_problem(key: ArtifactKey, host_arch: str) -> str | None:  # noqa: PLR0911 - one per rule
    """Why this build host will not build ``key`` on request, or None."""
    if key.arch != host_arch:
        return f"architecture {key.arch}: this build host builds for {host_arch} only"
    if versions.required_identity(key.driver_version) is None:
        return (f"unknown driver version {key.driver_version}: this build host builds only "
                "the driver versions of Falco releases it knows")
    if (problem := driverkit.target_problem(key.target)) is not None:
        return f"unknown target: {problem}"
    if key.target not in APT_TARGETS:
        return (f"target {key.target}: a build host finds headers without kernelUrls only for "
                f"{', '.join(sorted(APT_TARGETS))}; build it from a DriverBuild with kernelUrls")
    if len(key.kernel_release) > grammar.MAX_KERNEL_RELEASE or not _RELEASE.match(
            key.kernel_release):
        return "the kernel release is not one (see the manifests' kernelRelease)"
    if len(key.kernel_version) > grammar.MAX_KERNEL_VERSION or not _KERNEL_VERSION.match(
            key.kernel_version):
        return "the kernel version is not one (see the manifests' kernelVersion)"
    return None


class Intake:
    """What the server does with one build request (module docstring)."""

    def __init__(self, secret: bytes, queue: BuildQueue, store: Store, *, host_arch: str,
                 limiter: RateLimiter, wake: Callable[[str], None],
                 replay: ReplayGuard | None = None, unsigned: RateLimiter | None = None) -> None:
        if not secret:
            raise ValueError("build requests need a shared secret")
        self.secret = secret
        self.queue = queue
        self.store = store
        self.host_arch = host_arch
        self.limiter = limiter
        self.wake = wake
        self.replay = replay or ReplayGuard()
        self.unsigned = unsigned or RateLimiter(_UNSIGNED_PER_MINUTE, max_clients=1)

    def _gate(self, client: str, body: bytes, signature: str | None) -> (
            Response | tuple[str, tuple[Requested | KeyVerdict, ...]]):
        """Steps 1 to 4 (module docstring): the refusal, or the host and its entries."""
        wait = self.limiter.take(clients.group(client))
        if wait > 0:
            _refusals.warning("build_request.limited", client=client,
                              retry_after=math.ceil(wait))
            return _text(429, "too many build requests", **{"Retry-After": str(math.ceil(wait))})
        if not hmacsig.matches(self.secret, body, signature):
            _refusals.warning("build_request.unauthenticated", client=client)
            wait = self.unsigned.take("*")
            if wait > 0:
                return _text(429, "too many unsigned build requests",
                             **{"Retry-After": str(math.ceil(wait))})
            return _text(401, "bad or missing signature")
        try:
            parsed = buildrequests.parse(body)
            refused = self.replay.refusal(buildrequests.stamp_of(body))
            if refused is not None:
                _log.warning("build_request.replayed", client=client, reason=refused)
                return _text(401, refused)
            return parsed
        except buildrequests.BodyError as exc:
            _log.warning("build_request.malformed", client=client, error=str(exc))
            return _text(400, f"not a build request: {exc}")

    def handle(self, client: str, body: bytes, signature: str | None) -> Response:
        gated = self._gate(client, body, signature)
        if isinstance(gated, Response):
            return gated
        host, entries = gated
        verdicts: list[KeyVerdict | None] = []
        wanted: list[Requested] = []
        for entry in entries:
            if isinstance(entry, KeyVerdict):
                verdicts.append(entry)
                continue
            problem = key_problem(entry.key, self.host_arch)
            if problem is not None:
                verdicts.append(KeyVerdict(entry.key.relpath, Verdict.REJECTED, problem))
            elif stored.usable(self.store.lookup(entry.key)) is not None:
                verdicts.append(KeyVerdict(entry.key.relpath, Verdict.AVAILABLE))
            else:
                verdicts.append(None)  # its verdict is the queue's
                wanted.append(entry)
        queued: dict[str, Verdict] = {}
        if wanted:
            try:
                offered = self.queue.offer(host, client, wanted)
            except (ReconcilerError, OSError) as exc:
                _log.error("build_request.queue_failed", error=str(exc))
                return _text(503, "the build queue cannot be written",
                             **{"Retry-After": str(_QUEUE_FULL_RETRY)})
            if offered is None:
                _log.warning("build_request.queue_full", client=client, host=host,
                             limit=self.queue.limit)
                return _text(503, "the build queue is full",
                             **{"Retry-After": str(_QUEUE_FULL_RETRY)})
            queued = offered
        it = iter(wanted)
        final = [v if v is not None else KeyVerdict((p := next(it).key.relpath), queued[p])
                 for v in verdicts]
        taken = [v for v in final if v.verdict is not Verdict.REJECTED]
        _log.info("build_request.answered", client=client, host=host, taken=len(taken),
                  rejected=len(final) - len(taken),
                  queued=sum(v.verdict is Verdict.QUEUED for v in final))
        if any(v.verdict is Verdict.QUEUED for v in final):
            self.wake(WAKE_REASON)
        doc = {"host": host, "artifacts": [v.to_json() for v in final]}
        return text(202 if taken else 400, json.dumps(doc) + "\n",
                    content_type="application/json")
