"""Host facts: what Falco's loaders read about the host, read from files under a host root.

Only plain file reads, no subprocess, so a container that mounts the host at ``/host`` sees
the same facts as the host itself::

    etc/hostname                 -> hostname (else this machine's name)
    proc/sys/kernel/osrelease    -> kernel_release   (uname -r; a root without it that has
                                                     kernels installed is an image: the
                                                     newest one is what it will boot)
    proc/sys/kernel/version      -> kernel_version   (uname -v, the whole string)
    proc/sys/kernel/arch         -> machine          (uname -m; else os.uname())
    etc/os-release               -> os_id, os_version_id, os_release (else usr/lib/os-release)
                                    and os_release_file, the one of the two that was read

plus the few files a loader rule looks at: ``etc/VERSION`` (minikube) and the legacy
release files (``etc/debian_version``, ``etc/centos-release``, ``etc/redhat-release``) the
loaders fall back on when there is no os-release; and ``installed_kernels``, every kernel
installed under the root with the ``uname -v`` it will report (``edges.host.kernels`` finds
them). Turning facts into artifact names is ``kernelnames``' job, not this module's.
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

from reconciler import logs
from reconciler.edges.host import kernels
from reconciler.errors import FactsError
from reconciler.model.host import HostFacts

log = logs.get(__name__)

RUNNING_RELEASE = "proc/sys/kernel/osrelease"
OS_RELEASE_FILES = ("etc/os-release", "usr/lib/os-release")
LEGACY_RELEASE_FILES = ("etc/debian_version", "etc/centos-release", "etc/redhat-release")
MINIKUBE_VERSION_FILE = "etc/VERSION"


def read(host_root: Path = Path("/"), hostname: str | None = None) -> HostFacts:
    """Read the facts of the host whose root file system is at ``host_root``.

    ``hostname`` overrides the host's name (a build host acting for another, tests).
    Raises FactsError naming the file when a required fact is missing or unreadable.
    """
    root = Path(host_root)
    os_release_file, pairs = _read_os_release(root)
    fields = dict(pairs)
    # A root that runs nothing (a golden image mounted for a bake) will boot its newest
    # kernel, as GRUB's default entry does; none of its kernels is the running one, so each
    # says where its uname -v is from.
    image = () if (root / RUNNING_RELEASE).exists() else kernels.find(root, "", "")
    if image:
        booted = max(image, key=lambda k: release_order(k.release))
        release, version = booted.release, booted.version
        log.info("facts.image_root", host_root=str(root), boots=release)
    else:
        release = _kernel_line(root, RUNNING_RELEASE, "kernel release")
        version = _kernel_line(root, "proc/sys/kernel/version", "kernel version")
    found = HostFacts(
        hostname=hostname or host_name(root),
        kernel_release=release,
        kernel_version=version,
        machine=_machine(root),
        os_id=fields.get("ID", ""),
        os_version_id=fields.get("VERSION_ID", ""),
        os_release=pairs,
        os_release_file=os_release_file,
        minikube_version=_optional_text(root, MINIKUBE_VERSION_FILE),
        legacy_release_files=tuple(f for f in LEGACY_RELEASE_FILES if (root / f).is_file()),
        installed_kernels=image or kernels.find(root, release, version),
    )
    log.debug("facts.read", host_root=str(root), hostname=found.hostname,
              kernel_release=found.kernel_release, machine=found.machine, os_id=found.os_id,
              installed_kernels=[k.release for k in found.installed_kernels])
    return found


def release_order(release: str) -> tuple[tuple[int, str], ...]:
    """A sort key that orders releases as versions: ``6.1.0-100`` after ``6.1.0-57``."""
    return tuple((int(part), "") if part.isdigit() else (-1, part)
                 for part in re.findall(r"\d+|[^\d.\-+~_]+", release))


def _text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise FactsError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FactsError(f"{path} is not UTF-8 text: byte {exc.start} is invalid") from exc


def _optional_text(root: Path, rel: str) -> str | None:
    try:
        return _text(root / rel)
    except FileNotFoundError:
        return None


def _kernel_line(root: Path, rel: str, what: str) -> str:
    path = root / rel
    try:
        text = _text(path)
    except FileNotFoundError:
        raise FactsError(f"cannot read the {what}: {path} does not exist") from None
    value = text.rstrip("\n")
    if not value.strip():
        raise FactsError(f"cannot read the {what}: {path} is empty")
    if "\n" in value or "\x00" in value:
        raise FactsError(f"cannot read the {what}: {path} holds more than one line")
    return value


def host_name(root: Path) -> str:
    """The host's name: the first name in ``<root>/etc/hostname``, else this machine's."""
    text = _optional_text(root, "etc/hostname")
    if text is not None:
        for line in text.splitlines():
            name = line.split("#", 1)[0].strip()
            if name:
                return name
    return socket.gethostname()


def _machine(root: Path) -> str:
    text = _optional_text(root, "proc/sys/kernel/arch")
    if text is not None and text.strip():
        return text.strip()
    return os.uname().machine


def _read_os_release(root: Path) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The os-release file found (relative to the root, "" for none) and its pairs.

    usr/lib/os-release is read when etc/os-release is missing so ``reconciler facts`` can
    show it, but the loaders never read it: ``kernelnames`` looks at the file name.
    """
    for rel in OS_RELEASE_FILES:
        path = root / rel
        try:
            text = _text(path)
        except FileNotFoundError:
            continue
        return rel, tuple(sorted(parse_os_release(text, source=str(path)).items()))
    return "", ()


def parse_os_release(text: str, *, source: str = "os-release") -> dict[str, str]:
    """Parse os-release(5): ``KEY=value`` lines, shell quoting, ``#`` comments.

    Double quotes honour the backslash escapes of the shell (``\\"``, ``\\\\``, ``\\$``,
    ``\\```); single quotes are literal; unquoted values may escape one character.
    A line that is not an assignment, or a quote left open, is a FactsError.
    """
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, rest = line.partition("=")
        if not sep or not key or not (key[0].isalpha() or key[0] == "_") or not all(
            c.isalnum() or c == "_" for c in key
        ):
            raise FactsError(f"{source}:{number}: expected KEY=value, got {raw.strip()!r}")
        try:
            values[key] = _shell_value(rest)
        except ValueError as exc:
            raise FactsError(f"{source}:{number}: {exc}") from None
    return values


def _shell_value(text: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == '"':
            end = i + 1
            while end < len(text) and text[end] != '"':
                if text[end] == "\\" and end + 1 < len(text) and text[end + 1] in '"\\$`':
                    out.append(text[end + 1])
                    end += 2
                    continue
                out.append(text[end])
                end += 1
            if end >= len(text):
                raise ValueError("unterminated double quote")
            i = end + 1
        elif c == "'":
            end = text.find("'", i + 1)
            if end < 0:
                raise ValueError("unterminated single quote")
            out.append(text[i + 1:end])
            i = end + 1
        elif c == "\\":
            if i + 1 < len(text):
                out.append(text[i + 1])
            i += 2
        elif c in " \t":
            if text[i:].lstrip().startswith("#") or not text[i:].strip():
                break  # a trailing comment or blanks end the value
            raise ValueError("unquoted whitespace in value; quote it")
        else:
            out.append(c)
            i += 1
    return "".join(out)
