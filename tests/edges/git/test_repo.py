"""Reading manifests from real git repositories: exact commits, branches, remotes, rewrites."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.edges.git import repo as gitrepo
from reconciler.errors import SourceError
from reconciler.manifests import loading
from tests.conftest import GitRepo

HOST = "apiVersion: falco-reconciler/v1\nkind: Host\nmetadata: {name: %s}\n"


def snapshot(repo: str, ref: str | None, path: str, state: Path) -> gitrepo.Snapshot:
    return gitrepo.snapshot(repo, ref, path, state, loading.is_manifest_path)


def test_reads_the_commit_not_the_working_copy(git_repo: GitRepo, tmp_path: Path) -> None:
    rev = git_repo.commit({"a.yaml": HOST % "a"})
    git_repo.write("a.yaml", HOST % "uncommitted")
    git_repo.write("b.yaml", HOST % "untracked")
    snap = snapshot(str(git_repo.path), None, "", tmp_path / "state")
    assert snap.revision == rev
    assert snap.files == (("a.yaml", (HOST % "a").encode()),)


def test_only_yaml_outside_hidden_folders_under_path(git_repo: GitRepo, tmp_path: Path) -> None:
    git_repo.commit({
        "fleet/a.yaml": "x: 1\n", "fleet/sub/b.yml": "y: 2\n", "fleet/.github/ci.yaml": "z: 3\n",
        "fleet/README.md": "#", "fleet/.hidden.yaml": "h: 1\n", "other/c.yaml": "c: 1\n",
    })
    snap = snapshot(str(git_repo.path), None, "fleet", tmp_path / "state")
    assert [p for p, _ in snap.files] == ["a.yaml", "sub/b.yml"]


def test_branch_tag_and_sha_refs(git_repo: GitRepo, tmp_path: Path) -> None:
    first = git_repo.commit({"a.yaml": "v: 1\n"})
    git_repo.git("tag", "v1")
    git_repo.git("checkout", "-q", "-b", "canary")
    canary = git_repo.commit({"a.yaml": "v: 2\n"})
    git_repo.git("checkout", "-q", "main")
    state = tmp_path / "state"
    assert snapshot(str(git_repo.path), "canary", "", state).revision == canary
    assert snapshot(str(git_repo.path), "v1", "", state).revision == first
    assert snapshot(str(git_repo.path), first[:10], "", state).revision == first
    assert snapshot(str(git_repo.path), None, "", state).revision == first


def test_unknown_ref_and_missing_path_are_clear_errors(git_repo: GitRepo, tmp_path: Path) -> None:
    git_repo.commit({"a.yaml": "v: 1\n"})
    with pytest.raises(SourceError, match="'nope' names no commit"):
        snapshot(str(git_repo.path), "nope", "", tmp_path)
    with pytest.raises(SourceError, match="--path 'missing' does not exist"):
        snapshot(str(git_repo.path), None, "missing", tmp_path)
    with pytest.raises(SourceError, match="is not a git repository"):
        snapshot(str(tmp_path), None, "", tmp_path)


def test_remote_is_mirrored_and_follows_pushes_and_force_pushes(
    git_repo: GitRepo, tmp_path: Path
) -> None:
    bare = tmp_path / "remote.git"
    git_repo.commit({"a.yaml": "v: 1\n"})
    git_repo.git("clone", "-q", "--bare", str(git_repo.path), str(bare))
    git_repo.git("remote", "add", "origin", str(bare))
    url = bare.as_uri()
    state = tmp_path / "state"

    first = snapshot(url, None, "", state)
    assert first.files == (("a.yaml", b"v: 1\n"),)
    assert (state / "repos").is_dir()

    second_rev = git_repo.commit({"a.yaml": "v: 2\n"})
    git_repo.git("push", "-q", "origin", "main")
    assert snapshot(url, None, "", state).revision == second_rev

    # Rewrite history: drop the last commit and force-push another one.
    git_repo.git("reset", "-q", "--hard", first.revision)
    rewritten = git_repo.commit({"a.yaml": "v: 3\n"}, message="rewrite")
    git_repo.git("push", "-q", "--force", "origin", "main")
    again = snapshot(url, None, "", state)
    assert again.revision == rewritten
    assert again.files == (("a.yaml", b"v: 3\n"),)


def test_remote_default_branch_is_the_remotes_head(git_repo: GitRepo, tmp_path: Path) -> None:
    git_repo.commit({"a.yaml": "v: 1\n"})
    git_repo.git("checkout", "-q", "-b", "production")
    prod = git_repo.commit({"a.yaml": "v: prod\n"})
    bare = tmp_path / "remote.git"
    git_repo.git("clone", "-q", "--bare", str(git_repo.path), str(bare))
    snap = snapshot(bare.as_uri(), None, "", tmp_path / "state")
    assert snap.revision == prod


def test_unreachable_remote_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="cannot fetch"):
        snapshot((tmp_path / "nowhere.git").as_uri(), None, "", tmp_path / "state")


def test_a_huge_blob_is_not_read_whole_and_is_refused_with_its_real_size(
    git_repo: GitRepo, tmp_path: Path,
) -> None:
    """A push may hold a file of any size: only the bytes the loader looks at are read,
    and the refusal names the file's real size."""
    huge = "#" * (3 * loading.MAX_FILE_BYTES) + "\n"
    git_repo.commit({"big.yaml": huge, "ok.yaml": "# nothing\n"})
    snap = gitrepo.snapshot(str(git_repo.path), None, "", tmp_path / "state",
                            loading.is_manifest_path, max_bytes=loading.MAX_FILE_BYTES)
    assert snap.files is not None
    files = dict(snap.files)
    assert len(files["big.yaml"]) == loading.MAX_FILE_BYTES + 1
    assert [str(p) for p in loading.problems(snap.files)] == [
        f"big.yaml:1: the file is {len(huge)} bytes, over the {loading.MAX_FILE_BYTES} bytes "
        "(1 MiB) a manifest file may hold; split it (the file is not read)"]
