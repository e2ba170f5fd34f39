"""The planner over fakes of our own Protocols (no Docker needed): manifests are parsed
once per tree, and what the sources report reaches the plan. The first tests read a real
git repository and host root through the root's adapters; the last ones read nothing but
``observe.fakes``."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from reconciler import runtime, settings
from reconciler.edges.docker.fake import FakeEngine
from reconciler.loadtest import quarantine
from reconciler.loadtest.result import LoadTestResult, Outcome
from reconciler.manifests import loading
from reconciler.model import container
from reconciler.model.artifacts import ArtifactKey, DriverKind
from reconciler.model.buildrequests import Requested
from reconciler.model.offers import Offer
from reconciler.model.upstreams import BuildPolicy, Upstream
from reconciler.observe import fakes
from reconciler.observe.sources import Sources
from reconciler.plan import planner, render
from reconciler.plan.diff import Op
from tests.conftest import GitRepo
from tests.support.falcohost import host_yaml


@pytest.fixture
def made(git_repo: GitRepo, make_host_root: Any, tmp_path: Path) -> runtime.Runtime:
    git_repo.commit({"web.yaml": host_yaml(image="docker.io/falcosecurity/falco"),
                     "other.yaml": host_yaml(name="falco-other").replace("name: web", "name: other")
                     .replace("[web-*]", "[db-*]")})
    conf = settings.Settings(repo=str(git_repo.path), host_root=make_host_root(),
                             hostname="web-1", store=tmp_path / "store",
                             state_dir=tmp_path / "state")
    return runtime.Runtime(conf, FakeEngine(), runtime.Shared.for_settings(conf))


def counting_loads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    loads: list[int] = []
    real = loading.load

    def load(files: Any, memo: Any = None) -> Any:
        loads.append(len(files))
        return real(files, memo)

    monkeypatch.setattr(planner.loading, "load", load)
    return loads


def test_an_unchanged_revision_is_not_parsed_again(
    made: runtime.Runtime, monkeypatch: pytest.MonkeyPatch,
) -> None:
    loads = counting_loads(monkeypatch)
    first = made.planner().plan()
    second = made.planner().plan()
    assert loads == [2]
    assert second.plan == first.plan
    assert second.inputs.manifests is first.inputs.manifests


def test_a_new_tree_is_parsed_and_the_old_one_is_still_known(
    made: runtime.Runtime, git_repo: GitRepo, monkeypatch: pytest.MonkeyPatch,
) -> None:
    loads = counting_loads(monkeypatch)
    old = git_repo.git("rev-parse", "HEAD")
    made.planner().plan()
    git_repo.commit({"web.yaml": host_yaml(env={"A": "1"},
                                           image="docker.io/falcosecurity/falco")})
    changed = made.planner().plan()
    assert changed.desired.container is not None
    assert changed.desired.container.spec.env_dict["A"] == "1"
    back = made.planner(ref=old).plan()  # the last good revision, as the daemon plans it
    assert loads == [2, 2]
    assert back.inputs.revision == old


def test_a_one_file_push_parses_only_that_file(
    made: runtime.Runtime, git_repo: GitRepo, monkeypatch: pytest.MonkeyPatch,
) -> None:
    read: list[str] = []
    real = loading._FileReader.read

    def counting(self: Any, content: bytes, budget: int) -> Any:
        read.append(self.relpath)
        return real(self, content, budget)

    monkeypatch.setattr(loading._FileReader, "read", counting)
    made.planner().plan()
    assert sorted(read) == ["other.yaml", "web.yaml"]
    git_repo.commit({"web.yaml": host_yaml(env={"A": "2"},
                                           image="docker.io/falcosecurity/falco")})
    changed = made.planner().plan()
    assert read[2:] == ["web.yaml"]  # other.yaml came from the memo
    assert changed.desired.container is not None
    assert changed.desired.container.spec.env_dict["A"] == "2"
    assert changed.inputs.manifests.hosts[0].origin.file == "other.yaml"  # order kept


def test_a_fresh_host_plans_a_build_and_a_create_from_the_fake_engine(
    made: runtime.Runtime,
) -> None:
    planned = made.planner().plan()
    assert [(c.kind.value, c.op.value) for c in planned.plan.changes] == [
        ("driver", "build"), ("container", "create")]
    assert planned.observed.image is not None and planned.observed.image.local_id is None


def test_where_the_loader_names_no_driver_the_plan_says_so_and_builds_nothing(
    git_repo: GitRepo, make_host_root: Any, tmp_path: Path,
) -> None:
    """Falco 0.37's falcoctl leaves an Amazon Linux host without VERSION_ID undetermined:
    it would download nothing, so nothing is built and Falco is not started for it."""
    git_repo.commit({"web.yaml": host_yaml(version="0.37.1",
                                           image="docker.io/falcosecurity/falco")})
    root = make_host_root(os_release='ID="amzn"\nNAME="Amazon Linux"\n',
                          release="6.1.55-75.123.amzn2023.x86_64")
    conf = settings.Settings(repo=str(git_repo.path), host_root=root, hostname="web-1",
                             store=tmp_path / "store", state_dir=tmp_path / "state")
    planned = runtime.Runtime(conf, FakeEngine(), runtime.Shared.for_settings(conf)
                              ).planner().plan()
    assert planned.plan.changes == ()
    assert planned.desired.artifacts == ()
    (note,) = planned.plan.notes
    assert note.startswith("Falco 0.37.1's loader names no driver on this host (")
    assert note.endswith("): nothing is built for it, and Falco is left as it is")
    assert "undetermined" in note


def test_a_reconciler_acts_only_on_the_containers_of_its_own_host_name(
    git_repo: GitRepo, make_host_root: Any, tmp_path: Path,
) -> None:
    """On an engine shared by reconcilers acting as different hosts (a lab, the tests),
    a host that no Host matches removes only the Falco it made, never another's; one
    without the label (made before labels named the host) still counts as its own."""
    git_repo.commit({"db.yaml": host_yaml(name="falco-db", image="docker.io/falcosecurity/falco")
                     .replace("[web-*]", "[db-*]")})
    engine = FakeEngine(images={"falco:x": "sha256:x"})
    for name, hostname in (("falco-mine", "build-1"), ("falco-other", "build-2"),
                           ("falco-old", None)):
        labels = {container.LABEL_MANAGED: "true"}
        if hostname:
            labels[container.LABEL_HOSTNAME] = hostname
        engine.start(engine.create(image="falco:x", name=name, labels=labels))
    conf = settings.Settings(repo=str(git_repo.path), host_root=make_host_root(),
                             hostname="build-1", store=tmp_path / "store",
                             state_dir=tmp_path / "state")
    planned = runtime.Runtime(conf, engine, runtime.Shared.for_settings(conf)).planner().plan()
    assert sorted((c.op.value, c.name) for c in planned.plan.changes) == [
        ("remove", "falco-mine"), ("remove", "falco-old")]


def test_a_quarantined_driver_reaches_the_plan_line_of_its_build(
    made: runtime.Runtime,
) -> None:
    """The gate's quarantine folder in the state dir (as the gate writes it) is read by the
    planner: the missing driver's build line says it was held back, and why."""
    first = made.planner().plan().plan
    (build,) = [c for c in first.changes if c.op.value == "build"]
    assert "held back" not in build.reason_text
    where = quarantine.folder(made.settings.state_dir) / build.name
    where.parent.mkdir(parents=True)
    where.with_name(where.name + ".loadtest.json").write_text(json.dumps(LoadTestResult(
        Outcome.FAILED, "kmod", ("Oops: general protection fault",)).to_json()))
    text = render.as_text(made.planner().plan().plan)
    assert "held back by its load test before: failed: Oops: general protection fault" in text


