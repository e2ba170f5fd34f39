"""HTTP validators and byte ranges as pure functions."""

from __future__ import annotations

import pytest

from reconciler.httpd import conditions
from reconciler.httpd.conditions import UNSATISFIABLE, ByteRange


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("bytes=0-99", ByteRange(0, 99)),
        ("bytes=0-0", ByteRange(0, 0)),
        ("bytes=500-", ByteRange(500, 999)),
        ("bytes=-100", ByteRange(900, 999)),
        ("bytes=-5000", ByteRange(0, 999)),  # suffix longer than the file: all of it
        ("bytes=990-5000", ByteRange(990, 999)),  # end clipped to the file
        ("BYTES = 1-2", ByteRange(1, 2)),
        ("bytes=1000-", UNSATISFIABLE),
        ("bytes=1000-1001", UNSATISFIABLE),
        ("bytes=-0", UNSATISFIABLE),
        ("bytes=5-1", None),  # invalid: ignored, the whole file
        ("bytes=0-1,3-4", None),  # several ranges: the whole file (documented)
        ("bytes=a-b", None),
        ("bytes=-", None),
        ("bytes=٣-٤", None),  # non-ASCII digits are not digits here
        ("pages=1-2", None),
        ("bytes 0-1", None),
    ],
)
def test_parse_range(header: str | None, expected: object) -> None:
    assert conditions.parse_range(header, 1000) == expected


def test_any_range_of_an_empty_file_is_unsatisfiable() -> None:
    assert conditions.parse_range("bytes=0-", 0) is UNSATISFIABLE
    assert conditions.parse_range("bytes=-1", 0) is UNSATISFIABLE


def test_content_range() -> None:
    assert ByteRange(5, 9).content_range(10) == "bytes 5-9/10"
    assert ByteRange(5, 9).length == 5


@pytest.mark.parametrize(
    ("header", "matches"),
    [('"abc"', True), ('W/"abc"', True), ('"x", "abc"', True), ("*", True), ('"abcd"', False),
     ("abc", False), ("", False)],
)
def test_if_none_match_uses_weak_comparison(header: str, matches: bool) -> None:
    assert conditions.none_match(header, '"abc"') is matches


def test_if_range_needs_a_strong_match_or_the_exact_date() -> None:
    date = conditions.http_date(1_700_000_000)
    assert conditions.range_allowed(None, '"abc"', date)
    assert conditions.range_allowed('"abc"', '"abc"', date)
    assert not conditions.range_allowed('W/"abc"', '"abc"', date)
    assert not conditions.range_allowed('"old"', '"abc"', date)
    assert conditions.range_allowed(date, '"abc"', date)
    assert not conditions.range_allowed("Thu, 01 Jan 1998 00:00:00 GMT", '"abc"', date)


def test_modified_since() -> None:
    mtime = 1_700_000_000.7
    assert not conditions.modified_since(conditions.http_date(mtime), mtime)
    assert conditions.modified_since(conditions.http_date(mtime - 10), mtime)
    assert conditions.modified_since("garbage", mtime)
    assert conditions.modified_since("Tue, 14 Nov 2023 22:13:20", mtime)  # no zone: ignore
