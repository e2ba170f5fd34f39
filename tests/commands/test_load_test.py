"""``reconciler load-test``: a real module from a real build, proven in a real VM of its
kernel (QEMU, single-threaded TCG) with scap-open from the same libs tree; and the
command's refusals of what it cannot test, before any VM."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from reconciler import cli
from tests.support.loadtest import Built


@pytest.mark.docker
@pytest.mark.slow
def test_a_module_on_its_own_kernel_passes_with_its_markers_captured(
    built: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """Inserted, /dev/falco0..N made, a capture of real events holding every marker mkdir
    of this run, removed cleanly, nothing worse than out-of-tree/unsigned taint: exit 0 and
    a JSON result naming the exact kernel image and the VM log. ``--falco``: Falco 0.39.0
    pins libs 0.18.1, older than the module's 0.20.0, whose tree the source does not have
    (the fixtures hold 0.20.0 and 0.25.1 only): that userspace is untested, saying why, and
    the module still passes; 0.44.0's libs are newer and add no run."""
    code = cli.main(["load-test", str(built.module), "--kernel-package", str(built.own_kernel.deb),
                     "--json", "--state-dir", str(built.setup.state_dir),
                     "--source", built.setup.source, "--base-image", built.setup.base_image,
                     "--falco", "0.39.0", "--falco", "0.44.0"])
    printed = json.loads(capsys.readouterr().out)

    assert code == 0, printed
    assert printed["result"] == "passed" and printed["reasons"] == []
    assert printed["kind"] == "kmod" and printed["loaded"]
    assert printed["events"] > 0
    assert printed["markersFound"] == printed["markers"] == 5
    assert printed["kernelRelease"] == built.own_kernel.release
    assert printed["libsVersion"] == "0.20.0"  # the libs of 8.0.0+driver's release branch
    (older,) = printed["userspaces"]
    assert (older["libsVersion"], older["falco"], older["result"]) == (
        "0.18.1", ["0.39.0"], "untested")
    assert "cannot fetch driver 0.18.1 from file://" in older["reasons"][0]
    vmlinuz = tmp_path / "boot"
    subprocess.run(["dpkg-deb", "-x", str(built.own_kernel.deb), str(vmlinuz)], check=True)
    image = vmlinuz / "boot" / f"vmlinuz-{built.own_kernel.release}"
    assert printed["kernelImageSha256"] == hashlib.sha256(image.read_bytes()).hexdigest()
    log = Path(printed["vmLog"]).read_text(errors="replace")
    assert "falco: driver loading, falco 8.0.0+driver" in log
    assert "falco: driver unloading" in log


def test_an_artifact_that_is_neither_module_nor_probe_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """A file of another kind, or one whose driver version cannot be told, is refused
    with one sentence before anything is built or booted."""
    odd, deb = tmp_path / "falco.bin", tmp_path / "linux-image.deb"
    odd.write_bytes(b"x")
    deb.write_bytes(b"x")
    assert cli.main(["load-test", str(odd), "--kernel-package", str(deb)]) == 1
    assert "expected a module (.ko) or a probe (.o)" in capsys.readouterr().err

    module = tmp_path / "falco.ko"
    module.write_bytes(b"x")
    assert cli.main(["load-test", str(module), "--kernel-package", str(deb)]) == 1
    assert "give --driver-version" in capsys.readouterr().err
