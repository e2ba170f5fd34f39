"""Commit signature checks with real git and ssh-keygen: only commits signed by an
allowed key pass; unconfigured, nothing is checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.edges.git import signatures as gitsign
from tests.conftest import GitRepo
from tests.support.sshkeys import allowed_signer


def test_only_commits_signed_by_an_allowed_ssh_key_pass(tmp_path: Path) -> None:
    key, allowed = allowed_signer(tmp_path)
    repo = GitRepo(tmp_path / "repo")
    unsigned = repo.commit({"a.yaml": "a: 1\n"})
    keys = gitsign.Keys(ssh_allowed_signers=allowed)
    with pytest.raises(gitsign.SignatureError, match="not signed by a trusted key"):
        gitsign.verify(str(repo.path), unsigned, keys)
    repo.git("-c", "gpg.format=ssh", "-c", f"user.signingkey={key}", "commit", "-q",
             "--allow-empty", "-S", "-m", "signed")
    signed = repo.git("rev-parse", "HEAD")
    gitsign.verify(str(repo.path), signed, keys)
    other = gitsign.Keys(ssh_allowed_signers=tmp_path / "nobody")
    (tmp_path / "nobody").write_text("")
    with pytest.raises(gitsign.SignatureError):
        gitsign.verify(str(repo.path), signed, other)
    gitsign.verify(str(repo.path), unsigned, gitsign.Keys())  # not configured: no check
