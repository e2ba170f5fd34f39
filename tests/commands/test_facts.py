"""``reconciler facts`` on a host with real Debian kernels installed: what each needs once it runs.

The host runs the older package's kernel and has the newest installed beside it, the
common state between an upgrade and the reboot.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler import cli
from tests.edges.host.test_facts import write_host
from tests.support.kernelpkg import Unpacked


@pytest.fixture
def upgraded(tmp_path: Path, debian_kernels: list[Unpacked],
             monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Unpacked, Unpacked]:
    """A Debian 12 host running ``older`` with ``newest`` installed, not yet booted."""
    for name in ("RECONCILER_HOST_ROOT", "RECONCILER_HOSTNAME", "RECONCILER_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    newest, older = debian_kernels
    root = write_host(tmp_path, release=older.release + "\n",
                      version=f"#1 SMP PREEMPT_DYNAMIC Debian {older.deb.version} (2026-10-01)\n",
                      os_release='ID=debian\nVERSION_ID="12"\n')
    newest.install(root)
    older.install(root)
    return root, newest, older


def facts(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli.main(["facts", *argv])
    return code, capsys.readouterr().out


def debian_name(kernel: Unpacked) -> str:
    """The release Falco 0.35.1+ asks for: rebuilt from the package version in uname -v."""
    return f"{kernel.deb.version}-cloud-amd64"


def test_text_lists_the_installed_kernels_and_names_each_once_booted(
    upgraded: tuple[Path, Unpacked, Unpacked], capsys: pytest.CaptureFixture[str]
) -> None:
    root, newest, older = upgraded
    code, out = facts(["--host-root", str(root), "--falco-version", "0.32.2",
                       "--falco-version", "0.38.2"], capsys)
    assert code == 0
    listing = out.split("\n\n", 1)[0].splitlines()
    at = listing.index("  installed kernels")
    assert listing[at + 1].split(None, 2) == [
        older.release, "running", f"#1 SMP PREEMPT_DYNAMIC Debian {older.deb.version} (2026-10-01)"]
    release, source, version = listing[at + 2].split(None, 2)
    assert (release, source) == (newest.release, "setup-header")
    assert version.startswith(f"#1 SMP PREEMPT_DYNAMIC Debian {newest.deb.version} (")
    now, later = out.split(f"== once {newest.release} runs (uname -v from setup-header)\n")
    assert f"== now, {older.release} running" in now
    assert f"falco_debian_{older.release}_1.ko" in now  # 0.32.2 names uname -r
    assert f"GET /7.2.1%2Bdriver/x86_64/falco_debian_{debian_name(older)}_1.ko|.o" in now
    assert newest.release not in now.split("\n\n", 1)[1]
    assert f"falco_debian_{newest.release}_1.ko  falco_debian_{newest.release}_1.o" in later
    assert f"GET /7.2.1%2Bdriver/x86_64/falco_debian_{debian_name(newest)}_1.ko|.o" in later
    assert older.release not in later


def test_text_says_why_a_version_came_from_dpkg(
    upgraded: tuple[Path, Unpacked, Unpacked], capsys: pytest.CaptureFixture[str]
) -> None:
    root, newest, _ = upgraded
    (root / newest.image).write_bytes(b"not a kernel")
    code, out = facts(["--host-root", str(root), "--falco-version", "0.38.2"], capsys)
    assert code == 0
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip().startswith(newest.release))
    assert lines[at].split(None, 2) == [
        newest.release, "dpkg", f"#1 SMP PREEMPT_DYNAMIC Debian {newest.deb.version}"]
    assert lines[at + 1].strip() == (f"var/lib/dpkg/status: {newest.deb.package} "
                                     f"{newest.deb.version}")
    assert lines[at + 2].strip() == (f"{newest.image}: 12 bytes are too short for an x86 "
                                     "setup header")
    # the date is unknown, and no name needs it
    assert f"falco_debian_{debian_name(newest)}_1.ko" in out


def test_json_gives_each_installed_kernel_with_its_names(
    upgraded: tuple[Path, Unpacked, Unpacked], capsys: pytest.CaptureFixture[str]
) -> None:
    root, newest, older = upgraded
    code, out = facts(["--host-root", str(root), "--falco-version", "0.36.2", "--json"],
                      capsys)
    assert code == 0
    doc = json.loads(out)
    (running,) = doc["falco"]
    assert running["kernel"]["kernelRelease"] == debian_name(older)
    by_release = {k["kernelRelease"]: k for k in doc["installedKernels"]}
    assert list(by_release) == sorted([older.release, newest.release])
    assert by_release[older.release] == {
        "kernelRelease": older.release,
        "kernelVersion": f"#1 SMP PREEMPT_DYNAMIC Debian {older.deb.version} (2026-10-01)",
        "source": "running", "running": True, "image": older.image,
        "detail": "the running kernel: proc/sys/kernel/version",
    }  # its names are the top-level "falco"
    booted = by_release[newest.release]
    assert (booted["source"], booted["running"], booted["image"]) == (
        "setup-header", False, newest.image)
    assert booted["detail"] == (f"{newest.image}: setup header, built by "
                                "debian-kernel@lists.debian.org")
    (entry,) = booted["falco"]
    assert entry["kernel"] == {"target": "debian", "kernelRelease": debian_name(newest),
                               "kernelVersion": "1", "architecture": "x86_64"}
    assert entry["artifacts"]["kmod"]["relpath"] == (
        f"6.0.1+driver/x86_64/falco_debian_{debian_name(newest)}_1.ko")


def test_a_host_without_installed_kernels_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RECONCILER_HOST_ROOT", raising=False)
    code, out = facts(["--host-root", str(write_host(tmp_path)), "--falco-version", "0.38.2"],
                      capsys)
    assert code == 0
    assert "  installed       - (no kernel image with its modules under the host root)" in out
    assert "== " not in out
    code, out = facts(["--host-root", str(tmp_path), "--falco-version", "0.38.2", "--json"],
                      capsys)
    assert json.loads(out)["installedKernels"] == []
