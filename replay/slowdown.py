"""The replay's interference forecast: each workload's slowdown ahead, forecast by the service's own code.

The engine reports, per finished decision interval, the slowest replica speed `1 - d` of each workload
(interference x power-cap loss; healthy is 1 by construction, so `d` is already the degradation ratio the
service's `InterferenceForecaster` computes against a learned baseline). `SlowdownForecast` forecasts it
with the interference members of `forecasting.interference_members` through their array functions, for
all workloads at once: every `refit_every` decisions it chooses per workload, by validation CRPS over its
recent slowdowns (`choose_windows`, the rule of the service's `choice`), between persistence (window 1)
and the rolling median (`rolling_window`, 24 intervals); every decision it forecasts with the chosen
member (`rolling_median_quantiles`). LightGBM, the service's third member, is left out here: it costs a
fit per refit and adds no accuracy on the VM noise data the replay's interference comes from
(docs/interference.md).

Before `interference_min_observations` intervals, and as `interference_model: "window"`, it is the
earlier rule: the empirical quantiles of the last `interference_window` slowdowns, flat ahead. While no
slowdown has been observed at all (a replay without interference), it forecasts none and chooses nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from forecasting.interference_members import choose_windows, history_length, rolling_median_quantiles
from forecasting.types import DEFAULT_QUANTILES
from replay.traces import ReplayError

MODELS = ("choice", "window")


class SlowdownForecast:
    """Quantiles (W, steps, levels) of every workload's slowdown over the next steps."""

    def __init__(self, n_workloads: int, interval_s: float, cfg: dict[str, Any]) -> None:
        self.n_w, self.interval_s = n_workloads, interval_s
        self.kind = str(cfg.get("interference_model", "choice"))
        if self.kind not in MODELS:
            raise ReplayError(f"scaling.interference_model must be one of {MODELS}, got {self.kind!r}")
        self.window = int(cfg.get("interference_window", 12))
        self.windows = (1, int(cfg.get("interference_rolling_window", 24)))
        self.spread = int(cfg.get("interference_spread_window", 168))
        self.refit_every = int(cfg.get("interference_refit_every", cfg.get("refit_every", 360)))
        self.min_obs = int(cfg.get("interference_min_observations", 60))
        self.fit_window = int(cfg.get("fit_window", 2880))
        if min(self.windows) < 1 or self.spread < 1 or self.refit_every < 1 or self.min_obs < 2:
            raise ReplayError(
                "scaling.interference_rolling_window, _spread_window and _refit_every must be >= 1 and "
                "interference_min_observations >= 2"
            )
        self.chosen: np.ndarray | None = None
        """Per workload, the index in `windows` of the member chosen at the last refit."""
        self.chosen_at = 0

    def quantiles(self, speeds: np.ndarray, levels: Sequence[float], steps: int) -> np.ndarray:
        """Slowdown quantiles at `levels` for the next `steps` intervals, from the (k, W) speeds so far."""
        k = len(speeds)
        levels = tuple(float(x) for x in levels)
        if not (speeds < 1.0).any():  # no interference observed (or modelled): nothing to forecast
            return np.zeros((self.n_w, steps, len(levels)))
        if self.kind == "window" or k < self.min_obs:
            recent = 1.0 - speeds[-self.window :]
            return np.repeat(np.quantile(recent, levels, axis=0).T[:, None, :], steps, axis=1)
        if self.chosen is None or k - self.chosen_at >= self.refit_every:
            past = (1.0 - speeds[-self.fit_window :]).T
            self.chosen = choose_windows(
                past, self.windows, self.spread, DEFAULT_QUANTILES, steps, min(168, max(k // 4, 1))
            )
            self.chosen_at = k
        out = np.zeros((self.n_w, steps, len(levels)))
        for i, window in enumerate(self.windows):
            rows = np.flatnonzero(self.chosen == i)
            if len(rows):
                tail = (1.0 - speeds[-history_length(window, self.spread, steps) :, rows]).T
                out[rows] = rolling_median_quantiles(tail, window, self.spread, levels, steps)
        return np.clip(out, 0.0, 0.99)
