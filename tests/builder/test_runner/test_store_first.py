"""runner without an engine: what is already in the store never reaches Docker, and a
failure is reported per request with the step, the last lines and the log file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.builder import runner, steps
from reconciler.edges.store.local import Store
from reconciler.errors import BuildError
from reconciler.model.artifacts import ArtifactKey, DriverKind
from tests.builder.helpers import request


class NoDocker:
    """A docker client that must never be used."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"docker was used: client.{name}")


def config(tmp_path: Path, **overrides: Any) -> runner.BuildConfig:
    values: dict[str, Any] = {
        "state_dir": tmp_path / "state", "store": tmp_path / "store", "source": "deb:x",
        "base_image": "base", "jobs": 2, "timeout": 60.0,
    }
    values.update(overrides)
    return runner.BuildConfig(**values)


def publish(conf: runner.BuildConfig, req: runner.BuildRequest, kind: DriverKind) -> None:
    source = conf.store.parent / f"built{kind.suffix}"
    source.write_bytes(b"a driver")
    Store(conf.store).publish(ArtifactKey.for_kernel(req.kernel, req.driver_version, kind),
                              source)


def test_requests_already_in_the_store_are_answered_without_docker(tmp_path: Path) -> None:
    conf = config(tmp_path)
    first = request("6.1.0-1-cloud-amd64", "2.0.0+driver", DriverKind.KMOD, DriverKind.EBPF)
    second = request("6.1.0-2-cloud-amd64", "2.0.0+driver")
    for req, kind in ((first, DriverKind.KMOD), (first, DriverKind.EBPF),
                      (second, DriverKind.KMOD)):
        publish(conf, req, kind)
    outcomes = runner.build_all([first, second], conf, NoDocker(), Store(conf.store))
    assert [o.ok and not o.built for o in outcomes] == [True, True]
    assert [len(o.artifacts) for o in outcomes] == [2, 1]


def test_a_corrupt_artifact_in_the_store_is_rebuilt(tmp_path: Path) -> None:
    """A file whose checksum does not verify is not 'in the store': docker is needed."""
    conf = config(tmp_path)
    req = request("6.1.0-1-cloud-amd64", "2.0.0+driver")
    publish(conf, req, DriverKind.KMOD)
    (conf.store / req.artifact_keys()[0].relpath).write_bytes(b"tampered")
    with pytest.raises(AssertionError, match="docker was used"):
        runner.build_all([req], conf, NoDocker(), Store(conf.store))


def test_a_failed_step_becomes_a_build_error_with_tail_and_log(tmp_path: Path) -> None:
    conf = config(tmp_path)
    req = request("6.1.0-1-cloud-amd64", "2.0.0+driver")
    build = runner._Build(req, conf, None, Store(conf.store), None)  # type: ignore[arg-type]
    log = steps.BuildLog(tmp_path / "logs" / "x.log")
    output = "\n".join(f"line {i}" for i in range(50))
    build.step = steps.Step.COMPILE
    outcome = build._failed("compiling kmod failed (exit 2)", output, log)
    error = outcome.error
    assert isinstance(error, BuildError)
    assert (error.artifact, error.step, error.log_path) == (req.name, "compile", str(log.path))
    assert error.tail.splitlines() == [f"line {i}" for i in range(30, 50)]
    assert str(error).splitlines()[0] == (
        f"building {req.name} failed at step compile: compiling kmod failed (exit 2)")
    assert str(error).splitlines()[-1] == f"  full log: {log.path}"
    assert "FAILED at step compile" in log.path.read_text()
