"""Which revision a host runs under a Rollout: release by soak and gates, holds said,
failures held or rolled back; and, for any fleet and history, no host ever moves to a
revision its wave was not released for."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.desired import rollout, waves
from reconciler.desired.rollout import History
from reconciler.desired.waves import FleetView, Reading, WaveCounts
from reconciler.manifests.models import Metadata
from reconciler.manifests.rollout import OnFailure, Rollout, RolloutSpec, Wave, Window, WindowKind

T0 = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC).timestamp()


def make(*wave_list: Wave, on_failure: OnFailure = OnFailure.HOLD) -> Rollout:
    return Rollout(api_version="falco-reconciler/v1", kind="Rollout",
                   metadata=Metadata(name="fleet"),
                   spec=RolloutSpec(on_failure=on_failure, waves=wave_list))


PLAN = make(Wave(name="canary", hostnames=("web-1",)),
            Wave(name="web", hostnames=("web-*",), soak="30m"))


@dataclass
class Fake:
    """Prometheus as the gates see it: a fixed view, and answers to queries."""

    fleet: FleetView = field(default_factory=FleetView)
    answers: Mapping[str, bool | None] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)

    def view(self) -> FleetView:
        return self.fleet

    def holds(self, query: str) -> bool | None:
        self.asked.append(query)
        return self.answers.get(query)


def canary(on: int, healthy: int, revision: str = "new") -> FleetView:
    return FleetView({"canary": WaveCounts(1, {revision: on}, {revision: healthy})})


def on_old() -> History:
    return rollout.see(History(target="old", good=("old",)), "old", T0 - 3600)


def always(_revision: str) -> bool:
    return True


def test_a_host_that_never_moved_takes_the_head() -> None:
    decision = rollout.decide(PLAN, "web-2", "new", T0, History(), gates=None, changes=always)
    assert decision.revision == "new" and decision.history.target == "new"


def test_time_based_waves_follow_the_soak_from_the_first_seen_time() -> None:
    first = rollout.decide(PLAN, "web-2", "new", T0, on_old(), gates=None, changes=always)
    assert (first.revision, first.held) == (
        "old", "held: wave web waits for canary (0s of 30m soak)")
    later = rollout.decide(PLAN, "web-2", "new", T0 + 1799, first.history, gates=None,
                           changes=always)
    assert later.revision == "old" and "29m59s of 30m soak" in later.held
    assert first.eta == later.eta == T0 + 1800
    done = rollout.decide(PLAN, "web-2", "new", T0 + 1800, later.history, gates=None,
                          changes=always)
    assert (done.revision, done.held) == ("new", "")
    assert rollout.decide(PLAN, "web-1", "new", T0, on_old(), gates=None,
                          changes=always).revision == "new"


def test_a_revision_that_changes_nothing_here_is_applied_at_once() -> None:
    decision = rollout.decide(PLAN, "web-2", "new", T0, on_old(), gates=None,
                              changes=lambda revision: False)
    assert decision.revision == "new"


def test_the_gate_must_hold_for_the_soak_continuously() -> None:
    pending = rollout.decide(PLAN, "web-2", "new", T0, on_old(), gates=Fake(canary(0, 0)),
                             changes=always)
    assert pending.eta is None  # not a matter of time yet
    assert pending.held == "held: wave web waits for canary (0 of 1 hosts healthy on new)"
    opened = rollout.decide(PLAN, "web-2", "new", T0 + 60, pending.history,
                            gates=Fake(canary(1, 1)), changes=always)
    assert opened.held == ("held: wave web waits for canary (1 of 1 hosts healthy on new for "
                           "0s of 30m soak)")
    # The gate closes for a moment: the soak starts again when it reopens.
    closed = rollout.decide(PLAN, "web-2", "new", T0 + 1000, opened.history,
                            gates=Fake(canary(0, 0)), changes=always)
    reopened = rollout.decide(PLAN, "web-2", "new", T0 + 1100, closed.history,
                              gates=Fake(canary(1, 1)), changes=always)
    early = rollout.decide(PLAN, "web-2", "new", T0 + 1100 + 1799, reopened.history,
                           gates=Fake(canary(1, 1)), changes=always)
    assert early.revision == "old" and "29m59s of 30m soak" in early.held
    done = rollout.decide(PLAN, "web-2", "new", T0 + 1100 + 1800, early.history,
                          gates=Fake(canary(1, 1)), changes=always)
    assert done.revision == "new"


def test_prometheus_unreachable_keeps_the_gate_closed_and_says_so() -> None:
    down = Fake(FleetView(error="Prometheus http://127.0.0.1:9 unreachable: refused"))
    decision = rollout.decide(PLAN, "web-2", "new", T0 + 86400, on_old(), gates=down,
                              changes=always)
    assert (decision.revision, decision.held) == ("old", (
        "held: wave web waits for canary (gate closed: Prometheus http://127.0.0.1:9 "
        "unreachable: refused)"))


def test_a_wave_query_must_return_something_too() -> None:
    query = 'up{job="falco", revision="$revision"}'
    plan = make(Wave(name="canary", hostnames=("web-1",)),
                Wave(name="web", hostnames=("web-*",), gate=query))
    asked = 'up{job="falco", revision="new"}'
    empty = rollout.decide(plan, "web-2", "new", T0, on_old(),
                           gates=Fake(canary(1, 1), {asked: False}), changes=always)
    assert empty.held == ("held: wave web waits for canary (the gate query returns nothing "
                          "yet)")
    assert rollout.decide(plan, "web-2", "new", T0, on_old(), gates=Fake(
        canary(1, 1), {asked: True}), changes=always).revision == "new"
    no_prometheus = rollout.decide(plan, "web-2", "new", T0, on_old(), gates=None,
                                   changes=always)
    assert "no Prometheus is configured" in no_prometheus.held


def test_a_failing_canary_holds_the_revision_for_later_waves() -> None:
    decision = rollout.decide(PLAN, "web-2", "new", T0, on_old(), gates=Fake(canary(1, 0)),
                              changes=always)
    assert decision.revision == "old"
    assert decision.held == "held: new failed (wave canary: 1 of 1 hosts failing on new)"
    assert decision.history.failed == {"new"}
    # Even once the canary is healthy again, a failed revision is not moved to.
    again = rollout.decide(PLAN, "web-2", "new", T0 + 86400, decision.history,
                           gates=Fake(canary(1, 1)), changes=always)
    assert again.revision == "old"


def test_rollback_takes_the_canary_back_to_the_last_revision_that_passed() -> None:
    plan = make(*PLAN.spec.waves, on_failure=OnFailure.ROLLBACK)
    moved = rollout.decide(plan, "web-1", "new", T0, on_old(), gates=None, changes=always)
    assert moved.revision == "new"
    failed = rollout.after_pass(moved.history, "new", ok=False)
    back = rollout.decide(plan, "web-1", "new", T0 + 60, failed, gates=None, changes=always)
    assert (back.revision, back.rolled_back) == ("old", "new")
    assert back.held == "held: new failed (its pass failed here); rolled back to old"
    held = rollout.decide(PLAN, "web-1", "new", T0 + 60, failed, gates=None, changes=always)
    assert (held.revision, held.rolled_back) == ("new", None)  # hold: it stays


def test_a_newer_fix_goes_forward_past_a_failed_revision() -> None:
    history = rollout.after_pass(rollout.see(on_old(), "bad", T0), "bad", ok=False)
    decision = rollout.decide(PLAN, "web-1", "fix", T0 + 60, history, gates=None,
                              changes=always)
    assert decision.revision == "fix"


def test_a_maintenance_window_defers_the_wave() -> None:
    plan = make(Wave(name="canary", hostnames=("web-1",), windows=(
        Window(kind=WindowKind.ALLOW, schedule="0 22 * * *", duration="8h"),)))
    noon = rollout.decide(plan, "web-1", "new", T0, on_old(), gates=None, changes=always)
    assert (noon.revision, noon.held) == ("old", "held: wave canary is outside its allow "
                                          "windows; next opens 2026-12-07T22:00Z")
    night = rollout.decide(plan, "web-1", "new", T0 + 10 * 3600, noon.history, gates=None,
                           changes=always)
    assert night.revision == "new"


# -- the property ----------------------------------------------------------------------

STEP = 60


@dataclass
class Host:
    name: str
    history: History
    ok: dict[str, bool] = field(default_factory=dict)  # revision -> how its pass went here


def fleet_view(plan: Rollout, hosts: list[Host]) -> FleetView:
    counts: dict[str, tuple[int, dict[str, int], dict[str, int]]] = {}
    for host in hosts:
        wave = plan.spec.waves[waves.wave_of(plan, host.name)].name
        members, on, healthy = counts.setdefault(wave, (0, {}, {}))
        target = host.history.target or ""
        on[target] = on.get(target, 0) + 1
        healthy[target] = healthy.get(target, 0) + int(host.ok.get(target, True))
        counts[wave] = (members + 1, on, healthy)
    return FleetView({w: WaveCounts(m, on, h) for w, (m, on, h) in counts.items()})


def released(plan: Rollout, k: int, revision: str, now: float, seen: float,
             views: list[tuple[float, FleetView]], gated: bool) -> bool:
    """The oracle: wave ``k`` released for ``revision`` at ``now``, from the record of what
    the fleet looked like at each round, not from any host's ledger."""
    spec = plan.spec
    opened = seen
    for j in range(k + 1):
        if gated and j:
            watched = spec.waves[j - 1].name
            closed = [at for at, view in views if view.error or waves.read_gate(
                view, watched, revision).state is not Reading.OPEN]
            after = [at for at, _view in views if at > max(closed, default=-1.0)]
            if not after:
                return False
            opened = after[0]
        if now < opened + spec.waves[j].soak_seconds:
            return False
        opened += spec.waves[j].soak_seconds
    return waves.window_hold(spec.waves[k], dt.datetime.fromtimestamp(now, dt.UTC)) == ""


