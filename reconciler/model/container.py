"""The Falco container a Host manifest asks for, as data.

What Falco's image needs differs by driver mode and by the loader its version ships:

================  ==========================================  ==================================
mode              Falco <= 0.36 (bash falco-driver-loader)     Falco >= 0.37 (falcoctl)
================  ==========================================  ==================================
kmod              DRIVERS_REPO=<url>                           FALCOCTL_DRIVER_REPOS=<url>,
                                                               FALCOCTL_DRIVER_TYPE=kmod
ebpf              DRIVERS_REPO=<url>, FALCO_BPF_PROBE=""       ... FALCOCTL_DRIVER_TYPE=ebpf
modern_ebpf       SKIP_DRIVER_LOADER=1, falco --modern-bpf     FALCOCTL_DRIVER_TYPE=modern_ebpf
                  (0.35+; the probe is inside Falco)
kmod-preloaded    SKIP_DRIVER_LOADER=1 (module insmod'ed       SKIP_DRIVER_LOADER=1
                  on the host by us first)
none              SKIP_DRIVER_LOADER=1                         SKIP_DRIVER_LOADER=1
================  ==========================================  ==================================

Every mode gets the mounts and privileges of Falco's documented ``docker run``. The
container carries labels naming us, the manifest revision and a hash of this spec: the
hash (not the revision) decides whether a running container still matches.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from reconciler.model.modes import DriverMode
from reconciler.model.versions import FalcoVersion, LoaderKind, loader_kind

LABEL_MANAGED = "io.falco-reconciler.managed"
LABEL_HOST = "io.falco-reconciler.host"
LABEL_REVISION = "io.falco-reconciler.revision"
LABEL_SPEC_HASH = "io.falco-reconciler.spec-hash"
LABEL_DRIVER = "io.falco-reconciler.driver"
# The host name the reconciler acts as: on an engine several reconcilers share (tests, a
# lab), each acts only on the containers it made (one without the label counts as ours).
LABEL_HOSTNAME = "io.falco-reconciler.hostname"

RESTART_POLICY = "always"


# A replaced container is renamed aside as ``<name>-previous-<first 8 of its id>`` until
# the new one has settled (reconcile.deploy); recovery finds what a crash left by it.
_ASIDE = "-previous-"


def aside_name(name: str, container_id: str) -> str:
    return f"{name}{_ASIDE}{container_id[:8]}"


def is_aside_of(candidate: str, name: str) -> bool:
    return re.fullmatch(re.escape(name + _ASIDE) + "[0-9a-f]{8}", candidate) is not None


@dataclass(frozen=True, order=True)
class BindMount:
    """A host path bound into a container (Falco's, a loader's or a builder's)."""

    source: str
    target: str
    read_only: bool

    def __str__(self) -> str:
        return f"{self.source}:{self.target}{':ro' if self.read_only else ''}"


DOCKER_SOCKET = "/var/run/docker.sock"


def base_mounts(docker_socket: str = DOCKER_SOCKET) -> tuple[BindMount, ...]:
    """Falco's documented mounts. ``/usr`` too, read-only, as Falco's own install guide
    has it: ``/etc/os-release`` is a symlink into ``/usr/lib`` on most distributions, and the
    loader names the driver from it. The socket is the one of the engine we talk to, since
    binding a path that does not exist would make the engine create a folder there."""
    return (
        BindMount("/dev", "/host/dev", read_only=False),
        BindMount("/proc", "/host/proc", read_only=True),
        BindMount("/etc", "/host/etc", read_only=True),
        BindMount("/usr", "/host/usr", read_only=True),
        BindMount(docker_socket, "/host/var/run/docker.sock", read_only=False),
    )


@dataclass(frozen=True)
class ContainerSpec:
    """Everything that decides whether a running Falco container is the right one."""

    name: str
    image: str
    env: tuple[tuple[str, str], ...]
    mounts: tuple[BindMount, ...]
    network: str
    command: tuple[str, ...] = ()
    privileged: bool = True
    restart_policy: str = RESTART_POLICY
    driver: str = ""  # store relpath of the artifact it loads, "" for none

    @property
    def env_dict(self) -> dict[str, str]:
        return dict(self.env)

    @property
    def spec_hash(self) -> str:
        canonical = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:32]

    def labels(self, *, revision: str, host: str, hostname: str = "") -> dict[str, str]:
        made = {
            LABEL_MANAGED: "true",
            LABEL_HOST: host,
            LABEL_REVISION: revision,
            LABEL_SPEC_HASH: self.spec_hash,
            LABEL_DRIVER: self.driver,
        }
        if hostname:
            made[LABEL_HOSTNAME] = hostname
        return made


def ours(labels: Mapping[str, str], hostname: str) -> bool:
    """Whether a managed container was made by the reconciler acting as ``hostname``."""
    return labels.get(LABEL_HOSTNAME, hostname) == hostname


def image_ref(image: str, version: str) -> str:
    """``image:version`` unless the image already pins a tag or digest."""
    last = image.rsplit("/", 1)[-1]
    if "@" in last or ":" in last:
        return image
    return f"{image}:{version}"


def driver_env(
    mode: DriverMode, loader: LoaderKind, drivers_url: str
) -> tuple[dict[str, str], tuple[str, ...]]:
    """The environment (and command, if any) that makes Falco's loader do the right thing."""
    if mode in (DriverMode.KMOD_PRELOADED, DriverMode.NONE):
        return {"SKIP_DRIVER_LOADER": "1"}, ()
    if loader is LoaderKind.FALCOCTL:
        env = {"FALCOCTL_DRIVER_TYPE": mode.value}
        if mode is not DriverMode.MODERN_EBPF:
            env["FALCOCTL_DRIVER_REPOS"] = drivers_url
        return env, ()
    if mode is DriverMode.MODERN_EBPF:
        return {"SKIP_DRIVER_LOADER": "1"}, ("/usr/bin/falco", "--modern-bpf")
    if mode is DriverMode.EBPF:
        return {"DRIVERS_REPO": drivers_url, "FALCO_BPF_PROBE": ""}, ()
    return {"DRIVERS_REPO": drivers_url}, ()


def spec_for(
    *, name: str, image: str, version: FalcoVersion, mode: DriverMode,
    env: Mapping[str, str], network: str, drivers_url: str, driver_relpath: str = "",
    privileged: bool = True, docker_socket: str = DOCKER_SOCKET,
) -> ContainerSpec:
    """The container spec of a Host's Falco (pure); ``image`` is already tagged.

    ``privileged`` is False only on engines that cannot grant every capability (such as
    the CI machines, whose bounding set lacks CAP_SYS_RESOURCE); Falco itself needs it.
    """
    ours, command = driver_env(mode, loader_kind(version), drivers_url)
    # The user's extra env comes first so ours wins: a manifest cannot point Falco at
    # another driver repository by accident.
    merged = {**dict(env), "HOST_ROOT": "/host", **ours}
    return ContainerSpec(
        name=name,
        image=image,
        env=tuple(sorted(merged.items())),
        mounts=base_mounts(docker_socket),
        network=network,
        command=command,
        privileged=privileged,
        driver=driver_relpath,
    )
