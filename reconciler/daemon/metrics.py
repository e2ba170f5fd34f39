"""Prometheus metrics of the daemon, on their own registry and their own listener.

Counters move at the end of each pass (``record_pass``); the store size and the age of
the applied revision are computed when scraped, so an idle daemon does no work for them.

What rollout gates and the alerting rules (docs/prometheus-rules.yaml) read, with small
label sets: ``reconciler_rollout_healthy{rollout, wave, revision, host}`` (one per host:
the revision it runs, 1 while its last pass there went well),
``reconciler_rollout_failed{rollout, wave, revision}`` (recent revisions that failed here),
``reconciler_rollout_held_seconds``
(how long a newer revision has waited for this host's wave), ``reconciler_falco_ready``,
``reconciler_driver_ready`` and ``reconciler_kernels_without_driver``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import prometheus_client as prom

from reconciler import logs
from reconciler.edges.store.local import Store
from reconciler.errors import ServerError

log = logs.get(__name__)


class Metrics:
    def __init__(self, store: Store) -> None:
        self.registry = prom.CollectorRegistry(auto_describe=True)
        r = self.registry
        self.passes = prom.Counter("reconciler_passes", "Reconciliation passes, by result",
                                   ["result"], registry=r)
        self.duration = prom.Histogram(
            "reconciler_pass_duration_seconds", "How long a pass took", registry=r,
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800),
        )
        self.last_success = prom.Gauge("reconciler_last_pass_success",
                                       "1 if the last pass applied everything, else 0",
                                       registry=r)
        self.changes = prom.Counter("reconciler_changes", "Changes applied, by outcome",
                                    ["kind", "op", "result"], registry=r)
        self.builds = prom.Counter("reconciler_builds", "Driver builds, by result",
                                   ["result"], registry=r)
        self.revision = prom.Info("reconciler_applied_revision",
                                  "The manifest revision last applied in full", registry=r)
        self.applied_at = prom.Gauge("reconciler_applied_revision_timestamp_seconds",
                                     "When the applied revision was applied (Unix time)",
                                     registry=r)
        self._applied_ts = 0.0
        age = prom.Gauge("reconciler_applied_revision_age_seconds",
                         "Seconds since the applied revision was applied", registry=r)
        age.set_function(lambda: time.time() - self._applied_ts if self._applied_ts else 0.0)
        self.suspended = prom.Gauge("reconciler_suspended", "1 while reconciliation is "
                                    "suspended", registry=r)
        self.rejected = prom.Gauge("reconciler_revision_rejected",
                                   "1 while the newest revision is refused (bad manifests "
                                   "or signature)", registry=r)
        served = prom.Gauge("reconciler_artifacts_served",
                            "Driver artifacts in the store the server serves", registry=r)
        served.set_function(lambda: float(sum(1 for _ in store.artifact_paths())))
        self.healthy = prom.Gauge(
            "reconciler_rollout_healthy", "1 while this host's last pass on the revision its "
            "rollout wave runs went well, else 0", ["rollout", "wave", "revision", "host"],
            registry=r)
        self._healthy_labels: tuple[str, str, str, str] | None = None
        self.eta = prom.Gauge("reconciler_rollout_eta_timestamp_seconds", "When the held "
                              "head revision is released to this host if its gates stay "
                              "open (Unix time; 0: none held, or not a matter of time)",
                              registry=r)
        self.failed = prom.Gauge(
            "reconciler_rollout_failed", "1 for each recent revision that failed on this host "
            "(its pass, or its wave's gate)", ["rollout", "wave", "revision"], registry=r)
        self._failed_labels: set[tuple[str, str, str]] = set()
        self._held_since = 0.0
        held = prom.Gauge("reconciler_rollout_held_seconds", "Seconds a newer revision has "
                          "been held from this host by its rollout wave (0: none)", registry=r)
        held.set_function(lambda: time.time() - self._held_since if self._held_since else 0.0)
        self.falco_ready = prom.Gauge("reconciler_falco_ready", "1 if Falco ran and answered "
                                      "as of the last pass, else 0", registry=r)
        self.driver_ready = prom.Gauge("reconciler_driver_ready", "1 if the running kernel's "
                                       "driver is in the store, usable", registry=r)
        self.kernels_without_driver = prom.Gauge(
            "reconciler_kernels_without_driver", "Installed kernels whose driver is not in "
            "the store", registry=r)
        self._server: Any = None

    def rollout(self, rollout: str, wave: str, revision: str, *, host: str, healthy: bool,
                held_since: float, eta: float | None = None,
                failed: Sequence[str] = ()) -> None:
        """This host's place in its rollout after a pass (one series: the old one goes),
        and the revisions that failed here (a few: the ledger's recent ones)."""
        labels = (rollout, wave, revision, host)
        self.eta.set(eta or 0)
        if self._healthy_labels not in (None, labels):
            self.healthy.remove(*self._healthy_labels)
        self._healthy_labels = labels
        self.healthy.labels(*labels).set(1 if healthy else 0)
        self._held_since = held_since
        wanted = {(rollout, wave, bad) for bad in failed}
        for gone in self._failed_labels - wanted:
            self.failed.remove(*gone)
        for bad_labels in wanted:
            self.failed.labels(*bad_labels).set(1)
        self._failed_labels = wanted

    def host(self, *, falco_ready: bool, kernels: Sequence[tuple[bool, bool]]) -> None:
        """Falco's readiness and, per kernel (running?, driver ready?), the drivers."""
        self.falco_ready.set(1 if falco_ready else 0)
        self.driver_ready.set(1 if any(run and ready for run, ready in kernels) else 0)
        self.kernels_without_driver.set(sum(1 for _run, ready in kernels if not ready))

    def record_pass(self, result: str, seconds: float, outcomes: Sequence[dict[str, Any]]) -> None:
        self.passes.labels(result).inc()
        self.duration.observe(seconds)
        self.last_success.set(1 if result == "ok" else 0)
        for outcome in outcomes:
            self.changes.labels(outcome.get("kind", ""), outcome.get("op", ""),
                                outcome.get("result", "")).inc()
            if outcome.get("op") == "build":
                self.builds.labels(outcome.get("result", "")).inc()

    def applied(self, revision: str, at: float) -> None:
        self.revision.info({"revision": revision})
        self.applied_at.set(at)
        self._applied_ts = at

    def serve(self, address: tuple[str, int]) -> tuple[str, int]:
        host, port = address
        try:
            self._server, _thread = prom.start_http_server(port, host, registry=self.registry)
        except OSError as exc:
            raise ServerError(f"cannot serve metrics on {host}:{port}: {exc.strerror}") from exc
        bound = self._server.server_address
        log.info("metrics.listening", address=f"{bound[0]}:{bound[1]}")
        return str(bound[0]), int(bound[1])

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
