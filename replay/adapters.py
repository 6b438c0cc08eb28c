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
  and the slowdown ahead forecast from the slowdowns of finished intervals by the service's interference
  member (`replay/slowdown.py`; `see_backlog`, `see_interference`; the baselines scale on load alone, as
  they do in Kubernetes);
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
from forecasting.types import quantile_columns, quantile_levels_of
from policies.adaptive import BudgetController, ViolationHistory
from policies.baselines import StaticPeakPolicy
from policies.catalog import load_all
from policies.distribution import QuantileForecast
from policies.scaling import ScalingInput
from policies.scaling_batch import ScalingBatch, decide_batch
from policies.skill import SkillTracker
from policies.slo import ScalingSlo
from policies.types import Decision, build_policy
from replay.slowdown import SlowdownForecast
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
    late: np.ndarray | None = None
    """(W, 2) requests so far and those over the latency SLO (finished intervals), for the SLO budget."""


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
        self.slowdown = SlowdownForecast(len(capacity), interval_s, cfg) if self.sees_interference else None
        """The interference forecast (`replay/slowdown.py`: the service's interference member)."""
        self._slowdown_key: tuple[int, tuple[float, ...], int] | None = None
        self._slowdown = np.zeros((len(capacity), 0, 0))
        self.slo = ScalingSlo.from_mapping(cfg, where="scaling")
        self._band: np.ndarray | None = None
        self.budget: BudgetController | None = None
        """Tunes ε online to the objective's budget (`policies.adaptive`), unless ε is stated outright."""
        if name == "bayesian" and not self.slo.epsilon_override:
            self.budget = BudgetController(self.slo.objective.budget, len(capacity), self.slo.epsilon)
        self._seen_windows = np.zeros((len(capacity), 2))
        self._seen_late = np.zeros((len(capacity), 2))

    def spend_budget(self, view: PolicyView) -> None:
        """Feed the windows finished since the last decision to the budget controller."""
        if self.budget is None:
            return
        windows = view.violations - self._seen_windows
        late = (view.late if view.late is not None else np.zeros_like(windows)) - self._seen_late
        self._seen_windows, self._seen_late = view.violations.astype(float), late + self._seen_late
        if windows[:, 0].max() <= 0:
            return
        if self.slo.objective.per_window:
            self.budget.update(np.minimum(windows[:, 1], 1.0), (late[:, 0] > 0).astype(float))
            return
        requests, over = late[:, 0], late[:, 1]
        mean = self._seen_late[:, 0] / np.maximum(self._seen_windows[:, 0], 1.0)  # requests per window
        weight = requests / np.maximum(mean, 1e-12)
        self.budget.update(np.where(requests > 0, over / np.maximum(requests, 1e-12), 0.0), weight)

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
            violations=None
            if self.budget is not None
            else ViolationHistory(int(view.violations[w, 0]), int(view.violations[w, 1])),
            recent_recommendations=tuple(self.recent[w]),
            backlog=float(view.backlog[w]) if view.backlog is not None and self.sees_backlog else 0.0,
            degradation_forecast=self.degradation(view, w, forecast),
            forecast_skill=self.skill(w),
            **self.risk(w),
        )

    def risk(self, w: int) -> dict[str, Any]:
        """ε from the budget controller, and the note the decision records about it."""
        if self.budget is None:
            return {}
        note = (
            f"ε tuned online to spend the budget of {self.slo.objective.describe()} "
            f"(violation rate so far {self.budget.rate()[w]:.3g})"
        )
        return {"epsilon": float(self.budget.epsilon[w]), "risk_note": note}

    def skill(self, w: int) -> float | None:
        """The forecast's live loss ratio against persistence (None: this policy does not track it)."""
        return None

    def degradation(
        self, view: PolicyView, w: int, forecast: QuantileForecast | None
    ) -> QuantileForecast | None:
        """Interference ahead: the slowdown forecast of `replay/slowdown.py` (the service's interference
        member, fitted on every workload's observed slowdowns), for policies that read it."""
        if self.slowdown is None or view.speeds is None or not len(view.speeds):
            return None
        levels = forecast.levels if forecast is not None else (0.05, 0.5, 0.95)
        steps = forecast.steps if forecast is not None else 1
        key = (len(view.speeds), levels, steps)
        if self._slowdown_key != key:  # once per decision for every workload (vectorised)
            self._slowdown = self.slowdown.quantiles(view.speeds, levels, steps)
            self._slowdown_key = key
        return QuantileForecast(levels, self._slowdown[w], self.interval_s)

    def choose(self, view: PolicyView, w: int, forecast: QuantileForecast | None) -> Decision:
        return self.policy.decide(self.inputs(view, w, forecast))

    def decide(self, view: PolicyView) -> np.ndarray:
        self.spend_budget(view)
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
        self.forecast_every = max(int(self.cfg.get("forecast_every", 3)), 1)
        """Decisions one forecast serves (read further ahead each time) before the model is updated and
        asked again: forecasting, not deciding, is what a replay of many workloads spends its time on."""
        self._cache: tuple[tuple[float, ...], np.ndarray, np.ndarray] | None = None
        self._cached_at = 0
        self._index = {f"w{w}": w for w in range(len(self.capacity))}
        self.tracker = SkillTracker(len(self.capacity)) if bool(self.cfg.get("track_skill", True)) else None
        """The forecast's skill against persistence, scored as outcomes arrive (`policies.skill`)."""
        self._ratio = np.ones(len(self.capacity))

    def skill(self, w: int) -> float | None:
        return None if self.tracker is None else float(self._ratio[w])

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
        levels, q, ok = self.forecast_arrays(view)
        return [QuantileForecast(levels, q[w], self.interval_s) if ok[w] else None for w in range(len(ok))]

    def forecast_arrays(self, view: PolicyView) -> tuple[tuple[float, ...], np.ndarray, np.ndarray]:
        """This decision's forecast of every workload: (levels, quantiles (W, horizon, levels), which
        workloads have one); the skill tracker scores it once its targets are observed."""
        levels, q, ok = self._forecasts(view)
        if self.tracker is not None:
            self.tracker.update(view.observations)
            self._ratio = self.tracker.ratio()
            k = len(view.observations)
            if k and ok.any():
                self.tracker.record(
                    k, np.asarray(levels), np.where(ok[:, None, None], q, np.nan), view.observations[-1]
                )
        return levels, q, ok

    def _forecasts(self, view: PolicyView) -> tuple[tuple[float, ...], np.ndarray, np.ndarray]:
        k = len(view.observations)
        n_w = len(self.capacity)
        none = ((0.05, 0.5, 0.95), np.zeros((n_w, self.horizon, 3)), np.zeros(n_w, dtype=bool))
        if k < self.min_obs:
            return none
        fresh = self._cache is not None and k - self._cached_at < self.forecast_every
        if not fresh:
            try:
                self._cache = self._predict(view, k)
                self._cached_at = k
            except Exception as exc:  # a forecaster failing is the policy's fallback case, as in the service
                self.last_error = str(exc)
                self._cache = None
                return none
        assert self._cache is not None
        levels, q, ok = self._cache
        off = k - self._cached_at  # decisions since the forecast was made: read it that much further on
        self._band = np.where(ok[:, None], _at_levels(q[:, off, :], levels, (0.05, 0.5, 0.95)), np.nan)
        return levels, q[:, off : off + self.horizon], ok

    def _predict(self, view: PolicyView, k: int) -> tuple[tuple[float, ...], np.ndarray, np.ndarray]:
        """Update (or refit) the model and forecast `horizon + forecast_every - 1` intervals for every
        workload: (levels, quantiles (W, steps, levels), which workloads have a forecast)."""
        if self.model is None or k - self.fitted_at >= self.refit_every:
            lo = max(k - int(self.cfg.get("fit_window", 2880)), 0)
            self.model = create_forecaster(self.model_name, freq=f"{self.interval_s:g}s", **self.params)
            self.model.fit(self._frame(view.observations[lo:], lo))
            self.fitted_at = k
        elif k > self.seen:
            self.model.update(self._frame(view.observations[self.seen :], self.seen))
        self.seen = k
        steps = self.horizon + self.forecast_every - 1
        frame = self.model.predict(steps)
        levels = quantile_levels_of(frame)
        n_w = len(self.capacity)
        q = np.zeros((n_w, steps, len(levels)))
        ok = np.zeros(n_w, dtype=bool)
        frame = frame.sort_values(["series", "horizon"])
        values = frame[quantile_columns(levels)].to_numpy(dtype=float)
        for name, idx in frame.groupby("series", sort=False).indices.items():
            w = self._index.get(str(name))
            if w is None or len(idx) < steps:
                continue
            rows = values[idx[:steps]]
            if np.isfinite(rows).all():
                q[w], ok[w] = np.sort(rows, axis=1), True
        return levels, q, ok


