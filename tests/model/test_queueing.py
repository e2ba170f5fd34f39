"""model.queueing: the build host's queue rules, no file and no lock."""

from __future__ import annotations

from reconciler.model import queueing
from reconciler.model.artifacts import ArtifactKey, DriverKind
from reconciler.model.buildrequests import Requested, Verdict

A = ArtifactKey("2.0.0+driver", "x86_64", "debian", "5.10.0-14-cloud-amd64", "1", DriverKind.KMOD)
B = ArtifactKey("2.0.0+driver", "x86_64", "debian", "5.10.0-14-cloud-amd64", "1", DriverKind.EBPF)


def test_an_offer_queues_new_ones_and_adds_askers_to_waiting_ones() -> None:
    first = queueing.offer(queueing.QueueState(), "web-1", "10.0.0.1", [Requested(A)],
                           limit=2, now="t1")
    assert first is not None
    queue, verdicts = first
    assert verdicts == {A.relpath: Verdict.QUEUED}
    second = queueing.offer(queue, "web-2", "10.0.0.2", [Requested(A), Requested(B, "5.10.1")],
                            limit=2, now="t2")
    assert second is not None
    queue, verdicts = second
    assert verdicts == {A.relpath: Verdict.ALREADY_QUEUED, B.relpath: Verdict.QUEUED}
    assert queue.pending[0].hosts == ("web-1", "web-2")
    assert queue.pending[0].queued_at == "t1"
    assert queue.pending[1].uname_release == "5.10.1"


def test_an_offer_that_would_not_fit_queues_nothing() -> None:
    done = queueing.offer(queueing.QueueState(), "web-1", "c", [Requested(A), Requested(B)],
                          limit=1, now="t")
    assert done is None


def test_settling_moves_paths_to_a_short_history() -> None:
    offered = queueing.offer(queueing.QueueState(), "h", "c", [Requested(A), Requested(B)],
                             limit=5, now="t")
    assert offered is not None
    queue, finished = queueing.settle(offered[0], {A.relpath: None, B.relpath: "no headers"},
                                      at="t9")
    assert queue.pending == ()
    assert [(f.path, f.result, f.why) for f in finished] == [
        (A.relpath, queueing.BUILT, ""), (B.relpath, queueing.FAILED, "no headers")]
    assert queueing.settle(queue, {A.relpath: None}, at="t10") == (queue, ())
    assert queueing.QueueState.from_json(queue.to_json()) == queue
