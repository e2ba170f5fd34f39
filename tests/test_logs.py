"""logs: what reaches the log stream."""

from __future__ import annotations

import json

import pytest

from reconciler import logs


def test_no_url_credentials_reach_a_log_line(capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 20.4: whatever field a URL with a password comes in, the line shows ***."""
    logs.configure("info", "json")
    try:
        logs.get("t").warning("upstream.down", error="GET http://fleet:s3cret@mirror/x: no",
                              url="https://tok@cdn.example/y")
    finally:
        logs.configure()
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["error"] == "GET http://***@mirror/x: no"
    assert line["url"] == "https://***@cdn.example/y"
