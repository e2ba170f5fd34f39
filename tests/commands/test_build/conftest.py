"""``reconciler build`` runs real builds: the builder tests' session image, kernel and
state dir fixtures, shared rather than made twice."""

from tests.builder.conftest import builder_image, kernel_release, state_dir

__all__ = ["builder_image", "kernel_release", "state_dir"]
