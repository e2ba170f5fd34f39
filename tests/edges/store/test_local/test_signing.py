"""Who signed a stored module, as the store reads it from the file: a module wanted signed
by a certificate is present only when signed by it, the plan says why otherwise, and
``/index.json`` shows the signer. On a module Debian signed, and on that module unsigned."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from reconciler import plan
from reconciler.desired.state import DesiredArtifact, DesiredState
from reconciler.edges.host import openssl as modsign
from reconciler.edges.host.reader import HostFiles
from reconciler.edges.store import local as stores
from reconciler.httpd.files import StoreFiles
from reconciler.model import modsig
from reconciler.model.artifacts import ArtifactKey, DriverKind
from reconciler.model.stored import StoredArtifact
from reconciler.observe import gather, stored
from reconciler.observe.state import from_parts
from tests.support import signed

KEY = ArtifactKey("2.0.0+driver", "x86_64", "debian", "6.1.0-53-cloud-amd64", "1",
                  DriverKind.KMOD)
MOK = modsig.Signer("CN=Our MOK,O=Example", "01:02")


@pytest.fixture(scope="module")
def debian_module(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return signed.debian_module(tmp_path_factory.mktemp("deb"))


def _publish(store: stores.Store, data: bytes) -> StoredArtifact:
    source = store.root.parent / "built.ko"
    source.write_bytes(data)
    return store.publish(KEY, source)


def test_the_signature_is_read_from_the_stored_module(
    tmp_path: Path, debian_module: bytes,
) -> None:
    store = stores.Store(tmp_path / "store")
    published = _publish(store, debian_module)
    found = store.lookup(KEY)

    assert found is not None
    assert isinstance(found.signature, modsig.ModuleSignature)
    assert found.signature == published.signature == modsig.signature_of(debian_module)
    debian = found.signature.signer
    assert debian is not None
    assert stored.usable(store.lookup(KEY)) is not None  # nobody asked for a signer
    assert stored.usable(store.lookup(KEY), debian) is not None
    assert stored.usable(store.lookup(KEY), MOK) is None
    assert stored.signing_problem(found, MOK) == (
        f"signed by {MOK} wanted, the store has a build signed by {debian}")


def test_an_unsigned_build_is_not_present_for_a_signed_want_and_the_plan_says_so(
    tmp_path: Path, debian_module: bytes,
) -> None:
    signature = modsig.signature_of(debian_module)
    assert signature is not None
    store = stores.Store(tmp_path / "store")
    _publish(store, debian_module[:signature.unsigned_size])

    held = stored.classify(store.read([KEY]), {KEY: MOK})
    assert KEY not in held.present and KEY in held.corrupt
    assert held.unsigned == ((KEY, f"signed by {MOK} wanted, the store has an unsigned build"),)
    unsigned_want = stored.classify(store.read([KEY]))
    assert KEY in unsigned_want.present

    want = DesiredState("rev", "host", None, (
        DesiredArtifact(KEY, ("DriverBuild/mok",), (), signing=modsig.Signing("/k", "/c")),), None)
    observed = from_parts(held.present, held.corrupt, (), unsigned=held.unsigned)
    (change,) = plan.diff(want, observed).changes
    assert (change.op, change.reason) == (plan.Op.BUILD, plan.Reason.UNSIGNED)
    assert change.to_json()["reason"] == (
        f"not signed as wanted; rebuild: signed by {MOK} wanted, the store has an unsigned "
        "build; DriverBuild/mok")


def test_the_observe_stage_reads_the_wanted_signer_from_the_certificate(tmp_path: Path) -> None:
    cert = tmp_path / "mok.pem"
    subprocess.run(
        ["openssl", "req", "-new", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
         "-keyout", str(tmp_path / "mok.key"), "-out", str(cert), "-subj", "/CN=Our MOK"],
        check=True, capture_output=True,
    )
    missing = tmp_path / "gone.pem"
    other = KEY._replace(kernel_release="6.1.0-54-cloud-amd64")
    want = DesiredState("rev", "host", None, (
        DesiredArtifact(KEY, ("Host/web",), (), signing=modsig.Signing("/k", str(cert))),
        DesiredArtifact(other, ("Host/web",), (), signing=modsig.Signing("/k", str(missing))),
    ), None)

    signers = gather.wanted_signers(HostFiles(tmp_path), want)
    assert signers[KEY] == modsign.read_certificate(cert).signer
    assert signers[other] == f"cannot read the signing certificate {missing}: " \
        "No such file or directory"


def test_the_index_shows_who_signed_each_module(tmp_path: Path, debian_module: bytes) -> None:
    store = stores.Store(tmp_path / "store")
    _publish(store, debian_module)
    signature = modsig.signature_of(debian_module)
    assert signature is not None and signature.signer is not None

    (entry,) = json.loads(StoreFiles(store).index_json())["artifacts"]
    assert entry["signer"] == signature.signer.name
    assert entry["signerIssuer"] == signature.signer.issuer
    assert entry["sigKey"] == signature.signer.serial
    assert entry["sigHashAlgo"] == "sha256"

    _publish(store, debian_module[:signature.unsigned_size])
    (entry,) = json.loads(StoreFiles(store).index_json())["artifacts"]
    assert (entry["signer"], entry["sigKey"], entry["sigHashAlgo"]) == (None, None, None)
