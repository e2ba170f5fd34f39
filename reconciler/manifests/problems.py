"""The error path: pydantic's errors as messages that say what is wrong and what is
expected, located at ``file:line`` by walking each problem's key path in the node tree.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, get_args

import yaml
from pydantic.dataclasses import is_pydantic_dataclass
from pydantic.fields import FieldInfo

from reconciler.errors import KeyedError, Problem
from reconciler.manifests import driverkit, grammar
from reconciler.manifests.driverkit import did_you_mean, quoted
from reconciler.manifests.issues import Issue, KeyPath
from reconciler.manifests.yamlread import compose


def config_path(path: KeyPath) -> KeyPath:
    """A DriverBuild location back to the driverkit config key it came from."""
    if path[:1] == ("spec",) and len(path) > 1 and isinstance(path[1], str):
        return (driverkit.SPEC_TO_CONFIG.get(path[1], path[1]), *path[2:])
    return ()


def explain(
    model: type[Any], error: Any, rename: Callable[[KeyPath], KeyPath] | None
) -> tuple[KeyPath, str]:
    """A pydantic error as (key path, message naming what is wrong and what is expected)."""
    loc: KeyPath = tuple(part for part in error["loc"] if not grammar.is_union_tag(part))
    kind: str = error["type"]
    keyed = (error.get("ctx") or {}).get("error")
    if isinstance(keyed, KeyedError):
        loc = (*loc, keyed.key)  # a validator's problem with one entry of a mapping
    field = _field(loc)
    if loc[-1:] == ("[key]",):  # a mapping's key: at the key's line, said of the mapping
        loc = loc[:-1]
        where = dotted(rename(loc[:-1]) if rename else loc[:-1])
        return (rename(loc) if rename else loc), f"{where}: {_detail(kind, error, field)}"
    shown = rename(loc) if rename else loc
    if kind == "missing":
        parent = shown[:-1]
        return parent, f"missing required key {shown[-1]!r} in {dotted(parent) or 'the document'}"
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        known = _keys_at(model, loc[:-1])
        key = str(loc[-1])
        hint = did_you_mean(key, known) or (
            f"; expected {known[0]}" if len(known) == 1 else
            f"; expected one of {', '.join(known)}" if known else "")
        return shown, (
            f"unknown key {quoted(key)} in {dotted(shown[:-1]) or 'the document'}{hint}")
    detail = _detail(kind, error, field)
    if rename is not None:  # a driverkit config: speak its key names
        for spec_key, config_key in driverkit.SPEC_TO_CONFIG.items():
            detail = detail.replace(spec_key, config_key)
    where = dotted(shown)
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
        message = f"expected {_EXPECTED[kind]}, got {show(value)}"
    elif kind == "string_type":
        quote = "; quote it" if isinstance(value, bool | int | float) else ""
        message = f"expected a string, got {show(value)}{quote}"
    elif kind in ("enum", "literal_error"):
        expected = str(context.get("expected", ""))
        choices = re.findall(r"'([^']*)'", expected)
        hint = did_you_mean(str(value), choices) if isinstance(value, str) else ""
        message = f"{show(value)} is not allowed; expected {expected}{hint}"
    elif kind == "too_short":
        message = "expected at least one item"
    elif kind in ("string_pattern_mismatch", "string_too_short", "string_too_long"):
        message = f"{grammar.pattern_meaning(key, value)}, got {show(value)}"
        if kind == "string_too_long" and isinstance(value, str) and repr(value) in message:
            message += f" ({len(value)} characters)"  # unless show said so already
    elif kind == "value_error":
        message = str(context.get("error", message))
    return message


def show(value: Any) -> str:
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


def escaped(text: str) -> str:
    """``text`` with what is not printable written as Python escapes (``\\x1b``)."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in text)


def dotted(path: KeyPath) -> str:
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


def locate(files: Sequence[tuple[str, bytes]], issues: list[Issue]) -> list[Problem]:
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
        nodes = compose(contents.get(file, b""))
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
