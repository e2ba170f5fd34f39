"""Falco's image: pulled when missing from a real registry, a failed pull keeps the old
Falco, and with ``pull: always`` a moved tag replaces the container.

The registry is Debian's docker-registry on loopback; the image is the session's stand-in
Falco 0.32 (tests/support/standin.py), since Falco's own image cannot be pulled here.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from reconciler import cli
from reconciler.model.artifacts import DriverKind
from tests.support.falcohost import NAME, Host, apply

pytestmark = pytest.mark.docker


def manifest(image: str, pull: str = "missing") -> str:
    return (
        "apiVersion: falco-reconciler/v1\nkind: Host\nmetadata: {name: web}\nspec:\n"
        "  match: {hostnames: [web-*]}\n  falco:\n"
        f"    version: 0.32.2\n    containerName: {NAME}\n    image: {image}\n"
        f"    pull: {pull}\n"
    )


def push(client: Any, source: str, target_repo: str, tag: str = "0.32.2") -> None:
    client.images.get(source).tag(target_repo, tag)
    for line in client.images.push(target_repo, tag=tag, stream=True, decode=True):
        assert "error" not in line, line
    client.images.remove(f"{target_repo}:{tag}")


def test_missing_image_is_pulled_and_a_failed_pull_keeps_the_running_falco(
    host: Host, capsys: pytest.CaptureFixture[str], docker_client: Any, registry: str,
) -> None:
    repo = f"{registry}/falco-standin"
    push(docker_client, host.standins.falco("0.32.2"), repo)
    host.publish_driver("0.32.2", DriverKind.KMOD)
    host.repo.commit({"web.yaml": manifest(repo)})
    code, out = apply(host, capsys)
    assert code == 0, out
    assert "image.pulled" in out
    running = docker_client.containers.get(NAME)
    assert running.attrs["Config"]["Image"] == f"{repo}:0.32.2"

    host.repo.commit({"web.yaml": manifest(f"{registry}/no-such-image")})
    code, out = apply(host, capsys)
    assert code == 1
    assert "cannot pull" in out
    still = docker_client.containers.get(NAME)
    assert (still.id, still.status) == (running.id, "running")


def test_pull_always_replaces_falco_when_the_tag_moves(
    host: Host, capsys: pytest.CaptureFixture[str], docker_client: Any, registry: str,
    base_image: str,
) -> None:
    repo = f"{registry}/falco-moving"
    push(docker_client, host.standins.falco("0.32.2"), repo)
    host.publish_driver("0.32.2", DriverKind.KMOD)
    host.repo.commit({"web.yaml": manifest(repo, pull="always")})
    assert apply(host, capsys)[0] == 0
    first = docker_client.containers.get(NAME)

    cli.main(host.args("plan", "--json"))
    assert json.loads(capsys.readouterr().out)["changes"] == []

    # Publish a new image under the same tag.
    box = docker_client.containers.create(host.standins.falco("0.32.2"), network_mode="none")
    try:
        box.commit("falco-reconciler/falco-standin-next", "0.32.2",
                   changes=["LABEL build=next"])
    finally:
        box.remove(force=True)
    push(docker_client, "falco-reconciler/falco-standin-next:0.32.2", repo)

    cli.main(host.args("plan", "--json"))
    changes = json.loads(capsys.readouterr().out)["changes"]
    assert [(c["op"], c["name"]) for c in changes] == [("replace", NAME)]
    assert "tag moved" in changes[0]["reason"]
    code, out = apply(host, capsys)
    assert code == 0, out
    second = docker_client.containers.get(NAME)
    assert second.id != first.id
    assert second.image.labels.get("build") == "next"
