"""Build the local stand-in for Falco's image (see falco-standin.sh for what it does).

Made from the local Debian base image plus curl, one tag per Falco version, with that
version's driver version baked in as the real image has it.
"""

from __future__ import annotations

import io
import tarfile
import time
from pathlib import Path
from typing import Any

import docker.errors

from reconciler.model import versions

REPOSITORY = "falco-reconciler/falco-standin"
# Bump the tag when falco-standin.sh changes, so a cached image is not reused.
_BASE = f"{REPOSITORY}-base:2"
_SCRIPT = Path(__file__).with_name("falco-standin.sh")


def _with_curl(client: Any, base_image: str) -> str:
    try:
        client.images.get(_BASE)
        return _BASE
    except docker.errors.ImageNotFound:
        pass
    box = client.containers.run(
        base_image,
        ["bash", "-c", "apt-get update -q && apt-get install -y -q --no-install-recommends "
         "curl ca-certificates >/dev/null"],
        network_mode="host", detach=True,
    )
    try:
        result = box.wait(timeout=600)
        if result["StatusCode"] != 0:
            raise RuntimeError("installing curl in the stand-in failed:\n"
                               + box.logs(tail=30).decode(errors="replace"))
        data = io.BytesIO()
        with tarfile.open(fileobj=data, mode="w") as tar:
            info = tarfile.TarInfo("falco-standin")
            body = _SCRIPT.read_bytes()
            info.size, info.mode, info.mtime = len(body), 0o755, int(time.time())
            tar.addfile(info, io.BytesIO(body))
        box.put_archive("/usr/local/bin", data.getvalue())
        repository, tag = _BASE.split(":")
        box.commit(repository, tag, changes=['ENTRYPOINT ["/usr/local/bin/falco-standin"]',
                                              'CMD ["/usr/bin/falco"]'])
    finally:
        box.remove(force=True)
    return _BASE


def ensure(client: Any, base_image: str, falco_version: str) -> str:
    """The stand-in image ``falco-reconciler/falco-standin:<falco_version>``."""
    ref = f"{REPOSITORY}:{falco_version}"
    try:
        if client.images.get(ref).labels.get("standin-base") == _BASE:
            return ref
    except docker.errors.ImageNotFound:
        pass
    base = _with_curl(client, base_image)
    driver = versions.driver_version(falco_version)
    box = client.containers.create(base, network_mode="none")
    try:
        box.commit(REPOSITORY, falco_version, changes=[f"ENV DRIVER_VERSION={driver}",
                                                       f"LABEL standin-base={_BASE}"])
    finally:
        box.remove(force=True)
    return ref
