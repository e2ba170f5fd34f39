"""Reading manifests: YAML files in, a validated ``ManifestSet`` or every problem out.

Speed shapes this module. A repository may hold tens of thousands of documents and the
daemon reads them on every pass, so the happy path is libyaml's ``CSafeLoader`` followed by
one pydantic validation per document. Most of ``CSafeLoader``'s time is spent in PyYAML's
Python constructor and resolver, so ``_FastLoader`` answers the parser's resolver calls
directly and builds plain trees (maps, lists, str, int, float, bool, null, timestamp)
itself, handing anything else (aliases, merge keys, other tags) back to
``SafeConstructor``. Same results, in about half of ``CSafeLoader``'s time on the benchmark
repository. The cyclic GC is paused while reading (see ``_read``).

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

import gc
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, NamedTuple, get_args

import yaml
from pydantic import ValidationError
from pydantic.dataclasses import is_pydantic_dataclass
from pydantic.fields import FieldInfo
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from reconciler.errors import ManifestError, Problem, UnknownDriverVersion
from reconciler.manifests import driverkit, models
from reconciler.manifests.driverkit import did_you_mean, quoted
from reconciler.model import versions
from reconciler.model.artifacts import DriverKind

# What one revision of the repository may hold. A real fleet's repository is far inside
# them: the benchmark fleet (22,000 documents, bench/gen_manifests.py) is 6 MB in files of
# at most 31 KB. Each bound is there so that a hostile push costs a bounded amount of
# memory and time: parsing one 1 MiB file of the worst shape (a flow list of one-letter
# items) peaks at about 190 MB and a few seconds on a small VM.
MAX_FILE_BYTES = 1 << 20  # 1 MiB per file
MAX_REPOSITORY_BYTES = 64 << 20  # 64 MiB of manifest files in all
MAX_DOCUMENTS_PER_FILE = 10_000
MAX_DOCUMENTS = 50_000  # per revision, over every file
MAX_DEPTH = 32  # nested mappings and lists in one document; a manifest needs five

KeyPath = tuple[str | int, ...]
KINDS: dict[str, type[models.Host] | type[models.DriverBuild]] = {
    "Host": models.Host,
    "DriverBuild": models.DriverBuild,
}


def is_manifest_path(relpath: str) -> bool:
    """``*.yaml`` / ``*.yml`` outside hidden folders (``.github/``) and not hidden itself."""
    parts = PurePosixPath(relpath).parts
    if not parts or any(part.startswith(".") for part in parts):
        return False
    return parts[-1].endswith((".yaml", ".yml"))


@dataclass(frozen=True)
class _Issue:
    """A problem before it has a line: a document and a key path inside it.

    ``line`` is set when the parser already knows it (syntax errors). A message naming a
    second location says ``{other}``, filled in with that location's ``file:line``.
    """

    file: str
    document: int
    path: KeyPath
    message: str
    line: int = 0
    other: tuple[str, int, KeyPath] | None = None


def load(files: Sequence[tuple[str, bytes]]) -> models.ManifestSet:
    """Validate every document of ``files`` (relative path, content); raise ``ManifestError``
    with every problem if any."""
    manifests, issues = _read(files)
    if issues:
        raise ManifestError(_locate(files, issues))
    return manifests


def problems(files: Sequence[tuple[str, bytes]]) -> list[Problem]:
    """Every problem of ``files``, sorted by file, line and message; empty when valid."""
    return check(files)[1]


def check(
    files: Sequence[tuple[str, bytes]],
) -> tuple[models.ManifestSet, list[Problem]]:
    """The valid documents and every problem (sorted) in one pass, for ``validate``."""
    manifests, issues = _read(files)
    return manifests, sorted(_locate(files, issues)) if issues else []


# -- the happy path --------------------------------------------------------------------


def _read(files: Sequence[tuple[str, bytes]]) -> tuple[models.ManifestSet, list[_Issue]]:
    # Reading creates a few hundred thousand objects that all stay alive, so the cyclic
    # collector would rescan a growing heap again and again for nothing (about a third of
    # the time on 22,000 documents). Nothing here makes cycles that need collecting.
    collecting = gc.isenabled()
    gc.disable()
    try:
        reader = _Reader()
        for relpath, content in sorted(files, key=lambda item: item[0]):
            reader.read_file(relpath, content)
    finally:
        if collecting:
            gc.enable()
    return models.ManifestSet(tuple(reader.hosts), tuple(reader.builds)), reader.issues


class _Reader:
    def __init__(self) -> None:
        self.hosts: list[models.Located[models.Host]] = []
        self.builds: list[models.Located[models.DriverBuild]] = []
        self.issues: list[_Issue] = []
        self.names: dict[str, dict[str, tuple[str, int]]] = {kind: {} for kind in KINDS}
        self.reported: set[tuple[str, int]] = set()
        self.bytes = 0  # read so far, against MAX_REPOSITORY_BYTES
        self.documents = 0  # against MAX_DOCUMENTS
        self.full = False  # a revision limit was reached: the files after it are not read

    def read_file(self, relpath: str, content: bytes) -> None:
        if self.full or not self.within_limits(relpath, content):
            return
        parsed = _parse(relpath, content, MAX_DOCUMENTS - self.documents)
        self.issues += parsed.issues
        self.documents += len(parsed.documents)
        self.full = parsed.full
        documents = parsed.documents
        if not documents:
            return
        # The markers can only be checked against every document the file holds.
        lines = None if parsed.truncated else _document_lines(content, len(documents))
        if lines is None:
            lines = [node.start_mark.line + 1 for node in _compose(content)]
        for index, document in enumerate(documents):
            if document is None:
                continue  # an empty document, e.g. after a trailing "---"
            origin = models.Origin(relpath, index, lines[index] if index < len(lines) else 1)
            self.read_document(origin, document, keep=index not in parsed.refused)

    def within_limits(self, relpath: str, content: bytes) -> bool:
        """False, with the problem said, for a file that is not to be read at all."""
        if not relpath.isprintable():
            # A name from git may hold anything but NUL and "/": printed as it is, control
            # characters would rewrite the terminal that shows `validate`'s report.
            self.issues.append(_Issue(_escaped(relpath), 0, (), (
                "the file name holds characters that are not printable (shown escaped); "
                "rename the file (it is not read)"), line=1))
            return False
        self.bytes += len(content)
        if self.bytes > MAX_REPOSITORY_BYTES:
            self.full = True
            self.issues.append(_Issue(relpath, 0, (), (
                f"the manifest files reach {self.bytes} bytes at this file, over the "
                f"{MAX_REPOSITORY_BYTES} bytes ({MAX_REPOSITORY_BYTES >> 20} MiB) one revision "
                "may hold; this file and the files after it are not read"), line=1))
            return False
        if len(content) > MAX_FILE_BYTES:
            self.issues.append(_Issue(relpath, 0, (), (
                f"the file is {len(content)} bytes, over the {MAX_FILE_BYTES} bytes "
                f"({MAX_FILE_BYTES >> 20} MiB) a manifest file may hold; split it (the file "
                "is not read)"), line=1))
            return False
        return True

    def read_document(self, origin: models.Origin, document: Any, *, keep: bool = True) -> None:
        """Validate a document and, when it is valid and ``keep``, add it to the set."""
        if not isinstance(document, dict):
            self.issue(origin, (), (
                f"a manifest must be a mapping (apiVersion, kind, metadata, spec) or a driverkit "
                f"config, got {_show(document)}"
            ))
            return
        kind = document.get("kind")
        if kind == "Host":
            host = self.validate(origin, models.Host, document)
            self.check_name(origin, "Host", document)
            owned = self.check_env(origin, document)
            if host is not None and self.check_host(origin, host) and keep and not owned:
                self.hosts.append(models.Located(host, origin))
        elif kind == "DriverBuild":
            build = self.validate(origin, models.DriverBuild, document)
            self.check_name(origin, "DriverBuild", document)
            if build is not None and self.check_build(origin, build, config=False) and keep:
                self.builds.append(models.Located(build, origin))
        elif kind is None and driverkit.is_config(document):
            self.read_driverkit_config(origin, document, keep=keep)
        elif "kind" not in document:
            self.issue(origin, (), (
                "missing required key 'kind' in the document; expected Host or DriverBuild "
                "(or a driverkit config with target, kernelrelease, output...)"
            ))
        else:
            hint = did_you_mean(str(kind), KINDS) if isinstance(kind, str) else ""
            self.issue(origin, ("kind",), (
                f"unknown kind {_show(kind)}; expected Host or DriverBuild{hint}"
            ))

    def read_driverkit_config(
        self, origin: models.Origin, config: dict[Any, Any], *, keep: bool = True,
    ) -> None:
        converted, found = driverkit.to_driver_build(
            config, origin.file, origin.document, models.API_VERSION
        )
        for path, message in found:
            self.issue(origin, path, message)
        build = self.validate(origin, models.DriverBuild, converted, rename=_config_path)
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
                path, message = _explain(model, error, rename)
                self.issue(origin, path, message)
            return None

    def check_name(self, origin: models.Origin, kind: str, document: dict[Any, Any]) -> None:
        metadata = document.get("metadata")
        name = metadata.get("name") if isinstance(metadata, dict) else None
        if not isinstance(name, str):
            return
        seen = self.names[kind]
        first = seen.setdefault(name, (origin.file, origin.document))
        if first == (origin.file, origin.document):
            return
        where: KeyPath = ("metadata", "name")
        self.issues.append(_Issue(
            origin.file, origin.document, where,
            f"duplicate {kind} name {name!r}: {kind} names must be unique, first used at {{other}}",
            other=(*first, where),
        ))
        if first not in self.reported:
            self.reported.add(first)
            self.issues.append(_Issue(
                first[0], first[1], where,
                f"duplicate {kind} name {name!r}: used again at {{other}}",
                other=(origin.file, origin.document, where),
            ))

    def check_env(self, origin: models.Origin, document: dict[Any, Any]) -> bool:
        """Whether the Host's env names a variable the reconciler sets (each one reported).

        Read from the document itself, so the refusal comes with the Host's other problems.
        """
        spec = document.get("spec")
        falco = spec.get("falco") if isinstance(spec, dict) else None
        env = falco.get("env") if isinstance(falco, dict) else None
        if not isinstance(env, dict):
            return False
        owned = [key for key in env if isinstance(key, str) and models.set_by_reconciler(key)]
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

    def check_build(self, origin: models.Origin, build: models.DriverBuild, *,
                    config: bool) -> bool:
        """Driver 10.0 and later have no legacy probe: an ebpf output cannot be built."""
        spec = build.spec
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
        self.issues.append(_Issue(origin.file, origin.document, path, message))


_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
# First characters for which some implicit resolver (bool, int, null...) may apply.
_RESOLVABLE = frozenset(key for key in yaml.resolver.Resolver.yaml_implicit_resolvers if key)
_SHORTCUT = (
    None not in yaml.resolver.Resolver.yaml_implicit_resolvers
    and not yaml.resolver.Resolver.yaml_path_resolvers
)


class _Unusual(Exception):
    """A node the fast path leaves to SafeConstructor."""


class _Refused(Exception):
    """A document too deep, or with a scalar its tag cannot read: it is not constructed."""

    def __init__(self, node: yaml.Node, message: str) -> None:
        super().__init__(message)
        self.line: int = node.start_mark.line + 1
        self.message = message


# PyYAML wheels ship libyaml; a build without it still works, only slower.
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE = "tag:yaml.org,2002:merge"
# Python refuses to read longer decimal integers (sys.get_int_max_str_digits); PyYAML's
# base-60 integers (1:2:3) would multiply big numbers instead, in quadratic time.
_MAX_INT_TEXT = 4300
_SCALAR_KIND = {
    "tag:yaml.org,2002:int": "integer",
    "tag:yaml.org,2002:float": "number",
    "tag:yaml.org,2002:bool": "boolean",
    "tag:yaml.org,2002:null": "null",
    "tag:yaml.org,2002:timestamp": "timestamp (YYYY-MM-DD, or with a time)",
}
_MEMO_MAX = 128  # only short scalars are memoised: the memo outlives the revision


class _FastLoader(_SafeLoader):  # type: ignore[valid-type,misc]  # chosen at import time
    """``CSafeLoader`` with a shortcut constructor and a memo for implicit scalar tags.

    A document is built by ``_build`` unless it holds something beyond plain maps, lists and
    the core scalar types, or a node reached twice (an alias): then the whole document is
    built again by ``SafeConstructor``, which also raises its usual errors.

    Both paths report, in ``problems`` (line, message), a repeated key, nesting deeper than
    ``MAX_DEPTH`` and a scalar its tag cannot read; the last two leave the document
    unbuilt (None). What is built is exactly what ``CSafeLoader`` builds.
    """

    _tags: dict[str, str] = {}  # noqa: RUF012 - a process-wide memo of resolved plain scalars

    def __init__(self, stream: bytes) -> None:
        super().__init__(stream)
        self._scalars: dict[str, Callable[[ScalarNode], Any]] = {
            "tag:yaml.org,2002:int": self.construct_yaml_int,
            "tag:yaml.org,2002:float": self.construct_yaml_float,
            "tag:yaml.org,2002:bool": self.construct_yaml_bool,
            "tag:yaml.org,2002:null": self.construct_yaml_null,
            "tag:yaml.org,2002:timestamp": self.construct_yaml_timestamp,
        }
        self._seen: set[int] = set()
        self.problems: list[tuple[int, str]] = []

    if _SHORTCUT:
        # The parser calls these three for every node; without path resolvers (SafeLoader
        # has none) they reduce to the implicit scalar rules, mirrored here exactly.
        def descend_resolver(self, current_node: Any, current_index: Any) -> None:
            return None

        def ascend_resolver(self) -> None:
            return None

        def resolve(self, kind: type[yaml.Node], value: Any, implicit: Any) -> Any:
            if kind is ScalarNode:
                if not implicit[0] or (value and value[0] not in _RESOLVABLE):
                    return _STR
                tag = self._tags.get(value)
                if tag is None:
                    tag = super().resolve(kind, value, implicit)
                    if len(value) <= _MEMO_MAX:
                        if len(self._tags) > 100_000:
                            self._tags.clear()
                        self._tags[value] = tag
                return tag
            return _MAP if kind is MappingNode else _SEQ

    def construct_document(self, node: yaml.Node) -> Any:
        self._seen.clear()
        found = len(self.problems)
        try:
            return self._build(node, 0)
        except _Refused as refused:
            self.problems.append((refused.line, refused.message))
            return None
        except (_Unusual, RecursionError):
            del self.problems[found:]  # the walk below finds them again
        try:
            self._check_shape(node)
        except _Refused as refused:
            self.problems.append((refused.line, refused.message))
            return None
        return super().construct_document(node)

    def _build(self, node: yaml.Node, depth: int) -> Any:
        kind = node.__class__
        if kind is ScalarNode:
            if node.tag == _STR:
                return node.value
            return self._scalar(node)  # type: ignore[arg-type]  # a ScalarNode, by its class
        if id(node) in self._seen:
            raise _Unusual
        self._seen.add(id(node))
        if depth == MAX_DEPTH:
            raise _Refused(node, _too_deep())
        depth += 1
        if kind is MappingNode and node.tag == _MAP:
            mapping: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = (key_node.value if key_node.__class__ is ScalarNode and key_node.tag == _STR
                       else self._scalar_key(key_node))
                # Most values are plain strings: take them without a call.
                if value_node.__class__ is ScalarNode and value_node.tag == _STR:
                    mapping[key] = value_node.value
                else:
                    mapping[key] = self._build(value_node, depth)
            if len(mapping) != len(node.value):  # a key came twice: say where, once
                self._duplicates(node.value)
            return mapping
        if kind is SequenceNode and node.tag == _SEQ:
            return [
                item.value if item.__class__ is ScalarNode and item.tag == _STR
                else self._build(item, depth)
                for item in node.value
            ]
        raise _Unusual

    def _scalar(self, node: ScalarNode) -> Any:
        """A non-string scalar; PyYAML's constructors raise bare errors on a bad one."""
        construct = self._scalars.get(node.tag)
        if construct is None:
            raise _Unusual
        if node.tag == "tag:yaml.org,2002:int" and len(node.value) > _MAX_INT_TEXT:
            raise _Refused(node, (
                f"{quoted(node.value)} is an integer of more than {_MAX_INT_TEXT} characters; "
                "quote it to keep it as text"))
        try:
            return construct(node)
        except (ValueError, KeyError, AttributeError, TypeError):
            raise _Refused(node, (
                f"{quoted(node.value)} is not a valid {_SCALAR_KIND[node.tag]}; quote it to "
                "keep it as text")) from None

    def _scalar_key(self, node: yaml.Node) -> Any:
        if not isinstance(node, ScalarNode):
            raise _Unusual  # a complex key
        return self._scalar(node)

    def _key(self, node: ScalarNode) -> Any:
        """A key as the mapping will hold it, for comparing keys."""
        if node.tag == _STR:
            return node.value
        if node.tag in self._scalars:
            return self._scalar(node)
        return (node.tag, node.value)

    def _duplicates(self, pairs: list[tuple[yaml.Node, yaml.Node]]) -> None:
        first: dict[Any, int] = {}
        for key_node, _value in pairs:
            if not isinstance(key_node, ScalarNode) or key_node.tag == _MERGE:
                continue  # merged keys may be overridden: that is what merging is for
            key = self._key(key_node)
            line = key_node.start_mark.line + 1
            if key in first:
                self.problems.append((line, (
                    f"duplicate key {quoted(key)}, first at line {first[key]}: a key may "
                    "appear once in a mapping (YAML); remove one of them")))
            else:
                first[key] = line

    def _check_shape(self, root: yaml.Node) -> None:
        """The fast path's checks, for a document it leaves to SafeConstructor: a walk of
        the node graph that visits each node once (an alias is not followed twice)."""
        seen: set[int] = set()
        stack: list[tuple[yaml.Node, int]] = [(root, 0)]
        while stack:
            node, depth = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            if isinstance(node, ScalarNode):
                if node.tag in self._scalars:
                    self._scalar(node)
                continue
            if depth == MAX_DEPTH:
                raise _Refused(node, _too_deep())
            if isinstance(node, MappingNode):
                self._duplicates(node.value)
                for key_node, value_node in reversed(node.value):
                    stack += ((value_node, depth + 1), (key_node, depth + 1))
            elif isinstance(node, SequenceNode):
                stack.extend((item, depth + 1) for item in reversed(node.value))


