"""compare's shape and a tiny sweep on a local Ray."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from replay.summary import SUMMARY_METRICS
from replay.sweep import grid, sweep
from service.replays.cli import replay_app
from tests.replay.conftest import QUIET


def test_compare_shape(long_csv: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**QUIET, "scaling": {"min_observations": 10}}))
    out = tmp_path / "cmp"
    result = CliRunner().invoke(
        replay_app,
        ["compare", "--trace", str(long_csv), "--trace-format", "long", "--policies", "hpa,oracle",
         "--seeds", "2", "--config", str(config), "--output", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    table = json.loads((out / "comparison.json").read_text())
    assert set(table) == {"hpa", "oracle"}
    for metrics in table.values():
        assert set(metrics) == set(SUMMARY_METRICS)
        for stats in metrics.values():
            assert set(stats) == {"mean", "std", "min", "max"}
            assert stats["min"] <= stats["mean"] <= stats["max"]
    assert (out / "report.html").exists()


def test_run_cli_and_bad_policy(long_csv: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(
        replay_app,
        [
            "run",
            "--trace",
            str(long_csv),
            "--trace-format",
            "long",
            "--policy",
            "vpa",
            "--output",
            str(tmp_path / "r"),
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "r" / "summary.json").exists()
    bad = runner.invoke(
        replay_app,
        [
            "run",
            "--trace",
            str(long_csv),
            "--trace-format",
            "long",
            "--policy",
            "x",
            "--output",
            str(tmp_path / "b"),
        ],
    )
    assert bad.exit_code == 2 and "unknown policy" in bad.output
    listed = runner.invoke(replay_app, ["policies"])
    assert "bayesian" in listed.output and "oracle" in listed.output


def test_tiny_sweep_on_local_ray(long_csv: Path) -> None:
    cells = grid(
        [(str(long_csv), "long")],
        ["hpa", "static-peak"],
        1,
        {"cold": {"cold_start_seconds": 300}, "warm": {"cold_start_seconds": 0}},
        {**QUIET, "max_steps": 300},
    )
    table = sweep(cells, num_cpus=1)
    assert len(table) == 4
    assert set(table["setting"]) == {"cold", "warm"}
    assert (table["replica_hours"] > 0).all()
