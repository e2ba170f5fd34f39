"""Legacy eBPF ends where upstream ended it: Falco 0.44 has no probe, drivers from 10.0
ship none, and 0.43 warns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reconciler import runtime, settings
from reconciler.manifests import loading
from reconciler.testing import FakeEngine
from tests.conftest import GitRepo
from tests.support.falcohost import host_yaml


def problems(text: str, name: str = "a.yaml") -> list[str]:
    return [str(p) for p in loading.problems([(name, text.encode())])]


def test_driver_ebpf_with_falco_044_is_refused_naming_the_last_version_that_has_it() -> None:
    assert problems(host_yaml("0.44.0", "ebpf")) == [
        "a.yaml:8: spec.falco.driver: driver ebpf (the legacy eBPF probe) was removed in Falco "
        "0.44, this Host runs 0.44.0; the last version that has it is 0.43: expected "
        "modern_ebpf, kmod, kmod-preloaded or none"]
    assert problems(host_yaml("0.43.1", "ebpf")) == []


def test_an_ebpf_host_on_a_driver_without_a_probe_is_refused() -> None:
    text = host_yaml("0.43.1", "ebpf").replace(
        "    driver: ebpf\n", "    driver: ebpf\n    driverVersion: 10.2.0+driver\n")
    assert problems(text) == [
        "a.yaml:9: spec.falco.driverVersion: driver 10.2.0+driver has no legacy eBPF probe "
        "(drivers from 10.0 have none; the last with one is 9.1.0+driver): expected driver "
        "modern_ebpf, kmod or an older driverVersion"]


def test_an_ebpf_output_of_driver_10_is_refused_in_a_driver_build_and_a_driverkit_config() -> None:
    build = ("apiVersion: falco-reconciler/v1\nkind: DriverBuild\nmetadata: {name: b}\n"
             "spec:\n  target: debian\n  driverVersion: 10.2.0+driver\n"
             "  kernelRelease: 6.1.0-57-cloud-amd64\n  outputs: [kmod, ebpf]\n")
    assert problems(build) == [
        "a.yaml:8: outputs: ebpf: driver 10.2.0+driver has no legacy eBPF probe (drivers from "
        "10.0 have none; the last with one is 9.1.0+driver): expected only the kernel module "
        "(outputs: [kmod])"]
    config = ("kernelversion: 1\nkernelrelease: 6.1.0-57-cloud-amd64\ntarget: debian\n"
              "architecture: amd64\noutput:\n  module: out/falco.ko\n  probe: out/falco.o\n")
    assert problems(config, "driverkit/config/10.2.0+driver/x86_64/debian_x_1.yaml") == [
        "driverkit/config/10.2.0+driver/x86_64/debian_x_1.yaml:7: output.probe: driver "
        "10.2.0+driver has no legacy eBPF probe (drivers from 10.0 have none; the last with one "
        "is 9.1.0+driver): expected only the kernel module"]
    assert problems(build.replace("[kmod, ebpf]", "[kmod]")) == []


def test_falco_043_with_ebpf_plans_with_a_deprecation_warning(
    git_repo: GitRepo, make_host_root: Any, tmp_path: Path,
) -> None:
    git_repo.commit({"web.yaml": host_yaml("0.43.1", "ebpf",
                                           image="docker.io/falcosecurity/falco")})
    conf = settings.Settings(repo=str(git_repo.path), host_root=make_host_root(), hostname="web-1",
                             store=tmp_path / "store", state_dir=tmp_path / "state")
    planned = runtime.Runtime(conf, FakeEngine(), runtime.Shared.for_settings(conf)
                              ).planner().plan()
    assert planned.plan.notes == (
        "warning: the legacy eBPF probe is deprecated in Falco 0.43.1 and removed in 0.44: "
        "move to modern_ebpf or kmod",)
