"""The deploy order over the in-memory engine (our Protocol's fake): stop and set aside,
create, start, settle, then remove the old one; or roll back and say why."""

from __future__ import annotations

import http.server
import re
import threading
from pathlib import Path

import pytest

from reconciler import plan
from reconciler.apply import deploy
from reconciler.desired.state import DesiredContainer, DesiredState, container_spec
from reconciler.edges.store.local import Store
from reconciler.errors import DeployError, DriverNotServed, FalcoStartError
from reconciler.manifests.models import FalcoSpec
from reconciler.model import container
from reconciler.model.artifacts import ArtifactKey, DriverKind
from reconciler.model.modes import DriverMode
from reconciler.testing import Behaviour, FakeClock, FakeEngine, FakeProber
from tests.support import upstreams as ups

OLD, NEW = "falco:old", "docker.io/falcosecurity/falco:0.36.2"


def desired_for(spec: container.ContainerSpec) -> DesiredState:
    want = DesiredContainer(spec, "web", "0.36.2", DriverMode.MODERN_EBPF, None, "http://x")
    return DesiredState("r" * 40, "web-1", "web", (), want)


@pytest.fixture
def engine() -> FakeEngine:
    made = FakeEngine(images={OLD: "sha256:old", NEW: "sha256:new"})
    old = made.create(image=OLD, name="falco", labels={container.LABEL_MANAGED: "true"})
    made.start(old)
    return made


def replace_change(engine: FakeEngine) -> tuple[plan.Change, DesiredState]:
    spec = container_spec(FalcoSpec(version="0.36.2", driver=DriverMode.MODERN_EBPF),
                          drivers_url="http://x")
    old = engine.container("falco")
    assert old is not None
    change = plan.Change(plan.ChangeKind.CONTAINER, plan.Op.REPLACE, "falco",
                         plan.Reason.SPEC_CHANGED, spec=spec, replaces=old.id)
    return change, desired_for(spec)


def test_a_replace_stops_sets_aside_starts_settles_then_removes_the_old(
    engine: FakeEngine, tmp_path: Path,
) -> None:
    old = engine.container("falco")
    assert old is not None
    change, want = replace_change(engine)
    engine.calls.clear()
    deploy.FalcoDeployer(engine, Store(tmp_path), settle_seconds=0).apply(change, want)
    assert engine.calls == [
        ("stop", "falco"), ("rename", f"falco->{container.aside_name('falco', old.id)}"),
        ("create", "falco"), ("start", "falco"), ("remove", container.aside_name("falco", old.id)),
    ]
    now = engine.container("falco")
    assert now is not None and now.running and now.image == NEW
    assert engine.containers({}) == (now,)


def test_a_new_falco_that_exits_is_removed_and_the_old_one_put_back(
    engine: FakeEngine, tmp_path: Path,
) -> None:
    old = engine.container("falco")
    assert old is not None
    engine.behaviours[NEW] = Behaviour(exit_code=3, log="libscap: driver refused\n")
    change, want = replace_change(engine)
    with pytest.raises(FalcoStartError) as caught:
        deploy.FalcoDeployer(engine, Store(tmp_path), settle_seconds=0).apply(change, want)
    assert str(caught.value) == (
        "new Falco container falco exited with code 3; the previous container was put back. "
        "Last log lines:\nlibscap: driver refused")
    assert caught.value.restored  # what an alert reads as a rollback
    back = engine.container("falco")
    assert back is not None and back.id == old.id and back.running
    assert [c.name for c in engine.containers({})] == ["falco"]


LOADER = "docker.io/falcosecurity/falco-driver-loader:0.40.0"


def loader_change(tmp_path: Path, engine: FakeEngine) -> tuple[plan.Change, DesiredState, Path]:
    """A 0.40 kmod Falco, and a stale download of its driver in the shared /root/.falco."""
    key = ArtifactKey("8.0.0+driver", "x86_64", "debian", "6.1.0-57-cloud-amd64", "1",
                      DriverKind.KMOD)
    home = tmp_path / "host-root/root/.falco"
    stale = home / key.driver_version / key.arch / key.filename
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"a half-written download of another day")
    spec = container_spec(FalcoSpec(version="0.40.0"), drivers_url="http://x",
                          driver_relpath=key.relpath, falco_home=str(home))
    want = DesiredState("r" * 40, "web-1", "web", (),
                        DesiredContainer(spec, "web", "0.40.0", DriverMode.KMOD, key, "http://x"))
    change = plan.Change(plan.ChangeKind.CONTAINER, plan.Op.CREATE, "falco-driver-loader",
                         plan.Reason.LOADER_RUN, spec=spec, artifact=key)
    engine.images[LOADER] = "sha256:loader"
    return change, want, stale


