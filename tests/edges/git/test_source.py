"""edges.git.source: a repository at a ref as the planner's manifest source, on a real
git repository."""

from __future__ import annotations

from pathlib import Path

from reconciler.edges.git.source import GitManifests
from tests.conftest import GitRepo


def test_files_are_read_at_the_ref_and_not_again_for_a_known_tree(
        git_repo: GitRepo, tmp_path: Path) -> None:
    git_repo.commit({"a.yaml": "one\n", "notes.txt": "skipped\n"})
    first = git_repo.git("rev-parse", "HEAD").strip()
    git_repo.commit({"a.yaml": "two\n"})
    source = GitManifests(str(git_repo.path), first, "", tmp_path / "state",
                          lambda path: path.endswith(".yaml"))
    snap = source.snapshot(())
    assert (snap.revision, snap.files) == (first, (("a.yaml", b"one\n"),))
    again = source.snapshot((snap.tree,))
    assert (again.tree, again.files) == (snap.tree, None)
