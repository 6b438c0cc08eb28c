"""Input handling: validate long frames and keep per-series history on a regular time grid (the Panel).

Every forecaster sees the same cleaned data, so NaN, gaps, duplicates and covariate columns are handled
once, in a documented way:

* `value` NaN rows are dropped (a missing observation); +/-inf is an error naming the series.
* Duplicate (series, metric, ts) rows keep the last one.
* Timestamps are snapped to a grid of the model's frequency anchored at the first fitted timestamp;
  gaps stay NaN inside the Panel and each model says how it fills them.
* Extra numeric columns (beyond series_id, ts, value, metric) become covariate-only metrics of the same
  series: they are used as features but never forecast.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from forecasting.types import DEFAULT_METRIC, METRIC, SERIES_ID, TS, VALUE, InvalidSeriesError

Key = tuple[str, str]
"""A target or covariate series: (series_id, metric)."""

_ALIASES = {"series": SERIES_ID, "timestamp": TS}


@dataclass(frozen=True)
class LongData:
    """A cleaned long frame (series_id, metric, ts, value) plus which metrics are forecast targets."""

    frame: pd.DataFrame
    targets: frozenset[str]


def normalize_long_frame(frame: pd.DataFrame, target_metrics: Sequence[str] | None = None) -> LongData:
    """Validate and clean an input frame (see module docstring); accepts `series`/`timestamp` aliases."""
    df = canonical_columns(frame)
    missing = [c for c in (SERIES_ID, TS, VALUE) if c not in df.columns]
    if missing:
        raise InvalidSeriesError(
            f"input frame is missing column(s) {missing}; expected long data with columns "
            f"{SERIES_ID!r}, {TS!r}, {VALUE!r} and optionally {METRIC!r} and covariate columns"
        )
    if METRIC not in df.columns:
        df = df.assign(**{METRIC: DEFAULT_METRIC})
    covariates = [c for c in df.columns if c not in (SERIES_ID, TS, VALUE, METRIC)]
    base = df[[SERIES_ID, METRIC, TS, VALUE]]
    parts = [base]
    for col in covariates:
        if not pd.api.types.is_numeric_dtype(df[col]):
            raise InvalidSeriesError(f"covariate column {col!r} must be numeric, got dtype {df[col].dtype}")
        parts.append(pd.DataFrame({SERIES_ID: df[SERIES_ID], METRIC: str(col), TS: df[TS], VALUE: df[col]}))
    out = pd.concat(parts, ignore_index=True) if len(parts) > 1 else base.copy()
    out[SERIES_ID] = out[SERIES_ID].astype(str)
    out[METRIC] = out[METRIC].astype(str)
    try:
        out[TS] = to_utc(out[TS])
    except (ValueError, TypeError) as exc:
        raise InvalidSeriesError(f"column {TS!r} has values that are not timestamps: {exc}") from exc
    try:
        out[VALUE] = pd.to_numeric(out[VALUE], errors="raise").astype(float)
    except (ValueError, TypeError) as exc:
        raise InvalidSeriesError(f"column {VALUE!r} must be numeric: {exc}") from exc
    vals = out[VALUE].to_numpy()
    inf = np.isinf(vals)
    if inf.any():
        row = out.loc[inf].iloc[0]
        raise InvalidSeriesError(
            f"series {row[SERIES_ID]!r} metric {row[METRIC]!r} has an infinite value at {row[TS]}; "
            "send finite numbers (use NaN or omit the sample for a missing observation)"
        )
    out = out.loc[~np.isnan(vals) & out[TS].notna().to_numpy()]
    out = out.sort_values([SERIES_ID, METRIC, TS], kind="stable")
    out = out.drop_duplicates([SERIES_ID, METRIC, TS], keep="last").reset_index(drop=True)
    value_metrics = set(df[METRIC].astype(str).unique())
    targets = value_metrics if target_metrics is None else value_metrics & {str(m) for m in target_metrics}
    return LongData(out, frozenset(targets))


def canonical_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Rename the `series`/`timestamp` aliases to `series_id`/`ts` (no other change)."""
    if not isinstance(frame, pd.DataFrame):
        raise InvalidSeriesError(f"expected a pandas DataFrame, got {type(frame).__name__}")
    return frame.rename(columns={k: v for k, v in _ALIASES.items() if k in frame.columns and v not in frame})


