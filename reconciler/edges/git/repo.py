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
    # The manifest root relative to the repository's top (``--path``, below the folder the
    # repository was found from): where file names are relative to.
    root: str = ""
    # Not a commit's files but the working tree's (``validate --worktree``).
    worktree: bool = False


def is_remote(repo: str) -> bool:
    return bool(_URL.match(repo)) and not Path(repo).exists()


def _cache_dir(state_dir: Path, url: str) -> Path:
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    return state_dir / "repos" / digest


def open_repo(repo: str, state_dir: Path, *, fetch: bool = True) -> git.Repo:
    """The local repository, or the up-to-date mirror of a remote one."""
    if not is_remote(repo):
        try:
            # As git does: a folder inside a work tree belongs to that repository.
            return git.Repo(repo, search_parent_directories=True)
        except (git.NoSuchPathError, git.InvalidGitRepositoryError) as exc:
            raise SourceError(
                f"{repo} is not a git repository, nor a folder inside one (manifests are "
                f"read from a commit: `git init` and commit them, or give --repo)"
            ) from exc
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
        raise SourceError(f"cannot fetch {repo}: {git_reason(exc)}") from exc


def git_reason(exc: git.GitCommandError) -> str:
    """git's own reason for a failed command, without GitPython's wrapping.

    GitPython's ``stderr`` is ``"\n  stderr: '<git's stderr>'"``: its last line is a lone
    quote, so the reason has to be dug out. git says why on its ``fatal:``/``error:``
    lines; without one, its last line, and without any output, the exit status.
    """
    text = str(exc.stderr or "").strip()
    if text.startswith("stderr:"):
        text = text[len("stderr:"):].strip()
    text = text.strip("'\"").strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    said = [line for line in lines if line.startswith(("fatal:", "error:"))]
    if said:
        return "; ".join(line.split(":", 1)[1].strip() for line in said)
    if lines:
        return lines[-1]
    return f"git exited with status {exc.status}"


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


def _below_top(handle: git.Repo, repo: str, path: str) -> str:
    """``path`` as seen from the repository's top: a repository found from one of its
    subfolders (``cd manifests && reconciler validate``) has its manifest root there."""
    root = posixpath.normpath(path.strip("/")) if path.strip("/") else ""
    if is_remote(repo) or handle.working_tree_dir is None:
        return "" if root == "." else root
    inside = Path(repo).resolve().relative_to(Path(handle.working_tree_dir).resolve())
    joined = posixpath.normpath(posixpath.join(inside.as_posix(), root or "."))
    return "" if joined == "." else joined


def uncommitted(repo: str, path: str, select: Selector) -> tuple[str, ...]:
    """The manifest files (relative to the repository's top) whose working-tree content is
    not the HEAD commit's: modified, staged, deleted or untracked. A remote repository and
    a bare one have none."""
    if is_remote(repo):
        return ()
    handle = open_repo(repo, Path(), fetch=False)
    try:
        if handle.bare or handle.working_tree_dir is None:
            return ()
        root = _below_top(handle, repo, path)
        try:
            out = str(handle.git.status("--porcelain=v1", "-z", "--untracked-files=all",
                                        "--", root or "."))
        except git.GitCommandError as exc:
            raise SourceError(f"cannot read the status of {repo}: {git_reason(exc)}") from exc
    finally:
        handle.close()
    changed: list[str] = []
    entries = iter(out.split("\0"))
    for entry in entries:
        if len(entry) < 4:
            continue
        name = entry[3:]
        if entry[0] in "RC":
            next(entries, None)  # a rename's second field is its old name
        rel = posixpath.relpath(name, root) if root else name
        if not rel.startswith("../") and select(rel):
            changed.append(name)
    return tuple(sorted(set(changed)))


def worktree_snapshot(repo: str, path: str, select: Selector, *,
                      max_bytes: int | None = None) -> Snapshot:
    """The manifests as the working tree holds them now (``validate --worktree``, for
    pre-commit hooks and editors), with the HEAD they sit on as the revision."""
    if is_remote(repo):
        raise SourceError(f"--worktree reads a local working tree; {repo} is a URL")
    handle = open_repo(repo, Path(), fetch=False)
    try:
        if handle.working_tree_dir is None:
            raise SourceError(f"{repo} is a bare repository: it has no working tree")
        root = _below_top(handle, repo, path)
        top = Path(handle.working_tree_dir)
        try:
            revision = handle.head.commit.hexsha
        except ValueError:
            revision = "0" * 40  # no commit yet: the working tree is all there is
    finally:
        handle.close()
    base = top / root if root else top
    if not base.is_dir():
        raise SourceError(f"--path {path!r} is not a folder in {top}")
    files: list[tuple[str, bytes]] = []
    for file in sorted(base.rglob("*")):
        rel = file.relative_to(base).as_posix()
        if not file.is_file() or file.is_symlink() or not select(rel):
            continue
        data = file.read_bytes()
        if max_bytes is not None and len(data) > max_bytes:
            head = Truncated(data[: max_bytes + 1])
            head.size = len(data)
            files.append((rel, head))
        else:
            files.append((rel, data))
    return Snapshot(revision=revision, tree="worktree", files=tuple(files), root=root,
                    worktree=True)


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
        root = _below_top(handle, repo, path)
        tree = manifest_tree(commit, root)
        files = None
        if tree.hexsha not in known_trees:
            collected: list[tuple[str, bytes]] = []
            _collect(tree, "", select, collected, max_bytes)
            files = tuple(sorted(collected))
    finally:
        handle.close()
    return Snapshot(revision=commit.hexsha, tree=tree.hexsha, files=files, root=root)
