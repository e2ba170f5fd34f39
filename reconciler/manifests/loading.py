"""Reading manifests: YAML files in, a validated ``ManifestSet`` or every problem out.

Speed shapes this module. A repository may hold tens of thousands of documents and the
daemon reads them on every pass, so the happy path is the fast YAML reader (``yamlread``)
followed by one pydantic validation per document. The cyclic GC is paused while reading
(see ``_read``).

Line numbers are only needed to report problems: a file with any problem is parsed a second
time into a node tree (``compose``) and each problem's key path is walked to its line. A
document's own start line (``Origin.line``: its ``---``, or 1 for a first document without
one) comes from counting ``---`` markers, which costs a regex scan.

Problems are collected, never raised one by one: ``problems()`` returns all of them, sorted,
and ``load()`` raises one ``ManifestError`` carrying them.

The repository is a trust boundary (more people can push than can log in, and the daemon
acts as root), so what a push holds is bounded before it is believed: at most
``MAX_FILE_BYTES`` per file and ``MAX_REPOSITORY_BYTES`` in all, ``MAX_DOCUMENTS_PER_FILE``
and ``MAX_DOCUMENTS`` documents, ``MAX_DEPTH`` levels of nesting; a mapping that repeats
a key is an error (YAML says keys are unique, PyYAML would keep the last one silently), and
so is a scalar its tag cannot read (``2024-13-45``, ``!!int x``), which PyYAML would raise
as a bare ``ValueError``. docs/manifest-limits.md says why each bound is what it is. The
happy path pays one comparison per mapping for the duplicate check and one per collection
for the depth; everything else runs only for a file that breaks a rule.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import PurePosixPath
from typing import Any, NamedTuple

from pydantic import ValidationError

from reconciler.errors import ManifestError, Problem, UnknownDriverVersion
from reconciler.manifests import driverkit, grammar, models, rollout
from reconciler.manifests.driverkit import did_you_mean
from reconciler.manifests.issues import Issue, KeyPath
from reconciler.manifests.limits import (
    MAX_DEPTH,
    MAX_DOCUMENTS,
    MAX_DOCUMENTS_PER_FILE,
    MAX_FILE_BYTES,
    MAX_REPOSITORY_BYTES,
)
from reconciler.manifests.problems import config_path, escaped, explain, locate, show
from reconciler.manifests.yamlread import compose, document_lines, parse
from reconciler.model import versions
from reconciler.model.artifacts import DriverKind

__all__ = [
    "MAX_DEPTH",
    "MAX_DOCUMENTS",
    "MAX_DOCUMENTS_PER_FILE",
    "MAX_FILE_BYTES",
    "MAX_REPOSITORY_BYTES",
    "FileRead",
    "Memo",
    "check",
    "is_manifest_path",
    "load",
    "problems",
]

KINDS: dict[str, type[models.Host] | type[models.DriverBuild] | type[rollout.Rollout]] = {
    "Host": models.Host,
    "DriverBuild": models.DriverBuild,
    "Rollout": rollout.Rollout,
}


def is_manifest_path(relpath: str) -> bool:
    """``*.yaml`` / ``*.yml`` outside hidden folders (``.github/``) and not hidden itself."""
    parts = PurePosixPath(relpath).parts
    if not parts or any(part.startswith(".") for part in parts):
        return False
    return parts[-1].endswith((".yaml", ".yml"))


def load(files: Sequence[tuple[str, bytes]], memo: Memo | None = None) -> models.ManifestSet:
    """Validate every document of ``files`` (relative path, content); raise ``ManifestError``
    with every problem if any. With a ``memo`` (kept by the caller across revisions), a file
    whose content was read before is not parsed again."""
    manifests, issues = _read(files, memo)
    if issues:
        raise ManifestError(locate(files, issues))
    return manifests


def problems(files: Sequence[tuple[str, bytes]]) -> list[Problem]:
    """Every problem of ``files``, sorted by file, line and message; empty when valid."""
    return check(files)[1]


def check(
    files: Sequence[tuple[str, bytes]],
) -> tuple[models.ManifestSet, list[Problem]]:
    """The valid documents and every problem (sorted) in one pass, for ``validate``."""
    manifests, issues = _read(files)
    return manifests, sorted(locate(files, issues)) if issues else []


# -- the happy path --------------------------------------------------------------------


def _read(
    files: Sequence[tuple[str, bytes]], memo: Memo | None = None,
) -> tuple[models.ManifestSet, list[Issue]]:
    # No collector switching here (it would be global in a threaded daemon): one-shot
    # commands run without the collector, a policy of the process edge (cli.entry).
    reader = _Reader(memo)
    for relpath, content in sorted(files, key=lambda item: item[0]):
        reader.read_file(relpath, content)
    reader.forget_unused()
    return models.ManifestSet(tuple(reader.hosts), tuple(reader.builds),
                              tuple(reader.rollouts)), reader.issues


class _Reader:
    """The repository: its files in order, the bounds over all of them, and the names that
    must be unique across files. One file's documents are read by ``_FileReader``, and what
    it found is remembered by content in ``memo`` (when given): a one-file push re-reads one
    file."""

    def __init__(self, memo: Memo | None = None) -> None:
        self.hosts: list[models.Located[models.Host]] = []
        self.builds: list[models.Located[models.DriverBuild]] = []
        self.rollouts: list[models.Located[rollout.Rollout]] = []
        self.issues: list[Issue] = []
        self.names: dict[str, dict[str, tuple[str, int]]] = {kind: {} for kind in KINDS}
        self.reported: set[tuple[str, int]] = set()
        self.bytes = 0  # read so far, against MAX_REPOSITORY_BYTES
        self.documents = 0  # against MAX_DOCUMENTS
        self.full = False  # a revision limit was reached: the files after it are not read
        self.memo = memo
        self.used: set[tuple[str, bytes]] = set()

    def read_file(self, relpath: str, content: bytes) -> None:
        if self.full or not self.within_limits(relpath, content):
            return
        budget = MAX_DOCUMENTS - self.documents
        # Only what the per-file bound alone decided is the same whatever came before.
        reusable = self.memo is not None and budget >= MAX_DOCUMENTS_PER_FILE
        key = (relpath, hashlib.blake2b(content, digest_size=16).digest())
        found = self.memo.get(key) if self.memo is not None and reusable else None
        if found is None:
            found = _FileReader(relpath).read(content, budget)
            if self.memo is not None and reusable:
                self.memo[key] = found
        self.used.add(key)
        self.hosts += found.hosts
        self.builds += found.builds
        self.issues += found.issues
        for located in found.rollouts:
            self.add_rollout(located)
        self.documents += found.documents
        self.full = found.full
        for origin, kind, name in found.names:
            self.check_name(origin, kind, name)

    def forget_unused(self) -> None:
        """Keep in the memo only the files of the revision just read."""
        if self.memo is not None:
            for key in [k for k in self.memo if k not in self.used]:
                del self.memo[key]

    def within_limits(self, relpath: str, content: bytes) -> bool:
        """False, with the problem said, for a file that is not to be read at all."""
        if not relpath.isprintable():
            # A name from git may hold anything but NUL and "/": printed as it is, control
            # characters would rewrite the terminal that shows `validate`'s report.
            self.issues.append(Issue(escaped(relpath), 0, (), (
                "the file name holds characters that are not printable (shown escaped); "
                "rename the file (it is not read)"), line=1))
            return False
        # A source may read only the head of a huge file (edges.git.repo.Truncated).
        size = int(getattr(content, "size", len(content)))
        self.bytes += size
        if self.bytes > MAX_REPOSITORY_BYTES:
            self.full = True
            self.issues.append(Issue(relpath, 0, (), (
                f"the manifest files reach {self.bytes} bytes at this file, over the "
                f"{MAX_REPOSITORY_BYTES} bytes ({MAX_REPOSITORY_BYTES >> 20} MiB) one revision "
                "may hold; this file and the files after it are not read"), line=1))
            return False
        if size > MAX_FILE_BYTES:
            self.issues.append(Issue(relpath, 0, (), (
                f"the file is {size} bytes, over the {MAX_FILE_BYTES} bytes "
                f"({MAX_FILE_BYTES >> 20} MiB) a manifest file may hold; split it (the file "
                "is not read)"), line=1))
            return False
        return True

    def add_rollout(self, located: models.Located[rollout.Rollout]) -> None:
        """At most one Rollout per repository: the fleet has one order of waves."""
        if self.rollouts:
            first = self.rollouts[0].origin
            self.issues.append(Issue(
                located.origin.file, located.origin.document, ("kind",),
                "a second Rollout: a repository holds at most one (the fleet has one order of "
                "waves), the first is at {other}; merge their waves",
                other=(first.file, first.document, ("kind",))))
            return
        self.rollouts.append(located)

    def check_name(self, origin: models.Origin, kind: str, name: str) -> None:
        seen = self.names[kind]
        first = seen.setdefault(name, (origin.file, origin.document))
        if first == (origin.file, origin.document):
            return
        where: KeyPath = ("metadata", "name")
        self.issues.append(Issue(
            origin.file, origin.document, where,
            f"duplicate {kind} name {name!r}: {kind} names must be unique, first used at {{other}}",
            other=(*first, where),
        ))
        if first not in self.reported:
            self.reported.add(first)
            self.issues.append(Issue(
                first[0], first[1], where,
                f"duplicate {kind} name {name!r}: used again at {{other}}",
                other=(origin.file, origin.document, where),
            ))


class FileRead(NamedTuple):
    """What one file holds: its valid documents, its problems, the names to check across
    files, and how many documents it counted against the repository's bound."""

    hosts: tuple[models.Located[models.Host], ...]
    builds: tuple[models.Located[models.DriverBuild], ...]
    rollouts: tuple[models.Located[rollout.Rollout], ...]
    issues: tuple[Issue, ...]
    names: tuple[tuple[models.Origin, str, str], ...]
    documents: int
    full: bool