def _too_deep() -> str:
    return (f"nested deeper than {MAX_DEPTH} levels of mappings and lists, where a manifest "
            "needs a handful; the document is not read")


class _Parsed(NamedTuple):
    documents: list[Any]
    issues: list[_Issue]
    refused: frozenset[int]  # documents with a problem found while parsing: never loaded
    truncated: bool  # a document limit stopped the reading of this file
    full: bool  # the revision's document budget ran out in this file


def _parse(relpath: str, content: bytes, budget: int = MAX_DOCUMENTS) -> _Parsed:
    """The file's documents up to the first syntax error or the document limit (the file's,
    or the ``budget`` the revision has left), and every problem the parser found."""
    documents: list[Any] = []
    issues: list[_Issue] = []
    refused: set[int] = set()
    limit = min(MAX_DOCUMENTS_PER_FILE, budget)
    loader = _FastLoader(content)
    try:
        while loader.check_data():
            if len(documents) == limit:
                full = budget <= MAX_DOCUMENTS_PER_FILE
                issues.append(_too_many(relpath, len(documents), loader, repository=full))
                return _Parsed(documents, issues, frozenset(refused), True, full)
            documents.append(loader.get_data())
            if loader.problems:
                index = len(documents) - 1
                refused.add(index)
                issues += (_Issue(relpath, index, (), message, line)
                           for line, message in loader.problems)
                loader.problems.clear()
    except yaml.MarkedYAMLError as exc:
        issues.append(_syntax_issue(relpath, len(documents), exc))
    except yaml.YAMLError as exc:  # a ReaderError: bytes that are not text
        position = getattr(exc, "position", 0)
        line = content[:position].count(b"\n") + 1
        issues.append(
            _Issue(relpath, len(documents), (), f"not valid YAML text: {exc}", line))
    finally:
        loader.dispose()
    return _Parsed(documents, issues, frozenset(refused), False, False)