def test_the_root_fills_the_docker_socket_from_docker_host_unless_a_setting_names_it(
    made: runtime.Runtime, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/elsewhere/docker.sock")
    assert made.planner().settings.docker_socket == "/run/elsewhere/docker.sock"
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:2375")
    assert made.planner().settings.docker_socket == container.DOCKER_SOCKET
    named = runtime.Runtime(replace(made.settings, docker_socket="/run/named.sock"),
                            made.engine, made.shared)
    assert named.planner().settings.docker_socket == "/run/named.sock"


# -- over fakes of every source (observe.fakes): no git, no files, no engine ------------

def fake_planner(sources: Sources, **overrides: Any) -> planner.Planner:
    return planner.Planner(settings.Settings(**overrides), sources, planner.ManifestCache(),
                           clock=fakes.now)


def fleet(**files: str) -> fakes.FakeManifests:
    return fakes.FakeManifests({name: text.encode() for name, text in files.items()})


def test_the_planner_reads_everything_through_its_sources() -> None:
    """A fresh host from fakes alone: its module is built and Falco created; the files of
    an unchanged tree are read once; Falco mounts the engine socket the settings name."""
    manifests = fleet(**{"web.yaml": host_yaml()})
    sources = fakes.sources(manifests)
    made = fake_planner(sources, docker_socket="/run/engine/docker.sock")
    planned = made.plan()
    assert [(c.kind.value, c.op.value) for c in planned.plan.changes] == [
        ("driver", "build"), ("container", "create")]
    (wanted,) = planned.desired.artifacts
    assert wanted.key.kernel_release == fakes.facts().kernel_release
    assert planned.desired.container is not None
    assert any(m.source == "/run/engine/docker.sock"
               for m in planned.desired.container.spec.mounts)
    made.plan()
    assert manifests.reads == 1


def test_a_commit_read_before_asks_git_nothing_a_branch_always_does() -> None:
    """The daemon pins each pass to a commit id: once that commit's tree is known, its
    manifests are taken from the cache (a commit never changes). A branch name can move,
    so it is looked up every time."""
    manifests = fleet(**{"web.yaml": host_yaml()})
    pinned = fake_planner(fakes.sources(manifests), ref=manifests.revision)
    assert pinned.plan().inputs.revision == pinned.plan().inputs.revision == manifests.revision
    assert manifests.snapshots == 1
    moving = fake_planner(fakes.sources(manifests), ref="main")
    moving.plan()
    moving.plan()
    assert manifests.snapshots == 3


def test_the_stores_verdicts_and_the_upstreams_offers_reach_the_plan() -> None:
    first = fake_planner(fakes.sources(fleet(**{"web.yaml": host_yaml()}))).plan()
    (key,) = (a.key for a in first.desired.artifacts)
    offer = Offer("mirror", "http://127.0.0.1:9/" + key.url_path())
    upstreams = fakes.FakeUpstreams({key: (offer,)})
    mirror = (Upstream("http://127.0.0.1:9"),)
    sources = fakes.sources(fleet(**{"web.yaml": host_yaml()}), upstreams=upstreams)
    fetching = fake_planner(sources, upstreams=mirror).plan()
    assert fetching.plan.changes[0].op is Op.FETCH
    always = fake_planner(sources, upstreams=mirror, build=BuildPolicy.ALWAYS).plan()
    assert always.plan.changes[0].op is Op.BUILD
    assert upstreams.asked == [(key,)]  # a host that always builds asks nobody

    store = fakes.FakeStore({key: fakes.stored_artifact(key)})
    present = fake_planner(fakes.sources(fleet(**{"web.yaml": host_yaml()}), store=store)).plan()
    assert [(c.kind.value, c.op.value) for c in present.plan.changes] == [
        ("container", "create")]


def test_remembering_a_plan_writes_what_retention_saw_to_the_ledger() -> None:
    stray = ArtifactKey("1.0.0+driver", "x86_64", "debian", "4.19.0-1-amd64", "1",
                        DriverKind.KMOD)
    ledger = fakes.FakeLedger()
    sources = fakes.sources(fleet(**{"web.yaml": host_yaml()}), ledger=ledger,
                            store=fakes.FakeStore({stray: fakes.stored_artifact(stray)}))
    planned = fake_planner(sources).plan()
    assert ledger.writes == 0  # planning changes nothing
    planned.remember()
    assert ledger.writes == 1
    assert dict(ledger.book.unwanted_since) == {stray.relpath: fakes.now()}


def test_newest_kernel_and_build_requests_come_from_the_apt_lists_and_the_queue() -> None:
    build = (
        "apiVersion: falco-reconciler/v1\nkind: DriverBuild\nmetadata: {name: newest}\n"
        "spec:\n  target: debian\n  driverVersion: 8.0.0+driver\n"
        "  newestKernel: 6.1.0-*-cloud-amd64\n")
    requested = ArtifactKey("7.0.0+driver", "x86_64", "debian", "6.1.0-9-amd64", "1",
                            DriverKind.KMOD)
    sources = fakes.sources(
        fleet(**{"web.yaml": host_yaml(), "build.yaml": build}),
        apt=fakes.FakeApt({"6.1.0-*-cloud-amd64": "6.1.0-31-cloud-amd64"}),
        queue=fakes.FakeQueue(((Requested(requested), ("db-1",)),)))
    want = fake_planner(sources, accept_build_requests=True).plan().desired
    releases = {a.key.kernel_release for a in want.artifacts}
    assert {"6.1.0-31-cloud-amd64", "6.1.0-9-amd64"} <= releases