Memo = dict[tuple[str, bytes], FileRead]


class _FileReader:
    """One file's documents, each validated (nothing here depends on another file)."""

    def __init__(self, relpath: str) -> None:
        self.relpath = relpath
        self.hosts: list[models.Located[models.Host]] = []
        self.builds: list[models.Located[models.DriverBuild]] = []
        self.rollouts: list[models.Located[rollout.Rollout]] = []
        self.issues: list[Issue] = []
        self.names: list[tuple[models.Origin, str, str]] = []

    def read(self, content: bytes, budget: int) -> FileRead:
        parsed = parse(self.relpath, content, budget)
        self.issues += parsed.issues
        documents = parsed.documents
        if documents:
            # The markers can only be checked against every document the file holds.
            lines = None if parsed.truncated else document_lines(content, len(documents))
            if lines is None:
                lines = [node.start_mark.line + 1 for node in compose(content)]
            for index, document in enumerate(documents):
                if document is None:
                    continue  # an empty document, e.g. after a trailing "---"
                origin = models.Origin(self.relpath, index,
                                       lines[index] if index < len(lines) else 1)
                self.read_document(origin, document, keep=index not in parsed.refused)
        return FileRead(tuple(self.hosts), tuple(self.builds), tuple(self.rollouts),
                        tuple(self.issues),
                        tuple(self.names), len(documents), parsed.full)

    def note_name(self, origin: models.Origin, kind: str, document: dict[Any, Any]) -> None:
        """A name to check for uniqueness across the repository (``_Reader.check_name``)."""
        metadata = document.get("metadata")
        name = metadata.get("name") if isinstance(metadata, dict) else None
        if isinstance(name, str):
            self.names.append((origin, kind, name))

    def read_document(self, origin: models.Origin, document: Any, *, keep: bool = True) -> None:
        """Validate a document and, when it is valid and ``keep``, add it to the set."""
        if not isinstance(document, dict):
            self.issue(origin, (), (
                f"a manifest must be a mapping (apiVersion, kind, metadata, spec) or a driverkit "
                f"config, got {show(document)}"
            ))
            return
        kind = document.get("kind")
        if kind == "Host":
            host = self.validate(origin, models.Host, document)
            self.note_name(origin, "Host", document)
            owned = self.check_env(origin, document)
            if host is not None and self.check_host(origin, host) and keep and not owned:
                self.hosts.append(models.Located(host, origin))
        elif kind == "DriverBuild":
            self.check_kernel(origin, document)
            build = self.validate(origin, models.DriverBuild, document)
            self.note_name(origin, "DriverBuild", document)
            if build is not None and self.check_build(origin, build, config=False) and keep:
                self.builds.append(models.Located(build, origin))
        elif kind == "Rollout":
            plan = self.validate(origin, rollout.Rollout, document)
            problem = rollout.wave_names_problem(plan) if plan is not None else None
            if problem is not None:
                self.issue(origin, *problem)
            elif plan is not None and keep:
                self.rollouts.append(models.Located(plan, origin))
        elif kind is None and driverkit.is_config(document):
            self.read_driverkit_config(origin, document, keep=keep)
        elif "kind" not in document:
            self.issue(origin, (), (
                "missing required key 'kind' in the document; expected Host, DriverBuild or "
                "Rollout (or a driverkit config with target, kernelrelease, output...)"
            ))
        else:
            hint = did_you_mean(str(kind), KINDS) if isinstance(kind, str) else ""
            self.issue(origin, ("kind",), (
                f"unknown kind {show(kind)}; expected Host, DriverBuild or Rollout{hint}"
            ))

    def read_driverkit_config(
        self, origin: models.Origin, config: dict[Any, Any], *, keep: bool = True,
    ) -> None:
        converted, found = driverkit.to_driver_build(
            config, origin.file, origin.document, models.API_VERSION
        )
        for path, message in found:
            self.issue(origin, path, message)
        build = self.validate(origin, models.DriverBuild, converted, rename=config_path)
        if build is not None and not found and self.check_build(origin, build, config=True) \
                and keep:
            self.builds.append(models.Located(build, origin))

    def validate(
        self, origin: models.Origin, model: type[Any], document: dict[Any, Any],
        rename: Callable[[KeyPath], KeyPath] | None = None,
    ) -> Any:
        try:
            return model.model_validate(document, by_name=False)
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                path, message = explain(model, error, rename)
                self.issue(origin, path, message)
            return None

    def check_env(self, origin: models.Origin, document: dict[Any, Any]) -> bool:
        """Whether the Host's env names a variable the reconciler sets (each one reported).

        Read from the document itself, so the refusal comes with the Host's other problems.
        """
        spec = document.get("spec")
        falco = spec.get("falco") if isinstance(spec, dict) else None
        env = falco.get("env") if isinstance(falco, dict) else None
        if not isinstance(env, dict):
            return False
        owned = [key for key in env if isinstance(key, str) and grammar.set_by_reconciler(key)]
        for key in owned:
            # Refused, not silently overridden: the push meant something the host won't do.
            self.issue(origin, ("spec", "falco", "env", key), (
                f"spec.falco.env.{key}: set by the reconciler from the driver mode "
                "(spec.falco.driver), not by the manifest; remove it"))
        return bool(owned)

    def check_host(self, origin: models.Origin, host: models.Host) -> bool:
        falco = host.spec.falco
        try:
            falco.resolved_driver_version()
        except UnknownDriverVersion:
            self.issue(origin, ("spec", "falco", "version"), (
                f"Falco {falco.version} has no known driver version; set spec.falco.driverVersion "
                "(known: Falco 0.32.1 to 0.44)"
            ))
            return False
        if falco.driver is models.DriverMode.MODERN_EBPF and not versions.supports_modern_ebpf(
            falco.falco_version
        ):
            self.issue(origin, ("spec", "falco", "driver"), (
                f"driver modern_ebpf needs Falco 0.35 or later, this Host runs {falco.version}; "
                "expected kmod, ebpf, kmod-preloaded or none"
            ))
            return False
        if falco.driver is models.DriverMode.EBPF:
            if not versions.supports_legacy_ebpf(falco.falco_version):
                self.issue(origin, ("spec", "falco", "driver"), (
                    f"spec.falco.driver: driver ebpf (the legacy eBPF probe) was removed in Falco "
                    f"0.44, this Host "
                    f"runs {falco.version}; the last version that has it is 0.43: expected "
                    "modern_ebpf, kmod, kmod-preloaded or none"
                ))
                return False
            driver_version = falco.resolved_driver_version()
            if not versions.driver_has_probe(driver_version):
                self.issue(origin, ("spec", "falco", "driverVersion"), (
                    f"spec.falco.driverVersion: driver {driver_version} has no legacy eBPF probe "
                    f"(drivers from "
                    f"{versions.FIRST_DRIVER_WITHOUT_PROBE}.0 have none; the last with one is "
                    "9.1.0+driver): expected driver modern_ebpf, kmod or an older driverVersion"
                ))
                return False
        return True

    def check_kernel(self, origin: models.Origin, document: dict[Any, Any]) -> None:
        """A DriverBuild names its kernel: kernelRelease, or newestKernel."""
        spec = document.get("spec")
        if isinstance(spec, dict) and "kernelRelease" not in spec and "newestKernel" not in spec:
            self.issue(origin, ("spec",), (
                "missing required key 'kernelRelease' in spec (or newestKernel, e.g. "
                "6.1.0-*-cloud-amd64: the newest the build host's apt lists offer)"))

    def check_build(self, origin: models.Origin, build: models.DriverBuild, *,
                    config: bool) -> bool:
        """Which kernel (exactly one of kernelRelease and newestKernel), and driver 10.0
        and later have no legacy probe: an ebpf output cannot be built."""
        spec = build.spec
        if spec.newest_kernel is None and not spec.kernel_release:
            return False  # said by check_kernel, with the document's other problems
        if spec.newest_kernel is not None and (spec.kernel_release or spec.target != "debian"):
            self.issue(origin, ("spec", "newestKernel"), (
                "spec.newestKernel: kernelRelease and newestKernel exclude each other; give one"
                if spec.kernel_release else
                f"spec.newestKernel: read from apt's package lists, it takes target debian, "
                f"got {spec.target!r}; give kernelRelease"))
            return False
        if spec.uname_release and spec.newest_kernel is not None:
            self.issue(origin, ("spec", "unameRelease"), (
                "spec.unameRelease: newestKernel already resolves to the kernel's uname -r; "
                "unameRelease goes with a kernelRelease that names it otherwise"))
            return False
        if DriverKind.EBPF not in spec.outputs or versions.driver_has_probe(spec.driver_version):
            return True
        where: KeyPath = ("output", "probe") if config else ("spec", "outputs")
        key = "output.probe" if config else "outputs: ebpf"
        self.issue(origin, where, (
            f"{key}: driver {spec.driver_version} has no legacy eBPF probe (drivers from "
            f"{versions.FIRST_DRIVER_WITHOUT_PROBE}.0 have none; the last with one is "
            "9.1.0+driver): expected only the kernel module"
            + ("" if config else " (outputs: [kmod])")
        ))
        return False

    def issue(self, origin: models.Origin, path: KeyPath, message: str) -> None:
        self.issues.append(Issue(origin.file, origin.document, path, message))