def _too_many(relpath: str, count: int, loader: _FastLoader, *, repository: bool) -> _Issue:
    """The problem of the first document past a limit, at its line."""
    node = loader.get_node()  # this document only: the file is within MAX_FILE_BYTES
    line = node.start_mark.line + 1 if node is not None else 1
    if repository:
        message = (f"more than {MAX_DOCUMENTS} documents in the repository, the most one "
                   "revision may hold; the documents from here on, in this file and the "
                   "files after it, are not read")
    else:
        message = (f"more than {MAX_DOCUMENTS_PER_FILE} documents in one file, the most a "
                   "file may hold; split it (the documents from here on are not read)")
    return _Issue(relpath, count, (), message, line)


def _syntax_issue(relpath: str, document: int, exc: yaml.MarkedYAMLError) -> _Issue:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else 1
    what = exc.problem or "invalid YAML"
    context = ""
    if exc.context and exc.context_mark is not None and exc.context_mark is not mark:
        context = f" ({exc.context} at line {exc.context_mark.line + 1})"
    elif exc.context:
        context = f" ({exc.context})"
    return _Issue(relpath, document, (), f"YAML syntax error: {what}{context}", line)


_CONTENT_LINE = re.compile(rb"^[ \t]*[^ \t\r\n#%]", re.MULTILINE)


