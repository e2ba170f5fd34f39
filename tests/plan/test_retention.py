"""Retention: an artifact nothing wants goes only after its grace period, never while a
manifest names it, never the previous kernel's; the ledger survives a restart. The clock
is a value given to each review: nothing sleeps."""

from __future__ import annotations

import datetime as dt
from collections.abc import Set
from pathlib import Path
from typing import Never

from reconciler import plan
from reconciler.apply import executor
from reconciler.desired.state import DesiredArtifact, DesiredState
from reconciler.edges.state import ledger
from reconciler.edges.store.local import SHA_SUFFIX, Store
from reconciler.manifests import loading
from reconciler.model.artifacts import ArtifactKey, DriverKind
from reconciler.model.ledger import Ledger
from reconciler.observe.state import ObservedState
from reconciler.plan import render, retention

T0 = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)
WEEK = dt.timedelta(days=7)


def key(release: str) -> ArtifactKey:
    return ArtifactKey("8.0.0+driver", "x86_64", "debian", release, "1", DriverKind.KMOD)


OLD, CURRENT, NEXT, STRAY = (key("6.1.191-1-cloud-amd64"), key("6.1.192-3-cloud-amd64"),
                             key("6.1.193-1-cloud-amd64"), key("5.10.0-14-cloud-amd64"))


def judge(stored: set[ArtifactKey], *, wanted: Set[ArtifactKey] = frozenset(),
          named: Set[str] = frozenset(),
          kernels: dict[str, tuple[str, ...]] | None = None,
          before: Ledger | None = None, now: dt.datetime = T0) -> retention.Review:
    return retention.review(stored=stored, wanted={k.relpath for k in wanted}, named=named,
                            kernels=kernels or {}, ledger=before or Ledger(), now=now,
                            grace=WEEK)


def test_an_unwanted_artifact_is_kept_through_its_grace_then_deleted() -> None:
    first = judge({STRAY, CURRENT}, wanted={CURRENT})
    assert first.expired == ()
    assert first.kept == ((STRAY, T0 + WEEK),)
    assert first.ledger.unwanted_since == {STRAY.relpath: T0}
    # The grace counts from when it was first seen unwanted, not from each pass.
    later = judge({STRAY, CURRENT}, wanted={CURRENT}, before=first.ledger,
                  now=T0 + WEEK - dt.timedelta(seconds=1))
    assert later.kept == ((STRAY, T0 + WEEK),)
    assert later.expired == ()
    past = judge({STRAY, CURRENT}, wanted={CURRENT}, before=later.ledger, now=T0 + WEEK)
    assert past.expired == ((STRAY, T0),)
    assert past.kept == ()


def test_wanted_again_within_grace_starts_afresh() -> None:
    first = judge({STRAY})
    again = judge({STRAY}, wanted={STRAY}, before=first.ledger, now=T0 + dt.timedelta(days=3))
    assert again.ledger.unwanted_since == {}
    third = judge({STRAY}, before=again.ledger, now=T0 + WEEK)
    assert third.kept == ((STRAY, T0 + 2 * WEEK),)


def test_what_any_manifest_names_is_never_deleted() -> None:
    review = judge({STRAY}, named={STRAY.relpath}, now=T0 + 100 * WEEK)
    assert (review.expired, review.kept, review.ledger.unwanted_since) == ((), (), {})


def test_every_driverbuild_and_listed_kernel_counts_as_named_whatever_it_matches() -> None:
    text = ("apiVersion: falco-reconciler/v1\nkind: DriverBuild\nmetadata: {name: b}\n"
            "spec: {match: {hostnames: [elsewhere]}, target: debian, driverVersion: 8.0.0+driver,"
            " kernelRelease: 5.10.0-14-cloud-amd64}\n---\n"
            "apiVersion: falco-reconciler/v1\nkind: Host\nmetadata: {name: web}\n"
            "spec:\n  match: {hostnames: [elsewhere]}\n  falco: {version: 0.40.0}\n  kernels:\n"
            "    - {target: debian, kernelRelease: 6.1.193-1-cloud-amd64, kernelVersion: 1}\n")
    manifests = loading.load([("m.yaml", text.encode())])
    assert retention.named(manifests, lambda b: b.spec.artifact_keys()) == {
        STRAY.relpath, NEXT.relpath}


