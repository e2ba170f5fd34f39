"""model.asking: when an artifact is asked for again and where it then stands, no POST."""

from __future__ import annotations

from reconciler.model import asking
from reconciler.model.artifacts import ArtifactKey, DriverKind
from reconciler.model.asking import Standing
from reconciler.model.buildrequests import Requested, Verdict

A = ArtifactKey("2.0.0+driver", "x86_64", "debian", "5.10.0-14-cloud-amd64", "1", DriverKind.KMOD)
B = ArtifactKey("2.0.0+driver", "x86_64", "debian", "5.10.0-14-cloud-amd64", "1", DriverKind.EBPF)


def test_the_backoff_doubles_to_its_longest() -> None:
    assert [asking.wait_after(n) for n in (1, 2, 3, 4, 5, 9)] == [30, 60, 120, 240, 300, 300]


def test_what_one_build_host_refuses_goes_to_the_next() -> None:
    rounds = asking.Round([Requested(A), Requested(B)], {}, clock=1000.0)
    rounds.answered("build-1", {A.relpath: (Verdict.REJECTED, "no arm"),
                                B.relpath: (Verdict.QUEUED, "")})
    assert rounds.left == [Requested(A)]
    rounds.failed("build-2 answered 503: busy", wait=240)
    records, outcome = rounds.outcome()
    a, b = outcome.keys
    assert (a.standing, a.upstream, a.detail) == (
        Standing.REJECTED, "build-1", "build-1: no arm; build-2 answered 503: busy")
    assert a.next_at == 1000 + 240  # the build host's Retry-After beats our 30 s
    assert (b.standing, b.upstream, b.next_at) == (Standing.PENDING, "build-1", 1030)
    assert all(k.posted for k in outcome.keys)
    assert [r.attempts for r in records] == [1, 1]


def test_an_artifact_within_its_backoff_is_not_asked_and_keeps_its_record() -> None:
    earlier = asking.Sent(A.relpath, Standing.PENDING, "build-1", "queued", 2, 900.0, 1100.0)
    rounds = asking.Round([Requested(A)], {A.relpath: earlier}, clock=1000.0)
    assert rounds.left == []
    records, outcome = rounds.outcome()
    assert records == (earlier,)
    assert not outcome.keys[0].posted
    assert asking.Sent.from_json(earlier.to_json()) == earlier
