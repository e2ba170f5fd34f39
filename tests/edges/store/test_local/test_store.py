"""The driver store: one definition of a verified artifact, shared by the plan and the
server; containment of every key; atomic publishing; what its reading means to a plan
(``observe.stored.classify`` over ``Store.read``, on real files)."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from reconciler import plan
from reconciler.apply import executor
from reconciler.desired.state import DesiredArtifact, DesiredState
from reconciler.edges import atomic
from reconciler.edges.store import local as stores
from reconciler.errors import StoreError
from reconciler.httpd.files import StoreFiles
from reconciler.httpd.server import DriverServer
from reconciler.model.artifacts import ArtifactKey, DriverKind
from reconciler.observe import stored
from reconciler.observe.state import from_parts
from tests.support import elf

KEY = ArtifactKey("2.0.0+driver", "x86_64", "debian", "5.10.0-14-cloud-amd64", "1",
                  DriverKind.KMOD)


def publish(store: stores.Store, key: ArtifactKey, data: bytes = b"\x7fELF module") -> Path:
    source = store.root.parent / f"built-{key.filename}"
    source.write_bytes(data)
    return store.publish(key, source).path


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_published_artifact_verifies_and_has_its_sidecar(tmp_path: Path) -> None:
    drivers = stores.Store(tmp_path / "store")
    path = publish(drivers, KEY)
    found = drivers.lookup(KEY)
    assert found is not None and found.path == path and found.size == len(b"\x7fELF module")
    sidecar = path.with_name(path.name + ".sha256").read_text()
    assert sidecar == f"{found.sha256}  {path.name}\n"
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name, path.name + ".sha256"]


def test_a_tampered_artifact_is_absent_and_observed_as_corrupt(tmp_path: Path) -> None:
    drivers = stores.Store(tmp_path / "store")
    path = publish(drivers, KEY)
    path.write_bytes(b"tampered")
    assert drivers.lookup(KEY) is None
    held = stored.classify(drivers.read([KEY]))
    assert (held.present, held.corrupt, held.unsafe) == (frozenset(), frozenset({KEY}), ())


def test_a_symlinked_folder_inside_the_store_is_refused_by_store_and_server_alike(
    tmp_path: Path,
) -> None:
    """The store's folder for the driver version is a symlink to a real folder that holds
    a valid artifact. The store does not follow it, the server does not serve it, and the
    plan says why (blocked), so nothing retries forever."""
    drivers = stores.Store(tmp_path / "store")
    other = ArtifactKey("2.0.0-real", KEY.arch, KEY.target, KEY.kernel_release,
                        KEY.kernel_version, KEY.kind)
    publish(drivers, other)
    (drivers.root / KEY.driver_version).symlink_to(drivers.root / other.driver_version)
    assert (drivers.root / KEY.relpath).is_file()  # reachable by following the link

    assert drivers.lookup(KEY) is None
    assert drivers.unsafe_folder(KEY) == KEY.driver_version
    with DriverServer(drivers, ("127.0.0.1", 0)) as server:
        assert status(server.url + KEY.url_path()) == 404
        assert status(server.url + other.url_path()) == 200
    held = stored.classify(drivers.read([KEY]))
    assert held.unsafe == ((KEY, KEY.driver_version),) and held.corrupt == frozenset()

    want = DesiredState("r" * 40, "web-1", None, (DesiredArtifact(KEY, ("DriverBuild/x",)),),
                        None)
    made = plan.diff(want, from_parts(held.present, held.corrupt, (), unsafe=held.unsafe))
    (change,) = made.changes
    assert (change.op, change.reason) == (plan.Op.BUILD, plan.Reason.UNSAFE_PATH)
    assert change.reason_text == (
        "blocked: a store folder on its path is a symlink, never followed: "
        "2.0.0+driver/ in the store; remove it")

    built: list[object] = []
    run = executor.Executor(drivers, lambda requests: built.extend(requests) or (),
                            lambda _c, _d: "", lambda _c, _d: "")
    (outcome,) = run.run(made, want)
    assert (outcome.result, outcome.transient) == (executor.OutcomeResult.FAILED, False)
    assert built == []  # no build that could never be served
    with pytest.raises(StoreError, match="is a symlink or not a folder"):
        publish(drivers, KEY)


@pytest.mark.parametrize("part", ["..", ".", "a/b", "x\0y", ""])
@pytest.mark.parametrize("field", ["driver_version", "arch"])
def test_no_key_resolves_outside_the_store(tmp_path: Path, field: str, part: str) -> None:
    values = dict(KEY._asdict())
    values[field] = part
    key = ArtifactKey(values["driver_version"], values["arch"], values["target"],
                      values["kernel_release"], values["kernel_version"], values["kind"])
    drivers = stores.Store(tmp_path / "store")
    for use in (drivers.path_of, drivers.lookup, drivers.remove):
        with pytest.raises(StoreError, match="a part of its name would lead outside the store"):
            use(key)
    with pytest.raises(StoreError, match="would lead outside the store"):
        publish(drivers, key)
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize("release", ["../../../../tmp/pwn", "a/../../b"])
def test_a_release_with_slashes_cannot_name_a_file_outside(tmp_path: Path, release: str) -> None:
    key = ArtifactKey(KEY.driver_version, KEY.arch, KEY.target, release, "1", KEY.kind)
    with pytest.raises(StoreError, match="would lead outside the store"):
        stores.Store(tmp_path / "store").path_of(key)


def test_a_wanted_artifact_with_an_underscore_version_is_never_deleted_as_unwanted(
    tmp_path: Path,
) -> None:
    """minikube names its kernel version 1_1.26.0: its file name splits differently when
    parsed back, and it must still count as the wanted artifact, not a stray."""
    key = ArtifactKey("3.0.1+driver", "x86_64", "minikube", "5.10.57", "1_1.26.0",
                      DriverKind.KMOD)
    drivers = stores.Store(tmp_path / "store")
    path = publish(drivers, key)
    path.with_name(path.name + ".sha256").unlink()
    held = stored.classify(drivers.read([key]))
    assert held.corrupt == frozenset({key})  # only as itself: rebuilt, not deleted
    want = DesiredState("r" * 40, "m", None, (DesiredArtifact(key, ("Host/m",)),), None)
    made = plan.diff(want, from_parts(held.present, held.corrupt, ()))
    assert [(c.op, c.name) for c in made.changes] == [(plan.Op.BUILD, key.relpath)]


def test_an_interrupted_publish_leaves_only_a_temp_file_that_clean_partials_removes(
    tmp_path: Path,
) -> None:
    drivers = stores.Store(tmp_path / "store")
    folder = drivers.root / KEY.driver_version / KEY.arch
    folder.mkdir(parents=True)
    with pytest.raises(RuntimeError), atomic.atomic_writer(folder / KEY.filename) as handle:
        handle.write(b"half")
        raise RuntimeError("killed")
    leftover = folder / f".{KEY.filename}{atomic.PARTIAL_MARK}dead"
    leftover.write_bytes(b"half")
    assert drivers.lookup(KEY) is None
    assert drivers.clean_partials() == 1
    assert os.listdir(folder) == []


# -- identity -------------------------------------------------------------------------

RELEASE = "6.1.0-1-cloud-amd64"
V8 = ArtifactKey("8.0.0+driver", "x86_64", "debian", RELEASE, "1", DriverKind.KMOD)
V8_PROBE = ArtifactKey("8.0.0+driver", "x86_64", "debian", RELEASE, "1", DriverKind.EBPF)


def test_an_artifact_carries_the_identity_read_from_the_file(tmp_path: Path) -> None:
    store = stores.Store(tmp_path / "store")
    publish(store, V8, elf.module_bytes(RELEASE, "8.0.3", "3.5.0"))
    publish(store, V8_PROBE, elf.make_elf(247, elf.probe_identity_sections("8.0.3", "3.5.0")))
    for key in (V8, V8_PROBE):
        found = store.lookup(key)
        assert found is not None
        assert str(found.identity) == "API 8.0.3 / schema 3.5.0"
    index = StoreFiles(store).index()
    assert [(e["kind"], e["apiVersion"], e["schemaVersion"]) for e in index] == [
        ("kmod", "8.0.3", "3.5.0"), ("ebpf", "8.0.3", "3.5.0")]


def test_a_file_without_a_readable_identity_shows_null_and_is_judged_by_checksum(
    tmp_path: Path,
) -> None:
    store = stores.Store(tmp_path / "store")
    publish(store, V8, b"\x7fELF not really a module")
    (entry,) = StoreFiles(store).index()
    assert (entry["apiVersion"], entry["schemaVersion"]) == (None, None)
    assert stored.classify(store.read([V8])).present == {V8}


def test_an_artifact_its_driver_version_refuses_is_corrupt_wanted_or_not(
    tmp_path: Path,
) -> None:
    """A module of API 8.0.3 / schema 3.5.0 published as 9.1.0+driver (which needs schema
    4.1.0) is corrupt: rebuilt when wanted, deleted when not; the same file under a
    version not in the table is not judged."""
    store = stores.Store(tmp_path / "store")
    wrong = ArtifactKey("9.1.0+driver", "x86_64", "debian", RELEASE, "1", DriverKind.KMOD)
    unknown = ArtifactKey("0.1.1-dkms", "x86_64", "debian", RELEASE, "1", DriverKind.KMOD)
    for key in (wrong, unknown, V8):
        publish(store, key, elf.module_bytes(RELEASE, "8.0.3", "3.5.0"))
    assert stored.misfit(store.lookup(wrong)) == (
        "driver version 9.1.0+driver requires API 8.0.4 / schema 4.1.0 (the same majors, "
        "minor.patch at least these), but the driver has API 8.0.3 / schema 3.5.0")
    wanted = stored.classify(store.read([wrong, V8]))
    assert (wanted.present, wanted.corrupt) == ({V8}, {wrong})
    unwanted = stored.classify(store.read([]))
    assert unwanted.corrupt == {wrong}
    assert StoreFiles(store).index()[0]["path"] == unknown.relpath  # still served and listed


def test_a_misfit_is_not_usable_so_a_build_replaces_it(tmp_path: Path) -> None:
    store = stores.Store(tmp_path / "store")
    wrong = ArtifactKey("9.1.0+driver", "x86_64", "debian", RELEASE, "1", DriverKind.KMOD)
    publish(store, wrong, elf.module_bytes(RELEASE, "8.0.3", "3.5.0"))
    found = store.lookup(wrong)
    assert found is not None and stored.misfit(found) is not None
    assert stored.usable(store.lookup(wrong)) is None
    publish(store, wrong, elf.module_bytes(RELEASE, "8.0.4", "4.1.0"))
    assert stored.usable(store.lookup(wrong)) is not None


def test_the_plan_says_a_misfit_is_rebuilt_for_its_identity_not_its_checksum(
    tmp_path: Path,
) -> None:
    store = stores.Store(tmp_path / "store")
    wrong = ArtifactKey("9.1.0+driver", "x86_64", "debian", RELEASE, "1", DriverKind.KMOD)
    publish(store, wrong, elf.module_bytes(RELEASE, "8.0.3", "3.5.0"))
    held = stored.classify(store.read([wrong]))
    assert held.misfits == ((wrong, stored.misfit(store.lookup(wrong))),)
    want = DesiredState("r" * 40, "web-1", None, (DesiredArtifact(wrong, ("Host/web",)),),
                        None)
    (change,) = plan.diff(want, from_parts(held.present, held.corrupt, (),
                                           misfits=held.misfits)).changes
    assert (change.op, change.reason) == (plan.Op.BUILD, plan.Reason.MISFIT)
    assert change.reason_text == (
        "its driver identity does not fit its driver version; rebuild: driver version "
        "9.1.0+driver requires API 8.0.4 / schema 4.1.0 (the same majors, minor.patch at least "
        "these), but the driver has API 8.0.3 / schema 3.5.0; Host/web")
