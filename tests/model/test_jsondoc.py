"""model.jsondoc: JSON from outside is refused when nested too deep, before the parser
recurses (a RecursionError would be a crash, not a bad input)."""

from __future__ import annotations

import pytest

from reconciler.errors import BodyError, JsonError
from reconciler.model import buildrequests, jsondoc


def test_depth_counts_arrays_and_objects_but_not_brackets_in_strings() -> None:
    assert jsondoc.depth(b'{"a": [1, {"b": []}]}') == 4
    assert jsondoc.depth(b'["[[[[", "\\"]]]{{{"]') == 1  # an escaped quote stays inside
    assert jsondoc.depth(b"42") == 0


def test_a_document_nested_too_deep_is_a_json_error_not_a_recursion_error() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(JsonError, match="nested 100000 deep, more than the 64 allowed"):
        jsondoc.loads(deep)
    assert jsondoc.loads(b"[" * 64 + b"]" * 64) is not None
    with pytest.raises(JsonError):
        jsondoc.loads(b"\xff")


def test_a_build_request_nested_too_deep_is_a_body_error() -> None:
    """The build-request endpoint answers 400 to it instead of failing in the parser."""
    with pytest.raises(BodyError, match="not JSON: nested"):
        buildrequests.parse(b'{"host": "a", "artifacts": ' + b"[" * 50_000 + b"]" * 50_000 + b"}")
    assert buildrequests.parse_answer(b"[" * 50_000 + b"]" * 50_000) == ()
