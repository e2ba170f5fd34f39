"""observe.gather: the observe stage over fakes of its sources (``observe.fakes``): what
it reads, of whom it asks what, and how the answers land in one ObservedState."""

from __future__ import annotations

from dataclasses import replace

from reconciler.desired.state import (
    DesiredArtifact,
    DesiredContainer,
    DesiredState,
    container_spec,
)
from reconciler.edges.docker.fake import FakeEngine
from reconciler.manifests.models import DriverMode, FalcoSpec, PullPolicy
from reconciler.model import container, modsig
from reconciler.model.artifacts import ArtifactKey, DriverKind
from reconciler.model.observations import LoadedModule
from reconciler.model.offers import Offer
from reconciler.observe import fakes, gather

KMOD = ArtifactKey("2.0.0+driver", "x86_64", "debian", "5.10.0-14-cloud-amd64", "1",
                   DriverKind.KMOD)
EBPF = KMOD._replace(kind=DriverKind.EBPF)
SIGNED = KMOD._replace(kernel_release="5.10.0-15-cloud-amd64")
MOK = modsig.Signer("CN=Our MOK,O=Example", "01:02")
SPEC = container_spec(FalcoSpec(version="0.32.2"), drivers_url="http://127.0.0.1:8000",
                      driver_relpath=KMOD.relpath)


def want(*artifacts: DesiredArtifact, mode: DriverMode = DriverMode.KMOD,
         pull: PullPolicy = PullPolicy.MISSING, falco: bool = True) -> DesiredState:
    return DesiredState(
        "a" * 40, "web-1", "web", artifacts,
        DesiredContainer(SPEC, "web", "0.32.2", mode, KMOD, "http://127.0.0.1:8000",
                         pull=pull) if falco else None)


def artifact(key: ArtifactKey, certificate: str | None = None) -> DesiredArtifact:
    signing = modsig.Signing("/k.pem", certificate) if certificate else None
    return DesiredArtifact(key, ("Host/web",), signing=signing)


def test_the_store_is_read_for_what_is_wanted_and_its_verdicts_reach_the_state() -> None:
    store = fakes.FakeStore({KMOD: fakes.stored_artifact(KMOD), EBPF: None})
    sources = fakes.sources(store=store)
    found = gather.observe(sources, want(artifact(KMOD), artifact(EBPF)))
    assert store.reads == [frozenset({KMOD, EBPF})]
    assert (found.present, found.corrupt, found.stored) == ({KMOD}, {EBPF}, {KMOD, EBPF})


def test_upstreams_are_asked_only_for_what_the_store_lacks_and_no_upstream_can_sign() -> None:
    """A module wanted signed is built (no upstream signs with our key); a present
    artifact is not asked for."""
    offer = Offer("mirror", "http://127.0.0.1:9/x")
    upstreams = fakes.FakeUpstreams({EBPF: (offer,)}, notes=("asked",))
    store = fakes.FakeStore({KMOD: fakes.stored_artifact(KMOD)})
    found = gather.observe(fakes.sources(store=store, upstreams=upstreams),
                           want(artifact(KMOD), artifact(EBPF), artifact(SIGNED, "/c.pem")))
    assert upstreams.asked == [(EBPF,)]
    assert found.offers == ((EBPF, (offer,)),)
    assert found.upstream_notes == ("asked",)


def test_upstreams_are_not_asked_when_told_not_to() -> None:
    upstreams = fakes.FakeUpstreams()
    found = gather.observe(fakes.sources(upstreams=upstreams), want(artifact(EBPF)),
                           ask_upstreams=False)
    assert upstreams.asked == [] and found.offers == ()


def test_an_artifact_behind_an_unsafe_folder_is_not_asked_for() -> None:
    upstreams = fakes.FakeUpstreams()
    store = fakes.FakeStore(unsafe=frozenset({KMOD.driver_version}))
    found = gather.observe(fakes.sources(store=store, upstreams=upstreams),
                           want(artifact(KMOD)))
    assert found.unsafe == ((KMOD, KMOD.driver_version),)
    assert upstreams.asked == [()]


def test_each_certificate_is_read_once_and_holds_its_modules_to_its_signer() -> None:
    other = SIGNED._replace(kernel_release="5.10.0-16-cloud-amd64")
    host = fakes.FakeHost(signers={"/c.pem": MOK})
    store = fakes.FakeStore({SIGNED: fakes.stored_artifact(SIGNED),
                             other: fakes.stored_artifact(other)})
    found = gather.observe(fakes.sources(host=host, store=store),
                           want(artifact(SIGNED, "/c.pem"), artifact(other, "/c.pem")))
    assert host.certificates_read == ["/c.pem"]
    assert found.corrupt == {SIGNED, other}
    assert [why for _key, why in found.unsigned] == [
        f"signed by {MOK} wanted, the store has an unsigned build"] * 2


