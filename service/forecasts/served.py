"""A served forecast: one series' ForecastFrame rows as the forecaster produced them, with the model that
made them. Policies read it as a `QuantileForecast` (no round trip through strings); the API, the
dashboard and the Prometheus export turn it into their own shape once, at the edge (`to_api`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from forecasting.types import quantile_columns, quantile_levels_of
from policies.distribution import QuantileForecast
from service.forecasts.schemas import ForecastMeta, ForecastOut, ForecastPoint


@dataclass(frozen=True)
class ServedForecast:
    meta: ForecastMeta
    frame: pd.DataFrame
    """This series' ForecastFrame rows (`timestamp`, `horizon`, `mean`, `q…`), ordered by horizon."""

    @property
    def levels(self) -> tuple[float, ...]:
        return tuple(quantile_levels_of(self.frame))

    @property
    def step_seconds(self) -> float:
        stamps = pd.to_datetime(self.frame["timestamp"], utc=True).to_numpy(dtype="datetime64[ns]")
        deltas = np.diff(stamps).astype("int64") / 1e9
        return float(np.median(deltas)) if len(deltas) else 60.0

    def distribution(self) -> QuantileForecast:
        """The forecast as policies read it (raises `PolicyError` when it is unusable)."""
        levels = self.levels
        values = self.frame[quantile_columns(levels)].to_numpy(dtype=float)
        return QuantileForecast(levels, values, self.step_seconds)

    def stored_rows(self) -> list[dict[str, Any]]:
        """Rows of the `forecasts` table (every served distribution is kept for live scoring)."""
        columns = quantile_columns(self.levels)
        keys = [column[1:] for column in columns]
        return [
            {
                "model_id": self.meta.model_id,
                "series_id": self.meta.series_id,
                "cutoff": self.meta.cutoff,
                "ts": row["timestamp"].to_pydatetime(),
                "horizon": int(row["horizon"]),
                "mean": float(row["mean"]),
                "quantiles": {key: float(row[column]) for key, column in zip(keys, columns, strict=True)},
            }
            for row in self.frame.to_dict("records")
        ]


def to_api(served: ServedForecast) -> ForecastOut:
    """The API's shape of a served forecast (levels as strings: JSON object keys)."""
    columns = quantile_columns(served.levels)
    points = [
        ForecastPoint(
            timestamp=row["timestamp"].to_pydatetime(),
            horizon=int(row["horizon"]),
            mean=float(row["mean"]),
            quantiles={column[1:]: float(row[column]) for column in columns},
        )
        for row in served.frame.to_dict("records")
    ]
    return ForecastOut(**served.meta.model_dump(), points=points)
