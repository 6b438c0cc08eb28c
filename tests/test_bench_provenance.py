"""The accuracy bench keeps, with each dataset's scores, the commit they were measured on, and its report
says when merged scores come from more than one version of the code (a report merged while a run is
still rewriting its JSON once mixed old and new scores silently)."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "forecast_accuracy", ROOT / "bench" / "forecast_accuracy.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("forecast_accuracy", module)
    spec.loader.exec_module(module)
    return module


def test_a_run_records_the_commit_it_was_loaded_from() -> None:
    measured = _bench().provenance()
    assert re.fullmatch(r"[0-9a-f]{7,}(\+dirty)?", measured["commit"])
    assert measured["started"].startswith("20")


def test_the_report_warns_when_scores_come_from_different_versions() -> None:
    bench = _bench()
    one = {"commit": "abc1234", "started": "2026-12-04T18:52:29+00:00"}
    same = bench.provenance_lines({"a": {"provenance": one}, "b": {"provenance": one}})
    assert len(same) == 2 and not any("Warning" in line for line in same)
    mixed = bench.provenance_lines({"a": {"provenance": one}, "b": {}})
    assert any("2 versions of the code" in line for line in mixed)
    assert any("not reproducible from a commit: not recorded" in line for line in mixed)
    dirty = bench.provenance_lines({"a": {"provenance": {**one, "commit": "abc1234+dirty"}}})
    assert any("not reproducible" in line and "abc1234+dirty" in line for line in dirty)
