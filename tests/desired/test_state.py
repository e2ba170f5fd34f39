"""Desired state for a host with several kernels installed: the driver for each, so a
reboot into any of them finds one; named as the Host's Falco will name it once booted."""

from __future__ import annotations

from reconciler import desired, plan
from reconciler.manifests import loading
from reconciler.manifests.models import ManifestSet
from reconciler.model.artifacts import ArtifactKey, DriverKind
from reconciler.model.host import HostFacts, InstalledKernel, VersionSource
from reconciler.observe.state import ObservedState
from reconciler.plan import render

RUNNING = InstalledKernel("6.1.0-57-cloud-amd64",
                          "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2025-06-01)",
                          VersionSource.RUNNING)
NEXT = InstalledKernel("6.1.0-58-cloud-amd64",
                       "#1 SMP PREEMPT_DYNAMIC Debian 6.1.193-1 (2025-07-01)",
                       VersionSource.DPKG)
OLD = InstalledKernel("6.1.0-56-cloud-amd64",
                      "#1 SMP PREEMPT_DYNAMIC Debian 6.1.191-1 (2025-05-01)",
                      VersionSource.SETUP_HEADER)


def facts(*installed: InstalledKernel) -> HostFacts:
    return HostFacts(
        hostname="web-1", kernel_release=RUNNING.release, kernel_version=RUNNING.version,
        machine="x86_64", os_id="debian", os_version_id="12",
        os_release=(("ID", "debian"), ("VERSION_ID", "12")), os_release_file="etc/os-release",
        legacy_release_files=("etc/debian_version",), installed_kernels=installed,
    )


def manifests(version: str, kernels: str = "") -> ManifestSet:
    text = ("apiVersion: falco-reconciler/v1\nkind: Host\nmetadata: {name: web}\n"
            f"spec:\n  falco: {{version: {version}}}\n{kernels}")
    return loading.load([("hosts/web.yaml", text.encode())])


def compute(m: ManifestSet, f: HostFacts) -> desired.DesiredState:
    return desired.compute(m, f, "a" * 40, drivers_url="http://127.0.0.1:8000")


def key(release: str, version: str = "1", driver: str = "8.0.0+driver") -> ArtifactKey:
    return ArtifactKey(driver, "x86_64", "debian", release, version, DriverKind.KMOD)


def wanted(state: desired.DesiredState) -> dict[str, tuple[tuple[str, ...], str]]:
    return {a.key.relpath: (a.wanted_by, a.uname_release) for a in state.artifacts}


def test_by_default_every_installed_kernel_gets_its_driver_named_as_its_falco_will() -> None:
    """Falco 0.40 on Debian asks for the release rebuilt from each kernel's ``uname -v``."""
    state = compute(manifests("0.40.0"), facts(OLD, RUNNING, NEXT))
    next_boot = ("Host/web (installed, not running: needed at next boot)",)
    assert wanted(state) == {
        key("6.1.191-1-cloud-amd64").relpath: (next_boot, OLD.release),
        key("6.1.192-3-cloud-amd64").relpath: (("Host/web (running kernel)",), RUNNING.release),
        key("6.1.193-1-cloud-amd64").relpath: (next_boot, NEXT.release),
    }
    # Falco itself is given the running kernel's driver only.
    assert state.container is not None
    assert state.container.artifact == key("6.1.192-3-cloud-amd64")
    assert state.notes == ()


def test_an_older_falco_names_the_installed_kernels_by_its_own_rules() -> None:
    """Falco 0.34's loader names Debian kernels by ``uname -r`` and the ``#N`` build number:
    the name is the release, so no second release is carried."""
    state = compute(manifests("0.34.1"), facts(RUNNING, NEXT))
    assert wanted(state) == {
        key(RUNNING.release, driver="4.0.0+driver").relpath: (
            ("Host/web (running kernel)",), ""),
        key(NEXT.release, driver="4.0.0+driver").relpath: (
            ("Host/web (installed, not running: needed at next boot)",), ""),
    }


def test_running_builds_for_the_running_kernel_only() -> None:
    state = compute(manifests("0.40.0", "  kernels: running\n"), facts(OLD, RUNNING, NEXT))
    assert list(wanted(state)) == [key("6.1.192-3-cloud-amd64").relpath]


def test_a_list_means_the_running_kernel_and_those_listed_not_the_installed_ones() -> None:
    listed = ("  kernels:\n    - target: debian\n      kernelRelease: 6.1.200-1-cloud-amd64\n"
              "      kernelVersion: 1\n")
    state = compute(manifests("0.40.0", listed), facts(OLD, RUNNING, NEXT))
    assert wanted(state) == {
        key("6.1.192-3-cloud-amd64").relpath: (("Host/web (running kernel)",), RUNNING.release),
        # Named as written: the manifest says what the loader asks for, not what runs.
        key("6.1.200-1-cloud-amd64").relpath: (("Host/web (kernels)",), ""),
    }


