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
  either carrying an identity its driver version accepts (and the one its index states).

What does not verify is discarded and the next offer tried; the outcome names every
refusal. What does is published like a build (``Store.publish``, our own ``.sha256``
computed), so it stays when its upstream drops it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

from reconciler import logs
from reconciler.builder import verify
from reconciler.desired.state import DesiredState
from reconciler.edges import atomic
from reconciler.edges.http import upstream
from reconciler.edges.store.local import Store
from reconciler.edges.store.opener import SHA_SUFFIX, SIDECAR_MAX
from reconciler.edges.store.verifier import digest_in, sha256_file
from reconciler.errors import (
    ArtifactRejected,
    ConfigError,
    InvalidDriver,
    StoreError,
    UpstreamError,
)
from reconciler.model.artifacts import ArtifactKey
from reconciler.model.offers import Offer
from reconciler.model.upstreams import Upstream
from reconciler.observe.survey import Connect
from reconciler.plan.diff import Change

log = logs.get(__name__)

_ABSENT = (403, 404, 410)


@dataclass(frozen=True)
class Fetcher:
    store: Store
    upstreams: Sequence[Upstream]
    connect: Connect = upstream.Client
    module_name: str = "falco"
    max_bytes: int = upstream.MAX_ARTIFACT_BYTES

    def fetch(self, change: Change, desired: DesiredState) -> str:
        """Fetch ``change``'s artifact from the first offer that verifies; raises
        ``UpstreamError`` (``ArtifactRejected`` when every upstream sent a wrong file)
        naming each refusal."""
        key = change.artifact
        assert key is not None
        wanted = desired.artifact(key)
        release = (wanted.uname_release if wanted else "") or key.kernel_release
        refused: list[str] = []
        rejected_only = True
        for offer in change.offers:
            try:
                described = self._one(key, offer, release)
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

    def _client(self, offer: Offer) -> upstream.Client:
        source = next((u for u in self.upstreams if u.name == offer.upstream), None)
        if source is None:
            raise UpstreamError(f"{offer.upstream} is no longer a configured upstream")
        try:
            return self.connect(source)
        except ConfigError as exc:
            raise UpstreamError(str(exc)) from exc

    def _one(self, key: ArtifactKey, offer: Offer, release: str) -> str:
        client = self._client(offer)
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
            self.store.publish(key, temp, move=True)
        except OSError as exc:
            raise StoreError(f"cannot fetch {key.relpath} into the store: {exc}") from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
        checked = "sha256 as stated" if stated else "no sha256 stated"
        return f"{checked}, {described}"


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
