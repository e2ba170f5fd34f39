"""Every command's parser builds, alone and together, and says what it does: a flag
added twice (two changes that each wire a setting) fails here, not at a user's start."""

from __future__ import annotations

import pytest

from reconciler import cli


@pytest.mark.parametrize("name", cli.COMMANDS)
def test_each_command_parser_builds_alone(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.parser(only=name).parse_args([name, "--help"])
    assert done.value.code == 0
    assert f"usage: reconciler {name}" in capsys.readouterr().out


def test_the_whole_parser_builds() -> None:
    assert cli.parser() is not None
