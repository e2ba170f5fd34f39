"""Driver builds in Docker: builder image -> kernel headers -> driver source -> compile ->
verify -> publish.

One module per step (``images``, ``headers``, ``sources``, ``compile``, ``verify``), the
SDK calls behind ``engine``, and ``runner`` driving a set of builds in parallel. The public
entry point is ``build_all`` with ``BuildRequest`` and ``BuildConfig``, re-exported here.
"""

from reconciler.builder.runner import (
    BuildConfig,
    BuildEvent,
    BuildOutcome,
    BuildRequest,
    Phase,
    build_all,
    sigterm_as_interrupt,
    terminal_progress,
)
from reconciler.builder.steps import Step

__all__ = [
    "BuildConfig", "BuildEvent", "BuildOutcome", "BuildRequest", "Phase", "Step", "build_all",
    "sigterm_as_interrupt", "terminal_progress",
]
