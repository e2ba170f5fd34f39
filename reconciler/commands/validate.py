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
from collections.abc import Sequence

from reconciler import runtime, settings
from reconciler.commands import notes
from reconciler.edges.git import repo as gitrepo
from reconciler.loadtest import compat, quarantine
from reconciler.manifests import loading
from reconciler.manifests.models import Host, Located
from reconciler.model.artifacts import KIND_OF_MODE, ArtifactKey, DriverKind
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
    settings.add_flags(p, "repo", "ref", "path", "state_dir", "store")
    p.add_argument("--worktree", action="store_true",
                   help="read the working tree's files instead of a commit's (uncommitted "
                   "edits included), as a pre-commit hook or an editor wants")
    p.set_defaults(handler=run)


def warnings(hosts: Sequence[Located[Host]], config: settings.Settings
             ) -> list[tuple[str, str]]:
    """``(file:line, warning)`` for each Host whose Falco cannot read its driver: from
    this host's load tests in the store (the reason the test gave, per kernel), else, for
    the legacy probe, from the libs version its Falco pins."""
    found: list[tuple[str, str]] = []
    store = runtime.open_store(config) if config.store.is_dir() else None
    stored: dict[tuple[str, DriverKind], list[tuple[ArtifactKey, str, tuple[str, ...]]]] = {}
    for located in hosts:
        falco = located.value.spec.falco
        where = f"{located.origin.file}:{located.origin.line}"
        kind = KIND_OF_MODE.get(falco.driver)
        tested: list[tuple[ArtifactKey, str, tuple[str, ...]]] = []
        if store is not None and kind is not None:
            used = (falco.resolved_driver_version(), kind)
            if used not in stored:  # the store is read once per driver version and kind
                stored[used] = quarantine.unreadable_in(store, *used)
            tested = [(key, libs, reasons) for key, libs, reasons in stored[used]
                      if compat.tells_of_falco(str(falco.version), str(kind), libs, reasons)]
        for key, libs, reasons in tested:
            found.append((where, f"warning: the driver loads; Falco {falco.version}'s "
                          f"userspace cannot read it on {key.kernel_release}: {reasons[0]} "
                          f"(load test of {key.relpath} with libs {libs})"))
        rule = compat.probe_warning(str(falco.version)) if falco.driver is \
            DriverMode.EBPF else None
        if rule and not tested:
            found.append((where, rule))
    return found


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
    for where, warning in warnings(manifests.hosts, config):
        print(f"{posixpath.join(prefix, where) if prefix else where}: {warning}",
              file=sys.stderr)
    what = "the working tree" if snapshot.worktree else snapshot.revision[:12]
    print(f"{len(manifests.hosts)} hosts, {len(manifests.builds)} driver builds at "
          f"{what}: valid")
    return 0
