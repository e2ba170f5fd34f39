"""The Rollout document: loading, located problems with hints, one per repository."""

from __future__ import annotations

import textwrap

from reconciler.manifests import loading, schema
from reconciler.manifests.rollout import OnFailure, WindowKind

ROLLOUT = """
    apiVersion: falco-reconciler/v1
    kind: Rollout
    metadata: {name: fleet}
    spec:
      onFailure: rollback
      waves:
      - name: canary
        hostnames: ["web-1"]
      - name: web
        hostnames: ["web-*"]
        percent: 50
        soak: 30m
        gate: 'sum(rate(falcosecurity_falco_events_dropped_total[5m])) == 0'
        windows:
        - {kind: allow, schedule: "0 22 * * *", duration: 8h}
        - {kind: deny, schedule: "0 0 * * 6", duration: 48h}
      - name: rest
    """


def _files(**files: str) -> list[tuple[str, bytes]]:
    return [(name, textwrap.dedent(text).lstrip("\n").encode()) for name, text in files.items()]


def test_a_rollout_loads_with_its_waves_in_order() -> None:
    manifests = loading.load(_files(**{"rollout.yaml": ROLLOUT}))
    (located,) = manifests.rollouts
    spec = located.value.spec
    assert spec.on_failure is OnFailure.ROLLBACK
    assert [w.name for w in spec.waves] == ["canary", "web", "rest"]
    assert spec.waves[1].soak_seconds == 1800
    assert spec.waves[1].windows[1].kind is WindowKind.DENY
    assert spec.waves[0].soak_seconds == 0 and spec.waves[2].hostnames is None


def test_mistakes_are_located_with_what_is_expected_and_a_hint() -> None:
    bad = (ROLLOUT.replace("onFailure: rollback", "onFailur: rollback")
           .replace("soak: 30m", "soak: 30 minutes")
           .replace("kind: allow", "kind: alow")
           .replace('"0 22 * * *"', '"0 25 * * *"')
           .replace("percent: 50", "percent: 150"))
    problems = [str(p) for p in loading.problems(_files(**{"r.yaml": bad}))]
    assert problems == [
        "r.yaml:5: unknown key 'onFailur' in spec; did you mean 'onFailure'?",
        "r.yaml:11: spec.waves[1].percent: Input should be less than or equal to 100",
        "r.yaml:12: spec.waves[1].soak: expected a duration such as 30s, 30m, 8h, 1h30m or "
        "2d, got '30 minutes'",
        "r.yaml:15: spec.waves[1].windows[0].kind: 'alow' is not allowed; expected 'allow' "
        "or 'deny'; did you mean 'allow'?",
        "r.yaml:15: spec.waves[1].windows[0].schedule: cron hour field '25': values must lie "
        "in 0-23",
    ]


def test_a_misspelt_kind_suggests_rollout() -> None:
    (problem,) = loading.problems(_files(**{"r.yaml": ROLLOUT.replace("kind: Rollout",
                                                                      "kind: Rolout")}))
    assert str(problem) == ("r.yaml:2: unknown kind 'Rolout'; expected Host, DriverBuild or "
                            "Rollout; did you mean 'Rollout'?")


def test_wave_names_are_unique() -> None:
    (problem,) = loading.problems(_files(**{"r.yaml": ROLLOUT.replace("name: rest",
                                                                      "name: web")}))
    assert str(problem) == ("r.yaml:17: spec.waves[2].name: wave 'web' is named twice; wave "
                            "names must be unique in a Rollout")


def test_a_second_rollout_is_refused_where_it_is_and_points_at_the_first() -> None:
    problems = [str(p) for p in loading.problems(_files(**{"a.yaml": ROLLOUT,
                                                            "b.yaml": ROLLOUT}))]
    assert problems == ["b.yaml:2: a second Rollout: a repository holds at most one (the "
                        "fleet has one order of waves), the first is at a.yaml:2; merge "
                        "their waves"]


def test_a_window_longer_than_a_week_is_refused() -> None:
    (problem,) = loading.problems(_files(**{"r.yaml": ROLLOUT.replace("duration: 48h",
                                                                      "duration: 8d")}))
    assert "a window lasts at most 7d, got '8d'" in str(problem)


def test_the_schema_describes_every_property_of_a_rollout() -> None:
    defs = schema.json_schema()["$defs"]
    for part in ("Wave", "Window", "RolloutSpec"):
        for name, prop in defs[part]["properties"].items():
            assert prop.get("description"), f"{part}.{name} has no description"


def test_a_window_reads_its_schedule_in_its_time_zone_and_an_unknown_one_is_located() -> None:
    zoned = ROLLOUT.replace('duration: 8h}', 'duration: 8h, timeZone: Europe/Berlin}')
    (located,) = loading.load(_files(**{"r.yaml": zoned})).rollouts
    night, saturday = located.value.spec.waves[1].windows
    assert (night.time_zone, saturday.time_zone) == ("Europe/Berlin", "UTC")
    (problem,) = loading.problems(_files(**{"r.yaml": zoned.replace("Europe/Berlin",
                                                                    "Europe/Berln")}))
    assert str(problem) == ("r.yaml:15: spec.waves[1].windows[0].timeZone: unknown time zone "
                            "'Europe/Berln': expected an IANA name such as UTC or "
                            "Europe/Berlin")
