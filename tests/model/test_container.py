"""The Falco container spec per driver mode and Falco generation
(docs/falco-versions.md's table)."""

from __future__ import annotations

import pytest

from reconciler import settings
from reconciler.desired.state import container_spec
from reconciler.manifests.models import DriverMode, FalcoSpec
from reconciler.model import container
from reconciler.plan import planner

URL = "http://127.0.0.1:8000"


def spec(version: str, driver: str, **extra: object) -> container.ContainerSpec:
    falco = FalcoSpec.model_validate({"version": version, "driver": driver, **extra})
    return container_spec(falco, drivers_url=URL, driver_relpath="x")


@pytest.mark.parametrize(
    ("version", "driver", "env", "command"),
    [
        ("0.32.2", "kmod", {"DRIVERS_REPO": URL}, ()),
        ("0.36.2", "kmod", {"DRIVERS_REPO": URL}, ()),
        ("0.32.2", "ebpf", {"DRIVERS_REPO": URL, "FALCO_BPF_PROBE": ""}, ()),
        ("0.35.1", "modern_ebpf", {"SKIP_DRIVER_LOADER": "1"}, ("/usr/bin/falco", "--modern-bpf")),
        ("0.32.2", "kmod-preloaded", {"SKIP_DRIVER_LOADER": "1"}, ()),
        ("0.32.2", "none", {"SKIP_DRIVER_LOADER": "1"}, ()),
        # 0.37-0.39: the entrypoint's FALCO_DRIVER_LOADER_OPTIONS picks the type (a
        # FALCOCTL_DRIVER_TYPE alone loses to the entrypoint's own --type flags).
        ("0.37.0", "kmod", {"FALCOCTL_DRIVER_REPOS": URL,
                            "FALCO_DRIVER_LOADER_OPTIONS": "kmod --download"}, ()),
        ("0.37.1", "ebpf", {"FALCOCTL_DRIVER_REPOS": URL,
                            "FALCO_DRIVER_LOADER_OPTIONS": "ebpf --download"}, ()),
        ("0.38.2", "kmod", {"FALCOCTL_DRIVER_REPOS": URL,
                            "FALCO_DRIVER_LOADER_OPTIONS": "kmod --download"}, ()),
        ("0.39.1", "ebpf", {"FALCOCTL_DRIVER_REPOS": URL,
                            "FALCO_DRIVER_LOADER_OPTIONS": "ebpf --download"}, ()),
        # 0.37's options know no modern_ebpf: skip the loader, name the engine.
        ("0.37.1", "modern_ebpf", {"SKIP_DRIVER_LOADER": "1"},
         ("/usr/bin/falco", "-o", "engine.kind=modern_ebpf")),
        ("0.38.2", "modern_ebpf", {"FALCO_DRIVER_LOADER_OPTIONS": "modern_ebpf"}, ()),
        # kmod-preloaded: 0.37 opens kmod by default; 0.38+ must be told.
        ("0.37.0", "kmod-preloaded", {"SKIP_DRIVER_LOADER": "1"}, ()),
        ("0.39.0", "kmod-preloaded", {"SKIP_DRIVER_LOADER": "1"},
         ("/usr/bin/falco", "-o", "engine.kind=kmod")),
        # 0.40+: no loader in the image; the engine always on the command line.
        ("0.40.0", "kmod", {}, ("/usr/bin/falco", "-o", "engine.kind=kmod")),
        ("0.43.1", "ebpf", {}, ("/usr/bin/falco", "-o", "engine.kind=ebpf", "-o",
                                "engine.ebpf.probe=/root/.falco/falco-bpf.o")),
        ("0.44.0", "modern_ebpf", {}, ("/usr/bin/falco", "-o", "engine.kind=modern_ebpf")),
        ("0.40.0", "kmod-preloaded", {}, ("/usr/bin/falco", "-o", "engine.kind=kmod")),
        ("0.41.0", "none", {}, ()),
    ],
)
def test_env_by_mode_and_generation(
    version: str, driver: str, env: dict[str, str], command: tuple[str, ...]
) -> None:
    got = spec(version, driver)
    assert got.env_dict == {"HOST_ROOT": "/host", **env}
    assert got.command == command


