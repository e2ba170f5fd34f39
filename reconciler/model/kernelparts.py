"""The parts of a driver name that every distro shares: the kernel version each loader
reduces ``uname -v`` to, and the kernel release falcoctl re-renders through driverkit's
parser; plus the values a naming rule works on (``Names``) or gives up with (``Unnamed``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from reconciler.model.versions import FalcoVersion


@dataclass(frozen=True)
class Names:
    """The three name parts while the rules rewrite them, for the loader of ``falco``."""

    target: str
    release: str
    version: str
    falco: FalcoVersion


@dataclass(frozen=True)
class Unnamed:
    """The loader of this Falco version names no driver on this host; ``reason`` says why.

    Nothing is downloaded there, so nothing is built for it either.
    """

    reason: str


V = FalcoVersion
FIRST_FALCOCTL = V(0, 37, 0)


# -- kernel version: the number after '#' in `uname -v` ----------------------------------

def bash_kernel_version(uname_v: str) -> str:
    """Falco <= 0.36: ``sed 's/#\\([[:digit:]]\\+\\).*/\\1/'`` over ``uname -v``.

    ``#1 SMP Debian 5.10.113-1 (2022-04-29)`` -> ``1``. Like sed, text before the ``#`` is
    kept and a string without ``#<digits>`` passes through unchanged.
    """
    return re.sub(r"#(\d+).*", r"\1", uname_v, count=1)


def falcoctl_070_kernel_version(uname_v: str) -> str:
    """Falco 0.37.0 (falcoctl 0.7.0/0.7.1): the first word of ``uname -v`` without ``#``.

    ``#1 SMP PREEMPT_DYNAMIC ...`` -> ``1``, but ``#1-photon SMP`` -> ``1-photon``;
    falcoctl#427 (v0.7.2) went back to the bash loader's digits.
    """
    return uname_v.lstrip("#").split(" ")[0]


def falcoctl_kernel_version(uname_v: str) -> str:
    """Falco >= 0.37.1 (falcoctl >= 0.7.2): the digits of the first ``#<digits>``.

    Unlike sed nothing before the ``#`` is kept; without ``#<digits>`` the whole
    ``uname -v`` is used.
    """
    match = re.search(r"#(\d+)", uname_v)
    return match[1] if match else uname_v


def default_kernel_version(uname_v: str, falco: FalcoVersion) -> str:
    if falco < FIRST_FALCOCTL:
        return bash_kernel_version(uname_v)
    if falco < V(0, 37, 1):
        return falcoctl_070_kernel_version(uname_v)
    return falcoctl_kernel_version(uname_v)


# -- kernel release: falcoctl re-renders `uname -r` through driverkit's parser ----------

@dataclass(frozen=True)
class ParsedRelease:
    """``uname -r`` as driverkit's ``kernelrelease.FromString`` splits it.

    falcoctl names the release ``full + extra`` (``KernelRelease.String()``), not ``uname -r``:
    a release the pattern does not match becomes ``""``, and a trailing ``+build`` part the
    pattern sets apart is dropped.
    """

    full: str  # X.Y[.Z]
    extra: str  # what follows, from its leading - . or +

    def __str__(self) -> str:
        return self.full + self.extra


def _driverkit_pattern(*, number: str, bare_sign: bool, major_only: bool) -> re.Pattern[str]:
    """driverkit's kernel release grammar, in the variant a driverkit release used.

    ``number``: how a numeric part is spelled (no leading zeros before driverkit v0.19);
    ``bare_sign``: a lone ``-``/``.``/``+`` may end the release (v0.20.3, for COS's
    ``6.1.85+``, falco#3278); ``major_only``: ``X`` alone is a release (v0.23).
    Go's regexp picks the submatches a backtracking engine would, as Python's ``re`` does.
    """
    plain = r"(?:0|[1-9]\d*)"
    minor_patch = rf"\.{plain}[.+]?(?:{plain})?"
    version = rf"{plain}(?:{minor_patch})?" if major_only else plain + minor_patch
    first = rf"(?:{number}|\d*[a-zA-Z-][0-9a-zA-Z-]*)" + ("?" if bare_sign else "")
    more = rf"(?:[.+~](?:{number}|\d*[a-zA-Z-][0-9a-zA-Z_-]*))*"
    build = r"(?:\+[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*)?"
    return re.compile(rf"(?P<full>{version})(?P<extra>[-.+]{first}{more})?{build}\Z", re.ASCII)


# driverkit in falcoctl: v0.16.0 (falcoctl 0.7, Falco 0.37), v0.19.2/v0.20.0 (falcoctl
# 0.8/0.9, Falco 0.38), v0.20.3-v0.22.1 (falcoctl 0.10-0.12, Falco 0.39-0.43), v0.23.1
# (falcoctl 0.13, Falco 0.44).
_DRIVERKIT_RELEASE: tuple[tuple[FalcoVersion, re.Pattern[str]], ...] = (
    (V(0, 44, 0), _driverkit_pattern(number=r"\d+", bare_sign=True, major_only=True)),
    (V(0, 39, 0), _driverkit_pattern(number=r"\d+", bare_sign=True, major_only=False)),
    (V(0, 38, 0), _driverkit_pattern(number=r"\d+", bare_sign=False, major_only=False)),
    (FIRST_FALCOCTL, _driverkit_pattern(number=r"(?:0|[1-9]\d*)", bare_sign=False,
                                        major_only=False)),
)


def driverkit_release(release: str, falco: FalcoVersion) -> ParsedRelease:
    """``release`` as the driverkit inside Falco ``falco``'s falcoctl parses it (>= 0.37)."""
    pattern = next(p for since, p in _DRIVERKIT_RELEASE if falco >= since)
    match = pattern.match(release)
    if match is None:
        return ParsedRelease("", "")
    return ParsedRelease(match["full"], match["extra"] or "")


def default_release(uname_r: str, falco: FalcoVersion) -> str:
    """The bash loaders name ``uname -r`` as is; falcoctl its driverkit rendering."""
    if falco < FIRST_FALCOCTL:
        return uname_r
    return str(driverkit_release(uname_r, falco))
