"""A kernel its Falco names otherwise than ``uname -r`` (0.35+ on Debian): the build fetches
the headers of the real release and holds the module's vermagic to it, and publishes under
the name the loader asks for. The container steps are stood in for; headers' own apt step
runs with an engine stand-in that lays out the packages of the release it is asked for."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from reconciler.builder import runner, steps
from reconciler.edges.store.local import Store
from reconciler.model.artifacts import ArtifactKey, DriverKind, KernelId
from reconciler.testing import FakeToolchain
from tests.support.elf import module_bytes

UNAME_R = "6.1.0-57-cloud-amd64"
NAMED = "6.1.192-3-cloud-amd64"  # what falcoctl asks for, from uname -v's "Debian 6.1.192-3"
KERNEL = KernelId("debian", NAMED, "1", "x86_64")


@dataclass(frozen=True)
class Ran:
    exit_code: int = 0
    output: str = ""
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


class AptStandIn:
    """What ``headers-apt.sh`` leaves in ``/out``: the build tree of ``$RELEASE``."""

    def __init__(self) -> None:
        self.releases: list[str] = []

    def architecture(self) -> str:
        return "x86_64"

    def run(self, _image: str, _script: str, *, mounts: Any, environment: Any = None,
            **_: Any) -> Ran:
        release = environment["RELEASE"]
        self.releases.append(release)
        out = Path(next(m.source for m in mounts if m.target == "/out"))
        tree = out / "root/usr/src" / f"linux-headers-{release}"
        tree.mkdir(parents=True)
        (tree / "Makefile").write_text("")
        (tree / ".config").write_text("")
        return Ran()


@pytest.fixture
def standins(tmp_path: Path) -> FakeToolchain:
    """Every container step but the headers' stood in for (``builder.toolchain``'s fake);
    the compile step 'builds' a module whose vermagic is the release of the headers it was
    given."""
    tree = tmp_path / "tree"
    tree.mkdir()
    return FakeToolchain(tree, built=lambda hdrs: module_bytes(hdrs.release))


def build(tmp_path: Path, request: runner.BuildRequest, eng: AptStandIn,
          toolchain: FakeToolchain) -> runner.BuildOutcome:
    conf = runner.BuildConfig(state_dir=tmp_path / "state", store=tmp_path / "store",
                              source=str(tmp_path / "tree"), base_image="base", jobs=1,
                              timeout=60.0)
    return runner._Build(request, conf, eng, Store(conf.store), None,  # type: ignore[arg-type]
                         toolchain=toolchain).run()


def test_the_headers_and_vermagic_are_the_real_release_the_name_the_loaders(
    tmp_path: Path, standins: FakeToolchain,
) -> None:
    eng = AptStandIn()
    request = runner.BuildRequest(KERNEL, "8.0.0+driver", (DriverKind.KMOD,),
                                  uname_release=UNAME_R)
    outcome = build(tmp_path, request, eng, standins)
    assert outcome.error is None, outcome.error
    assert eng.releases == [UNAME_R]  # linux-headers-6.1.0-57-cloud-amd64
    assert standins.compiled_for == [UNAME_R]
    key = ArtifactKey.for_kernel(KERNEL, "8.0.0+driver", DriverKind.KMOD)
    assert key.filename == f"falco_debian_{NAMED}_1.ko"
    assert [a.key for a in outcome.artifacts] == [key]
    assert (tmp_path / "store" / key.relpath).read_bytes() == module_bytes(UNAME_R)


def test_without_the_real_release_the_name_is_taken_for_it(
    tmp_path: Path, standins: FakeToolchain,
) -> None:
    """The request as it was before: headers of the named release (which apt lacks on a
    real Debian host, hence ``uname_release``)."""
    eng = AptStandIn()
    outcome = build(tmp_path, runner.BuildRequest(KERNEL, "8.0.0+driver", (DriverKind.KMOD,)),
                    eng, standins)
    assert outcome.error is None, outcome.error
    assert eng.releases == [NAMED]


def test_a_module_built_for_another_release_than_the_real_one_is_refused(
    tmp_path: Path, standins: FakeToolchain,
) -> None:
    """verify holds the vermagic to the real release, not to the name's."""
    standins.built = lambda _hdrs: module_bytes(NAMED)
    request = runner.BuildRequest(KERNEL, "8.0.0+driver", (DriverKind.KMOD,),
                                  uname_release=UNAME_R)
    outcome = build(tmp_path, request, AptStandIn(), standins)
    assert outcome.error is not None
    assert outcome.error.step == steps.Step.VERIFY
    assert f"does not start with the kernel release {UNAME_R}" in str(outcome.error)
