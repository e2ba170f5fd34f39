"""Apply a fetch: each offer in turn, streamed beside its place, verified, then published.

For one ``+ fetch`` change the offers are tried in the plan's (the upstreams') order. A
download goes to a temp file in the artifact's own store folder (``atomic.temp_name_for``:
a ``.``-name with ``.partial-``, which the store scan, the server and the triggers ignore
and a restart cleans), resumed with ``Range`` if the connection drops (``edges.http.upstream``).
Before it may be published it must verify:

- its sha256 is exactly the one its upstream states: a reconciler's index, or the
  ``<file>.sha256`` beside the file in a repository (download.falco.org has none: then the
  checks below are all there is);
- it is the driver its name says (``builder.verify.check_fetched``): a module for this
  kernel's real release (its vermagic) and architecture, a probe an eBPF ELF object,
  either carrying an identity its driver version accepts (and the one its index states);
- its store path and sha256 are covered by a signed index (``model.trustindex``) that a
  key of ``trusted_keys`` signed and that has not expired nor been rolled back, whichever
  upstream, mirror or cache served the bytes and whichever carried the document (each
  upstream's ``/index.json`` and the documents this store already keeps are read, once per
  apply). Only an upstream set to ``trust: checksum`` (one that signs nothing, such as
  download.falco.org) is taken on its checksum alone, and the outcome, the store's trust
  records and ``/index.json`` say so.

What does not verify is discarded and the next offer tried; the outcome names every
refusal. What does is published like a build (``Store.publish``, our own ``.sha256``
computed), so it stays when its upstream drops it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler import logs
from reconciler.builder import verify
from reconciler.desired.state import DesiredState
from reconciler.edges import atomic
from reconciler.edges.host import crypto
from reconciler.edges.http import upstream
from reconciler.edges.store import signedindex
from reconciler.edges.store.local import Store
from reconciler.edges.store.opener import LOAD_TEST_SUFFIX, SHA_SUFFIX, SIDECAR_MAX
from reconciler.edges.store.verifier import digest_in, sha256_file
from reconciler.errors import (
    ArtifactRejected,
    ConfigError,
    InvalidDriver,
    StepFailed,
    StoreError,
    UpstreamError,
)
from reconciler.model import trustindex
from reconciler.model.artifacts import ArtifactKey
from reconciler.model.offers import Offer, load_test_outcome
from reconciler.model.upstreams import Trust, Upstream
from reconciler.observe import survey
from reconciler.observe.survey import Connect
from reconciler.plan.diff import Change

log = logs.get(__name__)

_ABSENT = (403, 404, 410)
MAX_INDEX_BYTES = survey.MAX_INDEX_BYTES  # the index the survey reads, signatures and all


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Fetcher:
    store: Store
    upstreams: Sequence[Upstream]
    connect: Connect = upstream.Client
    module_name: str = "falco"
    max_bytes: int = upstream.MAX_ARTIFACT_BYTES
    trusted_keys: Sequence[str] = ()  # pinned ``ed25519:<base64>`` index keys
    clock: Callable[[], dt.datetime] = _now
    verify: trustindex.Verify = crypto.verify
    _judged: dict[str, trustindex.Judgement] = field(default_factory=dict, compare=False)
    # this host's load test of a fetched artifact (the build's gate, with a log of its
    # own): leaves the result beside the file, raises ``StepFailed`` to keep it out
    load_test: Callable[[ArtifactKey, Path, str, tuple[str, ...]], None] | None = None

    def fetch(self, change: Change, desired: DesiredState) -> str:
        """Fetch ``change``'s artifact from the first offer that verifies; raises
        ``UpstreamError`` (``ArtifactRejected`` when every upstream sent a wrong file)
        naming each refusal."""
        key = change.artifact
        assert key is not None
        wanted = desired.artifact(key)
        release = (wanted.uname_release if wanted else "") or key.kernel_release
        falcos = wanted.falcos if wanted else ()
        refused: list[str] = []
        rejected_only = True
        for offer in change.offers:
            try:
                described = self._one(key, offer, release, falcos)
            except UpstreamError as exc:
                refused.append(f"{offer.upstream}: {exc}")
                rejected_only = rejected_only and isinstance(exc, ArtifactRejected)
                log.warning("fetch.refused", name=key.relpath, upstream=offer.upstream,
                            error=str(exc))
                continue
            after = f" (refused first: {'; '.join(refused)})" if refused else ""
            return f"fetched from {offer.upstream}, verified: {described}{after}"
        why = "; ".join(refused) or "the plan names no upstream"
        error = ArtifactRejected if rejected_only and refused else UpstreamError
        raise error(f"no upstream gave a verified copy: {why}")

    def _source(self, offer: Offer) -> Upstream:
        source = next((u for u in self.upstreams if u.name == offer.upstream), None)
        if source is None:
            raise UpstreamError(f"{offer.upstream} is no longer a configured upstream")
        return source

    def _client(self, offer: Offer) -> upstream.Client:
        source = self._source(offer)
        try:
            return self.connect(source)
        except ConfigError as exc:
            raise UpstreamError(str(exc)) from exc

    def judgement(self) -> trustindex.Judgement:
        """What the signed documents say, read once per fetcher (one apply): those each
        upstream's ``/index.json`` carries and those the store keeps."""
        if "" not in self._judged:
            docs = signedindex.held(self.store.root)
            for source in self.upstreams:
                docs += _documents(self.connect, source)
            trusted = {crypto.key_id(k): k for k in self.trusted_keys}
            self._judged[""] = trustindex.judge(docs, trusted, self.verify, self.clock(),
                                                signedindex.seen(self.store.root))
        return self._judged[""]

    def _trust(self, key: ArtifactKey, digest: str, source: Upstream
               ) -> trustindex.Covered | str:
        """The trusted document that covers these bytes, or (``trust: checksum`` only)
        the phrase that says they came in without one; ``ArtifactRejected`` otherwise."""
        judged = self.judgement()
        vouched = judged.vouches(key.relpath, digest)
        if vouched is not None:
            return vouched
        if source.trust is Trust.CHECKSUM:
            return "trusted by checksum only (trust: checksum): no signed index covers it"
        listed = judged.listed(key.relpath)
        why = (f"trusted signed indexes list it with sha256 {', '.join(listed)}" if listed
               else "no trusted, unexpired signed index lists it")
        if judged.refused:
            why += f" (refused: {'; '.join(judged.refused[:3])})"
        raise ArtifactRejected(f"its sha256 {digest} is not covered by a trusted signature: "
                               f"{why}; an upstream that signs nothing needs trust: checksum")

    def _one(self, key: ArtifactKey, offer: Offer, release: str,
             falcos: tuple[str, ...] = ()) -> str:
        client = self._client(offer)
        source = self._source(offer)
        target = self.store.path_of(key)
        folder = self.store.unsafe_folder(key)
        if folder is not None:
            raise StoreError(f"cannot fetch {key.relpath}: {self.store.root / folder} is a "
                             "symlink or not a folder, and the store never follows one")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot fetch {key.relpath}: {exc}") from exc
        temp = atomic.temp_name_for(target)
        try:
            with temp.open("xb") as handle:
                client.download(offer.url, handle, max_bytes=self.max_bytes,
                                expected_size=offer.size if offer.sha256 else None)
            digest = sha256_file(temp)
            stated = offer.sha256 or _stated_digest(client, offer.url)
            if stated is not None and digest != stated:
                raise ArtifactRejected(f"its sha256 is {digest}, its upstream states {stated}")
            try:
                described = verify.check_fetched(
                    temp.read_bytes(), key.kind, release, key.arch, self.module_name,
                    driver_version=key.driver_version, stated=offer.identity)
            except InvalidDriver as exc:
                raise ArtifactRejected(f"not the driver asked for: {exc}") from exc
            trusted = self._trust(key, digest, source)
            tested = self._tested(key, temp, release, offer, source, falcos=falcos)
            stored = self.store.publish(key, temp, move=True)
            if tested is not None:
                atomic.write_bytes(stored.path.with_name(stored.path.name + LOAD_TEST_SUFFIX),
                                   tested)
            self._record(key, digest, trusted, source)
        except OSError as exc:
            raise StoreError(f"cannot fetch {key.relpath} into the store: {exc}") from exc
        finally:
            for path in (temp, temp.with_name(temp.name + LOAD_TEST_SUFFIX)):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        checked = "sha256 as stated" if stated else "no sha256 stated"
        if isinstance(trusted, str):
            return f"{checked}, {described}, {trusted}"
        return (f"{checked}, {described}, signed by {trusted.signer!r} (index version "
                f"{trusted.version}, key {trusted.key_id[:12]})")

    def _tested(self, key: ArtifactKey, temp: Path, release: str, offer: Offer,
                source: Upstream, *, falcos: tuple[str, ...] = ()) -> bytes | None:
        """The load-test result to keep beside the fetched artifact: this host's own test
        (same policy as a build: ``ArtifactRejected`` when it keeps the file out), or, when
        it could not run here, the result of the host that ran it (its index's ``loadTest``,
        marked ``testedBy``). ``require_tested`` upstreams must state a passed one."""
        carried = load_test_outcome(offer.load_test)
        if source.require_tested and carried != "passed":
            raise ArtifactRejected(f"require_tested is set and its index states no passed "
                                   f"load test ({carried or 'none'})")
        own: dict[str, Any] | None = None
        if self.load_test is not None:
            try:
                self.load_test(key, temp, release, falcos)
            except StepFailed as exc:
                raise ArtifactRejected(f"its load test here refused it: {exc.reason}") from exc
            with contextlib.suppress(OSError, ValueError):
                own = json.loads(temp.with_name(temp.name + LOAD_TEST_SUFFIX).read_bytes())
        if (own is None or own.get("result") == "untested") and offer.load_test is not None:
            theirs = json.loads(offer.load_test)
            return json.dumps({**theirs, "testedBy": offer.upstream}, indent=2).encode()
        return json.dumps(own, indent=2).encode() if own is not None else None

    def _record(self, key: ArtifactKey, digest: str, trusted: trustindex.Covered | str,
                source: Upstream) -> None:
        """Keep the document it came in under (to pass on) and its version (against
        rollback), or mark it as come in by checksum."""
        root = self.store.root
        if isinstance(trusted, str):
            signedindex.mark(root, key.relpath, digest, source.name)
            log.warning("fetch.checksum_only", name=key.relpath, upstream=source.name)
            return
        signedindex.mark(root, key.relpath, digest, None)
        signedindex.keep(root, trusted)
        signedindex.remember(root, trustindex.versions(self.judgement(),
                                                       signedindex.seen(root)))


def _stated_digest(client: upstream.Client, url: str) -> str | None:
    """The digest a repository's ``<file>.sha256`` names, None if it has none; one that is
    there but names no digest refuses the file."""
    answer = client.get_small(url + SHA_SUFFIX, limit=SIDECAR_MAX)
    if answer.status in _ABSENT:
        return None
    if answer.status != 200:
        raise UpstreamError(f"GET {url}{SHA_SUFFIX} answered {answer.status}")
    digest = digest_in(answer.body)
    if digest is None:
        raise ArtifactRejected(f"{url}{SHA_SUFFIX} names no sha256")
    return digest


def _documents(connect: Connect, source: Upstream) -> list[Any]:
    """The signed documents ``source``'s ``/index.json`` carries; none when it has no index
    or cannot be reached (its bytes then need another carrier's document)."""
    url = source.url + survey.INDEX_PATH
    try:
        answer = connect(source).get_small(url, limit=MAX_INDEX_BYTES)
        if answer.status != 200:
            return []
        return trustindex.documents(answer.json(url))
    except (UpstreamError, ConfigError) as exc:
        log.info("fetch.no_signed_index", upstream=source.name, error=str(exc)[:200])
        return []
