"""``edges.host.crypto``: module signatures made in-process are what ``sign-file`` makes
(the RSA signature value is byte for byte openssl's ``cms -sign -noattr -nocerts`` for the
same key, module and hash), the host's openssl verifies them, our parser reads signer and
hash back; a key that is not the certificate's, an unknown hash or an unreadable key is
refused without quoting the key. Ed25519 index keys sign and verify, and a pinned key
rejects another key's signature. Keys and certificates are made with the real openssl."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from reconciler.edges.host import crypto
from reconciler.edges.host import openssl as modsign
from reconciler.errors import KeyUnusable
from reconciler.model import modsig
from tests.support.keys import key_lines, make_signing_pair

MODULE = b"\x7fELF" + bytes(range(256)) * 400  # what is signed is opaque bytes


def _openssl_signature(pair: modsig.Signing, module: Path, md: str) -> bytes:
    return subprocess.run(
        ["openssl", "cms", "-sign", "-binary", "-noattr", "-nocerts", "-nosmimecap",
         "-md", md, "-outform", "DER", "-in", str(module), "-signer", pair.certificate,
         "-inkey", pair.key], check=True, capture_output=True).stdout


@pytest.mark.parametrize("md", ["sha256", "sha512"])
def test_a_module_signed_in_process_is_what_sign_file_appends(tmp_path: Path, md: str) -> None:
    pair = make_signing_pair(tmp_path, "in-process key")
    module = tmp_path / "falco.ko"
    module.write_bytes(MODULE)
    signed = crypto.sign_module(MODULE, Path(pair.key), Path(pair.certificate), md)

    found = modsig.signature_of(signed)
    assert found is not None
    assert signed[:found.unsigned_size] == MODULE
    assert signed.endswith(modsig.MARKER)
    assert found.signer == modsign.read_certificate(Path(pair.certificate)).signer
    assert found.hash_algo == md
    assert modsign.verify(found.signature, module, Path(pair.certificate)).ok
    # RSA PKCS#1 v1.5 is deterministic: the signature value (the DER's last 256 bytes for
    # RSA-2048) is openssl's own for the same key, content and hash.
    assert found.signature[-256:] == _openssl_signature(pair, module, md)[-256:]
    assert not any(line.encode() in signed for line in key_lines(pair))


def test_a_key_that_is_not_the_certificates_is_refused(tmp_path: Path) -> None:
    one = make_signing_pair(tmp_path / "a", "a")
    other = make_signing_pair(tmp_path / "b", "b")
    with pytest.raises(KeyUnusable, match="is not the key of the certificate"):
        crypto.sign_module(MODULE, Path(one.key), Path(other.certificate), "sha256")


def test_an_unknown_hash_or_a_file_that_is_no_key_is_refused_without_its_bytes(
    tmp_path: Path,
) -> None:
    pair = make_signing_pair(tmp_path, "k")
    with pytest.raises(KeyUnusable, match="signs modules with md5"):
        crypto.sign_module(MODULE, Path(pair.key), Path(pair.certificate), "md5")
    secret = tmp_path / "webhook.secret"
    secret.write_text("s3cr3t-webhook-value\n")
    with pytest.raises(KeyUnusable) as caught:
        crypto.sign_module(MODULE, secret, Path(pair.certificate), "sha256")
    assert "s3cr3t" not in str(caught.value)
    assert "is not an unencrypted private key" in str(caught.value)


def test_ed25519_index_keys_sign_and_a_pinned_key_checks(tmp_path: Path) -> None:
    path = tmp_path / "index.key"
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(path)],
                   check=True, capture_output=True)
    key = crypto.load_signing_key(path)
    other = crypto.new_signing_key(tmp_path / "other.key")
    assert (tmp_path / "other.key").stat().st_mode & 0o777 == 0o600
    signature = key.sign(b"index bytes")
    assert crypto.verify(key.public, signature, b"index bytes")
    assert not crypto.verify(key.public, signature, b"index bytes!")
    assert not crypto.verify(other.public, signature, b"index bytes")
    assert key.key_id == crypto.key_id(key.public) != other.key_id
    with pytest.raises(KeyUnusable, match="not an Ed25519 private key"):
        crypto.load_signing_key(Path(make_signing_pair(tmp_path, "rsa").key))
