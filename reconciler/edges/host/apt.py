"""The build host's apt package lists: which kernel ABIs Debian offers right now.

A DriverBuild may ask for ``newestKernel: 6.1.0-*-cloud-amd64``: the newest kernel of that
series and flavour whose ``linux-headers-<release>`` the lists hold, so a fleet's build
hosts follow Debian's kernel updates without a manifest change (Debian keeps only the
current ABI of a suite on its mirror). ``apt-cache`` reads the lists, in whatever
compression apt keeps them, under the host root (``-o Dir=``); ``apt-get update`` keeps them
current. Its failures become an answer with a reason, never an exception: a host without
apt simply has no such kernel.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from reconciler import logs
from reconciler.model.host import Newest

log = logs.get(__name__)


def _regex(pattern: str) -> tuple[str, re.Pattern[str]]:
    """apt-cache's search regex for ``pattern`` ("*" is the ABI number) and ours."""
    head, _star, tail = pattern.partition("*")
    search = f"^linux-headers-{re.escape(head)}[0-9]+{re.escape(tail)}$"
    return search, re.compile(f"^linux-headers-({re.escape(head)}([0-9]+){re.escape(tail)})$")


def newest_release(host_root: Path, pattern: str, timeout: float = 30.0) -> Newest:
    """The newest kernel release matching ``pattern`` that the host's apt lists offer."""
    search, ours = _regex(pattern)
    command = ["apt-cache"]
    if str(host_root) != "/":
        command += ["-o", f"Dir={host_root}"]
    command += ["search", "--names-only", search]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Newest(pattern, None, f"cannot read the apt package lists: {exc}")
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        return Newest(pattern, None, "cannot read the apt package lists: "
                      + (said[-1] if said else f"apt-cache exited {done.returncode}"))
    found: list[tuple[int, str]] = []
    for line in done.stdout.splitlines():
        matched = ours.match(line.split(" - ", 1)[0].strip())
        if matched:
            found.append((int(matched[2]), matched[1]))
    if not found:
        return Newest(pattern, None, f"no linux-headers-{pattern} in the apt package lists "
                      "(run apt-get update, or check the series and flavour)")
    release = max(found)[1]
    log.debug("apt.newest_kernel", pattern=pattern, release=release, candidates=len(found))
    return Newest(pattern, release)
