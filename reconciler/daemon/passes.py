"""One level-triggered pass: newest revision -> (verify) -> plan -> apply -> report.

The whole desired state is compared with the whole actual state each time
(``planner.make_plan``) and the difference applied by the ``Executor``, one outcome per
change. A revision that does not validate (bad manifests, a Falco version without a
known driver version, or a signature that does not verify) is refused: the pass plans
the last good revision instead, so drift is still mended with what ran before, and
reports the refusal. Everything at the edges is reached through
``pipeline``, ``executor``, ``falco`` and ``build``; this module only decides.
"""

from __future__ import annotations

import contextlib
import enum
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import docker.errors
import requests

from reconciler import builder, logs
from reconciler.edges import gitrepo, gitsign
from reconciler.edges.store import Store
from reconciler.errors import ManifestError, ReconcilerError, UnknownDriverVersion
from reconciler.reconcile import deploy, executor, planner, recovery
from reconciler.settings import Settings

log = logs.get(__name__)
_SDK_ERRORS = (docker.errors.DockerException, requests.RequestException)


class Result(enum.StrEnum):
    OK = "ok"  # everything applied: the revision is the applied one
    FAILED = "failed"  # some change failed (others may have been applied)
    REJECTED = "rejected"  # the newest revision is refused; the last good one was kept
    ERROR = "error"  # the pass could not run (repository or engine unreachable...)


@dataclass(frozen=True)
class Head:
    """The newest revision of the followed ref, and a local repository holding it."""

    revision: str
    repo: str


@dataclass(frozen=True)
class Report:
    result: Result
    head: str | None = None
    planned: str | None = None  # the revision whose plan was applied (head or last good)
    outcomes: tuple[executor.Outcome, ...] = ()
    message: str = ""
    transient: bool = False
    rejection: str | None = None  # why the head revision is refused
    container: str | None = None


@dataclass(frozen=True)
class Options:
    settle_seconds: float = 10.0
    stop_timeout: int = 10
    adopt: bool = False
    keys: gitsign.Keys = field(default_factory=gitsign.Keys)


def find_head(settings: Settings) -> Head:
    """Fetch (remote repositories) and resolve the followed ref; SourceError if it fails."""
    handle = gitrepo.open_repo(settings.repo, settings.state_dir)
    try:
        commit = gitrepo.resolve(handle, settings.ref)
        local = str(handle.git_dir) if gitrepo.is_remote(settings.repo) else settings.repo
    finally:
        handle.close()
    return Head(commit.hexsha, local)


def git_dir(repo: str) -> Path | None:
    """The git dir of a local repository (to watch its refs), None for a remote one."""
    if gitrepo.is_remote(repo):
        return None
    handle = gitrepo.open_repo(repo, Path(), fetch=False)
    try:
        return Path(handle.git_dir)
    finally:
        handle.close()


class Reconciler:
    def __init__(
        self, settings: Settings, options: Options,
        connect: Callable[[], Any],
        progress: builder.runner.Progress | None = None,
    ) -> None:
        self.settings = settings
        self.options = options
        self.connect = connect
        self.store = Store(settings.store)
        self.progress = progress

    def _pinned(self, head: Head, revision: str) -> Settings:
        return replace(self.settings, repo=head.repo, ref=revision)

    def run(
        self, head: Head, *, last_good: str | None, refused: str | None,
        container: str | None,
    ) -> Report:
        """One pass at ``head``; ``refused`` is a head revision already known to be bad."""
        try:
            client = self.connect()
        except ReconcilerError as exc:
            return Report(Result.ERROR, head.revision, message=str(exc),
                          transient=exc.transient)
        try:
            return self._run(client, head, last_good, refused, container)
        except ReconcilerError as exc:
            return Report(Result.ERROR, head.revision, message=str(exc), transient=exc.transient)
        except _SDK_ERRORS as exc:  # an engine going away mid-call, untranslated below us
            return Report(Result.ERROR, head.revision, message=f"Docker: {exc}", transient=True)
        finally:
            with contextlib.suppress(*_SDK_ERRORS):
                client.close()

    def _run(self, client: Any, head: Head, last_good: str | None, refused: str | None,
             container: str | None) -> Report:
        if container:
            recovery.mend(client, container)
        rejection: str | None = None
        planned: planner.Planned | None = None
        if refused is not None and refused == head.revision:
            rejection = "unchanged since it was refused"
        else:
            try:
                gitsign.verify(head.repo, head.revision, self.options.keys)
                planned = planner.make_plan(self._pinned(head, head.revision), client,
                                             adopt=self.options.adopt)
            except (ManifestError, UnknownDriverVersion, gitsign.SignatureError) as exc:
                rejection = _why(exc)
                log.warning("revision.refused", revision=head.revision, reason=rejection)
        if planned is None:
            if not last_good or last_good == head.revision:
                return Report(Result.REJECTED, head.revision, message="nothing applied yet; "
                              "waiting for a revision that validates", rejection=rejection)
            planned = planner.make_plan(self._pinned(head, last_good), client,
                                         adopt=self.options.adopt)
        outcomes = tuple(self._apply(client, planned))
        name = planned.desired.container.spec.name if planned.desired.container else container
        failed = [o for o in outcomes if o.result is executor.Result.FAILED]
        transient = any(o.transient for o in failed)
        if rejection is not None:
            return Report(Result.REJECTED, head.revision, planned.plan.revision, outcomes,
                          f"revision {head.revision[:12]} refused ({rejection}); "
                          f"kept {planned.plan.revision[:12]}", transient, rejection, name)
        if failed:
            first = failed[0]
            text = (f"{len(failed)} of {len(outcomes)} change(s) failed; first: "
                    f"{first.change.op.value} {first.change.name}: "
                    f"{_first_line(first.message)}")
            return Report(Result.FAILED, head.revision, planned.plan.revision, outcomes, text,
                          transient, None, name)
        return Report(Result.OK, head.revision, planned.plan.revision, outcomes,
                      f"{len(outcomes)} change(s) applied" if outcomes else "nothing to do",
                      False, None, name)

    def _apply(self, client: Any, planned: planner.Planned) -> Sequence[executor.Outcome]:
        if planned.plan.empty:
            return ()
        conf = self.settings
        config = builder.BuildConfig(
            state_dir=conf.state_dir, store=conf.store, source=conf.source,
            base_image=conf.base_image, jobs=conf.build_jobs, timeout=conf.build_timeout,
        )
        deployer = deploy.FalcoDeployer(client, self.store,
                                       settle_seconds=self.options.settle_seconds,
                                       stop_timeout=self.options.stop_timeout)

        def build(requests_: Sequence[builder.BuildRequest]) -> Sequence[builder.BuildOutcome]:
            # SIGTERM during a build cancels it (containers stopped, temp folders removed)
            # instead of waiting for a half-hour compile.
            with builder.sigterm_as_interrupt():
                return builder.build_all(requests_, config, client, progress=self.progress)

        started = time.monotonic()
        run = executor.Executor(self.store, build, deployer.apply)
        outcomes = run.run(planned.plan, planned.desired, adopt=self.options.adopt)
        log.info("pass.applied", revision=planned.plan.revision, changes=len(outcomes),
                 seconds=round(time.monotonic() - started, 3))
        return outcomes


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def _why(exc: ReconcilerError) -> str:
    if isinstance(exc, ManifestError):
        shown = "; ".join(str(p) for p in exc.problems[:5])
        more = f" (and {len(exc.problems) - 5} more)" if len(exc.problems) > 5 else ""
        return f"invalid manifests: {shown}{more}"
    return str(exc)
