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


@pytest.mark.docker
@pytest.mark.slow
def test_a_kernel_image_given_by_itself_is_booted_and_named_by_its_own_release(
    built: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """``--kernel-image``: the bare vmlinuz of any distribution's package (here the real one
    of the Debian package, laid out as an .rpm's lib/modules/<release>/vmlinuz, a name
    without the release): the release comes from the image's own setup header, and the
    result names that image's sha256."""
    (tmp_path / "deb").mkdir()
    subprocess.run(["dpkg-deb", "-x", str(built.own_kernel.deb), str(tmp_path / "deb")],
                   check=True)
    release = built.own_kernel.release
    image = tmp_path / "rpm/lib/modules" / release / "vmlinuz"
    image.parent.mkdir(parents=True)
    (tmp_path / "deb/boot" / f"vmlinuz-{release}").rename(image)
    code = cli.main(["load-test", str(built.module), "--kernel-image", str(image), "--json",
                     "--state-dir", str(built.setup.state_dir), "--source", built.setup.source,
                     "--base-image", built.setup.base_image])
    printed = json.loads(capsys.readouterr().out)

    assert code == 0, printed
    assert printed["result"] == "passed" and printed["markersFound"] == 5
    assert printed["kernelRelease"] == release
    assert printed["kernelImageSha256"] == hashlib.sha256(image.read_bytes()).hexdigest()


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


def test_a_kernel_image_that_is_not_one_is_refused_before_anything_is_built(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    module = tmp_path / "8.0.0+driver/x86_64/falco_debian_6.1.0-57-cloud-amd64_1.ko"
    module.parent.mkdir(parents=True)
    module.write_bytes(b"x")
    other = tmp_path / "vmlinuz"
    other.write_bytes(b"MZ" + bytes(0x300))
    assert cli.main(["load-test", str(module), "--kernel-image", str(other),
                     "--state-dir", str(tmp_path / "state")]) == 1
    assert "is not an x86 kernel image" in capsys.readouterr().err
    assert cli.main(["load-test", str(module), "--kernel-image", str(tmp_path / "nope")]) == 1
    assert "--kernel-image " in capsys.readouterr().err
