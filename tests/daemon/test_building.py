"""daemon.building: the builds in progress and their steps, for `status`."""

from __future__ import annotations

from pathlib import Path

from reconciler.builder import BuildEvent, Phase
from reconciler.daemon import building

KO = "8.0.0+driver/x86_64/falco_debian_6.1.0-57-cloud-amd64_1 [kmod]"


def test_a_build_is_listed_at_its_step_until_it_is_published_or_fails(tmp_path: Path) -> None:
    board = building.Building(tmp_path)
    assert building.read(tmp_path) == []
    board.event(BuildEvent(KO, "kernel-headers", Phase.STARTED, 0.1))
    board.event(BuildEvent("other", "compile", Phase.STARTED, 0.1))
    board.event(BuildEvent(KO, "compile", Phase.STARTED, 3.0))
    (first, second) = building.read(tmp_path)
    assert (first["artifact"], first["step"]) == (KO, "compile")
    assert second["artifact"] == "other"
    board.event(BuildEvent(KO, "publish", Phase.DONE, 40.0))
    board.event(BuildEvent("other", "compile", Phase.FAILED, 9.0))
    assert building.read(tmp_path) == []
    assert not [p for p in tmp_path.iterdir() if p.name != building.BUILDING_NAME]  # no temp


def test_a_restarted_daemon_starts_with_nothing_in_progress(tmp_path: Path) -> None:
    building.Building(tmp_path).event(BuildEvent(KO, "compile", Phase.STARTED, 1.0))
    building.Building(tmp_path)  # the next daemon
    assert building.read(tmp_path) == []
