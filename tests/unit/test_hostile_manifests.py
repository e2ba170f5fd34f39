"""Hostile manifests: whatever a push holds is refused where it enters, at its file:line.

More people can push to the manifest repository than can log in to a host, and the daemon
acts as root. Each case below is a push and the exact lines ``validate`` prints for it;
nothing of any case loads.
"""

from __future__ import annotations

import pytest

from reconciler import loading
from reconciler.errors import ManifestError


def host(*falco: str, spec: str = "") -> str:
    """A Host whose ``falco`` section holds ``falco`` (one line each, from line 7 on)."""
    return ("apiVersion: falco-reconciler/v1\nkind: Host\nmetadata: {name: web}\nspec:\n"
            "  falco:\n    version: 0.37.1\n" + "".join(f"    {line}\n" for line in falco) + spec)


def build(*lines: str, target: str = "debian", driver: str = "2.0.0+driver",
          release: str = "5.10.0-14-amd64") -> str:
    """A DriverBuild: target on line 5, driverVersion 6, kernelRelease 7, ``lines`` from 8."""
    return ("apiVersion: falco-reconciler/v1\nkind: DriverBuild\nmetadata: {name: b}\nspec:\n"
            f"  target: {target}\n  driverVersion: {driver}\n  kernelRelease: {release}\n"
            + "".join(f"  {line}\n" for line in lines))


def kernel(target: str = "debian", release: str = "5.10.0-15-amd64", version: str = "'1'") -> str:
    """A Host's ``kernels`` with one item: target on line 8, release 9, version 10."""
    return (f"  kernels:\n    - target: {target}\n      kernelRelease: {release}\n"
            f"      kernelVersion: {version}\n")


def config(release: str = "5.10.0-14-amd64", version: str = "1", *more: str) -> str:
    """A plain driverkit config: kernelrelease on line 3, kernelversion 4, ``more`` from 6."""
    return ("target: debian\ndriverversion: 2.0.0+driver\n"
            f"kernelrelease: {release}\nkernelversion: {version}\noutput: {{module: a.ko}}\n"
            + "".join(f"{line}\n" for line in more))


DRIVER = ("is not a driver version: expected a release such as 2.0.0+driver, a commit hash, "
          "or master")
UBUNTU = ("is not a driverkit target: ubuntu-<flavor> takes the flavor as Falco's loaders do, the "
          "word after the build number in `uname -r` (ubuntu-aws for 5.15.0-1009-aws), or with "
          "the suffix 0.33 to 0.35.0 kept (ubuntu-aws-5.0)")
# A list that an alias makes 9^9 items long: its repr would never end.
BOMB = ("[&a [x, x, x, x, x, x, x, x, x]" + "".join(
    f", &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]" for i in range(8)) + "]")

CASES: dict[str, tuple[dict[str, str], list[str]]] = {
    # -- store paths: every name part is one folder or file name, inside the store -------
    "DriverBuild driverVersion climbing": (
        {"b.yaml": build(driver='"../.."')},
        [f"b.yaml:6: spec.driverVersion: '../..' {DRIVER}"]),
    "DriverBuild driverVersion ending in a newline": (
        {"b.yaml": build(driver='"2.0.0+driver\\n"')},
        [f"b.yaml:6: spec.driverVersion: '2.0.0+driver\\n' {DRIVER}"]),
    "DriverBuild driverVersion too long for a folder name": (
        {"b.yaml": build(driver="2.0.0+" + "d" * 60)},
        ["b.yaml:6: spec.driverVersion: '2.0.0+" + "d" * 54 + "'... (66 characters) is not a "
         "driver version: at most 64 characters, such as 2.0.0+driver"]),
    "DriverBuild ubuntu flavor that is a path": (
        {"b.yaml": build("kernelVersion: '1'", target='"ubuntu-../../x"')},
        [f"b.yaml:5: spec.target: 'ubuntu-../../x' {UBUNTU}"]),
    "DriverBuild ubuntu flavor with the file name's separator": (
        {"b.yaml": build("kernelVersion: '1'", target="ubuntu-aws_x")},
        [f"b.yaml:5: spec.target: 'ubuntu-aws_x' {UBUNTU}"]),
    # -- YAML shapes ------------------------------------------------------------------------
    "an alias bomb where a message quotes the value": (
        {"dk.yaml": config("5.10.0-14-amd64", "1").replace("{module: a.ko}", BOMB)},
        ["dk.yaml:5: output: expected a mapping with module (a .ko path) and/or probe (a .o "
         "path), got a list"]),
}


def _encoded(files: dict[str, str]) -> list[tuple[str, bytes]]:
    return [(path, text.encode("utf-8", "surrogateescape")) for path, text in files.items()]


@pytest.mark.parametrize(("files", "expected"), list(CASES.values()), ids=list(CASES))
def test_each_hostile_push_is_refused_at_its_file_and_line(
    files: dict[str, str], expected: list[str]
) -> None:
    assert [str(p) for p in loading.problems(_encoded(files))] == expected  # in line order


@pytest.mark.parametrize("files", [files for files, _ in CASES.values()], ids=list(CASES))
def test_nothing_of_a_hostile_push_loads(files: dict[str, str]) -> None:
    with pytest.raises(ManifestError):
        loading.load(_encoded(files))
    manifests, found = loading.check(_encoded(files))
    assert found
    assert manifests.hosts == () and manifests.builds == ()
