"""What a kernel's package says about the ``uname -v`` it will report.

Where the boot image cannot tell (arm64, an unreadable image), the package database can:
the kernel's build number and, on Debian, the package version are part of ``uname -v``.

- Debian: ``linux-image-6.1.0-57-cloud-amd64`` at version ``6.1.192-3`` boots as
  ``#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-26)``. The build number is always 1;
  the date is not in the package database and is left out (no naming rule reads it: the
  Debian rules take the first ``X.Y.Z-N`` and the number after ``#``).
- Ubuntu: ``5.15.0-86.96`` is ABI 86, upload 96: ``#96-Ubuntu SMP <date>``; a backport
  (HWE) ``5.15.0-86.96~22.04.1`` boots as ``#96~22.04.1-Ubuntu SMP <date>``, which the
  Ubuntu rules read as kernel version ``96~22.04.1``.

The words between the number and the distro part are the kernel build's (5.18 and later):
``SMP`` with ``CONFIG_SMP``, then ``PREEMPT_RT``, ``PREEMPT_DYNAMIC`` or ``PREEMPT`` after
the preemption model, read from the kernel's config file when there is one.

``status_entries`` parses dpkg's status file (deb822 stanzas) for a few packages, from
lines the caller reads (and bounds).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

DEBIAN_KERNEL_TEAM = "debian-kernel@lists.debian.org"
_UBUNTU_VERSION = re.compile(r"\d+\.\d+\.\d+-\d+\.(?P<upload>\d+)(?P<backport>~[0-9A-Za-z.+]+)?")
# dpkg's "want flag state": files are there in every state but these two.
_NOT_INSTALLED = frozenset({"not-installed", "config-files"})


@dataclass(frozen=True)
class Package:
    """One package's stanza in dpkg's status file, the fields we read."""

    name: str
    version: str
    status: str = ""
    maintainer: str = ""

    @property
    def installed(self) -> bool:
        """Whether its files are on disk: dpkg's state is neither of ``_NOT_INSTALLED``."""
        words = self.status.split()
        return bool(words) and words[-1] not in _NOT_INSTALLED


def image_packages(release: str) -> tuple[str, ...]:
    """The names a kernel's image package has on Debian and Ubuntu, signed one first."""
    return (f"linux-image-{release}", f"linux-image-{release}-unsigned")


def status_entries(lines: Iterable[str], wanted: frozenset[str]) -> dict[str, Package]:
    """The installed packages among ``wanted`` in dpkg status text (one stanza each)."""
    found: dict[str, Package] = {}
    fields: dict[str, str] = {}

    def close() -> None:
        name = fields.get("package", "")
        if name in wanted and fields.get("version"):
            package = Package(name, fields["version"], fields.get("status", ""),
                              fields.get("maintainer", ""))
            if package.installed:
                found[name] = package
        fields.clear()

    for line in lines:
        if not line.strip():
            close()
            continue
        if line[0] in " \t":
            continue  # a continuation line (descriptions, conffiles): not a field we read
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip().lower()] = value.strip()
    close()
    return found


def uts_flags(config: Iterable[str] | None) -> str:
    """The words a kernel build puts after ``#<n>``, from its ``.config`` lines.

    Without a config the kernel is taken to be SMP and its preemption model is unknown.
    """
    if config is None:
        return "SMP"
    on = {line.split("=", 1)[0] for line in config if line.rstrip().endswith("=y")}
    words = ["SMP"] if "CONFIG_SMP" in on else []
    if "CONFIG_PREEMPT_RT" in on:
        words.append("PREEMPT_RT")
    elif "CONFIG_PREEMPT_DYNAMIC" in on:
        words.append("PREEMPT_DYNAMIC")
    elif "CONFIG_PREEMPT" in on:
        words.append("PREEMPT")
    return " ".join(words)


def uname_version(package: Package, flags: str) -> str | None:
    """The ``uname -v`` this kernel package boots as, without the date; None if unknown.

    Known are Debian's kernels (by their maintainer) and Ubuntu's (by the version's
    ``ABI.upload`` shape); a kernel someone packaged (``make bindeb-pkg``) says nothing.
    """
    middle = f" {flags}" if flags else ""
    ubuntu = _UBUNTU_VERSION.fullmatch(package.version)
    if ubuntu:
        return f"#{ubuntu['upload']}{ubuntu['backport'] or ''}-Ubuntu{middle}"
    if DEBIAN_KERNEL_TEAM in package.maintainer:
        return f"#1{middle} Debian {package.version}"
    return None
