"""Debian's real ``prometheus`` for tests: started on a loopback port with a generated
config (scrape interval 1s), scraping the loopback targets given, stopped after."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.upstreams import free_port

BINARY = "/usr/bin/prometheus"


def need() -> None:
    if shutil.which("prometheus") is None and not Path(BINARY).exists():
        pytest.skip("Debian's prometheus is not installed (apt-get install prometheus; "
                    ".ci/setup does)")


@dataclass
class Server:
    url: str
    config: Path
    process: subprocess.Popen[bytes]
    folder: Path
    port: int

    def query(self, promql: str) -> list[dict[str, object]]:
        body = urllib.parse.urlencode({"query": promql}).encode()
        with urllib.request.urlopen(f"{self.url}/api/v1/query", body, 5) as answer:
            result: list[dict[str, object]] = json.load(answer)["data"]["result"]
            return result

    def wait_up(self, targets: int, timeout: float = 30.0) -> None:
        """Until every target has been scraped (``up == 1`` for each)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, KeyError, ValueError):
                if len(self.query("up == 1")) >= targets:
                    return
            time.sleep(0.3)
        raise AssertionError(f"prometheus did not scrape {targets} targets in {timeout}s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def start(self) -> None:
        """(Again) on the same port and data, as after an outage."""
        self.process = _spawn(self.config, self.folder, self.port)
        _wait_ready(self.url, self.process)


def _spawn(config: Path, folder: Path, port: int) -> subprocess.Popen[bytes]:
    with (folder / "prometheus.log").open("ab") as log:  # the child keeps its own copy
        return subprocess.Popen(
            [BINARY, f"--config.file={config}", f"--storage.tsdb.path={folder / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=log, stderr=log)


def _wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"prometheus exited with {process.returncode}")
        with contextlib.suppress(OSError), urllib.request.urlopen(
                f"{url}/-/ready", timeout=2) as answer:
            if answer.status == 200:
                return
        time.sleep(0.2)
    raise AssertionError("prometheus did not become ready in 30s")


@contextlib.contextmanager
def running(folder: Path, targets: Sequence[str], *,
            honor_labels: bool = False) -> Iterator[Server]:
    """Prometheus scraping ``targets`` (``127.0.0.1:PORT``) every second; each target is
    its own ``instance`` (unless ``honor_labels`` and the target says whose series are
    whose: one endpoint standing for a whole fleet, in the benchmark)."""
    need()
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "prometheus.yml"
    config.write_text(json.dumps({  # YAML is a superset of JSON
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": "reconciler", "honor_labels": honor_labels,
                            "static_configs": [{"targets": list(targets)}]}],
    }))
    port = free_port()
    server = Server(f"http://127.0.0.1:{port}", config, _spawn(config, folder, port), folder,
                    port)
    try:
        _wait_ready(server.url, server.process)
        yield server
    finally:
        server.stop()