def _marker_offsets(content: bytes) -> list[int]:
    """Offsets of the ``---`` that open a line and end at a blank or the end of the text.

    ``bytes.find`` rather than a multi-line regex: the regex tries every position of
    every file, which cost a large plan 50 ms.
    """
    found: list[int] = []
    at = 0
    if not content.startswith(b"---"):
        at = content.find(b"\n---") + 1
        if at == 0:
            return found
    while True:
        end = at + 3
        if end == len(content) or content[end] in b" \t\r\n":
            found.append(at)
        at = content.find(b"\n---", at) + 1
        if at == 0:
            return found


def _document_lines(content: bytes, count: int) -> list[int] | None:
    """Each document's first line (its ``---``, or 1), from the markers alone; None when the
    markers and the parser disagree (a ``---`` inside a top-level block scalar)."""
    starts = _marker_offsets(content)
    lines: list[int] = []
    head = content[: starts[0]] if starts else content
    if _CONTENT_LINE.search(head):
        lines.append(1)  # a first document without a marker
    line, offset = 1, 0
    for start in starts:
        line += content.count(b"\n", offset, start)
        offset = start
        lines.append(line)
    return lines if len(lines) == count else None


# -- the error path: messages and lines ---------------------------------------------------


def _config_path(path: KeyPath) -> KeyPath:
    """A DriverBuild location back to the driverkit config key it came from."""
    if path[:1] == ("spec",) and len(path) > 1 and isinstance(path[1], str):
        return (driverkit.SPEC_TO_CONFIG.get(path[1], path[1]), *path[2:])
    return ()


