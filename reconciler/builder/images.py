"""Builder images: the base image plus the toolchain, made once and reused.

An image is named by what it contains: ``falco-reconciler/builder:<hash>`` where the hash
covers the base image's id, the package list and the recipe version, so a new base image
or toolchain gives a new builder and an unchanged one is never rebuilt. It is made by
running ``apt-get install`` in a container from the base image and committing it (no
Dockerfile, no build context). A file lock keeps two builds, in threads or processes,
from making the same image twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from reconciler.builder import locks, steps
from reconciler.edges.docker import jobs

REPOSITORY = "falco-reconciler/builder"
RECIPE_VERSION = "1"
LABEL_BASE = "io.falco-reconciler.base-image"
LABEL_CONTENT = "io.falco-reconciler.content"

# gcc/make/kmod for the module, clang/llvm for the probe, dpkg/rpm2cpio/cpio/xz/zstd to
# unpack header packages, cmake for falcosecurity/libs trees.
PACKAGES = (
    "binutils", "ca-certificates", "clang", "cmake", "cpio", "gcc", "kmod", "libc6-dev",
    "libelf-dev", "llvm", "make", "rpm2cpio", "xz-utils", "zstd",
)


@dataclass(frozen=True)
class BuilderImage:
    reference: str
    base_image: str
    content_hash: str


def content_hash(base_image_id: str, packages: tuple[str, ...] = PACKAGES) -> str:
    text = "\n".join((RECIPE_VERSION, base_image_id, *sorted(packages)))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def ensure(
    eng: jobs.Jobs, base_image: str, lock_dir: Path, log: steps.BuildLog,
    *, timeout: float | None = None,
) -> BuilderImage:
    """The builder image for ``base_image``, made now if the engine lacks it."""
    base_id = eng.ensure_image(base_image)
    digest = content_hash(base_id)
    reference = f"{REPOSITORY}:{digest}"
    image = BuilderImage(reference, base_image, digest)
    if eng.image_id(reference) is not None:
        return image
    with locks.held(lock_dir / f"builder-{digest}.lock"):
        if eng.image_id(reference) is not None:
            return image
        labels = {
            jobs.LABEL_ROLE: "builder-image", LABEL_BASE: base_image, LABEL_CONTENT: digest,
        }
        result = eng.run(
            base_id, steps.script("toolchain.sh"), network="host", timeout=timeout,
            environment={"PACKAGES": " ".join(sorted(PACKAGES))},
            labels={jobs.LABEL_STEP: "builder-image"}, commit_to=(reference, labels),
        )
        steps.check(result, f"installing the toolchain into {base_image}", log)
    return image
