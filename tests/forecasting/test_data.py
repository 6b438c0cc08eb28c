"""Input cleaning, the Panel grid and the time split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.data import (
    Panel,
    normalize_long_frame,
    rolling_nanmedian,
    row_quantiles,
    split_by_time,
)
from forecasting.types import InvalidSeriesError
from tests.forecasting.conftest import START


def test_normalize_accepts_csv_aliases_epochs_and_covariate_columns() -> None:
    raw = pd.DataFrame({
        "series": ["a", "a", "a", "b"],
        "timestamp": [1_700_000_000, 1_700_000_060, 1_700_000_060, 1_700_000_000],
        "value": [1.0, np.nan, 3.0, 4.0],
        "queue": [10, 11, 12, 13],
    })  # fmt: skip
    data = normalize_long_frame(raw)
    df = data.frame
    assert list(df.columns) == ["series_id", "metric", "ts", "value"]
    assert str(df["ts"].dt.tz) == "UTC"
    assert data.targets == frozenset({"value"})  # covariate columns are never forecast
    values = df[df["metric"] == "value"]
    assert values["value"].tolist() == [1.0, 3.0, 4.0]  # NaN dropped, duplicate kept last
    assert sorted(df["metric"].unique()) == ["queue", "value"]
    assert normalize_long_frame(raw, target_metrics=["other"]).targets == frozenset()


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"series_id": ["a"], "ts": [START]}), "missing column"),
        (pd.DataFrame({"series_id": ["a"], "ts": ["not a time"], "value": [1.0]}), "not timestamps"),
        (pd.DataFrame({"series_id": ["a"], "ts": [START], "value": [-np.inf]}), "infinite value"),
        (pd.DataFrame({"series_id": ["a"], "ts": [START], "value": ["x"]}), "numeric"),
        (pd.DataFrame({"series_id": ["a"], "ts": [START], "value": [1.0], "c": ["x"]}), "covariate"),
    ],
)
def test_normalize_rejects_bad_input(frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(InvalidSeriesError, match=message):
        normalize_long_frame(frame)


def test_panel_grid_gaps_updates_and_trimming() -> None:
    ts = pd.Series(START + pd.to_timedelta([0, 5, 15], unit="min"))
    frame = pd.DataFrame({"series_id": "a", "metric": "cpu", "ts": ts, "value": [1.0, 2.0, 4.0]})
    panel = Panel(origin=START, freq=pd.Timedelta("5min"), keep=0)
    assert panel.add(frame) == [("a", "cpu")]
    tails, last = panel.tails([("a", "cpu")], 5)
    np.testing.assert_array_equal(tails[0], [np.nan, 1.0, 2.0, np.nan, 4.0])
    assert last[0] == 3 and panel.n_obs(("a", "cpu")) == 3
    later = frame.assign(ts=ts + pd.Timedelta("20min"), value=[5.0, 6.0, 7.0])
    panel.keep = 4
    panel.add(later)
    tails, last = panel.tails([("a", "cpu")], 4)
    np.testing.assert_array_equal(tails[0], [5.0, 6.0, np.nan, 7.0])
    assert panel.n_obs(("a", "cpu")) == 6
    assert panel.timestamps(np.array([last[0]]))[0] == START + pd.Timedelta("35min")


def test_row_quantiles_match_numpy() -> None:
    rng = np.random.default_rng(1)
    mat = rng.normal(size=(5, 40))
    mat[rng.random(mat.shape) < 0.3] = np.nan
    levels = (0.05, 0.5, 0.9)
    q, counts = row_quantiles(mat, levels)
    np.testing.assert_allclose(q, np.nanquantile(mat, levels, axis=1).T)
    np.testing.assert_array_equal(counts, np.isfinite(mat).sum(axis=1))


@pytest.mark.parametrize("window", [1, 2, 5, 6])
def test_rolling_nanmedian_matches_numpy_including_empty_windows(window: int) -> None:
    rng = np.random.default_rng(window)
    mat = rng.normal(size=(6, 50)) * 10.0
    mat[rng.random(mat.shape) < 0.3] = np.nan
    mat[0, :20] = np.nan  # windows with no observation at all
    views = np.lib.stride_tricks.sliding_window_view(mat, window, axis=1)
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        expected = np.nanmedian(views, axis=2)
    np.testing.assert_array_equal(rolling_nanmedian(mat, window), expected)


def test_split_by_time_is_per_entity_and_shared_by_its_metrics() -> None:
    ts = pd.date_range(START, periods=10, freq="1h")
    frame = pd.concat([
        pd.DataFrame({"series_id": "a", "metric": "cpu", "ts": ts, "value": 1.0}),
        pd.DataFrame({"series_id": "a", "metric": "mem", "ts": ts[:8], "value": 1.0}),
        pd.DataFrame({"series_id": "b", "metric": "cpu", "ts": ts[5:], "value": 1.0}),
    ])  # fmt: skip
    before, after = split_by_time(frame, 0.2)
    assert after[after["series_id"] == "a"]["ts"].min() == ts[8]
    assert (after[after["series_id"] == "a"]["metric"] == "cpu").all()
    assert after[after["series_id"] == "b"]["ts"].tolist() == [ts[9]]
    assert len(before) + len(after) == len(frame)
    with pytest.raises(InvalidSeriesError):
        split_by_time(frame, 1.5)
