"""A DriverBuild names its kernel by release or as the newest of a series and flavour."""

from __future__ import annotations

import pytest

from reconciler.manifests import loading

HEAD = ("apiVersion: falco-reconciler/v1\nkind: DriverBuild\nmetadata: {name: b}\nspec:\n"
        "  target: debian\n  driverVersion: 8.0.0+driver\n")


def problems(spec: str, head: str = HEAD) -> list[str]:
    return [str(p) for p in loading.problems([("b.yaml", (head + spec).encode())])]


def test_newest_kernel_loads_and_has_no_keys_before_it_is_resolved() -> None:
    (build,) = loading.load([("b.yaml", (HEAD + "  newestKernel: 6.1.0-*-cloud-amd64\n"
                                         ).encode())]).builds
    assert build.value.spec.newest_kernel == "6.1.0-*-cloud-amd64"
    assert build.value.spec.artifact_keys() == ()
    (key,) = build.value.spec.artifact_keys("6.1.0-57-cloud-amd64")
    assert key.relpath == "8.0.0+driver/x86_64/falco_debian_6.1.0-57-cloud-amd64_1.ko"


@pytest.mark.parametrize(("spec", "expected"), [
    ("", "b.yaml:4: missing required key 'kernelRelease' in spec (or newestKernel, e.g. "
     "6.1.0-*-cloud-amd64: the newest the build host's apt lists offer)"),
    ("  kernelRelease: 6.1.0-57-cloud-amd64\n  newestKernel: 6.1.0-*-cloud-amd64\n",
     "b.yaml:8: spec.newestKernel: kernelRelease and newestKernel exclude each other; give one"),
    ("  newestKernel: 6.1.0-57-cloud-amd64\n",
     "b.yaml:7: spec.newestKernel: expected a Debian kernel ABI name with its number as *, "
     "e.g. 6.1.0-*-cloud-amd64, got '6.1.0-57-cloud-amd64'"),
    ("  newestKernel: 6.1.0-*-cloud-amd64\n  unameRelease: 6.1.0-57-cloud-amd64\n",
     "b.yaml:8: spec.unameRelease: newestKernel already resolves to the kernel's uname -r; "
     "unameRelease goes with a kernelRelease that names it otherwise"),
    ("  kernelRelease: 6.1.192-3-cloud-amd64\n  unameRelease: 6.1.0 57\n",
     "b.yaml:8: spec.unameRelease: expected the kernel's `uname -r` (ASCII, no spaces), "
     "e.g. 6.1.0-57-cloud-amd64, got '6.1.0 57'"),
    ("  newestKernel: ../*-x\n",
     "b.yaml:7: spec.newestKernel: expected a Debian kernel ABI name with its number as *, "
     "e.g. 6.1.0-*-cloud-amd64, got '../*-x'"),
])
def test_a_driver_build_names_exactly_one_kernel_in_the_grammar(spec: str, expected: str) -> None:
    assert problems(spec) == [expected]


def test_newest_kernel_is_for_debian_targets_only() -> None:
    head = HEAD.replace("target: debian", "target: centos")
    assert problems("  newestKernel: 6.1.0-*-cloud-amd64\n", head) == [
        "b.yaml:7: spec.newestKernel: read from apt's package lists, it takes target debian, "
        "got 'centos'; give kernelRelease"]
