"""The manifest repository: one exact commit's files, read from git's object store.

A plan always names one revision, so manifests are read from the commit's tree and never
from a working copy (uncommitted edits are not desired state). A local path is read in
place; a clone URL is mirrored into ``<state_dir>/repos/<digest>`` and fetched with a
force refspec, so force-pushes and rewritten history are followed.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from collections.abc import Callable, Container
from dataclasses import dataclass
from pathlib import Path

import git

from reconciler import logs
from reconciler.errors import SourceError

log = logs.get(__name__)

# Which files of the tree are wanted, by path relative to the manifest root (hidden
# folders are never descended into).
Selector = Callable[[str], bool]
_URL = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|[^/\s]+@[^/\s]+:)", re.IGNORECASE)


@dataclass(frozen=True)
class Snapshot:
    """The manifest files of one commit, paths relative to the manifest root, and the id
    of that root's tree (equal trees hold equal files). ``files`` is None when the caller
    already knew the tree (``snapshot(known_trees=...)``) and nothing was read."""

    revision: str
    tree: str
    files: tuple[tuple[str, bytes], ...] | None


def is_remote(repo: str) -> bool:
    return bool(_URL.match(repo)) and not Path(repo).exists()


def _cache_dir(state_dir: Path, url: str) -> Path:
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    return state_dir / "repos" / digest


def open_repo(repo: str, state_dir: Path, *, fetch: bool = True) -> git.Repo:
    """The local repository, or the up-to-date mirror of a remote one."""
    if not is_remote(repo):
        try:
            return git.Repo(repo, search_parent_directories=False)
        except (git.NoSuchPathError, git.InvalidGitRepositoryError) as exc:
            raise SourceError(f"{repo} is not a git repository") from exc
    mirror = _cache_dir(state_dir, repo)
    try:
        if not (mirror / "HEAD").exists():
            mirror.parent.mkdir(parents=True, exist_ok=True)
            log.info("git.clone", url=repo, into=str(mirror))
            return git.Repo.clone_from(repo, mirror, mirror=True, env=_GIT_ENV)
        handle = git.Repo(mirror)
        if fetch:
            log.debug("git.fetch", url=repo)
            handle.git.fetch("origin", "--prune", "--force", env=_GIT_ENV)
            _follow_remote_head(handle)
        return handle
    except git.GitCommandError as exc:
        detail = (exc.stderr or "").strip().splitlines()
        raise SourceError(
            f"cannot fetch {repo}: {detail[-1] if detail else exc}"
        ) from exc


# Never prompt for credentials: a daemon has nobody to ask.
_GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true"}


def _follow_remote_head(handle: git.Repo) -> None:
    """Point the mirror's HEAD where the remote's default branch now is."""
    try:
        out = str(handle.git.ls_remote("--symref", "origin", "HEAD", env=_GIT_ENV))
    except git.GitCommandError:
        return
    for line in out.splitlines():
        if line.startswith("ref: ") and line.endswith("\tHEAD"):
            target = line[len("ref: "):-len("\tHEAD")]
            if handle.head.reference.path != target:
                handle.git.symbolic_ref("HEAD", target)


def resolve(handle: git.Repo, ref: str | None) -> git.Commit:
    """The commit ``ref`` names: a branch, a tag, a (short) sha; default HEAD."""
    candidates = [ref] if ref else ["HEAD"]
    if ref and not ref.startswith("refs/"):
        candidates += [f"refs/heads/{ref}", f"refs/tags/{ref}", f"refs/remotes/origin/{ref}"]
    for name in candidates:
        try:
            obj = handle.rev_parse(f"{name}^{{commit}}")
        except (git.exc.BadName, git.exc.BadObject, ValueError, git.GitCommandError):
            continue
        if isinstance(obj, git.Commit):
            return obj
    where = handle.git_dir
    raise SourceError(f"ref {ref or 'HEAD'!r} names no commit in {where}")


def manifest_tree(commit: git.Commit, path: str = "") -> git.Tree:
    """The tree of the manifest root ``path`` in the commit."""
    root = posixpath.normpath(path.strip("/")) if path.strip("/") else ""
    tree = commit.tree
    if root and root != ".":
        try:
            tree = tree / root
        except KeyError as exc:
            raise SourceError(f"--path {path!r} does not exist at {commit.hexsha[:12]}") from exc
        if tree.type != "tree":
            raise SourceError(f"--path {path!r} is not a folder at {commit.hexsha[:12]}")
    return tree


class Truncated(bytes):
    """The first bytes of a file too large to be read whole; ``size`` is its real size."""

    size: int


def _collect(
    tree: git.Tree, prefix: str, select: Selector, out: list[tuple[str, bytes]],
    max_bytes: int | None,
) -> None:
    for blob in tree.blobs:
        rel = prefix + blob.name
        if not select(rel):
            continue
        if max_bytes is not None and blob.size > max_bytes:
            # A push may hold a blob of any size: read no more than the reader will look at.
            head = Truncated(blob.data_stream.read(max_bytes + 1))
            head.size = int(blob.size)
            out.append((rel, head))
        else:
            out.append((rel, blob.data_stream.read()))
    for sub in tree.trees:
        if not sub.name.startswith("."):
            _collect(sub, f"{prefix}{sub.name}/", select, out, max_bytes)


def snapshot(
    repo: str, ref: str | None, path: str, state_dir: Path, select: Selector, *,
    known_trees: Container[str] = (), max_bytes: int | None = None,
) -> Snapshot:
    """Fetch (for remotes) and read the manifests at the commit ``ref`` names; files of a
    tree in ``known_trees`` are not read again, and of a file over ``max_bytes`` only its
    first bytes are read (a ``Truncated``, which says its size)."""
    handle = open_repo(repo, state_dir)
    try:
        commit = resolve(handle, ref)
        tree = manifest_tree(commit, path)
        files = None
        if tree.hexsha not in known_trees:
            collected: list[tuple[str, bytes]] = []
            _collect(tree, "", select, collected, max_bytes)
            files = tuple(sorted(collected))
    finally:
        handle.close()
    return Snapshot(revision=commit.hexsha, tree=tree.hexsha, files=files)
