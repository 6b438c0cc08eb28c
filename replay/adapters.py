"""Scaling policies in the closed loop: the service's own policy and forecaster code behind one interface.

The engine hands an adapter a `PolicyView` holding only what is known at `now_s` (observations of the
intervals already finished, current replicas, the violation history) and gets the replicas wanted per
workload. Each CLI name maps onto registered code (`policies/`, `forecasting/`), nothing re-implemented:

* `static-peak` -> `static_peak` with the trace's peak observation (a capacity plan made for the peak);
* `hpa` -> `hpa`; `vpa` -> `vpa_percentile`; `holt-winters` -> `holt_winters_hpa`;
* `fft-period` -> the `fft_period` forecaster, sized by `static_peak` for the larger of the forecast
  window's highest median and the last observation (Crane's EHPA rule);
* `bayesian` -> `bayesian_scaling` (its defaults, as in the service) fed by a forecaster (`seasonal_window` by
  default) updated with every new observation and refit every `refit_every` decisions, plus what a
  serving stack exports beside the load: the queue depth (`backlog`, drained over the forecast window)
  and the slowdown of recent intervals as its interference forecast (`see_backlog`,
  `see_interference`; the baselines scale on load alone, as they do in Kubernetes);
* `oracle` -> perfect foresight: the replicas the true future load of the window needs at the highest
  utilisation that meets the SLO, knowing the window's interference and failures. The only adapter
  given the future, and only for this lower bound.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from forecasting.base import create_forecaster
from policies.adaptive import ViolationHistory
from policies.baselines import StaticPeakPolicy
from policies.catalog import load_all
from policies.distribution import QuantileForecast
from policies.scaling import ScalingInput
from policies.slo import ScalingSlo
from policies.types import Decision, build_policy
from replay.traces import ReplayError

POLICIES: dict[str, str] = {
    "static-peak": "provision for the trace's peak observation, never move (static_peak)",
    "hpa": "Kubernetes HPA on the last observed load (hpa)",
    "vpa": "decaying-percentile of observed load + 15% margin (vpa_percentile)",
    "holt-winters": "predictive HPA, Holt-Winters over observed load (holt_winters_hpa)",
    "fft-period": "FFT-period forecast (fft_period), size for the window's highest median (static_peak)",
    "bayesian": "Foresight: bayesian_scaling on a forecaster refreshed as the replay advances",
    "oracle": "perfect foresight of the load: the lower bound",
}
_REGISTERED = {"hpa": "hpa", "vpa": "vpa_percentile", "holt-winters": "holt_winters_hpa"}
EPOCH = pd.Timestamp("2024-01-01", tz="UTC")


@dataclass(frozen=True)
class PolicyView:
    """What a policy may know at `now_s`: observations (intervals finished so far, oldest first)."""

    now_s: float
    observations: np.ndarray
    """(k, W) observed load per finished decision interval."""
    current: np.ndarray
    violations: np.ndarray
    """(W, 2): windows observed and windows in which the load exceeded capacity x target."""
    backlog: np.ndarray | None = None
    """(W,) work queued now (load units x seconds): the queue-depth metric a serving stack exports."""
    speeds: np.ndarray | None = None
    """(k, W) slowest replica speed (1 - interference) seen in each finished interval."""


class ScalingAdapter(Protocol):
    name: str

    def decide(self, view: PolicyView) -> np.ndarray: ...

    def forecast_band(self) -> np.ndarray | None: ...


class PureAdapter:
    """Runs one registered scaling policy per workload, building `ScalingInput` from the view."""

    def __init__(
        self, name: str, capacity: np.ndarray, interval_s: float, cfg: dict[str, Any], policy: Any
    ) -> None:
        self.name, self.capacity, self.interval_s, self.cfg, self.policy = (
            name,
            capacity,
            interval_s,
            cfg,
            policy,
        )
        self.history = int(cfg.get("history", 12 if name == "hpa" else 720))
        """Observations handed to the policy (HPA reads only the last; VPA's histogram decays slowly)."""
        self.recent: list[deque[tuple[float, int]]] = [deque(maxlen=64) for _ in capacity]
        self.sees_backlog = bool(cfg.get("see_backlog", name == "bayesian"))
        """Whether the policy reads the queue depth (Foresight does; the HPA/VPA baselines scale on load)."""
        self.sees_interference = bool(cfg.get("see_interference", name == "bayesian"))
        """Whether the policy is given the observed slowdown as its interference forecast (Foresight)."""
        self.interference_window = int(cfg.get("interference_window", 12))
        self.slo = ScalingSlo.from_mapping(cfg, where="scaling")
        self._band: np.ndarray | None = None

    def forecasts(self, view: PolicyView) -> list[QuantileForecast | None]:
        return [None] * len(self.capacity)

    def forecast_band(self) -> np.ndarray | None:
        return self._band

    def inputs(self, view: PolicyView, w: int, forecast: QuantileForecast | None) -> ScalingInput:
        obs = view.observations[-self.history :, w]
        max_r = self.cfg.get("max_replicas")
        return ScalingInput.with_slo(
            self.slo,
            workload=f"w{w}",
            now_ts=view.now_s,
            current_replicas=int(view.current[w]),
            replica_capacity=float(self.capacity[w]),
            load_forecast=forecast,
            observed_load=tuple(float(x) for x in obs),
            observed_step_seconds=self.interval_s,
            min_replicas=int(self.cfg.get("min_replicas", 1)),
            max_replicas=None if max_r is None else int(max_r),
            violations=ViolationHistory(int(view.violations[w, 0]), int(view.violations[w, 1])),
            recent_recommendations=tuple(self.recent[w]),
            backlog=float(view.backlog[w]) if view.backlog is not None and self.sees_backlog else 0.0,
            degradation_forecast=self.degradation(view, w, forecast),
        )

    def degradation(
        self, view: PolicyView, w: int, forecast: QuantileForecast | None
    ) -> QuantileForecast | None:
        """Interference ahead as the quantiles of the slowdown of the last `interference_window`
        intervals (persistence: noisy neighbours change over hours), for policies that read it."""
        if not self.sees_interference or forecast is None or view.speeds is None or not len(view.speeds):
            return None
        recent = 1.0 - view.speeds[-self.interference_window :, w]
        levels = forecast.levels
        row = np.quantile(recent, levels)
        return QuantileForecast(levels, np.tile(row, (forecast.steps, 1)), forecast.step_seconds)

    def choose(self, view: PolicyView, w: int, forecast: QuantileForecast | None) -> Decision:
        return self.policy.decide(self.inputs(view, w, forecast))

    def decide(self, view: PolicyView) -> np.ndarray:
        forecasts = self.forecasts(view)
        out = np.empty(len(self.capacity), dtype=int)
        for w in range(len(self.capacity)):
            decision = self.choose(view, w, forecasts[w])
            out[w] = int(decision.params["replicas"])
            # stabilization windows look at what was recommended, not at what the guardrails let through
            # (as the service does): recording the clamped answer would ratchet replicas up for good
            wanted = int(decision.details.get("wanted_replicas", out[w]))
            self.recent[w].append((view.now_s, wanted))
        return out


class StaticAdapter(PureAdapter):
    """`static_peak` configured with the trace's peak observation (known in advance, as a capacity plan)."""

    def __init__(self, peaks: np.ndarray, *args: Any) -> None:
        super().__init__(*args)
        self.peaks = peaks

    def choose(self, view: PolicyView, w: int, forecast: QuantileForecast | None) -> Decision:
        return StaticPeakPolicy(peak_load=float(self.peaks[w])).decide(self.inputs(view, w, None))


class ForecastAdapter(PureAdapter):
    """A pure policy fed by a registered forecaster, updated each decision and refit every `refit_every`."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.model_name = str(self.cfg.get("forecaster", "seasonal_window"))
        self.params = dict(self.cfg.get("forecaster_params", {}))
        self.refit_every = int(self.cfg.get("refit_every", 360))
        self.min_obs = int(self.cfg.get("min_observations", 30))
        self.horizon = int(self.cfg.get("horizon_steps", 3))
        self.model: Any = None
        self.fitted_at = 0
        self.seen = 0

    def _frame(self, obs: np.ndarray, start: int) -> pd.DataFrame:
        k, n_w = obs.shape
        ts = EPOCH + pd.to_timedelta((np.arange(start, start + k) * self.interval_s), unit="s")
        return pd.DataFrame(
            {
                "series_id": np.tile([f"w{w}" for w in range(n_w)], k),
                "ts": np.repeat(ts, n_w),
                "value": obs.reshape(-1),
            }
        )

    def forecasts(self, view: PolicyView) -> list[QuantileForecast | None]:
        k = len(view.observations)
        n_w = len(self.capacity)
        if k < self.min_obs:
            return [None] * n_w
        try:
            if self.model is None or k - self.fitted_at >= self.refit_every:
                lo = max(k - int(self.cfg.get("fit_window", 2880)), 0)
                self.model = create_forecaster(self.model_name, freq=f"{self.interval_s:g}s", **self.params)
                self.model.fit(self._frame(view.observations[lo:], lo))
                self.fitted_at = k
            elif k > self.seen:
                self.model.update(self._frame(view.observations[self.seen :], self.seen))
            self.seen = k
            frame = self.model.predict(self.horizon)
        except Exception as exc:  # a forecaster failing is the policy's fallback case, as in the service
            self.last_error = str(exc)
            return [None] * n_w
        out: list[QuantileForecast | None] = []
        for w in range(n_w):
            rows = frame[frame["series"] == f"w{w}"]
            out.append(QuantileForecast.from_frame(rows, self.interval_s) if len(rows) else None)
        self._band = np.array([[f.quantile(lv)[0] if f else np.nan for lv in (0.05, 0.5, 0.95)] for f in out])
        return out


class FftPeriodAdapter(ForecastAdapter):
    """Crane-style predictive scaling: `static_peak` at max(window max of FFT median, last observation)."""

    def choose(self, view: PolicyView, w: int, forecast: QuantileForecast | None) -> Decision:
        last = float(view.observations[-1, w]) if len(view.observations) else 0.0
        peak = max(float(forecast.median().max()), last) if forecast is not None else last
        inputs = self.inputs(view, w, None)
        if forecast is None and not len(view.observations):  # nothing seen yet: hold
            peak = float(inputs.current_replicas) * inputs.usable_capacity
        return StaticPeakPolicy(peak_load=peak).decide(inputs)


class OracleAdapter:
    """Perfect foresight: the replicas the highest true load of [now, now + interval + cold start] needs,
    at the serving model's safe utilisation (the highest that still meets the SLO), with capacity slowed
    by the interference the engine says the window holds, plus one node's replicas when the (seeded,
    known) failure schedule takes a node down in the window. It is the bound the others are measured
    against, so it is told everything a policy could not know."""

    name = "oracle"

    def __init__(
        self,
        future_load: np.ndarray,
        capacity: np.ndarray,
        steps_ahead: int,
        cfg: dict[str, Any],
        safe_utilisation: float,
        failure_steps: np.ndarray,
        replicas_per_node: int,
    ) -> None:
        self.future_load, self.capacity, self.ahead = future_load, capacity, steps_ahead
        self.util = float(cfg.get("oracle_utilisation", safe_utilisation - 0.01))
        if not 0.0 < self.util <= 1.0:
            raise ReplayError(f"scaling.oracle_utilisation must lie in (0, 1], got {self.util}")
        self.min_r = int(cfg.get("min_replicas", 1))
        self.failure_steps = np.sort(np.asarray(failure_steps, dtype=int))
        self.spare = int(replicas_per_node)

    def decide_at(self, step: int, speed: float = 1.0) -> np.ndarray:
        window = self.future_load[step : step + self.ahead + 1]
        need = np.ceil(window.max(axis=0) / (self.capacity * self.util * max(speed, 1e-3)) - 1e-9)
        need = np.maximum(need, self.min_r).astype(int)
        lo, hi = np.searchsorted(self.failure_steps, [step, step + self.ahead + 1])
        if hi > lo:  # a node fails in the window: hold its replicas in reserve, on the largest workload
            need[int(np.argmax(need))] += self.spare
        return need

    def decide(self, view: PolicyView) -> np.ndarray:  # pragma: no cover - the engine calls decide_at
        raise ReplayError("the oracle decides from the future load; the engine calls decide_at")

    def forecast_band(self) -> np.ndarray | None:
        return None


def build_adapter(
    name: str,
    cfg: dict[str, Any],
    capacity: np.ndarray,
    interval_s: float,
    peaks: np.ndarray,
    future_load: np.ndarray,
    steps_ahead: int,
    oracle_facts: dict[str, Any] | None = None,
) -> PureAdapter | OracleAdapter:
    """The adapter for a CLI policy name (see `POLICIES`). `oracle_facts` carries what only the oracle is
    told: `safe_utilisation`, `failure_steps` and `replicas_per_node`."""
    load_all()
    if name not in POLICIES:
        raise ReplayError(f"unknown policy {name!r}; choose one of {', '.join(POLICIES)}")
    if name == "oracle":
        facts = oracle_facts or {}
        return OracleAdapter(
            future_load,
            capacity,
            steps_ahead,
            cfg,
            float(facts.get("safe_utilisation", 0.96)),  # alone (tests): 0.95, as before
            np.asarray(facts.get("failure_steps", []), dtype=int),
            int(facts.get("replicas_per_node", 0)),
        )
    if name == "static-peak":
        return StaticAdapter(peaks, name, capacity, interval_s, cfg, None)
    if name == "bayesian":
        policy = build_policy("bayesian_scaling", **dict(cfg.get("bayesian", {})))
        return ForecastAdapter(name, capacity, interval_s, cfg, policy)
    if name == "fft-period":
        fft_cfg = {**cfg, "forecaster": "fft_period", "forecaster_params": cfg.get("fft_params", {})}
        return FftPeriodAdapter(name, capacity, interval_s, fft_cfg, None)
    params = dict(cfg.get(name.replace("-", "_"), {}))
    return PureAdapter(name, capacity, interval_s, cfg, build_policy(_REGISTERED[name], **params))


def replicas_for(load: np.ndarray, capacity: np.ndarray, util: float) -> np.ndarray:
    """Replicas that serve `load` at `util` (what every adapter's first decision starts from)."""
    return (
        np.maximum(np.ceil(load / (capacity * util) - 1e-9), 1).astype(int) if util > 0 else np.ones(1, int)
    )
