"""cli: the help a person reads, flags accepted where a person types them, and the
process policy each command gets (``cli.entry``)."""

from __future__ import annotations

import gc
import re
import resource
import sys

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



@pytest.mark.parametrize("command", ["run", "serve"])
def test_every_long_running_command_starts_with_the_descriptor_limit_raised(
        command: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server sizes its connections by the soft limit: ``run`` must get as many as
    ``serve`` (before, only ``serve`` raised it, and only once its settings were read)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard < 64:
        pytest.skip("needs a finite hard descriptor limit above the lowered soft one")
    for name in [n for n in __import__("os").environ if n.startswith("RECONCILER_")]:
        monkeypatch.delenv(name)
    # A listen address without a port: the command stops at its settings (exit 1).
    monkeypatch.setattr(sys, "argv", ["reconciler", command, "--listen", "no-port",
                                      "--config", "/nonexistent/config.yaml"])
    threshold = gc.get_threshold()
    resource.setrlimit(resource.RLIMIT_NOFILE, (32, hard))
    try:
        with pytest.raises(SystemExit) as ended:
            cli.entry()
        assert ended.value.code == 1
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        gc.set_threshold(*threshold)


@pytest.mark.parametrize(("command", "collecting", "young"), [
    ("run", True, cli.LONG_RUNNING_GC_THRESHOLD), ("plan", False, None)])
def test_the_collector_policy_is_the_commands(
        command: str, collecting: bool, young: int | None) -> None:
    """A one-shot command runs without the cyclic collector; the daemon collects, less
    often. Applied here, at the process edge, and nowhere in the library."""
    threshold = gc.get_threshold()
    try:
        cli.process_policy(one_shot=cli.one_shot([command]))
        assert gc.isenabled() is collecting
        if young is not None:
            assert gc.get_threshold()[0] == young
    finally:
        gc.enable()
        gc.set_threshold(*threshold)