class BayesianBatchAdapter(ForecastAdapter):
    """The Bayesian policy for all workloads of a decision in one array computation
    (`policies.scaling_batch`): the same answer as calling it per workload (a test checks), at a
    fraction of the time. `scaling.batch_decisions: false` runs the per-workload path instead."""

    RECENT = 64
    """Recommendations kept per workload for the stabilization window (as the per-workload deques)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        n_w = len(self.capacity)
        self._recent_ts = np.full((n_w, self.RECENT), np.nan)
        self._recent_n = np.zeros((n_w, self.RECENT), dtype=int)
        self._decisions = 0

    def batch(self, view: PolicyView) -> ScalingBatch:
        """What the policy reads about every workload now (as `inputs` builds it for one)."""
        levels, q, ok = self.forecast_arrays(view)
        n_w = len(self.capacity)
        template = QuantileForecast(levels, q[int(np.argmax(ok))], self.interval_s) if ok.any() else None
        # the interference forecast reads only the levels and window of the load forecast it goes with
        degradation = [self.degradation(view, w, template if ok[w] else None) for w in range(n_w)]
        budget = self.budget
        epsilon = budget.epsilon if budget is not None else np.full(n_w, self.slo.epsilon)
        backlog = view.backlog if view.backlog is not None and self.sees_backlog else np.zeros(n_w)
        max_r = self.cfg.get("max_replicas")
        return ScalingBatch(
            now_ts=view.now_s,
            current=np.asarray(view.current, dtype=int),
            capacity=np.asarray(self.capacity, dtype=float),
            observed=view.observations[-self.history :],
            levels=levels,
            forecast=q,
            has_forecast=ok,
            epsilon=np.asarray(epsilon, dtype=float),
            backlog=np.asarray(backlog, dtype=float),
            observed_step_seconds=self.interval_s,
            forecast_step_seconds=self.interval_s,
            degradation=degradation,
            skill=None if self.tracker is None else self._ratio,
            recent_ts=self._recent_ts,
            recent_n=self._recent_n,
            windows=None if budget is not None else view.violations[:, 0],
            violated=None if budget is not None else view.violations[:, 1],
            min_replicas=int(self.cfg.get("min_replicas", 1)),
            max_replicas=None if max_r is None else int(max_r),
            target_utilisation=self.slo.target_utilisation,
            cost_per_replica=self.slo.cost_per_replica,
            sla_penalty=self.slo.sla_penalty,
        )

    def decide(self, view: PolicyView) -> np.ndarray:
        self.spend_budget(view)
        out = decide_batch(self.policy, self.batch(view))
        slot = self._decisions % self.RECENT
        # stabilization looks at what was recommended, not at what the guardrails let through
        self._recent_ts[:, slot], self._recent_n[:, slot] = view.now_s, out.wanted
        self._decisions += 1
        return out.replicas.astype(int)


def _at_levels(values: np.ndarray, levels: tuple[float, ...], targets: tuple[float, ...]) -> np.ndarray:
    """(W, len(targets)): each row's quantiles (W, L) linearly interpolated at `targets`, clamped to the
    outermost levels (`np.interp` per row, for all rows at once)."""
    tau = np.asarray(levels, dtype=float)
    t = np.clip(np.asarray(targets, dtype=float), tau[0], tau[-1])
    seg = np.clip(np.searchsorted(tau, t, side="right") - 1, 0, len(tau) - 2)
    frac = (t - tau[seg]) / (tau[seg + 1] - tau[seg])
    lo, hi = values[:, seg], values[:, seg + 1]
    return lo + (hi - lo) * frac[None, :]


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
        if bool(cfg.get("batch_decisions", True)):
            return BayesianBatchAdapter(name, capacity, interval_s, cfg, policy)
        return ForecastAdapter(name, capacity, interval_s, cfg, policy)
    if name == "fft-period":
        fft_cfg = {
            **cfg,
            "forecaster": "fft_period",
            "forecaster_params": cfg.get("fft_params", {}),
            "track_skill": False,
        }
        return FftPeriodAdapter(name, capacity, interval_s, fft_cfg, None)
    params = dict(cfg.get(name.replace("-", "_"), {}))
    return PureAdapter(name, capacity, interval_s, cfg, build_policy(_REGISTERED[name], **params))


def replicas_for(load: np.ndarray, capacity: np.ndarray, util: float) -> np.ndarray:
    """Replicas that serve `load` at `util` (what every adapter's first decision starts from)."""
    return (
        np.maximum(np.ceil(load / (capacity * util) - 1e-9), 1).astype(int) if util > 0 else np.ones(1, int)
    )
