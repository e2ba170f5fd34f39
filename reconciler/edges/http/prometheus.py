"""The fleet's Prometheus, asked through the project's one HTTP client (a
``client.Session`` whose error is ``PrometheusError``).

Instant queries are POSTed as a form to ``/api/v1/query`` (Prometheus's HTTP API takes
both GET and POST; a POST keeps long gate queries out of URLs and logs). Answers are
bounded (``MAX_ANSWER``), credentials come from files named in the host's settings (a
bearer token, or ``user:password`` for basic auth) and the CA bundle is the host's too.
Anything that goes wrong is one ``PrometheusError`` sentence; for a gate that means
"closed, and why" (``view`` and ``holds`` never raise).

One query per pass reads every wave at once (``fleet_query``): per wave the hosts seen
over the lookback, and per revision how many run it, how many of those are healthy and
how many failed on it, all aggregated by Prometheus, so the answer is a few series
however large the fleet is.
"""

from __future__ import annotations

import base64
import functools
import json
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.desired.waves import FleetView, WaveCounts
from reconciler.edges.http import client
from reconciler.errors import ConfigError, PrometheusError
from reconciler.settings import Settings

MAX_ANSWER = 4 << 20  # bytes; a fleet view is a few series, a gate query's answer is read
LOOKBACK = "1h"  # a reconciler that vanished keeps counting in its wave this long
METRIC = "reconciler_rollout_healthy"
FAILED = "reconciler_rollout_failed"


def fleet_query(rollout: str, lookback: str = LOOKBACK) -> str:
    """The one query behind ``view``: four aggregations told apart by a ``stat`` label."""
    sel = f"{METRIC}{{rollout={json.dumps(rollout)}}}"
    failed = f"{FAILED}{{rollout={json.dumps(rollout)}}}"
    return (
        f'label_replace(count by (wave) (group by (instance, wave) '
        f'(last_over_time({sel}[{lookback}]))), "stat", "members", "", "")'
        f' or label_replace(count by (wave, revision) ({sel}), "stat", "on", "", "")'
        f' or label_replace(sum by (wave, revision) ({sel}), "stat", "healthy", "", "")'
        f' or label_replace(count by (wave, revision) ({failed}), "stat", "failed", "", "")')


def _read_secret(path: Path, what: str) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read prometheus_{what}_file {path}: {exc.strerror}") from exc
    if not text or "\n" in text:
        raise ConfigError(f"prometheus_{what}_file {path} must hold one line")
    return text


@dataclass
class Prometheus:
    """One Prometheus, as rollout gates ask it (``desired.rollout.Gates``)."""

    url: str
    rollout: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    ca_file: Path | None = None
    timeout: float = 5.0
    lookback: str = LOOKBACK
    queries: int = 0  # asked so far (the benchmark counts them)

    @classmethod
    def from_settings(cls, settings: Settings, rollout: str = "") -> Prometheus | None:
        """None when no Prometheus is configured; ConfigError for unreadable secrets."""
        if not settings.prometheus_url:
            return None
        headers = {"Content-Type": "application/x-www-form-urlencoded",
                   "Accept": "application/json"}
        if settings.prometheus_bearer_token_file is not None:
            token = _read_secret(settings.prometheus_bearer_token_file, "bearer_token")
            headers["Authorization"] = f"Bearer {token}"
        elif settings.prometheus_basic_auth_file is not None:
            pair = _read_secret(settings.prometheus_basic_auth_file, "basic_auth")
            if ":" not in pair:
                raise ConfigError(f"prometheus_basic_auth_file "
                                  f"{settings.prometheus_basic_auth_file} must hold "
                                  "user:password")
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        made = cls(settings.prometheus_url.rstrip("/"), rollout, headers,
                   settings.prometheus_ca_file, settings.prometheus_timeout)
        made.session.tls()  # a CA bundle that cannot be read is a ConfigError now
        return made

    @functools.cached_property
    def session(self) -> client.Session:
        return client.Session(headers=self.headers, ca_bundle=self.ca_file,
                              timeout=self.timeout, deadline=self.timeout * 2,
                              error=PrometheusError)

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The instant vector ``promql`` returns (PrometheusError for anything else)."""
        self.queries += 1
        body = urllib.parse.urlencode({"query": promql}).encode()
        where = f"Prometheus at {self.url}"
        try:
            with self.session.open("POST", f"{self.url}/api/v1/query", body=body) as answer:
                status, doc = answer.status, answer.json(MAX_ANSWER)
        except PrometheusError as exc:  # the client's one error map said what went wrong
            raise PrometheusError(f"{where} did not answer: {exc}") from exc
        if not isinstance(doc, dict) or doc.get("status") != "success":
            said = doc.get("error") if isinstance(doc, dict) else None
            raise PrometheusError(f"{where} answered {status}: {said or 'no success'}")
        data_part = doc.get("data") or {}
        result = data_part.get("result")
        if data_part.get("resultType") != "vector" or not isinstance(result, list):
            raise PrometheusError(f"{where} answered a {data_part.get('resultType')}, not an "
                                  "instant vector")
        return result

    def view(self) -> FleetView:
        try:
            rows = self.query(fleet_query(self.rollout, self.lookback))
        except PrometheusError as exc:
            return FleetView(error=str(exc))
        members: dict[str, int] = {}
        on: dict[str, dict[str, int]] = {}
        healthy: dict[str, dict[str, int]] = {}
        failed: dict[str, dict[str, int]] = {}
        tables = {"on": on, "healthy": healthy, "failed": failed}
        for row in rows:
            labels, value = row.get("metric", {}), row.get("value", [0, "0"])
            wave, stat = str(labels.get("wave", "")), labels.get("stat")
            count = int(float(value[1]))
            if stat == "members":
                members[wave] = count
            elif stat in tables:
                tables[stat].setdefault(wave, {})[str(labels.get("revision", ""))] = count
        waves = set(members) | set(on) | set(failed)
        return FleetView({w: WaveCounts(members.get(w, 0), on.get(w, {}), healthy.get(w, {}),
                                        failed.get(w, {})) for w in waves})

    def holds(self, query: str) -> bool | None:
        try:
            return bool(self.query(query))
        except PrometheusError:
            return None
