"""``reconciler suspend``, ``resume`` and ``reconcile`` on a state dir (commands/suspend.py,
resume.py, reconcile.py; daemon/control.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler import cli


def test_suspend_resume_and_reconcile_on_a_state_dir_no_daemon_made_are_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    typo = tmp_path / "typo"
    for command in ("suspend", "resume", "reconcile"):
        assert cli.main([command, "--state-dir", str(typo)]) == 1
        assert f"no daemon state at {typo}" in capsys.readouterr().err
    assert not typo.exists()
    typo.mkdir()  # a state dir a daemon made (it may be stopped): suspending is remembered
    assert cli.main(["suspend", "--state-dir", str(typo)]) == 0
    assert "the next one starts suspended" in capsys.readouterr().out
