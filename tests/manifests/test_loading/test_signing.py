"""``signing`` in a Host and a DriverBuild: absolute paths, located errors otherwise, and
the key and certificate carried through the desired state into the build request of
each module (never of a probe)."""

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

MOK = Signing("/etc/falco-reconciler/mok/MOK.priv", "/etc/falco-reconciler/mok/MOK.der")
HOST = """\
apiVersion: falco-reconciler/v1
kind: Host
metadata: {name: web}
spec:
  falco: {version: 0.32.2}
  kernels: [{target: debian, kernelRelease: 5.10.0-20-cloud-amd64, kernelVersion: 1}]
  signing:
    key: %s
    certificate: %s
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
  signing: {key: /srv/other.key, certificate: /srv/other.crt}
"""
FACTS = HostFacts("web-1", "5.10.0-14-cloud-amd64", "#1 SMP Debian 5.10.113-1 (2022-04-29)",
                  "x86_64", "debian", "11", (("ID", "debian"), ("VERSION_ID", "11")),
                  "etc/os-release")


def _problems(text: str) -> list[str]:
    return [str(p) for p in loading.problems([("m.yaml", textwrap.dedent(text).encode())])]


def test_relative_or_unclean_paths_are_located_errors() -> None:
    must = ("must be the absolute path of the signing {} on the build host (/ first, no "
            "control characters or ':', no empty, . or .. component, at most 4095 "
            "characters)")
    assert sorted(_problems(HOST % ("MOK.priv", "/etc/mok/../MOK.der"))) == [
        f"m.yaml:8: spec.signing.key: {must.format('key')}, got 'MOK.priv'",
        f"m.yaml:9: spec.signing.certificate: {must.format('certificate')}, "
        "got '/etc/mok/../MOK.der'",
    ]
    for bad in ("/etc/mok/", "/etc//mok", "/etc/./mok", "/etc/a:b", "/"):
        assert _problems(HOST % ("/etc/mok/k", bad)) == [
            f"m.yaml:9: spec.signing.certificate: {must.format('certificate')}, got '{bad}'"]
    assert _problems(HOST % ("/etc/mok/.k", "/etc/mok/..c...")) == []
    assert _problems(BUILD.replace("certificate: /srv/other.crt", "cert: /srv/other.crt")) == [
        "m.yaml:9: missing required key 'certificate' in spec.signing",
        "m.yaml:9: unknown key 'cert' in spec.signing; expected one of key, certificate",
    ]


def test_the_schema_describes_signing() -> None:
    defs = schema.json_schema()["$defs"]
    assert set(defs["SigningSpec"]["required"]) == {"key", "certificate"}
    assert "signing" in defs["HostSpec"]["properties"]
    assert "signing" in defs["DriverBuildSpec"]["properties"]


def test_signing_flows_into_the_build_request_of_each_module_only(tmp_path: Path) -> None:
    manifests = loading.load([("a.yaml", (HOST % (MOK.key, MOK.certificate)).encode()),
                              ("b.yaml", BUILD.encode())])
    want = desired.compute(manifests, FACTS, "r" * 40, drivers_url="http://127.0.0.1:8000")

    by_release = {(a.key.kernel_release, a.key.kind): a.signing for a in want.artifacts}
    assert by_release == {
        ("5.10.0-14-cloud-amd64", DriverKind.KMOD): MOK,  # the Host's comes first
        ("5.10.0-20-cloud-amd64", DriverKind.KMOD): MOK,
        ("5.10.0-14-cloud-amd64", DriverKind.EBPF): None,  # a probe is never signed
    }
    assert want.notes == (
        "DriverBuild/both: 2.0.0+driver/x86_64/falco_debian_5.10.0-14-cloud-amd64_1.ko is "
        f"already wanted signed with {MOK.certificate}; /srv/other.crt is not used for it",)

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
