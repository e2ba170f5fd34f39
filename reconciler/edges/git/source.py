"""The manifest source of a pass: one repository read at one ref (``repo.snapshot``).

The composition root builds one per planned revision (the daemon pins the revision it
plans), with the selector and size bound of the manifest loader.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from pathlib import Path

from reconciler.edges.git import repo as gitrepo


@dataclass(frozen=True)
class GitManifests:
    repo: str
    ref: str | None
    path: str
    state_dir: Path
    select: gitrepo.Selector
    max_bytes: int | None = None

    def snapshot(self, known_trees: Container[str]) -> gitrepo.Snapshot:
        return gitrepo.snapshot(self.repo, self.ref, self.path, self.state_dir, self.select,
                                known_trees=known_trees, max_bytes=self.max_bytes)