@pytest.mark.parametrize(("version", "driver", "args"), [
    ("0.40.0", "kmod", ("kmod", "--download")),
    ("0.43.1", "ebpf", ("ebpf", "--download")),
])
def test_falco_040_and_later_run_the_driver_loader_image_first(
    version: str, driver: str, args: tuple[str, ...],
) -> None:
    got = spec(version, driver)
    assert got.loader == container.LoaderSpec(
        name="falco-driver-loader",
        image=f"docker.io/falcosecurity/falco-driver-loader:{version}",
        args=args, env=(("FALCOCTL_DRIVER_REPOS", URL),),
        mounts=container.loader_mounts("/root/.falco"), network="host", privileged=True)
    assert [str(m) for m in got.loader.mounts] == [
        "/root/.falco:/root/.falco", "/proc:/host/proc:ro", "/boot:/host/boot:ro",
        "/lib/modules:/host/lib/modules:ro", "/usr:/host/usr:ro", "/etc:/host/etc:ro"]
    probe_mount = "/root/.falco:/root/.falco" in [str(m) for m in got.mounts]
    assert probe_mount is (driver == "ebpf")  # Falco opens the probe the loader left


@pytest.mark.parametrize(("version", "driver"), [
    ("0.39.2", "kmod"), ("0.40.0", "modern_ebpf"), ("0.40.0", "kmod-preloaded"),
    ("0.44.0", "none"), ("0.36.2", "ebpf")])
def test_no_loader_run_where_the_image_loads_itself_or_needs_nothing(
    version: str, driver: str,
) -> None:
    assert spec(version, driver).loader is None


def test_a_loader_image_with_its_own_tag_or_digest_keeps_it_and_changes_the_hash() -> None:
    pinned = spec("0.40.0", "kmod", driverLoaderImage="registry.local/loader:0.40.0-fixed")
    assert pinned.loader is not None and pinned.loader.image == "registry.local/loader:0.40.0-fixed"
    assert pinned.spec_hash != spec("0.40.0", "kmod").spec_hash


def test_bash_loader_does_not_get_falcoctl_variables_and_back() -> None:
    """Falco 0.36 ignores FALCOCTL_*; 0.37 ignores DRIVERS_REPO: never mix them up."""
    assert not any(k.startswith("FALCOCTL_") for k in spec("0.36.2", "kmod").env_dict)
    assert "DRIVERS_REPO" not in spec("0.37.1", "kmod").env_dict


def test_always_privileged_with_the_documented_mounts_and_a_restart_policy() -> None:
    got = spec("0.32.2", "kmod")
    assert got.privileged
    assert [str(m) for m in got.mounts] == [
        "/dev:/host/dev", "/proc:/host/proc:ro", "/etc:/host/etc:ro", "/usr:/host/usr:ro",
        "/var/run/docker.sock:/host/var/run/docker.sock",
    ]
    assert got.restart_policy
    assert got.network == "host"


def test_image_is_tagged_with_the_version_unless_pinned() -> None:
    assert spec("0.32.2", "kmod").image == "docker.io/falcosecurity/falco:0.32.2"
    pinned = spec("0.32.2", "kmod", image="registry.local:5000/falco:custom")
    assert pinned.image == "registry.local:5000/falco:custom"
    by_port = spec("0.32.2", "kmod", image="registry.local:5000/falco")
    assert by_port.image == "registry.local:5000/falco:0.32.2"


def test_extra_env_is_kept_but_cannot_override_the_driver_repository() -> None:
    got = spec("0.32.2", "kmod", env={"FALCO_LOG_LEVEL": "debug", "DRIVERS_REPO": "http://evil"})
    assert got.env_dict["FALCO_LOG_LEVEL"] == "debug"
    assert got.env_dict["DRIVERS_REPO"] == URL


def test_spec_hash_changes_with_env_and_not_with_revision() -> None:
    a = spec("0.32.2", "kmod")
    b = spec("0.32.2", "kmod", env={"X": "1"})
    assert a.spec_hash != b.spec_hash
    assert a.spec_hash == spec("0.32.2", "kmod").spec_hash
    la = a.labels(revision="r1", host="web")
    lb = a.labels(revision="r2", host="web")
    assert la[container.LABEL_SPEC_HASH] == lb[container.LABEL_SPEC_HASH]
    assert la[container.LABEL_REVISION] != lb[container.LABEL_REVISION]


def test_modes_are_all_covered() -> None:
    for mode in DriverMode:
        spec("0.38.2", mode.value)


@pytest.mark.parametrize(("listen", "gateway", "url"), [
    ("127.0.0.1:8000", None, "http://127.0.0.1:8000"),
    ("0.0.0.0:9000", None, "http://127.0.0.1:9000"),
    ("[::]:8000", None, "http://[::1]:8000"),
    ("0.0.0.0:8000", "172.18.0.1", "http://172.18.0.1:8000"),
    ("172.18.0.1:8000", "172.18.0.1", "http://172.18.0.1:8000"),
])
def test_drivers_url_by_network(listen: str, gateway: str | None, url: str) -> None:
    assert planner.drivers_url(settings.Settings(listen=listen), gateway) == url
