"""Does the scaling chance constraint hold on real data? Replay forecasts against what happened.

For every cutoff of a backtest (one ForecastFrame, many cutoffs) the Bayesian policy picks the replica
count it would run over the next window (guardrails off: the chance constraint is a property of the
choice, not of the clamps); a window is violated when the actual load at any of its steps exceeds
replicas x capacity x target utilisation. With a calibrated forecast the violation rate should sit at
or under ε; the policy's own stated risk (mean of risk(n) at the chosen n) is reported beside it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from policies.distribution import QuantileForecast
from policies.guardrails import StepLimit
from policies.scaling import BayesianScalingPolicy, ScalingInput


@dataclass(frozen=True)
class ChanceCheck:
    windows: int
    violation_rate: float
    stated_risk: float
    epsilon: float
    mean_replicas: float
    peak_replicas: int

    @property
    def standard_error(self) -> float:
        return float(np.sqrt(max(self.epsilon * (1 - self.epsilon), 1e-12) / max(self.windows, 1)))


def check_chance_constraint(
    forecasts: pd.DataFrame,
    actuals: pd.Series,
    replica_capacity: float,
    epsilon: float,
    target_utilisation: float = 0.8,
) -> ChanceCheck:
    """`forecasts`: ForecastFrame of one series; `actuals`: values indexed by UTC timestamp."""
    policy = BayesianScalingPolicy(
        stabilization_seconds=0.0, step_limit=StepLimit(max_up=10**6, max_down=10**6)
    )
    actual_at = actuals.copy()
    actual_at.index = pd.to_datetime(actual_at.index, utc=True)
    violated, stated, replicas = [], [], []
    for cutoff, rows in forecasts.groupby("cutoff", sort=True):
        stamps = pd.to_datetime(rows.sort_values("horizon")["timestamp"], utc=True)
        if not stamps.isin(actual_at.index).all():
            continue  # the window runs past the data
        window = QuantileForecast.from_frame(rows)
        inputs = ScalingInput(
            workload="check", now_ts=pd.Timestamp(cutoff).timestamp(), current_replicas=0,
            replica_capacity=replica_capacity, load_forecast=window, target_utilisation=target_utilisation,
            epsilon=epsilon, min_replicas=0,
        )  # fmt: skip
        decision = policy.decide(inputs)
        n = int(decision.details["wanted_replicas"])
        load = actual_at.loc[stamps].to_numpy(dtype=float)
        violated.append(bool((load > n * replica_capacity * target_utilisation + 1e-9).any()))
        chosen = [c for c in decision.candidates if c.params.get("replicas") == n]
        stated.append(chosen[0].risk if chosen else np.nan)
        replicas.append(n)
    return ChanceCheck(
        windows=len(violated), violation_rate=float(np.mean(violated)) if violated else float("nan"),
        stated_risk=float(np.nanmean(stated)) if stated else float("nan"), epsilon=epsilon,
        mean_replicas=float(np.mean(replicas)) if replicas else float("nan"),
        peak_replicas=int(max(replicas, default=0)),
    )  # fmt: skip
