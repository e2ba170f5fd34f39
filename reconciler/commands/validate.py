"""``reconciler validate``: check the manifests at one revision, print every problem.

Each problem is one line, ``file:line: message``, sorted, with the file relative to the
repository root (``--path`` included), so editors and CI annotations can jump to it. The
exit code is 1 when there is any problem; otherwise one summary line is printed.

Manifests are read from a commit, as the daemon reads them: uncommitted edits are named
(on stderr) so that a typo still in the working tree is not reported "valid" unnoticed.
``--worktree`` reads the working tree instead, for pre-commit hooks and editors.
"""

from __future__ import annotations

import argparse
import posixpath
import sys

from reconciler import settings
from reconciler.commands import notes
from reconciler.edges.git import repo as gitrepo
from reconciler.loadtest import compat
from reconciler.manifests import loading
from reconciler.model.modes import DriverMode

ONE_SHOT = True

EPILOG = """examples:
  reconciler validate              the manifests of HEAD, from anywhere in the repository
  reconciler validate --worktree   the files as they are now (a pre-commit hook, an editor)
  reconciler validate --repo /srv/fleet --ref main --path manifests
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("validate", help="check the manifests; print problems as file:line",
                       description=__doc__, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    settings.add_flags(p, "repo", "ref", "path", "state_dir")
    p.add_argument("--worktree", action="store_true",
                   help="read the working tree's files instead of a commit's (uncommitted "
                   "edits included), as a pre-commit hook or an editor wants")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config = settings.resolve(args)
    if args.worktree:
        snapshot = gitrepo.worktree_snapshot(config.repo, config.path,
                                             loading.is_manifest_path,
                                             max_bytes=loading.MAX_FILE_BYTES)
    else:
        snapshot = gitrepo.snapshot(config.repo, config.ref, config.path, config.state_dir,
                                    loading.is_manifest_path,
                                    max_bytes=loading.MAX_FILE_BYTES)
        notes.warn_uncommitted(config.repo, config.path, snapshot.revision, "validated")
    files = snapshot.files or ()
    manifests, problems = loading.check(files)
    prefix = snapshot.root
    if problems:
        for problem in problems:
            where = posixpath.join(prefix, problem.file) if prefix else problem.file
            print(f"{where}:{problem.line}: {problem.message}")
        hint = notes.path_hint(files, {p.file for p in problems}, prefix)
        if hint:
            print(hint, file=sys.stderr)
        return 1
    for located in manifests.hosts:
        falco = located.value.spec.falco
        warning = compat.probe_warning(str(falco.version)) if falco.driver is \
            DriverMode.EBPF else None
        if warning:
            where = posixpath.join(prefix, located.origin.file) if prefix else \
                located.origin.file
            print(f"{where}:{located.origin.line}: {warning}", file=sys.stderr)
    what = "the working tree" if snapshot.worktree else snapshot.revision[:12]
    print(f"{len(manifests.hosts)} hosts, {len(manifests.builds)} driver builds at "
          f"{what}: valid")
    return 0
