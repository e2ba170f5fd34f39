"""cli: the help a person reads, and flags accepted where a person types them."""

from __future__ import annotations

import re

import pytest

from reconciler import cli


@pytest.mark.parametrize("command", cli.COMMANDS)
def test_every_commands_help_is_plain_text_with_examples(
    command: str, capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main([command, "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "``" not in text  # no reStructuredText
    assert not re.search(r"\breconciler\.[a-z_]+", text)  # no internal module names
    assert "\nexamples:\n" in text
    assert f"reconciler {command}" in text.split("examples:")[1]


def test_settings_show_their_choices_and_their_variable(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--build {missing,never,always}" in text
    assert "--docker-events {true,false}" in text
    assert "--retention DURATION" in text
    assert "--listen HOST:PORT" in text
    assert "[RECONCILER_POLL_INTERVAL]" in text


def test_global_flags_work_before_and_after_the_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = cli.parser("schema").parse_args(["--log-level", "debug", "schema"])
    after = cli.parser("schema").parse_args(["schema", "--log-level", "debug"])
    neither = cli.parser("schema").parse_args(["schema"])
    assert before.log_level == after.log_level == "debug"
    assert neither.log_level == "info" and neither.log_format == "auto"
    assert cli.main(["schema", "--log-format", "json"]) == 0
    assert capsys.readouterr().out.startswith("{")