def split_by_time(frame: pd.DataFrame, fraction: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split raw long data per entity (series_id): the last `fraction` of its distinct timestamps go right.

    Every metric of an entity shares the split time, so covariates never reveal the held-out part.
    """
    if not 0.0 < fraction < 1.0:
        raise InvalidSeriesError(f"fraction must be strictly between 0 and 1, got {fraction}")
    df = canonical_columns(frame)
    if SERIES_ID not in df.columns or TS not in df.columns:
        raise InvalidSeriesError(f"input frame needs columns {SERIES_ID!r} and {TS!r}")
    ts = to_utc(df[TS])
    sid = df[SERIES_ID].astype(str)
    uniq = pd.DataFrame({SERIES_ID: sid, TS: ts}).drop_duplicates().sort_values([SERIES_ID, TS])
    n = uniq.groupby(SERIES_ID)[TS].transform("size")
    rank = uniq.groupby(SERIES_ID).cumcount()
    n_test = np.maximum(1, np.floor(n * fraction)).astype(int)
    first_test = uniq.loc[rank >= n - n_test].groupby(SERIES_ID)[TS].min()
    split = sid.map(first_test)
    right = (ts >= split).to_numpy()
    return df.loc[~right], df.loc[right]


def to_utc(ts: pd.Series) -> pd.Series:
    """Parse timestamps (epoch seconds or strings/datetimes) as UTC."""
    if pd.api.types.is_numeric_dtype(ts):
        return pd.to_datetime(ts, unit="s", utc=True)
    return pd.to_datetime(ts, utc=True)


def infer_freq(frame: pd.DataFrame) -> pd.Timedelta:
    """The most common positive spacing between consecutive timestamps within a series."""
    diffs = frame.groupby([SERIES_ID, METRIC], sort=False)[TS].diff().dropna()
    diffs = diffs[diffs > pd.Timedelta(0)]
    if diffs.empty:
        raise InvalidSeriesError(
            "cannot infer the sampling frequency: every series has fewer than 2 timestamps; pass freq=..."
        )
    return pd.Timedelta(diffs.mode().iloc[0])


@dataclass
class Panel:
    """Per-series history on one regular grid: position p means time `origin + p * freq`.

    Each series keeps its start position and a float array (NaN where no observation); only the last
    `keep` positions are retained so memory stays bounded while updates stream in.
    """

    origin: pd.Timestamp
    freq: pd.Timedelta
    keep: int
    keys: list[Key] = field(default_factory=list)
    index: dict[Key, int] = field(default_factory=dict)
    starts: list[int] = field(default_factory=list)
    values: list[np.ndarray] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)

    def positions(self, ts: pd.Series) -> np.ndarray:
        """Grid positions of timestamps (rounded to the nearest grid point)."""
        delta = (ts - self.origin).to_numpy(dtype="timedelta64[ns]").astype(np.int64)
        return np.rint(delta / self.freq.value).astype(np.int64)

    def timestamps(self, positions: np.ndarray) -> pd.DatetimeIndex:
        """UTC timestamps of grid positions."""
        offsets = pd.to_timedelta(np.asarray(positions) * self.freq.value, unit="ns")
        return pd.DatetimeIndex(self.origin + offsets)

    def add(self, frame: pd.DataFrame) -> list[Key]:
        """Merge observations (later values win for a repeated position); return the keys that changed."""
        if frame.empty:
            return []
        pos = self.positions(frame[TS])
        sid = frame[SERIES_ID].to_numpy()
        met = frame[METRIC].to_numpy()
        val = frame[VALUE].to_numpy(dtype=float)
        boundaries = np.flatnonzero((sid[1:] != sid[:-1]) | (met[1:] != met[:-1])) + 1
        changed: list[Key] = []
        for lo, hi in zip(np.r_[0, boundaries], np.r_[boundaries, len(sid)], strict=True):
            key = (str(sid[lo]), str(met[lo]))
            self._merge(key, pos[lo:hi], val[lo:hi])
            changed.append(key)
        return changed

    def _merge(self, key: Key, pos: np.ndarray, val: np.ndarray) -> None:
        i = self.index.get(key)
        if i is None:
            start = int(pos.min())
            arr = np.full(int(pos.max()) - start + 1, np.nan)
            arr[pos - start] = val
            self.index[key] = len(self.keys)
            self.keys.append(key)
            self.starts.append(start)
            self.values.append(arr)
            self.counts.append(int(np.isfinite(arr).sum()))
        else:
            start, arr = self.starts[i], self.values[i]
            new_start = min(start, int(pos.min()))
            new_end = max(start + len(arr) - 1, int(pos.max()))
            if new_start != start or new_end != start + len(arr) - 1:
                grown = np.full(new_end - new_start + 1, np.nan)
                grown[start - new_start : start - new_start + len(arr)] = arr
                arr, start = grown, new_start
            upos = np.unique(pos)
            before = int(np.isfinite(arr[upos - start]).sum())
            arr[pos - start] = val
            self.counts[i] += len(upos) - before
            self.starts[i] = start
            self.values[i] = arr
        self._trim(self.index[key])

    def _trim(self, i: int) -> None:
        arr = self.values[i]
        if self.keep > 0 and len(arr) > self.keep:
            cut = len(arr) - self.keep
            self.values[i] = arr[cut:].copy()
            self.starts[i] += cut

    def last_pos(self, keys: Iterable[Key]) -> np.ndarray:
        """Position of the last observation of each key."""
        return np.array([self.starts[self.index[k]] + len(self.values[self.index[k]]) - 1 for k in keys])

    def n_obs(self, key: Key) -> int:
        """How many observations of `key` were ever received (not just retained)."""
        return self.counts[self.index[key]]

    def window(self, keys: Sequence[Key | None], end: np.ndarray, length: int) -> np.ndarray:
        """Matrix (len(keys), length) of values at positions end-length+1 .. end; NaN where unknown."""
        out = np.full((len(keys), length), np.nan)
        for r, key in enumerate(keys):
            i = self.index.get(key) if key is not None else None
            if i is None:
                continue
            start, arr = self.starts[i], self.values[i]
            lo = int(end[r]) - length + 1
            a, b = max(lo, start), min(int(end[r]), start + len(arr) - 1)
            if b >= a:
                out[r, a - lo : b - lo + 1] = arr[a - start : b - start + 1]
        return out

    def tails(self, keys: Sequence[Key], length: int) -> tuple[np.ndarray, np.ndarray]:
        """Right-aligned last `length` values of each key and the position of its last value."""
        last = self.last_pos(keys)
        return self.window(keys, last, length), last


def ffill_rows(mat: np.ndarray) -> np.ndarray:
    """Forward-fill NaN along axis 1, then back-fill leading NaN with the first value of the row."""
    out = mat.copy()
    n, m = out.shape
    if m == 0:
        return out
    idx = np.where(np.isfinite(out), np.arange(m)[None, :], 0)
    np.maximum.accumulate(idx, axis=1, out=idx)
    out = out[np.arange(n)[:, None], idx]
    first_valid = np.argmax(np.isfinite(out), axis=1)
    first_val = out[np.arange(n), first_valid]
    lead = ~np.isfinite(out)
    out[lead] = np.broadcast_to(first_val[:, None], out.shape)[lead]
    return out


def calendar_periods(freq: pd.Timedelta) -> list[int]:
    """Daily and weekly cycle lengths in grid steps that are whole numbers greater than one."""
    out = []
    for span in (pd.Timedelta(days=1), pd.Timedelta(days=7)):
        steps = span / freq
        if steps > 1 and float(steps).is_integer():
            out.append(int(steps))
    return out


def infer_season_length(freq: pd.Timedelta, shortest: int, cycles: int = 2) -> int:
    """The longest calendar period seen at least `cycles` times in the shortest series, else 1 (none)."""
    fitting = [p for p in calendar_periods(freq) if shortest >= cycles * p]
    return max(fitting) if fitting else 1


def row_quantiles(mat: np.ndarray, levels: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Per-row quantiles (linear interpolation) ignoring NaN, plus the count of finite values per row.

    Returns (n, K) quantiles (NaN for rows with no finite value) and (n,) counts; much faster than
    np.nanquantile on wide matrices because it sorts once.
    """
    if mat.shape[1] == 0:
        return np.full((mat.shape[0], len(levels)), np.nan), np.zeros(mat.shape[0], dtype=np.int64)
    srt = np.sort(mat, axis=1)  # NaN sort last
    counts = np.isfinite(mat).sum(axis=1)
    tau = np.asarray(levels, dtype=float)
    pos = tau[None, :] * np.maximum(counts - 1, 0)[:, None]
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, np.maximum(counts - 1, 0)[:, None])
    frac = pos - lo
    rows = np.arange(mat.shape[0])[:, None]
    q = srt[rows, lo] * (1.0 - frac) + srt[rows, hi] * frac
    q[counts == 0] = np.nan
    return q, counts


