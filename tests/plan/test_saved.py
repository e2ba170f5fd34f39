"""Saved plans: what the file holds, and each reason applying it is refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reconciler import runtime, settings
from reconciler.errors import ConfigError, StalePlan
from reconciler.plan import saved as savedplan
from reconciler.testing import FakeEngine
from tests.conftest import GitRepo
from tests.support.falcohost import host_yaml


@pytest.fixture
def made(git_repo: GitRepo, make_host_root: Any, tmp_path: Path) -> runtime.Runtime:
    git_repo.commit({"web.yaml": host_yaml(image="docker.io/falcosecurity/falco")})
    conf = settings.Settings(repo=str(git_repo.path), host_root=make_host_root(),
                             hostname="web-1", store=tmp_path / "store",
                             state_dir=tmp_path / "state")
    return runtime.Runtime(conf, FakeEngine(), runtime.Shared.for_settings(conf))


def saved(made: runtime.Runtime, tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "web.plan"
    savedplan.save(path, made.planner().plan(), made.settings)
    return savedplan.load(path)


def test_the_file_records_revision_inputs_digest_and_changes(
    made: runtime.Runtime, tmp_path: Path, git_repo: GitRepo,
) -> None:
    doc = saved(made, tmp_path)
    assert doc["format"] == savedplan.FORMAT
    assert doc["revision"] == git_repo.git("rev-parse", "HEAD")
    assert doc["settings"]["repo"] == str(git_repo.path)
    assert doc["settings"]["hostname"] == "web-1"
    assert [c["op"] for c in doc["changes"]] == ["build", "create"]
    savedplan.check(doc, made.planner().plan())  # nothing moved: accepted


def test_a_moved_branch_is_refused(made: runtime.Runtime, tmp_path: Path,
                                   git_repo: GitRepo) -> None:
    doc = saved(made, tmp_path)
    git_repo.commit({"web.yaml": host_yaml(env={"B": "2"},
                                           image="docker.io/falcosecurity/falco")})
    again = savedplan.settings_for(doc, made.settings)
    with pytest.raises(StalePlan, match=r"the manifests moved from .* since the plan was saved"):
        savedplan.check(doc, runtime.Runtime(again, made.engine, made.shared).planner().plan())


def test_a_changed_store_is_refused(made: runtime.Runtime, tmp_path: Path) -> None:
    doc = saved(made, tmp_path)
    planned = made.planner().plan()
    key = planned.desired.artifacts[0].key
    source = tmp_path / "module.ko"
    source.write_bytes(b"\x7fELF")
    made.store.publish(key, source)
    with pytest.raises(StalePlan, match=r"the actual state \(store or containers\) changed"):
        savedplan.check(doc, made.planner().plan())


def test_a_file_that_is_not_a_saved_plan_is_one_sentence(tmp_path: Path) -> None:
    path = tmp_path / "x.plan"
    path.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ConfigError, match="is not a plan saved by `reconciler plan --out`"):
        savedplan.load(path)
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="cannot read saved plan"):
        savedplan.load(path)
