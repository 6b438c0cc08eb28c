"""Batch training on a local Ray: one artifact per group that predicts exactly what a local fit predicts;
the `forecast fit` command writes the artifacts; a failing group is named."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from forecasting import create_forecaster
from service.forecasts.artifacts import from_bytes
from service.forecasts.batch import GroupTrainingError, fit_local, train_many
from service.forecasts.cli import forecast_app
from tests.helpers import REPO_ROOT

ray = pytest.importorskip("ray")

NAB = REPO_ROOT / "service" / "sample_data" / "nab"
CONFIG: dict[str, Any] = {
    "n_estimators": 10, "max_train_rows": 1500, "num_leaves": 8, "min_data_in_leaf": 10, "num_threads": 1,
    "max_horizon": 6, "seed": 3,
}  # fmt: skip


def _cluster(files: list[str]) -> pd.DataFrame:
    parts = [
        pd.read_csv(NAB / f"{name}.csv")
        .head(400)
        .assign(series_id=name[-6:])
        .rename(columns={"timestamp": "ts"})
        for name in files
    ]
    return pd.concat(parts, ignore_index=True)


GROUPS = {
    "west": _cluster(["ec2_cpu_utilization_24ae8d", "ec2_cpu_utilization_5f5533"]),
    "east": _cluster(["rds_cpu_utilization_cc0c53"]),
}


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield
    finally:
        ray.shutdown()


def test_ray_artifacts_predict_exactly_like_a_local_fit(local_ray: None) -> None:
    artifacts = train_many(GROUPS, "lightgbm", CONFIG)
    assert list(artifacts) == ["west", "east"]
    for name, frame in GROUPS.items():
        remote = from_bytes(artifacts[name]).predict(6)
        local = create_forecaster("lightgbm", **CONFIG).fit(frame).predict(6)
        pd.testing.assert_frame_equal(remote, local)
        assert set(remote["series"]) == set(frame["series_id"])
        assert from_bytes(fit_local(frame, "lightgbm", CONFIG)).predict(6).equals(local)


def test_a_failing_group_is_named(local_ray: None) -> None:
    groups = {**GROUPS, "tiny": GROUPS["east"].head(3)}
    with pytest.raises(GroupTrainingError) as info:
        train_many(groups, "lightgbm", CONFIG)
    assert info.value.group == "tiny" and info.value.input_error
    assert "InsufficientHistoryError" in str(info.value) and "needs at least" in str(info.value)


def test_fit_command_writes_one_artifact_per_group(local_ray: None, tmp_path: Path) -> None:
    path = tmp_path / "clusters.csv"
    frames = [f.assign(cluster=name) for name, f in GROUPS.items()]
    pd.concat(frames).rename(columns={"series_id": "series", "ts": "timestamp"}).to_csv(path, index=False)
    out = tmp_path / "models"
    params = [arg for key in ("n_estimators", "max_train_rows", "num_threads") for arg in
              ("--param", f"{key}={CONFIG[key]}")]  # fmt: skip
    result = CliRunner().invoke(
        forecast_app,
        ["fit", "--input", str(path), "--group-by", "cluster", "--model", "lightgbm", "--horizon", "6",
         "--output-dir", str(out), *params],
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["artifacts"] == {"east": "east.forecaster", "west": "west.forecaster"}
    model = from_bytes((out / "west.forecaster").read_bytes())
    assert set(model.predict(6)["series"]) == set(GROUPS["west"]["series_id"])