wave_st = st.builds(
    lambda name, globs, percent, soak, window: Wave(
        name=name, hostnames=globs, percent=percent, soak=soak,
        windows=(window,) if window else ()),
    st.just("w"), st.sampled_from([("web-*",), ("web-1", "db-1"), ("db-*",), None]),
    st.sampled_from([None, 10.0, 50.0]), st.sampled_from(["0s", "1m", "5m"]),
    st.sampled_from([None, Window(kind=WindowKind.DENY, schedule="*/20 * * * *",
                                  duration="10m"),
                     Window(kind=WindowKind.ALLOW, schedule="0 * * * *", duration="30m")]))


@settings(max_examples=60, deadline=None)
@given(
    wave_list=st.lists(wave_st, min_size=1, max_size=3),
    names=st.lists(st.sampled_from([f"{r}-{n}" for r in ("web", "db") for n in range(8)]),
                   min_size=1, max_size=8, unique=True),
    events=st.lists(st.tuples(st.booleans(), st.integers(1, 5), st.sets(st.integers(0, 7))),
                    min_size=1, max_size=25),
    gated=st.booleans(), on_failure=st.sampled_from(list(OnFailure)),
)
def test_no_host_moves_to_a_revision_its_wave_was_not_released_for(
        wave_list: list[Wave], names: list[str], events: list[tuple[bool, int, set[int]]],
        gated: bool, on_failure: OnFailure) -> None:
    plan = make(*(Wave(name=f"w{i}", hostnames=w.hostnames, percent=w.percent, soak=w.soak,
                       windows=w.windows) for i, w in enumerate(wave_list)),
                on_failure=on_failure)
    hosts = [Host(n, rollout.see(History(target="r0", good=("r0",)), "r0", T0)) for n in names]
    now, head, count = T0, "r0", 0
    seen: dict[tuple[str, str], float] = {}
    ran: dict[str, set[str]] = {h.name: {"r0"} for h in hosts}
    views: list[tuple[float, FleetView]] = []
    for push, minutes, failing_hosts in events:
        if push:
            count += 1
            head = f"r{count}"
            for index, host in enumerate(hosts):
                host.ok[head] = index not in failing_hosts
        for _ in range(minutes):
            now += STEP
            view = fleet_view(plan, hosts)
            views.append((now, view))
            for host in hosts:
                before = host.history.target
                seen.setdefault((host.name, head), now)
                decision = rollout.decide(plan, host.name, head, now, host.history,
                                          gates=Fake(view) if gated else None, changes=always)
                target = decision.revision
                if target != before and target not in ran[host.name]:
                    k = waves.wave_of(plan, host.name)
                    assert released(plan, k, target, now, seen[(host.name, target)], views,
                                    gated), (host.name, target, now - T0)
                assert target == before or target not in host.history.failed
                ran[host.name].add(target)
                host.history = rollout.after_pass(decision.history, target,
                                                  host.ok.get(target, True))
