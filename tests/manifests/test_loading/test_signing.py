"""``signing`` in a Host and a DriverBuild: the NAME of a key in the build host's keyring,
never a path (a located error says so), resolved against the host's ``signing_keys`` into
the key and certificate the build request of each module (never of a probe) carries; a
name the keyring lacks is carried unresolved, so its build refuses and says why."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

from reconciler import desired, plan
from reconciler.apply import executor
from reconciler.builder import BuildOutcome, BuildRequest
from reconciler.edges.store.local import Store
from reconciler.manifests import loading, schema
from reconciler.model.artifacts import DriverKind
from reconciler.model.host import HostFacts
from reconciler.model.modsig import Signing
from reconciler.observe.state import ObservedState

MOK = Signing("/etc/falco-reconciler/mok/MOK.priv", "/etc/falco-reconciler/mok/MOK.der", "mok")
OTHER = Signing("/srv/other.key", "/srv/other.crt", "other")
KEYRING = {"mok": MOK, "other": OTHER}
HOST = """\
apiVersion: falco-reconciler/v1
kind: Host
metadata: {name: web}
spec:
  falco: {version: 0.32.2}
  kernels: [{target: debian, kernelRelease: 5.10.0-20-cloud-amd64, kernelVersion: 1}]
  signing:
    key: %s
"""
BUILD = """\
apiVersion: falco-reconciler/v1
kind: DriverBuild
metadata: {name: both}
spec:
  target: debian
  driverVersion: 2.0.0+driver
  kernelRelease: 5.10.0-14-cloud-amd64
  outputs: [kmod, ebpf]
  signing: {key: other}
"""
FACTS = HostFacts("web-1", "5.10.0-14-cloud-amd64", "#1 SMP Debian 5.10.113-1 (2022-04-29)",
                  "x86_64", "debian", "11", (("ID", "debian"), ("VERSION_ID", "11")),
                  "etc/os-release")


def _problems(text: str) -> list[str]:
    return [str(p) for p in loading.problems([("m.yaml", textwrap.dedent(text).encode())])]


def test_a_path_or_a_certificate_is_a_located_error() -> None:
    """A push cannot make a build host read a file: ``key`` is a name, and a manifest has
    no ``certificate`` to give."""
    must = ("must be the name of a signing key in the build host's keyring (its "
            "signing_keys setting: letters, digits and . _ -, a letter or digit first, at "
            "most 64 characters), never a path: keys are the host's, not the repository's")
    for bad in ("/etc/falco-reconciler/webhook.secret", "../secret", "mok key", ".mok"):
        assert _problems(HOST % bad) == [f"m.yaml:8: spec.signing.key: {must}, got '{bad}'"]
    assert _problems(HOST % "mok-2026.a_b") == []
    assert _problems(BUILD.replace("{key: other}", "{key: other, certificate: /c.pem}")) == [
        "m.yaml:9: unknown key 'certificate' in spec.signing; expected key"]


def test_the_schema_describes_signing() -> None:
    defs = schema.json_schema()["$defs"]
    assert set(defs["SigningSpec"]["required"]) == {"key"}
    assert set(defs["SigningSpec"]["properties"]) == {"key"}
    assert "signing" in defs["HostSpec"]["properties"]
    assert "signing" in defs["DriverBuildSpec"]["properties"]


def test_signing_flows_into_the_build_request_of_each_module_only(tmp_path: Path) -> None:
    manifests = loading.load([("a.yaml", (HOST % "mok").encode()),
                              ("b.yaml", BUILD.encode())])
    want = desired.compute(manifests, FACTS, "r" * 40, drivers_url="http://127.0.0.1:8000",
                           keyring=KEYRING)

    by_release = {(a.key.kernel_release, a.key.kind): a.signing for a in want.artifacts}
    assert by_release == {
        ("5.10.0-14-cloud-amd64", DriverKind.KMOD): MOK,  # the Host's comes first
        ("5.10.0-20-cloud-amd64", DriverKind.KMOD): MOK,
        ("5.10.0-14-cloud-amd64", DriverKind.EBPF): None,  # a probe is never signed
    }
    assert want.notes == (
        "DriverBuild/both: 2.0.0+driver/x86_64/falco_debian_5.10.0-14-cloud-amd64_1.ko is "
        "already wanted signed with key 'mok'; 'other' is not used for it",)

    requests: list[BuildRequest] = []

    def build(wanted: Sequence[BuildRequest]) -> Sequence[BuildOutcome]:
        requests.extend(wanted)
        return tuple(BuildOutcome(r) for r in wanted)

    run = executor.Executor(Store(tmp_path), build, lambda _c, _d: "ok", lambda _c, _d: "ok")
    run.run(plan.diff(want, ObservedState()), want)
    assert sorted((r.kernel.kernel_release, r.kinds, r.signing) for r in requests) == [
        ("5.10.0-14-cloud-amd64", (DriverKind.EBPF, DriverKind.KMOD), MOK),
        ("5.10.0-20-cloud-amd64", (DriverKind.KMOD,), MOK),
    ]


def test_a_name_the_keyring_lacks_is_carried_unresolved() -> None:
    manifests = loading.load([("a.yaml", (HOST % "absent").encode())])
    want = desired.compute(manifests, FACTS, "r" * 40, drivers_url="http://127.0.0.1:8000",
                           keyring=KEYRING)
    signings = {a.signing for a in want.artifacts}
    assert signings == {Signing("", "", "absent")}
    assert not Signing("", "", "absent").known
