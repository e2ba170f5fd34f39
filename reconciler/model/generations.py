"""What each generation of Falco's image needs to run the declared driver from our server.

Falco's images changed three times in how they get a driver (docs/falco-versions.md):

- ``<= 0.36``: the entrypoint runs the bash ``falco-driver-loader`` unless
  ``SKIP_DRIVER_LOADER`` is set; ``DRIVERS_REPO`` says where to download from, and
  ``FALCO_BPF_PROBE`` (set, even empty) asks for the legacy eBPF probe.
- ``0.37-0.39``: the entrypoint runs falcoctl as ``FALCO_DRIVER_LOADER_OPTIONS`` says
  (``<type> [--compile] [--download]``): ``falcoctl driver config --type <type>`` writes
  the engine Falco opens, then ``falcoctl driver install`` fetches it from
  ``FALCOCTL_DRIVER_REPOS``. A type on the command line beats ``FALCOCTL_DRIVER_TYPE``,
  and without options 0.38+ pass ``--type modern_ebpf --type kmod --type ebpf``
  themselves, so the type must come through the options. 0.37's options know only kmod
  and ebpf, and its falco.yaml opens kmod; 0.38 and 0.39 take modern_ebpf too, and their
  falco.yaml opens modern_ebpf.
- ``>= 0.40``: the falco image has no loader. The separate ``falco-driver-loader`` image
  (same tag) runs to completion first: it inserts the module, or leaves the probe at
  ``/root/.falco/falco-bpf.o`` (a host folder it shares with Falco). Its ``engine.kind``
  is written inside its own container, so Falco is told the engine with ``-o``.

We always ask for ``--download`` only: we built the driver, nothing is compiled on the host.

With ``mirrors`` (the ``falco_upstreams`` setting) Falco gets our server first and those
after it, so its loader still finds a driver while our server is down: the bash loader
reads ``DRIVERS_REPO`` as a list split on comma and space from 0.33 (0.32's takes one
URL, and gets ours alone), falcoctl reads ``FALCOCTL_DRIVER_REPOS`` split on comma.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from reconciler.model.modes import DriverMode
from reconciler.model.versions import (
    FalcoVersion,
    ImageGeneration,
    default_engine,
    image_generation,
)

FALCO = "/usr/bin/falco"
FALCO_HOME = "/root/.falco"  # falcoctl's download folder and the probe's place
PROBE_PATH = f"{FALCO_HOME}/falco-bpf.o"
DEFAULT_LOADER_IMAGE = "docker.io/falcosecurity/falco-driver-loader"
# The variables we set from the driver mode: a manifest's env may not set them.
OWNED_ENV = ("DRIVERS_REPO", "FALCO_BPF_PROBE", "SKIP_DRIVER_LOADER", "HOST_ROOT",
             "FALCO_DRIVER_LOADER_OPTIONS")
OWNED_ENV_PREFIXES = ("FALCOCTL_",)

_ENGINE = {DriverMode.KMOD: "kmod", DriverMode.KMOD_PRELOADED: "kmod",
           DriverMode.EBPF: "ebpf", DriverMode.MODERN_EBPF: "modern_ebpf"}


@dataclass(frozen=True)
class LoaderRun:
    """The driver-loader image run to completion before Falco (0.40+)."""

    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class DriverSetup:
    """What one Falco image needs for its driver: env, command, mounts, a loader run."""

    env: tuple[tuple[str, str], ...] = ()
    command: tuple[str, ...] = ()  # empty: the image's own
    falco_home: bool = False  # mount the host's /root/.falco (the probe lives there)
    loader: LoaderRun | None = None


def _engine_command(kind: str, *extra: str) -> tuple[str, ...]:
    return (FALCO, "-o", f"engine.kind={kind}", *extra)


FIRST_REPO_LIST = FalcoVersion(0, 33, 0)  # falco-driver-loader splits DRIVERS_REPO from here


def repos(version: FalcoVersion, drivers_url: str, mirrors: tuple[str, ...] = ()) -> str:
    """What Falco ``version``'s loader is given to download from: our server, then the
    mirrors where its loader takes a list."""
    if not mirrors or version < FIRST_REPO_LIST:
        return drivers_url
    return ",".join((drivers_url, *(m for m in mirrors if m != drivers_url)))


def driver_setup(mode: DriverMode, version: FalcoVersion, drivers_url: str,
                 mirrors: tuple[str, ...] = ()) -> DriverSetup:
    """The setup that makes Falco ``version`` run ``mode`` from ``drivers_url`` (pure),
    falling back on ``mirrors`` where its loader can."""
    drivers_url = repos(version, drivers_url, mirrors)
    generation = image_generation(version)
    if mode is DriverMode.NONE:
        skip = () if generation is ImageGeneration.LOADER_IMAGE else (
            ("SKIP_DRIVER_LOADER", "1"),)
        return DriverSetup(env=skip)
    if generation is ImageGeneration.BASH_ENTRYPOINT:
        return _bash(mode, drivers_url)
    if generation is ImageGeneration.FALCOCTL_ENTRYPOINT:
        return _falcoctl_entrypoint(mode, version, drivers_url)
    return _loader_image(mode, drivers_url)


def _bash(mode: DriverMode, drivers_url: str) -> DriverSetup:
    if mode is DriverMode.KMOD_PRELOADED:
        return DriverSetup(env=(("SKIP_DRIVER_LOADER", "1"),))
    if mode is DriverMode.MODERN_EBPF:  # 0.35 and 0.36: the probe is inside Falco
        return DriverSetup(env=(("SKIP_DRIVER_LOADER", "1"),), command=(FALCO, "--modern-bpf"))
    if mode is DriverMode.EBPF:
        return DriverSetup(env=(("DRIVERS_REPO", drivers_url), ("FALCO_BPF_PROBE", "")))
    return DriverSetup(env=(("DRIVERS_REPO", drivers_url),))


def _falcoctl_entrypoint(mode: DriverMode, version: FalcoVersion, drivers_url: str,
                         ) -> DriverSetup:
    engine = _ENGINE[mode]
    if mode is DriverMode.KMOD_PRELOADED or (
            mode is DriverMode.MODERN_EBPF and version < FalcoVersion(0, 38, 0)):
        # No loader; the engine from the command line (0.38+ would open modern_ebpf, and
        # 0.37's options know no modern_ebpf).
        command = () if engine == default_engine(version) else _engine_command(engine)
        return DriverSetup(env=(("SKIP_DRIVER_LOADER", "1"),), command=command)
    if mode is DriverMode.MODERN_EBPF:
        return DriverSetup(env=(("FALCO_DRIVER_LOADER_OPTIONS", "modern_ebpf"),))
    return DriverSetup(env=(("FALCOCTL_DRIVER_REPOS", drivers_url),
                            ("FALCO_DRIVER_LOADER_OPTIONS", f"{engine} --download")))


def _loader_image(mode: DriverMode, drivers_url: str) -> DriverSetup:
    engine = _ENGINE[mode]
    if mode in (DriverMode.KMOD_PRELOADED, DriverMode.MODERN_EBPF):
        return DriverSetup(command=_engine_command(engine))
    loader = LoaderRun(args=(engine, "--download"),
                       env=(("FALCOCTL_DRIVER_REPOS", drivers_url),))
    if mode is DriverMode.EBPF:
        return DriverSetup(command=_engine_command(engine, "-o", f"engine.ebpf.probe={PROBE_PATH}"),
                           falco_home=True, loader=loader)
    return DriverSetup(command=_engine_command(engine), loader=loader)


def owned_env_key(key: str) -> bool:
    """Whether the reconciler sets ``key`` itself (a manifest's env may not)."""
    return key in OWNED_ENV or key.startswith(OWNED_ENV_PREFIXES)


def merged_env(user: Mapping[str, str], setup: DriverSetup) -> tuple[tuple[str, str], ...]:
    """The user's env, ``HOST_ROOT`` and ours, ours last so a stray key cannot win."""
    return tuple(sorted({**dict(user), "HOST_ROOT": "/host", **dict(setup.env)}.items()))
