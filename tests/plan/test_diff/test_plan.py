"""The pure diff: desired vs observed -> the plan, and its JSON contract."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from reconciler import plan
from reconciler.desired.state import (
    DesiredArtifact,
    DesiredContainer,
    DesiredState,
    container_spec,
)
from reconciler.edges.store.local import Store
from reconciler.manifests.models import DriverMode, FalcoSpec, PullPolicy
from reconciler.model import container
from reconciler.model.artifacts import ArtifactKey, DriverKind
from reconciler.model.observations import LoadedModule, ObservedContainer, ObservedImage
from reconciler.model.offers import Offer
from reconciler.observe.state import ObservedState
from reconciler.plan import render
from tests.support.elf import make_elf

KEY = ArtifactKey("2.0.0+driver", "x86_64", "debian", "5.10.0-14-cloud-amd64", "1",
                  DriverKind.KMOD)
OTHER = ArtifactKey("2.0.0+driver", "x86_64", "debian", "5.10.0-13-cloud-amd64", "1",
                    DriverKind.KMOD)
SPEC = container_spec(FalcoSpec(version="0.32.2"), drivers_url="http://127.0.0.1:8000",
                          driver_relpath=KEY.relpath)


def desired(*, artifacts: tuple[ArtifactKey, ...] = (KEY,), with_container: bool = True,
            spec: container.ContainerSpec = SPEC) -> DesiredState:
    return DesiredState(
        revision="a" * 40, hostname="web-1", host="web" if with_container else None,
        artifacts=tuple(DesiredArtifact(k, ("Host/web (running kernel)",)) for k in artifacts),
        container=DesiredContainer(spec, "web", "0.32.2", DriverMode.KMOD, KEY,
                                   "http://127.0.0.1:8000")
        if with_container else None,
    )


def ours(spec: container.ContainerSpec = SPEC, status: str = "running", *, name: str | None = None,
         exit_code: int | None = 0) -> ObservedContainer:
    return ObservedContainer(
        id="c" * 64, name=name or spec.name, image=spec.image, status=status,
        labels=tuple(spec.labels(revision="b" * 40, host="web").items()),
        env=(*spec.env, ("PATH", "/usr/bin")), exit_code=exit_code,
    )


def ops(p: plan.Plan) -> list[tuple[str, str, str]]:
    return [(c.kind.value, c.op.value, c.name) for c in p.changes]


def test_fresh_host_builds_its_driver_then_creates_falco() -> None:
    got = plan.diff(desired(), ObservedState())
    assert ops(got) == [("driver", "build", KEY.relpath), ("container", "create", "falco")]
    assert got.changes[0].reason is plan.Reason.MISSING


def test_json_has_exactly_the_contract_fields() -> None:
    doc = json.loads(render.as_json(plan.diff(desired(), ObservedState())))
    assert set(doc) == {"revision", "host", "changes"}
    assert doc["revision"] == "a" * 40
    assert doc["host"] == "web-1"
    assert doc["changes"][0] == {
        "kind": "driver", "op": "build",
        "name": "2.0.0+driver/x86_64/falco_debian_5.10.0-14-cloud-amd64_1.ko",
        "reason": "missing from the store: Host/web (running kernel)",
    }
    for change in doc["changes"]:
        assert set(change) == {"kind", "op", "name", "reason"}


def test_converged_host_has_nothing_to_do() -> None:
    got = plan.diff(desired(), ObservedState(present=frozenset({KEY}), containers=(ours(),)))
    assert got.empty
    assert "No changes" in render.as_text(got)


def test_corrupt_wanted_artifact_is_rebuilt() -> None:
    got = plan.diff(desired(), ObservedState(corrupt=frozenset({KEY}), containers=(ours(),)))
    assert ops(got) == [("driver", "build", KEY.relpath)]
    assert got.changes[0].reason is plan.Reason.CORRUPT


def test_corrupt_unwanted_artifact_is_deleted_and_valid_unwanted_ones_are_kept() -> None:
    state = ObservedState(present=frozenset({KEY}), corrupt=frozenset({OTHER}),
                          containers=(ours(),))
    assert ops(plan.diff(desired(), state)) == [("driver", "delete", OTHER.relpath)]
    kept = ObservedState(present=frozenset({KEY, OTHER}), containers=(ours(),))
    assert plan.diff(desired(), kept).empty


@pytest.mark.parametrize(("status", "code", "detail"), [
    ("exited", 1, "exited (exit code 1)"), ("created", None, "created"),
    ("dead", None, "dead"), ("paused", None, "paused"),
])
def test_stopped_container_is_replaced(status: str, code: int | None, detail: str) -> None:
    got = plan.diff(desired(), ObservedState(present=frozenset({KEY}),
                                             containers=(ours(status=status, exit_code=code),)))
    assert ops(got) == [("container", "replace", "falco")]
    assert got.changes[0].reason_text == f"container is not running: {detail}"


def test_changed_env_in_the_manifest_replaces_the_container() -> None:
    new = container_spec(FalcoSpec(version="0.32.2", env={"A": "1"}),
                             drivers_url="http://127.0.0.1:8000", driver_relpath=KEY.relpath)
    got = plan.diff(desired(spec=new), ObservedState(present=frozenset({KEY}),
                                                     containers=(ours(),)))
    assert ops(got) == [("container", "replace", "falco")]
    assert got.changes[0].reason is plan.Reason.SPEC_CHANGED


def test_env_tampered_behind_our_back_is_seen_even_with_the_same_labels() -> None:
    tampered = ObservedContainer(
        id="c" * 64, name="falco", image=SPEC.image, status="running",
        labels=tuple(SPEC.labels(revision="b", host="web").items()),
        env=tuple((k, "http://elsewhere" if k == "DRIVERS_REPO" else v) for k, v in SPEC.env),
    )
    got = plan.diff(desired(), ObservedState(present=frozenset({KEY}), containers=(tampered,)))
    assert got.changes[0].reason_text == "container spec changed: env DRIVERS_REPO differs"


def test_foreign_container_with_our_name_needs_adoption() -> None:
    foreign = ObservedContainer(id="f" * 64, name="falco", image="falco:handmade",
                                status="running")
    state = ObservedState(present=frozenset({KEY}), containers=(foreign,))
    blocked = plan.diff(desired(), state)
    assert ops(blocked) == [("container", "replace", "falco")]
    assert blocked.changes[0].needs_adopt
    assert "adopt" in render.as_text(blocked)
    assert not plan.diff(desired(), state, adopt=True).changes[0].needs_adopt


def test_no_matching_host_removes_our_container_but_never_a_foreign_one() -> None:
    foreign = ObservedContainer(id="f" * 64, name="other", image="x", status="running")
    got = plan.diff(desired(with_container=False, artifacts=()),
                    ObservedState(containers=(ours(), foreign)))
    assert ops(got) == [("container", "remove", "falco")]
    assert got.changes[0].reason is plan.Reason.NO_HOST


def test_renamed_container_removes_the_old_one_and_creates_the_new() -> None:
    renamed = container_spec(FalcoSpec(version="0.32.2", containerName="falco-new"),
                                 drivers_url="http://127.0.0.1:8000", driver_relpath=KEY.relpath)
    got = plan.diff(desired(spec=renamed), ObservedState(present=frozenset({KEY}),
                                                         containers=(ours(),)))
    assert ops(got) == [("container", "remove", "falco"), ("container", "create", "falco-new")]


def test_builds_come_before_container_changes_and_deletions_last() -> None:
    got = plan.diff(desired(), ObservedState(corrupt=frozenset({OTHER})))
    assert [c.op for c in got.changes] == [plan.Op.BUILD, plan.Op.CREATE, plan.Op.DELETE]


def test_text_form_reads_like_terraform() -> None:
    text = render.as_text(plan.diff(desired(), ObservedState()))
    assert f"  + build   {KEY.relpath}" in text
    assert "  + create  container falco" in text
    assert text.rstrip().endswith("Plan: 1 to build, 1 to create.")


def test_text_form_on_a_terminal_is_coloured_like_terraform() -> None:
    got = plan.diff(desired(), ObservedState(present=frozenset({KEY}),
                                             containers=(ours(status="exited"),),
                                             corrupt=frozenset({OTHER})))
    text = render.as_text(got, colour=True)
    assert "\x1b[33m~ replace\x1b[0m  container falco" in text  # yellow: replaced
    assert f"\x1b[31m- delete \x1b[0m  {OTHER.relpath}" in text  # red: deleted
    build = render.as_text(plan.diff(desired(), ObservedState()), colour=True)
    assert f"\x1b[32m+ build \x1b[0m  {KEY.relpath}" in build  # green: added
    assert "\x1b[" not in render.as_text(got)  # off a terminal: plain text


def test_moved_tag_replaces_falco_only_with_pull_always() -> None:
    moved = ObservedImage(SPEC.image, local_id="sha256:old", remote_digest="sha256:new",
                          running_digests=(f"{SPEC.image}@sha256:old",))
    state = ObservedState(present=frozenset({KEY}), containers=(ours(),), image=moved)
    assert plan.diff(desired(), state).empty  # pull: missing never looks again
    base = desired()
    assert base.container is not None
    always = replace(base, container=replace(base.container, pull=PullPolicy.ALWAYS))
    got = plan.diff(always, state)
    assert ops(got) == [("container", "replace", "falco")]
    assert got.changes[0].reason_text == (
        "the image tag moved (pull: always): the registry now serves sha256:new")
    same = replace(moved, remote_digest="sha256:old")
    assert plan.diff(always, replace(state, image=same)).empty
    unknown = replace(moved, remote_digest=None)  # registry unreachable: keep what runs
    assert plan.diff(always, replace(state, image=unknown)).empty


def test_falco_040_gets_its_driver_loader_run_as_its_own_step_before_it_starts() -> None:
    spec = container_spec(FalcoSpec(version="0.40.0"), drivers_url="http://127.0.0.1:8000",
                          driver_relpath=KEY.relpath)
    want = DesiredState("r" * 40, "web-1", "web", (DesiredArtifact(KEY, ("Host/web",)),),
                        DesiredContainer(spec, "web", "0.40.0", DriverMode.KMOD, KEY,
                                         "http://127.0.0.1:8000"))
    made = plan.diff(want, ObservedState(present=frozenset({KEY})))
    assert [(c.op.value, c.name) for c in made.changes] == [
        ("create", "falco-driver-loader"), ("create", "falco")]
    assert made.changes[0].to_json()["reason"] == (
        "the driver loader runs to completion before Falco (re)starts: "
        "docker.io/falcosecurity/falco-driver-loader:0.40.0 kmod --download loads "
        f"{KEY.relpath} from our server")


@pytest.mark.parametrize(("loaded", "in_file", "swap"), [
    ("0.20.0", "0.20.0", False),  # a Debian package's build: its libs release, both sides
    ("2.0.0+driver", "0.20.0", True),  # another module is loaded than the one we serve
    ("2.0.0+driver", None, False),  # the file declares none: the folder's driver version
    ("1.0.0+driver", None, True),
])
def test_a_preloaded_module_is_compared_with_what_the_stored_file_declares(
    loaded: str, in_file: str | None, swap: bool,
) -> None:
    want = desired()
    assert want.container is not None
    preloaded = replace(want, container=replace(want.container, mode=DriverMode.KMOD_PRELOADED))
    seen = ObservedState(present=frozenset({KEY}), module=LoadedModule("falco", loaded),
                         module_file_version=in_file)
    changes = [c for c in plan.diff(preloaded, seen).changes
               if c.reason is plan.Reason.MODULE_MISMATCH]
    assert bool(changes) is swap
    if swap:
        wanted = in_file or KEY.driver_version
        assert changes[0].detail == f"falco {loaded} is loaded, want {wanted}"


def test_the_store_reads_the_version_a_module_declares(tmp_path: Path) -> None:
    drivers = Store(tmp_path / "store")
    body = b"vermagic=5.10.0-14-cloud-amd64 SMP mod_unload \0name=falco\0version=0.20.0\0"
    staged = tmp_path / "m.ko"
    staged.write_bytes(make_elf(62, {".text": b"\x90", ".modinfo": body}))
    drivers.publish(KEY, staged)
    assert drivers.module_version(KEY) == "0.20.0"
    assert drivers.module_version(OTHER) is None  # absent


def test_a_driver_the_load_test_held_back_says_so_and_why_in_its_plan_line() -> None:
    """The quarantined driver is still wanted and missing: the build is planned again (a
    new kernel package or source may pass), and its line says what the last test found."""
    why = "failed: insmod: disagrees about version of symbol module_layout (VM log /l.vm.log)"
    got = plan.diff(desired(), ObservedState(held_back=((KEY, why),)))
    assert ops(got)[0] == ("driver", "build", KEY.relpath)
    text = render.as_text(got)
    assert (f"missing from the store: Host/web (running kernel); held back by its load test "
            f"before: {why}") in text


PERF = ("the probe passed the verifier, but scap-open could not start a capture: unable to "
        "mmap the perf-buffer for cpu '0': Cannot allocate memory")


def test_a_driver_its_falcos_userspace_cannot_read_is_its_own_warning_line() -> None:
    """The stored probe's test says ``loaded`` with libscap 0.20.0: a Host on Falco 0.40
    (libs 0.20.0) gets the warning as a plan note; Falco 0.42 (libs 0.22, fixed) does not."""
    probe = KEY._replace(kind=DriverKind.EBPF)

    def note(falco: str) -> list[str]:
        spec = container_spec(FalcoSpec(version=falco), drivers_url="http://127.0.0.1:8000",
                              driver_relpath=probe.relpath)
        want = DesiredState(
            revision="a" * 40, hostname="web-1", host="web",
            artifacts=(DesiredArtifact(probe, ("Host/web (running kernel)",)),),
            container=DesiredContainer(spec, "web", falco, DriverMode.EBPF, probe,
                                       "http://127.0.0.1:8000"))
        seen = ObservedState(present=frozenset({probe}),
                             unreadable=((probe, "0.20.0", (PERF,)),))
        return [n for n in plan.diff(want, seen).notes if "userspace" in n]

    assert note("0.40.0") == [
        f"warning: {probe.relpath}: the driver loads; Falco 0.40.0's userspace cannot read it "
        f"on this kernel: {PERF} (tested with libs 0.20.0)"]
    assert note("0.42.0") == []


UBUNTU = ArtifactKey("2.0.0+driver", "x86_64", "ubuntu-generic", "5.15.0-86-generic", "96",
                     DriverKind.KMOD)


def test_a_kernel_without_a_header_source_is_planned_as_unbuildable_with_the_way_out() -> None:
    state = desired(artifacts=(UBUNTU,), with_container=False)
    (change,) = plan.diff(state, ObservedState()).changes
    assert (change.op, change.reason) == (plan.Op.BUILD, plan.Reason.NO_HEADERS)
    assert change.reason_text.startswith(
        "cannot be built: no source of this kernel's headers: a ubuntu-generic kernel's "
        "headers are found only through kernelUrls")
    assert "5.15.0-86-generic in a DriverBuild's kernelUrls" in change.reason_text
    # A host that does not build does not ask a build host for it either: none could.
    assert plan.requests_instead(plan.diff(state, ObservedState())).changes == (change,)


def test_with_kernel_urls_or_an_upstream_that_has_it_the_same_kernel_is_fine() -> None:
    urls = DesiredState(revision="a" * 40, hostname="web-1", host=None, container=None, artifacts=(
        DesiredArtifact(UBUNTU, ("DriverBuild/u",), ("https://mirror.example/h.deb",)),))
    (change,) = plan.diff(urls, ObservedState()).changes
    assert (change.op, change.reason) == (plan.Op.BUILD, plan.Reason.MISSING)
    offer = Offer("https://builds.example", "https://builds.example/x.ko", "0" * 64, None)
    fetched = plan.diff(desired(artifacts=(UBUNTU,), with_container=False),
                        ObservedState(offers=((UBUNTU, (offer,)),)))
    assert fetched.changes[0].op is plan.Op.FETCH
