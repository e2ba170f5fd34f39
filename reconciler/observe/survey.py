"""Which upstream has which missing artifact: the observe step's look at the upstreams.

Upstreams are asked in their configured order, each through its own client
(``edges.http.upstream``). A repository is asked with one ``HEAD`` per artifact at
``<url>/<driverVersion, URL-encoded>/<arch>/<file>``; a reconciler by its ``index.json``,
read once per pass and conditional on the ETag of the copy read last (``IndexCache``,
which outlives passes: an unchanged index costs a 304). An upstream that cannot be reached
(refused, timed out, an error status) is asked nothing more in this pass, so a hanging
one costs one timeout, and a note says why. The survey only finds offers; the fetch holds
the bytes to what they state.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from reconciler import logs
from reconciler.edges.http import upstream
from reconciler.errors import ConfigError, InvalidIndex, UpstreamDown, UpstreamError
from reconciler.model import versions
from reconciler.model.artifacts import ArtifactKey
from reconciler.model.offers import IndexEntry, Offer, load_test_outcome, parse_index
from reconciler.model.upstreams import Upstream, UpstreamKind

log = logs.get(__name__)

INDEX_PATH = "/index.json"
MAX_INDEX_BYTES = 64 << 20
_ABSENT = (403, 404, 410)  # what repositories (S3 among them) answer for a file they lack

Connect = Callable[[Upstream], upstream.Client]


@dataclass
class IndexCache:
    """The last index each reconciler upstream sent, with its ETag."""

    by_url: dict[str, tuple[str, dict[str, IndexEntry]]] = field(default_factory=dict)


@dataclass(frozen=True)
class Survey:
    # Each missing artifact some upstream has, with its offers in upstream order.
    offers: tuple[tuple[ArtifactKey, tuple[Offer, ...]], ...] = ()
    notes: tuple[str, ...] = ()
    # The upstreams that could not be asked to the end: what they lack is not known.
    down: tuple[str, ...] = ()


@dataclass(frozen=True)
class SurveyIndex:
    """The upstreams as the planner asks them (``observe.sources.UpstreamIndex``): each
    in order, through ``connect``, with the index cache that outlives passes."""

    upstreams: Sequence[Upstream]
    cache: IndexCache
    connect: Connect | None = None  # None: edges.http.upstream.Client

    def offers(self, missing: Sequence[ArtifactKey]) -> Survey:
        return survey(self.upstreams, missing, self.cache,
                      connect=self.connect or upstream.Client)


def survey(upstreams: Sequence[Upstream], keys: Iterable[ArtifactKey], cache: IndexCache,
           *, connect: Connect = upstream.Client) -> Survey:
    wanted = sorted(set(keys))
    if not wanted or not upstreams:
        return Survey()
    found: dict[ArtifactKey, list[Offer]] = {}
    notes: list[str] = []
    down: list[str] = []
    for source in upstreams:
        # Filled as answers come: what an upstream said before it went down still counts.
        offers: list[tuple[ArtifactKey, Offer]] = []
        try:
            client = connect(source)
            if source.kind is UpstreamKind.RECONCILER:
                offers = _from_index(client, wanted, cache, notes)
            else:
                _from_heads(client, wanted, notes, offers)
        except (UpstreamDown, UpstreamError, ConfigError) as exc:
            notes.append(f"upstream {source.name} not asked further: {exc}")
            down.append(source.name)
            log.warning("upstream.down", upstream=source.name, error=str(exc))
        for key, offer in offers:
            found.setdefault(key, []).append(dataclasses.replace(offer, trust=source.trust))
    return Survey(tuple((k, tuple(found[k])) for k in wanted if k in found), tuple(notes),
                  tuple(down))


def _from_heads(client: upstream.Client, keys: Sequence[ArtifactKey], notes: list[str],
                offers: list[tuple[ArtifactKey, Offer]]) -> None:
    name = client.upstream.name
    for key in keys:
        url = client.url(key.url_path())
        answer = client.head(url)
        if answer.status in _ABSENT:
            continue
        if answer.status != 200:
            raise UpstreamDown(f"HEAD {url} answered {answer.status}")
        size = answer.length
        if client.upstream.require_tested:
            notes.append(f"{key.relpath}: {name} has it, but a repository states no load "
                         "test and require_tested is set; not fetched")
            continue
        if size is not None and size > upstream.MAX_ARTIFACT_BYTES:
            notes.append(f"{key.relpath}: {name} has it with {size} bytes, over the "
                         f"{upstream.MAX_ARTIFACT_BYTES} an artifact may have; not fetched")
            continue
        offers.append((key, Offer(name, url, size=size)))


def _from_index(client: upstream.Client, keys: Sequence[ArtifactKey], cache: IndexCache,
                notes: list[str]) -> list[tuple[ArtifactKey, Offer]]:
    name = client.upstream.name
    url = client.url(INDEX_PATH)
    known = cache.by_url.get(url)
    answer = client.get_small(url, limit=MAX_INDEX_BYTES, etag=known[0] if known else None)
    if answer.status == 304 and known is not None:
        entries = known[1]
    elif answer.status == 200:
        try:
            entries = parse_index(answer.json(url))
        except InvalidIndex as exc:
            raise UpstreamDown(f"{url} is not a falco-reconciler index: {exc}") from exc
        etag = answer.header("ETag")
        if etag:
            cache.by_url[url] = (etag, entries)
    else:
        raise UpstreamDown(f"GET {url} answered {answer.status}")
    offers = []
    for key in keys:
        entry = entries.get(key.relpath)
        if entry is None:
            continue
        misfit = versions.identity_problem(key.driver_version, entry.identity) \
            if entry.identity else None
        if misfit is not None:
            notes.append(f"{key.relpath}: {name} has it, but its index says {misfit}")
            continue
        if entry.size > upstream.MAX_ARTIFACT_BYTES:
            notes.append(f"{key.relpath}: {name} has it with {entry.size} bytes, over the "
                         f"{upstream.MAX_ARTIFACT_BYTES} an artifact may have; not fetched")
            continue
        if client.upstream.require_tested and load_test_outcome(entry.load_test) != "passed":
            notes.append(f"{key.relpath}: {name} has it, but its index says no passed load "
                         f"test ({load_test_outcome(entry.load_test) or 'none'}) and "
                         "require_tested is set; not fetched")
            continue
        offers.append((key, Offer(name, client.url(entry.url_path), entry.sha256, entry.size,
                                  entry.identity, load_test=entry.load_test)))
    return offers
