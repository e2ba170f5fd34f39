"""Fetching from upstreams, end to end over real HTTP: the planner asks real servers (our own
driver server over a second store, nginx with basic auth in upstream's layout and no
sidecars, stand-ins that corrupt, hang or drop the connection), the plan says what it will
fetch from where, and the executor's real fetcher publishes only what verifies. Docker is
faked by our own engine Protocol; the builder by a recorder (no build may happen unless
the plan or a failed fetch says so). These upstreams are ``trust: checksum``: what is held
to a signed index is tests/apply/test_fetcher/test_signed_index.py's."""

from __future__ import annotations

import contextlib
import functools
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from reconciler import plan, runtime, settings
from reconciler.apply import executor, fetcher
from reconciler.builder import BuildOutcome, BuildRequest
from reconciler.desired.state import DesiredArtifact, DesiredState
from reconciler.edges import atomic
from reconciler.edges.http import upstream
from reconciler.edges.store.local import Store
from reconciler.edges.store.verifier import sha256_file
from reconciler.errors import ArtifactRejected
from reconciler.httpd import DriverServer, ServerConfig
from reconciler.model import upstreams as fleet
from reconciler.model.artifacts import ArtifactKey, DriverKind
from reconciler.model.modsig import Signing
from reconciler.model.offers import Offer
from reconciler.model.upstreams import BuildPolicy, Trust, UpstreamKind
from reconciler.observe.state import ObservedState
from reconciler.plan import planner, render
from reconciler.plan.diff import Change, Op, Reason
from reconciler.testing import FakeEngine
from tests.conftest import GitRepo
from tests.support import upstreams as ups
from tests.support.falcohost import NAME, host_yaml

RELEASE = "5.10.0-14-cloud-amd64"
KMOD = ArtifactKey("2.0.0+driver", "x86_64", "debian", RELEASE, "1", DriverKind.KMOD)
EBPF = ArtifactKey("2.0.0+driver", "x86_64", "debian", RELEASE, "1", DriverKind.EBPF)
PROBE_BUILD = f"""apiVersion: falco-reconciler/v1
kind: DriverBuild
metadata: {{name: probe}}
spec:
  target: debian
  driverVersion: 2.0.0+driver
  kernelRelease: {RELEASE}
  kernelVersion: "1"
  architecture: amd64
  outputs: [ebpf]
"""
GOOD = {KMOD: ups.driver_bytes(KMOD), EBPF: ups.driver_bytes(EBPF)}


class Builds:
    """A builder that records what it was asked and builds nothing."""

    def __init__(self) -> None:
        self.requests: list[BuildRequest] = []

    def __call__(self, requests: Sequence[BuildRequest]) -> Sequence[BuildOutcome]:
        self.requests += requests
        return [BuildOutcome(r) for r in requests]

# Checksum-trusted upstreams: the checks below are what such an upstream is held to.
Upstream = functools.partial(fleet.Upstream, trust=Trust.CHECKSUM)


@dataclass
class Host:
    """This host (web-1, Falco 0.32.2 kmod, plus a probe build) and its store."""

    repo: GitRepo
    root: Path
    tmp: Path
    builds: Builds = field(default_factory=Builds)
    started: list[str] = field(default_factory=list)

    def make(self, upstreams: Sequence[Upstream],
                build: BuildPolicy = BuildPolicy.MISSING) -> runtime.Runtime:
        conf = settings.Settings(repo=str(self.repo.path), host_root=self.root,
                                 hostname="web-1", store=self.tmp / "store",
                                 state_dir=self.tmp / "state", upstreams=tuple(upstreams),
                                 build=build)
        return runtime.Runtime(conf, FakeEngine(), self.shared(conf))

    _shared: runtime.Shared | None = None

    def shared(self, conf: settings.Settings) -> runtime.Shared:
        if self._shared is None:
            self._shared = runtime.Shared.for_settings(conf)
        return self._shared

    def apply(self, rt: runtime.Runtime, planned: planner.Planned) -> list[executor.Outcome]:
        run = executor.Executor(
            rt.store, self.builds, self.start,
            lambda _c, _d: "loaded", fetch=fetcher.Fetcher(rt.store, rt.settings.upstreams).fetch,
            build_fallback=rt.settings.build is BuildPolicy.MISSING)
        return run.run(planned.plan, planned.desired)

    def start(self, change: Change, _desired: DesiredState) -> str:
        self.started.append(change.name)
        return "started"

    @property
    def store(self) -> Store:
        return Store(self.tmp / "store")


