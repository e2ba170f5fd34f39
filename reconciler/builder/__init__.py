"""Driver builds in Docker: builder image -> kernel headers -> driver source -> compile ->
verify -> publish.

One module per step (``images``, ``headers``, ``sources``, ``compiler``, ``verify``), the
shell each step runs kept as real files in ``scripts/`` (package data, checked by
shellcheck), containers run through ``edges.docker.jobs``, and ``runner`` driving a set
of builds in parallel. The entry point is ``build_all`` with ``BuildRequest`` and
``BuildConfig``, re-exported here.
"""

from reconciler.builder.runner import (
    BuildConfig,
    BuildEvent,
    BuildOutcome,
    BuildRequest,
    Phase,
    Progress,
    build_all,
    sigterm_as_interrupt,
)
from reconciler.builder.steps import Step

__all__ = [
    "BuildConfig", "BuildEvent", "BuildOutcome", "BuildRequest", "Phase", "Progress", "Step",
    "build_all", "sigterm_as_interrupt",
]
