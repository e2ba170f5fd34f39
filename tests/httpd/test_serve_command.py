"""`reconciler serve` as a user runs it: a real process, a real port, real signals."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.httpd.fleet import KMOD, Fleet

ROOT = Path(__file__).resolve().parents[2]


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "reconciler.cli", "--log-format", "json", "serve", *args],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_prints_its_address_serves_and_stops_on_signal(fleet: Fleet,
                                                             sig: signal.Signals) -> None:
    proc = _start("--store", str(fleet.root), "--listen", "127.0.0.1:0")
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.fullmatch(rf"serving {re.escape(str(fleet.root))} on (http://127\.0\.0\.1:"
                             r"(\d+))\n", line)
        assert match, line
        assert int(match[2]) > 0
        url = match[1] + KMOD.url_path()
        with urllib.request.urlopen(url, timeout=10) as reply:
            assert reply.read() == fleet.contents[KMOD]
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert '"event": "http.access"' in err
    assert '"event": "http.stopped"' in err


def test_serve_reports_an_address_in_use_in_one_sentence(fleet: Fleet) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = _start("--store", str(fleet.root), "--listen", f"127.0.0.1:{port}")
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert f"reconciler: cannot listen on 127.0.0.1:{port}: Address already in use" in err
    assert out == ""


def test_serve_without_a_store_answers_503_on_healthz(tmp_path: Path) -> None:
    """The daemon may start serving before its first build made the store folder."""
    missing = tmp_path / "not-yet"
    proc = _start("--store", str(missing), "--listen", "127.0.0.1:0")
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split(" on ")[-1].strip()
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url + "/healthz", timeout=10)
        assert refused.value.code == 503
        refused.value.close()
        missing.mkdir()
        with urllib.request.urlopen(url + "/healthz", timeout=10) as reply:
            assert reply.status == 200
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert "serve.store_unreadable" in err
