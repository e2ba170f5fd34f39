"""Stage 3 of the pipeline, pure: the manifests at one revision and the host's facts ->
what this host must have (``state``: driver artifacts and the Falco container).

``from reconciler import desired`` then ``desired.compute(...)``: the stage's API is
re-exported here.
"""

from reconciler.desired.state import (
    BOOTS,
    INSTALLED,
    LISTED,
    RUNNING,
    DesiredArtifact,
    DesiredContainer,
    DesiredState,
    KeysOf,
    compute,
    container_spec,
    host_artifact,
    installed_artifacts,
    listed_artifacts,
)

__all__ = [
    "BOOTS", "INSTALLED", "LISTED", "RUNNING", "DesiredArtifact", "DesiredContainer",
    "DesiredState", "KeysOf", "compute", "container_spec", "host_artifact",
    "installed_artifacts", "listed_artifacts",
]
