"""One level-triggered pass: newest revision -> (verify) -> plan -> apply -> report.

The whole desired state is compared with the whole actual state each time (the runtime's
planner) and the difference applied by its executor, one outcome per change: the same
parts ``apply`` uses. A revision that does not validate (bad manifests, a Falco version
without a known driver version, or a signature that does not verify) is refused: the pass
plans the last good revision instead, so drift is still mended with what ran before, and
reports the refusal. Each pass that planned also reports, per kernel of the host, whether
its driver is ready in the store once the plan was applied. On a build host, the pass then
settles its build queue: what other hosts asked for leaves it once in the store, or once
its build failed for good. This module only decides.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from reconciler import logs, runtime
from reconciler.apply import executor, recovery
from reconciler.daemon import rollout, state
from reconciler.edges.git import repo as gitrepo
from reconciler.edges.git import signatures as gitsign
from reconciler.edges.http import requester
from reconciler.edges.state.buildqueue import BuildQueue
from reconciler.errors import ManifestError, ReconcilerError, SignatureError, UnknownDriverVersion
from reconciler.model.artifacts import ArtifactKey
from reconciler.model.upstreams import BuildPolicy
from reconciler.observe import stored
from reconciler.plan import planner, render
from reconciler.plan.diff import Op
from reconciler.settings import Settings

log = logs.get(__name__)


class PassResult(enum.StrEnum):
    OK = "ok"  # everything applied: the revision is the applied one
    FAILED = "failed"  # some change failed (others may have been applied)
    REJECTED = "rejected"  # the newest revision is refused; the last good one was kept
    ERROR = "error"  # the pass could not run (repository or engine unreachable...)


@dataclass(frozen=True)
class GitHead:
    """The newest revision of the followed ref, and a local repository holding it."""

    revision: str
    repo: str


@dataclass(frozen=True)
class Report:
    result: PassResult
    head: str | None = None
    planned: str | None = None  # the revision whose plan was applied (head or last good)
    outcomes: tuple[executor.Outcome, ...] = ()
    message: str = ""
    transient: bool = False
    rejection: str | None = None  # why the head revision is refused
    container: str | None = None
    # Whether each of the host's kernels has its driver ready; None: this pass did not plan.
    kernels: tuple[state.KernelDriver, ...] | None = None
    rollout: rollout.Choice | None = None  # where the head's Rollout put this host


class PassRunner(Protocol):
    """What the loop needs of a pass (``Runner``; tests script it)."""

    def run(self, head: GitHead, *, last_good: str | None, refused: str | None,
            container: str | None) -> Report: ...


def find_head(settings: Settings) -> GitHead:
    """Fetch (remote repositories) and resolve the followed ref; SourceError if it fails."""
    handle = gitrepo.open_repo(settings.repo, settings.state_dir)
    try:
        commit = gitrepo.resolve(handle, settings.ref)
        local = str(handle.git_dir) if gitrepo.is_remote(settings.repo) else settings.repo
    finally:
        handle.close()
    return GitHead(commit.hexsha, local)


def git_dir(repo: str) -> Path | None:
    """The git dir of a local repository (to watch its refs), None for a remote one."""
    if gitrepo.is_remote(repo):
        return None
    handle = gitrepo.open_repo(repo, Path(), fetch=False)
    try:
        return Path(handle.git_dir)
    finally:
        handle.close()


OpenRuntime = Callable[[], AbstractContextManager[runtime.Runtime]]


class Runner:
    """Runs one pass at a time, each on a runtime of its own (the composition root's)."""

    def __init__(self, settings: Settings, open_runtime: OpenRuntime, *,
                 queue: BuildQueue | None = None) -> None:
        self.settings = settings
        self.open_runtime = open_runtime
        self.queue = queue  # a build host's build queue, shared with the server
        self.keys = gitsign.Keys(settings.verify_gpg_home, settings.verify_ssh_allowed_signers)

    def run(
        self, head: GitHead, *, last_good: str | None, refused: str | None,
        container: str | None,
    ) -> Report:
        """One pass at ``head``; ``refused`` is a head revision already known to be bad."""
        try:
            with self.open_runtime() as rt:
                return self._run(rt, head, last_good, refused, container)
        except ReconcilerError as exc:
            return Report(PassResult.ERROR, head.revision, message=str(exc),
                          transient=exc.transient)

    def _run(self, rt: runtime.Runtime, head: GitHead, last_good: str | None,
             refused: str | None, container: str | None) -> Report:
        adopt = self.settings.adopt
        if container:
            recovery.mend(rt.engine, container)
        rejection: str | None = None
        planned: planner.Planned | None = None
        choice: rollout.Choice | None = None
        if refused is not None and refused == head.revision:
            rejection = "unchanged since it was refused"
        else:
            try:
                gitsign.verify(head.repo, head.revision, self.keys)
                # A Rollout may hold the head back: plan the revision this wave may run.
                choice = rollout.choose(rt, head.repo, head.revision, applied=last_good)
                ref = choice.revision if choice else head.revision
                planned = rt.planner(repo=head.repo, ref=ref).plan(adopt=adopt)
            except (ManifestError, UnknownDriverVersion, SignatureError) as exc:
                rejection = _why(exc)
                log.warning("revision.refused", revision=head.revision, reason=rejection)
        if planned is None:
            if not last_good or last_good == head.revision:
                return Report(PassResult.REJECTED, head.revision, message="nothing applied yet; "
                              "waiting for a revision that validates", rejection=rejection)
            planned = rt.planner(repo=head.repo, ref=last_good).plan(adopt=adopt)
        outcomes = tuple(self._apply(rt, planned))
        rt.sign_index()  # a build host vouches for what it now serves
        planned.remember()
        kernels = kernel_drivers(planned, lambda key: stored.usable(rt.store.lookup(key)))
        if self.queue is not None:
            settle_requests(self.queue, planned, outcomes)
        if self.settings.build is BuildPolicy.NEVER:
            requester.keep_only(self.settings.state_dir, [
                c.artifact for c in planned.plan.changes
                if c.op is Op.REQUEST and c.artifact is not None])
        name = planned.desired.container.spec.name if planned.desired.container else container
        # A pending request is not done: the pass is retried soon, like a transient failure.
        failed = [o for o in outcomes if o.result in (
            executor.OutcomeResult.FAILED, executor.OutcomeResult.PENDING)]
        transient = any(o.transient for o in failed)
        if choice is not None:
            choice = rollout.settle(rt, choice, ok=not failed)
            # The next pass rolls back: let it come soon, as after a transient failure.
            transient = transient or (bool(failed) and choice.rolls_back)
        if rejection is not None:
            return Report(PassResult.REJECTED, head.revision, planned.plan.revision, outcomes,
                          f"revision {head.revision[:12]} refused ({rejection}); "
                          f"kept {planned.plan.revision[:12]}", transient, rejection, name,
                          kernels)
        if failed:
            # Each failure was logged once, with its cause (change.failed): count them here.
            text = f"{len(failed)} of {len(outcomes)} change(s) failed"
            return Report(PassResult.FAILED, head.revision, planned.plan.revision, outcomes,
                          text, transient, None, name, kernels, choice)
        return Report(PassResult.OK, head.revision, planned.plan.revision, outcomes,
                      f"{len(outcomes)} change(s) applied" if outcomes else "nothing to do",
                      False, None, name, kernels, choice)

    def _apply(self, rt: runtime.Runtime, planned: planner.Planned) -> list[executor.Outcome]:
        if planned.plan.empty:
            return []
        log.info("pass.planned", revision=planned.plan.revision,
                 changes=len(planned.plan.changes), summary=render.summary(planned.plan))
        started = time.monotonic()
        outcomes = rt.executor().run(planned.plan, planned.desired, adopt=self.settings.adopt)
        log.info("pass.applied", revision=planned.plan.revision, changes=len(outcomes),
                 seconds=round(time.monotonic() - started, 3))
        return outcomes


def kernel_drivers(
    planned: planner.Planned, usable: Callable[[ArtifactKey], object | None],
) -> tuple[state.KernelDriver, ...]:
    """Per kernel of the host its Falco wants a driver for, whether ``usable`` (the store's:
    present, verified, of an identity its driver version accepts) finds it."""
    running = planned.inputs.facts.kernel_release
    return tuple(state.KernelDriver(release, release == running, key.relpath,
                                    usable(key) is not None)
                 for release, key in planned.desired.host_kernels)


def settle_requests(queue: BuildQueue, planned: planner.Planned,
                    outcomes: tuple[executor.Outcome, ...]) -> None:
    """Take off the build queue what is now in the store (present before the pass, or
    built or fetched by it) and what failed for good (with why); a transient failure stays
    queued."""
    present = {key.relpath for key in planned.observed.present}
    builds = {o.change.name: o for o in outcomes if o.change.op in (Op.BUILD, Op.FETCH)}
    done: dict[str, str | None] = {}
    for entry in queue.read().pending:
        outcome = builds.get(entry.path)
        if entry.path in present or (
                outcome is not None and outcome.result is executor.OutcomeResult.OK):
            done[entry.path] = None
        elif outcome is not None and outcome.result is executor.OutcomeResult.FAILED and (
                not outcome.transient):
            done[entry.path] = _first_line(outcome.message) or "the build failed"
    for finished in queue.settle(done):
        log.info("build_request.settled", path=finished.path, hosts=list(finished.hosts),
                 result=finished.result, why=finished.why)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def _why(exc: ReconcilerError) -> str:
    if isinstance(exc, ManifestError):
        shown = "; ".join(str(p) for p in exc.problems[:5])
        more = f" (and {len(exc.problems) - 5} more)" if len(exc.problems) > 5 else ""
        return f"invalid manifests: {shown}{more}"
    return str(exc)