def test_the_previous_kernels_drivers_are_kept_until_another_kernel_replaces_it() -> None:
    # OLD ran, then the host booted CURRENT and OLD's package was removed.
    booted_old = judge({OLD}, wanted={OLD}, kernels={"6.1.0-56-cloud-amd64": (OLD.relpath,)})
    booted_new = judge({OLD, CURRENT}, wanted={CURRENT},
                       kernels={"6.1.0-57-cloud-amd64": (CURRENT.relpath,)},
                       before=booted_old.ledger, now=T0 + dt.timedelta(days=1))
    much_later = judge({OLD, CURRENT}, wanted={CURRENT},
                       kernels={"6.1.0-57-cloud-amd64": (CURRENT.relpath,)},
                       before=booted_new.ledger, now=T0 + 10 * WEEK)
    assert much_later.previous == ((OLD, "6.1.0-56-cloud-amd64"),)
    assert (much_later.expired, much_later.kept) == ((), ())
    # NEXT boots and CURRENT's package goes: CURRENT is the previous kernel now, and OLD's
    # grace starts.
    at = T0 + 11 * WEEK
    replaced = judge({OLD, CURRENT, NEXT}, wanted={NEXT},
                     kernels={"6.1.0-58-cloud-amd64": (NEXT.relpath,)},
                     before=much_later.ledger, now=at)
    assert replaced.previous == ((CURRENT, "6.1.0-57-cloud-amd64"),)
    assert replaced.kept == ((OLD, at + WEEK),)


def test_the_ledger_survives_a_restart(tmp_path: Path) -> None:
    first = judge({STRAY, OLD}, kernels={"6.1.0-56-cloud-amd64": (OLD.relpath,)},
                  wanted={OLD})
    ledger.write(tmp_path, first.ledger)
    restored = ledger.read(tmp_path)
    assert restored == first.ledger
    after = judge({STRAY, OLD}, wanted={OLD}, kernels={"6.1.0-56-cloud-amd64": (OLD.relpath,)},
                  before=restored, now=T0 + WEEK)
    assert after.expired == ((STRAY, T0),)
    assert not list(tmp_path.glob(".*partial*"))


def test_an_unreadable_ledger_only_delays_deletions(tmp_path: Path) -> None:
    ledger.path(tmp_path).write_text("{not json", encoding="utf-8")
    review = judge({STRAY}, before=ledger.read(tmp_path), now=T0 + 5 * WEEK)
    assert review.expired == ()
    assert review.kept == ((STRAY, T0 + 6 * WEEK),)


def empty_desired() -> DesiredState:
    return DesiredState(revision="a" * 40, hostname="web-1", host=None,
                        artifacts=(DesiredArtifact(CURRENT, ("Host/web (running kernel)",)),),
                        container=None)


def test_the_plan_deletes_with_the_reason_and_shows_what_it_keeps_and_until_when() -> None:
    review = judge({STRAY, OLD, CURRENT}, wanted={CURRENT},
                   before=Ledger({STRAY.relpath: T0 - 2 * WEEK, OLD.relpath: T0}),
                   now=T0 + dt.timedelta(days=1))
    observed = ObservedState(present=frozenset({CURRENT}),
                             stored=frozenset({STRAY, OLD, CURRENT}))
    got = plan.diff(empty_desired(), observed, retained=review)
    assert [(c.op.value, c.name, c.reason) for c in got.changes] == [
        ("delete", STRAY.relpath, plan.Reason.EXPIRED)]
    assert got.changes[0].to_json()["reason"] == (
        "no Host, DriverBuild or installed kernel wants it any more, past its retention: "
        "unwanted since 2025-05-18 12:00 UTC, retention 7d")
    text = render.as_text(got)
    assert (f"  ({OLD.relpath}: no longer wanted; kept until 2025-06-08 12:00 UTC "
            "(retention 7d))") in text


def test_a_deletion_removes_the_artifact_and_its_checksum_through_the_store(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "store")
    built = tmp_path / "built.ko"
    built.write_bytes(b"a driver")
    store.publish(STRAY, built)
    review = judge({STRAY}, before=Ledger({STRAY.relpath: T0 - WEEK}))
    observed = ObservedState(stored=frozenset({STRAY}))
    desired = DesiredState(revision="a" * 40, hostname="web-1", host=None, artifacts=(),
                           container=None)

    def never(*_args: object) -> Never:
        raise AssertionError("only a deletion was planned")

    outcomes = executor.Executor(store, never, never, never).run(
        plan.diff(desired, observed, retained=review), desired)
    assert [(o.change.op.value, o.result.value) for o in outcomes] == [("delete", "ok")]
    target = store.root / STRAY.relpath
    assert not target.exists()
    assert not target.with_name(target.name + SHA_SUFFIX).exists()
    assert list(store.artifact_paths()) == []


def test_what_retention_keeps_is_shown_after_the_changes_not_before() -> None:
    review = judge({STRAY, OLD, CURRENT}, wanted={CURRENT},
                   before=Ledger({STRAY.relpath: T0 - 2 * WEEK, OLD.relpath: T0}),
                   now=T0 + dt.timedelta(days=1))
    observed = ObservedState(present=frozenset({CURRENT}),
                             stored=frozenset({STRAY, OLD, CURRENT}))
    text = render.as_text(plan.diff(empty_desired(), observed, retained=review))
    assert text.index(f"- delete  {STRAY.relpath}") < text.index(f"({OLD.relpath}: no longer")
    assert text.index(f"({OLD.relpath}: no longer") < text.index("Plan: 1 to delete.")
