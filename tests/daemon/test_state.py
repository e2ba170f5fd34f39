"""The status file: it round-trips, is written whole, and keeps the last errors only."""

from __future__ import annotations

from pathlib import Path

from reconciler.daemon import state


def test_status_round_trips_and_is_written_whole(tmp_path: Path) -> None:
    record = state.PassRecord(3, ("git",), state.now(), "abc", result="failed",
                              outcomes=({"op": "build", "result": "failed"},))
    status = state.Status(pid=1, applied_revision="abc", last_pass=record,
                          rejected=state.Rejection("def", "invalid manifests: a.yaml:3: x",
                                                   state.now()))
    for n in range(30):
        status = status.with_error(state.ErrorRecord(state.now(), f"e{n}"))
    state.write(tmp_path, status)
    back = state.read(tmp_path)
    assert back is not None and back.to_json() == status.to_json()
    assert len(back.errors) == state.KEEP_ERRORS and back.errors[-1].message == "e29"
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]  # no temp left