def served(engine: FakeEngine, tmp_path: Path, change: plan.Change) -> deploy.FalcoDeployer:
    """The deployer with the change's driver in the store and our server answering 200 to
    any HEAD (the fake prober stands in for our server; its own tests are tests/httpd)."""
    store = Store(tmp_path / "store")
    assert change.artifact is not None
    built = tmp_path / "built.ko"
    built.write_bytes(b"a module, as far as the deploy logic cares")
    store.publish(change.artifact, built)
    return deploy.FalcoDeployer(engine, store, settle_seconds=0, prober=FakeProber(default=200))


def test_the_loader_runs_to_completion_after_the_stale_download_is_removed(
    engine: FakeEngine, tmp_path: Path,
) -> None:
    change, want, stale = loader_change(tmp_path, engine)
    engine.behaviours[LOADER] = Behaviour(exit_code=0, log="* Success: falco module found\n")
    said = served(engine, tmp_path, change).apply(change, want)
    assert said == f"{LOADER} loaded {change.spec.driver if change.spec else ''}"
    assert not stale.exists()
    assert engine.container("falco-driver-loader") is None  # a job: removed after
    assert ("start", "falco-driver-loader") in engine.calls


def test_a_loader_that_fails_says_why_with_its_last_lines(
    engine: FakeEngine, tmp_path: Path,
) -> None:
    change, want, _stale = loader_change(tmp_path, engine)
    engine.behaviours[LOADER] = Behaviour(exit_code=1, log="Error: unable to download\n")
    with pytest.raises(DeployError) as caught:
        served(engine, tmp_path, change).apply(change, want)
    assert str(caught.value) == (
        f"driver loader {LOADER} exited with code 1; Falco left as is. "
        "Last log lines:\nError: unable to download")
    assert engine.container("falco-driver-loader") is None
    old = engine.container("falco")
    assert old is not None and old.running  # the running Falco untouched


def kmod_replace(tmp_path: Path, engine: FakeEngine) -> tuple[plan.Change, DesiredState, str]:
    """A running Falco replaced by a 0.40 kmod Falco, whose loader has already run once."""
    loader, want, _stale = loader_change(tmp_path, engine)
    old = engine.container("falco")
    assert old is not None and loader.spec is not None
    engine.images[loader.spec.image] = "sha256:falco-0.40"
    change = plan.Change(plan.ChangeKind.CONTAINER, plan.Op.REPLACE, "falco",
                         plan.Reason.SPEC_CHANGED, spec=loader.spec, replaces=old.id,
                         artifact=loader.artifact)
    return change, want, old.id


def test_a_module_held_by_the_old_falco_is_loaded_again_once_it_stopped(
    engine: FakeEngine, tmp_path: Path,
) -> None:
    """The kernel cannot remove a module in use: the loader's first run, with the old
    Falco up, could not swap it, so it runs again between the stop and the new start."""
    change, want, old_id = kmod_replace(tmp_path, engine)
    engine.behaviours[LOADER] = Behaviour(exit_code=0, log="* Success\n")
    engine.calls.clear()
    served(engine, tmp_path, change).apply(change, want)
    aside = container.aside_name("falco", old_id)
    assert engine.calls == [
        ("stop", "falco"), ("rename", f"falco->{aside}"),
        ("create", "falco-driver-loader"), ("start", "falco-driver-loader"),
        ("remove", "falco-driver-loader"),
        ("create", "falco"), ("start", "falco"), ("remove", aside),
    ]


def test_a_second_loader_run_that_fails_puts_the_old_falco_back(
    engine: FakeEngine, tmp_path: Path,
) -> None:
    change, want, old_id = kmod_replace(tmp_path, engine)
    engine.behaviours[LOADER] = Behaviour(exit_code=1, log="Error: unable to insmod\n")
    with pytest.raises(DeployError) as caught:
        served(engine, tmp_path, change).apply(change, want)
    assert str(caught.value) == (
        f"driver loader {LOADER} exited with code 1 once the old Falco stopped; the previous "
        "container was put back. Last log lines:\nError: unable to insmod")
    back = engine.container("falco")
    assert back is not None and back.id == old_id and back.running


