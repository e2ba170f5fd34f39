"""One pass of the pipeline up to the plan: manifests -> facts -> desired -> observed -> plan.

The edges (git, the host's files, the store, Docker) are read here and nowhere else in
the pass; everything between is the pure core.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from typing import Any

from reconciler.edges import gitrepo, hostfacts, kmod, store
from reconciler.edges.docker import client as dockerapi
from reconciler.errors import ConfigError
from reconciler.manifests import loading
from reconciler.manifests.models import DriverMode, ManifestSet, PullPolicy
from reconciler.reconcile import desired, observed, plan
from reconciler.settings import Settings


@dataclass(frozen=True)
class Inputs:
    snapshot: gitrepo.Snapshot
    manifests: ManifestSet
    facts: hostfacts.HostFacts


@dataclass(frozen=True)
class Planned:
    inputs: Inputs
    desired: desired.DesiredState
    observed: observed.ObservedState
    plan: plan.Plan


_WILDCARDS = ("", "0.0.0.0", "::")  # noqa: S104 - names, not binds


def drivers_url(settings: Settings, gateway: str | None = None) -> str:
    """Where Falco reaches our server: on loopback from the host network, or at the
    gateway of its bridge network (which the server must then listen on)."""
    host, port = settings.listen_address
    if gateway is not None:
        if host not in (*_WILDCARDS, gateway):
            raise ConfigError(
                f"Falco on a bridge network reaches this host at {gateway}, but the driver "
                f"server listens on {host}: set --listen 0.0.0.0:{port} or {gateway}:{port}"
            )
        host = gateway
    elif host in ("", "0.0.0.0"):  # noqa: S104 - a wildcard bind is reached on loopback
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def drivers_url_for(settings: Settings, manifests: ManifestSet, hostname: str, client: Any) -> str:
    """The URL for the network this host's Falco will be on."""
    located = manifests.host_for(hostname)
    network = located.value.spec.falco.network if located else "host"
    if network == "host":
        return drivers_url(settings)
    return drivers_url(settings, dockerapi.network_gateway(client, network))


def read_inputs(settings: Settings, *, one_shot: bool = False) -> Inputs:
    """Read git, the manifests and the host's facts.

    ``one_shot`` (a CLI command that exits after this pass) moves everything loaded into
    the collector's permanent generation and stops collecting: tens of thousands of
    manifest objects are never garbage, and scanning them again and again cost a plan of
    the benchmark fleet about 0.7 s. A daemon must not do that (each pass loads anew).
    """
    snap = gitrepo.snapshot(settings.repo, settings.ref, settings.path, settings.state_dir)
    manifests = loading.load(snap.files)
    if one_shot:
        # The process ends after this pass: nothing it makes needs collecting either.
        gc.freeze()
        gc.disable()
    host = hostfacts.read(settings.host_root, hostname=settings.hostname)
    return Inputs(snap, manifests, host)


def make_plan(
    settings: Settings, client: Any, *, adopt: bool = False, one_shot: bool = False
) -> Planned:
    inputs = read_inputs(settings, one_shot=one_shot)
    want = desired.compute(
        inputs.manifests, inputs.facts, inputs.snapshot.revision,
        drivers_url=drivers_url_for(settings, inputs.manifests, inputs.facts.hostname, client),
        privileged=settings.privileged,
        docker_socket=dockerapi.socket_path(),
    )
    present, corrupt = store.observe(store.Store(settings.store), (a.key for a in want.artifacts))
    names = [want.container.spec.name] if want.container else []
    containers = dockerapi.observe_containers(client, names)
    image = None
    if want.container is not None:
        running = next((c for c in containers if c.name == names[0]), None)
        image = dockerapi.observe_image(
            client, want.container.spec.image,
            ask_registry=want.container.pull is PullPolicy.ALWAYS,
            running_image_id=running.image_id if running else "",
        )
    module = None
    if want.container is not None and want.container.mode is DriverMode.KMOD_PRELOADED:
        module = kmod.observe(settings.host_root)
    actual = observed.from_parts(present, corrupt, containers, image, module)
    return Planned(inputs, want, actual, plan.diff(want, actual, adopt=adopt))