def _explain(
    model: type[Any], error: Any, rename: Callable[[KeyPath], KeyPath] | None
) -> tuple[KeyPath, str]:
    """A pydantic error as (key path, message naming what is wrong and what is expected)."""
    loc: KeyPath = tuple(error["loc"])
    kind: str = error["type"]
    keyed = (error.get("ctx") or {}).get("error")
    if isinstance(keyed, models.KeyedError):
        loc = (*loc, keyed.key)  # a validator's problem with one entry of a mapping
    field = _field(loc)
    if loc[-1:] == ("[key]",):  # a mapping's key: at the key's line, said of the mapping
        loc = loc[:-1]
        where = _dotted(rename(loc[:-1]) if rename else loc[:-1])
        return (rename(loc) if rename else loc), f"{where}: {_detail(kind, error, field)}"
    shown = rename(loc) if rename else loc
    if kind == "missing":
        parent = shown[:-1]
        return parent, f"missing required key {shown[-1]!r} in {_dotted(parent) or 'the document'}"
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        known = _keys_at(model, loc[:-1])
        key = str(loc[-1])
        hint = did_you_mean(key, known) or (
            f"; expected one of {', '.join(known)}" if known else "")
        return shown, (
            f"unknown key {quoted(key)} in {_dotted(shown[:-1]) or 'the document'}{hint}")
    detail = _detail(kind, error, field)
    if rename is not None:  # a driverkit config: speak its key names
        for spec_key, config_key in driverkit.SPEC_TO_CONFIG.items():
            detail = detail.replace(spec_key, config_key)
    where = _dotted(shown)
    return shown, f"{where}: {detail}" if where else detail


