"""``reconciler validate``: check the manifests at one revision, print every problem.

Each problem is one line, ``file:line: message``, sorted, with the file relative to the
repository root (``--path`` included), so editors and CI annotations can jump to it. The
exit code is 1 when there is any problem; otherwise one summary line is printed.
"""

from __future__ import annotations

import argparse
import posixpath

from reconciler import settings
from reconciler.edges.git import repo as gitrepo
from reconciler.manifests import loading

ONE_SHOT = True


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("validate", help="check the manifests; print problems as file:line",
                       description=__doc__)
    settings.add_flags(p, "repo", "ref", "path", "state_dir")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config = settings.resolve(args)
    snapshot = gitrepo.snapshot(config.repo, config.ref, config.path, config.state_dir,
                                loading.is_manifest_path, max_bytes=loading.MAX_FILE_BYTES)
    manifests, problems = loading.check(snapshot.files or ())
    prefix = posixpath.normpath(config.path.strip("/")) if config.path.strip("/") else ""
    if problems:
        for problem in problems:
            where = posixpath.join(prefix, problem.file) if prefix and prefix != "." else (
                problem.file)
            print(f"{where}:{problem.line}: {problem.message}")
        return 1
    print(
        f"{len(manifests.hosts)} hosts, {len(manifests.builds)} driver builds at "
        f"{snapshot.revision[:12]}: valid"
    )
    return 0