def test_our_containers_of_this_host_and_the_one_holding_the_wanted_name_are_seen() -> None:
    engine = FakeEngine(images={"falco:x": "sha256:x"})
    for name, hostname in (("mine", "web-1"), ("theirs", "web-2")):
        engine.create(image="falco:x", name=name, labels={
            container.LABEL_MANAGED: "true", container.LABEL_HOSTNAME: hostname})
    engine.create(image="falco:x", name=SPEC.name)  # not ours, but in the way
    engine.create(image="falco:x", name="unrelated")
    found = gather.observe(fakes.sources(engine=engine), want())
    assert sorted(c.name for c in found.containers) == sorted(["mine", SPEC.name])


class Registry(FakeEngine):
    """The fake engine with a registry that serves ``sha256:remote`` for every ref."""

    def registry_digest(self, ref: str) -> str | None:
        return "sha256:remote"

    def repo_digests(self, image_id: str) -> tuple[str, ...]:
        return (f"falco@{image_id}-digest",)


def test_the_image_is_looked_up_and_with_pull_always_the_registry_is_asked() -> None:
    engine = Registry(images={SPEC.image: "sha256:local"})
    found = gather.observe(fakes.sources(engine=engine), want())
    assert found.image is not None
    assert (found.image.ref, found.image.local_id, found.image.remote_digest) == (
        SPEC.image, "sha256:local", None)
    engine.start(engine.create(image=SPEC.image, name=SPEC.name))
    always = gather.observe(fakes.sources(engine=engine), want(pull=PullPolicy.ALWAYS))
    assert always.image is not None
    assert always.image.remote_digest == "sha256:remote"
    assert always.image.running_digests == ("falco@sha256:local-digest",)


def test_kmod_preloaded_reads_the_loaded_module_and_the_stored_modules_version() -> None:
    host = fakes.FakeHost(module=LoadedModule("falco", "0.19.0"))
    store = fakes.FakeStore({KMOD: fakes.stored_artifact(KMOD)},
                            module_versions={KMOD: "0.20.0"})
    found = gather.observe(fakes.sources(host=host, store=store),
                           want(artifact(KMOD), mode=DriverMode.KMOD_PRELOADED))
    assert found.module == LoadedModule("falco", "0.19.0")
    assert found.module_file_version == "0.20.0"
    other_mode = gather.observe(fakes.sources(host=host, store=store), want(artifact(KMOD)))
    assert (other_mode.module, other_mode.module_file_version) == (None, None)


def test_without_a_falco_to_run_no_image_or_module_is_read() -> None:
    host = fakes.FakeHost(module=LoadedModule("falco", "0.19.0"))
    found = gather.observe(fakes.sources(host=host), want(artifact(KMOD), falco=False))
    assert (found.image, found.module) == (None, None)


class RecordingLoadTests:
    """A LoadTestReader that says what it was asked and answers from fixed results."""

    def __init__(self) -> None:
        self.asked: list[object] = []

    def held_back(self, keys: object) -> list[tuple[ArtifactKey, str]]:
        found = list(keys)  # type: ignore[call-overload]
        self.asked.append(("held_back", found))
        return [(k, "failed: Oops") for k in found if k == EBPF]

    def unreadable(self, key: ArtifactKey | None
                   ) -> list[tuple[ArtifactKey, str, tuple[str, ...]]]:
        self.asked.append(("unreadable", key))
        return [(key, "0.20.0", ("unable to mmap",))] if key is not None else []


def test_the_load_tests_are_asked_about_missing_drivers_and_the_stored_one_falco_uses() -> None:
    """Held back: only what the store lacks; unreadable: only Falco's own driver, and only
    when it is stored (a missing one has no result to read)."""
    tests = RecordingLoadTests()
    store = fakes.FakeStore({KMOD: fakes.stored_artifact(KMOD)})
    sources = replace(fakes.sources(store=store), loadtests=tests)
    seen = gather.observe(sources, want(artifact(KMOD), artifact(EBPF)), ask_upstreams=False)
    assert tests.asked == [("held_back", [EBPF]), ("unreadable", KMOD)]
    assert seen.held_back == ((EBPF, "failed: Oops"),)
    assert seen.unreadable == ((KMOD, "0.20.0", ("unable to mmap",)),)
    tests.asked.clear()
    gather.observe(replace(fakes.sources(), loadtests=tests), want(artifact(KMOD)),
                   ask_upstreams=False)
    assert tests.asked == [("held_back", [KMOD]), ("unreadable", None)]