_EXPECTED = {  # pydantic error type -> what was expected instead
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "dataclass_type": "a mapping",
    "dict_type": "a mapping",
    "tuple_type": "a list",
    "list_type": "a list",
    "iterable_type": "a list",
}


def _field(loc: KeyPath) -> str:
    """The field a location is in, as ``PATTERN_MEANING`` names it (``env[key]`` for the
    keys of ``env``, whose own location is the key's text)."""
    if loc[-1:] == ("[key]",):
        return f"{loc[-3]}[key]" if len(loc) >= 3 else "[key]"
    return next((str(part) for part in reversed(loc) if isinstance(part, str)), "")


def _detail(kind: str, error: Any, key: str) -> str:
    value = error.get("input")
    context = error.get("ctx") or {}
    message: str = str(error["msg"])
    if kind in _EXPECTED:
        message = f"expected {_EXPECTED[kind]}, got {_show(value)}"
    elif kind == "string_type":
        quote = "; quote it" if isinstance(value, bool | int | float) else ""
        message = f"expected a string, got {_show(value)}{quote}"
    elif kind in ("enum", "literal_error"):
        expected = str(context.get("expected", ""))
        choices = re.findall(r"'([^']*)'", expected)
        hint = did_you_mean(str(value), choices) if isinstance(value, str) else ""
        message = f"{_show(value)} is not allowed; expected {expected}{hint}"
    elif kind == "too_short":
        message = "expected at least one item"
    elif kind in ("string_pattern_mismatch", "string_too_short", "string_too_long"):
        message = f"{models.pattern_meaning(key, value)}, got {_show(value)}"
        if kind == "string_too_long" and isinstance(value, str) and repr(value) in message:
            message += f" ({len(value)} characters)"  # unless _show said so already
    elif kind == "value_error":
        message = str(context.get("error", message))
    return message


