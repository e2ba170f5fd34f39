"""edges.capped: a small file read whole, refused (by the caller's error, naming the file)
when it cannot be read or holds more than its kind can."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.edges import capped
from reconciler.errors import ConfigError, KeyUnusable


def test_a_file_of_exactly_the_limit_is_read_and_one_byte_more_is_refused(
    tmp_path: Path,
) -> None:
    path = tmp_path / "k.pem"
    path.write_bytes(b"x" * 16)
    assert capped.read(path, 16, "the signing key", KeyUnusable) == b"x" * 16
    path.write_bytes(b"x" * 17)
    with pytest.raises(KeyUnusable) as caught:
        capped.read(path, 16, "the signing key", KeyUnusable, expected="not a key")
    assert str(caught.value) == f"the signing key {path} is larger than 16 bytes: not a key"


def test_an_endless_file_costs_the_limit_and_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^the facts file /dev/zero is larger than 4096 "
                                          r"bytes$"):
        capped.read(Path("/dev/zero"), 4096, "the facts file", ConfigError)


@pytest.mark.parametrize(("name", "reason"), [("gone.json", "No such file or directory"),
                                               (".", "Is a directory")])
def test_a_file_that_cannot_be_read_says_why_in_the_callers_error(
    tmp_path: Path, name: str, reason: str,
) -> None:
    path = tmp_path / name
    with pytest.raises(ConfigError) as caught:
        capped.read(path, 16, "the facts file", ConfigError)
    assert str(caught.value) == f"cannot read the facts file {path}: {reason}"
    assert isinstance(caught.value.__cause__, OSError)
