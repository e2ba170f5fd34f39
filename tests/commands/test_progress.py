"""The live progress display of `build` and `apply`: one row per build (elapsed, step,
state, artifact), a bar per image pull, and the events it shows are not also logged."""

from __future__ import annotations

import io
import re

import pytest
import structlog

from reconciler import logs
from reconciler.builder import BuildEvent, Phase, Step
from reconciler.commands import progress

ARTIFACT = "2.0.0+driver/x86_64/falco_debian_6.1.0-1-cloud-amd64_1 [kmod]"


def rendered(board: progress.Board) -> str:
    out = io.StringIO()
    console = progress.Console(file=out, width=200, force_terminal=False, color_system=None)
    console.print(board.render())
    return out.getvalue()


def test_a_build_row_shows_artifact_step_elapsed_and_state() -> None:
    board = progress.Board()
    board.build(BuildEvent(ARTIFACT, Step.COMPILE, Phase.STARTED, 12.34))
    text = rendered(board)
    row = next(line for line in text.splitlines() if ARTIFACT in line)
    assert row.split() == ["12.3s", "compile", "started", *ARTIFACT.split()]


def test_a_failed_build_keeps_its_reason_and_stops_its_clock() -> None:
    board = progress.Board()
    board.build(BuildEvent(ARTIFACT, Step.KERNEL_HEADERS, Phase.FAILED, 3.0, "no headers"))
    first = rendered(board)
    assert "failed: no headers" in first and "kernel-headers" in first
    assert rendered(board) == first  # the elapsed time no longer moves


def test_a_pull_is_a_bar_of_the_bytes_of_its_layers() -> None:
    board = progress.Board()
    board.pull("falco:0.40.0", {"status": "Downloading", "id": "l1",
                                "progressDetail": {"current": 50, "total": 100}})
    board.pull("falco:0.40.0", {"status": "Downloading", "id": "l2",
                                "progressDetail": {"current": 0, "total": 100}})
    assert board.pulls["falco:0.40.0"].layers == {"l1": (50, 100), "l2": (0, 100)}
    board.pull("falco:0.40.0", {"status": "Pull complete", "id": "l2"})
    assert board.pulls["falco:0.40.0"].layers["l2"] == (100, 100)
    assert "pull falco:0.40.0: Pull complete" in rendered(board)


def test_off_a_terminal_there_is_no_display_and_nothing_is_muted() -> None:
    with progress.display(io.StringIO()) as shown:
        assert (shown.build, shown.pull) == (None, None)
        assert logs._not_shown_live(None, "info", {"event": "driver.build.step"})


def test_the_display_draws_builds_and_mutes_the_events_it_shows() -> None:
    out = io.StringIO()
    with progress.display(out, force=True, width=200) as shown:
        assert shown.build is not None
        shown.build(BuildEvent(ARTIFACT, Step.COMPILE, Phase.STARTED, 1.0))
        with pytest.raises(structlog.DropEvent):
            logs._not_shown_live(None, "info", {"event": "driver.build.step"})
        assert logs._not_shown_live(None, "info", {"event": "driver.built"})
    shown_text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\s", "", out.getvalue())
    assert "1.0scompilestarted" + ARTIFACT.replace(" ", "") in shown_text
    assert logs._not_shown_live(None, "info", {"event": "driver.build.step"})
