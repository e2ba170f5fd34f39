"""The fleet's Prometheus, asked through the project's HTTP client (``edges.http.client``).

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
                   "User-Agent": "falco-reconciler", "Accept": "application/json"}
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
        return cls(settings.prometheus_url.rstrip("/"), rollout, headers,
                   settings.prometheus_ca_file, settings.prometheus_timeout)

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The instant vector ``promql`` returns (PrometheusError for anything else)."""
        self.queries += 1
        body = urllib.parse.urlencode({"query": promql}).encode()
        where = f"Prometheus at {self.url}"
        try:
            status, _headers, data = client.post(
                f"{self.url}/api/v1/query", body, self.headers, timeout=self.timeout,
                ca_bundle=self.ca_file, limit=MAX_ANSWER + 1)
        except OSError as exc:  # client.HttpError, or the CA bundle unreadable
            raise PrometheusError(f"{where} is unreachable: {exc}") from exc
        if len(data) > MAX_ANSWER:
            raise PrometheusError(f"{where} answered more than {MAX_ANSWER} bytes")
        try:
            answer = json.loads(data)
        except ValueError:
            raise PrometheusError(f"{where} answered {status} with no JSON") from None
        if not isinstance(answer, dict) or answer.get("status") != "success":
            said = answer.get("error") if isinstance(answer, dict) else None
            raise PrometheusError(f"{where} answered {status}: {said or 'no success'}")
        data_part = answer.get("data") or {}
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
