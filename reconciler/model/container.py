"""The Falco container a Host manifest asks for, as data: its spec, and for Falco 0.40+
the driver-loader run that comes before it.

What the image needs per driver mode and image generation is ``model.generations``'. Every
mode gets the mounts and privileges of Falco's documented ``docker run``. The container
carries labels naming us, the manifest revision and a hash of this spec (the loader run
included): the hash, not the revision, decides whether a running container still matches.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from reconciler.model import generations
from reconciler.model.modes import DriverMode
from reconciler.model.versions import FalcoVersion

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
# the new one has settled (apply.deploy); recovery finds what a crash left by it.
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


def loader_mounts(falco_home: str) -> tuple[BindMount, ...]:
    """The driver-loader image's documented mounts; ``falco_home`` is the host's
    /root/.falco (its downloads, and the probe Falco then opens)."""
    return (
        BindMount(falco_home, generations.FALCO_HOME, read_only=False),
        BindMount("/proc", "/host/proc", read_only=True),
        BindMount("/boot", "/host/boot", read_only=True),
        BindMount("/lib/modules", "/host/lib/modules", read_only=True),
        BindMount("/usr", "/host/usr", read_only=True),
        BindMount("/etc", "/host/etc", read_only=True),
    )


@dataclass(frozen=True)
class LoaderSpec:
    """The falco-driver-loader container run to completion before Falco starts."""

    name: str
    image: str
    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    mounts: tuple[BindMount, ...]
    network: str
    privileged: bool = True


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
    loader: LoaderSpec | None = None  # runs to completion before each (re)start

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


def spec_for(
    *, name: str, image: str, version: FalcoVersion, mode: DriverMode,
    env: Mapping[str, str], network: str, drivers_url: str, driver_relpath: str = "",
    privileged: bool = True, docker_socket: str = DOCKER_SOCKET,
    loader_image: str = generations.DEFAULT_LOADER_IMAGE, falco_home: str = "/root/.falco",
    mirrors: tuple[str, ...] = (),
) -> ContainerSpec:
    """The container spec of a Host's Falco (pure); ``image`` is already tagged, and a
    loader image without a tag or digest gets Falco's tag.

    ``privileged`` is False only on engines that cannot grant every capability (such as
    the CI machines, whose bounding set lacks CAP_SYS_RESOURCE); Falco itself needs it.
    """
    setup = generations.driver_setup(mode, version, drivers_url, mirrors)
    mounts = base_mounts(docker_socket)
    if setup.falco_home:
        mounts = (*mounts, BindMount(falco_home, generations.FALCO_HOME, read_only=False))
    loader = None
    if setup.loader is not None:
        last = image.rsplit("/", 1)[-1]
        tag = last.partition(":")[2] if ":" in last and "@" not in last else str(version)
        loader = LoaderSpec(
            name=f"{name}-driver-loader", image=image_ref(loader_image, tag),
            args=setup.loader.args, env=setup.loader.env, mounts=loader_mounts(falco_home),
            network=network, privileged=privileged,
        )
    return ContainerSpec(
        name=name,
        image=image,
        env=generations.merged_env(env, setup),
        mounts=mounts,
        network=network,
        command=setup.command,
        privileged=privileged,
        driver=driver_relpath,
        loader=loader,
    )
