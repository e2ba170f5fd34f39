"""The fast YAML reader: libyaml's parser, a shortcut constructor, and every bound checked.

Most of ``CSafeLoader``'s time is spent in PyYAML's Python constructor and resolver, so
``FastLoader`` answers the parser's resolver calls directly and builds plain trees (maps,
lists, str, int, float, bool, null, timestamp) itself, handing anything else (aliases,
merge keys, other tags) back to ``SafeConstructor``: the same results, in about half of
``CSafeLoader``'s time on the benchmark repository. The happy path pays one comparison per
mapping for the duplicate-key check and one per collection for the depth bound; everything
else runs only for a file that breaks a rule. A document's own start line comes from
counting ``---`` markers (``document_lines``); ``compose`` gives the node trees the error
path walks to find lines.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, NamedTuple

import yaml
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from reconciler.errors import UnusualYamlNode, YamlRefused
from reconciler.manifests.driverkit import quoted
from reconciler.manifests.issues import Issue
from reconciler.manifests.limits import MAX_DEPTH, MAX_DOCUMENTS, MAX_DOCUMENTS_PER_FILE

_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
# First characters for which some implicit resolver (bool, int, null...) may apply.
_RESOLVABLE = frozenset(key for key in yaml.resolver.Resolver.yaml_implicit_resolvers if key)
_SHORTCUT = (
    None not in yaml.resolver.Resolver.yaml_implicit_resolvers
    and not yaml.resolver.Resolver.yaml_path_resolvers
)


# PyYAML wheels ship libyaml; a build without it still works, only slower.
SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
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


class FastLoader(SafeLoader):  # type: ignore[valid-type,misc]  # chosen at import time
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
        except YamlRefused as refused:
            self.problems.append((refused.line, refused.message))
            return None
        except (UnusualYamlNode, RecursionError):
            del self.problems[found:]  # the walk below finds them again
        try:
            self._check_shape(node)
        except YamlRefused as refused:
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
            raise UnusualYamlNode
        self._seen.add(id(node))
        if depth == MAX_DEPTH:
            raise YamlRefused(node.start_mark.line + 1, _too_deep())
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
        raise UnusualYamlNode

    def _scalar(self, node: ScalarNode) -> Any:
        """A non-string scalar; PyYAML's constructors raise bare errors on a bad one."""
        construct = self._scalars.get(node.tag)
        if construct is None:
            raise UnusualYamlNode
        if node.tag == "tag:yaml.org,2002:int" and len(node.value) > _MAX_INT_TEXT:
            raise YamlRefused(node.start_mark.line + 1, (
                f"{quoted(node.value)} is an integer of more than {_MAX_INT_TEXT} characters; "
                "quote it to keep it as text"))
        try:
            return construct(node)
        except (ValueError, KeyError, AttributeError, TypeError):
            raise YamlRefused(node.start_mark.line + 1, (
                f"{quoted(node.value)} is not a valid {_SCALAR_KIND[node.tag]}; quote it to "
                "keep it as text")) from None

    def _scalar_key(self, node: yaml.Node) -> Any:
        if not isinstance(node, ScalarNode):
            raise UnusualYamlNode  # a complex key
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
                raise YamlRefused(node.start_mark.line + 1, _too_deep())
            if isinstance(node, MappingNode):
                self._duplicates(node.value)
                for key_node, value_node in reversed(node.value):
                    stack += ((value_node, depth + 1), (key_node, depth + 1))
            elif isinstance(node, SequenceNode):
                stack.extend((item, depth + 1) for item in reversed(node.value))


def _too_deep() -> str:
    return (f"nested deeper than {MAX_DEPTH} levels of mappings and lists, where a manifest "
            "needs a handful; the document is not read")


class Parsed(NamedTuple):
    documents: list[Any]
    issues: list[Issue]
    refused: frozenset[int]  # documents with a problem found while parsing: never loaded
    truncated: bool  # a document limit stopped the reading of this file
    full: bool  # the revision's document budget ran out in this file


def parse(relpath: str, content: bytes, budget: int = MAX_DOCUMENTS) -> Parsed:
    """The file's documents up to the first syntax error or the document limit (the file's,
    or the ``budget`` the revision has left), and every problem the parser found."""
    documents: list[Any] = []
    issues: list[Issue] = []
    refused: set[int] = set()
    limit = min(MAX_DOCUMENTS_PER_FILE, budget)
    loader = FastLoader(content)
    try:
        while loader.check_data():
            if len(documents) == limit:
                full = budget <= MAX_DOCUMENTS_PER_FILE
                issues.append(_too_many(relpath, len(documents), loader, repository=full))
                return Parsed(documents, issues, frozenset(refused), True, full)
            documents.append(loader.get_data())
            if loader.problems:
                index = len(documents) - 1
                refused.add(index)
                issues += (Issue(relpath, index, (), message, line)
                           for line, message in loader.problems)
                loader.problems.clear()
    except yaml.MarkedYAMLError as exc:
        issues.append(_syntax_issue(relpath, len(documents), exc))
    except yaml.YAMLError as exc:  # a ReaderError: bytes that are not text
        position = getattr(exc, "position", 0)
        line = content[:position].count(b"\n") + 1
        issues.append(
            Issue(relpath, len(documents), (), f"not valid YAML text: {exc}", line))
    finally:
        loader.dispose()
    return Parsed(documents, issues, frozenset(refused), False, False)


def _too_many(relpath: str, count: int, loader: FastLoader, *, repository: bool) -> Issue:
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
    return Issue(relpath, count, (), message, line)


def _syntax_issue(relpath: str, document: int, exc: yaml.MarkedYAMLError) -> Issue:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else 1
    what = exc.problem or "invalid YAML"
    context = ""
    if exc.context and exc.context_mark is not None and exc.context_mark is not mark:
        context = f" ({exc.context} at line {exc.context_mark.line + 1})"
    elif exc.context:
        context = f" ({exc.context})"
    return Issue(relpath, document, (), f"YAML syntax error: {what}{context}", line)


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


def document_lines(content: bytes, count: int) -> list[int] | None:
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


def compose(content: bytes) -> list[yaml.Node]:
    """The node tree of every document up to the first syntax error."""
    nodes: list[yaml.Node] = []
    loader = SafeLoader(content)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                nodes.append(node)
    except yaml.YAMLError:
        pass  # already reported by parse
    finally:
        loader.dispose()
    return nodes
