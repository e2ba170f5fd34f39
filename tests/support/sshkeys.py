"""A real ssh signing key for commit-signature tests, made with ssh-keygen."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def allowed_signer(folder: Path) -> tuple[Path, Path]:
    """A new ed25519 key in ``folder`` and an ``allowed_signers`` file trusting it (the
    test is skipped where ssh-keygen is not installed)."""
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen is not installed")
    key = folder / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    allowed = folder / "allowed_signers"
    allowed.write_text(f"test@example.invalid {(folder / 'key.pub').read_text()}")
    return key, allowed
