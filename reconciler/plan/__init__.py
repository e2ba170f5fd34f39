"""Stage 5 of the pipeline: the plan, the pure difference of desired and observed state.

``diff`` computes it (``from reconciler import plan`` then ``plan.diff(desired, actual)``:
its API is re-exported here), ``retention`` decides which unwanted artifacts go, ``render``
prints it for people and scripts, ``saved`` writes and checks saved plans, and ``planner``
runs the stages up to the plan for one pass over the observation sources it is given.
"""

from reconciler.plan.diff import (
    Change,
    ChangeKind,
    Op,
    Plan,
    Reason,
    diff,
    notes,
    requests_instead,
)

__all__ = ["Change", "ChangeKind", "Op", "Plan", "Reason", "diff", "notes", "requests_instead"]
