"""Property: applying every change of a plan to the state it came from leaves nothing to do.

The "apply" here is a fake of the world (a pure function over ObservedState), so the
property checks the diff itself: any change it forgets, or any it proposes that does not
converge, shows up as a non-empty second plan.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler import plan
from reconciler.desired.state import (
    DesiredArtifact,
    DesiredContainer,
    DesiredState,
    container_spec,
)
from reconciler.manifests.models import DriverMode, FalcoSpec
from reconciler.model.artifacts import ArtifactKey, DriverKind
from reconciler.model.observations import ObservedContainer
from reconciler.model.offers import Offer
from reconciler.model.upstreams import BuildPolicy
from reconciler.observe.state import ObservedState

KEYS = [
    ArtifactKey(dv, "x86_64", "debian", f"5.10.0-{n}-cloud-amd64", "1", kind)
    for dv in ("2.0.0+driver", "3.0.1+driver") for n in (13, 14) for kind in DriverKind
]
SPECS = [
    container_spec(FalcoSpec(version=v, containerName=name, env=env),
                       drivers_url="http://127.0.0.1:8000")
    for v in ("0.32.2", "0.37.1") for name in ("falco", "falco-b") for env in ({}, {"A": "1"})
]
STATUSES = ["running", "exited", "created", "paused", "dead"]

keys = st.frozensets(st.sampled_from(KEYS))


@st.composite
def observed_containers(draw: st.DrawFn) -> tuple[ObservedContainer, ...]:
    found = []
    for i, name in enumerate(draw(st.lists(st.sampled_from(["falco", "falco-b", "other"]),
                                           unique=True))):
        spec = draw(st.sampled_from(SPECS))
        managed = draw(st.booleans())
        labels = spec.labels(revision="r", host="h") if managed else {}
        found.append(ObservedContainer(
            id=f"id{i}", name=name, image=spec.image, status=draw(st.sampled_from(STATUSES)),
            labels=tuple(labels.items()), env=spec.env,
        ))
    return tuple(found)


@st.composite
def desired_states(draw: st.DrawFn) -> DesiredState:
    spec = draw(st.none() | st.sampled_from(SPECS))
    wanted = draw(keys)
    return DesiredState(
        revision="r" * 40, hostname="h", host="h" if spec else None,
        artifacts=tuple(DesiredArtifact(k, ("test",)) for k in sorted(wanted)),
        container=(DesiredContainer(spec, "h", "0.32.2", DriverMode.KMOD, None, "http://x")
                   if spec else None),
    )


def apply_fake(p: plan.Plan, state: ObservedState) -> ObservedState:
    present, corrupt = set(state.present), set(state.corrupt)
    containers = {c.id: c for c in state.containers}
    for n, change in enumerate(p.changes):
        if change.reason is plan.Reason.UNAVAILABLE:
            continue  # blocked: nothing is built or fetched
        if change.op in (plan.Op.BUILD, plan.Op.FETCH):
            assert change.artifact is not None
            present.add(change.artifact)
            corrupt.discard(change.artifact)
        elif change.op is plan.Op.DELETE:
            assert change.artifact is not None
            corrupt.discard(change.artifact)
        else:
            if change.replaces:
                containers.pop(change.replaces)
            if change.spec is not None:
                spec = change.spec
                containers[f"new{n}"] = ObservedContainer(
                    id=f"new{n}", name=spec.name, image=spec.image, status="running",
                    labels=tuple(spec.labels(revision=p.revision, host="h").items()),
                    env=spec.env,
                )
    return replace(state, present=frozenset(present), corrupt=frozenset(corrupt),
                   containers=tuple(containers.values()))


@settings(max_examples=400, deadline=None)
@given(desired_states(), keys, keys, observed_containers())
def test_applied_plan_converges(
    want: DesiredState, present: frozenset[ArtifactKey], corrupt: frozenset[ArtifactKey],
    found: tuple[ObservedContainer, ...],
) -> None:
    state = ObservedState(present=present, corrupt=corrupt - present, containers=found)
    first = plan.diff(want, state, adopt=True)
    assert plan.diff(want, apply_fake(first, state), adopt=True).empty


@settings(max_examples=300, deadline=None)
@given(desired_states(), keys, keys, keys, st.sampled_from(BuildPolicy))
def test_fetches_and_builds_converge_under_every_build_policy(
    want: DesiredState, present: frozenset[ArtifactKey], corrupt: frozenset[ArtifactKey],
    offered: frozenset[ArtifactKey], build: BuildPolicy,
) -> None:
    offers = tuple((k, (Offer("up", f"http://up/{k.relpath}"),)) for k in sorted(offered))
    state = ObservedState(present=present, corrupt=corrupt - present, offers=offers)
    def planned(observed: ObservedState) -> plan.Plan:
        made = plan.diff(want, observed, adopt=True, build=build)
        # As the planner does on a host that does not build, with no build host to ask.
        return plan.requests_instead(made, build_hosts=False) \
            if build is BuildPolicy.NEVER else made

    first = planned(state)
    for change in first.changes:
        if change.op is plan.Op.FETCH:
            assert build is not BuildPolicy.ALWAYS and change.artifact in offered
            assert change.to_json()["from"] == "up"
    left = planned(apply_fake(first, state))
    wanted = {a.key for a in want.artifacts}
    if build is BuildPolicy.NEVER:
        assert {c.artifact for c in left.changes} == wanted - present - offered
        assert {c.reason for c in left.changes} <= {plan.Reason.UNAVAILABLE}
    else:
        assert left.empty


@settings(max_examples=200, deadline=None)
@given(desired_states(), keys, observed_containers())
def test_plan_never_touches_a_foreign_container_it_does_not_need(
    want: DesiredState, present: frozenset[ArtifactKey], found: tuple[ObservedContainer, ...],
) -> None:
    state = ObservedState(present=present, containers=found)
    wanted_name = want.container.spec.name if want.container else None
    for change in plan.diff(want, state).changes:
        if change.replaces:
            gone = next(c for c in found if c.id == change.replaces)
            assert gone.managed or gone.name == wanted_name
            if not gone.managed:
                assert change.needs_adopt
