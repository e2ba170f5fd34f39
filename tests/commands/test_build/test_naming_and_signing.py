"""``reconciler build``'s --uname-release and --signing-* flags, end to end, for real.

A real build (Debian's bookworm headers and DKMS source package) of a module named as
Falco 0.35+ names a Debian kernel (the release rebuilt from ``uname -v``), built against
the kernel's own release and signed with a key and certificate made here; the published
file is checked with our signature reader and openssl.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler import cli
from tests.builder.helpers import DKMS_SOURCE
from tests.support.keys import make_signing_pair, signed_by

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_build_names_it_as_the_loader_does_and_signs_it(
    tmp_path: Path, state_dir: Path, base_image: str, kernel_release: str,
    capsys: pytest.CaptureFixture[str], docker_client: Any,
) -> None:
    pair = make_signing_pair(tmp_path / "keys", "cli signing key")
    loader_name = "6.1.999-1-cloud-amd64"  # what falcoctl would ask for; not a real release
    store = tmp_path / "store"
    code = cli.main([
        "build", "--target", "debian", "--driverversion", "0.1.1-dkms",
        "--kernelrelease", loader_name, "--uname-release", kernel_release,
        "--signing-key", pair.key, "--signing-certificate", pair.certificate,
        "--store", str(store), "--state-dir", str(state_dir), "--source", DKMS_SOURCE,
        "--base-image", base_image,
    ])
    out = capsys.readouterr().out
    assert code == 0, out
    module = store / "0.1.1-dkms/x86_64" / f"falco_debian_{loader_name}_1.ko"
    data = module.read_bytes()
    assert f"vermagic={kernel_release} SMP".encode() in data
    signed_by(data, pair, tmp_path)


def test_a_signing_key_without_its_certificate_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    key = tmp_path / "mok.key"
    key.write_text("not used")
    code = cli.main(["build", "--target", "debian", "--driverversion", "8.0.0+driver",
                     "--kernelrelease", "6.1.0-57-cloud-amd64", "--signing-key", str(key),
                     "--store", str(tmp_path / "store"), "--state-dir", str(tmp_path / "s")])
    assert code == 1
    assert "--signing-key and --signing-certificate go together" in capsys.readouterr().err
