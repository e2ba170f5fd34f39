"""The Docker SDK adapter (``edges.docker.client``) against the real engine at DOCKER_HOST,
and against sockets where no engine answers: what each call returns as plain values, that
a missing thing is None rather than an error, that every SDK failure arrives as
``DockerError`` naming the call (``DockerUnavailable`` when nothing answers at all), and
that a silent engine times out instead of blocking."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from reconciler.edges.docker import client
from reconciler.edges.docker.client import Docker
from reconciler.errors import DockerError, DockerUnavailable
from reconciler.model import container

LABEL = "io.falco-reconciler.test"


@pytest.fixture
def made(engine: Docker) -> Iterator[list[str]]:
    """Names of the containers a test creates, removed after by name: only these (the
    engine is shared, and listing all of it can meet another run's half-removed one)."""
    names: list[str] = []
    yield names
    for each in names:
        engine.remove(each)


@pytest.fixture
def name(made: list[str]) -> str:
    """A container name of this test only."""
    made.append(f"client-{uuid.uuid4().hex[:10]}")
    return made[-1]


@pytest.fixture
def silent(tmp_path: Path) -> Iterator[str]:
    """A unix socket that takes connections and never answers: a hung engine."""
    path = tmp_path / "silent.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(path))
        listener.listen(16)
        yield f"unix://{path}"


# -- what comes back ---------------------------------------------------------------------


def test_what_the_engine_does_not_have_is_none_or_empty(engine: Docker) -> None:
    missing = f"client-missing-{uuid.uuid4().hex[:10]}"
    assert engine.container(missing) is None
    assert engine.image_id(f"falco-reconciler/{missing}:1") is None
    assert engine.repo_digests(f"sha256:{'0' * 64}") == ()
    assert engine.logs(missing) == ""
    engine.remove(missing)  # already gone is fine
    engine.kill(missing)  # not running is fine


def test_a_container_is_observed_as_plain_values(engine: Docker, base_image: str,
                                                 name: str) -> None:
    ident = engine.create(image=base_image, name=name, command=["sh", "-c", "echo said; exit 3"],
                          env=[("A", "1"), ("B", "x=y")], labels={LABEL: name})
    made = engine.container(name)
    assert made is not None
    assert (made.id, made.name, made.status, made.running) == (ident, name, "created", False)
    assert dict(made.labels)[LABEL] == name
    assert ("A", "1") in made.env and ("B", "x=y") in made.env  # split at the first '='
    assert made.image_id == engine.image_id(base_image)
    engine.start(ident)
    assert engine.wait(ident, 60) == 3
    done = engine.container(ident)
    assert done is not None and (done.status, done.exit_code) == ("exited", 3)
    assert engine.logs(ident) == "said\n"


def test_containers_are_found_by_every_label_and_sorted_by_name(
    engine: Docker, base_image: str, made: list[str],
) -> None:
    run = uuid.uuid4().hex[:10]
    names = [f"client-b-{run}", f"client-a-{run}", f"client-c-{run}"]
    made.extend(names)
    for each, role in zip(names, ["falco", "falco", "other"], strict=True):
        engine.create(image=base_image, name=each, command=["true"],
                      labels={LABEL: run, "role": role})
    found = engine.containers({LABEL: run, "role": "falco"})
    assert [c.name for c in found] == sorted(names[:2])


def test_a_wait_that_outlasts_its_timeout_is_none(engine: Docker, base_image: str,
                                                  name: str) -> None:
    ident = engine.create(image=base_image, name=name, command=["sleep", "600"])
    engine.start(ident)
    assert engine.wait(ident, 1) is None
    still = engine.container(ident)
    assert still is not None and still.running  # the wait gave up; the container did not


def test_the_engine_reports_its_architecture(engine: Docker) -> None:
    assert engine.architecture() in ("x86_64", "aarch64")


# -- errors, translated once ---------------------------------------------------------------


def test_refusals_are_docker_errors_that_name_the_call(engine: Docker, base_image: str,
                                                       name: str) -> None:
    missing = f"client-missing-{uuid.uuid4().hex[:10]}"
    with pytest.raises(DockerError, match=f"^cannot start container {missing}: .*"):
        engine.start(missing)
    with pytest.raises(DockerError, match=f"^cannot create a container from {missing}:1: "):
        engine.create(image=f"{missing}:1", name=name)
    with pytest.raises(DockerError, match=f"Docker network '{missing}' .* does not exist"):
        engine.network_gateway(missing)
    taken = engine.create(image=base_image, name=name, command=["true"])
    other = engine.create(image=base_image, command=["true"])
    try:
        with pytest.raises(DockerError, match=f"^cannot rename container {other} to {name}: "):
            engine.rename(other, name)
    finally:
        engine.remove(other)
    kept = engine.container(name)
    assert kept is not None and kept.id == taken  # the refused rename changed nothing


def test_a_docker_error_is_transient_a_pass_retries_it(engine: Docker) -> None:
    with pytest.raises(DockerError) as caught:
        engine.start(f"client-missing-{uuid.uuid4().hex[:10]}")
    assert caught.value.transient
    assert not isinstance(caught.value, DockerUnavailable)  # an engine answered


def test_no_engine_at_the_address_is_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    where = f"unix://{tmp_path}/no-engine.sock"
    monkeypatch.setenv("DOCKER_HOST", where)
    with pytest.raises(DockerUnavailable, match=f"^no Docker engine answers at {where}: "):
        client.connect(timeout=2)


def test_an_engine_that_never_answers_times_out_on_connect(
    silent: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKER_HOST", silent)
    with pytest.raises(DockerUnavailable, match=f"^no Docker engine answers at {silent}"):
        client.connect(timeout=1)


def test_a_call_an_engine_stops_answering_times_out_as_a_docker_error(silent: str) -> None:
    """Connected, then silent: the call's read timeout is a (transient) DockerError, not
    'unavailable' and not a hang."""
    hung = Docker(docker.DockerClient(base_url=silent, timeout=1, version="1.41"))
    try:
        with pytest.raises(DockerError) as caught:
            hung.container("falco")
    finally:
        hung.close()
    assert not isinstance(caught.value, DockerUnavailable)
    assert str(caught.value).startswith("cannot inspect container falco: ")
    assert "timed out" in str(caught.value).lower()


def test_the_socket_falco_mounts_is_the_one_docker_host_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/elsewhere/docker.sock")
    assert client.socket_path() == "/run/elsewhere/docker.sock"
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:2375")
    assert client.socket_path() == container.DOCKER_SOCKET
