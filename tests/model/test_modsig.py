"""The appended-signature reader on modules Debian really signed, held to what openssl
itself reads from the same PKCS#7, and the certificate reader held to ``openssl x509``."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from reconciler.errors import InvalidSignature
from reconciler.model import modsig
from tests.support import signed


@pytest.fixture(scope="module")
def debian_module(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return signed.debian_module(tmp_path_factory.mktemp("deb"))


def _openssl_print(der: bytes) -> str:
    return subprocess.run(["openssl", "pkcs7", "-inform", "DER", "-print"], input=der,
                          capture_output=True, check=True).stdout.decode()


def test_a_debian_module_names_its_signer_hash_and_where_the_signature_starts(
    debian_module: bytes,
) -> None:
    found = modsig.signature_of(debian_module)

    assert found is not None and found.signer is not None
    assert found.hash_algo == "sha256"
    assert debian_module.endswith(modsig.MARKER)
    assert found.unsigned_size + len(found.signature) + 12 + len(modsig.MARKER) == len(
        debian_module)
    assert debian_module[:4] == b"\x7fELF"
    printed = _openssl_print(found.signature)
    assert f"issuer: {found.signer.issuer}" in printed
    assert f"serial: 0x{found.signer.serial.replace(':', '')}" in printed
    assert "algorithm: sha256" in printed


def test_an_unsigned_module_has_no_signature(debian_module: bytes) -> None:
    found = modsig.signature_of(debian_module)
    assert found is not None
    assert modsig.signature_of(debian_module[:found.unsigned_size]) is None


@pytest.mark.parametrize(("offset", "value", "message"), [
    (-len(modsig.MARKER) - 10, 1, "not PKCS#7"),  # id_type
    (-len(modsig.MARKER) - 12, 1, "must leave algo"),  # algo
    (-len(modsig.MARKER) - 4, 0x7F, "does not fit"),  # sig_len's top byte
])
def test_a_damaged_signature_header_is_refused(
    debian_module: bytes, offset: int, value: int, message: str,
) -> None:
    damaged = bytearray(debian_module)
    damaged[offset] = value
    with pytest.raises(InvalidSignature, match=message):
        modsig.signature_of(bytes(damaged))


def test_a_signature_that_is_not_pkcs7_is_refused(debian_module: bytes) -> None:
    found = modsig.signature_of(debian_module)
    assert found is not None
    damaged = bytearray(debian_module)
    damaged[found.unsigned_size + 4] ^= 0xFF  # inside the ContentInfo's OID
    with pytest.raises(InvalidSignature):
        modsig.signature_of(bytes(damaged))


def test_a_certificate_names_the_issuer_and_serial_openssl_prints(tmp_path: Path) -> None:
    cert = tmp_path / "c.pem"
    subprocess.run(
        ["openssl", "req", "-new", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
         "-keyout", str(tmp_path / "k.pem"), "-out", str(cert), "-set_serial", "0x00ab12",
         "-subj", "/C=DE/O=Example Org/CN=Example MOK"],
        check=True, capture_output=True,
    )
    der = subprocess.run(["openssl", "x509", "-in", str(cert), "-outform", "DER"],
                         capture_output=True, check=True).stdout

    for data in (cert.read_bytes(), der):
        parsed = modsig.certificate(data)
        assert parsed.signer == modsig.Signer("CN=Example MOK,O=Example Org,C=DE", "AB:12")
        assert parsed.signer.name == "Example MOK"
        assert parsed.subject == parsed.signer.issuer  # self-signed
        assert parsed.der == der


def test_bytes_that_are_no_certificate_are_refused() -> None:
    with pytest.raises(InvalidSignature):
        modsig.certificate(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(InvalidSignature):
        modsig.certificate(b"\x30\x82\xff\xff")
