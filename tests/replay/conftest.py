"""Small seeded traces for the replay tests (written to tmp files, nothing downloaded)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

QUIET: dict[str, dict[str, Any]] = {
    "cluster": {"interference": False, "failures_per_node_day": 0.0},
    "power": {"policy": "none"},
}


def long_trace(path: Path, hours: float = 2.0, seed: int = 0, series: int = 2) -> Path:
    """A daily-ish sine with noise per series, every 60 s (`series,timestamp,value`)."""
    rng = np.random.default_rng(seed)
    n = int(hours * 60)
    ts = pd.date_range("2024-01-01", periods=n, freq="60s", tz="UTC")
    rows = []
    for j in range(series):
        base = 50 + 30 * np.sin(np.arange(n) / 40.0 + j) + rng.normal(0, 4, n)
        rows.append(pd.DataFrame({"series": f"s{j}", "timestamp": ts, "value": np.maximum(base, 1.0)}))
    pd.concat(rows).to_csv(path, index=False)
    return path


@pytest.fixture
def long_csv(tmp_path: Path) -> Path:
    return long_trace(tmp_path / "load.csv")


@pytest.fixture
def llm_csv(tmp_path: Path) -> Path:
    """A small Azure-LLM-format trace: ~1 request/s with real-looking token counts, 20 minutes."""
    rng = np.random.default_rng(1)
    gaps = rng.exponential(1.0, 1200)
    ts = pd.Timestamp("2023-11-16 18:00:00") + pd.to_timedelta(np.cumsum(gaps), unit="s")
    frame = pd.DataFrame(
        {
            "TIMESTAMP": ts.strftime("%Y-%m-%d %H:%M:%S.%f"),
            "ContextTokens": rng.integers(100, 4000, len(ts)),
            "GeneratedTokens": rng.integers(5, 200, len(ts)),
        }
    )
    path = tmp_path / "llm.csv"
    frame.to_csv(path, index=False)
    return path