def test_an_installed_kernel_its_falco_names_no_driver_for_is_a_note_and_nothing_built(
) -> None:
    """falcoctl cannot parse a release without X.Y.Z (falcosecurity/falco#3278)."""
    odd = InstalledKernel("custom-kernel", "#1", VersionSource.DEFAULT)
    state = compute(manifests("0.40.0"), facts(RUNNING, odd))
    assert list(wanted(state)) == [key("6.1.192-3-cloud-amd64").relpath]
    assert len(state.notes) == 1
    assert state.notes[0].startswith(
        "Host/web: installed kernel custom-kernel (not running): Falco 0.40.0's loader names "
        "no driver for it (")
    assert state.notes[0].endswith("); nothing is built for it")


def test_a_driverless_falco_wants_nothing_for_its_installed_kernels() -> None:
    text = ("apiVersion: falco-reconciler/v1\nkind: Host\nmetadata: {name: web}\n"
            "spec:\n  falco: {version: 0.40.0, driver: modern_ebpf}\n")
    m = loading.load([("hosts/web.yaml", text.encode())])
    assert compute(m, facts(RUNNING, NEXT)).artifacts == ()


def test_the_plan_says_why_an_installed_kernel_is_built() -> None:
    state = compute(manifests("0.40.0"), facts(RUNNING, NEXT))
    text = render.as_text(plan.diff(state, ObservedState()))
    assert (f"  + build   {key('6.1.193-1-cloud-amd64').relpath}\n"
            "      missing from the store: Host/web (installed, not running: needed at next "
            "boot)\n") in text


def test_a_driver_build_named_as_the_loader_asks_carries_the_real_release_and_merges(
) -> None:
    """A build host serving Falco 0.40 Debian hosts builds what their loader asks for
    (6.1.192-3-cloud-amd64); the builder needs the real release for the headers."""
    build = ("apiVersion: falco-reconciler/v1\nkind: DriverBuild\nmetadata: {name: b}\n"
             "spec:\n  target: debian\n  driverVersion: 8.0.0+driver\n"
             "  kernelRelease: 6.1.192-3-cloud-amd64\n  unameRelease: 6.1.0-57-cloud-amd64\n")
    host = ("apiVersion: falco-reconciler/v1\nkind: Host\nmetadata: {name: web}\n"
            "spec:\n  falco: {version: 0.40.0}\n  kernels: running\n")
    alone = loading.load([("b.yaml", build.encode())])
    assert wanted(compute(alone, facts(RUNNING))) == {
        key("6.1.192-3-cloud-amd64").relpath: (("DriverBuild/b",), "6.1.0-57-cloud-amd64")}
    both = loading.load([("b.yaml", build.encode()), ("h.yaml", host.encode())])
    assert wanted(compute(both, facts(RUNNING))) == {key("6.1.192-3-cloud-amd64").relpath: (
        ("Host/web (running kernel)", "DriverBuild/b"), "6.1.0-57-cloud-amd64")}


def test_a_driver_build_whose_release_is_the_real_one_carries_none() -> None:
    build = ("apiVersion: falco-reconciler/v1\nkind: DriverBuild\nmetadata: {name: b}\n"
             "spec:\n  target: debian\n  driverVersion: 8.0.0+driver\n"
             "  kernelRelease: 6.1.0-57-cloud-amd64\n  unameRelease: 6.1.0-57-cloud-amd64\n")
    state = compute(loading.load([("b.yaml", build.encode())]), facts(RUNNING))
    assert wanted(state) == {key("6.1.0-57-cloud-amd64").relpath: (("DriverBuild/b",), "")}


def test_a_driver_carries_the_falcos_that_load_it_for_its_load_test() -> None:
    """A Host's driver carries its own Falco; a DriverBuild's, every Host of the repository
    on that driver version and kind (their userspaces are load-tested too): here the
    0.40.0 kmod Host and the 0.41.0 one pinned to 8.0.0+driver, not the probe Host nor the
    0.42.0 Host (9.0.0+driver)."""
    build = ("apiVersion: falco-reconciler/v1\nkind: DriverBuild\nmetadata: {name: b}\n"
             "spec:\n  target: debian\n  driverVersion: 8.0.0+driver\n"
             "  kernelRelease: 6.1.0-58-cloud-amd64\n")

    def host(name: str, falco: str) -> tuple[str, bytes]:
        return (f"{name}.yaml", ("apiVersion: falco-reconciler/v1\nkind: Host\nmetadata: "
                                 f"{{name: {name}}}\nspec:\n  match: {{hostnames: [{name}-*]}}"
                                 f"\n  falco: {falco}\n").encode())

    m = loading.load([("b.yaml", build.encode()),
                      host("web", "{version: 0.40.0}"),
                      host("pinned", "{version: 0.41.0, driverVersion: 8.0.0+driver}"),
                      host("probe", "{version: 0.39.0, driver: ebpf, "
                                    "driverVersion: 8.0.0+driver}"),
                      host("newer", "{version: 0.42.0}")])
    falcos = {a.key.relpath: a.falcos for a in compute(m, facts(RUNNING)).artifacts}
    assert falcos == {key("6.1.192-3-cloud-amd64").relpath: ("0.40.0",),
                      key("6.1.0-58-cloud-amd64").relpath: ("0.40.0", "0.41.0")}