def rolling_nanmedian(mat: np.ndarray, window: int) -> np.ndarray:
    """Median of each row's sliding windows of `window` values ignoring NaN, NaN where a window has no
    finite value: column j is the median of `mat[:, j : j + window]`.

    The same numbers as `np.nanmedian` over a sliding-window view, without its per-slice warnings and
    masked-array path, which cost the replay about a second per simulated day.
    """
    view = np.lib.stride_tricks.sliding_window_view(mat, window, axis=1)
    srt = np.sort(view, axis=2)  # NaN sort last
    counts = np.isfinite(view).sum(axis=2)
    lo = np.maximum((counts - 1) // 2, 0)[..., None]
    hi = np.where(counts % 2 == 1, lo[..., 0], counts // 2)[..., None]
    middle = (np.take_along_axis(srt, lo, axis=2) + np.take_along_axis(srt, hi, axis=2))[..., 0] / 2.0
    return np.where(counts > 0, middle, np.nan)


def series_scale(values: np.ndarray) -> float:
    """A positive spread for normalising a series: its std, or its mean |value| (at least 1) if constant."""
    finite = values[np.isfinite(values)]
    sd = float(finite.std()) if len(finite) > 1 else 0.0
    level = float(np.abs(finite).mean()) if len(finite) else 0.0
    return sd if sd > 1e-9 * max(level, 1.0) else max(level, 1.0)