@pytest.fixture
def host(git_repo: GitRepo, make_host_root: Any, tmp_path: Path) -> Host:
    git_repo.commit({"web.yaml": host_yaml(image="docker.io/falcosecurity/falco"),
                     "probe.yaml": PROBE_BUILD})
    return Host(git_repo, make_host_root(), tmp_path)


@contextlib.contextmanager
def reconciler_upstream(root: Path, contents: dict[ArtifactKey, bytes]) -> Iterator[str]:
    """Our own driver server over a second store holding ``contents``."""
    store = Store(root)
    for key, data in contents.items():
        source = root.parent / f"source-{key.filename}"
        source.write_bytes(data)
        store.publish(key, source)
    with DriverServer(store, ("127.0.0.1", 0),
                      config=ServerConfig(workers=4, host_arch="x86_64")) as running:
        yield running.url


def drivers(planned: planner.Planned) -> dict[str, tuple[Op, Reason, str | None]]:
    return {c.name: (c.op, c.reason, c.source) for c in planned.plan.changes
            if c.artifact is not None and c.kind.value == "driver"}


def partials(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if atomic.is_partial(p.name)]


def test_a_reconciler_upstream_is_planned_fetched_verified_and_kept(
        host: Host, tmp_path: Path) -> None:
    with reconciler_upstream(tmp_path / "b", GOOD) as url:
        name = Upstream(url).name
        rt = host.make([Upstream(url, UpstreamKind.RECONCILER)])
        planned = rt.planner().plan()
        assert drivers(planned) == {KMOD.relpath: (Op.FETCH, Reason.MISSING, name),
                                    EBPF.relpath: (Op.FETCH, Reason.MISSING, name)}
        changes = json.loads(render.as_json(planned.plan))["changes"]
        kmod = next(c for c in changes if c["name"] == KMOD.relpath)
        assert (kmod["op"], kmod["from"], kmod["trust"]) == ("fetch", name, "checksum")
        assert kmod["reason"].startswith("missing from the store: ")
        assert re.search(rf"\+ fetch +{re.escape(KMOD.relpath)} from {name} \(trust: "
                         r"checksum, no signature\)\n", render.as_text(planned.plan))
        outcomes = host.apply(rt, planned)
    results = {o.change.name: (o.result.value, o.message) for o in outcomes}
    assert results[KMOD.relpath][0] == "ok"
    assert results[KMOD.relpath][1].startswith(f"fetched from {name}, verified: sha256 as "
                                               f"stated, kernel module, vermagic '{RELEASE}")
    assert "eBPF object" in results[EBPF.relpath][1]
    assert host.builds.requests == []
    assert host.started == [NAME]  # Falco starts after its driver arrived
    for key, data in GOOD.items():
        found = host.store.lookup(key)
        assert found is not None
        assert found.sha256 == sha256_file(found.path) == ups.sha256(data)
    assert partials(tmp_path / "store") == []
    # The upstream is gone now: what was fetched stays, and nothing is planned for it.
    again = host.make([Upstream(url, UpstreamKind.RECONCILER)]).planner().plan()
    assert drivers(again) == {}


class Recording(upstream.Client):
    answers: list[int] = []  # noqa: RUF012 - one list per test run, reset by the test

    def get_small(self, url: str, *, limit: int, etag: str | None = None) -> upstream.Reply:
        answer = super().get_small(url, limit=limit, etag=etag)
        Recording.answers.append(answer.status)
        return answer


def test_the_index_is_read_once_a_pass_and_then_only_if_it_changed(
        host: Host, tmp_path: Path) -> None:
    Recording.answers = []
    with reconciler_upstream(tmp_path / "b", {KMOD: GOOD[KMOD]}) as url:
        rt = host.make([Upstream(url, UpstreamKind.RECONCILER)])
        for _ in range(2):
            found = planner.Planner(rt.settings, runtime.observation(
                rt.settings, rt.engine, rt.store, rt.shared.indexes, connect=Recording),
                rt.shared.manifests).plan()
            assert drivers(found)[KMOD.relpath][0] is Op.FETCH
            assert drivers(found)[EBPF.relpath][0] is Op.BUILD  # the upstream lacks it
    assert Recording.answers == [200, 304]


