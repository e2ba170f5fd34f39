"""Signed modules, for real: Debian's falcosecurity-scap-dkms built against a real bookworm
cloud kernel's headers, signed IN-PROCESS with a key of the build host's keyring made here
as the kernel's ``certs/Makefile`` makes its own (codeSigning, not a CA), then read back by
our parser and by ``modinfo``, and checked by openssl. Nothing from the headers runs with
the key in reach: headers whose ``scripts/sign-file`` is hostile sign the same way, and
their ``sign-file`` never runs.
"""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path
from typing import Any

import pytest

from reconciler.builder import headers, runner, signing, steps
from reconciler.edges.docker import jobs
from reconciler.edges.docker.client import Docker
from reconciler.edges.host import openssl as modsign
from reconciler.edges.store import local as store_mod
from reconciler.edges.store import verifier
from reconciler.errors import StepFailed
from reconciler.model import modsig
from reconciler.model.artifacts import DriverKind
from reconciler.model.container import BindMount
from reconciler.model.modsig import Signing
from reconciler.observe.stored import signing_problem, usable
from tests.builder.helpers import CACHE_ROOT, request
from tests.support.keys import (
    files_holding,
    hostile_headers,
    key_lines,
    make_signing_pair,
    signed_by,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.mark.usefixtures("no_leftover_containers")
def test_a_signed_module_is_published_signed_by_the_certificate_and_the_key_stays_out(
    docker_client: Any, builder_image: str, kernel_release: str, make_config: Any,
    tmp_path: Path, count_containers: Any,
) -> None:
    """The module in the store carries a PKCS#7 signature that names the test certificate
    and the kernel's CONFIG_MODULE_SIG_HASH (our parser and modinfo agree), openssl finds it
    genuine for that certificate, the sidecar is of the signed file, and the key's bytes
    are in no file of the store, the build caches or the build log."""
    pair = make_signing_pair(tmp_path / "keys", "reconciler test signing key")
    cert = modsign.read_certificate(Path(pair.certificate))
    config = make_config()
    events: list[runner.BuildEvent] = []
    wanted = dataclasses.replace(request(kernel_release, "0.1.1-dkms"), signing=pair)
    (outcome,) = runner.build_all([wanted], config, Docker(docker_client),
                                  store_mod.Store(config.store),
                                  progress=events.append)

    assert outcome.error is None, str(outcome.error)
    (stored,) = outcome.artifacts
    started = [e.step for e in events if e.phase is runner.Phase.STARTED]
    # the sign step ran, between compile and verify (no load-test gate in this config)
    assert started == [s for s in steps.Step if s is not steps.Step.LOAD_TEST]
    data = stored.path.read_bytes()
    found = modsig.signature_of(data)
    assert found is not None
    assert found.signer == cert.signer
    assert found.signer.name == "reconciler test signing key"
    assert found.hash_algo == "sha256"
    assert stored.signature == found
    assert verifier.digest_in(stored.path.with_name(stored.path.name + ".sha256")
                               .read_bytes()) == verifier.sha256_file(stored.path)

    unsigned = tmp_path / "unsigned.ko"
    unsigned.write_bytes(data[:found.unsigned_size])
    assert modsign.verify(found.signature, unsigned, Path(pair.certificate)).ok

    modinfo = jobs.Jobs(Docker(docker_client)).run(
        builder_image, f"modinfo -F signer /m/{stored.path.name}; "
        f"modinfo -F sig_hashalgo /m/{stored.path.name}; modinfo -F sig_key /m/{stored.path.name}",
        mounts=[BindMount(str(stored.path.parent), "/m", read_only=True)],
    )
    assert modinfo.ok, modinfo.output
    assert modinfo.output.split("\n")[:3] == [found.signer.name, "sha256", found.signer.serial]

    assert outcome.log_path is not None
    assert files_holding(key_lines(pair), config.store, CACHE_ROOT / "cache",
                         config.state_dir / "logs", outcome.log_path) == []

    # Present and signed by that certificate: a second request starts no container.
    with count_containers() as created:
        (again,) = runner.build_all([wanted], config, Docker(docker_client),
                                    store_mod.Store(config.store))
    assert again.error is None and not again.built
    assert created.containers == []
    # Another certificate wants a rebuild, and says why.
    other = make_signing_pair(tmp_path / "keys", "another key")
    other_signer = modsign.read_certificate(Path(other.certificate)).signer
    store = store_mod.Store(config.store)
    assert usable(store.lookup(stored.key), other_signer) is None
    assert signing_problem(stored, other_signer) == (
        f"signed by {other_signer} wanted, the store has a build signed by {cert.signer}")


def test_a_certificate_of_another_key_fails_the_check(tmp_path: Path) -> None:
    """A certificate with the same issuer and serial as the signer's but another key (what a
    forged or a rotated MOK looks like): the names match, openssl refuses the signature."""
    pair = make_signing_pair(tmp_path, "signer", serial="0x1234")
    forged = make_signing_pair(tmp_path / "forged", "signer", serial="0x1234")
    module = tmp_path / "falco.ko"
    module.write_bytes(b"\x7fELF not a module, but the signature covers whatever it is")
    signed = tmp_path / "falco.ko.signed"
    _sign_like_sign_file(pair, module, signed)
    cert = modsign.read_certificate(Path(pair.certificate))
    built = module.read_bytes()
    signing.check(signed, built, module, cert, hash_algo="sha256",
                  certificate=Path(pair.certificate))  # the genuine pair

    forged_cert = modsign.read_certificate(Path(forged.certificate))
    assert forged_cert.signer == cert.signer
    with pytest.raises(StepFailed, match="does not verify against the certificate"):
        signing.check(signed, built, module, forged_cert, hash_algo="sha256",
                      certificate=Path(forged.certificate))
    with pytest.raises(StepFailed, match="not the built module plus a signature"):
        signing.check(signed, built + b"x", module, cert, hash_algo="sha256",
                      certificate=Path(pair.certificate))


def _sign_like_sign_file(pair: modsig.Signing, module: Path, out: Path) -> None:
    """What sign-file appends, made with openssl: a detached DER PKCS#7 without certificates
    or attributes, its struct module_signature and the marker."""
    sig = subprocess.run(
        ["openssl", "cms", "-sign", "-binary", "-noattr", "-nocerts", "-nosmimecap",
         "-md", "sha256", "-outform", "DER", "-in", str(module), "-signer",
         pair.certificate, "-inkey", pair.key],
        check=True, capture_output=True,
    ).stdout
    info = bytes([0, 0, modsig.PKEY_ID_PKCS7, 0, 0, 0, 0, 0]) + len(sig).to_bytes(4, "big")
    out.write_bytes(module.read_bytes() + sig + info + modsig.MARKER)


@pytest.mark.usefixtures("no_leftover_containers")
def test_a_key_that_is_not_the_certificates_publishes_nothing(
    docker_client: Any, kernel_release: str, make_config: Any, tmp_path: Path,
) -> None:
    """The key of one pair with the certificate of another: the sign step fails, names
    itself, and the store stays empty; the key is not in the log either."""
    pair = make_signing_pair(tmp_path / "a", "key a")
    other = make_signing_pair(tmp_path / "b", "key b")
    mixed = modsig.Signing(pair.key, other.certificate, "mixed")
    config = make_config()
    wanted = dataclasses.replace(request(kernel_release, "0.1.1-dkms", DriverKind.KMOD),
                                 signing=mixed)
    (outcome,) = runner.build_all([wanted], config, Docker(docker_client),
                                  store_mod.Store(config.store))

    assert outcome.error is not None
    assert outcome.error.step == "sign"
    assert "is not the key of the certificate" in str(outcome.error)
    assert not config.store.exists() or not [p for p in config.store.rglob("*") if p.is_file()]
    assert outcome.log_path is not None
    assert files_holding(key_lines(pair), outcome.log_path, config.state_dir / "logs") == []


@pytest.mark.usefixtures("no_leftover_containers")
def test_one_pem_holding_key_and_certificate_is_mounted_once_and_signs(
    docker_client: Any, kernel_release: str, make_config: Any, tmp_path: Path,
) -> None:
    pair = make_signing_pair(tmp_path, "combined")
    both = tmp_path / "both.pem"
    both.write_text(Path(pair.key).read_text() + Path(pair.certificate).read_text())
    config = make_config()
    wanted = dataclasses.replace(request(kernel_release, "0.1.1-dkms"),
                                 signing=modsig.Signing(str(both), str(both)))
    (outcome,) = runner.build_all([wanted], config, Docker(docker_client),
                                  store_mod.Store(config.store))

    assert outcome.error is None, str(outcome.error)
    found = modsig.signature_of(outcome.artifacts[0].path.read_bytes())
    assert found is not None
    assert found.signer == modsign.read_certificate(both).signer


@pytest.mark.usefixtures("no_leftover_containers")
def test_a_key_name_the_keyring_lacks_fails_the_sign_step_and_says_why(
    docker_client: Any, kernel_release: str, make_config: Any,
) -> None:
    wanted = dataclasses.replace(request(kernel_release, "0.1.1-dkms"),
                                 signing=Signing("", "", "absent"))
    config = make_config()
    (outcome,) = runner.build_all([wanted], config, Docker(docker_client),
                                  store_mod.Store(config.store))
    assert outcome.error is not None and outcome.error.step == "sign"
    assert "the signing key 'absent' is not in this build host's keyring" in str(outcome.error)


@pytest.mark.usefixtures("no_leftover_containers")
def test_headers_with_a_hostile_sign_file_never_run_it_and_the_key_stays_out(
    docker_client: Any, kernel_release: str, make_config: Any, tmp_path: Path,
    count_containers: Any, builder_image: str,
) -> None:
    """The headers carry a ``scripts/sign-file`` that would print the key: the build signs
    in-process (no sign container is started at all, so nothing from the headers runs with
    a key in reach), the module verifies with openssl against the keyring's certificate,
    and neither the hostile script's mark nor the key is in the store, the logs or the
    build log."""
    pair = make_signing_pair(tmp_path / "keys", "keyring key")
    shared = CACHE_ROOT / "cache"
    headers.ensure(jobs.Jobs(Docker(docker_client)), builder_image,
                   request(kernel_release, "x").kernel, kernel_urls=(),
                   cache_root=shared / "headers",
                   log=steps.BuildLog(tmp_path / "headers.log"))  # the shared copy exists
    state = tmp_path / "hostile-state"
    assert hostile_headers(shared, state / "cache", kernel_release) >= 1
    config = make_config(state_dir=state, store=tmp_path / "hostile-store")
    wanted = dataclasses.replace(request(kernel_release, "0.1.1-dkms"), signing=pair)
    with count_containers() as created:
        (outcome,) = runner.build_all([wanted], config, Docker(docker_client),
                                      store_mod.Store(config.store))

    assert outcome.error is None, str(outcome.error)
    assert steps.Step.SIGN not in created.steps()
    (stored,) = outcome.artifacts
    signed_by(stored.path.read_bytes(), pair, tmp_path)
    assert outcome.log_path is not None
    log_text = outcome.log_path.read_text()
    assert "HOSTILE-SIGN-FILE-RAN" not in log_text
    assert "signing falco.ko in-process with key keyring-key" in log_text
    assert files_holding(key_lines(pair), config.store, state / "logs",
                         outcome.log_path) == []
