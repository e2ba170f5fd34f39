"""newestKernel against the real apt lists of this machine (a Debian host; .ci/setup runs
apt-get update): the newest ABI of a series and flavour, planned without a manifest edit."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from reconciler import runtime, settings
from reconciler.edges.host import apt
from reconciler.testing import FakeEngine
from tests.conftest import GitRepo

pytestmark = pytest.mark.skipif(shutil.which("apt-cache") is None,
                                reason="apt-cache is not installed (not a Debian host)")
BUILD = ("apiVersion: falco-reconciler/v1\nkind: DriverBuild\nmetadata: {name: newest}\n"
         "spec:\n  target: debian\n  driverVersion: 8.0.0+driver\n"
         "  newestKernel: 6.1.0-*-cloud-amd64\n")


def newest_here() -> str:
    """What `apt-cache pkgnames` says, read independently of the code under test."""
    names = subprocess.run(["apt-cache", "pkgnames", "linux-headers-6.1.0-"], check=True,
                           capture_output=True, text=True).stdout.split()
    abis = [int(m[1]) for n in names if (m := re.fullmatch(
        r"linux-headers-6\.1\.0-([0-9]+)-cloud-amd64", n))]
    if not abis:
        pytest.skip("this machine's apt lists hold no 6.1 cloud kernel (no apt-get update yet)")
    return f"6.1.0-{max(abis)}-cloud-amd64"


def test_the_newest_abi_of_a_series_and_flavour_is_found() -> None:
    assert apt.newest_release(Path("/"), "6.1.0-*-cloud-amd64") == apt.Newest(
        "6.1.0-*-cloud-amd64", newest_here())
    missing = apt.newest_release(Path("/"), "6.1.0-*-no-such-flavour")
    assert missing.release is None
    assert missing.reason == ("no linux-headers-6.1.0-*-no-such-flavour in the apt package "
                              "lists (run apt-get update, or check the series and flavour)")


def test_a_driver_build_asking_for_the_newest_kernel_plans_that_release(
    git_repo: GitRepo, make_host_root: Any, tmp_path: Path,
) -> None:
    git_repo.commit({"build.yaml": BUILD})
    conf = settings.Settings(repo=str(git_repo.path), host_root=Path("/"),
                             hostname="build-1", store=tmp_path / "store",
                             state_dir=tmp_path / "state")
    planned = runtime.Runtime(conf, FakeEngine(), runtime.Shared.for_settings(conf)
                              ).planner().plan()
    release = newest_here()
    assert [c.name for c in planned.plan.changes] == [
        f"8.0.0+driver/x86_64/falco_debian_{release}_1.ko"]
    # A host root without apt lists offers no kernel: the plan says so, builds nothing.
    bare = settings.Settings(repo=str(git_repo.path), host_root=make_host_root(),
                             hostname="build-1", store=tmp_path / "store",
                             state_dir=tmp_path / "state")
    planned = runtime.Runtime(bare, FakeEngine(), runtime.Shared.for_settings(bare)
                              ).planner().plan()
    assert planned.plan.changes == ()
    assert planned.plan.notes == (
        "DriverBuild/newest: newestKernel 6.1.0-*-cloud-amd64: no "
        "linux-headers-6.1.0-*-cloud-amd64 in the apt package lists (run apt-get update, or "
        "check the series and flavour); nothing is built for it",)