@contextlib.contextmanager
def mirror(tmp_path: Path, contents: dict[ArtifactKey, bytes]) -> Iterator[fleet.Upstream]:
    """nginx with basic auth over upstream's layout, no sidecars: a corporate mirror."""
    root = tmp_path / "mirror"
    for key, data in contents.items():
        path = root / key.relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    users = tmp_path / "users"
    users.write_text(ups.htpasswd_line("fleet", "pa55"))
    auth = tmp_path / "mirror-auth"
    auth.write_text("fleet:pa55\n")
    with ups.nginx(root, tmp_path / "nginx", users) as url:
        yield Upstream(url, basic_auth_file=auth)


def test_a_wrong_file_is_refused_and_the_next_upstream_used(host: Host, tmp_path: Path) -> None:
    # A repository whose sidecars are right but whose bodies are corrupted, and one whose
    # module is for another kernel; then the mirror with the real thing.
    sums = {k.url_path() + ".sha256": f"{ups.sha256(d)}  {k.filename}\n".encode()
            for k, d in GOOD.items()}
    corrupt = ups.Behaviour(files={**ups.layout(GOOD), **sums}, corrupt=True)
    other = {KMOD: ups.driver_bytes(KMOD, release="6.1.0-9-amd64"), EBPF: GOOD[EBPF]}
    with (ups.hanging() as hang, ups.file_server(corrupt) as (bad, _seen),
          ups.file_server(ups.Behaviour(files=ups.layout(other))) as (wrong, _seen2),
          mirror(tmp_path, GOOD) as nginx):
        sources = [Upstream(hang, timeout=0.5), Upstream(bad), Upstream(wrong), nginx]
        rt = host.make(sources)
        planned = rt.planner().plan()
        assert drivers(planned)[KMOD.relpath] == (Op.FETCH, Reason.MISSING, Upstream(bad).name)
        assert any(n.startswith(f"upstream {Upstream(hang).name} not asked further")
                   and "no answer within 0.5 s" in n for n in planned.plan.notes)
        kmod = next(c for c in planned.plan.changes if c.name == KMOD.relpath)
        assert kmod.reason_text.endswith(f"then {Upstream(wrong).name}, {nginx.name}")
        outcomes = {o.change.name: o for o in host.apply(rt, planned)}
    message = outcomes[KMOD.relpath].message
    assert message.startswith(f"fetched from {nginx.name}, verified: no sha256 stated, "
                              "kernel module")
    assert f"{Upstream(bad).name}: its sha256 is " in message
    assert f"{Upstream(wrong).name}: not the driver asked for: vermagic '6.1.0-9-amd64" in message
    assert host.store.lookup(KMOD) is not None
    assert sha256_file(host.store.path_of(KMOD)) == ups.sha256(GOOD[KMOD])
    assert host.builds.requests == []
    assert partials(tmp_path / "store") == []


def test_a_dropped_download_is_resumed_into_the_store(host: Host) -> None:
    behaviour = ups.Behaviour(files=ups.layout(GOOD), cut_first=50_000)
    with ups.file_server(behaviour) as (url, seen):
        rt = host.make([Upstream(url)])
        outcomes = host.apply(rt, rt.planner().plan())
    assert [o.result.value for o in outcomes] == ["ok", "ok", "ok"]
    assert any(h.get("range") == "bytes=50000-" for _m, _p, h in seen.requests)
    assert sha256_file(host.store.path_of(KMOD)) == ups.sha256(GOOD[KMOD])


def test_with_every_upstream_down_the_plan_builds(host: Host) -> None:
    with ups.hanging() as hang:
        rt = host.make([Upstream(ups.refused()), Upstream(hang, timeout=0.5)])
        planned = rt.planner().plan()
    assert {v[0] for v in drivers(planned).values()} == {Op.BUILD}
    assert len([n for n in planned.plan.notes if "not asked further" in n]) == 2
    host.apply(rt, planned)
    assert len(host.builds.requests) == 1  # one kernel, both kinds