class _Healthz:
    """A loopback HTTP server standing in for Falco's web server: ``/healthz`` answers
    ``status`` (200 once Falco is ready); it records the paths it was asked for."""

    def __init__(self, status: int) -> None:
        outer = self
        self.status, self.asked = status, list[str]()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.asked.append(self.path)
                body = b'{"status": "ok"}' if outer.status == 200 else b"starting"
                self.send_response(outer.status if self.path == "/healthz" else 404)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: object) -> None:
                return None

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def healthz_change(engine: FakeEngine, port: int) -> tuple[plan.Change, DesiredState]:
    """A replace onto a bridge network, where Falco's /healthz is at its own address."""
    spec = container_spec(FalcoSpec(version="0.36.2", driver=DriverMode.MODERN_EBPF,
                                    network="falco-net"), drivers_url="http://x")
    old = engine.container("falco")
    assert old is not None
    change = plan.Change(plan.ChangeKind.CONTAINER, plan.Op.REPLACE, "falco",
                         plan.Reason.SPEC_CHANGED, spec=spec, replaces=old.id)
    want = DesiredContainer(spec, "web", "0.36.2", DriverMode.MODERN_EBPF, None, "http://x",
                            healthz_port=port)
    return change, DesiredState("r" * 40, "web-1", "web", (), want)


def test_a_restart_is_ready_when_falco_answers_healthz_at_its_address(
    engine: FakeEngine, tmp_path: Path,
) -> None:
    """With a web server, /healthz decides, not the settle time: an hour of settling is
    not waited for once Falco answers at its address on its network."""
    falco = _Healthz(200)
    try:
        engine.behaviours[NEW] = Behaviour(address="127.0.0.1")
        change, want = healthz_change(engine, falco.port)
        said = deploy.FalcoDeployer(engine, Store(tmp_path), settle_seconds=3600,
                                    confirm_seconds=0).apply(change, want)
    finally:
        falco.close()
    assert said.startswith("started ")
    assert falco.asked == ["/healthz"]


def test_a_falco_that_never_gets_ready_is_rolled_back(
    engine: FakeEngine, tmp_path: Path,
) -> None:
    old = engine.container("falco")
    assert old is not None
    falco = _Healthz(503)
    try:
        engine.behaviours[NEW] = Behaviour(address="127.0.0.1", log="loading rules\n")
        change, want = healthz_change(engine, falco.port)
        with pytest.raises(FalcoStartError) as caught:
            deploy.FalcoDeployer(engine, Store(tmp_path), settle_seconds=0,
                                 ready_timeout=0.5).apply(change, want)
    finally:
        falco.close()
    assert str(caught.value) == (
        f"new Falco container falco did not answer http://127.0.0.1:{falco.port}/healthz "
        "within 0.5 s; the previous container was put back. Last log lines:\nloading rules")
    assert falco.asked and set(falco.asked) == {"/healthz"}
    back = engine.container("falco")
    assert back is not None and back.id == old.id and back.running


def test_a_falco_with_no_address_yet_is_not_asked_and_times_out(
    engine: FakeEngine, tmp_path: Path,
) -> None:
    change, want = healthz_change(engine, 1)  # no address on falco-net: nothing to ask
    with pytest.raises(FalcoStartError, match=r"did not answer its /healthz within 0\.3 s"):
        deploy.FalcoDeployer(engine, Store(tmp_path), settle_seconds=0,
                             ready_timeout=0.3).apply(change, want)


# -- the served check and readiness, through the prober and clock seams -------------------


def test_the_loader_is_run_only_once_our_server_answers_for_its_exact_url(
    engine: FakeEngine, tmp_path: Path,
) -> None:
    """0.40 loaders ask under the arch folder: the HEAD goes where the loader will go."""
    change, want, _stale = loader_change(tmp_path, engine)
    engine.behaviours[LOADER] = Behaviour(exit_code=0)
    deployer = served(engine, tmp_path, change)
    deployer.apply(change, want)
    assert isinstance(deployer.prober, FakeProber)
    assert deployer.prober.asked == [
        ("HEAD", "http://x/8.0.0%2Bdriver/x86_64/falco_debian_6.1.0-57-cloud-amd64_1.ko")]


