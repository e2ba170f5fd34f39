"""Optional: apply only commits whose signature verifies against configured keys.

Verification is git's own (``git verify-commit``), so it accepts exactly what git accepts:
GPG signatures against a keyring folder (``GNUPGHOME``) and SSH signatures against an
``allowed_signers`` file (``gpg.ssh.allowedSignersFile``). A commit that fails is a
permanent rejection of that revision, like manifests that do not validate.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from reconciler.errors import SignatureError


@dataclass(frozen=True)
class Keys:
    gpg_home: Path | None = None
    ssh_allowed_signers: Path | None = None

    @property
    def configured(self) -> bool:
        return self.gpg_home is not None or self.ssh_allowed_signers is not None


def verify(repo: str, revision: str, keys: Keys) -> None:
    """Raise SignatureError unless ``revision`` carries a signature git verifies."""
    if not keys.configured:
        return
    command = ["git"]
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    if keys.ssh_allowed_signers is not None:
        command += ["-c", f"gpg.ssh.allowedSignersFile={keys.ssh_allowed_signers}"]
    if keys.gpg_home is not None:
        env["GNUPGHOME"] = str(keys.gpg_home)
    command += ["-C", repo, "verify-commit", "--raw", revision]
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SignatureError(f"cannot verify the signature of {revision[:12]}: {exc}") from exc
    if done.returncode != 0:
        lines = [ln for ln in (done.stderr or "").strip().splitlines() if ln.strip()]
        why = lines[-1] if lines else "no signature"
        raise SignatureError(f"commit {revision[:12]} is not signed by a trusted key: {why}")