def test_build_never_reports_what_no_upstream_has_and_builds_nothing(host: Host) -> None:
    with ups.file_server(ups.Behaviour(files=ups.layout({EBPF: GOOD[EBPF]}))) as (url, _seen):
        rt = host.make([Upstream(url)], BuildPolicy.NEVER)
        planned = rt.planner().plan()
        assert drivers(planned) == {
            KMOD.relpath: (Op.BUILD, Reason.UNAVAILABLE, None),
            EBPF.relpath: (Op.FETCH, Reason.MISSING, Upstream(url).name)}
        assert "blocked: no upstream has it and this host does not build" in render.as_text(
            planned.plan)
        outcomes = {o.change.name: o for o in host.apply(rt, planned)}
    assert host.builds.requests == []
    assert outcomes[KMOD.relpath].result.value == "failed"
    assert outcomes[EBPF.relpath].result.value == "ok"
    assert outcomes[NAME].result.value == "skipped"  # its module is not there
    assert host.started == []


def test_build_never_with_its_upstream_down_is_blocked_for_now_and_retried(
        host: Host) -> None:
    """What a down upstream lacks is not known: blocked, but a transient failure, so the
    daemon retries it instead of waiting for a new revision."""
    down = Upstream(ups.refused())
    rt = host.make([down], BuildPolicy.NEVER)
    planned = rt.planner().plan()
    assert drivers(planned)[KMOD.relpath] == (Op.BUILD, Reason.UPSTREAM_DOWN, None)
    assert f"{down.name} not reachable; " in render.as_text(planned.plan)
    outcomes = {o.change.name: o for o in host.apply(rt, planned)}
    assert host.builds.requests == []
    assert (outcomes[KMOD.relpath].result.value, outcomes[KMOD.relpath].transient) == (
        "failed", True)
    assert outcomes[NAME].result.value == "skipped"


def test_build_always_never_asks_an_upstream(host: Host) -> None:
    with ups.file_server(ups.Behaviour(files=ups.layout(GOOD))) as (url, seen):
        rt = host.make([Upstream(url)], BuildPolicy.ALWAYS)
        planned = rt.planner().plan()
        host.apply(rt, planned)
    assert {v[0] for v in drivers(planned).values()} == {Op.BUILD}
    assert seen.requests == []
    assert len(host.builds.requests) == 1


@pytest.mark.parametrize("build", [BuildPolicy.MISSING, BuildPolicy.NEVER])
def test_a_fetch_that_fails_at_apply_falls_back_to_a_build_unless_never(
        host: Host, build: BuildPolicy) -> None:
    with ups.file_server(ups.Behaviour(files=ups.layout(GOOD))) as (url, seen):
        rt = host.make([Upstream(url)], build)
        planned = rt.planner().plan()
        seen.status = 503  # the upstream broke between plan and apply
        outcomes = {o.change.name: o for o in host.apply(rt, planned)}
    message = outcomes[KMOD.relpath].message
    if build is BuildPolicy.MISSING:
        assert outcomes[KMOD.relpath].result.value == "ok"
        assert message.startswith("fetch failed (no upstream gave a verified copy: ")
        assert message.endswith("503), built instead: built and published")
        assert [sorted(r.kinds) for r in host.builds.requests] == [
            [DriverKind.EBPF, DriverKind.KMOD]]
    else:
        assert outcomes[KMOD.relpath].result.value == "failed"
        assert message.endswith("this host does not build (build: never)")
        assert host.builds.requests == []


def test_an_index_that_states_a_misfit_is_not_offered(host: Host, tmp_path: Path) -> None:
    misfit = ups.driver_bytes(KMOD, identity=("8.0.3", "3.5.0"))  # 8.0.0's, not 2.0.0's
    with reconciler_upstream(tmp_path / "b", {KMOD: misfit}) as url:
        planned = host.make([Upstream(url, UpstreamKind.RECONCILER)]).planner().plan()
    assert drivers(planned)[KMOD.relpath][0] is Op.BUILD
    assert any("its index says driver version 2.0.0+driver requires" in n
               for n in planned.plan.notes)


def test_a_module_wanted_signed_is_never_fetched(host: Host) -> None:
    signed = DesiredArtifact(KMOD, ("Host/web",), signing=Signing("/k.pem", "/c.pem"))
    want = DesiredState(revision="r" * 40, hostname="web-1", host="web",
                        artifacts=(signed, DesiredArtifact(EBPF, ("probe",))), container=None)
    with ups.file_server(ups.Behaviour(files=ups.layout(GOOD))) as (url, seen):
        found = host.make([Upstream(url)]).planner().observe(want)
    assert [k for k, _offers in found.offers] == [EBPF]
    assert [(m, p) for m, p, _h in seen.requests] == [("HEAD", EBPF.url_path())]