@pytest.mark.parametrize(("answers", "said"), [
    ({}, "the driver server does not serve http://x/8.0.0%2Bdriver/x86_64/"
         "falco_debian_6.1.0-57-cloud-amd64_1.ko: HEAD"),
    ({"default": 404}, "answered 404, not 200"),
])
def test_a_driver_our_server_does_not_serve_runs_nothing(
    engine: FakeEngine, tmp_path: Path, answers: dict[str, int], said: str,
) -> None:
    change, want, _stale = loader_change(tmp_path, engine)
    deployer = served(engine, tmp_path, change)
    deployer.prober = FakeProber(default=answers.get("default"))
    engine.calls.clear()
    with pytest.raises(DriverNotServed, match=re.escape(said)):
        deployer.apply(change, want)
    assert engine.calls == []  # neither the loader nor Falco touched


def test_a_driver_missing_from_the_store_is_not_asked_for(
    engine: FakeEngine, tmp_path: Path,
) -> None:
    change, want, _stale = loader_change(tmp_path, engine)
    prober = FakeProber(default=200)
    deployer = deploy.FalcoDeployer(engine, Store(tmp_path / "empty"), prober=prober)
    with pytest.raises(DriverNotServed, match="is not in the store"):
        deployer.apply(change, want)
    assert prober.asked == []


def test_falco_is_ready_at_its_first_200_and_asked_often_until_then(
    engine: FakeEngine, tmp_path: Path,
) -> None:
    """/healthz answers 503 twice, then 200: ready at the third ask, after two short waits
    of the clock, however long the settle time."""
    engine.behaviours[NEW] = Behaviour(address="10.0.0.7")
    change, want = healthz_change(engine, 8765)
    url = "http://10.0.0.7:8765/healthz"
    prober, clock = FakeProber({url: [503, 503, 200]}), FakeClock()
    deployer = deploy.FalcoDeployer(engine, Store(tmp_path), settle_seconds=3600,
                                    confirm_seconds=0, prober=prober, clock=clock)
    assert deployer.apply(change, want).startswith("started ")
    assert prober.asked == [("GET", url)] * 3
    assert clock.slept == [0.05, 0.05]


def test_a_falco_never_ready_is_rolled_back_when_the_ready_timeout_has_passed(
    engine: FakeEngine, tmp_path: Path,
) -> None:
    engine.behaviours[NEW] = Behaviour(address="10.0.0.7", log="loading rules\n")
    change, want = healthz_change(engine, 8765)
    clock = FakeClock()
    deployer = deploy.FalcoDeployer(engine, Store(tmp_path), settle_seconds=0,
                                    ready_timeout=60, prober=FakeProber(default=503),
                                    clock=clock)
    started = clock.monotonic()
    with pytest.raises(FalcoStartError, match=re.escape(
            "did not answer http://10.0.0.7:8765/healthz within 60 s; the previous container "
            "was put back")):
        deployer.apply(change, want)
    assert clock.monotonic() - started >= 60  # not before the timeout, by the clock
    assert clock.monotonic() - started < 61
    back = engine.container("falco")
    assert back is not None and back.image == OLD and back.running


def test_a_healthz_answering_garbage_is_not_ready_and_is_rolled_back(
    engine: FakeEngine, tmp_path: Path,
) -> None:
    """Before: http.client.BadStatusLine escaped the readiness check and crashed the pass.
    Now a port that answers something other than HTTP is simply not ready."""
    old = engine.container("falco")
    assert old is not None
    with ups.raw_server(ups.garbage) as (url, heads):
        engine.behaviours[NEW] = Behaviour(address="127.0.0.1")
        change, want = healthz_change(engine, int(url.rpartition(":")[2]))
        with pytest.raises(FalcoStartError, match=r"did not answer .*/healthz within 0\.5 s"):
            deploy.FalcoDeployer(engine, Store(tmp_path), settle_seconds=0,
                                 ready_timeout=0.5).apply(change, want)
    assert heads and all(h.startswith(b"GET /healthz ") for h in heads)
    back = engine.container("falco")
    assert back is not None and back.id == old.id and back.running