def _show(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, int | float):
        return f"{value} (a number)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return quoted(value)


def _escaped(text: str) -> str:
    """``text`` with what is not printable written as Python escapes (``\\x1b``)."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in text)


def _dotted(path: KeyPath) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _keys_at(model: type[Any], path: KeyPath) -> list[str]:
    """The keys the manifest part accepts at ``path`` (``spec.falco`` -> version, image...)."""
    current: type[Any] | None = model
    for part in path:
        if current is None:
            return []
        if isinstance(part, int):
            continue  # an item of a tuple field: its part was found with the field
        fields = {info.alias or name: info for name, info in _fields(current).items()}
        info = fields.get(part)
        current = _part_in(info.annotation) if info is not None else None
    if current is None:
        return []
    return [info.alias or name for name, info in _fields(current).items()]


def _fields(part: type[Any]) -> dict[str, FieldInfo]:
    found: dict[str, FieldInfo] = part.__pydantic_fields__
    return found


def _part_in(annotation: Any) -> type[Any] | None:
    if isinstance(annotation, type) and is_pydantic_dataclass(annotation):
        return annotation
    for argument in get_args(annotation):
        found = _part_in(argument)
        if found is not None:
            return found
    return None


def _locate(files: Sequence[tuple[str, bytes]], issues: list[_Issue]) -> list[Problem]:
    contents = dict(files)
    # Every place a line is wanted for, by file: each file's node tree is made once and
    # dropped before the next one (a tree takes a few hundred bytes per node).
    places: dict[str, set[tuple[int, KeyPath]]] = {}
    for issue in issues:
        if not issue.line:
            places.setdefault(issue.file, set()).add((issue.document, issue.path))
        if issue.other is not None:
            other_file, other_document, other_path = issue.other
            places.setdefault(other_file, set()).add((other_document, other_path))
    lines: dict[tuple[str, int, KeyPath], int] = {}
    for file, wanted in places.items():
        nodes = _compose(contents.get(file, b""))
        for document, path in wanted:
            found = _walk(nodes[document], path) if 0 <= document < len(nodes) else 1
            lines[file, document, path] = found
        del nodes

    found_problems: list[Problem] = []
    for issue in issues:
        line = issue.line or lines[issue.file, issue.document, issue.path]
        message = issue.message
        if issue.other is not None:
            other_line = lines[issue.other]
            message = message.replace("{other}", f"{issue.other[0]}:{other_line}")
        found_problems.append(Problem(issue.file, line, message))
    return found_problems


def _compose(content: bytes) -> list[yaml.Node]:
    """The node tree of every document up to the first syntax error."""
    nodes: list[yaml.Node] = []
    loader = _SafeLoader(content)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                nodes.append(node)
    except yaml.YAMLError:
        pass  # already reported by _parse
    finally:
        loader.dispose()
    return nodes


def _walk(node: yaml.Node, path: KeyPath) -> int:
    """The line of the deepest key or item of ``path`` that exists (the last duplicate key
    wins, as when loading)."""
    line: int = node.start_mark.line + 1
    for part in path:
        if isinstance(node, yaml.MappingNode):
            for key, value in reversed(node.value):
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    line, node = key.start_mark.line + 1, value
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if not 0 <= part < len(node.value):
                return line
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line