def test_what_an_upstream_said_before_it_failed_still_counts(host: Host) -> None:
    behaviour = ups.Behaviour(files=ups.layout(GOOD), failing={KMOD.url_path(): 503})
    with ups.file_server(behaviour) as (url, seen):
        planned = host.make([Upstream(url)]).planner().plan()
    assert [p for _m, p, _h in seen.requests] == [EBPF.url_path(), KMOD.url_path()]
    assert drivers(planned)[EBPF.relpath][0] is Op.FETCH
    assert drivers(planned)[KMOD.relpath][0] is Op.BUILD
    assert any(n.endswith(f"HEAD {url}{KMOD.url_path()} answered 503") for n in planned.plan.notes)


@pytest.mark.parametrize(("vermagic", "accepted"), [
    ("5.10.0-14-cloud-amd64", True),  # the kernel's own uname -r
    ("5.10.113-1-cloud-amd64", False),  # the name Falco 0.35+ gives it is not its vermagic
])
def test_a_fetched_module_is_held_to_the_kernels_real_release(
        tmp_path: Path, vermagic: str, accepted: bool) -> None:
    key = ArtifactKey("5.0.1+driver", "x86_64", "debian", "5.10.113-1-cloud-amd64", "1",
                      DriverKind.KMOD)
    want = DesiredState(revision="r" * 40, hostname="web-1", host="web", container=None,
                        artifacts=(DesiredArtifact(key, ("Host/web",),
                                                   uname_release="5.10.0-14-cloud-amd64"),))
    store = Store(tmp_path / "store")
    with ups.file_server(ups.Behaviour(files=ups.layout(
            {key: ups.driver_bytes(key, release=vermagic)}))) as (url, _seen):
        source = Upstream(url)
        offers = ((key, (Offer(source.name, url + key.url_path()),)),)
        change, = plan.diff(want, ObservedState(offers=offers)).changes
        fetch = fetcher.Fetcher(store, (source,)).fetch
        if accepted:
            assert "vermagic '5.10.0-14-cloud-amd64 " in fetch(change, want)
        else:
            refused = re.escape("does not start with the kernel release 5.10.0-14-cloud-amd64")
            with pytest.raises(ArtifactRejected, match=refused):
                fetch(change, want)
    assert (store.lookup(key) is not None) is accepted
    assert partials(tmp_path / "store") == []


def _answer_with(body: bytes) -> Any:
    def answer(conn: Any) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    return answer


def test_one_bad_upstream_never_stops_a_pass(host: Host) -> None:
    """Issue 20.4: an index nested 100,000 deep (RecursionError before) and a repository
    that drips its files a byte every 0.2 s (minutes of reads, each within the timeout)
    are reported and skipped; the good upstream after them serves the whole pass."""
    deep = b"[" * 100_000 + b"]" * 100_000
    with (ups.raw_server(_answer_with(deep)) as (nested, _h1),
          ups.raw_server(ups.dripping(GOOD[KMOD])) as (drip, _h2),
          ups.file_server(ups.Behaviour(files=ups.layout(GOOD))) as (good, _seen)):
        rt = host.make([Upstream(nested, UpstreamKind.RECONCILER),
                        Upstream(drip, timeout=1, deadline=1), Upstream(good)])
        planned = rt.planner().plan()
        assert any(n.startswith(f"upstream {Upstream(nested).name} not asked further")
                   and "nested 100000 deep" in n for n in planned.plan.notes)
        assert drivers(planned)[KMOD.relpath] == (Op.FETCH, Reason.MISSING, Upstream(drip).name)
        outcomes = {o.change.name: o for o in host.apply(rt, planned)}
    assert {o.result.value for o in outcomes.values()} == {"ok"}
    message = outcomes[KMOD.relpath].message
    assert message.startswith(f"fetched from {Upstream(good).name}, verified")
    assert f"{Upstream(drip).name}: GET {drip}{KMOD.url_path()}: not done within its 1 s " \
           "deadline" in message
    assert sha256_file(host.store.path_of(KMOD)) == ups.sha256(GOOD[KMOD])
    assert host.started == [NAME]
    assert partials(host.tmp / "store") == []
