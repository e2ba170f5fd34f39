"""The observe stage of a pass: what is there now, read through ``Sources``, as one value.

Given what is wanted, it reads the store (and decides what its files mean,
``observe.stored``), the engine's containers and image, the loaded module, and asks the
upstreams for what the store lacks. Every read goes through a Protocol of ``sources``,
so this stage runs the same over the real adapters and over ``observe.fakes``.
"""

from __future__ import annotations

from reconciler import desired
from reconciler.edges.docker.protocol import EngineReader
from reconciler.model import container
from reconciler.model.artifacts import ArtifactKey
from reconciler.model.modes import DriverMode, PullPolicy
from reconciler.model.observations import ObservedContainer, ObservedImage
from reconciler.model.stored import WantedSigner
from reconciler.observe import state, stored
from reconciler.observe.sources import HostReader, Sources
from reconciler.observe.survey import Survey


def observe(sources: Sources, want: desired.DesiredState, *,
            ask_upstreams: bool = True) -> state.ObservedState:
    """What is there of ``want``; the upstreams are asked for what the store lacks unless
    ``ask_upstreams`` is False (this host always builds, or has no upstreams)."""
    held = stored.classify(sources.store.read(a.key for a in want.artifacts),
                           wanted_signers(sources.host, want))
    found_containers = containers(sources.engine, want)
    image = None
    module = None
    module_file_version = None
    if want.container is not None:
        running = next((c for c in found_containers if c.name == want.container.spec.name),
                       None)
        image = observe_image(sources.engine, want.container, running)
        if want.container.mode is DriverMode.KMOD_PRELOADED:
            module = sources.host.loaded_module()
            if want.container.artifact is not None:
                module_file_version = sources.store.module_version(want.container.artifact)
    found = survey(sources, want, held) if ask_upstreams else Survey()
    return state.from_parts(held.present, held.corrupt, found_containers, image,
                            module=module, unsafe=held.unsafe, misfits=held.misfits,
                            stored=held.stored, unsigned=held.unsigned,
                            module_file_version=module_file_version, offers=found.offers,
                            upstream_notes=found.notes, upstreams_down=found.down,
                            held_back=sources.loadtests.held_back(
                                a.key for a in want.artifacts if a.key not in held.present),
                            unreadable=sources.loadtests.unreadable(
                                want.container.artifact if want.container is not None
                                and want.container.artifact in held.present else None))


def wanted_signers(host: HostReader, want: desired.DesiredState) -> dict[
        ArtifactKey, WantedSigner]:
    """The signer each module wanted signed must carry, by its certificate (read once per
    certificate here); an unreadable certificate leaves why, and no module passes it."""
    by_path: dict[str, WantedSigner] = {}
    signers: dict[ArtifactKey, WantedSigner] = {}
    for artifact in want.artifacts:
        if artifact.signing is None:
            continue
        path = artifact.signing.certificate
        if not artifact.signing.known:
            by_path[path] = (f"the signing key {artifact.signing.name!r} is not in this "
                             "build host's keyring (signing_keys)")
        elif path not in by_path:
            by_path[path] = host.signer(path)
        signers[artifact.key] = by_path[path]
    return signers


def survey(sources: Sources, want: desired.DesiredState, held: stored.Holdings) -> Survey:
    """Which upstream has each artifact the store lacks; modules wanted signed are always
    built (no upstream signs with our key), and one behind an unsafe folder could not be
    stored anyway."""
    unsafe = {key for key, _folder in held.unsafe}
    missing = [a.key for a in want.artifacts if a.signing is None
               and a.key not in held.present and a.key not in unsafe]
    return sources.upstreams.offers(missing)


def containers(engine: EngineReader, want: desired.DesiredState) -> tuple[
        ObservedContainer, ...]:
    """Our labelled containers (of this host name) plus any container holding the
    wanted name."""
    found = {c.id: c for c in engine.containers({container.LABEL_MANAGED: "true"})
             if container.ours(c.label_map, want.hostname)}
    if want.container is not None:
        named = engine.container(want.container.spec.name)
        if named is not None:
            found[named.id] = named
    return tuple(found.values())


def observe_image(engine: EngineReader, want: desired.DesiredContainer,
                  running: ObservedContainer | None) -> ObservedImage:
    """The local image; with ``pull: always`` also the digest its registry serves now
    and the digests of the image Falco runs. The registry is asked without pulling,
    so a plan stays free of changes."""
    ref = want.spec.image
    local = engine.image_id(ref)
    if want.pull is not PullPolicy.ALWAYS:
        return ObservedImage(ref, local)
    remote = engine.registry_digest(ref)
    digests = engine.repo_digests(running.image_id) if running and running.image_id else ()
    return ObservedImage(ref, local, remote, digests)
