"""The session's RabbitMQ cluster is claimed once per run: a second xdist worker asking for it fails, by name."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import claim_the_only_cluster


def _worker(run: Path, name: str) -> pytest.TempPathFactory:
    basetemp = run / f"popen-{name}"  # as xdist lays out a run: one basetemp per worker under the run's own
    return SimpleNamespace(getbasetemp=lambda: basetemp)  # type: ignore[return-value]


def test_a_second_worker_claiming_the_cluster_is_told_the_group_is_split(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    claim_the_only_cluster(_worker(tmp_path, "gw1"))
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw3")
    split = r"runs on gw1 and gw3, so each would boot a cluster of its own: run with --dist loadgroup"
    with pytest.raises(pytest.fail.Exception, match=split):
        claim_the_only_cluster(_worker(tmp_path, "gw3"))


def test_without_xdist_there_is_nothing_to_claim(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    claim_the_only_cluster(_worker(tmp_path, "none"))
    claim_the_only_cluster(_worker(tmp_path, "none"))
    assert not list(tmp_path.iterdir())
