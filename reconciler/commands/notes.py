"""What a person should know beside a command's answer, printed on stderr: manifest
files with uncommitted changes (the answer is about the last commit), and YAML files at the
manifest root that are no manifests at all (a ``--path`` is probably missing)."""

from __future__ import annotations

import posixpath
import sys
from collections.abc import Sequence
from pathlib import Path

from reconciler.edges.git import repo as gitrepo
from reconciler.manifests import loading
from reconciler.model.host import HostFacts


def warn_uncommitted(repo: str, path: str, revision: str, verb: str) -> None:
    """Say on stderr which manifest files differ from the commit that was read."""
    changed = gitrepo.uncommitted(repo, path, loading.is_manifest_path)
    if not changed:
        return
    shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5
                                       else "")
    files = "file has" if len(changed) == 1 else "files have"
    print(f"note: {len(changed)} manifest {files} uncommitted changes ({shown}); {verb} "
          f"{revision[:12]}, the last commit (`validate --worktree` reads the working "
          f"tree)", file=sys.stderr)


_MARKERS = (b"falco-reconciler/", b"kernelrelease", b"driverversion")


def path_hint(files: Sequence[tuple[str, bytes]], failing: set[str], prefix: str) -> str:
    """When YAML files that are no manifests at all fail (a compose file, a CI workflow at
    the repository's root), suggest the folders that do hold manifests as ``--path``."""
    foreign = sorted(name for name, data in files
                     if name in failing and not any(m in data.lower() for m in _MARKERS))
    if not foreign:
        return ""
    homes = sorted({posixpath.dirname(name) for name, data in files
                    if b"falco-reconciler/" in data and posixpath.dirname(name)})
    shown = ", ".join(posixpath.join(prefix, n) if prefix else n for n in foreign[:3])
    more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
    hint = (f"hint: {len(foreign)} YAML file(s) here are not manifests ({shown}{more}); "
            f"every *.yaml under the manifest root is read")
    if homes:
        top = sorted({h.split("/")[0] for h in homes})
        paths = " or ".join(f"--path {posixpath.join(prefix, t) if prefix else t}"
                            for t in top[:3])
        hint += f": the manifests seem to live in a folder, try {paths}"
    return hint


def facts_used(facts: HostFacts, facts_file: Path | None) -> None:
    """Say on stderr whose facts a plan for another host was made with."""
    kernel = f"kernel {facts.kernel_release}, {facts.os_id or 'no os-release ID'}, {facts.machine}"
    if facts_file is not None:
        print(f"note: planned {facts.hostname} with the facts in {facts_file} ({kernel}); "
              f"this machine's store and retention are not reviewed", file=sys.stderr)
        return
    print(f"note: planned {facts.hostname} with THIS machine's facts ({kernel}); its own "
          f"kernel may differ: run `reconciler facts --json > {facts.hostname}.json` there "
          f"and pass --facts {facts.hostname}.json. This machine's store and retention are "
          f"not reviewed for a host it only acts as", file=sys.stderr)
