"""``reconciler prebuild`` on a golden image: the drivers its kernels will need, for real.

Real git, engine, builder, kernel headers (Debian's mirror) and driver sources
(trixie's falcosecurity-scap-dkms, 8.0.0+driver for Falco 0.40); the image is a host
root holding a real Debian cloud kernel package unpacked as dpkg would, and, as a
mounted image does, no ``proc/``: it runs no kernel, so it boots its newest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler import cli
from reconciler.edges.host import facts as hostfacts
from reconciler.edges.store.local import Store
from reconciler.model.artifacts import DriverKind
from reconciler.observe.stored import usable
from tests.conftest import BASE_IMAGE, GitRepo
from tests.support import kernelpkg

TRIXIE = "deb:falcosecurity-scap-dkms/trixie"
BOOKWORM = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'
HOST = (
    "apiVersion: falco-reconciler/v1\nkind: Host\nmetadata: {name: golden}\nspec:\n"
    "  match: {hostnames: [golden-*]}\n  falco: {version: 0.40.0, driver: kmod}\n"
)


def golden_image(tmp: Path, kernels: list[kernelpkg.Unpacked]) -> Path:
    root = tmp / "golden"
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text(BOOKWORM)
    (root / "etc/hostname").write_text("golden-image\n")
    for kernel in kernels:
        kernel.install(root)
    return root


def test_an_image_root_without_proc_boots_its_newest_kernel(
    tmp_path: Path, debian_kernels: list[kernelpkg.Unpacked],
) -> None:
    newest, older = debian_kernels
    facts = hostfacts.read(golden_image(tmp_path, [older, newest]))
    assert facts.kernel_release == newest.deb.release
    assert facts.kernel_version.startswith("#1 SMP PREEMPT_DYNAMIC Debian " + newest.deb.version)
    assert [k.release for k in facts.installed_kernels] == sorted(
        [older.deb.release, newest.deb.release])


def test_a_root_with_neither_proc_nor_kernels_is_an_error(tmp_path: Path) -> None:
    root = golden_image(tmp_path, [])
    with pytest.raises(Exception, match=r"kernel release: .*proc/sys/kernel/osrelease does not"):
        hostfacts.read(root)


@pytest.mark.docker
@pytest.mark.slow
def test_prebuild_builds_what_a_golden_image_will_ask_for(
    tmp_path: Path, git_repo: GitRepo, debian_kernels: list[kernelpkg.Unpacked],
    base_image: str, docker_client: Any, capsys: pytest.CaptureFixture[str],
) -> None:
    newest = debian_kernels[0]
    root = golden_image(tmp_path, [newest])
    git_repo.commit({"golden.yaml": HOST})
    drivers = Store(tmp_path / "store")
    argv = ["prebuild", "--repo", str(git_repo.path), "--host-root", str(root),
            "--store", str(drivers.root), "--state-dir", str(tmp_path / "state"),
            "--source", TRIXIE, "--base-image", BASE_IMAGE]
    code = cli.main(argv)
    out = capsys.readouterr().out
    assert code == 0, out
    # Falco 0.40's loader on Debian names the module from uname -v's package version;
    # it is built against the headers of the real release.
    upstream = newest.deb.version  # e.g. 6.1.192-3
    name = f"8.0.0+driver/x86_64/falco_debian_{upstream}-cloud-amd64_1.ko"
    assert f"+ build  {name}" in out, out
    assert "Host/golden (the kernel this image boots)" in out, out
    assert "Built 1 of 1 drivers" in out, out
    found = [key for key, _ in drivers.artifact_paths() if key.relpath == name]
    assert len(found) == 1 and found[0].kind is DriverKind.KMOD
    assert usable(drivers.lookup(found[0])) is not None
    module = drivers.path_of(found[0]).read_bytes()
    assert f"vermagic={newest.deb.release} SMP".encode() in module
    assert docker_client.containers.list(all=True, filters={"name": "golden"}) == []

    assert cli.main(argv) == 0  # again: all there
    assert "Nothing to build: the 1 drivers" in capsys.readouterr().out
