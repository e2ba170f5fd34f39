"""Test helpers shipped with the package, as structlog ships ``structlog.testing``.

Fakes of our own seams, each kept beside the adapter it stands in for:

- ``FakeEngine`` and ``Behaviour``: the container engine (``edges.docker.fake``);
- ``FakeProber``: our server's ``HEAD`` and Falco's ``/healthz`` (``edges.http.probe``);
- ``FakeClock``: time that moves only when told to (``edges.clock``);
- ``FakeToolchain``: a build's container steps, compile included (``builder.toolchain``);
- ``FakeManifests``, ``FakeHost``, ``FakeStore``, ``FakeUpstreams``, ``FakeApt``,
  ``FakeQueue``, ``FakeLedger``: what a pass reads (``observe.fakes``, beside the
  Protocols of ``observe.sources``), gathered by ``fake_sources``;
- ``capture_logs``: every structured event written inside a ``with`` block, as dicts
  (``logs.captured``).
"""

from __future__ import annotations

from reconciler.builder.toolchain import FakeToolchain
from reconciler.edges.clock import FakeClock
from reconciler.edges.docker.fake import Behaviour, FakeEngine
from reconciler.edges.http.probe import FakeProber
from reconciler.logs import captured as capture_logs
from reconciler.observe.fakes import (
    FakeApt,
    FakeHost,
    FakeLedger,
    FakeManifests,
    FakeQueue,
    FakeStore,
    FakeUpstreams,
)
from reconciler.observe.fakes import sources as fake_sources

__all__ = ["Behaviour", "FakeApt", "FakeClock", "FakeEngine", "FakeHost", "FakeLedger",
           "FakeManifests", "FakeProber", "FakeQueue", "FakeStore", "FakeToolchain",
           "FakeUpstreams", "capture_logs", "fake_sources"]
